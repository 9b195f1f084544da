/* Socket calls whose results Linux defines: run natively and under wassh, the
 * two outputs must be equal. One line per check: "what: result". */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case 0: return "ok";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EINVAL: return "EINVAL";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EAGAIN: return "EAGAIN";
    case ENOTCONN: return "ENOTCONN";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case EISCONN: return "EISCONN";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    default: return strerror(e);
    }
}

static void report(const char *what, int rc) {
    printf("%s: %s\n", what, rc < 0 ? ename(errno) : "ok");
}

static void sock_create(const char *what, int domain, int type, int proto) {
    int fd = socket(domain, type, proto);
    report(what, fd);
    if (fd >= 0)
        close(fd);
}

/* A listener on the loopback of the family; its port in *port. */
static int listener(int family, int *port) {
    int fd = socket(family, SOCK_STREAM, 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_loopback;
        len = sizeof(*sin6);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 8) != 0) {
        perror("listener");
        return -1;
    }
    len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static struct sockaddr_in v4(int port) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

static struct sockaddr_in6 v6(int port) {
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    sin6.sin6_addr = in6addr_loopback;
    return sin6;
}

static void wrong_family(int port4, int port6) {
    struct sockaddr_in a4 = v4(port4);
    struct sockaddr_in6 a6 = v6(port6);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    report("tcp4 connect sockaddr_in6", connect(fd, (struct sockaddr *)&a6, sizeof(a6)));
    close(fd);
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    report("tcp6 connect sockaddr_in", connect(fd, (struct sockaddr *)&a4, sizeof(a4)));
    close(fd);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    report("udp4 connect sockaddr_in6", connect(fd, (struct sockaddr *)&a6, sizeof(a6)));
    close(fd);
    fd = socket(AF_INET6, SOCK_DGRAM, 0);
    report("udp6 connect sockaddr_in", connect(fd, (struct sockaddr *)&a4, sizeof(a4)));
    close(fd);
    fd = socket(AF_INET6, SOCK_DGRAM, 0);
    report("udp6 sendto sockaddr_in", (int)sendto(fd, "x", 1, 0, (struct sockaddr *)&a4, sizeof(a4)));
    close(fd);
    fd = socket(AF_INET6, SOCK_DGRAM, 0);
    report("udp6 bind sockaddr_in", bind(fd, (struct sockaddr *)&a4, sizeof(a4)));
    close(fd);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    report("tcp4 bind sockaddr_in6", bind(fd, (struct sockaddr *)&a6, sizeof(a6)));
    close(fd);
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    report("tcp6 bind sockaddr_in", bind(fd, (struct sockaddr *)&a4, sizeof(a4)));
    close(fd);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    report("udp4 sendto sockaddr_in6", (int)sendto(fd, "x", 1, 0, (struct sockaddr *)&a6, sizeof(a6)));
    close(fd);
}

static void udp_calls(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    report("udp listen unbound", listen(fd, 1));
    struct sockaddr_in a = v4(0);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    report("udp listen bound", listen(fd, 1));
    close(fd);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    char c;
    report("udp recv unbound dontwait", (int)recv(fd, &c, 1, MSG_DONTWAIT));
    report("udp send unconnected", (int)send(fd, "x", 1, 0));
    close(fd);
}

static void int_opt(const char *what, int fd, int level, int name, int set, int value) {
    int v = value;
    socklen_t len = sizeof(v);
    char line[128];
    if (set) {
        snprintf(line, sizeof(line), "%s set %d", what, value);
        report(line, setsockopt(fd, level, name, &v, sizeof(v)));
    }
    v = -12345;
    int rc = getsockopt(fd, level, name, &v, &len);
    if (rc == 0)
        printf("%s get: %d\n", what, v);
    else
        printf("%s get: %s\n", what, ename(errno));
}

static void linger_opt(const char *what, int fd, int set, int onoff, int secs, socklen_t len) {
    struct linger l = {.l_onoff = onoff, .l_linger = secs};
    char line[128];
    if (set) {
        snprintf(line, sizeof(line), "%s set %d,%d len %d", what, onoff, secs, (int)len);
        report(line, setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, len));
    }
    socklen_t got = sizeof(l);
    memset(&l, 0x55, sizeof(l));
    if (getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &got) == 0)
        printf("%s get: %d,%d len %d\n", what, l.l_onoff, l.l_linger, (int)got);
    else
        printf("%s get: %s\n", what, ename(errno));
}

static void options(int family, int type, const char *tag, int port) {
    char what[96];
    int fd = socket(family, type, 0);
#define OPT(name, level, opt, set, value)                                   \
    do {                                                                    \
        snprintf(what, sizeof(what), "%s %s", tag, name);                   \
        int_opt(what, fd, level, opt, set, value);                          \
    } while (0)
    OPT("IP_TOS", IPPROTO_IP, IP_TOS, 1, IPTOS_LOWDELAY);
    OPT("IPV6_TCLASS", IPPROTO_IPV6, IPV6_TCLASS, 1, 0x20);
    OPT("IP_TTL", IPPROTO_IP, IP_TTL, 0, 0);
    OPT("IP_TTL", SOL_IP, IP_TTL, 1, 17);
    OPT("SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, 0, 0);
    OPT("SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, 0, 0);
    OPT("SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, 1, 65536);
    OPT("SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, 1, 32768);
    OPT("SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, 1, 1);
    OPT("SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, 1, 1);
    OPT("SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, 1, -1);
    OPT("SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, 1, 5);
    OPT("SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, 1, 1);
    if (type == SOCK_STREAM) {
        OPT("TCP_NODELAY", SOL_TCP, TCP_NODELAY, 1, 1);
        OPT("TCP_KEEPIDLE", SOL_TCP, TCP_KEEPIDLE, 1, 30);
        OPT("TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL, 1, 7);
        OPT("TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT, 1, 4);
        OPT("TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE, 1, 0);
        OPT("TCP_MAXSEG", IPPROTO_TCP, TCP_MAXSEG, 0, 0);
        OPT("TCP_MAXSEG", IPPROTO_TCP, TCP_MAXSEG, 1, 1000);
        OPT("TCP_CORK", IPPROTO_TCP, TCP_CORK, 1, 1);
        OPT("TCP_USER_TIMEOUT", IPPROTO_TCP, TCP_USER_TIMEOUT, 1, 5000);
        OPT("TCP_NOTSENT_LOWAT", IPPROTO_TCP, TCP_NOTSENT_LOWAT, 1, 16384);
        OPT("TCP_SYNCNT", IPPROTO_TCP, TCP_SYNCNT, 1, 3);
        OPT("TCP_SYNCNT", IPPROTO_TCP, TCP_SYNCNT, 1, 300);
        OPT("TCP_WINDOW_CLAMP", IPPROTO_TCP, TCP_WINDOW_CLAMP, 1, 100000);
        OPT("TCP_CORK", IPPROTO_TCP, TCP_CORK, 1, 0);
    } else {
        OPT("TCP_NODELAY", SOL_TCP, TCP_NODELAY, 1, 1);
    }
    snprintf(what, sizeof(what), "%s SO_LINGER", tag);
    linger_opt(what, fd, 0, 0, 0, 0);
    linger_opt(what, fd, 1, 1, 0, sizeof(struct linger));
    linger_opt(what, fd, 1, 1, 7, sizeof(struct linger));
    linger_opt(what, fd, 1, 1, 5, sizeof(int));
    if (port > 0) {
        /* Live: the same options on a connected socket. */
        int rc;
        if (family == AF_INET) {
            struct sockaddr_in a = v4(port);
            rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
        } else {
            struct sockaddr_in6 a = v6(port);
            rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
        }
        snprintf(what, sizeof(what), "%s connect", tag);
        report(what, rc);
        OPT("live IP_TOS", IPPROTO_IP, IP_TOS, 0, 0);
        OPT("live IPV6_TCLASS", IPPROTO_IPV6, IPV6_TCLASS, 0, 0);
        OPT("live IP_TTL", IPPROTO_IP, IP_TTL, 0, 0);
        OPT("live SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, 0, 0);
        OPT("live SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, 1, 100000);
        OPT("live IP_TOS", IPPROTO_IP, IP_TOS, 1, IPTOS_THROUGHPUT);
        OPT("live IPV6_TCLASS", IPPROTO_IPV6, IPV6_TCLASS, 1, 0x40);
        OPT("live TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT, 0, 0);
        OPT("live TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE, 0, 0);
        snprintf(what, sizeof(what), "%s live SO_LINGER", tag);
        linger_opt(what, fd, 0, 0, 0, 0);
        linger_opt(what, fd, 1, 0, 3, sizeof(struct linger));
    }
    close(fd);
#undef OPT
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sock_create("socket inet stream tcp", AF_INET, SOCK_STREAM, IPPROTO_TCP);
    sock_create("socket inet stream udp", AF_INET, SOCK_STREAM, IPPROTO_UDP);
    sock_create("socket inet dgram tcp", AF_INET, SOCK_DGRAM, IPPROTO_TCP);
    sock_create("socket inet dgram udp", AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    sock_create("socket inet6 stream udp", AF_INET6, SOCK_STREAM, IPPROTO_UDP);
    sock_create("socket inet6 stream tcp", AF_INET6, SOCK_STREAM, IPPROTO_TCP);
    sock_create("socket inet stream 99", AF_INET, SOCK_STREAM, 99);
    sock_create("socket unix stream tcp", AF_UNIX, SOCK_STREAM, IPPROTO_TCP);
    int port4 = 0, port6 = 0;
    int l4 = listener(AF_INET, &port4);
    int l6 = listener(AF_INET6, &port6);
    wrong_family(port4, port6);
    udp_calls();
    options(AF_INET, SOCK_STREAM, "tcp4", port4);
    options(AF_INET6, SOCK_STREAM, "tcp6", port6);
    options(AF_INET, SOCK_DGRAM, "udp4", 0);
    options(AF_INET6, SOCK_DGRAM, "udp6", 0);
    close(l4);
    close(l6);
    return 0;
}
