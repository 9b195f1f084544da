/* A POSIX network client exercised by the test suite; one mode per argv[1]. */
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
#include <unistd.h>

static int dial(const char *host, const char *port, int nonblock) {
  struct addrinfo hints, *res, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    printf("getaddrinfo: %s\n", gai_strerror(rc));
    return -1;
  }
  int fd = -1, err = 0;
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | (nonblock ? SOCK_NONBLOCK : 0), ai->ai_protocol);
    if (fd < 0) { err = errno; continue; }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || (nonblock && errno == EINPROGRESS)) break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) errno = err;
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) return -1;
    p += w; n -= (size_t)w;
  }
  return 0;
}

static void print_addr(const char *what, struct sockaddr *sa) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  int rc = getnameinfo(sa, sizeof(struct sockaddr_storage), host, sizeof host, serv, sizeof serv,
                       NI_NUMERICHOST | NI_NUMERICSERV);
  if (rc) printf("%s: getnameinfo %s\n", what, gai_strerror(rc));
  else printf("%s %s %s %s\n", what, sa->sa_family == AF_INET ? "inet" : "inet6", host, serv);
}

static int mode_resolve(const char *host, const char *port) {
  struct addrinfo hints, *res, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc) { printf("error %s\n", gai_strerror(rc)); return 1; }
  for (ai = res; ai; ai = ai->ai_next) {
    printf("proto %d ", ai->ai_protocol);
    print_addr("addr", ai->ai_addr);
  }
  freeaddrinfo(res);
  return 0;
}

static int mode_echo(const char *host, const char *port, const char *msg) {
  int fd = dial(host, port, 0);
  if (fd < 0) { printf("connect: %s\n", strerror(errno)); return 1; }
  if (send(fd, msg, strlen(msg), 0) < 0) { printf("send: %s\n", strerror(errno)); return 1; }
  if (shutdown(fd, SHUT_WR) < 0) { printf("shutdown: %s\n", strerror(errno)); return 1; }
  char buf[4096];
  size_t total = 0;
  for (;;) {
    ssize_t n = (total & 1) ? read(fd, buf, sizeof buf) : recv(fd, buf, sizeof buf, 0);
    if (n < 0) { printf("recv: %s\n", strerror(errno)); return 1; }
    if (n == 0) break;
    fwrite(buf, 1, (size_t)n, stdout);
    total += (size_t)n;
  }
  printf("\n[eof after %zu bytes]\n", total);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) print_addr("peer", (struct sockaddr *)&ss);
  len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) print_addr("local", (struct sockaddr *)&ss);
  close(fd);
  return 0;
}

static int mode_nbconnect(const char *host, const char *port) {
  int fd = dial(host, port, 1);
  if (fd < 0) { printf("socket/connect: %s\n", strerror(errno)); return 1; }
  struct pollfd p = {fd, POLLOUT, 0};
  int rc = poll(&p, 1, 5000);
  printf("poll %d revents%s%s%s\n", rc, (p.revents & POLLOUT) ? " OUT" : "",
         (p.revents & POLLERR) ? " ERR" : "", (p.revents & POLLHUP) ? " HUP" : "");
  int err = -1;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  printf("so_error %d %s\n", err, err ? strerror(err) : "ok");
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  printf("so_error again %d\n", err);
  if (err == 0) {
    ssize_t n = send(fd, "x", 1, 0);
    printf("send %zd\n", n);
  }
  close(fd);
  return 0;
}

static int mode_connect_errno(const char *host, const char *port) {
  int fd = dial(host, port, 0);
  if (fd < 0) { printf("errno %d %s\n", errno, strerror(errno)); return 0; }
  printf("connected\n");
  return 0;
}

static int mode_opts(const char *host, const char *port) {
  int fd = dial(host, port, 0);
  if (fd < 0) { printf("connect: %s\n", strerror(errno)); return 1; }
  struct { int level, name; const char *label; int value; } opts[] = {
    {SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1},
    {SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", 1},
    {IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY", 1},
    {IPPROTO_IP, IP_TOS, "IP_TOS", 0x10},
    {IPPROTO_IP, IP_MTU_DISCOVER, "IP_MTU_DISCOVER", 0},
    {IPPROTO_IPV6, IPV6_TCLASS, "IPV6_TCLASS", 0x20},
    {IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", 1},
    {SOL_SOCKET, SO_ERROR, "SO_ERROR", 1},
    {SOL_SOCKET, 12345, "UNKNOWN", 1},
  };
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
    int v = opts[i].value;
    int rc = setsockopt(fd, opts[i].level, opts[i].name, &v, sizeof v);
    int set_errno = rc ? errno : 0;
    int got = -1;
    socklen_t len = sizeof got;
    rc = getsockopt(fd, opts[i].level, opts[i].name, &got, &len);
    printf("%s set=%d get=%d value=%d\n", opts[i].label, set_errno, rc ? errno : 0, got);
  }
  int t = -1; socklen_t len = sizeof t;
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &len);
  printf("SO_TYPE %d\n", t == SOCK_STREAM);
  close(fd);
  return 0;
}

/* Open N connections at once, send a distinct line on each, check each echo. */
static int mode_many(const char *host, const char *port, int n) {
  int *fds = calloc((size_t)n, sizeof(int));
  for (int i = 0; i < n; i++) {
    fds[i] = dial(host, port, 0);
    if (fds[i] < 0) { printf("connect %d: %s\n", i, strerror(errno)); return 1; }
  }
  for (int i = 0; i < n; i++) {
    char msg[32];
    int len = snprintf(msg, sizeof msg, "conn-%05d\n", i);
    if (write_all(fds[i], msg, (size_t)len)) { printf("write %d failed\n", i); return 1; }
  }
  int ok = 0;
  for (int i = 0; i < n; i++) {
    char want[32], got[32];
    int len = snprintf(want, sizeof want, "conn-%05d\n", i), have = 0;
    while (have < len) {
      ssize_t r = read(fds[i], got + have, (size_t)(len - have));
      if (r <= 0) break;
      have += (int)r;
    }
    if (have == len && memcmp(want, got, (size_t)len) == 0) ok++;
    close(fds[i]);
  }
  printf("ok %d of %d\n", ok, n);
  return ok == n ? 0 : 1;
}

/* stdin -> socket and socket -> stdout, driven by poll, until the socket closes. */
static int mode_relay(const char *host, const char *port) {
  int fd = dial(host, port, 0);
  if (fd < 0) { fprintf(stderr, "connect: %s\n", strerror(errno)); return 1; }
  struct pollfd p[2] = {{0, POLLIN, 0}, {fd, POLLIN, 0}};
  int stdin_open = 1;
  char buf[16384];
  for (;;) {
    p[0].fd = stdin_open ? 0 : -1;
    if (poll(p, 2, -1) < 0) { fprintf(stderr, "poll: %s\n", strerror(errno)); return 1; }
    if (stdin_open && (p[0].revents & (POLLIN | POLLHUP))) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) { stdin_open = 0; shutdown(fd, SHUT_WR); }
      else if (write_all(fd, buf, (size_t)n)) return 1;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      if (write_all(1, buf, (size_t)n)) return 1;
    }
  }
  close(fd);
  return 0;
}

static uint8_t pattern(uint64_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

/* Send NBYTES of a pattern and read the echo back concurrently; verify every byte. */
static int mode_bulk(const char *host, const char *port, uint64_t total) {
  int fd = dial(host, port, 0);
  if (fd < 0) { printf("connect: %s\n", strerror(errno)); return 1; }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  static uint8_t out[65536], in[65536];
  uint64_t sent = 0, got = 0, bad = 0;
  while (got < total) {
    struct pollfd p = {fd, (short)(POLLIN | (sent < total ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 10000) <= 0) { printf("stalled at sent=%llu got=%llu\n",
        (unsigned long long)sent, (unsigned long long)got); return 1; }
    if ((p.revents & POLLOUT) && sent < total) {
      size_t n = total - sent < sizeof out ? (size_t)(total - sent) : sizeof out;
      for (size_t i = 0; i < n; i++) out[i] = pattern(sent + i);
      ssize_t w = send(fd, out, n, 0);
      if (w > 0) sent += (uint64_t)w;
      else if (w < 0 && errno != EAGAIN) { printf("send: %s\n", strerror(errno)); return 1; }
      if (sent == total) shutdown(fd, SHUT_WR);
    }
    if (p.revents & (POLLIN | POLLHUP)) {
      ssize_t r = recv(fd, in, sizeof in, 0);
      if (r == 0) break;
      if (r < 0) { if (errno == EAGAIN) continue; printf("recv: %s\n", strerror(errno)); return 1; }
      for (ssize_t i = 0; i < r; i++) bad += in[i] != pattern(got + (uint64_t)i);
      got += (uint64_t)r;
    }
  }
  printf("sent %llu got %llu bad %llu\n", (unsigned long long)sent, (unsigned long long)got,
         (unsigned long long)bad);
  close(fd);
  return (got == total && bad == 0) ? 0 : 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 4) { fprintf(stderr, "usage: netclient MODE HOST PORT [...]\n"); return 2; }
  const char *mode = argv[1], *host = argv[2], *port = argv[3];
  if (!strcmp(mode, "resolve")) return mode_resolve(host, port);
  if (!strcmp(mode, "echo")) return mode_echo(host, port, argc > 4 ? argv[4] : "hello");
  if (!strcmp(mode, "nbconnect")) return mode_nbconnect(host, port);
  if (!strcmp(mode, "connect-errno")) return mode_connect_errno(host, port);
  if (!strcmp(mode, "opts")) return mode_opts(host, port);
  if (!strcmp(mode, "many")) return mode_many(host, port, argc > 4 ? atoi(argv[4]) : 200);
  if (!strcmp(mode, "relay")) return mode_relay(host, port);
  if (!strcmp(mode, "bulk")) return mode_bulk(host, port, strtoull(argv[4], NULL, 10));
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
