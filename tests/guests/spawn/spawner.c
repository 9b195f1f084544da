/* Starts copies of itself (argv[0]) as posix_spawn, fork + exec, system and
 * popen do, and prints what the parent sees: built natively with gcc and as a
 * wassh guest, both print the same lines. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static const char *self;

/* errno names, not strerror(): the texts differ between C libraries. */
static const char *errname(int err) {
    static const struct { int n; const char *s; } names[] = {
        {0, "0"}, {ECHILD, "ECHILD"}, {ESRCH, "ESRCH"}, {ENOENT, "ENOENT"},
        {EACCES, "EACCES"}, {EPERM, "EPERM"}, {ECONNREFUSED, "ECONNREFUSED"},
        {ENETUNREACH, "ENETUNREACH"}, {EINTR, "EINTR"}, {ENOSYS, "ENOSYS"},
        {EAGAIN, "EAGAIN"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].n == err)
            return names[i].s;
    return "other";
}

static void show(const char *what, int status) {
    if (WIFEXITED(status))
        printf("%s: exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: killed by %d\n", what, WTERMSIG(status));
    else
        printf("%s: status %#x\n", what, status);
    fflush(stdout);
}

static int reap(const char *what, pid_t pid) {
    int status = 0;
    pid_t got;
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (got != pid) {
        printf("%s: waitpid gave %d (%s)\n", what, (int)got, errname(errno));
        return -1;
    }
    show(what, status);
    return status;
}

/* -- what a child does ---------------------------------------------------- */

static int child(int argc, char **argv) {
    const char *mode = argv[2];
    if (strcmp(mode, "exit") == 0)
        return atoi(argv[3]);
    if (strcmp(mode, "upper") == 0) { /* stdin to stdout, upper-cased */
        char buf[256];
        ssize_t n;
        while ((n = read(0, buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] >= 'a' && buf[i] <= 'z')
                    buf[i] -= 32;
            if (write(1, buf, (size_t)n) != n)
                return 3;
        }
        return n == 0 ? 0 : 4;
    }
    if (strcmp(mode, "block") == 0) { /* until killed: stdin never ends */
        fprintf(stderr, "child blocking\n");
        char c;
        while (read(0, &c, 1) != 0)
            ;
        return 5;
    }
    if (strcmp(mode, "args") == 0) {
        for (int i = 3; i < argc; i++)
            printf("%s%s", argv[i], i + 1 < argc ? " " : "\n");
        return 0;
    }
    if (strcmp(mode, "env") == 0) {
        const char *v = getenv(argv[3]);
        printf("%s=%s\n", argv[3], v ? v : "(unset)");
        return 0;
    }
    if (strcmp(mode, "connect") == 0) { /* connect HOST PORT: 0 or the errno */
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[4]))};
        inet_pton(AF_INET, argv[3], &sin.sin_addr);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&sin, sizeof sin) != 0) {
            printf("child connect: %s\n", errname(errno));
            return 1;
        }
        printf("child connect: ok\n");
        return 0;
    }
    return 100;
}

/* -- what the parent does -------------------------------------------------- */

static pid_t spawn_self(posix_spawn_file_actions_t *fa, char *const args[]) {
    char *argv[16] = {(char *)self, "child"};
    int n = 2;
    for (int i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid;
    int err = posix_spawn(&pid, self, fa, NULL, argv, environ);
    if (err) {
        printf("posix_spawn: %s\n", errname(err));
        return -1;
    }
    return pid;
}

static void exit_statuses(void) {
    reap("exit 0", spawn_self(NULL, (char *[]){"exit", "0", NULL}));
    reap("exit 3", spawn_self(NULL, (char *[]){"exit", "3", NULL}));
    reap("exit 300", spawn_self(NULL, (char *[]){"exit", "300", NULL}));
}

static void pipes(void) {
    int in[2], out[2];
    if (pipe(in) || pipe(out))
        return perror("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    pid_t pid = spawn_self(&fa, (char *[]){"upper", NULL});
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    const char *msg = "hello through a pipe\n";
    if (write(in[1], msg, strlen(msg)) < 0)
        perror("write");
    close(in[1]);
    char buf[128];
    size_t got = 0;
    ssize_t n;
    while ((n = read(out[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(out[0]);
    printf("pipes: read %s", buf);
    reap("pipes", pid);
}

static void signals(void) {
    int in[2];
    if (pipe(in))
        return perror("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    pid_t pid = spawn_self(&fa, (char *[]){"block", NULL});
    int status = -1;
    printf("nohang: %d\n", (int)waitpid(pid, &status, WNOHANG));
    printf("kill 0: %d\n", kill(pid, 0));
    kill(pid, SIGTERM);
    reap("SIGTERM", pid);
    int r = kill(pid, SIGTERM);
    printf("kill after reaping: %d %s\n", r, errname(errno));
    pid = spawn_self(&fa, (char *[]){"block", NULL});
    kill(pid, SIGKILL);
    reap("SIGKILL", pid);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(in[1]);
    pid_t none = waitpid(-1, &status, 0);
    printf("no children: %d %s\n", (int)none, errname(errno));
    fflush(stdout);
}

static void missing(void) {
    pid_t pid;
    char *argv[] = {"missing", NULL};
    int err = posix_spawn(&pid, "/nonexistent/missing", NULL, NULL, argv, environ);
    printf("posix_spawn missing: %s\n", errname(err));
    fflush(stdout);
}

/* ssh's ProxyCommand: fork; the child closes and dup2s the pipe ends onto 0
 * and 1, restores SIGPIPE and execs; the parent talks through the pipes. */
static int open_fds(void) {
    int n = 0;
    struct stat st;
    for (int fd = 0; fd < 64; fd++)
        n += fstat(fd, &st) == 0;
    return n;
}

static void proxy_shape(void) {
    int pin[2], pout[2];
    int before = open_fds();
    if (pipe(pin) || pipe(pout))
        return perror("pipe");
    fflush(stdout);
    pid_t pid;
    if ((pid = fork()) == 0) {
        char *argv[] = {(char *)self, "child", "upper", NULL};
        close(pin[1]);
        if (pin[0] != 0) {
            if (dup2(pin[0], 0) == -1)
                perror("dup2 stdin");
            close(pin[0]);
        }
        close(pout[0]);
        if (dup2(pout[1], 1) == -1)
            perror("dup2 stdout");
        close(pout[1]);
        int nul = open("/dev/null", O_WRONLY); /* what the child opens is the child's */
        if (nul < 0 || dup2(nul, 2) < 0)
            perror("/dev/null");
        close(nul);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        perror(argv[0]);
        exit(1);
    }
    if (pid == -1) {
        printf("fork: %s\n", errname(errno));
        return;
    }
    close(pin[0]);
    close(pout[1]);
    printf("fork+exec: the parent holds %d more descriptors\n", open_fds() - before);
    const char *msg = "through fork and exec\n";
    if (write(pin[1], msg, strlen(msg)) < 0)
        perror("write");
    close(pin[1]);
    char buf[128];
    size_t got = 0;
    ssize_t n;
    while ((n = read(pout[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(pout[0]);
    printf("fork+exec: read %s", buf);
    printf("parent's SIGPIPE kept: %s\n", signal(SIGPIPE, SIG_IGN) == SIG_IGN ? "ignored" : "changed");
    reap("fork+exec", pid);
}

static void shell_forms(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "exec %s child args 'one two' \"three\" four\\ five", self);
    fflush(stdout);
    show("system", system(cmd));
    snprintf(cmd, sizeof cmd, "%s child exit 4", self);
    show("system exit 4", system(cmd));
    snprintf(cmd, sizeof cmd, "%s child args from popen", self);
    FILE *f = popen(cmd, "r");
    char line[128] = "";
    if (f == NULL || fgets(line, sizeof line, f) == NULL)
        printf("popen failed\n");
    printf("popen read: %s", line);
    show("pclose", pclose(f));
    setenv("SPAWN_VAR", "inherited", 1);
    reap("env", spawn_self(NULL, (char *[]){"env", "SPAWN_VAR", NULL}));
}

int main(int argc, char **argv) {
    self = argv[0];
    if (argc >= 3 && strcmp(argv[1], "child") == 0)
        return child(argc, argv);
    const char *what = argc > 1 ? argv[1] : "suite";
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(what, "suite") == 0) {
        exit_statuses();
        pipes();
        signals();
        missing();
        proxy_shape();
        shell_forms();
        return 0;
    }
    if (strcmp(what, "sh") == 0) { /* sh COMMAND: run it with system() */
        show("sh", system(argv[2]));
        return 0;
    }
    if (strcmp(what, "exec") == 0) { /* exec PROGRAM ARGS...: fork, exec, wait */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            execvp(argv[2], argv + 2);
            perror(argv[2]);
            exit(1);
        }
        reap("exec", pid);
        return 0;
    }
    if (strcmp(what, "replace") == 0) { /* exec without fork: becomes the program */
        fflush(stdout);
        execv(self, (char *[]){(char *)self, "child", "exit", argv[2], NULL});
        perror("execv");
        return 1;
    }
    if (strcmp(what, "forkonly") == 0) { /* a child that goes on without exec */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            printf("child running\n");
            fflush(stdout);
            _exit(0);
        }
        reap("forkonly", pid);
        return 0;
    }
    if (strcmp(what, "forkmore") == 0) { /* a child that opens a socket, forks again */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            printf("child socket: %d %s\n", s, errname(errno));
            pid_t again = fork();
            printf("child fork: %d %s\n", (int)again, errname(errno));
            fflush(stdout);
            _exit(3);
        }
        reap("forkmore", pid);
        return 0;
    }
    if (strcmp(what, "many") == 0) { /* many N: start N children before waiting */
        int n = atoi(argv[2]), started = 0, err = 0;
        for (int i = 0; i < n && !err; i++) {
            pid_t pid;
            char *cargv[] = {(char *)self, "child", "exit", "0", NULL};
            err = posix_spawn(&pid, self, NULL, NULL, cargv, environ);
            started += !err;
        }
        printf("started %d, then %s\n", started, errname(err));
        int reaped = 0, status;
        while (wait(&status) > 0)
            reaped++;
        printf("reaped %d, then %s\n", reaped, errname(errno));
        return 0;
    }
    if (strcmp(what, "connect") == 0) { /* connect HOST PORT in a child */
        reap("connect", spawn_self(NULL, (char *[]){"connect", argv[2], argv[3], NULL}));
        return 0;
    }
    return 2;
}
