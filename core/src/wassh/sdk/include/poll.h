/* wassh SDK: wasi-libc's <poll.h> with poll() routed to a wrapper that accepts
 * entries with events == 0 (or only unsupported events) and negative fds: they
 * are skipped and get revents 0, as on POSIX systems. wasi-libc's own poll()
 * fails with ENOSYS on them. ppoll() is provided too. A signal the program
 * catches fails poll() and ppoll() with EINTR after its handler has run. */
#ifndef __WASSH_POLL_H
#define __WASSH_POLL_H
#pragma GCC system_header

#include_next <poll.h>

#ifndef POLLPRI
#define POLLPRI 0x200
#endif

#ifdef __cplusplus
extern "C" {
#endif

int __wassh_poll(struct pollfd *, nfds_t, int);

#ifdef __cplusplus
}
#endif

#define poll(fds, nfds, timeout) __wassh_poll((fds), (nfds), (timeout))

#endif
