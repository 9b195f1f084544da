/* wassh SDK: popen()/pclose() exist and fail with ENOSYS (no processes). */
#ifndef __WASSH_STDIO_H
#define __WASSH_STDIO_H
#pragma GCC system_header

#include_next <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

FILE *popen(const char *, const char *);
int pclose(FILE *);

#ifdef __cplusplus
}
#endif

#endif
