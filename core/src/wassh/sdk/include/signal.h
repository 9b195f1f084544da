/* wassh SDK: POSIX signal handling on top of wasi-libc's emulated signals.
 *
 * Signals never arrive asynchronously: the host queues them (a terminal resize
 * queues SIGWINCH, an expired alarm() SIGALRM) and the SDK runs the handlers
 * in the guest, never inside a host call (a handler may siglongjmp out): after
 * a blocked call they interrupt (poll, select, read, write, the sleeps), which
 * then fails with EINTR or, under SA_RESTART, restarts as on Linux, and after
 * any of those calls once a signal is queued. kill() and raise() on the own
 * process deliver at once. sigaction(), sigprocmask() (blocked
 * signals stay pending until unblocked) and the sigset functions work as usual.
 * A signal that is neither caught, ignored nor blocked takes its default action
 * at once, even while the program computes: the host stops it (Ctrl-C: 130). */
#ifndef __WASSH_SIGNAL_H
#define __WASSH_SIGNAL_H
#pragma GCC system_header

#include_next <signal.h>

#define __NEED_pid_t
#define __NEED_uid_t
#define __NEED_size_t
#define __NEED_clock_t
#define __NEED_sigset_t
#include <bits/alltypes.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SIG_BLOCK
#define SIG_BLOCK 0
#define SIG_UNBLOCK 1
#define SIG_SETMASK 2
#endif

#ifndef SA_NOCLDSTOP
#define SA_NOCLDSTOP 1
#define SA_NOCLDWAIT 2
#define SA_SIGINFO 4
#define SA_ONSTACK 0x08000000
#define SA_RESTART 0x10000000
#define SA_NODEFER 0x40000000
#define SA_RESETHAND 0x80000000
#define SA_RESTORER 0x04000000
#endif

#ifndef SI_USER
#define SI_USER 0
#endif

#ifndef si_pid /* wasi-libc leaves siginfo_t out; musl's layout */
union sigval {
    int sival_int;
    void *sival_ptr;
};

typedef struct {
    int si_signo, si_errno, si_code;
    union {
        char __pad[128 - 2 * sizeof(int) - sizeof(long)];
        struct {
            struct {
                pid_t si_pid;
                uid_t si_uid;
            } __piduid;
            union {
                union sigval si_value;
                struct {
                    int si_status;
                    clock_t si_utime, si_stime;
                } __sigchld;
            } __second;
        } __si_common;
        struct {
            void *si_addr;
        } __sigfault;
    } __si_fields;
} siginfo_t;
#define si_pid __si_fields.__si_common.__piduid.si_pid
#define si_uid __si_fields.__si_common.__piduid.si_uid
#define si_status __si_fields.__si_common.__second.__sigchld.si_status
#define si_value __si_fields.__si_common.__second.si_value
#define si_addr __si_fields.__sigfault.si_addr
#endif

#ifndef SIG_HOLD
#define SIG_HOLD ((void (*)(int))2)
#endif

struct sigaction {
    union {
        void (*sa_handler)(int);
        void (*sa_sigaction)(int, siginfo_t *, void *);
    } __sa_handler;
    sigset_t sa_mask;
    int sa_flags;
    void (*sa_restorer)(void);
};
#define sa_handler __sa_handler.sa_handler
#define sa_sigaction __sa_handler.sa_sigaction

#ifndef SS_ONSTACK
#define SS_ONSTACK 1
#define SS_DISABLE 2
#endif

typedef struct sigaltstack {
    void *ss_sp;
    int ss_flags;
    size_t ss_size;
} stack_t;

int kill(pid_t, int);
int killpg(pid_t, int);
int sigemptyset(sigset_t *);
int sigfillset(sigset_t *);
int sigaddset(sigset_t *, int);
int sigdelset(sigset_t *, int);
int sigismember(const sigset_t *, int);
int sigisemptyset(const sigset_t *);
int sigprocmask(int, const sigset_t *__restrict, sigset_t *__restrict);
int pthread_sigmask(int, const sigset_t *__restrict, sigset_t *__restrict);
int sigsuspend(const sigset_t *);
int sigaction(int, const struct sigaction *__restrict, struct sigaction *__restrict);
int sigpending(sigset_t *);
int siginterrupt(int, int);
int sigaltstack(const stack_t *__restrict, stack_t *__restrict);

/* signal() and raise() share sigaction()'s table (wasi-libc's own versions
 * would not see handlers installed with sigaction()). */
void (*__wassh_signal(int, void (*)(int)))(int);
int __wassh_raise(int);
#define signal(sig, handler) __wassh_signal((sig), (handler))
#define bsd_signal(sig, handler) __wassh_signal((sig), (handler))
#define raise(sig) __wassh_raise(sig)

#ifdef __cplusplus
}
#endif

#endif
