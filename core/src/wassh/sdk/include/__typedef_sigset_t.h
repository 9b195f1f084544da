/* wassh SDK: a sigset_t that can hold every signal (wasi-libc's placeholder is
 * one byte, too small for SIGWINCH = 28). Shadows wasi-libc's internal header
 * and keeps its include guard, so the original is never read. Same layout as
 * musl's. */
#ifndef __wasilibc___typedef_sigset_t_h
#define __wasilibc___typedef_sigset_t_h

typedef struct __sigset_t {
    unsigned long __bits[128 / sizeof(long)];
} sigset_t;

#endif
