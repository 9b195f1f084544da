/* alarm, interval timers, SIGALRM and EINTR: one mode per argv[1], built both as
 * a guest and natively (the reference). Lines are deterministic "key=value";
 * times are printed as whether they lie where Linux puts them. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static volatile sig_atomic_t jumps;
static int sock = -1; /* the handler's "I ran" byte goes here */
static sigjmp_buf env;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *errname(int e) {
    switch (e) {
    case EINTR:
        return "EINTR";
    case EINVAL:
        return "EINVAL";
    case EALREADY:
        return "EALREADY";
    case EINPROGRESS:
        return "EINPROGRESS";
    default:
        return strerror(e);
    }
}

static void on_alarm(int sig) {
    (void)sig;
    handled++;
}

/* Tells the peer the handler ran: it answers then. */
static void on_alarm_tell(int sig) {
    (void)sig;
    handled++;
    if (send(sock, "x", 1, MSG_NOSIGNAL) != 1)
        _exit(3);
}

static void on_alarm_print(int sig) {
    (void)sig;
    handled++;
    static const char line[] = "handled\n";
    if (write(1, line, sizeof line - 1) < 0)
        _exit(3);
}

/* Makes the blocked accept() find a connection (a non-blocking connect). */
static struct sockaddr_in listen_addr;
static void on_alarm_dial(int sig) {
    (void)sig;
    handled++;
    if (connect(sock, (struct sockaddr *)&listen_addr, sizeof listen_addr) != 0 &&
        errno != EINPROGRESS)
        _exit(3);
}

/* Tells the peer (on another connection) to start reading. */
static int control = -1;
static void on_alarm_control(int sig) {
    (void)sig;
    handled++;
    if (send(control, "x", 1, MSG_NOSIGNAL) != 1)
        _exit(3);
}

/* Makes room in the pipe the blocked write() waits on. */
static int pipe_rd = -1;
static void on_alarm_drain(int sig) {
    (void)sig;
    handled++;
    char buf[4096];
    if (read(pipe_rd, buf, sizeof buf) <= 0)
        _exit(3);
}

static void on_alarm_jump(int sig) {
    (void)sig;
    jumps++;
    siglongjmp(env, 1);
}

static void catch_alarm(void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
}

static void arm_ms(long ms) {
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) {
        perror("setitimer");
        exit(2);
    }
}

static int connect_port(const char *port) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        exit(2);
    }
    return fd;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* read or recv, blocked until the handler has told the peer to answer */
static int answered_read(const char *port, const char *how, int flags) {
    sock = connect_port(port);
    catch_alarm(on_alarm_tell, flags);
    arm_ms(200);
    char buf[16];
    int use_recv = strcmp(how, "recv") == 0;
    ssize_t n = use_recv ? recv(sock, buf, sizeof buf, 0) : read(sock, buf, sizeof buf);
    if (n < 0) {
        out("%s=-1 errno=%s handled=%d", how, errname(errno), (int)handled);
        n = use_recv ? recv(sock, buf, sizeof buf, 0) : read(sock, buf, sizeof buf);
        out("again=%.*s", (int)(n > 0 ? n : 0), buf);
    } else {
        out("%s=%.*s handled=%d", how, (int)n, buf, (int)handled);
    }
    return 0;
}

/* The blocked call the handler jumps out of, twice (the mask comes back each
 * time), then the socket is used again. */
static int jump_out(const char *call, const char *port, const char *echo_port) {
    catch_alarm(on_alarm_jump, 0);
    int connecting = strcmp(call, "connect") == 0;
    int fd = connecting ? -1 : connect_port(echo_port);
    char buf[16];
    sigsetjmp(env, 1);
    if (jumps < 2) {
        arm_ms(100);
        if (connecting) {
            if (fd >= 0)
                close(fd);
            struct sockaddr_in sa;
            memset(&sa, 0, sizeof sa);
            sa.sin_family = AF_INET;
            sa.sin_port = htons((unsigned short)atoi(port));
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            fd = socket(AF_INET, SOCK_STREAM, 0);
            connect(fd, (struct sockaddr *)&sa, sizeof sa);
        } else if (strcmp(call, "poll") == 0) {
            struct pollfd p = {fd, POLLIN, 0};
            poll(&p, 1, -1);
        } else if (strcmp(call, "select") == 0) {
            fd_set rd;
            FD_ZERO(&rd);
            FD_SET(fd, &rd);
            select(fd + 1, &rd, NULL, NULL, NULL);
        } else if (strcmp(call, "read") == 0) {
            if (read(fd, buf, sizeof buf) < 0)
                perror("read");
        } else if (strcmp(call, "recv") == 0) {
            if (recv(fd, buf, sizeof buf, 0) < 0)
                perror("recv");
        } else if (strcmp(call, "sleep") == 0) {
            sleep(10);
        }
        out("the call returned");
        return 1;
    }
    sigset_t mask;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    if (connecting) {
        close(fd);
        fd = connect_port(echo_port);
    }
    if (send(fd, "ping", 4, 0) != 4)
        perror("send");
    ssize_t n = recv(fd, buf, 4, MSG_WAITALL);
    out("jumps=%d blocked=%d echo=%.*s", (int)jumps, sigismember(&mask, SIGALRM),
        (int)(n > 0 ? n : 0), buf);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "sleep") == 0) {
        signal(SIGALRM, on_alarm);
        alarm(1);
        unsigned left = sleep(5);
        /* 4 (glibc rounds the time left), less on a loaded machine */
        out("sleep_left_ok=%d handled=%d", left >= 2 && left <= 4, (int)handled);
    } else if (strcmp(mode, "nanosleep") == 0) {
        catch_alarm(on_alarm, SA_RESTART); /* sleeps never restart */
        arm_ms(300);
        struct timespec req = {2, 0}, rem = {0, 0};
        int rc = nanosleep(&req, &rem);
        double left = (double)rem.tv_sec + (double)rem.tv_nsec / 1e9;
        out("rc=%d errno=%s handled=%d rem_ok=%d", rc, errname(errno), (int)handled,
            left > 1.0 && left <= 1.75);
    } else if (strcmp(mode, "default") == 0) {
        alarm(1);
        pause();
        out("pause returned");
    } else if (strcmp(mode, "default-spin") == 0) {
        alarm(1);
        for (volatile unsigned long n = 0;; n++)
            ;
    } else if (strcmp(mode, "ignore") == 0) {
        signal(SIGALRM, SIG_IGN);
        arm_ms(100);
        struct timespec req = {0, 500000000};
        int rc = nanosleep(&req, NULL);
        out("rc=%d", rc);
    } else if (strcmp(mode, "cancel") == 0) {
        unsigned a = alarm(5);
        unsigned b = alarm(0);
        unsigned c = alarm(0);
        unsigned d = ualarm(800000, 0);
        unsigned e = ualarm(0, 0);
        unsigned f = ualarm(1000000, 0);
        out("alarm=%u,%u,%u ualarm=%u ualarm_left_ok=%d ualarm_second=%d/%s", a, b, c, d,
            e > 500000 && e <= 800000, (int)f, errname(errno));
    } else if (strcmp(mode, "periodic") == 0) {
        catch_alarm(on_alarm, SA_RESTART);
        struct itimerval it = {{0, 50000}, {0, 50000}}, cur;
        double start = now();
        setitimer(ITIMER_REAL, &it, NULL);
        while (handled < 10)
            pause();
        double elapsed = now() - start;
        getitimer(ITIMER_REAL, &cur);
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
        out("ticks=%d interval=%ld value_ok=%d elapsed_ok=%d", (int)handled,
            (long)cur.it_interval.tv_usec,
            cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 &&
                cur.it_value.tv_usec <= 50000,
            elapsed >= 0.45);
    } else if (strcmp(mode, "getitimer") == 0) {
        struct itimerval it = {{0, 0}, {2, 500000}}, cur, old;
        setitimer(ITIMER_REAL, &it, NULL);
        getitimer(ITIMER_REAL, &cur);
        double v = (double)cur.it_value.tv_sec + (double)cur.it_value.tv_usec / 1e6;
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, &old);
        double o = (double)old.it_value.tv_sec + (double)old.it_value.tv_usec / 1e6;
        getitimer(ITIMER_REAL, &cur);
        struct itimerval bad = {{0, 0}, {0, 1000000}};
        int rc = setitimer(ITIMER_REAL, &bad, NULL);
        out("value_ok=%d old_ok=%d after=%ld.%06ld bad_usec=%d/%s", v > 2.0 && v <= 2.5,
            o > 2.0 && o <= v, (long)cur.it_value.tv_sec, (long)cur.it_value.tv_usec, rc,
            errname(errno));
    } else if (strcmp(mode, "virtual") == 0) {
        struct itimerval it = {{0, 0}, {1, 0}};
        int rc = setitimer(ITIMER_VIRTUAL, &it, NULL);
        out("virtual=%d/%s", rc, rc ? errname(errno) : "-");
    } else if (strcmp(mode, "answer") == 0 && argc > 3) {
        /* timers answer read|recv restart|eintr PORT */
        return answered_read(argv[4], argv[2], strcmp(argv[3], "restart") == 0 ? SA_RESTART : 0);
    } else if (strcmp(mode, "stdin") == 0 && argc > 2) {
        catch_alarm(on_alarm_print, strcmp(argv[2], "restart") == 0 ? SA_RESTART : 0);
        arm_ms(100);
        char buf[16];
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0)
            out("read=-1 errno=%s handled=%d", errname(errno), (int)handled);
        else
            out("read=%.*s handled=%d", (int)n, buf, (int)handled);
    } else if (strcmp(mode, "busy") == 0) {
        /* No call blocks: the handler runs on the way back from one. */
        catch_alarm(on_alarm, SA_RESTART);
        int fd = open("/dev/null", O_WRONLY);
        arm_ms(100);
        unsigned long calls = 0;
        while (!handled) {
            if (write(fd, "x", 1) != 1)
                return 2;
            calls++;
        }
        out("handled=%d after_calls=%d", (int)handled, calls > 0);
    } else if (strcmp(mode, "accept") == 0 && argc > 2) {
        /* accept restart|eintr: the handler dials the listener */
        int lfd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&listen_addr, 0, sizeof listen_addr);
        listen_addr.sin_family = AF_INET;
        listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof listen_addr;
        if (bind(lfd, (struct sockaddr *)&listen_addr, sizeof listen_addr) != 0 ||
            listen(lfd, 4) != 0 || getsockname(lfd, (struct sockaddr *)&listen_addr, &len) != 0)
            return 2;
        sock = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        catch_alarm(on_alarm_dial, strcmp(argv[2], "restart") == 0 ? SA_RESTART : 0);
        arm_ms(100);
        int conn = accept(lfd, NULL, NULL);
        if (conn < 0) {
            out("accept=-1 errno=%s handled=%d", errname(errno), (int)handled);
            conn = accept(lfd, NULL, NULL);
            out("again=%s", conn >= 0 ? "connection" : errname(errno));
        } else {
            out("accept=connection handled=%d", (int)handled);
        }
    } else if (strcmp(mode, "send") == 0 && argc > 3) {
        /* send restart|eintr PORT: a full connection; the handler tells the peer
         * to read, on a second one */
        int data = connect_port(argv[3]);
        control = connect_port(argv[3]);
        static char chunk[65536];
        while (send(data, chunk, sizeof chunk, MSG_DONTWAIT) > 0)
            ;
        while (send(data, chunk, 1, MSG_DONTWAIT) > 0)
            ;
        catch_alarm(on_alarm_control, strcmp(argv[2], "restart") == 0 ? SA_RESTART : 0);
        arm_ms(100);
        ssize_t n = send(data, "z", 1, 0);
        if (n < 0)
            out("send=-1 errno=%s handled=%d", errname(errno), (int)handled);
        else
            out("send=%d handled=%d", (int)n, (int)handled);
    } else if (strcmp(mode, "pipe-write") == 0 && argc > 2) {
        /* pipe-write restart|eintr: a full pipe; the handler reads some */
        int p[2];
        if (pipe(p) != 0)
            return 2;
        pipe_rd = p[0];
        fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
        static char chunk[4096];
        while (write(p[1], chunk, sizeof chunk) > 0)
            ;
        while (write(p[1], chunk, 1) > 0)
            ;
        fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) & ~O_NONBLOCK);
        catch_alarm(on_alarm_drain, strcmp(argv[2], "restart") == 0 ? SA_RESTART : 0);
        arm_ms(100);
        ssize_t n = write(p[1], "z", 1);
        if (n < 0)
            out("write=-1 errno=%s handled=%d", errname(errno), (int)handled);
        else
            out("write=%d handled=%d", (int)n, (int)handled);
    } else if (strcmp(mode, "connect") == 0 && argc > 2) {
        catch_alarm(on_alarm, 0); /* under SA_RESTART Linux would go on waiting */
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((unsigned short)atoi(argv[2]));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        double start = now();
        alarm(1);
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        int err = errno;
        double elapsed = now() - start;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* a blocking one waits on */
        int again = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        out("connect=%d errno=%s handled=%d elapsed_ok=%d again=%d/%s", rc, errname(err),
            (int)handled, elapsed >= 0.9, again, errname(errno));
        close(fd);
    } else if (strcmp(mode, "select") == 0) {
        catch_alarm(on_alarm, SA_RESTART); /* select never restarts */
        int p[2];
        if (pipe(p) != 0)
            return 2;
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(p[0], &rd);
        struct timeval tv = {5, 0};
        arm_ms(300);
        int rc = select(p[0] + 1, &rd, NULL, NULL, &tv);
        int err = errno;
        double left = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
        out("select=%d errno=%s handled=%d left_ok=%d", rc, errname(err), (int)handled,
            left > 3.0 && left <= 4.75);
    } else if (strcmp(mode, "poll") == 0) {
        catch_alarm(on_alarm, SA_RESTART); /* poll never restarts */
        arm_ms(300);
        int rc = poll(NULL, 0, 5000);
        out("poll=%d errno=%s handled=%d", rc, errname(errno), (int)handled);
    } else if (strcmp(mode, "sigsuspend") == 0) {
        catch_alarm(on_alarm, 0);
        sigset_t block, none, after;
        sigemptyset(&block);
        sigaddset(&block, SIGALRM);
        sigprocmask(SIG_BLOCK, &block, NULL);
        arm_ms(100);
        sigemptyset(&none);
        int rc = sigsuspend(&none);
        int err = errno;
        sigprocmask(SIG_BLOCK, NULL, &after);
        out("sigsuspend=%d errno=%s handled=%d blocked=%d", rc, errname(err), (int)handled,
            sigismember(&after, SIGALRM));
    } else if (strcmp(mode, "jump") == 0 && argc > 4) {
        /* timers jump CALL PORT ECHO_PORT */
        return jump_out(argv[2], argv[3], argv[4]);
    } else {
        fprintf(stderr, "usage: timers MODE ...\n");
        return 2;
    }
    return 0;
}
