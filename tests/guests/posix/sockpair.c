/* socketpair: both kinds of AF_UNIX pair, data both ways, datagram boundaries,
 * shutdown, poll, a closed end, and the families Linux refuses. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EPIPE: return "EPIPE";
    case EAGAIN: return "EAGAIN";
    default: return strerror(e);
    }
}

static void rc(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, ename(errno));
    else
        printf("%s: %ld\n", what, r);
}

static int readable(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    int sv[2];
    char buf[64];
    rc("stream pair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    int type = 0;
    socklen_t len = sizeof(type);
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &len);
    printf("type is stream: %s\n", type == SOCK_STREAM ? "yes" : "no");
    printf("readable before: %d\n", readable(sv[1]));
    rc("write ping", write(sv[0], "ping", 4));
    printf("readable after: %d\n", readable(sv[1]));
    memset(buf, 0, sizeof(buf));
    rc("read", read(sv[1], buf, sizeof(buf)));
    printf("got %s\n", buf);
    rc("send pong back", send(sv[1], "pong!", 5, 0));
    memset(buf, 0, sizeof(buf));
    rc("recv", recv(sv[0], buf, sizeof(buf), 0));
    printf("got %s\n", buf);
    rc("recv dontwait", recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT));
    rc("shutdown write", shutdown(sv[0], SHUT_WR));
    rc("read after shutdown", read(sv[1], buf, sizeof(buf)));
    close(sv[1]);
    rc("write to a closed peer", write(sv[0], "x", 1));
    close(sv[0]);

    rc("dgram pair", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    rc("send one", send(sv[0], "one", 3, 0));
    rc("send three", send(sv[0], "three", 5, 0));
    rc("recv first into 2", recv(sv[1], buf, 2, 0));
    rc("recv second", recv(sv[1], buf, sizeof(buf), 0));
    rc("recv nothing", recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT));
    close(sv[0]);
    close(sv[1]);

    rc("inet pair", socketpair(AF_INET, SOCK_STREAM, 0, sv));
    rc("inet6 pair", socketpair(AF_INET6, SOCK_DGRAM, 0, sv));
    rc("unix pair with udp", socketpair(AF_UNIX, SOCK_STREAM, 17, sv));
    rc("family 77 pair", socketpair(77, SOCK_STREAM, 0, sv));
    return 0;
}
