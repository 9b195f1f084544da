/* conform: the guest of wassh.testing's transport conformance cases.
 *
 * Built with the wassh SDK (wassh.cc) for wasm32-wasi. One mode per argv[1];
 * results are printed one per line as "word value..." for the host to check;
 * an errno is printed by name (ECONNREFUSED), 0 as OK. TOKEN names this run's
 * connections at the kit's peer server: each connection starts with a line
 * "TOKEN MODE [ARG]\n" saying how the peer should behave (see _peer.py).
 *
 * Stream client (HOST PORT: what to dial):
 *   echo HOST PORT TOKEN             sizes 1..300000 echoed, read/write, writev,
 *                                    MSG_PEEK, readv; peer and local names
 *   many HOST PORT TOKEN N           N connections at once, one line each
 *   halfclose HOST PORT TOKEN MS     send, shutdown(SHUT_WR), write again, read
 *                                    until EOF or MS milliseconds of silence
 *   nbconnect HOST PORT TOKEN|-      non-blocking connect, poll POLLOUT, SO_ERROR
 *                                    twice; with "-" (no peer) a recv after it
 *   connect HOST PORT                blocking connect; if it succeeds, a recv
 *   opts HOST PORT TOKEN             socket options before and after connect
 *   poll HOST PORT TOKEN             readiness: idle, timeout, writable,
 *                                    readable, after peek, drained, peer closed
 *   big HOST PORT TOKEN N            N bytes each way at once, every byte checked
 *   download HOST PORT TOKEN N       the peer sends N bytes and closes
 *   upload HOST PORT TOKEN N         send N bytes, close at once
 *   reset HOST PORT TOKEN            the peer resets the connection (RST)
 *   stall HOST PORT TOKEN            block in recv on a peer that never sends
 *   hold HOST PORT TOKEN LIMIT       send to a peer that does not read until full (or
 *                                    LIMIT bytes went), then block in send
 * Stream server:
 *   serve ADDR                       listen on ADDR:0 ("port P"), accept one,
 *                                    echo until EOF, then "[eof after N]" and close
 *   serve-many ADDR K                non-blocking listener, K clients at once
 *   serve-stall ADDR                 listen, block in accept
 *   bind-busy ADDR PORT              bind a port the host holds
 * Datagrams:
 *   udp-serve ADDR N                 bind ADDR:0 ("port P"), echo N datagrams
 *   udp-client HOST PORT             to the host's UDP echo: auto-bind, peek,
 *                                    truncation, connect, send/recv, read/write
 *   udp-refused HOST PORT            connected to a closed port: send, then recv
 *   udp-stall ADDR                   bind ("port P"), block in recvfrom
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

#define PERIOD 65521 /* prime: no buffer size lines up with it */
#define CHUNK 65536

static uint8_t block[PERIOD];
static uint8_t inbuf[CHUNK], outbuf[CHUNK];

/* The byte stream both sides agree on: PATTERN[i] = block[i % PERIOD]. */
static void make_pattern(void) {
  uint32_t x = 0x9E3779B9u;
  for (int i = 0; i < PERIOD; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    block[i] = (uint8_t)(x >> 24);
  }
}

static void fill(uint8_t *p, uint64_t offset, size_t n) {
  size_t at = (size_t)(offset % PERIOD);
  for (size_t i = 0; i < n; i++) {
    p[i] = block[at];
    if (++at == PERIOD) at = 0;
  }
}

static uint64_t mismatches(const uint8_t *p, uint64_t offset, size_t n) {
  size_t at = (size_t)(offset % PERIOD);
  uint64_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    bad += p[i] != block[at];
    if (++at == PERIOD) at = 0;
  }
  return bad;
}

static const char *ename(int e) {
  static char other[16];
  switch (e) {
    case 0: return "OK";
    case EAGAIN: return "EAGAIN";
    case EINPROGRESS: return "EINPROGRESS";
    case EALREADY: return "EALREADY";
    case EISCONN: return "EISCONN";
    case ENOTCONN: return "ENOTCONN";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ECONNABORTED: return "ECONNABORTED";
    case ENETUNREACH: return "ENETUNREACH";
    case ENETDOWN: return "ENETDOWN";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EPIPE: return "EPIPE";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EMSGSIZE: return "EMSGSIZE";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENOSYS: return "ENOSYS";
    case ECANCELED: return "ECANCELED";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    default: snprintf(other, sizeof other, "E%d", e); return other;
  }
}

static const char *err(void) { return ename(errno); }

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_nonblock(int fd, int on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -1;
  return fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

static int make_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    *len = sizeof *sin;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    *len = sizeof *sin6;
    return AF_INET6;
  }
  printf("bad-address %s\n", host);
  exit(2);
}

static const char *show(const struct sockaddr_storage *ss, char *out, size_t n) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    port = ntohs(sin->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    port = ntohs(sin6->sin6_port);
  }
  snprintf(out, n, "%s %d", host, port);
  return out;
}

static void print_name(const char *what, int fd, int remote) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  int rc = remote ? getpeername(fd, (struct sockaddr *)&ss, &len)
                  : getsockname(fd, (struct sockaddr *)&ss, &len);
  char text[80];
  if (rc < 0) printf("%s %s\n", what, err());
  else printf("%s %s\n", what, show(&ss, text, sizeof text));
}

static int local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* A connected stream socket, or -1 with "connect ERRNO" printed. */
static int dial(const char *host, const char *port) {
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(host, atoi(port), &ss, &len);
  int fd = socket(family, SOCK_STREAM, 0);
  if (fd < 0) { printf("socket %s\n", err()); return -1; }
  if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
    printf("connect %s\n", err());
    close(fd);
    return -1;
  }
  return fd;
}

static int send_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = send(fd, c, n, 0);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Read exactly n bytes; 0 on success, -1 (errno set, or 0 for an early EOF). */
static int recv_all(int fd, void *p, size_t n) {
  char *c = p;
  while (n) {
    ssize_t r = recv(fd, c, n, 0);
    if (r == 0) { errno = 0; return -1; }
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

static int greet(int fd, const char *token, const char *mode, const char *arg) {
  char line[256];
  int n = snprintf(line, sizeof line, "%s %s%s%s\n", token, mode, arg ? " " : "", arg ? arg : "");
  if (send_all(fd, line, (size_t)n) < 0) { printf("greeting %s\n", err()); return -1; }
  return 0;
}

static int open_peer(const char *host, const char *port, const char *token, const char *mode,
                     const char *arg) {
  int fd = dial(host, port);
  if (fd < 0) return -1;
  if (greet(fd, token, mode, arg) < 0) { close(fd); return -1; }
  return fd;
}

static const char *revents(short r) {
  static char text[64];
  snprintf(text, sizeof text, "%s%s%s%s%s", r & POLLIN ? " IN" : "", r & POLLOUT ? " OUT" : "",
           r & POLLERR ? " ERR" : "", r & POLLHUP ? " HUP" : "", r & POLLNVAL ? " NVAL" : "");
  return text;
}

/* recv(MSG_PEEK) through preview1's sock_recv, which carries the peek flag to the
 * transport: the path every wasi-libc program takes, whatever SDK it was built with. */
static ssize_t peek(int fd, void *buf, size_t len) {
  __wasi_iovec_t iov = {buf, len};
  __wasi_size_t n = 0;
  __wasi_roflags_t ro = 0;
  __wasi_errno_t rc = __wasi_sock_recv(fd, &iov, 1, __WASI_RIFLAGS_RECV_PEEK, &n, &ro);
  if (rc != 0) { errno = rc; return -1; }
  return (ssize_t)n;
}

/* Wait until `want` bytes can be peeked (the peer's reply may arrive in pieces). */
static ssize_t peek_until(int fd, size_t want, int timeout_ms) {
  long long deadline = now_ms() + timeout_ms;
  ssize_t r = -1;
  while (now_ms() < deadline) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) == 0) continue;
    r = peek(fd, inbuf, want);
    if (r < 0 && errno != EAGAIN) return -1;
    if (r >= (ssize_t)want || r == 0) return r;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return r;
}

/* ------------------------------------------------------------------------ */

static int mode_echo(const char *host, const char *port, const char *token) {
  int fd = open_peer(host, port, token, "echo", NULL);
  if (fd < 0) return 1;
  static const size_t sizes[] = {1, 1000, 16384, 65536, 300000};
  static uint8_t big[300000], back[300000];
  uint64_t off = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    fill(big, off, n);
    if (send_all(fd, big, n) < 0) { printf("send %zu %s\n", n, err()); return 1; }
    if (recv_all(fd, back, n) < 0) { printf("recv %zu %s\n", n, errno ? err() : "EOF"); return 1; }
    printf("echo %zu %s\n", n, memcmp(big, back, n) ? "bad" : "ok");
    off += n;
  }
  /* write/read */
  fill(big, off, 3);
  ssize_t w = write(fd, big, 3);
  size_t got = 0;
  while (got < 3) {
    ssize_t r = read(fd, back + got, 3 - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  printf("write-read %zd %zu %s\n", w, got, memcmp(big, back, 3) ? "bad" : "ok");
  off += 3;
  /* writev of three pieces, read back as one */
  fill(big, off, 11);
  struct iovec out[3] = {{big, 2}, {big + 2, 3}, {big + 5, 6}};
  w = writev(fd, out, 3);
  int rc = recv_all(fd, back, 11);
  printf("writev %zd %s\n", w, rc < 0 ? "short" : memcmp(big, back, 11) ? "bad" : "ok");
  off += 11;
  /* MSG_PEEK leaves the bytes; readv scatters them */
  fill(big, off, 5);
  send_all(fd, big, 5);
  ssize_t peeked = peek_until(fd, 5, 5000);
  struct pollfd pp = {fd, POLLIN, 0};
  ssize_t again = poll(&pp, 1, 2000) == 1 ? peek(fd, back, 5) : -2; /* -2: the bytes are gone */
  ssize_t libc = recv(fd, back, 5, MSG_PEEK); /* the SDK's own recv(MSG_PEEK) */
  printf("msg_peek %s\n", libc < 0 ? err() : libc == 5 ? "5" : "short");
  uint8_t v1[2], v2[10];
  struct iovec in[2] = {{v1, sizeof v1}, {v2, sizeof v2}};
  struct pollfd p = {fd, POLLIN, 0};
  ssize_t r = poll(&p, 1, 5000) == 1 ? readv(fd, in, 2) : -2; /* -2: nothing left to read */
  int same = r == 5 && memcmp(v1, big, 2) == 0 && memcmp(v2, big + 2, 3) == 0;
  printf("peek %zd %zd readv %zd %s\n", peeked, again, r, same ? "ok" : "bad");
  off += 5;
  print_name("peer", fd, 1);
  print_name("local", fd, 0);
  int e = -1;
  socklen_t elen = sizeof e;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen);
  printf("so_error %s\n", ename(e));
  printf("sent %llu\n", (unsigned long long)off);
  printf("close %s\n", close(fd) < 0 ? err() : "OK");
  return 0;
}

static int mode_many(const char *host, const char *port, const char *token, int n) {
  int *fds = calloc((size_t)n, sizeof(int));
  char sub[96], msg[64], got[64];
  for (int i = 0; i < n; i++) {
    snprintf(sub, sizeof sub, "%s.%d", token, i);
    fds[i] = open_peer(host, port, sub, "echo", NULL);
    if (fds[i] < 0) { printf("failed at %d\n", i); return 1; }
  }
  for (int i = 0; i < n; i++) {
    int len = snprintf(msg, sizeof msg, "connection %d\n", i);
    if (send_all(fds[i], msg, (size_t)len) < 0) { printf("send %d %s\n", i, err()); return 1; }
  }
  int ok = 0;
  for (int i = n - 1; i >= 0; i--) { /* read back in the other order */
    int len = snprintf(msg, sizeof msg, "connection %d\n", i);
    if (recv_all(fds[i], got, (size_t)len) == 0 && memcmp(msg, got, (size_t)len) == 0) ok++;
    close(fds[i]);
  }
  printf("ok %d of %d\n", ok, n);
  return 0;
}

static int mode_halfclose(const char *host, const char *port, const char *token, int wait_ms) {
  int fd = open_peer(host, port, token, "eof", NULL);
  if (fd < 0) return 1;
  fill(outbuf, 0, 1000);
  if (send_all(fd, outbuf, 1000) < 0) { printf("send %s\n", err()); return 1; }
  printf("shutdown %s\n", shutdown(fd, SHUT_WR) < 0 ? err() : "OK");
  ssize_t w = send(fd, "x", 1, 0);
  printf("send-after-shutdown %s\n", w < 0 ? err() : "sent");
  static char all[4096];
  size_t total = 0;
  const char *end = "overflow";
  while (total < sizeof all) {
    struct pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, wait_ms);
    if (rc == 0) { end = "timeout"; break; }
    if (rc < 0) { end = err(); break; }
    ssize_t r = recv(fd, all + total, sizeof all - total, 0);
    if (r == 0) { end = "eof"; break; }
    if (r < 0) { end = err(); break; }
    total += (size_t)r;
  }
  size_t echoed = total < 1000 ? total : 1000;
  printf("echoed %zu %s\n", echoed, memcmp(all, outbuf, echoed) ? "bad" : "ok");
  printf("after [%.*s]\n", (int)(total - echoed), all + echoed);
  printf("end %s\n", end);
  close(fd);
  return 0;
}

static int mode_nbconnect(const char *host, const char *port, const char *token) {
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(host, atoi(port), &ss, &len);
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) { printf("socket %s\n", err()); return 1; }
  int rc = connect(fd, (struct sockaddr *)&ss, len);
  printf("connect %s\n", rc < 0 ? err() : "OK");
  if (rc < 0 && errno != EINPROGRESS) return 0;
  if (rc < 0) {
    struct pollfd p = {fd, POLLOUT, 0};
    long long t0 = now_ms();
    int n = poll(&p, 1, 20000);
    printf("poll %d%s\n", n, revents(p.revents));
    printf("poll-ms %lld\n", now_ms() - t0);
  }
  int e = -1;
  socklen_t elen = sizeof e;
  rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen);
  printf("so_error %s\n", rc < 0 ? err() : ename(e));
  e = -1;
  rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen);
  printf("so_error-again %s\n", rc < 0 ? err() : ename(e));
  if (strcmp(token, "-") == 0) {
    /* no peer: a transport that learns the outcome later reports it here */
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, 20000);
    ssize_t r = recv(fd, inbuf, sizeof inbuf, 0);
    printf("then poll %d recv %s\n", n, r < 0 ? err() : r == 0 ? "EOF" : "data");
  } else {
    set_nonblock(fd, 0);
    if (greet(fd, token, "echo", NULL) < 0) return 1;
    send_all(fd, "ping", 4);
    char back[4];
    rc = recv_all(fd, back, 4);
    printf("echo %s\n", rc == 0 && memcmp(back, "ping", 4) == 0 ? "ok" : "bad");
  }
  close(fd);
  return 0;
}

static int mode_connect(const char *host, const char *port) {
  int fd = dial(host, port);
  if (fd < 0) return 0; /* "connect ERRNO" printed */
  printf("connect OK\n");
  struct pollfd p = {fd, POLLIN, 0};
  int n = poll(&p, 1, 20000);
  ssize_t r = recv(fd, inbuf, sizeof inbuf, 0);
  printf("then poll %d recv %s\n", n, r < 0 ? err() : r == 0 ? "EOF" : "data");
  close(fd);
  return 0;
}

struct opt {
  int level, name;
  const char *label;
};

static void show_get(int fd, const struct opt *o, const char *what) {
  int v = -1;
  socklen_t len = sizeof v;
  int rc = getsockopt(fd, o->level, o->name, &v, &len);
  if (rc < 0) printf("%s %s get %s\n", what, o->label, err());
  else printf("%s %s get %d\n", what, o->label, v);
}

static void set_show(int fd, const struct opt *o, int value, const char *what) {
  int rc = setsockopt(fd, o->level, o->name, &value, sizeof value);
  printf("%s %s set %d %s\n", what, o->label, value, rc < 0 ? err() : "OK");
}

static int mode_opts(const char *host, const char *port, const char *token) {
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(host, atoi(port), &ss, &len);
  int fd = socket(family, SOCK_STREAM, 0);
  struct opt nodelay = {IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"};
  struct opt keepalive = {SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE"};
  struct opt reuse = {SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR"};
  struct opt tos = {IPPROTO_IP, IP_TOS, "IP_TOS"};
  struct opt rcvbuf = {SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF"};
  struct opt sndbuf = {SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF"};
  struct opt unknown = {SOL_SOCKET, 12345, "UNKNOWN"};
  /* before connect: kept, then in effect once connected */
  set_show(fd, &nodelay, 1, "before");
  set_show(fd, &keepalive, 1, "before");
  show_get(fd, &nodelay, "before");
  if (connect(fd, (struct sockaddr *)&ss, len) < 0) { printf("connect %s\n", err()); return 1; }
  if (greet(fd, token, "echo", NULL) < 0) return 1;
  show_get(fd, &nodelay, "connected");
  show_get(fd, &keepalive, "connected");
  /* on the live connection */
  const struct opt *flags[] = {&nodelay, &keepalive, &reuse};
  for (size_t i = 0; i < 3; i++) {
    set_show(fd, flags[i], 0, "live");
    show_get(fd, flags[i], "live");
    set_show(fd, flags[i], 1, "live");
    show_get(fd, flags[i], "live");
  }
  if (family == AF_INET) {
    set_show(fd, &tos, 0x10, "live");
    show_get(fd, &tos, "live");
  }
  set_show(fd, &rcvbuf, 65536, "live");
  show_get(fd, &rcvbuf, "live");
  set_show(fd, &sndbuf, 65536, "live");
  show_get(fd, &sndbuf, "live");
  set_show(fd, &unknown, 1, "live");
  show_get(fd, &unknown, "live");
  int v = -1;
  socklen_t vlen = sizeof v;
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vlen);
  printf("so_type %s\n", v == SOCK_STREAM ? "SOCK_STREAM" : "other");
  v = -1;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &vlen);
  printf("so_error %s\n", ename(v));
  /* the connection still carries data */
  send_all(fd, "still-ok", 8);
  char back[8];
  int rc = recv_all(fd, back, 8);
  printf("echo %s\n", rc == 0 && memcmp(back, "still-ok", 8) == 0 ? "ok" : "bad");
  close(fd);
  return 0;
}

static int mode_poll(const char *host, const char *port, const char *token) {
  int fd = open_peer(host, port, token, "closer", NULL);
  if (fd < 0) return 1;
  struct pollfd p = {fd, POLLIN, 0};
  int n = poll(&p, 1, 0);
  printf("idle %d%s\n", n, revents(p.revents));
  long long t0 = now_ms();
  p.revents = 0;
  n = poll(&p, 1, 300);
  printf("idle-300ms %d%s after %lld\n", n, revents(p.revents), now_ms() - t0);
  struct pollfd q = {fd, POLLOUT, 0};
  n = poll(&q, 1, 0);
  printf("writable %d%s\n", n, revents(q.revents));
  send_all(fd, "ping\n", 5);
  p.revents = 0;
  n = poll(&p, 1, 10000);
  printf("readable %d%s\n", n, revents(p.revents));
  ssize_t peeked = peek_until(fd, 5, 5000);
  p.revents = 0;
  n = poll(&p, 1, 0);
  printf("after-peek %zd %d%s\n", peeked, n, revents(p.revents));
  char line[8];
  int rc = recv_all(fd, line, 5);
  printf("recv %s\n", rc == 0 && memcmp(line, "ping\n", 5) == 0 ? "ok" : "bad");
  p.revents = 0;
  n = poll(&p, 1, 0);
  printf("drained %d%s\n", n, revents(p.revents));
  /* the peer answers "bye" and closes */
  send_all(fd, "bye\n", 4);
  rc = recv_all(fd, line, 4);
  printf("bye %s\n", rc == 0 && memcmp(line, "bye\n", 4) == 0 ? "ok" : "bad");
  p.revents = 0;
  n = poll(&p, 1, 10000);
  printf("peer-closed %d%s\n", n, revents(p.revents));
  ssize_t r = recv(fd, line, sizeof line, 0);
  printf("recv-at-end %s\n", r < 0 ? err() : r == 0 ? "EOF" : "data");
  p.revents = 0;
  n = poll(&p, 1, 0);
  printf("after-eof %d%s\n", n, revents(p.revents));
  close(fd);
  return 0;
}

static int mode_big(const char *host, const char *port, const char *token, uint64_t total) {
  int fd = open_peer(host, port, token, "echo", NULL);
  if (fd < 0) return 1;
  set_nonblock(fd, 1);
  uint64_t sent = 0, got = 0, bad = 0;
  while (got < total) {
    struct pollfd p = {fd, (short)(POLLIN | (sent < total ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 20000) <= 0) {
      printf("stalled sent %llu got %llu\n", (unsigned long long)sent, (unsigned long long)got);
      return 1;
    }
    if ((p.revents & POLLOUT) && sent < total) {
      size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
      fill(outbuf, sent, n);
      ssize_t w = send(fd, outbuf, n, 0);
      if (w > 0) sent += (uint64_t)w;
      else if (w < 0 && errno != EAGAIN) { printf("send %s\n", err()); return 1; }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv(fd, inbuf, sizeof inbuf, 0);
      if (r == 0) { printf("early EOF\n"); break; }
      if (r < 0) {
        if (errno == EAGAIN) continue;
        printf("recv %s\n", err());
        return 1;
      }
      bad += mismatches(inbuf, got, (size_t)r);
      got += (uint64_t)r;
    }
  }
  printf("sent %llu got %llu bad %llu\n", (unsigned long long)sent, (unsigned long long)got,
         (unsigned long long)bad);
  close(fd);
  return 0;
}

static int mode_download(const char *host, const char *port, const char *token, uint64_t total) {
  char arg[32];
  snprintf(arg, sizeof arg, "%llu", (unsigned long long)total);
  int fd = open_peer(host, port, token, "source", arg);
  if (fd < 0) return 1;
  uint64_t got = 0, bad = 0;
  const char *end = "?";
  for (;;) {
    ssize_t r = recv(fd, inbuf, sizeof inbuf, 0);
    if (r == 0) { end = "EOF"; break; }
    if (r < 0) { end = err(); break; }
    bad += mismatches(inbuf, got, (size_t)r);
    got += (uint64_t)r;
  }
  printf("got %llu bad %llu end %s\n", (unsigned long long)got, (unsigned long long)bad, end);
  close(fd);
  return 0;
}

static int mode_upload(const char *host, const char *port, const char *token, uint64_t total) {
  int fd = open_peer(host, port, token, "sink", NULL);
  if (fd < 0) return 1;
  uint64_t sent = 0;
  while (sent < total) {
    size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
    fill(outbuf, sent, n);
    if (send_all(fd, outbuf, n) < 0) { printf("send %s\n", err()); return 1; }
    sent += n;
  }
  printf("sent %llu close %s\n", (unsigned long long)sent, close(fd) < 0 ? err() : "OK");
  return 0;
}

static int mode_reset(const char *host, const char *port, const char *token) {
  int fd = open_peer(host, port, token, "reset", NULL);
  if (fd < 0) return 1;
  struct pollfd p = {fd, POLLIN, 0};
  int n = poll(&p, 1, 10000);
  ssize_t r = recv(fd, inbuf, sizeof inbuf, 0);
  printf("poll %d recv %s\n", n, r < 0 ? err() : r == 0 ? "EOF" : "data");
  close(fd);
  return 0;
}

static int mode_stall(const char *host, const char *port, const char *token) {
  int fd = open_peer(host, port, token, "stall", NULL);
  if (fd < 0) return 1;
  printf("blocking\n");
  ssize_t r = recv(fd, inbuf, sizeof inbuf, 0);
  printf("recv returned %s\n", r < 0 ? err() : r == 0 ? "EOF" : "data");
  return 0;
}

static int mode_hold(const char *host, const char *port, const char *token, uint64_t limit) {
  int fd = open_peer(host, port, token, "hold", NULL);
  if (fd < 0) return 1;
  set_nonblock(fd, 1);
  uint64_t sent = 0;
  fill(outbuf, 0, CHUNK);
  int idle = 0;
  /* full once nothing more is taken for 200 ms (a relay may drain in bursts) */
  while (idle < 20 && sent < limit) {
    ssize_t w = send(fd, outbuf, CHUNK, 0);
    if (w > 0) { sent += (uint64_t)w; idle = 0; continue; }
    if (w < 0 && errno != EAGAIN) { printf("send %s\n", err()); return 1; }
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, 10) == 0) idle++;
  }
  printf("%s %llu\n", sent < limit ? "full-after" : "not-full-after", (unsigned long long)sent);
  set_nonblock(fd, 0);
  ssize_t w;
  while ((w = send(fd, outbuf, CHUNK, 0)) > 0) { /* blocks once nothing more is taken */
  }
  printf("send returned %s\n", w < 0 ? err() : "0");
  return 0;
}

/* ------------------------------------------------------------------------ */

static int open_listener(const char *addr, int nonblock) {
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(addr, 0, &ss, &len);
  int fd = socket(family, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) { printf("socket %s\n", err()); exit(1); }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) { printf("bind %s\n", err()); exit(1); }
  if (listen(fd, 64) < 0) { printf("listen %s\n", err()); exit(1); }
  return fd;
}

static int mode_serve(const char *addr) {
  int lfd = open_listener(addr, 0);
  printf("port %d\n", local_port(lfd));
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  int fd = accept(lfd, (struct sockaddr *)&peer, &plen);
  if (fd < 0) { printf("accept %s\n", err()); return 1; }
  char text[80];
  printf("accepted %s\n", show(&peer, text, sizeof text));
  print_name("peer", fd, 1);
  print_name("local", fd, 0);
  uint64_t total = 0;
  const char *end = "EOF";
  for (;;) {
    ssize_t r = recv(fd, inbuf, sizeof inbuf, 0);
    if (r == 0) break;
    if (r < 0) { end = err(); break; }
    if (send_all(fd, inbuf, (size_t)r) < 0) { end = err(); break; }
    total += (uint64_t)r;
  }
  int n = snprintf(text, sizeof text, "[eof after %llu]", (unsigned long long)total);
  send_all(fd, text, (size_t)n);
  printf("served %llu end %s close %s\n", (unsigned long long)total, end,
         close(fd) < 0 ? err() : "OK");
  close(lfd);
  return 0;
}

#define MAX_CLIENTS 64

static int mode_serve_many(const char *addr, int clients) {
  int lfd = open_listener(addr, 1);
  int a = accept(lfd, NULL, NULL);
  printf("accept-idle %s\n", a < 0 ? err() : "accepted?");
  struct pollfd pfd[MAX_CLIENTS + 1] = {{lfd, POLLIN, 0}};
  int n = poll(pfd, 1, 0);
  printf("poll-idle %d%s\n", n, revents(pfd[0].revents));
  printf("port %d\n", local_port(lfd));
  int open = 1, accepted = 0, finished = 0, blocking = 1;
  uint64_t bytes = 0;
  while (finished < clients) {
    pfd[0].events = accepted < clients ? POLLIN : 0;
    if (poll(pfd, (nfds_t)open, 20000) <= 0) { printf("stalled\n"); return 1; }
    if (pfd[0].revents & POLLIN) {
      for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
          if (errno != EAGAIN) { printf("accept %s\n", err()); return 1; }
          break;
        }
        if (fcntl(fd, F_GETFL) & O_NONBLOCK) blocking = 0;
        set_nonblock(fd, 1);
        if (open > MAX_CLIENTS) { printf("too many\n"); return 1; }
        pfd[open].fd = fd;
        pfd[open].events = POLLIN;
        pfd[open].revents = 0;
        open++;
        accepted++;
      }
    }
    for (int i = 1; i < open; i++) {
      if (!pfd[i].revents) continue;
      ssize_t r = recv(pfd[i].fd, inbuf, sizeof inbuf, 0);
      if (r < 0 && errno == EAGAIN) continue;
      if (r > 0) {
        set_nonblock(pfd[i].fd, 0);
        int w = send_all(pfd[i].fd, inbuf, (size_t)r);
        set_nonblock(pfd[i].fd, 1);
        if (w == 0) { bytes += (uint64_t)r; continue; }
      }
      close(pfd[i].fd);
      pfd[i] = pfd[--open];
      i--;
      finished++;
    }
  }
  printf("served %d bytes %llu accepted-blocking %s\n", finished, (unsigned long long)bytes,
         blocking ? "yes" : "no");
  close(lfd);
  return 0;
}

static int mode_serve_stall(const char *addr) {
  int lfd = open_listener(addr, 0);
  printf("port %d\n", local_port(lfd));
  printf("blocking\n");
  int fd = accept(lfd, NULL, NULL);
  printf("accept returned %s\n", fd < 0 ? err() : "a connection");
  return 0;
}

static int mode_bind_busy(const char *addr, int port) {
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(addr, port, &ss, &len);
  int fd = socket(family, SOCK_STREAM, 0);
  int rc = bind(fd, (struct sockaddr *)&ss, len);
  printf("bind %s\n", rc < 0 ? err() : "OK");
  if (rc == 0) printf("listen %s\n", listen(fd, 1) < 0 ? err() : "OK");
  return 0;
}

/* ------------------------------------------------------------------------ */

static int udp_bound(const char *addr, int nonblock) {
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(addr, 0, &ss, &len);
  int fd = socket(family, SOCK_DGRAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) { printf("socket %s\n", err()); exit(1); }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) { printf("bind %s\n", err()); exit(1); }
  return fd;
}

static int mode_udp_serve(const char *addr, int count) {
  int fd = udp_bound(addr, 0);
  printf("port %d\n", local_port(fd));
  static uint8_t dgram[65536];
  char who[80];
  for (int i = 0; i < count; i++) {
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    ssize_t r = recvfrom(fd, dgram, sizeof dgram, 0, (struct sockaddr *)&from, &flen);
    if (r < 0) { printf("recvfrom %s\n", err()); return 1; }
    printf("from %s len %zd\n", show(&from, who, sizeof who), r);
    ssize_t w = sendto(fd, dgram, (size_t)r, 0, (struct sockaddr *)&from, flen);
    if (w != r) { printf("sendto %s\n", w < 0 ? err() : "short"); return 1; }
  }
  printf("done\n");
  close(fd);
  return 0;
}

static int mode_udp_client(const char *host, const char *port) {
  struct sockaddr_storage dest, from;
  socklen_t dlen, flen;
  char who[80];
  int family = make_addr(host, atoi(port), &dest, &dlen);
  int fd = socket(family, SOCK_DGRAM, 0);
  print_name("unbound-local", fd, 0);
  struct pollfd p = {fd, POLLIN, 0};
  int n = poll(&p, 1, 0); /* no transport yet: the core's answer */
  printf("unbound-poll %d%s\n", n, revents(p.revents));
  ssize_t w = sendto(fd, "one", 3, 0, (struct sockaddr *)&dest, dlen);
  printf("sendto %zd\n", w);
  printf("auto-bound %s\n", local_port(fd) > 0 ? "yes" : "no");
  p.revents = 0;
  n = poll(&p, 1, 10000);
  printf("readable %d%s\n", n, revents(p.revents));
  char small[16];
  ssize_t r = peek(fd, small, sizeof small);
  flen = sizeof from;
  ssize_t r2 = recvfrom(fd, small, sizeof small, 0, (struct sockaddr *)&from, &flen);
  printf("peek %zd recvfrom %zd %.*s from %s\n", r, r2, (int)(r2 > 0 ? r2 : 0), small,
         show(&from, who, sizeof who));
  p.revents = 0;
  n = poll(&p, 1, 0);
  printf("idle %d%s\n", n, revents(p.revents));
  /* a datagram longer than the buffer: truncated (preview1 says so), the rest dropped */
  static uint8_t big[1000];
  fill(big, 0, sizeof big);
  sendto(fd, big, sizeof big, 0, (struct sockaddr *)&dest, dlen);
  sendto(fd, "next", 4, 0, (struct sockaddr *)&dest, dlen);
  __wasi_iovec_t wiov = {inbuf, 10};
  __wasi_size_t got = 0;
  __wasi_roflags_t ro = 0;
  __wasi_errno_t rc = __wasi_sock_recv(fd, &wiov, 1, 0, &got, &ro);
  printf("truncated %s %u %s%s\n", ename(rc), (unsigned)got, memcmp(inbuf, big, 10) ? "bad" : "ok",
         ro & __WASI_ROFLAGS_RECV_DATA_TRUNCATED ? " TRUNCATED" : "");
  r = recv(fd, small, sizeof small, 0);
  printf("then %zd %.*s\n", r, (int)(r > 0 ? r : 0), small);
  /* the same through the SDK's recvmsg(): Linux sets MSG_TRUNC in msg_flags */
  sendto(fd, big, sizeof big, 0, (struct sockaddr *)&dest, dlen);
  struct iovec iov = {inbuf, 10};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  r = recvmsg(fd, &msg, 0);
  printf("recvmsg %zd%s\n", r, msg.msg_flags & MSG_TRUNC ? " MSG_TRUNC" : "");
  /* empty datagram */
  w = sendto(fd, "", 0, 0, (struct sockaddr *)&dest, dlen);
  r = recv(fd, small, sizeof small, 0);
  printf("empty %zd %zd\n", w, r);
  /* connected: send/recv and write/read */
  printf("connect %s\n", connect(fd, (struct sockaddr *)&dest, dlen) < 0 ? err() : "OK");
  print_name("peer", fd, 1);
  w = send(fd, "two", 3, 0);
  r = recv(fd, small, sizeof small, 0);
  printf("send %zd recv %zd %.*s\n", w, r, (int)(r > 0 ? r : 0), small);
  w = write(fd, "three", 5);
  r = read(fd, small, sizeof small);
  printf("write %zd read %zd %.*s\n", w, r, (int)(r > 0 ? r : 0), small);
  p.revents = 0;
  n = poll(&p, 1, 0);
  printf("drained %d%s\n", n, revents(p.revents));
  close(fd);
  return 0;
}

static int mode_udp_refused(const char *host, const char *port) {
  struct sockaddr_storage dest;
  socklen_t dlen;
  int family = make_addr(host, atoi(port), &dest, &dlen);
  int fd = socket(family, SOCK_DGRAM, 0);
  printf("connect %s\n", connect(fd, (struct sockaddr *)&dest, dlen) < 0 ? err() : "OK");
  ssize_t w = send(fd, "x", 1, 0);
  printf("send %s\n", w < 0 ? err() : "OK");
  struct pollfd p = {fd, POLLIN, 0};
  int n = poll(&p, 1, 5000);
  ssize_t r = recv(fd, inbuf, sizeof inbuf, MSG_DONTWAIT);
  printf("then poll %d%s recv %s\n", n, revents(p.revents), r < 0 ? err() : "data");
  close(fd);
  return 0;
}

static int mode_udp_stall(const char *addr) {
  int fd = udp_bound(addr, 0);
  printf("port %d\n", local_port(fd));
  printf("blocking\n");
  ssize_t r = recvfrom(fd, inbuf, sizeof inbuf, 0, NULL, NULL);
  printf("recvfrom returned %s\n", r < 0 ? err() : "data");
  return 0;
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  make_pattern();
  const char *m = argc > 1 ? argv[1] : "";
#define IS(name, nargs) (strcmp(m, name) == 0 && argc == (nargs) + 2)
  if (IS("echo", 3)) return mode_echo(argv[2], argv[3], argv[4]);
  if (IS("many", 4)) return mode_many(argv[2], argv[3], argv[4], atoi(argv[5]));
  if (IS("halfclose", 4)) return mode_halfclose(argv[2], argv[3], argv[4], atoi(argv[5]));
  if (IS("nbconnect", 3)) return mode_nbconnect(argv[2], argv[3], argv[4]);
  if (IS("connect", 2)) return mode_connect(argv[2], argv[3]);
  if (IS("opts", 3)) return mode_opts(argv[2], argv[3], argv[4]);
  if (IS("poll", 3)) return mode_poll(argv[2], argv[3], argv[4]);
  if (IS("big", 4)) return mode_big(argv[2], argv[3], argv[4], strtoull(argv[5], NULL, 10));
  if (IS("download", 4))
    return mode_download(argv[2], argv[3], argv[4], strtoull(argv[5], NULL, 10));
  if (IS("upload", 4)) return mode_upload(argv[2], argv[3], argv[4], strtoull(argv[5], NULL, 10));
  if (IS("reset", 3)) return mode_reset(argv[2], argv[3], argv[4]);
  if (IS("stall", 3)) return mode_stall(argv[2], argv[3], argv[4]);
  if (IS("hold", 4)) return mode_hold(argv[2], argv[3], argv[4], strtoull(argv[5], NULL, 10));
  if (IS("serve", 1)) return mode_serve(argv[2]);
  if (IS("serve-many", 2)) return mode_serve_many(argv[2], atoi(argv[3]));
  if (IS("serve-stall", 1)) return mode_serve_stall(argv[2]);
  if (IS("bind-busy", 2)) return mode_bind_busy(argv[2], atoi(argv[3]));
  if (IS("udp-serve", 2)) return mode_udp_serve(argv[2], atoi(argv[3]));
  if (IS("udp-client", 2)) return mode_udp_client(argv[2], argv[3]);
  if (IS("udp-refused", 2)) return mode_udp_refused(argv[2], argv[3]);
  if (IS("udp-stall", 1)) return mode_udp_stall(argv[2]);
  fprintf(stderr, "conform: unknown mode or wrong arguments: %s (%d)\n", m, argc);
  return 2;
}
