/* Prints its arguments in brackets and exits with their count: what a runnable
 * program from wassh cc must pass through exactly as a native one does. */
#include <stdio.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        printf("[%s]", argv[i]);
    printf("\n");
    return argc;
}
