/* wassh SDK: <setjmp.h> without wasm exception handling. The types exist so
 * that code which only mentions them compiles; setjmp()/longjmp() themselves
 * are not available (calling them fails at link time). */
#ifndef __WASSH_SETJMP_H
#define __WASSH_SETJMP_H
#pragma GCC system_header

#if defined(__wasm_exception_handling__)
#include_next <setjmp.h>
#else
#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned long long __jmp_buf[8];
typedef struct __jmp_buf_tag {
    __jmp_buf __jb;
    unsigned long __fl;
    unsigned long __ss[128 / sizeof(long)];
} jmp_buf[1], sigjmp_buf[1];

int setjmp(jmp_buf);
_Noreturn void longjmp(jmp_buf, int);
int sigsetjmp(sigjmp_buf, int);
_Noreturn void siglongjmp(sigjmp_buf, int);

#ifdef __cplusplus
}
#endif
#endif

#endif
