/* wassh SDK: umask() (remembered and applied to nothing: WASI has no modes). */
#ifndef __WASSH_SYS_STAT_H
#define __WASSH_SYS_STAT_H
#pragma GCC system_header

#include_next <sys/stat.h>

#ifdef __cplusplus
extern "C" {
#endif

mode_t umask(mode_t);

#ifdef __cplusplus
}
#endif

#endif
