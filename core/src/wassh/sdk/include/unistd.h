/* wassh SDK: the POSIX process, descriptor and identity calls wasi-libc leaves
 * out. pipe() and dup() are real (host calls); the user database has one user
 * (see <pwd.h>); process groups and sessions are answered for a process that
 * leads its own.
 *
 * The exec family starts another wasm program under the same host (see
 * <spawn.h>). After fork() or vfork() the child may only prepare and exec, as
 * a ProxyCommand does: fork() returns 0 first, and until exec the "child"
 * runs in the parent with close(), dup2(), dup() and closefrom() recorded,
 * not applied, and signal dispositions and mask restored afterwards; exec
 * starts the program with those descriptors and fork() returns a second time,
 * in the parent, with the child's pid. A failed exec gives a child that exits
 * with 127. A child that does anything else before exec (exits, forks again,
 * opens a socket) is not supported: the host says so on one line. */
#ifndef __WASSH_UNISTD_H
#define __WASSH_UNISTD_H
#pragma GCC system_header

#include_next <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

int pipe(int[2]);
int pipe2(int[2], int);
int dup(int);
int dup2(int, int);
int dup3(int, int, int);

pid_t fork(void);
pid_t vfork(void);
#if defined(__wasm_exception_handling__)
/* fork() must call setjmp() in the caller's own frame: exec longjmp()s back
 * to it, which is how fork() returns in the parent. */
#include <setjmp.h>
jmp_buf *__wassh_fork_begin(void);
pid_t __wassh_fork_end(int);
#define fork() __wassh_fork_end(setjmp(*__wassh_fork_begin()))
#define vfork() fork()
#endif
int execve(const char *, char *const[], char *const[]);
int execv(const char *, char *const[]);
int execle(const char *, const char *, ...);
int execl(const char *, const char *, ...);
int execvp(const char *, char *const[]);
int execlp(const char *, const char *, ...);
int execvpe(const char *, char *const[], char *const[]);
int fexecve(int, char *const[], char *const[]);
int daemon(int, int);

pid_t getppid(void);
pid_t getpgrp(void);
pid_t getpgid(pid_t);
int setpgid(pid_t, pid_t);
pid_t setpgrp(void);
pid_t setsid(void);
pid_t getsid(pid_t);
pid_t tcgetpgrp(int);
int tcsetpgrp(int, pid_t);

uid_t getuid(void);
uid_t geteuid(void);
gid_t getgid(void);
gid_t getegid(void);
int getgroups(int, gid_t[]);
int setgroups(size_t, const gid_t *);
int setuid(uid_t);
int seteuid(uid_t);
int setgid(gid_t);
int setegid(gid_t);
int setreuid(uid_t, uid_t);
int setregid(gid_t, gid_t);
int setresuid(uid_t, uid_t, uid_t);
int setresgid(gid_t, gid_t, gid_t);
int getresuid(uid_t *, uid_t *, uid_t *);
int getresgid(gid_t *, gid_t *, gid_t *);
int issetugid(void);

int chown(const char *, uid_t, gid_t);
int fchown(int, uid_t, gid_t);
int lchown(const char *, uid_t, gid_t);
int fchownat(int, const char *, uid_t, gid_t, int);

char *ttyname(int);
int ttyname_r(int, char *, size_t);
char *getpass(const char *);

unsigned alarm(unsigned);
int pause(void);
int nice(int);
int getdtablesize(void);
void closefrom(int);

/* isatty() means "tcgetattr() works": wasi-libc's guess from the file type
 * would call a pipe or a captured stream a terminal. */
int __wassh_isatty(int);
#define isatty(fd) __wassh_isatty(fd)

#ifdef __cplusplus
}
#endif

#endif
