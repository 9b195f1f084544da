/* wassh SDK: signals for a process that receives them synchronously.
 *
 * The host queues signals (a terminal resize queues SIGWINCH, an expired alarm
 * SIGALRM). Handlers run here, in the guest, never from inside a host call, so
 * a handler may siglongjmp out: a blocked host call that a caught signal
 * interrupts returns EINTR, and the SDK's wrapper of that call (poll, select,
 * read, write, the sleeps; see sigwrap.h) takes the queued signals from the
 * host (wassh.signal_take) and runs their handlers before it returns EINTR or,
 * for a call Linux restarts under SA_RESTART, restarts it. A signal that
 * arrives while no call blocks is noticed after the next wrapped call: the host
 * sets a word of the table below. kill() and raise() aimed at this process
 * deliver at once. Delivery follows
 * POSIX: blocked signals stay pending until sigprocmask() unblocks them;
 * SIG_IGN ignores; the default action of SIGCHLD, SIGURG, SIGWINCH and the
 * job-control signals is to ignore, of any other signal to exit with status
 * 128 + signal number; sa_mask, SA_NODEFER, SA_RESETHAND and SA_SIGINFO are
 * honoured. A poll() or sleep that was interrupted by a delivered signal fails
 * with EINTR.
 *
 * The host acts on a signal itself when this process would die of it (its
 * default action, say Ctrl-C while the guest computes): it learns which
 * signals are caught, ignored or blocked from a small table it reads straight
 * from linear memory, found through the exported __wassh_signal_state(). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sigwrap.h"
#include "wassh_host.h"

WASSH_IMPORT("wassh", "signal_take")
int32_t __wassh_signal_take(int32_t *sig_out);
WASSH_IMPORT("wassh", "func_params")
int32_t __wassh_func_params(uint32_t index, int32_t *count_out);

/* How many parameters a handler takes, or -1 when the host cannot tell (a
 * module linked without its function table exported). wasm checks the type of
 * every indirect call, so a handler defined K&R-style, `void h()`, or cast from
 * `void (*)(void)`, would trap if called with the signal number. */
static int handler_params(void (*fn)(void)) {
    static void (*last)(void);
    static int last_count = -1;
    if (fn == last)
        return last_count;
    int32_t count = -1;
    if (__wassh_func_params((uint32_t)(uintptr_t)fn, &count) != 0)
        count = -1;
    last = fn;
    last_count = count;
    return count;
}

#undef signal
#undef bsd_signal
#undef raise

static struct sigaction actions[_NSIG];
static sigset_t blocked;
static sigset_t pending;

static int valid(int sig) { return sig > 0 && sig < _NSIG; }

/* Read by the host from another thread at any moment, so it must always be
 * current (publish() after every change of actions[] or blocked) and its
 * layout is ABI: bit (n - 1) of each mask stands for signal n. A guest without
 * this export gets the default action of every signal from the host. The host
 * writes `queued` (any thread): non-zero while it holds signals for us. */
struct __wassh_signal_state {
    uint32_t version; /* 2 */
    uint32_t size;    /* sizeof (struct __wassh_signal_state) */
    uint64_t caught;  /* a handler is installed */
    uint64_t ignored; /* SIG_IGN */
    uint64_t blocked; /* blocked: the signal would stay pending */
    uint32_t queued;  /* written by the host */
    uint32_t reserved;
};

static volatile struct __wassh_signal_state state = {2, sizeof state, 0, 0, 0, 0, 0};

__attribute__((export_name("__wassh_signal_state"))) uintptr_t __wassh_signal_state(void) {
    return (uintptr_t)&state;
}


/* bits of sigset_t: signal n is bit n - 1 */
#define WORD(sig) (((unsigned)(sig)-1) / (8 * sizeof(unsigned long)))
#define BIT(sig) (1UL << (((unsigned)(sig)-1) % (8 * sizeof(unsigned long))))

int sigemptyset(sigset_t *set) {
    memset(set, 0, sizeof *set);
    return 0;
}

int sigfillset(sigset_t *set) {
    sigemptyset(set);
    for (int s = 1; s < _NSIG; s++)
        set->__bits[WORD(s)] |= BIT(s);
    return 0;
}

int sigaddset(sigset_t *set, int sig) {
    if (!valid(sig))
        return errno = EINVAL, -1;
    set->__bits[WORD(sig)] |= BIT(sig);
    return 0;
}

int sigdelset(sigset_t *set, int sig) {
    if (!valid(sig))
        return errno = EINVAL, -1;
    set->__bits[WORD(sig)] &= ~BIT(sig);
    return 0;
}

int sigismember(const sigset_t *set, int sig) {
    if (!valid(sig))
        return errno = EINVAL, -1;
    return (set->__bits[WORD(sig)] & BIT(sig)) != 0;
}

int sigisemptyset(const sigset_t *set) {
    for (size_t i = 0; i < sizeof set->__bits / sizeof set->__bits[0]; i++)
        if (set->__bits[i])
            return 0;
    return 1;
}

static void publish(void) {
    uint64_t caught = 0, ignored = 0, masked = 0;
    for (int sig = 1; sig < _NSIG && sig <= 64; sig++) {
        uint64_t bit = (uint64_t)1 << (sig - 1);
        void (*handler)(int) = actions[sig].sa_handler;
        if (handler == SIG_IGN)
            ignored |= bit;
        else if (handler != SIG_DFL)
            caught |= bit;
        if (sigismember(&blocked, sig) == 1)
            masked |= bit;
    }
    state.caught = caught;
    state.ignored = ignored;
    state.blocked = masked;
}

static int ignored_by_default(int sig) {
    switch (sig) {
    case SIGCHLD:
    case SIGURG:
    case SIGWINCH:
    case SIGCONT:
    case SIGSTOP:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
        return 1;
    default:
        return 0;
    }
}

static void deliver_pending(void);
static unsigned delivered;     /* handlers run so far */
static int ran_without_restart; /* a handler without SA_RESTART ran (since reset) */

static void run_handler(int sig) {
    struct sigaction *act = &actions[sig];
    void (*handler)(int) = act->sa_handler;
    if (handler == SIG_IGN)
        return;
    if (handler == SIG_DFL) {
        if (ignored_by_default(sig))
            return;
        _Exit(128 + sig);
    }
    delivered++;
    int flags = act->sa_flags;
    if (!(flags & SA_RESTART))
        ran_without_restart = 1;
    void (*action)(int, siginfo_t *, void *) = act->sa_sigaction;
    sigset_t saved = blocked;
    for (size_t i = 0; i < sizeof blocked.__bits / sizeof blocked.__bits[0]; i++)
        blocked.__bits[i] |= act->sa_mask.__bits[i];
    if (!(flags & SA_NODEFER))
        sigaddset(&blocked, sig);
    if (flags & SA_RESETHAND) {
        act->sa_handler = SIG_DFL;
        act->sa_flags &= ~SA_SIGINFO;
    }
    publish();
    int params = handler_params((void (*)(void))handler);
    if (params == 0) {
        ((void (*)(void))handler)();
    } else if ((flags & SA_SIGINFO) && params != 1) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        info.si_signo = sig;
        info.si_code = SI_USER;
        info.si_pid = getpid();
        action(sig, &info, NULL);
    } else {
        handler(sig);
    }
    blocked = saved;
    publish();
    deliver_pending();
}

static void deliver(int sig) {
    if (sigismember(&blocked, sig) == 1 && sig != SIGKILL && sig != SIGSTOP) {
        sigaddset(&pending, sig);
        return;
    }
    run_handler(sig);
}

static void deliver_pending(void) {
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sigismember(&pending, sig) == 1 && sigismember(&blocked, sig) != 1) {
            sigdelset(&pending, sig);
            run_handler(sig);
        }
    }
}

/* Takes every signal the host holds and delivers it (a handler may not return:
 * siglongjmp). */
static void take_queued(void) {
    int32_t sig = 0;
    while (__wassh_signal_take(&sig) == 0 && sig != 0) {
        if (valid(sig))
            deliver(sig);
    }
}

int __wassh_signals_interrupted(void) {
    int saved = errno;
    ran_without_restart = 0;
    take_queued();
    int restart = !ran_without_restart;
    errno = saved;
    return restart;
}

void __wassh_signals_check(void) {
    if (state.queued) {
        int saved = errno;
        take_queued();
        errno = saved;
    }
}

int sigaction(int sig, const struct sigaction *restrict act, struct sigaction *restrict old) {
    if (!valid(sig) || (act != NULL && (sig == SIGKILL || sig == SIGSTOP)))
        return errno = EINVAL, -1;
    if (old != NULL)
        *old = actions[sig];
    if (act != NULL) {
        actions[sig] = *act;
        if (act->sa_handler == SIG_IGN ||
            (act->sa_handler == SIG_DFL && ignored_by_default(sig)))
            sigdelset(&pending, sig);
        publish();
    }
    return 0;
}

void (*__wassh_signal(int sig, void (*handler)(int)))(int) {
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    if (sigaction(sig, &act, &old) != 0)
        return SIG_ERR;
    return old.sa_handler;
}

int siginterrupt(int sig, int flag) {
    struct sigaction act;
    if (sigaction(sig, NULL, &act) != 0)
        return -1;
    if (flag)
        act.sa_flags &= ~SA_RESTART;
    else
        act.sa_flags |= SA_RESTART;
    return sigaction(sig, &act, NULL);
}

int __wassh_raise(int sig) {
    if (!valid(sig))
        return errno = EINVAL, -1;
    deliver(sig);
    return 0;
}

int kill(pid_t pid, int sig) {
    if (sig != 0 && !valid(sig))
        return errno = EINVAL, -1;
    if (pid != 0 && pid != -1 && pid != getpid() && pid != -getpid())
        return errno = ESRCH, -1;
    if (sig != 0)
        deliver(sig);
    return 0;
}

int killpg(pid_t pgrp, int sig) { return kill(pgrp == 0 ? 0 : -pgrp, sig); }

int sigprocmask(int how, const sigset_t *restrict set, sigset_t *restrict old) {
    if (old != NULL)
        *old = blocked;
    if (set == NULL)
        return 0;
    size_t words = sizeof blocked.__bits / sizeof blocked.__bits[0];
    switch (how) {
    case SIG_BLOCK:
        for (size_t i = 0; i < words; i++)
            blocked.__bits[i] |= set->__bits[i];
        break;
    case SIG_UNBLOCK:
        for (size_t i = 0; i < words; i++)
            blocked.__bits[i] &= ~set->__bits[i];
        break;
    case SIG_SETMASK:
        blocked = *set;
        break;
    default:
        return errno = EINVAL, -1;
    }
    sigdelset(&blocked, SIGKILL);
    sigdelset(&blocked, SIGSTOP);
    publish();
    __wassh_signals_check();
    deliver_pending();
    return 0;
}

int pthread_sigmask(int how, const sigset_t *restrict set, sigset_t *restrict old) {
    return sigprocmask(how, set, old) == 0 ? 0 : errno;
}

int sigpending(sigset_t *set) {
    *set = pending;
    return 0;
}

/* Waits (in poll) until a signal is delivered: poll() then fails with EINTR,
 * its handler run. */
static void wait_for_signal(void) {
    while (__wassh_poll(NULL, 0, -1) >= 0 || errno != EINTR)
        ;
}

int sigsuspend(const sigset_t *mask) {
    sigset_t saved = blocked;
    unsigned before = delivered;
    blocked = *mask;
    sigdelset(&blocked, SIGKILL);
    sigdelset(&blocked, SIGSTOP);
    publish();
    __wassh_signals_check();
    deliver_pending();
    if (delivered == before)
        wait_for_signal();
    blocked = saved;
    publish();
    deliver_pending();
    return errno = EINTR, -1;
}

int pause(void) {
    wait_for_signal();
    return errno = EINTR, -1;
}

int sigaltstack(const stack_t *restrict ss, stack_t *restrict old) {
    if (old != NULL) {
        memset(old, 0, sizeof *old);
        old->ss_flags = SS_DISABLE;
    }
    (void)ss;
    return 0;
}
