/* wassh SDK: BSD socket API for wasm32-wasi (preview1) guests.
 *
 * Wraps wasi-libc's <sys/socket.h> and adds what preview1 leaves out: the
 * socket()/connect()/bind()/... prototypes and the SO_* and MSG_* constants.
 * The functions are implemented by the wassh SDK on top of the wassh host calls. */
#ifndef __WASSH_SYS_SOCKET_H
#define __WASSH_SYS_SOCKET_H
#pragma GCC system_header

#include_next <sys/socket.h>

#ifndef PF_UNIX
#define PF_UNIX AF_UNIX
#endif
#ifndef PF_LOCAL
#define PF_LOCAL AF_UNIX
#endif
#ifndef AF_LOCAL
#define AF_LOCAL AF_UNIX
#endif

#ifndef SO_REUSEADDR
#define SO_REUSEADDR 2
#endif
#ifndef SO_ERROR
#define SO_ERROR 4
#endif
#ifndef SO_KEEPALIVE
#define SO_KEEPALIVE 9
#endif
/* Linux numbers; the host answers ENOPROTOOPT for options it does not map. */
#ifndef SO_SNDBUF
#define SO_SNDBUF 7
#endif
#ifndef SO_RCVBUF
#define SO_RCVBUF 8
#endif
#ifndef SO_LINGER
#define SO_LINGER 13
#endif
/* Linux's numbers; the value is a struct timeval, as there. */
#ifndef SO_RCVTIMEO
#define SO_RCVTIMEO 20
#endif
#ifndef SO_SNDTIMEO
#define SO_SNDTIMEO 21
#endif

/* Linux's numbers (wasi-libc's are preview1's flags, 1, 2 and 3): older code
 * writes shutdown(fd, 1) for "no more writing". The SDK's shutdown() takes
 * these and tells the host in preview1's terms. */
#undef SHUT_RD
#undef SHUT_WR
#undef SHUT_RDWR
#define SHUT_RD 0
#define SHUT_WR 1
#define SHUT_RDWR 2

#ifndef MSG_DONTWAIT
#define MSG_DONTWAIT 0x40
#endif
/* wasi-libc gives MSG_TRUNC preview1's RECV_DATA_TRUNCATED (1), the same bit
 * as MSG_PEEK; the SDK's recv(), recvfrom() and recvmsg() take it, and recvmsg()
 * reports it in msg_flags, with Linux's number. MSG_PEEK (1) and MSG_WAITALL (2)
 * stay wasi-libc's. */
#undef MSG_TRUNC
#define MSG_TRUNC 0x20
/* There is no SIGPIPE to suppress: the flag is accepted and has no effect. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* Ancillary data (musl's layout). sendmsg()/recvmsg() carry no descriptors
 * here, but code that builds control messages must compile. */
#ifndef SCM_RIGHTS
struct cmsghdr {
    socklen_t cmsg_len;
    int cmsg_level;
    int cmsg_type;
};

#define __CMSG_LEN(cmsg) (((cmsg)->cmsg_len + sizeof(long) - 1) & ~(long)(sizeof(long) - 1))
#define __CMSG_NEXT(cmsg) ((unsigned char *)(cmsg) + __CMSG_LEN(cmsg))
#define __MHDR_END(mhdr) ((unsigned char *)(mhdr)->msg_control + (mhdr)->msg_controllen)
#define CMSG_DATA(cmsg) ((unsigned char *)(((struct cmsghdr *)(cmsg)) + 1))
#define CMSG_NXTHDR(mhdr, cmsg)                                                              \
    ((cmsg)->cmsg_len < sizeof(struct cmsghdr) ||                                            \
             __CMSG_LEN(cmsg) + sizeof(struct cmsghdr) >=                                    \
                 (size_t)(__MHDR_END(mhdr) - (unsigned char *)(cmsg))                        \
         ? 0                                                                                 \
         : (struct cmsghdr *)__CMSG_NEXT(cmsg))
#define CMSG_FIRSTHDR(mhdr)                                                                  \
    ((size_t)(mhdr)->msg_controllen >= sizeof(struct cmsghdr)                                \
         ? (struct cmsghdr *)(mhdr)->msg_control                                             \
         : (struct cmsghdr *)0)
#define CMSG_ALIGN(len) (((len) + sizeof(size_t) - 1) & (size_t) ~(sizeof(size_t) - 1))
#define CMSG_SPACE(len) (CMSG_ALIGN(len) + CMSG_ALIGN(sizeof(struct cmsghdr)))
#define CMSG_LEN(len) (CMSG_ALIGN(sizeof(struct cmsghdr)) + (len))

#define SCM_RIGHTS 0x01
#define SCM_CREDENTIALS 0x02
#endif

#ifndef SOMAXCONN
#define SOMAXCONN 128
#endif

/* Option levels: Linux's, which are the protocol numbers (the host maps them). */
#ifndef SOL_IP
#define SOL_IP 0
#endif
#ifndef SOL_TCP
#define SOL_TCP 6
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef SOL_IPV6
#define SOL_IPV6 41
#endif

#ifdef __cplusplus
extern "C" {
#endif

int socket(int, int, int);
int socketpair(int, int, int, int[2]);
int connect(int, const struct sockaddr *, socklen_t);
int bind(int, const struct sockaddr *, socklen_t);
int listen(int, int);
int getsockname(int, struct sockaddr *__restrict, socklen_t *__restrict);
int getpeername(int, struct sockaddr *__restrict, socklen_t *__restrict);
int setsockopt(int, int, int, const void *, socklen_t);
ssize_t sendto(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
ssize_t recvfrom(int, void *__restrict, size_t, int, struct sockaddr *__restrict,
                 socklen_t *__restrict);
ssize_t sendmsg(int, const struct msghdr *, int);
ssize_t recvmsg(int, struct msghdr *, int);

#ifdef __cplusplus
}
#endif

#endif
