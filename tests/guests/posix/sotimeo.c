/* SO_RCVTIMEO and SO_SNDTIMEO as Linux applies them to recv, accept, send and
 * connect. Everything runs against listeners of this program on loopback that
 * never answer. Prints one line per check; times only as "waited enough". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case EAGAIN: return "EAGAIN";
    case EINPROGRESS: return "EINPROGRESS";
    case EDOM: return "EDOM";
    case EALREADY: return "EALREADY";
    case EINVAL: return "EINVAL";
    default: return strerror(e);
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
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
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, backlog) != 0)
        perror("listener");
    getsockname(fd, (struct sockaddr *)&sin, &len);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void set_timeo(int fd, int name, long sec, long usec) {
    struct timeval tv = {.tv_sec = sec, .tv_usec = usec};
    if (setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv)) != 0)
        printf("setsockopt: %s\n", ename(errno));
}

static void get_timeo(const char *what, int fd, int name) {
    struct timeval tv;
    socklen_t len = sizeof(tv);
    if (getsockopt(fd, SOL_SOCKET, name, &tv, &len) != 0)
        printf("%s: %s\n", what, ename(errno));
    else
        printf("%s: %ld.%06ld\n", what, (long)tv.tv_sec, (long)tv.tv_usec);
}

/* The result of a call and whether it took at least `least` seconds. */
static void timed(const char *what, long rc, double started, double least) {
    double took = now() - started;
    printf("%s: %s, waited enough %s\n", what, rc < 0 ? ename(errno) : "ok",
           took >= least ? "yes" : "no");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int port;
    int l = listener(8, &port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = loopback(port);
    get_timeo("default rcvtimeo", c, SO_RCVTIMEO);
    get_timeo("default sndtimeo", c, SO_SNDTIMEO);
    struct timeval bad = {.tv_sec = 1, .tv_usec = 1000000};
    printf("usec out of range: %s\n",
           setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof(bad)) == 0 ? "ok"
                                                                           : ename(errno));
    printf("short option: %s\n",
           setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof(int)) == 0 ? "ok" : ename(errno));
    set_timeo(c, SO_RCVTIMEO, 0, 300000);
    get_timeo("rcvtimeo", c, SO_RCVTIMEO);
    set_timeo(c, SO_SNDTIMEO, 1, 500000);
    get_timeo("sndtimeo", c, SO_SNDTIMEO);
    printf("connect: %s\n", connect(c, (struct sockaddr *)&to, sizeof(to)) == 0 ? "ok" : ename(errno));
    int a = accept(l, NULL, NULL);
    char buf[64];
    double t = now();
    timed("recv with nothing sent", (long)recv(c, buf, sizeof(buf), 0), t, 0.29);
    t = now();
    timed("read with nothing sent", (long)read(c, buf, sizeof(buf)), t, 0.29);
    t = now();
    timed("peek with nothing sent", (long)recv(c, buf, sizeof(buf), MSG_PEEK), t, 0.29);
    send(a, "hi", 2, 0);
    t = now();
    long n = (long)recv(c, buf, sizeof(buf), MSG_WAITALL);
    printf("waitall with 2 bytes sent: %ld, waited enough %s\n", n, now() - t >= 0.29 ? "yes" : "no");

    /* send: a peer that never reads; the buffers fill, then the timeout ends it. */
    set_timeo(c, SO_SNDTIMEO, 0, 200000);
    size_t big = 64 << 20;
    char *data = calloc(1, big);
    t = now();
    n = (long)send(c, data, big, 0);
    printf("send into a full pipe: %s, waited enough %s\n",
           n > 0 && (size_t)n < big ? "partial" : n < 0 ? ename(errno) : "all",
           now() - t >= 0.19 ? "yes" : "no");
    free(data);
    close(a);
    close(c);

    /* accept with nobody connecting */
    set_timeo(l, SO_RCVTIMEO, 0, 200000);
    t = now();
    timed("accept with nobody coming", accept(l, NULL, NULL), t, 0.19);
    close(l);

    /* recv on a UDP socket with no address */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    set_timeo(u, SO_RCVTIMEO, 0, 200000);
    t = now();
    timed("udp recv unbound", (long)recv(u, buf, sizeof(buf), 0), t, 0.19);
    set_timeo(u, SO_RCVTIMEO, -1, 0);
    get_timeo("negative rcvtimeo", u, SO_RCVTIMEO);
    t = now();
    timed("udp recv with a negative timeout", (long)recv(u, buf, sizeof(buf), 0), t, 0);
    close(u);

    /* connect to a listener whose queue is full: SYNs are dropped */
    int full = listener(0, &port);
    struct sockaddr_in target = loopback(port);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM, 0);
        fcntl(fillers[i], F_SETFL, O_NONBLOCK);
        connect(fillers[i], (struct sockaddr *)&target, sizeof(target));
    }
    usleep(100000);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    set_timeo(s, SO_SNDTIMEO, 0, 300000);
    t = now();
    timed("connect to a full queue", connect(s, (struct sockaddr *)&target, sizeof(target)), t,
          0.29);
    printf("connect again: %s\n",
           connect(s, (struct sockaddr *)&target, sizeof(target)) == 0 ? "ok" : ename(errno));
    close(s);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(full);
    return 0;
}
