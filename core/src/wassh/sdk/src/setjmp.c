/* wassh SDK: the pieces of setjmp/longjmp that wasi-libc leaves to the
 * toolchain: the exception tag LLVM's lowering throws and catches
 * (__c_longjmp; wasi-libc's runtime, __wasm_setjmp and friends, refers to it
 * but defines it nowhere), and the signal-mask half of sigsetjmp. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <string.h>

__asm__(".globl __c_longjmp\n"
        ".tagtype __c_longjmp i32\n"
        "__c_longjmp:\n");

/* musl's jmp_buf: __fl says whether __ss holds a saved mask. */
_Static_assert(sizeof(((struct __jmp_buf_tag *)0)->__ss) >= sizeof(sigset_t),
               "a sigset_t fits in jmp_buf's spare words");

void __wassh_sigsetjmp_save(sigjmp_buf env, int save) {
    env->__fl = 0;
    if (save) {
        sigset_t now;
        if (sigprocmask(SIG_BLOCK, NULL, &now) == 0) {
            memcpy(env->__ss, &now, sizeof now);
            env->__fl = 1;
        }
    }
}

_Noreturn void __wassh_siglongjmp(sigjmp_buf env, int val) {
    if (env->__fl) {
        sigset_t saved;
        memcpy(&saved, env->__ss, sizeof saved);
        sigprocmask(SIG_SETMASK, &saved, NULL);
    }
    longjmp(env, val);
}
