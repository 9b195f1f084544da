/* wassh SDK: descriptors, processes and identities.
 *
 * pipe() and dup() are host calls; between fork() and exec, dup(), dup2() and
 * closefrom() are recorded for the child instead (spawn.c, which also starts,
 * waits for and signals other programs). The process leads its own session
 * and process group. The identity is one synthetic user (see pwd.c): set*id()
 * succeed only when they change nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wasi/api.h>

#include "wassh_host.h"
#include "wassh_sdk.h"

static int fail(int err) {
    errno = err;
    return -1;
}

/* spawn.c: the child-to-be's descriptors between fork() and exec. */
int __wassh_forking(void);
int __wassh_fork_dup(int);
int __wassh_fork_dup2(int, int);
void __wassh_fork_closefrom(int);

/* -- descriptors ---------------------------------------------------------- */

int pipe2(int fds[2], int flags) {
    if (flags & ~(O_NONBLOCK | O_CLOEXEC))
        return fail(EINVAL);
    int32_t out[2];
    int32_t err = __wassh_fd_pipe(out);
    if (err != 0)
        return fail(err);
    if (flags & O_NONBLOCK) {
        for (int i = 0; i < 2; i++) {
            int fl = fcntl(out[i], F_GETFL);
            if (fl >= 0)
                fcntl(out[i], F_SETFL, fl | O_NONBLOCK);
        }
    }
    fds[0] = out[0];
    fds[1] = out[1];
    return 0;
}

int pipe(int fds[2]) { return pipe2(fds, 0); }

int dup(int fd) {
    if (__wassh_forking())
        return __wassh_fork_dup(fd);
    int32_t out;
    int32_t err = __wassh_fd_dup(fd, &out);
    return err ? fail(err) : out;
}

int dup2(int fd, int newfd) {
    if (newfd < 0)
        return fail(EBADF);
    if (__wassh_forking())
        return __wassh_fork_dup2(fd, newfd);
    int32_t err = __wassh_fd_dup2(fd, newfd);
    return err ? fail(err) : newfd;
}

int dup3(int fd, int newfd, int flags) {
    if (fd == newfd || (flags & ~O_CLOEXEC))
        return fail(EINVAL);
    return dup2(fd, newfd);
}

/* The preopened directories are the guest's only way to its files: spare them. */
static int is_preopen(int fd) {
    __wasi_prestat_t st;
    return __wasi_fd_prestat_get(fd, &st) == 0;
}

void closefrom(int lowfd) {
    if (__wassh_forking()) {
        __wassh_fork_closefrom(lowfd);
        return;
    }
    if (lowfd < 0)
        lowfd = 0;
    for (int fd = lowfd; fd < WASSH_FD_LIMIT; fd++) {
        if (!is_preopen(fd))
            (void)__wasi_fd_close(fd);
    }
}

int getdtablesize(void) { return WASSH_FD_LIMIT; }

/* -- processes ------------------------------------------------------------ */

int daemon(int nochdir, int noclose) {
    (void)nochdir, (void)noclose;
    return fail(ENOSYS); /* it needs a fork() that continues without exec */
}

pid_t getppid(void) { return 1; }
pid_t getpgrp(void) { return getpid(); }
pid_t setpgrp(void) { return 0; }
pid_t getpgid(pid_t pid) {
    if (pid != 0 && pid != getpid())
        return fail(ESRCH);
    return getpid();
}
int setpgid(pid_t pid, pid_t pgid) {
    if (pid != 0 && pid != getpid())
        return fail(ESRCH);
    if (pgid != 0 && pgid != getpid())
        return fail(EPERM);
    return 0;
}
pid_t getsid(pid_t pid) { return getpgid(pid); }
pid_t setsid(void) { return fail(EPERM); /* already a process group leader */ }
pid_t tcgetpgrp(int fd) { return isatty(fd) ? getpid() : fail(ENOTTY); }
int tcsetpgrp(int fd, pid_t pgrp) {
    if (!isatty(fd))
        return fail(ENOTTY);
    return pgrp == getpid() ? 0 : fail(EPERM);
}
int nice(int inc) {
    (void)inc;
    return 0;
}

/* -- identities ----------------------------------------------------------- */

uid_t getuid(void) { return WASSH_UID; }
uid_t geteuid(void) { return WASSH_UID; }
gid_t getgid(void) { return WASSH_GID; }
gid_t getegid(void) { return WASSH_GID; }
int issetugid(void) { return 0; }

int getgroups(int size, gid_t list[]) {
    if (size == 0)
        return 1;
    if (size < 1)
        return fail(EINVAL);
    list[0] = WASSH_GID;
    return 1;
}

int setgroups(size_t size, const gid_t *list) {
    for (size_t i = 0; i < size; i++)
        if (list[i] != WASSH_GID)
            return fail(EPERM);
    return 0;
}

static int same_uid(uid_t id) { return id == (uid_t)-1 || id == WASSH_UID ? 0 : fail(EPERM); }
static int same_gid(gid_t id) { return id == (gid_t)-1 || id == WASSH_GID ? 0 : fail(EPERM); }

int setuid(uid_t id) { return same_uid(id); }
int seteuid(uid_t id) { return same_uid(id); }
int setgid(gid_t id) { return same_gid(id); }
int setegid(gid_t id) { return same_gid(id); }
int setreuid(uid_t r, uid_t e) { return same_uid(r) || same_uid(e) ? -1 : 0; }
int setregid(gid_t r, gid_t e) { return same_gid(r) || same_gid(e) ? -1 : 0; }
int setresuid(uid_t r, uid_t e, uid_t s) {
    return same_uid(r) || same_uid(e) || same_uid(s) ? -1 : 0;
}
int setresgid(gid_t r, gid_t e, gid_t s) {
    return same_gid(r) || same_gid(e) || same_gid(s) ? -1 : 0;
}
int getresuid(uid_t *r, uid_t *e, uid_t *s) {
    *r = *e = *s = WASSH_UID;
    return 0;
}
int getresgid(gid_t *r, gid_t *e, gid_t *s) {
    *r = *e = *s = WASSH_GID;
    return 0;
}

/* Files belong to the one user: changing to that owner is a no-op. */
int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags) {
    (void)dirfd, (void)path, (void)flags;
    return same_uid(uid) || same_gid(gid) ? -1 : 0;
}
int chown(const char *path, uid_t uid, gid_t gid) { return fchownat(AT_FDCWD, path, uid, gid, 0); }
int lchown(const char *path, uid_t uid, gid_t gid) { return fchownat(AT_FDCWD, path, uid, gid, 0); }
int fchown(int fd, uid_t uid, gid_t gid) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    return same_uid(uid) || same_gid(gid) ? -1 : 0;
}

static mode_t current_umask = 022;
mode_t umask(mode_t mask) {
    mode_t old = current_umask;
    current_umask = mask & 0777;
    return old;
}

/* -- resource limits ------------------------------------------------------ */

static struct rlimit limits[RLIMIT_NLIMITS];
static int limits_ready;

static void init_limits(void) {
    if (limits_ready)
        return;
    for (int i = 0; i < RLIMIT_NLIMITS; i++)
        limits[i].rlim_cur = limits[i].rlim_max = RLIM_INFINITY;
    limits[RLIMIT_NOFILE].rlim_cur = limits[RLIMIT_NOFILE].rlim_max = WASSH_FD_LIMIT;
    limits[RLIMIT_CORE].rlim_cur = 0;
    limits_ready = 1;
}

int getrlimit(int res, struct rlimit *rl) {
    if (res < 0 || res >= RLIMIT_NLIMITS)
        return fail(EINVAL);
    init_limits();
    *rl = limits[res];
    return 0;
}

int setrlimit(int res, const struct rlimit *rl) {
    if (res < 0 || res >= RLIMIT_NLIMITS || rl->rlim_cur > rl->rlim_max)
        return fail(EINVAL);
    init_limits();
    if (rl->rlim_max > limits[res].rlim_max)
        return fail(EPERM);
    limits[res] = *rl;
    return 0;
}

int getpriority(int which, id_t who) {
    (void)which, (void)who;
    errno = 0;
    return 0;
}
int setpriority(int which, id_t who, int prio) {
    (void)which, (void)who;
    return prio >= 0 ? 0 : fail(EACCES);
}
