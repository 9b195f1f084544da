/* wassh SDK: the real-time interval timer and sleeps that signals interrupt.
 *
 * ITIMER_REAL (setitimer, getitimer, alarm, ualarm) is kept by the host, which
 * sends SIGALRM when it expires, whatever the guest is doing: its disposition
 * decides (a handler runs, SIG_IGN ignores, the default action ends the guest
 * with status 142). ITIMER_VIRTUAL and ITIMER_PROF count the process's CPU
 * time, which the host does not account per guest: they fail with EINVAL.
 *
 * nanosleep, clock_nanosleep, sleep and usleep replace wasi-libc's (which wait
 * in poll_oneoff themselves, where a signal's handler would never run): a
 * caught signal ends them after its handler has run, with EINTR and the time
 * left, as on Linux (they are never restarted). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

#include "sigwrap.h"
#include "wassh_host.h"

/* Expiry and period in nanoseconds (0: disarmed / one-shot). */
struct __wassh_itimer {
    uint64_t value_ns;
    uint64_t interval_ns;
};

WASSH_IMPORT("wassh", "itimer_set")
int32_t __wassh_itimer_set(int32_t which, const struct __wassh_itimer *new_value,
                           struct __wassh_itimer *old_out);

#define NS_PER_SEC 1000000000ULL
/* Past this a timeval's nanoseconds would overflow: the timer waits "forever". */
#define MAX_SECONDS ((uint64_t)INT64_MAX / NS_PER_SEC - 1)

static int timeval_ns(const struct timeval *tv, uint64_t *ns) {
    if (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)
        return -1;
    uint64_t sec = (uint64_t)tv->tv_sec;
    if (sec > MAX_SECONDS)
        sec = MAX_SECONDS;
    *ns = sec * NS_PER_SEC + (uint64_t)tv->tv_usec * 1000;
    return 0;
}

/* Rounded up to a microsecond, so a timer that is armed never reads as zero. */
static void ns_timeval(uint64_t ns, struct timeval *tv) {
    uint64_t us = (ns + 999) / 1000;
    tv->tv_sec = (time_t)(us / 1000000);
    tv->tv_usec = (suseconds_t)(us % 1000000);
}

int setitimer(int which, const struct itimerval *restrict new_value,
              struct itimerval *restrict old_value) {
    struct __wassh_itimer next = {0, 0}, before = {0, 0};
    /* Linux takes a NULL new value for a zero one (disarm). */
    if (new_value != NULL && (timeval_ns(&new_value->it_value, &next.value_ns) != 0 ||
                              timeval_ns(&new_value->it_interval, &next.interval_ns) != 0))
        return errno = EINVAL, -1;
    int32_t err = __wassh_itimer_set(which, &next, old_value != NULL ? &before : NULL);
    if (err != 0)
        return errno = err, -1;
    if (old_value != NULL) {
        ns_timeval(before.value_ns, &old_value->it_value);
        ns_timeval(before.interval_ns, &old_value->it_interval);
    }
    return 0;
}

int getitimer(int which, struct itimerval *value) {
    struct __wassh_itimer now = {0, 0};
    int32_t err = __wassh_itimer_set(which, NULL, &now);
    if (err != 0)
        return errno = err, -1;
    ns_timeval(now.value_ns, &value->it_value);
    ns_timeval(now.interval_ns, &value->it_interval);
    return 0;
}

unsigned alarm(unsigned seconds) {
    struct itimerval it = {{0, 0}, {(time_t)seconds, 0}}, old;
    if (setitimer(ITIMER_REAL, &it, &old) != 0)
        return 0;
    /* Linux's rounding: to the nearest second, and never 0 for a pending alarm. */
    unsigned left = (unsigned)old.it_value.tv_sec;
    if ((left == 0 && old.it_value.tv_usec != 0) || old.it_value.tv_usec >= 500000)
        left++;
    return left;
}

/* glibc's: a second or more is EINVAL (POSIX leaves it unspecified). */
unsigned ualarm(unsigned value, unsigned interval) {
    struct itimerval it = {{0, (suseconds_t)interval}, {0, (suseconds_t)value}};
    struct itimerval old;
    if (setitimer(ITIMER_REAL, &it, &old) != 0)
        return (unsigned)-1;
    return (unsigned)(old.it_value.tv_sec * 1000000 + old.it_value.tv_usec);
}

/* -- sleeps --------------------------------------------------------------------------- */

static int64_t now_ns(__wasi_clockid_t clock) {
    __wasi_timestamp_t t = 0;
    if (__wasi_clock_time_get(clock, 1, &t) != 0)
        return 0;
    return (int64_t)t;
}

/* Returns 0 or an errno value; the time left in `left` (relative sleeps) on
 * EINTR. */
static int sleep_ns(__wasi_clockid_t clock, int absolute, int64_t ns, struct timespec *left) {
    __wasi_subscription_t sub = {
        .userdata = 0,
        .u.tag = __WASI_EVENTTYPE_CLOCK,
        .u.u.clock.id = clock,
        .u.u.clock.timeout = (__wasi_timestamp_t)ns,
        .u.u.clock.flags = absolute ? __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME : 0,
    };
    int64_t deadline = absolute ? ns : now_ns(__WASI_CLOCKID_MONOTONIC) + ns;
    __wasi_event_t ev;
    size_t n = 0;
    __wasi_errno_t err;
    WASSH_INTERRUPTIBLE(err, __wasi_poll_oneoff(&sub, &ev, 1, &n));
    if (err == EINTR && left != NULL && !absolute) {
        int64_t rest = deadline - now_ns(__WASI_CLOCKID_MONOTONIC);
        if (rest < 0)
            rest = 0;
        left->tv_sec = (time_t)(rest / (int64_t)NS_PER_SEC);
        left->tv_nsec = (long)(rest % (int64_t)NS_PER_SEC);
    }
    if (err == 0 && n == 1 && ev.error != 0)
        err = ev.error;
    return err;
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                    struct timespec *rem) {
    __wasi_clockid_t id;
    if (clock == CLOCK_REALTIME)
        id = __WASI_CLOCKID_REALTIME;
    else if (clock == CLOCK_MONOTONIC)
        id = __WASI_CLOCKID_MONOTONIC;
    else
        return EINVAL;
    if ((flags & ~TIMER_ABSTIME) != 0)
        return EINVAL;
    int64_t ns = __wassh_timespec_ns(req);
    if (ns < 0)
        return EINVAL;
    return sleep_ns(id, (flags & TIMER_ABSTIME) != 0, ns, rem);
}

int nanosleep(const struct timespec *req, struct timespec *rem) {
    int err = clock_nanosleep(CLOCK_MONOTONIC, 0, req, rem);
    return err != 0 ? (errno = err, -1) : 0;
}

unsigned sleep(unsigned seconds) {
    struct timespec req = {(time_t)seconds, 0}, rem = {0, 0};
    if (nanosleep(&req, &rem) == 0)
        return 0;
    if (errno != EINTR)
        return seconds;
    /* glibc's rounding of the time left */
    return (unsigned)rem.tv_sec + (rem.tv_nsec >= 500000000L);
}

int usleep(unsigned useconds) {
    struct timespec req = {(time_t)(useconds / 1000000), (long)(useconds % 1000000) * 1000};
    return nanosleep(&req, NULL);
}
