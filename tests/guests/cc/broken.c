/* Does not compile: an undeclared identifier. */
int main(void) { return undeclared_name; }
