/* wassh SDK: <sys/wait.h>. waitpid(), wait(), wait3() and wait4() wait for the
 * programs this one started (posix_spawn, fork + exec, system, popen): a status
 * is Linux's encoding, so WIFEXITED/WEXITSTATUS and WIFSIGNALED/WTERMSIG read
 * it. WNOHANG is honoured; stopped children do not exist (WUNTRACED and
 * WCONTINUED report nothing more).
 *
 * kill() aimed at a child's pid signals that child: signal.c answers for this
 * process only, so the name is redirected here, where programs that wait for
 * children look. */
#ifndef __WASSH_SYS_WAIT_H
#define __WASSH_SYS_WAIT_H
#pragma GCC system_header

#include_next <sys/wait.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

int __wassh_kill(pid_t, int);
#undef kill
#define kill(pid, sig) __wassh_kill(pid, sig)

#ifdef __cplusplus
}
#endif

#endif
