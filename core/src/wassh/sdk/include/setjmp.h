/* wassh SDK: <setjmp.h> on wasm exception handling.
 *
 * `wassh cc` compiles with LLVM's setjmp/longjmp lowering (-mllvm
 * -wasm-enable-sjlj) on the standardised exception-handling instructions; the
 * host's engine enables them. setjmp() must be called directly by the function
 * that longjmp() returns to (the lowering rewrites that caller), which is what
 * C requires anyway. longjmp() out of a signal handler works: handlers run in
 * wasm code, never across a host frame.
 *
 * sigsetjmp() saves the signal mask when its second argument is non-zero and
 * siglongjmp() restores it, as POSIX asks; both are macros around setjmp() so
 * that the lowering sees the setjmp() call in the caller's own frame. */
#ifndef __WASSH_SETJMP_H
#define __WASSH_SETJMP_H
#pragma GCC system_header

#if !defined(__wasm_exception_handling__)
#error "setjmp/longjmp need wasm exception handling: compile with `wassh cc` (it passes -mexception-handling -mllvm -wasm-enable-sjlj)"
#endif

#include_next <setjmp.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef __WASSH_SIGJMP_BUF
#define __WASSH_SIGJMP_BUF
#if !(defined(_POSIX_SOURCE) || defined(_POSIX_C_SOURCE) || defined(_XOPEN_SOURCE) \
      || defined(_GNU_SOURCE) || defined(_BSD_SOURCE))
typedef jmp_buf sigjmp_buf;
#endif
#endif

/* Saves (or, with save == 0, forgets) the mask in env's spare words. */
void __wassh_sigsetjmp_save(sigjmp_buf env, int save);
/* Restores a saved mask, then longjmp()s. */
_Noreturn void __wassh_siglongjmp(sigjmp_buf env, int val);

#undef sigsetjmp
#define sigsetjmp(env, save) (__wassh_sigsetjmp_save((env), (save)), setjmp(env))
#define siglongjmp(env, val) __wassh_siglongjmp((env), (val))
#define _setjmp(env) setjmp(env)
#define _longjmp(env, val) longjmp((env), (val))

#ifdef __cplusplus
}
#endif
#endif
