/* wassh SDK: starting other programs. posix_spawn(), the exec family after
 * fork(), system() and popen() ask the host to run another wasm program (the
 * host's program map says which) on descriptors 0-2 the caller chose; waitpid()
 * and kill() reach it by pid.
 *
 * fork() is emulated for the one shape that needs no second address space:
 * the child prepares descriptors and execs (see <unistd.h>). Between fork()
 * and exec the SDK records close/dup2/dup/closefrom in a descriptor map of the
 * child-to-be instead of applying them, and takes back any change of signal
 * dispositions or mask when exec returns to the parent. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wasi/api.h>

#include "sigwrap.h"
#include "wassh_host.h"
#include "wassh_sdk.h"

#undef fork
#undef vfork
#undef kill

extern char **environ;

/* -- host calls ------------------------------------------------------------ */

/* What to run: strings are concatenated NUL-terminated texts (argc of them in
 * args, envc in env); fds[i] is the caller's descriptor that becomes the
 * child's descriptor i, or -1 for closed. */
struct __wassh_spawn_request {
    const char *path;
    uint32_t path_len;
    const char *args;
    uint32_t args_len;
    uint32_t argc;
    const char *env;
    uint32_t env_len;
    uint32_t envc;
    int32_t fds[3];
    uint32_t flags;
};
#define SPAWN_SEARCH 1 /* a name without '/' is looked up as execvp() would */
#define SPAWN_FORKED 2 /* after fork(): a program that cannot start is a child exiting 127 */

WASSH_IMPORT("wassh", "proc_spawn")
int32_t __wassh_proc_spawn(const struct __wassh_spawn_request *req, int32_t *pid_out);

/* options: WNOHANG (1). *pid_out is 0 when WNOHANG finds no finished child. */
WASSH_IMPORT("wassh", "proc_wait")
int32_t __wassh_proc_wait(int32_t pid, int32_t options, int32_t *status_out, int32_t *pid_out);

WASSH_IMPORT("wassh", "proc_kill")
int32_t __wassh_proc_kill(int32_t pid, int32_t sig);

/* Tells the host whether this process is between fork() and exec, so that
 * what cannot work there (exiting, opening sockets) fails with a clear line. */
WASSH_IMPORT("wassh", "proc_forking")
int32_t __wassh_proc_forking(int32_t on);

/* -- the child's descriptors ------------------------------------------------ */

/* The child-to-be's view of descriptors: an entry overrides "the same number
 * in the parent"; source -1 is closed. Later entries win. */
#define MAX_MAPPED 64
struct fdmap {
    int n;
    int fd[MAX_MAPPED];
    int source[MAX_MAPPED];
    int closed_from; /* closefrom(): every unmapped fd >= this is closed (or INT32_MAX) */
};

static void fdmap_init(struct fdmap *m) {
    m->n = 0;
    m->closed_from = INT32_MAX;
}

/* Not fcntl(F_GETFD): wasi-libc answers it for any number. */
static int parent_has(int fd) {
    __wasi_fdstat_t st;
    return fd >= 0 && __wasi_fd_fdstat_get(fd, &st) == 0;
}

/* The parent descriptor behind the child's fd, or -1 when it is closed. */
static int fdmap_source(const struct fdmap *m, int fd) {
    for (int i = m->n - 1; i >= 0; i--)
        if (m->fd[i] == fd)
            return m->source[i];
    if (fd >= m->closed_from)
        return -1;
    return parent_has(fd) ? fd : -1;
}

static int fdmap_set(struct fdmap *m, int fd, int source) {
    for (int i = 0; i < m->n; i++) {
        if (m->fd[i] == fd) {
            m->source[i] = source;
            return 0;
        }
    }
    if (m->n == MAX_MAPPED)
        return EMFILE;
    m->fd[m->n] = fd;
    m->source[m->n] = source;
    m->n++;
    return 0;
}

static int fdmap_close(struct fdmap *m, int fd) {
    if (fd < 0 || fdmap_source(m, fd) < 0)
        return EBADF;
    return fdmap_set(m, fd, -1);
}

static int fdmap_dup2(struct fdmap *m, int fd, int newfd) {
    if (newfd < 0 || newfd >= WASSH_FD_LIMIT)
        return EBADF;
    int source = fd >= 0 ? fdmap_source(m, fd) : -1;
    if (source < 0)
        return EBADF;
    return fdmap_set(m, newfd, source);
}

/* -- the request ------------------------------------------------------------ */

/* Strings joined NUL-terminated into one malloc()ed block. */
static char *join(char *const list[], uint32_t *len_out, uint32_t *count_out) {
    size_t len = 0, count = 0;
    if (list != NULL)
        for (; list[count] != NULL; count++)
            len += strlen(list[count]) + 1;
    char *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return NULL;
    char *p = buf;
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(list[i]) + 1;
        memcpy(p, list[i], n);
        p += n;
    }
    *len_out = (uint32_t)len;
    *count_out = (uint32_t)count;
    return buf;
}

/* Asks the host to start path; returns 0 and the pid, or an errno. */
static int start(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                 const struct fdmap *m, uint32_t flags) {
    if (path == NULL || *path == '\0')
        return ENOENT;
    struct __wassh_spawn_request req = {.path = path, .path_len = (uint32_t)strlen(path),
                                        .flags = flags};
    char *args = join(argv, &req.args_len, &req.argc);
    char *env = join(envp, &req.env_len, &req.envc);
    if (args == NULL || env == NULL) {
        free(args);
        free(env);
        return ENOMEM;
    }
    req.args = args;
    req.env = env;
    for (int i = 0; i < 3; i++)
        req.fds[i] = fdmap_source(m, i);
    int32_t out = 0;
    int32_t err = __wassh_proc_spawn(&req, &out);
    free(args);
    free(env);
    if (err == 0 && pid != NULL)
        *pid = out;
    return err;
}

/* -- fork() until exec ------------------------------------------------------ */

static struct {
    int active;        /* between fork() and exec */
    int refused;       /* this fork() fails (errno in err) */
    int err;
    pid_t child;       /* what fork() returns in the parent */
    jmp_buf env;       /* the caller's fork() */
    jmp_buf scratch;   /* for a fork() that fails */
    struct fdmap fds;
    struct sigaction actions[_NSIG];
    sigset_t mask;
} forking;

jmp_buf *__wassh_fork_begin(void) {
    if (forking.active) {
        /* A child that forks again would need a process of its own. */
        fprintf(stderr, "wassh: fork() in the child of fork() before exec is not supported\n");
        forking.refused = 1;
        forking.err = ENOSYS;
        return &forking.scratch;
    }
    forking.refused = 0;
    fdmap_init(&forking.fds);
    for (int sig = 1; sig < _NSIG; sig++)
        sigaction(sig, NULL, &forking.actions[sig]);
    sigprocmask(SIG_BLOCK, NULL, &forking.mask);
    forking.active = 1;
    (void)__wassh_proc_forking(1);
    return &forking.env;
}

pid_t __wassh_fork_end(int jumped) {
    if (forking.refused) {
        forking.refused = 0;
        errno = forking.err;
        return -1;
    }
    return jumped ? forking.child : 0;
}

/* Back to the parent's fork(), which now returns the child's pid. */
_Noreturn static void fork_finish(pid_t child) {
    for (int sig = 1; sig < _NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &forking.actions[sig], NULL);
    sigprocmask(SIG_SETMASK, &forking.mask, NULL);
    forking.active = 0;
    forking.child = child;
    (void)__wassh_proc_forking(0);
    longjmp(forking.env, 1);
}

/* Without the <unistd.h> macro (a program that declared fork() itself, or
 * took its address) there is no frame to return to. */
pid_t(fork)(void) {
    errno = ENOSYS;
    return -1;
}
pid_t(vfork)(void) {
    errno = ENOSYS;
    return -1;
}

/* wasi-libc's close(), plus recording between fork() and exec. */
int close(int fd) {
    if (forking.active) {
        int err = fdmap_close(&forking.fds, fd);
        return err ? (errno = err, -1) : 0;
    }
    __wasi_errno_t err = __wasi_fd_close(fd);
    return err ? (errno = err, -1) : 0;
}

int __wassh_fork_dup2(int fd, int newfd) {
    int err = fdmap_dup2(&forking.fds, fd, newfd);
    return err ? (errno = err, -1) : newfd;
}

int __wassh_fork_dup(int fd) {
    for (int n = 0; n < WASSH_FD_LIMIT; n++) {
        if (fdmap_source(&forking.fds, n) < 0)
            return __wassh_fork_dup2(fd, n);
    }
    errno = EMFILE;
    return -1;
}

void __wassh_fork_closefrom(int lowfd) {
    for (int i = 0; i < forking.fds.n; i++)
        if (forking.fds.fd[i] >= lowfd)
            forking.fds.source[i] = -1;
    if (lowfd < forking.fds.closed_from)
        forking.fds.closed_from = lowfd < 0 ? 0 : lowfd;
}

int __wassh_forking(void) { return forking.active; }

/* -- exec ------------------------------------------------------------------ */

/* exec without fork(): the program runs on this process's descriptors, and
 * this process ends with its status, which is what a caller of exec sees. */
static int exec_replace(const char *path, char *const argv[], char *const envp[],
                        uint32_t flags) {
    struct fdmap same;
    fdmap_init(&same);
    pid_t pid;
    int err = start(&pid, path, argv, envp, &same, flags);
    if (err)
        return errno = err, -1;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            _Exit(127);
    /* As after a real exec, what stdio still buffered is gone. */
    if (WIFSIGNALED(status))
        _Exit(128 + WTERMSIG(status));
    _Exit(WEXITSTATUS(status));
}

static int exec_common(const char *path, char *const argv[], char *const envp[], uint32_t flags) {
    if (!forking.active)
        return exec_replace(path, argv, envp, flags);
    pid_t pid = -1;
    int err = start(&pid, path, argv, envp, &forking.fds, flags | SPAWN_FORKED);
    if (err) {
        /* The host could not even record a failed child (EAGAIN, EFAULT...):
         * the fork() itself fails. */
        forking.refused = 1;
        forking.err = err;
    }
    fork_finish(pid);
}

int execve(const char *path, char *const argv[], char *const envp[]) {
    return exec_common(path, argv, envp, 0);
}
int execv(const char *path, char *const argv[]) { return exec_common(path, argv, environ, 0); }
int execvpe(const char *file, char *const argv[], char *const envp[]) {
    return exec_common(file, argv, envp, SPAWN_SEARCH);
}
int execvp(const char *file, char *const argv[]) {
    return exec_common(file, argv, environ, SPAWN_SEARCH);
}
int fexecve(int fd, char *const argv[], char *const envp[]) {
    (void)fd, (void)argv, (void)envp;
    errno = ENOSYS; /* a program is named, never read from a descriptor */
    return -1;
}

/* The variadic forms collect their arguments into an array (at most 256). */
#define MAX_ARGS 256
static int collect(const char *arg0, va_list ap, char *out[MAX_ARGS + 1], char ***envp) {
    int n = 0;
    for (const char *a = arg0; a != NULL; a = va_arg(ap, const char *)) {
        if (n == MAX_ARGS)
            return errno = E2BIG, -1;
        out[n++] = (char *)a;
    }
    out[n] = NULL;
    if (envp != NULL)
        *envp = va_arg(ap, char **);
    return 0;
}

int execl(const char *path, const char *arg0, ...) {
    char *argv[MAX_ARGS + 1];
    va_list ap;
    va_start(ap, arg0);
    int r = collect(arg0, ap, argv, NULL);
    va_end(ap);
    return r ? r : execv(path, argv);
}
int execlp(const char *file, const char *arg0, ...) {
    char *argv[MAX_ARGS + 1];
    va_list ap;
    va_start(ap, arg0);
    int r = collect(arg0, ap, argv, NULL);
    va_end(ap);
    return r ? r : execvp(file, argv);
}
int execle(const char *path, const char *arg0, ...) {
    char *argv[MAX_ARGS + 1];
    char **envp = NULL;
    va_list ap;
    va_start(ap, arg0);
    int r = collect(arg0, ap, argv, &envp);
    va_end(ap);
    return r ? r : execve(path, argv, envp);
}

/* -- posix_spawn ------------------------------------------------------------- */

enum { FA_CLOSE, FA_DUP2, FA_OPEN };
struct file_action {
    int op, fd, newfd, oflag;
    mode_t mode;
    char *path;
};
struct file_actions {
    int n, cap;
    struct file_action *list;
};

int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa) {
    memset(fa, 0, sizeof *fa);
    return 0;
}

int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa) {
    struct file_actions *a = fa->__actions;
    if (a != NULL) {
        for (int i = 0; i < a->n; i++)
            free(a->list[i].path);
        free(a->list);
        free(a);
    }
    fa->__actions = NULL;
    return 0;
}

static struct file_action *add_action(posix_spawn_file_actions_t *fa) {
    struct file_actions *a = fa->__actions;
    if (a == NULL) {
        a = calloc(1, sizeof *a);
        if (a == NULL)
            return NULL;
        fa->__actions = a;
    }
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 8;
        struct file_action *grown = realloc(a->list, (size_t)cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        a->list = grown;
        a->cap = cap;
    }
    struct file_action *act = &a->list[a->n++];
    memset(act, 0, sizeof *act);
    return act;
}

int posix_spawn_file_actions_addclose(posix_spawn_file_actions_t *fa, int fd) {
    if (fd < 0)
        return EBADF;
    struct file_action *act = add_action(fa);
    if (act == NULL)
        return ENOMEM;
    act->op = FA_CLOSE;
    act->fd = fd;
    return 0;
}

int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd, int newfd) {
    if (fd < 0 || newfd < 0 || newfd >= WASSH_FD_LIMIT)
        return EBADF;
    struct file_action *act = add_action(fa);
    if (act == NULL)
        return ENOMEM;
    act->op = FA_DUP2;
    act->fd = fd;
    act->newfd = newfd;
    return 0;
}

int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *restrict fa, int fd,
                                     const char *restrict path, int oflag, mode_t mode) {
    if (fd < 0 || fd >= WASSH_FD_LIMIT)
        return EBADF;
    char *copy = strdup(path);
    if (copy == NULL)
        return ENOMEM;
    struct file_action *act = add_action(fa);
    if (act == NULL) {
        free(copy);
        return ENOMEM;
    }
    act->op = FA_OPEN;
    act->fd = fd;
    act->oflag = oflag;
    act->mode = mode;
    act->path = copy;
    return 0;
}

int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *restrict fa,
                                         const char *restrict path) {
    (void)fa, (void)path;
    return ENOSYS; /* a child's working directory is the host's choice */
}
int posix_spawn_file_actions_addfchdir_np(posix_spawn_file_actions_t *fa, int fd) {
    (void)fa, (void)fd;
    return ENOSYS;
}

int posix_spawnattr_init(posix_spawnattr_t *attr) {
    memset(attr, 0, sizeof *attr);
    return 0;
}
int posix_spawnattr_destroy(posix_spawnattr_t *attr) {
    (void)attr;
    return 0;
}
int posix_spawnattr_setflags(posix_spawnattr_t *attr, short flags) {
    if ((unsigned short)flags & ~0xffu)
        return EINVAL;
    attr->__flags = flags;
    return 0;
}
int posix_spawnattr_getflags(const posix_spawnattr_t *restrict attr, short *restrict flags) {
    *flags = (short)attr->__flags;
    return 0;
}
int posix_spawnattr_setpgroup(posix_spawnattr_t *attr, pid_t pgrp) {
    attr->__pgrp = pgrp;
    return 0;
}
int posix_spawnattr_getpgroup(const posix_spawnattr_t *restrict attr, pid_t *restrict pgrp) {
    *pgrp = attr->__pgrp;
    return 0;
}
int posix_spawnattr_setsigmask(posix_spawnattr_t *restrict attr, const sigset_t *restrict mask) {
    attr->__mask = *mask;
    return 0;
}
int posix_spawnattr_getsigmask(const posix_spawnattr_t *restrict attr, sigset_t *restrict mask) {
    *mask = attr->__mask;
    return 0;
}
int posix_spawnattr_setsigdefault(posix_spawnattr_t *restrict attr, const sigset_t *restrict def) {
    attr->__def = *def;
    return 0;
}
int posix_spawnattr_getsigdefault(const posix_spawnattr_t *restrict attr, sigset_t *restrict def) {
    *def = attr->__def;
    return 0;
}
int posix_spawnattr_setschedparam(posix_spawnattr_t *restrict attr,
                                  const struct sched_param *restrict param) {
    (void)attr, (void)param;
    return 0;
}
int posix_spawnattr_getschedparam(const posix_spawnattr_t *restrict attr,
                                  struct sched_param *restrict param) {
    (void)attr;
    memset(param, 0, sizeof *param);
    return 0;
}
int posix_spawnattr_setschedpolicy(posix_spawnattr_t *attr, int policy) {
    attr->__pol = policy;
    return 0;
}
int posix_spawnattr_getschedpolicy(const posix_spawnattr_t *restrict attr, int *restrict policy) {
    *policy = attr->__pol;
    return 0;
}

static int spawn_common(pid_t *restrict pid, const char *restrict path,
                        const posix_spawn_file_actions_t *fa, char *const argv[],
                        char *const envp[], uint32_t flags) {
    struct fdmap m;
    fdmap_init(&m);
    /* Files the actions open are opened here and handed over, then closed. */
    int opened[MAX_MAPPED];
    int nopened = 0;
    int err = 0;
    const struct file_actions *a = fa != NULL ? fa->__actions : NULL;
    for (int i = 0; a != NULL && i < a->n && !err; i++) {
        const struct file_action *act = &a->list[i];
        switch (act->op) {
        case FA_CLOSE:
            /* Closing a descriptor that is not open is no error for the child. */
            if (fdmap_source(&m, act->fd) >= 0)
                err = fdmap_set(&m, act->fd, -1);
            break;
        case FA_DUP2:
            err = fdmap_dup2(&m, act->fd, act->newfd);
            break;
        case FA_OPEN: {
            if (nopened == MAX_MAPPED) {
                err = EMFILE;
                break;
            }
            int fd = open(act->path, act->oflag, act->mode);
            if (fd < 0) {
                err = errno;
                break;
            }
            opened[nopened++] = fd;
            err = fdmap_set(&m, act->fd, fd);
            break;
        }
        }
    }
    if (!err)
        err = start(pid, path, argv, envp != NULL ? envp : environ, &m, flags);
    for (int i = 0; i < nopened; i++)
        (void)__wasi_fd_close(opened[i]);
    return err;
}

int posix_spawn(pid_t *restrict pid, const char *restrict path,
                const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *restrict attr,
                char *const argv[restrict], char *const envp[restrict]) {
    (void)attr;
    return spawn_common(pid, path, fa, argv, envp, 0);
}

int posix_spawnp(pid_t *restrict pid, const char *restrict file,
                 const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *restrict attr,
                 char *const argv[restrict], char *const envp[restrict]) {
    (void)attr;
    return spawn_common(pid, file, fa, argv, envp, SPAWN_SEARCH);
}

/* -- waiting and signalling ------------------------------------------------- */

pid_t waitpid(pid_t pid, int *status, int options) {
    if (options & ~(WNOHANG | WUNTRACED | WCONTINUED))
        return errno = EINVAL, -1;
    int32_t st = 0, out = 0, err;
    WASSH_RESTARTABLE(err, __wassh_proc_wait(pid, options & WNOHANG, &st, &out));
    if (err)
        return errno = err, -1;
    if (status != NULL && out > 0)
        *status = st;
    return out;
}
pid_t wait(int *status) { return waitpid(-1, status, 0); }
pid_t wait3(int *status, int options, struct rusage *ru) {
    return wait4(-1, status, options, ru);
}
pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru) {
    if (ru != NULL)
        memset(ru, 0, sizeof *ru); /* a child's usage is not measured */
    return waitpid(pid, status, options);
}

int __wassh_kill(pid_t pid, int sig) {
    if (pid <= 0 || pid == getpid())
        return kill(pid, sig);
    if (sig < 0 || sig >= _NSIG)
        return errno = EINVAL, -1;
    int32_t err = __wassh_proc_kill(pid, sig);
    return err ? (errno = err, -1) : 0;
}

/* -- system() and popen() ----------------------------------------------------- */

int system(const char *cmd) {
    if (cmd == NULL)
        return 1; /* a command processor: the host's minimal sh -c */
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    pid_t pid;
    int err = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
    if (err)
        return errno = err, -1;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

#define MAX_POPEN 16
static struct {
    FILE *f;
    pid_t pid;
} popened[MAX_POPEN];

FILE *popen(const char *cmd, const char *mode) {
    int reading = mode[0] == 'r', slot = -1;
    if ((mode[0] != 'r' && mode[0] != 'w') || (mode[1] != '\0' && mode[1] != 'e'))
        return errno = EINVAL, NULL;
    for (int i = 0; i < MAX_POPEN && slot < 0; i++)
        if (popened[i].f == NULL)
            slot = i;
    if (slot < 0)
        return errno = EMFILE, NULL;
    int p[2];
    if (pipe(p) != 0)
        return NULL;
    int mine = reading ? p[0] : p[1], theirs = reading ? p[1] : p[0];
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int err = posix_spawn_file_actions_adddup2(&fa, theirs, reading ? 1 : 0);
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    pid_t pid;
    if (!err)
        err = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(theirs);
    FILE *f = err ? NULL : fdopen(mine, reading ? "r" : "w");
    if (f == NULL) {
        int saved = err ? err : errno;
        close(mine);
        return errno = saved, NULL;
    }
    popened[slot].f = f;
    popened[slot].pid = pid;
    return f;
}

int pclose(FILE *f) {
    for (int i = 0; i < MAX_POPEN; i++) {
        if (popened[i].f != f || f == NULL)
            continue;
        pid_t pid = popened[i].pid;
        popened[i].f = NULL;
        fclose(f);
        int status;
        while (waitpid(pid, &status, 0) < 0)
            if (errno != EINTR)
                return -1;
        return status;
    }
    return errno = ECHILD, -1;
}
