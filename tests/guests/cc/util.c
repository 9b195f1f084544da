/* A project's own library, named like a libc one: libutil.a. */
int project_util(void) { return 42; }
