/* wassh SDK: declarations of the wassh host calls (private to the SDK).
 *
 * Every parameter and result is an i32 at the wasm level. Each call returns a
 * WASI errno (0 = success), except sock_getaddrinfo which may also return a
 * negative EAI_* code. Outputs are written through pointers. */
#ifndef WASSH_SDK_HOST_H
#define WASSH_SDK_HOST_H

#include <stdint.h>

#define WASSH_IMPORT(mod, name) \
    __attribute__((import_module(mod), import_name(name)))

WASSH_IMPORT("wassh_experimental", "sock_create")
int32_t __wassh_sock_create(int32_t *fd_out, int32_t domain, int32_t type, int32_t protocol);

WASSH_IMPORT("wassh_experimental", "sock_connect")
int32_t __wassh_sock_connect(int32_t fd, int32_t domain, const void *addr, int32_t port);

WASSH_IMPORT("wassh_experimental", "sock_bind")
int32_t __wassh_sock_bind(int32_t fd, int32_t domain, const void *addr, int32_t port);

WASSH_IMPORT("wassh_experimental", "sock_listen")
int32_t __wassh_sock_listen(int32_t fd, int32_t backlog);

WASSH_IMPORT("wassh_experimental", "sock_accept")
int32_t __wassh_sock_accept(int32_t fd, int32_t *newfd_out);

WASSH_IMPORT("wassh_experimental", "sock_get_name")
int32_t __wassh_sock_get_name(int32_t fd, int32_t *family_out, uint16_t *port_out,
                              uint8_t *addr_out, int32_t remote);

WASSH_IMPORT("wassh_experimental", "sock_get_opt")
int32_t __wassh_sock_get_opt(int32_t fd, int32_t level, int32_t name, int32_t *value_out);

WASSH_IMPORT("wassh_experimental", "sock_set_opt")
int32_t __wassh_sock_set_opt(int32_t fd, int32_t level, int32_t name, int32_t value);

/* flags: MSG_PEEK (1), MSG_WAITALL (2), MSG_TRUNC (0x20: a datagram's count is
 * its full length, more than len when truncated), MSG_DONTWAIT (0x40). */
WASSH_IMPORT("wassh_experimental", "sock_recvfrom")
int32_t __wassh_sock_recvfrom(int32_t fd, void *buf, uint32_t len, uint32_t *nread_out,
                              int32_t flags, int32_t *domain_out, uint8_t *addr_out,
                              uint16_t *port_out);

WASSH_IMPORT("wassh_experimental", "sock_sendto")
int32_t __wassh_sock_sendto(int32_t fd, const void *buf, uint32_t len, uint32_t *nwritten_out,
                            int32_t flags, int32_t domain, const void *addr, int32_t port);

WASSH_IMPORT("wassh_experimental", "fd_dup")
int32_t __wassh_fd_dup(int32_t fd, int32_t *newfd_out);

WASSH_IMPORT("wassh_experimental", "fd_dup2")
int32_t __wassh_fd_dup2(int32_t fd, int32_t newfd);

/* rows, cols, xpixel, ypixel */
WASSH_IMPORT("wassh_experimental", "tty_get_window_size")
int32_t __wassh_tty_get_window_size(int32_t fd, uint16_t *winsize_out);

WASSH_IMPORT("wassh_experimental", "tty_set_window_size")
int32_t __wassh_tty_set_window_size(int32_t fd, const uint16_t *winsize);

/* Asks the user (the host prints the prompt); writes at most buf_len - 1 bytes
 * and a NUL. */
WASSH_IMPORT("wassh_experimental", "readpassphrase")
int32_t __wassh_readpassphrase(const char *prompt, uint32_t prompt_len, char *buf,
                               uint32_t buf_len, int32_t echo);

/* A pipe: fds_out[0] reads what fds_out[1] writes. */
WASSH_IMPORT("wassh", "fd_pipe")
int32_t __wassh_fd_pipe(int32_t *fds_out);

/* Terminal attributes of the terminal behind fd (ENOTTY if none), in Linux
 * numbering (flags, c_cc indices, Bnnn speed codes), as musl's <termios.h>. */
struct __wassh_termios {
    uint32_t iflag;
    uint32_t oflag;
    uint32_t cflag;
    uint32_t lflag;
    uint32_t ispeed;
    uint32_t ospeed;
    uint8_t cc[32];
};

WASSH_IMPORT("wassh", "tty_get_attr")
int32_t __wassh_tty_get_attr(int32_t fd, struct __wassh_termios *out);

/* action: 0 now, 1 after output drains, 2 after draining and discarding input */
WASSH_IMPORT("wassh", "tty_set_attr")
int32_t __wassh_tty_set_attr(int32_t fd, int32_t action, const struct __wassh_termios *in);

/* One result record of sock_getaddrinfo (32 bytes). */
struct __wassh_gai_record {
    int32_t family;   /* AF_INET (1) or AF_INET6 (2) */
    int32_t socktype; /* SOCK_STREAM / SOCK_DGRAM, or 0 */
    int32_t protocol; /* -1 marks a host-reserved ("fake") address */
    uint32_t reserved;
    uint8_t addr[16]; /* network order; IPv4 uses the first 4 bytes */
};

WASSH_IMPORT("wassh", "sock_getaddrinfo")
int32_t __wassh_sock_getaddrinfo(const char *node, uint32_t node_len, int32_t family,
                                 int32_t socktype, int32_t protocol, int32_t flags,
                                 struct __wassh_gai_record *res, uint32_t res_cap,
                                 uint32_t *nres_out);

/* The canonical name the last lookup of node gave (AI_CANONNAME): 0 with the
 * name in buf (not terminated) and its length in len_out, or ENOENT when the
 * host knows none beyond node itself. */
WASSH_IMPORT("wassh", "sock_canonname")
int32_t __wassh_sock_canonname(const char *node, uint32_t node_len, char *buf, uint32_t buf_cap,
                               uint32_t *len_out);

#endif
