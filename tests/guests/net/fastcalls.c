/* Every shape of the calls the compiled fast path serves, against a loopback echo
 * server, each checked and printed as `name=result`: send/recv, write/read,
 * MSG_DONTWAIT on an empty socket, a non-blocking socket, poll for read and
 * write (and a clock), a peek and a writev (which C hands to Python), a pipe,
 * a regular file, and the peer address recvfrom reports.
 *
 *   fastcalls PORT [reset]
 * With `reset`, the server resets the connection: recv reports ECONNRESET
 * once, then end of stream. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Keeps errno as the checked call left it: printing may change it. */
static int expect(const char *what, long got, long want) {
    int saved = errno;
    printf("%s=%ld\n", what, got);
    if (got != want) {
        printf("FAIL %s: got %ld, want %ld\n", what, got, want);
        exit(1);
    }
    errno = saved;
    return 0;
}

static void read_exact(int fd, char *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0) {
            printf("FAIL read_exact: %zd errno %d\n", n, errno);
            exit(1);
        }
        got += (size_t)n;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int port = atoi(argv[1]);
    int reset = argc > 2 && strcmp(argv[2], "reset") == 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return 1;
    }
    char buf[256];
    if (reset) {
        expect("send", send(fd, "R", 1, 0), 1);
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        expect("reset_recv", n, -1);
        expect("reset_errno", errno, ECONNRESET);
        expect("after_reset", recv(fd, buf, sizeof buf, 0), 0);
        return 0;
    }

    /* An empty socket: MSG_DONTWAIT and a non-blocking descriptor say EAGAIN. */
    expect("dontwait", recv(fd, buf, sizeof buf, MSG_DONTWAIT), -1);
    expect("dontwait_errno", errno, EAGAIN);
    struct pollfd p = {fd, POLLIN, 0};
    expect("poll_empty", poll(&p, 1, 30), 0);
    p.events = POLLOUT;
    expect("poll_writable", poll(&p, 1, 1000), 1);
    expect("poll_writable_revents", p.revents & POLLOUT, POLLOUT);

    /* send/recv, write/read: echoed back whole. */
    expect("send", send(fd, "hello", 5, 0), 5);
    p.events = POLLIN;
    expect("poll_readable", poll(&p, 1, 5000), 1);
    read_exact(fd, buf, 5);
    expect("recv_ok", memcmp(buf, "hello", 5), 0);
    expect("write", write(fd, "world", 5), 5);
    size_t got = 0;
    while (got < 5) {
        ssize_t n = read(fd, buf + got, 5 - got);
        if (n <= 0) return 1;
        got += (size_t)n;
    }
    expect("read_ok", memcmp(buf, "world", 5), 0);

    /* recvfrom reports the peer as dialled. */
    struct sockaddr_in from;
    socklen_t fromlen = sizeof from;
    expect("send2", send(fd, "x", 1, 0), 1);
    expect("recvfrom", recvfrom(fd, buf, 1, 0, (struct sockaddr *)&from, &fromlen), 1);
    expect("recvfrom_port", ntohs(from.sin_port), port);
    expect("recvfrom_addr", ntohl(from.sin_addr.s_addr), 0x7f000001);

    /* A peek and a two-buffer writev: answered by the Python host. */
    expect("send3", send(fd, "peek", 4, 0), 4);
    p.events = POLLIN;
    poll(&p, 1, 5000);
    expect("peek", recv(fd, buf, 4, MSG_PEEK | MSG_WAITALL), 4);
    read_exact(fd, buf, 4);
    expect("peek_ok", memcmp(buf, "peek", 4), 0);
    struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
    expect("writev", writev(fd, iov, 2), 4);
    read_exact(fd, buf, 4);
    expect("writev_ok", memcmp(buf, "abcd", 4), 0);

    /* A non-blocking descriptor. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    expect("nonblocking", recv(fd, buf, sizeof buf, 0), -1);
    expect("nonblocking_errno", errno, EAGAIN);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);

    /* A big transfer, both ways at once through the echo. */
    static char big[1 << 20], back[1 << 20];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7);
    size_t sent = 0, recvd = 0;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    while (recvd < sizeof back) {
        struct pollfd q = {fd, POLLIN | (sent < sizeof big ? POLLOUT : 0), 0};
        if (poll(&q, 1, 5000) <= 0) return 1;
        if ((q.revents & POLLOUT) && sent < sizeof big) {
            ssize_t n = send(fd, big + sent, sizeof big - sent, 0);
            if (n > 0) sent += (size_t)n;
        }
        if (q.revents & POLLIN) {
            ssize_t n = recv(fd, back + recvd, sizeof back - recvd, 0);
            if (n > 0) recvd += (size_t)n;
        }
    }
    expect("big_ok", memcmp(big, back, sizeof big), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);

    /* shutdown(SHUT_WR): the echo server closes; reads end. */
    expect("shutdown", shutdown(fd, SHUT_WR), 0);
    expect("eof", recv(fd, buf, sizeof buf, 0), 0);
    expect("send_after_shutdown", send(fd, "z", 1, 0), -1);
    expect("send_after_shutdown_errno", errno, EPIPE);
    close(fd);

    /* A pipe: write, poll, read. */
    int pfd[2];
    expect("pipe", pipe(pfd), 0);
    expect("pipe_write", write(pfd[1], "pipe!", 5), 5);
    struct pollfd pp = {pfd[0], POLLIN, 0};
    expect("pipe_poll", poll(&pp, 1, 1000), 1);
    expect("pipe_read", read(pfd[0], buf, sizeof buf), 5);
    close(pfd[1]);
    expect("pipe_eof", read(pfd[0], buf, sizeof buf), 0);
    close(pfd[0]);

    /* A bad pointer: EFAULT, nothing sent. */
    int s2 = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s2, (struct sockaddr *)&sa, sizeof sa) != 0) return 1;
    expect("efault", send(s2, (void *)0xFFFFFFF0u, 64, 0), -1);
    expect("efault_errno", errno, EFAULT);
    close(s2);
    printf("done\n");
    return 0;
}
