/* wassh SDK: BSD socket calls on top of the wassh host calls.
 *
 * Conventions of the host ABI: families are wasi-libc's (AF_INET 1, AF_INET6 2,
 * AF_UNIX 3), ports cross in host byte order, addresses as raw network-order
 * bytes, every call returns a WASI errno (which is also the C errno value).
 * A caught signal ends a blocked call as on Linux (sigwrap.h, man 7 signal):
 * recv, send, accept and connect restart under SA_RESTART, unless the socket has
 * a timeout for that direction (SO_RCVTIMEO, SO_SNDTIMEO): then EINTR. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <wasi/api.h>
#include <wasi/api.h>

#include "sigwrap.h"
#include "wassh_host.h"

/* Layout checks: these are what the host and ordinary C code rely on. */
_Static_assert(sizeof(sa_family_t) == 2, "sa_family_t must be 16 bits");
_Static_assert(sizeof(socklen_t) == 4, "socklen_t must be 32 bits");
_Static_assert(sizeof(struct sockaddr_in) == 16, "sockaddr_in must be 16 bytes");
_Static_assert(offsetof(struct sockaddr_in, sin_port) == 2, "sin_port offset");
_Static_assert(offsetof(struct sockaddr_in, sin_addr) == 4, "sin_addr offset");
_Static_assert(sizeof(struct sockaddr_in6) == 32, "sockaddr_in6 must be 32 bytes");
_Static_assert(offsetof(struct sockaddr_in6, sin6_port) == 2, "sin6_port offset");
_Static_assert(offsetof(struct sockaddr_in6, sin6_addr) == 8, "sin6_addr offset");
_Static_assert(offsetof(struct sockaddr_in6, sin6_scope_id) == 24, "sin6_scope_id offset");
_Static_assert(sizeof(struct sockaddr_un) == 110, "sockaddr_un must be 110 bytes");
_Static_assert(offsetof(struct sockaddr_un, sun_path) == 2, "sun_path offset");
_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == 108, "sun_path size");
_Static_assert(sizeof(struct sockaddr_storage) == 128, "sockaddr_storage must be 128 bytes");
_Static_assert(sizeof(struct sockaddr_storage) >= sizeof(struct sockaddr_un),
               "sockaddr_storage must hold sockaddr_un");
_Static_assert(sizeof(struct __wassh_gai_record) == 32, "host getaddrinfo record size");
_Static_assert(AF_INET == 1 && AF_INET6 == 2 && AF_UNIX == 3, "wassh family numbers");
_Static_assert(SOCK_STREAM == 6 && SOCK_DGRAM == 5, "wassh socket types");
_Static_assert(SOL_SOCKET == 0x7fffffff, "SOL_SOCKET");
_Static_assert(MSG_PEEK == 0x1 && MSG_WAITALL == 0x2 && MSG_TRUNC == 0x20 &&
                   MSG_DONTWAIT == 0x40,
               "the recv flags sock_recvfrom takes");

#define UNIX_PATH_MAX 108

static int fail(int err) {
    errno = err;
    return -1;
}

/* Whether a call interrupted on fd may restart: not with a timeout (option
 * `timeo`) set. Asked only after an interruption. */
static int no_timeout(int fd, int timeo) {
    int32_t ms = 0;
    return __wassh_sock_get_opt(fd, SOL_SOCKET, timeo, &ms) != 0 || ms == 0;
}

/* `rc = call`, restarted as Linux restarts socket calls (see the top). */
#define SOCKET_CALL(rc, call, fd, timeo)                                                   \
    do {                                                                                   \
        do {                                                                               \
            (rc) = (call);                                                                 \
        } while ((rc) == EINTR && __wassh_signals_interrupted() && no_timeout(fd, timeo)); \
        if ((rc) == 0)                                                                     \
            __wassh_signals_check();                                                       \
    } while (0)

/* A socket address decoded into the form the host calls take. */
struct host_addr {
    int32_t domain;
    const void *addr;
    int32_t port;
    char path[UNIX_PATH_MAX];
};

/* Returns 0 or an errno value. */
static int decode_sockaddr(const struct sockaddr *sa, socklen_t len, struct host_addr *out) {
    if (sa == NULL)
        return EFAULT;
    if (len < sizeof(sa_family_t))
        return EINVAL;
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        if (len < sizeof(struct sockaddr_in))
            return EINVAL;
        out->domain = AF_INET;
        out->addr = &sin->sin_addr;
        out->port = ntohs(sin->sin_port);
        return 0;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        if (len < sizeof(struct sockaddr_in6))
            return EINVAL;
        out->domain = AF_INET6;
        out->addr = &sin6->sin6_addr;
        out->port = ntohs(sin6->sin6_port);
        return 0;
    }
    case AF_UNIX: {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
        size_t n = len - offsetof(struct sockaddr_un, sun_path);
        if (n > UNIX_PATH_MAX)
            n = UNIX_PATH_MAX;
        memset(out->path, 0, sizeof(out->path));
        memcpy(out->path, sun->sun_path, n);
        out->domain = AF_UNIX;
        out->addr = out->path;
        out->port = UNIX_PATH_MAX;
        return 0;
    }
    default:
        return EAFNOSUPPORT;
    }
}

/* Store an address reported by the host into a caller's buffer, POSIX style:
 * truncate to *len and set *len to the full size. */
static void encode_sockaddr(int32_t family, uint16_t port, const uint8_t *addr,
                            struct sockaddr *sa, socklen_t *len) {
    struct sockaddr_storage ss;
    socklen_t need;

    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, addr, 4);
        need = sizeof(struct sockaddr_in);
    } else if (family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        memcpy(&sin6->sin6_addr, addr, 16);
        need = sizeof(struct sockaddr_in6);
    } else {
        /* AF_UNIX (unnamed) or unknown: only the family. */
        ss.ss_family = (sa_family_t)family;
        need = sizeof(sa_family_t);
    }
    if (sa != NULL && len != NULL) {
        socklen_t n = *len < need ? *len : need;
        memcpy(sa, &ss, n);
        *len = need;
    }
}

int socket(int domain, int type, int protocol) {
    int32_t fd = -1;
    int32_t rc = __wassh_sock_create(&fd, domain, type, protocol);
    if (rc != 0)
        return fail(rc);
    return fd;
}

WASSH_IMPORT("wassh", "sock_pair")
int32_t __wassh_sock_pair(int32_t domain, int32_t type, int32_t protocol, int32_t *fds_out);

int socketpair(int domain, int type, int protocol, int sv[2]) {
    int32_t fds[2];
    if (sv == NULL)
        return fail(EFAULT);
    int32_t rc = __wassh_sock_pair(domain, type, protocol, fds);
    if (rc != 0)
        return fail(rc);
    sv[0] = fds[0];
    sv[1] = fds[1];
    return 0;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    struct host_addr ha;
    int err = decode_sockaddr(addr, len, &ha);
    if (err != 0)
        return fail(err);
    int32_t rc;
    /* Restarted, the call waits for the connect under way (the host's answer to a
     * blocking connect on a connecting socket). */
    SOCKET_CALL(rc, __wassh_sock_connect(fd, ha.domain, ha.addr, ha.port), fd, SO_SNDTIMEO);
    return rc != 0 ? fail(rc) : 0;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    struct host_addr ha;
    int err = decode_sockaddr(addr, len, &ha);
    if (err != 0)
        return fail(err);
    int32_t rc = __wassh_sock_bind(fd, ha.domain, ha.addr, ha.port);
    return rc != 0 ? fail(rc) : 0;
}

int listen(int fd, int backlog) {
    if (backlog < 0)
        backlog = 0;
    int32_t rc = __wassh_sock_listen(fd, backlog);
    return rc != 0 ? fail(rc) : 0;
}

int shutdown(int fd, int how) {
    /* SHUT_RD, SHUT_WR, SHUT_RDWR (0, 1, 2) are preview1's RD, WR and both. */
    if (how < SHUT_RD || how > SHUT_RDWR)
        return fail(EINVAL);
    __wasi_errno_t rc = __wasi_sock_shutdown(fd, (__wasi_sdflags_t)(how + 1));
    return rc != 0 ? fail(rc) : 0;
}

static int get_name(int fd, struct sockaddr *restrict addr, socklen_t *restrict len,
                    int remote) {
    int32_t family = 0;
    uint16_t port = 0;
    uint8_t bytes[16];

    memset(bytes, 0, sizeof(bytes));
    int32_t rc = __wassh_sock_get_name(fd, &family, &port, bytes, remote);
    if (rc != 0)
        return rc;
    encode_sockaddr(family, port, bytes, addr, len);
    return 0;
}

int getsockname(int fd, struct sockaddr *restrict addr, socklen_t *restrict len) {
    if (addr == NULL || len == NULL)
        return fail(EFAULT);
    int err = get_name(fd, addr, len, 0);
    return err != 0 ? fail(err) : 0;
}

int getpeername(int fd, struct sockaddr *restrict addr, socklen_t *restrict len) {
    if (addr == NULL || len == NULL)
        return fail(EFAULT);
    int err = get_name(fd, addr, len, 1);
    return err != 0 ? fail(err) : 0;
}

static int do_accept(int fd, struct sockaddr *restrict addr, socklen_t *restrict len) {
    int32_t newfd = -1;

    if (addr != NULL && len == NULL)
        return fail(EFAULT);
    int32_t rc;
    SOCKET_CALL(rc, __wassh_sock_accept(fd, &newfd), fd, SO_RCVTIMEO);
    if (rc != 0)
        return fail(rc);
    if (addr != NULL) {
        /* POSIX: report the peer. Sockets without a reportable address
         * (AF_UNIX) get just a family field. */
        if (get_name(newfd, addr, len, 1) != 0)
            encode_sockaddr(AF_UNSPEC, 0, NULL, addr, len);
    }
    return newfd;
}

int accept(int fd, struct sockaddr *restrict addr, socklen_t *restrict len) {
    return do_accept(fd, addr, len);
}

int accept4(int fd, struct sockaddr *restrict addr, socklen_t *restrict len, int flags) {
    if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0)
        return fail(EINVAL);
    int newfd = do_accept(fd, addr, len);
    if (newfd < 0 || (flags & SOCK_NONBLOCK) == 0)
        return newfd;
    __wasi_fdstat_t st;
    __wasi_errno_t err = __wasi_fd_fdstat_get(newfd, &st);
    if (err == 0)
        err = __wasi_fd_fdstat_set_flags(newfd, st.fs_flags | __WASI_FDFLAGS_NONBLOCK);
    if (err != 0) {
        (void)__wasi_fd_close(newfd);
        return fail(err);
    }
    return newfd;
}

/* SO_RCVTIMEO/SO_SNDTIMEO cross as milliseconds (rounded up, so a wait is never
 * shorter): 0 for none, -1 for Linux's "do not wait" (a negative tv_sec). */
static int set_timeout(int fd, int name, const void *value, socklen_t len) {
    struct timeval tv;
    if (value == NULL)
        return fail(EFAULT);
    if (len < sizeof(tv))
        return fail(EINVAL);
    memcpy(&tv, value, sizeof(tv));
    if (tv.tv_usec < 0 || tv.tv_usec >= 1000000)
        return fail(EDOM);
    int64_t ms;
    if (tv.tv_sec < 0)
        ms = -1;
    else if (tv.tv_sec >= INT32_MAX / 1000)
        ms = 0; /* longer than the host counts: for ever, as Linux's own limit */
    else
        ms = (int64_t)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    int32_t rc = __wassh_sock_set_opt(fd, SOL_SOCKET, name, (int32_t)ms);
    return rc != 0 ? fail(rc) : 0;
}

static int get_timeout(int fd, int name, void *value, socklen_t *len) {
    struct timeval tv;
    int32_t ms = 0;
    if (*len < sizeof(tv))
        return fail(EINVAL);
    int32_t rc = __wassh_sock_get_opt(fd, SOL_SOCKET, name, &ms);
    if (rc != 0)
        return fail(rc);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    memcpy(value, &tv, sizeof(tv));
    *len = sizeof(tv);
    return 0;
}

/* SO_LINGER crosses as (seconds << 1) | on: Linux keeps the seconds of a linger
 * turned off. Seconds beyond 2^30 - 1 (or negative) are that many. */
static int set_linger(int fd, const void *value, socklen_t len) {
    struct linger l;
    if (value == NULL)
        return fail(EFAULT);
    if (len < sizeof(l))
        return fail(EINVAL);
    memcpy(&l, value, sizeof(l));
    uint32_t secs = (unsigned)l.l_linger > 0x3fffffffu ? 0x3fffffffu : (uint32_t)l.l_linger;
    int32_t rc = __wassh_sock_set_opt(fd, SOL_SOCKET, SO_LINGER,
                                      (int32_t)((secs << 1) | (l.l_onoff ? 1u : 0u)));
    return rc != 0 ? fail(rc) : 0;
}

static int get_linger(int fd, void *value, socklen_t *len) {
    struct linger l;
    int32_t v = 0;
    if (*len < sizeof(l))
        return fail(EINVAL);
    int32_t rc = __wassh_sock_get_opt(fd, SOL_SOCKET, SO_LINGER, &v);
    if (rc != 0)
        return fail(rc);
    l.l_onoff = v & 1;
    l.l_linger = (int)((uint32_t)v >> 1);
    memcpy(value, &l, sizeof(l));
    *len = sizeof(l);
    return 0;
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    int32_t v;
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO))
        return set_timeout(fd, name, value, len);
    if (level == SOL_SOCKET && name == SO_LINGER)
        return set_linger(fd, value, len);
    if (len != sizeof(int32_t))
        return fail(EINVAL);
    if (value == NULL)
        return fail(EFAULT);
    memcpy(&v, value, sizeof(v));
    int32_t rc = __wassh_sock_set_opt(fd, level, name, v);
    return rc != 0 ? fail(rc) : 0;
}

int getsockopt(int fd, int level, int name, void *restrict value, socklen_t *restrict len) {
    int32_t v = 0;
    if (value == NULL || len == NULL)
        return fail(EFAULT);
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO))
        return get_timeout(fd, name, value, len);
    if (level == SOL_SOCKET && name == SO_LINGER)
        return get_linger(fd, value, len);
    if (*len < sizeof(int32_t))
        return fail(EINVAL);
    int32_t rc = __wassh_sock_get_opt(fd, level, name, &v);
    if (rc == ENOPROTOOPT && level == SOL_SOCKET && name == SO_TYPE) {
        /* The socket type equals the WASI filetype of the descriptor. */
        __wasi_fdstat_t st;
        rc = __wasi_fd_fdstat_get(fd, &st);
        if (rc == 0) {
            if (st.fs_filetype == __WASI_FILETYPE_SOCKET_STREAM ||
                st.fs_filetype == __WASI_FILETYPE_SOCKET_DGRAM)
                v = st.fs_filetype;
            else
                rc = ENOTSOCK;
        }
    }
    if (rc != 0)
        return fail(rc);
    memcpy(value, &v, sizeof(v));
    *len = sizeof(int32_t);
    return 0;
}

static int is_datagram(int fd) {
    __wasi_fdstat_t st;
    return __wasi_fd_fdstat_get(fd, &st) == 0 && st.fs_filetype == __WASI_FILETYPE_SOCKET_DGRAM;
}

/* The flags the host's sock_recvfrom takes, with the SDK's numbers. */
#define RECV_FLAGS (MSG_PEEK | MSG_WAITALL | MSG_TRUNC | MSG_DONTWAIT)

ssize_t recvfrom(int fd, void *restrict buf, size_t len, int flags,
                 struct sockaddr *restrict from, socklen_t *restrict fromlen) {
    /* The host does the flags, MSG_WAITALL's waiting included: a loop here
     * could not wait for more under MSG_PEEK. With MSG_TRUNC the count is a
     * datagram's real length (more than len when it did not fit). */
    if ((flags & ~RECV_FLAGS) != 0)
        return fail(EINVAL);
    if (from != NULL && fromlen == NULL)
        return fail(EFAULT);
    int32_t domain = 0;
    uint8_t addr[16];
    uint16_t port = 0;
    uint32_t n = 0;

    memset(addr, 0, sizeof(addr));
    int32_t rc;
    SOCKET_CALL(rc, __wassh_sock_recvfrom(fd, buf, len, &n, flags, &domain, addr, &port), fd,
                SO_RCVTIMEO);
    if (rc != 0)
        return fail(rc);
    if (from != NULL)
        encode_sockaddr(domain, port, addr, from, fromlen);
    return (ssize_t)n;
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    return recvfrom(fd, buf, len, flags, NULL, NULL);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t tolen) {
    struct host_addr ha = {.domain = 0, .addr = NULL, .port = 0};
    if ((flags & ~MSG_DONTWAIT) != 0)
        return fail(EINVAL);
    if (to != NULL) {
        int err = decode_sockaddr(to, tolen, &ha);
        if (err != 0)
            return fail(err);
    }
    uint32_t n = 0;
    int32_t rc;
    SOCKET_CALL(rc, __wassh_sock_sendto(fd, buf, len, &n, flags, ha.domain, ha.addr, ha.port),
                fd, SO_SNDTIMEO);
    if (rc != 0)
        return fail(rc);
    return (ssize_t)n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
    return sendto(fd, buf, len, flags, NULL, 0);
}

static size_t iov_total(const struct iovec *iov, int n, int *overflow) {
    size_t total = 0;
    *overflow = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len > SIZE_MAX - total)
            *overflow = 1;
        total += iov[i].iov_len;
    }
    return total;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    int overflow;
    if (msg == NULL)
        return fail(EFAULT);
    if (msg->msg_controllen != 0)
        return fail(ENOTSUP); /* no ancillary data (fd passing) */
    if (msg->msg_iovlen < 0)
        return fail(EINVAL);
    const struct sockaddr *to = msg->msg_name;
    if (msg->msg_iovlen == 1)
        return sendto(fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len, flags, to,
                      msg->msg_namelen);
    size_t total = iov_total(msg->msg_iov, msg->msg_iovlen, &overflow);
    if (overflow)
        return fail(EINVAL);
    char *tmp = malloc(total ? total : 1);
    if (tmp == NULL)
        return fail(ENOMEM);
    size_t off = 0;
    for (int i = 0; i < msg->msg_iovlen; i++) {
        memcpy(tmp + off, msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len);
        off += msg->msg_iov[i].iov_len;
    }
    ssize_t r = sendto(fd, tmp, total, flags, to, msg->msg_namelen);
    int saved = errno;
    free(tmp);
    errno = saved;
    return r;
}

/* Whether a stream recv with these flags took its bytes without writing them
 * (MSG_TRUNC on TCP; an AF_UNIX stream, which has no name to get, ignores it). */
static int discarded(int fd, int flags, int dgram) {
    int32_t family = 0;
    uint16_t port = 0;
    uint8_t bytes[16];
    if (dgram || (flags & MSG_TRUNC) == 0)
        return 0;
    return __wassh_sock_get_name(fd, &family, &port, bytes, 0) == 0;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    int overflow;
    if (msg == NULL)
        return fail(EFAULT);
    if (msg->msg_iovlen < 0)
        return fail(EINVAL);
    if ((flags & ~RECV_FLAGS) != 0)
        return fail(EINVAL);
    struct sockaddr *from = msg->msg_name;
    socklen_t *fromlen = from != NULL ? &msg->msg_namelen : NULL;
    size_t total = iov_total(msg->msg_iov, msg->msg_iovlen, &overflow);
    if (overflow)
        return fail(EINVAL);
    /* A datagram's real length tells whether it was truncated, so the host is
     * asked for it (MSG_TRUNC) on datagram sockets; on a TCP socket MSG_TRUNC
     * discards the bytes, so there only the caller's flags go. */
    int dgram = is_datagram(fd);
    int hflags = dgram ? flags | MSG_TRUNC : flags;
    ssize_t r;
    char *tmp = NULL;
    if (msg->msg_iovlen == 1) {
        r = recvfrom(fd, msg->msg_iov[0].iov_base, total, hflags, from, fromlen);
    } else {
        tmp = malloc(total ? total : 1);
        if (tmp == NULL)
            return fail(ENOMEM);
        r = recvfrom(fd, tmp, total, hflags, from, fromlen);
    }
    int saved = errno;
    int mflags = 0;
    size_t got = r > 0 ? (size_t)r : 0;
    if (dgram && got > total) {
        mflags |= MSG_TRUNC; /* the rest of the datagram is lost */
        got = total;
        if ((flags & MSG_TRUNC) == 0)
            r = (ssize_t)total;
    }
    if (tmp != NULL) {
        size_t off = 0;
        if (got > 0 && discarded(fd, flags, dgram))
            got = 0;
        for (int i = 0; i < msg->msg_iovlen && off < got; i++) {
            size_t n = msg->msg_iov[i].iov_len;
            if (n > got - off)
                n = got - off;
            memcpy(msg->msg_iov[i].iov_base, tmp + off, n);
            off += n;
        }
        free(tmp);
    }
    if (r >= 0) {
        msg->msg_controllen = 0;
        msg->msg_flags = mflags;
    }
    errno = saved;
    return r;
}
