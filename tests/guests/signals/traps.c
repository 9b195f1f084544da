/* Each mode dies of one kind of wasm trap, a few calls deep so the backtrace
 * has named frames to show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int zero = 0;

__attribute__((noinline)) static int divide_by_zero(int x) { return x / zero; }

__attribute__((noinline)) static int read_far_away(void) {
    volatile int *p = (volatile int *)(uintptr_t)0xFFFFFFF0u;
    return *p;
}

__attribute__((noinline)) static void hit_unreachable(void) { __builtin_trap(); }

__attribute__((noinline)) static int recurse_forever(int depth) {
    volatile char pad[256];
    pad[depth & 255] = (char)depth;
    return recurse_forever(depth + 1) + pad[(depth + 1) & 255];
}

__attribute__((noinline)) static int run_mode(const char *mode) {
    if (strcmp(mode, "divide") == 0)
        return divide_by_zero(7);
    if (strcmp(mode, "memory") == 0)
        return read_far_away();
    if (strcmp(mode, "unreachable") == 0)
        hit_unreachable();
    if (strcmp(mode, "stack") == 0)
        return recurse_forever(0);
    if (strcmp(mode, "abort") == 0)
        abort();
    if (strcmp(mode, "exit") == 0)
        exit(42);
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    printf("trying %s\n", argv[1]);
    fflush(stdout);
    return run_mode(argv[1]);
}
