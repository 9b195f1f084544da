/* wassh SDK: wasi-libc's <sys/time.h> with the interval timers. ITIMER_REAL
 * works as on Linux (SIGALRM when it expires); ITIMER_VIRTUAL and ITIMER_PROF
 * (CPU time) fail with EINVAL. */
#ifndef __WASSH_SYS_TIME_H
#define __WASSH_SYS_TIME_H
#pragma GCC system_header

#include_next <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ITIMER_REAL
#define ITIMER_REAL 0
#define ITIMER_VIRTUAL 1
#define ITIMER_PROF 2

struct itimerval {
    struct timeval it_interval;
    struct timeval it_value;
};

int getitimer(int, struct itimerval *);
int setitimer(int, const struct itimerval *__restrict, struct itimerval *__restrict);
#endif

#ifdef __cplusplus
}
#endif

#endif
