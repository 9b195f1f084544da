/* Blocking connects to a server that resets each connection as soon as it has
 * accepted it (SO_LINGER 0, then close). Linux: connect succeeds, the next recv
 * reports ECONNRESET, the one after sees the end of the stream (0), a send
 * after that EPIPE. Prints how many rounds went each way.
 * Usage: connreset PORT ROUNDS */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case ECONNRESET: return "ECONNRESET";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EPIPE: return "EPIPE";
    case ENOTCONN: return "ENOTCONN";
    default: return strerror(e);
    }
}

static void result(char *out, size_t cap, long rc) {
    if (rc < 0)
        snprintf(out, cap, "%s", ename(errno));
    else
        snprintf(out, cap, "%ld", rc);
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    int port = atoi(argv[1]), rounds = atoi(argv[2]);
    char line[320], seen[8][320];
    int counts[8] = {0}, kinds = 0;
    for (int i = 0; i < rounds; i++) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons((unsigned short)port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        char c, a[64], b[64], d[64], e[64];
        result(a, sizeof(a), connect(fd, (struct sockaddr *)&sin, sizeof(sin)));
        /* Wait for the reset itself: a recv that blocks until it arrives. */
        result(b, sizeof(b), (long)recv(fd, &c, 1, 0));
        result(d, sizeof(d), (long)recv(fd, &c, 1, 0));
        result(e, sizeof(e), (long)send(fd, "x", 1, 0));
        close(fd);
        snprintf(line, sizeof(line), "connect %s, recv %s, recv %s, send %s", a, b, d, e);
        int k;
        for (k = 0; k < kinds && strcmp(seen[k], line) != 0; k++)
            ;
        if (k == kinds && kinds < 8)
            strcpy(seen[kinds++], line);
        if (k < 8)
            counts[k]++;
    }
    for (int k = 0; k < kinds; k++)
        printf("%d x %s\n", counts[k], seen[k]);
    return 0;
}
