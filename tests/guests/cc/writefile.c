/* Writes "wrote NAME" into the file NAME (relative to the current directory),
 * reads it back and prints it: configure's test programs write conftest.val. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fprintf(f, "wrote %s\n", argv[1]);
    if (fclose(f) != 0)
        return 1;
    char line[256];
    f = fopen(argv[1], "r");
    if (!f || !fgets(line, sizeof line, f))
        return 1;
    fputs(line, stdout);
    return fclose(f) != 0;
}
