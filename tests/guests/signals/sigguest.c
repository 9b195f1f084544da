/* A guest for the signal tests: one mode per argv[1]. Every mode prints "ready"
 * (flushed) once it is where the test wants it: computing, blocked, or with its
 * handlers installed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t caught;
static volatile int zero;

static void on_signal(int sig) { caught = sig; }

static void on_signal_trap(int sig) { caught = sig / zero; }

static void ready(const char *what) {
    printf("%s\n", what);
    fflush(stdout);
}

/* Pure wasm: no host call at all once it starts. */
static void spin(void) {
    volatile unsigned long n = 0;
    for (;;)
        n++;
}

/* Polls until a handler has run; the handler's signal decides the status (read
 * once: a later signal's handler may run during printf, as it may on Linux). */
static int wait_for_handler(void) {
    while (!caught)
        poll(NULL, 0, 1000);
    int sig = caught;
    printf("caught signal %d\n", sig);
    fflush(stdout);
    return 10 + sig;
}

static int make_raw(void) {
    struct termios t;
    if (tcgetattr(0, &t) != 0) {
        perror("tcgetattr");
        return -1;
    }
    cfmakeraw(&t);
    if (tcsetattr(0, TCSAFLUSH, &t) != 0) {
        perror("tcsetattr");
        return -1;
    }
    return 0;
}

static int connect_to(const char *port) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return -1;
    }
    return fd;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    char buf[64];
    if (strcmp(mode, "spin") == 0) {
        ready("ready");
        spin();
    } else if (strcmp(mode, "poll") == 0) {
        ready("ready");
        for (;;)
            poll(NULL, 0, -1);
    } else if (strcmp(mode, "sleep") == 0) {
        ready("ready");
        sleep(1000);
        return 1;
    } else if (strcmp(mode, "read") == 0) {
        ready("ready");
        ssize_t n = read(0, buf, sizeof buf);
        printf("read returned %d\n", (int)n);
        return 1;
    } else if (strcmp(mode, "recv") == 0 && argc > 2) {
        int fd = connect_to(argv[2]);
        if (fd < 0)
            return 1;
        ready("ready");
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        printf("recv returned %d\n", (int)n);
        return 1;
    } else if (strcmp(mode, "accept") == 0) {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1) != 0) {
            perror("listen");
            return 1;
        }
        ready("ready");
        int conn = accept(fd, NULL, NULL);
        printf("accept returned %d\n", conn);
        return 1;
    } else if (strcmp(mode, "catch") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        ready("ready");
        return wait_for_handler();
    } else if (strcmp(mode, "catch-signal") == 0) {
        signal(SIGINT, on_signal);
        ready("ready");
        return wait_for_handler();
    } else if (strcmp(mode, "ignore") == 0) {
        signal(SIGINT, SIG_IGN);
        ready("ready");
        for (;;)
            poll(NULL, 0, 100);
    } else if (strcmp(mode, "block") == 0) {
        /* SIGINT stays pending while blocked; unblocking it applies the default. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigprocmask(SIG_BLOCK, &set, NULL);
        ready("ready");
        while (!caught) {
            sigset_t pending;
            sigpending(&pending);
            if (sigismember(&pending, SIGINT) == 1)
                break;
            poll(NULL, 0, 50);
        }
        ready("pending");
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        return 1;
    } else if (strcmp(mode, "handler-trap") == 0) {
        signal(SIGINT, on_signal_trap);
        ready("ready");
        return wait_for_handler();
    } else if (strcmp(mode, "raw-spin") == 0) {
        if (make_raw() != 0)
            return 1;
        ready("raw\r");
        spin();
    } else if (strcmp(mode, "raw-read") == 0) {
        if (make_raw() != 0)
            return 1;
        ready("raw\r");
        for (;;) {
            ssize_t n = read(0, buf, 1);
            if (n != 1)
                return 1;
            printf("byte %02x\r\n", (unsigned char)buf[0]);
            fflush(stdout);
            if (buf[0] == 3)
                return 7;
        }
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
