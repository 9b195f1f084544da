/* wassh SDK: running signal handlers around host calls (private to the SDK).
 *
 * A host call blocked when a caught signal arrives returns EINTR; the handler
 * has not run yet (handlers never run inside a host call). The SDK function
 * that made the call then calls __wassh_signals_interrupted(), which runs the
 * handlers of every signal the host holds, and either restarts the call (it
 * returned 1: each handler that ran had SA_RESTART, and the call is one Linux
 * restarts: read, write, recv, send, accept, connect, wait) or fails with
 * EINTR (poll, select and the sleeps never restart; man 7 signal). After a
 * call that succeeded,
 * __wassh_signals_check() runs the handlers of signals that arrived meanwhile
 * (one load when there are none), as Linux runs them on the way back from a
 * system call. Both keep errno. */
#ifndef WASSH_SDK_SIGWRAP_H
#define WASSH_SDK_SIGWRAP_H

#include <errno.h> /* wasi-libc's errno numbers are the host calls' */

#include <poll.h>
#include <stdint.h>
#include <time.h>

int __wassh_signals_interrupted(void);
void __wassh_signals_check(void);

/* poll with a timeout in nanoseconds (negative: none), in poll.c. */
int __wassh_poll_ns(struct pollfd *, nfds_t, int64_t);
/* A timespec as nanoseconds: -1 for NULL, -2 when invalid (EINVAL). */
int64_t __wassh_timespec_ns(const struct timespec *);

/* `rc = call` (a host call returning a WASI errno), restarted after handlers
 * that allow it. */
#define WASSH_RESTARTABLE(rc, call)                                  \
    do {                                                             \
        do {                                                         \
            (rc) = (call);                                           \
        } while ((rc) == EINTR && __wassh_signals_interrupted());    \
        if ((rc) == 0)                                               \
            __wassh_signals_check();                                 \
    } while (0)

/* `rc = call`, never restarted (connect, poll, select, sleeps). */
#define WASSH_INTERRUPTIBLE(rc, call)                                \
    do {                                                             \
        (rc) = (call);                                               \
        if ((rc) == EINTR)                                           \
            (void)__wassh_signals_interrupted();                     \
        else if ((rc) == 0)                                          \
            __wassh_signals_check();                                 \
    } while (0)

#endif
