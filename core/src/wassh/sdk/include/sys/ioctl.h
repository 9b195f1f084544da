/* wassh SDK: terminal ioctls. TIOCGWINSZ asks the host for the window size;
 * FIONBIO sets O_NONBLOCK; FIONREAD keeps wasi-libc's meaning. Every other
 * request fails with ENOTTY. */
#ifndef __WASSH_SYS_IOCTL_H
#define __WASSH_SYS_IOCTL_H
#pragma GCC system_header

#include_next <sys/ioctl.h>

#define __NEED_struct_winsize
#include <bits/alltypes.h>

/* Linux numbers: the guest ABI uses them (they never reach the host). */
#ifndef TIOCGWINSZ
#define TIOCGWINSZ 0x5413
#define TIOCSWINSZ 0x5414
#endif
#ifndef TIOCSCTTY
#define TIOCSCTTY 0x540E
#endif
#ifndef TIOCNOTTY
#define TIOCNOTTY 0x5422
#endif
#ifndef TIOCGPGRP
#define TIOCGPGRP 0x540F
#define TIOCSPGRP 0x5410
#endif
#ifndef FIOCLEX
#define FIOCLEX 0x5451
#define FIONCLEX 0x5450
#endif

#ifdef __cplusplus
extern "C" {
#endif

int __wassh_ioctl(int, int, ...);
#define ioctl __wassh_ioctl

#ifdef __cplusplus
}
#endif

#endif
