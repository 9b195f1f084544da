/* wassh SDK: poll() that tolerates entries wasi-libc's poll() rejects.
 *
 * Entries with a negative fd, or asking for neither POLLIN nor POLLOUT (for
 * example events == 0), are not sent to the host and get revents 0. With no
 * entry left, the call sleeps for the timeout (forever for a negative
 * timeout, until a signal interrupts it). A caught signal fails the call with
 * EINTR once its handler has run (poll is never restarted, as on Linux). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <wasi/api.h>

#include "sigwrap.h"

/* An "infinite" wait is a loop of long clock waits. */
#define FOREVER_SLICE_NS ((__wasi_timestamp_t)3600 * 1000000000u)

/* Private revents bit while events are collected: a write event that was both
 * ready and hung up (a stream socket that is not connected, POLLOUT|POLLHUP as
 * on Linux), so the hang-up does not take its POLLOUT away. */
#define WRITABLE_HUP 0x0400
_Static_assert((WRITABLE_HUP & (POLLRDNORM | POLLWRNORM | POLLPRI | POLLERR | POLLHUP |
                                POLLNVAL)) == 0,
               "WRITABLE_HUP must be a bit of its own");

static int wants(const struct pollfd *p) {
    return p->fd >= 0 && (p->events & (POLLRDNORM | POLLWRNORM)) != 0;
}

int __wassh_poll_ns(struct pollfd *fds, nfds_t nfds, int64_t timeout) {
    size_t active = 0;
    for (nfds_t i = 0; i < nfds; i++) {
        fds[i].revents = 0;
        if (wants(&fds[i]))
            active++;
    }

    __wasi_subscription_t subs[2 * active + 1];
    __wasi_event_t events[2 * active + 1];
    size_t nsubs = 0;
    for (nfds_t i = 0; i < nfds; i++) {
        struct pollfd *p = &fds[i];
        if (!wants(p))
            continue;
        if (p->events & POLLRDNORM) {
            subs[nsubs++] = (__wasi_subscription_t){
                .userdata = (uintptr_t)p,
                .u.tag = __WASI_EVENTTYPE_FD_READ,
                .u.u.fd_read.file_descriptor = (__wasi_fd_t)p->fd,
            };
        }
        if (p->events & POLLWRNORM) {
            subs[nsubs++] = (__wasi_subscription_t){
                .userdata = (uintptr_t)p,
                .u.tag = __WASI_EVENTTYPE_FD_WRITE,
                .u.u.fd_write.file_descriptor = (__wasi_fd_t)p->fd,
            };
        }
    }
    int forever = timeout < 0 && nsubs == 0;
    if (timeout >= 0 || forever) {
        subs[nsubs++] = (__wasi_subscription_t){
            .userdata = 0,
            .u.tag = __WASI_EVENTTYPE_CLOCK,
            .u.u.clock.id = __WASI_CLOCKID_REALTIME,
            .u.u.clock.timeout = forever ? FOREVER_SLICE_NS : (__wasi_timestamp_t)timeout,
        };
    }

    size_t nevents = 0;
    for (;;) {
        __wasi_errno_t err;
        WASSH_INTERRUPTIBLE(err, __wasi_poll_oneoff(subs, events, nsubs, &nevents));
        if (err != 0) {
            errno = err;
            return -1;
        }
        if (!forever)
            break;
    }

    for (size_t i = 0; i < nevents; i++) {
        const __wasi_event_t *ev = &events[i];
        if (ev->type != __WASI_EVENTTYPE_FD_READ && ev->type != __WASI_EVENTTYPE_FD_WRITE)
            continue;
        struct pollfd *p = (struct pollfd *)(uintptr_t)ev->userdata;
        if (ev->error == __WASI_ERRNO_BADF) {
            p->revents |= POLLNVAL;
        } else if (ev->error == __WASI_ERRNO_PIPE) {
            p->revents |= POLLHUP;
        } else if (ev->error != 0) {
            p->revents |= POLLERR;
        } else {
            int is_write = ev->type == __WASI_EVENTTYPE_FD_WRITE;
            p->revents |= is_write ? POLLWRNORM : POLLRDNORM;
            if (ev->fd_readwrite.flags & __WASI_EVENTRWFLAGS_FD_READWRITE_HANGUP)
                p->revents |= is_write ? POLLHUP | WRITABLE_HUP : POLLHUP;
        }
    }

    int ready = 0;
    for (nfds_t i = 0; i < nfds; i++) {
        /* hang-up excludes writability, unless the write event said both */
        if ((fds[i].revents & (POLLHUP | WRITABLE_HUP)) == POLLHUP)
            fds[i].revents &= ~POLLWRNORM;
        fds[i].revents &= (fds[i].events | POLLERR | POLLHUP | POLLNVAL) & ~WRITABLE_HUP;
        if (fds[i].revents != 0)
            ready++;
    }
    return ready;
}

int __wassh_poll(struct pollfd *fds, nfds_t nfds, int timeout) {
    return __wassh_poll_ns(fds, nfds, timeout < 0 ? -1 : (int64_t)timeout * 1000000);
}

int64_t __wassh_timespec_ns(const struct timespec *ts) {
    if (ts == NULL)
        return -1;
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
        return -2;
    if (ts->tv_sec >= INT64_MAX / 1000000000 - 1)
        return INT64_MAX;
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* The mask is in force while the call waits, as ppoll's is: signals are only
 * ever delivered by the SDK, so setting it around the wait is atomic enough. */
int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *ts, const sigset_t *sigmask) {
    int64_t timeout = __wassh_timespec_ns(ts);
    if (timeout == -2) {
        errno = EINVAL;
        return -1;
    }
    sigset_t saved;
    if (sigmask != NULL)
        sigprocmask(SIG_SETMASK, sigmask, &saved);
    int r = __wassh_poll_ns(fds, nfds, timeout);
    if (sigmask != NULL) {
        int err = errno;
        sigprocmask(SIG_SETMASK, &saved, NULL);
        errno = err;
    }
    return r;
}
