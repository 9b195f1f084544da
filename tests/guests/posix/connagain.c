/* connect() called again on a socket whose connect is under way or done: what
 * Linux answers (0 once for a finished non-blocking connect, then EISCONN;
 * EALREADY while under way; the failure itself once for a refused one). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case EINPROGRESS: return "EINPROGRESS";
    case EALREADY: return "EALREADY";
    case EISCONN: return "EISCONN";
    case ECONNREFUSED: return "ECONNREFUSED";
    default: return strerror(e);
    }
}

static void report(const char *what, int rc) {
    printf("%s: %s\n", what, rc == 0 ? "0" : ename(errno));
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

static int listener(int backlog, int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = loopback(0);
    socklen_t len = sizeof(sin);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    listen(fd, backlog);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    *port = ntohs(sin.sin_port);
    return fd;
}

static int nonblocking_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void wait_writable(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    poll(&p, 1, 10000);
}

int main(void) {
    int port;
    int l = listener(8, &port);
    struct sockaddr_in to = loopback(port);
    int fd = nonblocking_socket();
    report("nonblocking connect", connect(fd, (struct sockaddr *)&to, sizeof(to)));
    wait_writable(fd);
    report("again once done", connect(fd, (struct sockaddr *)&to, sizeof(to)));
    report("and again", connect(fd, (struct sockaddr *)&to, sizeof(to)));
    close(fd);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    report("blocking connect", connect(fd, (struct sockaddr *)&to, sizeof(to)));
    report("blocking again", connect(fd, (struct sockaddr *)&to, sizeof(to)));
    close(fd);

    /* refused */
    int closed = listener(1, &port);
    close(closed);
    struct sockaddr_in gone = loopback(port);
    fd = nonblocking_socket();
    report("nonblocking to a closed port", connect(fd, (struct sockaddr *)&gone, sizeof(gone)));
    wait_writable(fd);
    report("again once refused", connect(fd, (struct sockaddr *)&gone, sizeof(gone)));
    close(fd);

    /* under way: a listener whose queue is full drops the SYNs */
    int full = listener(0, &port);
    struct sockaddr_in target = loopback(port);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = nonblocking_socket();
        connect(fillers[i], (struct sockaddr *)&target, sizeof(target));
    }
    usleep(100000);
    fd = nonblocking_socket();
    report("nonblocking to a full queue", connect(fd, (struct sockaddr *)&target, sizeof(target)));
    report("again under way", connect(fd, (struct sockaddr *)&target, sizeof(target)));
    /* Blocking now, with a send timeout: the second connect waits, then gives up. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    report("blocking again under way", connect(fd, (struct sockaddr *)&target, sizeof(target)));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("it waited for the send timeout: %s\n", took >= 0.19 ? "yes" : "no");
    close(fd);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(full);
    close(l);
    return 0;
}
