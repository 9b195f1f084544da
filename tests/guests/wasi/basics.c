/* args, environ, stdin, stdout/stderr and exit status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    int n = 0;
    while (environ[n]) n++;
    char **sorted = calloc(n + 1, sizeof(char *));
    memcpy(sorted, environ, n * sizeof(char *));
    qsort(sorted, n, sizeof(char *), cmp);
    for (int i = 0; i < n; i++) printf("env %s\n", sorted[i]);
    const char *g = getenv("GREETING");
    printf("GREETING=%s\n", g ? g : "(unset)");
    const char *missing = getenv("WASSH_NOT_SET");
    printf("missing=%s\n", missing ? missing : "(unset)");

    char buf[4096];
    size_t total = 0;
    unsigned long sum = 0;
    ssize_t r;
    while ((r = read(0, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++) sum = sum * 31 + (unsigned char)buf[i];
        if (total == 0) printf("stdin starts: %.*s\n", (int)(r < 20 ? r : 20), buf);
        total += (size_t)r;
    }
    printf("stdin bytes=%zu sum=%lu eof_rc=%zd\n", total, sum, r);
    fprintf(stderr, "to stderr\n");
    fflush(stdout);
    write(1, "raw write\n", 10);
    int code = 0;
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "exit=", 5) == 0) code = atoi(argv[i] + 5);
    if (code >= 1000) _Exit(code - 1000); /* via _Exit (proc_exit without atexit) */
    return code;
}
