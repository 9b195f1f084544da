/* wassh SDK: getrandom() on top of getentropy() (the host's random_get). */
#ifndef __WASSH_SYS_RANDOM_H
#define __WASSH_SYS_RANDOM_H
#pragma GCC system_header

#include_next <sys/random.h>

#define __NEED_ssize_t
#include <bits/alltypes.h>

#ifndef GRND_NONBLOCK
#define GRND_NONBLOCK 0x0001
#define GRND_RANDOM 0x0002
#define GRND_INSECURE 0x0004
#endif

#ifdef __cplusplus
extern "C" {
#endif

ssize_t getrandom(void *, size_t, unsigned);

#ifdef __cplusplus
}
#endif

#endif
