/* wassh SDK: select() and pselect() on top of the SDK's poll.
 *
 * wasi-libc's own select waits in poll_oneoff itself (a caught signal's
 * handler would never run there) and refuses an exception set. These follow
 * Linux: a descriptor is readable on POLLIN, POLLHUP or POLLERR and writable on
 * POLLOUT or POLLERR; a descriptor that is not open fails the call with EBADF;
 * the exception set is accepted and comes back empty (the host has no
 * out-of-band data); select() leaves the time not waited in *timeout; a caught
 * signal fails the call with EINTR after its handler has run (never restarted). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/select.h>
#include <sys/time.h>
#include <time.h>
#include <wasi/api.h>

#include "sigwrap.h"

#define READ_SET (POLLRDNORM | POLLHUP | POLLERR)
#define WRITE_SET (POLLWRNORM | POLLERR)

static int64_t monotonic_ns(void) {
    __wasi_timestamp_t t = 0;
    (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t);
    return (int64_t)t;
}

static size_t set_size(const fd_set *set) { return set != NULL ? set->__nfds : 0; }

/* Waits for the sets (nfds already checked); the count of ready bits, or -1. */
static int wait_sets(int nfds, fd_set *restrict rd, fd_set *restrict wr, fd_set *restrict ex,
                     int64_t timeout_ns) {
    size_t most = set_size(rd) + set_size(wr) + set_size(ex);
    struct pollfd fds[most > 0 ? most : 1];
    nfds_t n = 0;
    /* one entry per descriptor, whichever sets name it */
    fd_set *sets[3] = {rd, wr, ex};
    for (int s = 0; s < 3; s++) {
        if (sets[s] == NULL)
            continue;
        for (size_t i = 0; i < sets[s]->__nfds; i++) {
            int fd = sets[s]->__fds[i];
            if (fd < 0 || fd >= nfds)
                continue;
            nfds_t j = 0;
            while (j < n && fds[j].fd != fd)
                j++;
            if (j == n)
                fds[n++] = (struct pollfd){.fd = fd, .events = 0, .revents = 0};
            if (s == 0)
                fds[j].events |= POLLRDNORM;
            else if (s == 1)
                fds[j].events |= POLLWRNORM;
        }
    }
    /* A descriptor only in the exception set is still checked for being open. */
    for (nfds_t j = 0; j < n; j++) {
        if (fds[j].events == 0) {
            __wasi_fdstat_t st;
            if (__wasi_fd_fdstat_get(fds[j].fd, &st) != 0)
                return errno = EBADF, -1;
        }
    }
    int r = __wassh_poll_ns(fds, n, timeout_ns);
    if (r < 0)
        return -1;
    for (nfds_t j = 0; j < n; j++)
        if (fds[j].revents & POLLNVAL)
            return errno = EBADF, -1;
    int count = 0;
    if (rd != NULL)
        FD_ZERO(rd);
    if (wr != NULL)
        FD_ZERO(wr);
    if (ex != NULL)
        FD_ZERO(ex);
    for (nfds_t j = 0; j < n; j++) {
        if ((fds[j].events & POLLRDNORM) && (fds[j].revents & READ_SET)) {
            FD_SET(fds[j].fd, rd);
            count++;
        }
        if ((fds[j].events & POLLWRNORM) && (fds[j].revents & WRITE_SET)) {
            FD_SET(fds[j].fd, wr);
            count++;
        }
    }
    return count;
}

int select(int nfds, fd_set *restrict rd, fd_set *restrict wr, fd_set *restrict ex,
           struct timeval *restrict timeout) {
    if (nfds < 0)
        return errno = EINVAL, -1;
    int64_t ns = -1;
    if (timeout != NULL) {
        if (timeout->tv_sec < 0 || timeout->tv_usec < 0 || timeout->tv_usec >= 1000000)
            return errno = EINVAL, -1;
        struct timespec ts = {timeout->tv_sec, (long)timeout->tv_usec * 1000};
        ns = __wassh_timespec_ns(&ts);
    }
    int64_t start = timeout != NULL ? monotonic_ns() : 0;
    int r = wait_sets(nfds, rd, wr, ex, ns);
    if (timeout != NULL) {
        /* Linux leaves the time not waited, also after EINTR */
        int err = errno;
        int64_t left = r == 0 ? 0 : ns - (monotonic_ns() - start);
        if (left < 0)
            left = 0;
        timeout->tv_sec = (time_t)(left / 1000000000);
        timeout->tv_usec = (suseconds_t)(left % 1000000000 / 1000);
        errno = err;
    }
    return r;
}

int pselect(int nfds, fd_set *restrict rd, fd_set *restrict wr, fd_set *restrict ex,
            const struct timespec *restrict timeout, const sigset_t *restrict mask) {
    if (nfds < 0)
        return errno = EINVAL, -1;
    int64_t ns = __wassh_timespec_ns(timeout);
    if (ns == -2)
        return errno = EINVAL, -1;
    sigset_t saved;
    if (mask != NULL)
        sigprocmask(SIG_SETMASK, mask, &saved);
    int r = wait_sets(nfds, rd, wr, ex, ns);
    if (mask != NULL) {
        int err = errno;
        sigprocmask(SIG_SETMASK, &saved, NULL);
        errno = err;
    }
    return r;
}
