/* Guest servers exercised by the listening-socket tests; one mode per argv[1].
 *
 *   echo N [ADDR]         TCP echo server: bind ADDR (127.0.0.1) port 0, print
 *                         "port P", serve N clients with a poll loop, print totals
 *   echo-p1 N             the same, accepting with preview1 sock_accept directly
 *   forward HOST PORT     accept one client on 127.0.0.1:0 ("port P"), connect
 *                         on to HOST:PORT, pump both ways with poll until EOF
 *   bind ADDR PORT        try to bind+listen, print "port P" or "bind errno E"
 *   checks                listening-socket corner cases, one line each
 *   v6only PORT           a v6-only [::] listener and a 0.0.0.0 one on one port
 *   udp-echo N [ADDR]     UDP echo on ADDR (127.0.0.1) port 0 until N datagrams were echoed
 *   udp-checks            datagram corner cases, one line each
 *   udp-bind ADDR PORT    bind a UDP socket, print "bind 0" or "bind -1 errno E"
 *   unix PATH MSG         AF_UNIX stream: send MSG, half-close, print the reply
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

__attribute__((import_module("wasi_snapshot_preview1"), import_name("sock_accept")))
int32_t p1_sock_accept(int32_t fd, int32_t flags, int32_t *newfd);

#define MAX_CLIENTS 512
#define BUF (64 * 1024)

static char buf[BUF];

static void die(const char *what) {
  printf("%s: errno %d %s\n", what, errno, strerror(errno));
  exit(1);
}

static int set_nonblock(int fd, int on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -1;
  return fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
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
  return -1;
}

static int local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static const char *show(const struct sockaddr_storage *ss, char *out, size_t n) {
  char host[INET6_ADDRSTRLEN];
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    snprintf(out, n, "%s %d", host, ntohs(sin->sin_port));
  } else {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    snprintf(out, n, "%s %d", host, ntohs(sin6->sin6_port));
  }
  return out;
}

/* A listener on host:0 (or host:port); prints "port P". */
static int open_listener(const char *host, int port) {
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(host, port, &ss, &len);
  if (family < 0) { printf("bad address %s\n", host); exit(1); }
  int fd = socket(family, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("SO_REUSEADDR");
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
    printf("bind errno %d %s\n", errno, strerror(errno));
    exit(0);
  }
  if (listen(fd, 128) < 0) die("listen");
  printf("port %d\n", local_port(fd));
  return fd;
}

/* ------------------------------------------------------------------------ */

static int mode_echo(int clients, const char *host, int preview1) {
  int lfd = open_listener(host, 0);
  if (set_nonblock(lfd, 1) < 0) die("fcntl");
  struct pollfd pfd[MAX_CLIENTS + 1];
  int n = 1, accepted = 0, finished = 0, eagain = 0;
  long long bytes = 0;
  pfd[0].fd = lfd;
  pfd[0].events = POLLIN;
  while (finished < clients) {
    pfd[0].events = accepted < clients ? POLLIN : 0;
    if (poll(pfd, (nfds_t)n, -1) < 0) die("poll");
    if (pfd[0].revents & POLLIN) {
      for (;;) { /* drain the queue: a non-blocking listener ends with EAGAIN */
        int cfd;
        if (preview1) {
          int32_t out = -1;
          int32_t rc = p1_sock_accept(lfd, 0, &out);
          if (rc != 0) { errno = rc; cfd = -1; } else cfd = out;
        } else {
          cfd = accept(lfd, NULL, NULL);
        }
        if (cfd < 0) {
          if (errno == EAGAIN) { eagain++; break; }
          die("accept");
        }
        if (n > MAX_CLIENTS) { printf("too many clients\n"); return 1; }
        pfd[n].fd = cfd;
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        n++;
        accepted++;
      }
    }
    for (int i = 1; i < n; i++) {
      if (!pfd[i].revents) continue;
      ssize_t r = read(pfd[i].fd, buf, sizeof buf);
      if (r < 0) die("read");
      if (r == 0 || write_all(pfd[i].fd, buf, (size_t)r) < 0) {
        close(pfd[i].fd);
        pfd[i] = pfd[--n];
        pfd[n].revents = 0;
        i--;
        finished++;
        continue;
      }
      bytes += r;
    }
  }
  printf("served %d bytes %lld eagain %s\n", finished, bytes, eagain ? "yes" : "no");
  return 0;
}

/* ------------------------------------------------------------------------ */

struct pipebuf {
  char *data;
  size_t start, end;
  int eof;      /* the source said EOF */
  int shut;     /* EOF passed on to the sink */
};

#define PIPE_CAP (256 * 1024)

/* Move bytes from src into p; returns the count, -1 on error. */
static ssize_t pump_in(int src, struct pipebuf *p) {
  ssize_t r = read(src, p->data + p->end, PIPE_CAP - p->end);
  if (r < 0) return errno == EAGAIN ? 0 : -1;
  if (r == 0) p->eof = 1;
  p->end += (size_t)r;
  return r;
}

static int pump_out(int dst, struct pipebuf *p) {
  if (p->end > p->start) {
    ssize_t w = write(dst, p->data + p->start, p->end - p->start);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    p->start += (size_t)w;
  }
  if (p->start == p->end) p->start = p->end = 0;
  if (p->eof && p->start == p->end && !p->shut) {
    shutdown(dst, SHUT_WR);
    p->shut = 1;
  }
  return 0;
}

static int mode_forward(const char *host, int port) {
  int lfd = open_listener("127.0.0.1", 0);
  int a = accept(lfd, NULL, NULL);
  if (a < 0) die("accept");
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(host, port, &ss, &len);
  int b = socket(family, SOCK_STREAM, 0);
  if (b < 0) die("socket");
  if (connect(b, (struct sockaddr *)&ss, len) < 0) die("connect");
  set_nonblock(a, 1);
  set_nonblock(b, 1);
  struct pipebuf ab = {malloc(PIPE_CAP), 0, 0, 0, 0}, ba = {malloc(PIPE_CAP), 0, 0, 0, 0};
  long long up = 0, down = 0;
  while (!(ab.shut && ba.shut)) {
    struct pollfd p[2] = {{a, 0, 0}, {b, 0, 0}};
    if (!ab.eof && ab.end < PIPE_CAP) p[0].events |= POLLIN;
    if (!ba.eof && ba.end < PIPE_CAP) p[1].events |= POLLIN;
    if (ba.end > ba.start) p[0].events |= POLLOUT;
    if (ab.end > ab.start) p[1].events |= POLLOUT;
    if (poll(p, 2, -1) < 0) die("poll");
    ssize_t r;
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && (p[0].events & POLLIN)) {
      if ((r = pump_in(a, &ab)) < 0) die("read client");
      up += r;
    }
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && (p[1].events & POLLIN)) {
      if ((r = pump_in(b, &ba)) < 0) die("read target");
      down += r;
    }
    if (pump_out(b, &ab) < 0) die("write target");
    if (pump_out(a, &ba) < 0) die("write client");
  }
  close(a);
  close(b);
  close(lfd);
  printf("forwarded up %lld down %lld\n", up, down);
  return 0;
}

/* ------------------------------------------------------------------------ */

static int mode_bind(const char *host, int port) {
  int lfd = open_listener(host, port);
  int cfd = accept(lfd, NULL, NULL);
  if (cfd < 0) die("accept");
  ssize_t r;
  while ((r = read(cfd, buf, sizeof buf)) > 0)
    if (write_all(cfd, buf, (size_t)r) < 0) die("write");
  close(cfd);
  printf("done\n");
  return 0;
}

static int connect_to(int family, const char *host, int port, int nonblock) {
  struct sockaddr_storage ss;
  socklen_t len;
  make_addr(host, port, &ss, &len);
  int fd = socket(family, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) die("connect");
  return fd;
}

static int mode_checks(void) {
  struct sockaddr_storage ss;
  socklen_t len;
  int one = 1, val;
  socklen_t vlen = sizeof val;

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  printf("listen unbound %d errno %d\n", listen(fd, 5), errno);
  make_addr("127.0.0.1", 0, &ss, &len);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  printf("bind %d\n", bind(fd, (struct sockaddr *)&ss, len));
  getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &val, &vlen);
  printf("reuseaddr %d\n", val);
  printf("second bind %d errno %d\n", bind(fd, (struct sockaddr *)&ss, len), errno);
  int port = local_port(fd);
  printf("ephemeral %s\n", port > 0 ? "yes" : "no");
  printf("accept before listen %d errno %d\n", accept(fd, NULL, NULL), errno);
  listen(fd, 5);

  /* the busy port */
  int other = socket(AF_INET, SOCK_STREAM, 0);
  make_addr("127.0.0.1", port, &ss, &len);
  printf("busy port %d errno %d\n", bind(other, (struct sockaddr *)&ss, len), errno);
  close(other);

  /* a non-blocking listener with nothing pending */
  set_nonblock(fd, 1);
  printf("accept nothing %d errno %d\n", accept(fd, NULL, NULL), errno);
  struct pollfd p = {fd, POLLIN, 0};
  printf("poll idle %d\n", poll(&p, 1, 0));

  /* a guest client dials its own listener (through the tcp transport) */
  int c1 = connect_to(AF_INET, "127.0.0.1", port, 0);
  int c2 = connect_to(AF_INET, "127.0.0.1", port, 0);
  p.revents = 0;
  printf("poll pending %d revents %s\n", poll(&p, 1, 5000), p.revents & POLLIN ? "IN" : "-");
  set_nonblock(fd, 0);
  int s1 = accept(fd, NULL, NULL);
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  int s2 = accept(fd, (struct sockaddr *)&peer, &plen);
  char a[80], b[80];
  struct sockaddr_storage c2name;
  socklen_t c2len = sizeof c2name;
  getsockname(c2, (struct sockaddr *)&c2name, &c2len);
  printf("accepted in order %s\n", strcmp(show(&peer, a, sizeof a), show(&c2name, b, sizeof b)) == 0 ? "yes" : "no");
  int fl = fcntl(s1, F_GETFL);
  printf("accepted blocking %s\n", fl & O_NONBLOCK ? "no" : "yes");

  /* an accepted socket is a full stream socket */
  printf("nodelay set %d\n", setsockopt(s1, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
  vlen = sizeof val;
  getsockopt(s1, IPPROTO_TCP, TCP_NODELAY, &val, &vlen);
  printf("nodelay get %d\n", val);
  plen = sizeof peer;
  getpeername(s1, (struct sockaddr *)&peer, &plen);
  c2len = sizeof c2name;
  getsockname(c1, (struct sockaddr *)&c2name, &c2len);
  printf("peer matches %s\n", strcmp(show(&peer, a, sizeof a), show(&c2name, b, sizeof b)) == 0 ? "yes" : "no");
  write_all(c1, "hello", 5);
  shutdown(c1, SHUT_WR);
  ssize_t r = read(s1, buf, sizeof buf);
  ssize_t r2 = read(s1, buf + 100, sizeof buf - 100);
  printf("read %zd then %zd\n", r, r2);
  write_all(s1, "world", 5);
  shutdown(s1, SHUT_WR);
  r = read(c1, buf, sizeof buf);
  printf("half-closed client got %.*s\n", (int)r, buf);
  close(c1); close(c2); close(s1); close(s2); close(fd);

  /* a bound socket connects from its own address (ssh -b) */
  int l2 = socket(AF_INET, SOCK_STREAM, 0);
  make_addr("127.0.0.1", 0, &ss, &len);
  bind(l2, (struct sockaddr *)&ss, len);
  listen(l2, 5);
  int cb = socket(AF_INET, SOCK_STREAM, 0);
  bind(cb, (struct sockaddr *)&ss, len);
  int bport = local_port(cb);
  make_addr("127.0.0.1", local_port(l2), &ss, &len);
  int rc = connect(cb, (struct sockaddr *)&ss, len);
  plen = sizeof peer;
  int sb = accept(l2, (struct sockaddr *)&peer, &plen);
  printf("bound connect %d from its port %s\n", rc,
         ntohs(((struct sockaddr_in *)&peer)->sin_port) == bport ? "yes" : "no");
  close(sb); close(cb); close(l2);

  /* AF_UNIX sockets cannot listen; a UDP socket cannot either */
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  make_addr("127.0.0.1", 0, &ss, &len);
  bind(u, (struct sockaddr *)&ss, len);
  printf("listen udp %d errno %d\n", listen(u, 1), errno);
  close(u);
  return 0;
}

static int mode_v6only(int port) {
  struct sockaddr_storage ss;
  socklen_t len;
  int one = 1, val = -1;
  socklen_t vlen = sizeof val;
  int six = socket(AF_INET6, SOCK_STREAM, 0);
  printf("v6only set %d\n", setsockopt(six, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one));
  make_addr("::", port, &ss, &len);
  printf("bind :: %d\n", bind(six, (struct sockaddr *)&ss, len));
  getsockopt(six, IPPROTO_IPV6, IPV6_V6ONLY, &val, &vlen);
  printf("v6only get %d\n", val);
  int four = socket(AF_INET, SOCK_STREAM, 0);
  make_addr("0.0.0.0", port, &ss, &len);
  printf("bind 0.0.0.0 %d\n", bind(four, (struct sockaddr *)&ss, len));
  close(four);
  close(six);
  /* without the option both families share the port: the second bind fails */
  six = socket(AF_INET6, SOCK_STREAM, 0);
  make_addr("::", port, &ss, &len);
  printf("bind :: dual %d\n", bind(six, (struct sockaddr *)&ss, len));
  four = socket(AF_INET, SOCK_STREAM, 0);
  make_addr("0.0.0.0", port, &ss, &len);
  int rc = bind(four, (struct sockaddr *)&ss, len);
  printf("bind 0.0.0.0 again %d errno %d\n", rc, rc < 0 ? errno : 0);
  return 0;
}

/* ------------------------------------------------------------------------ */

static int mode_udp_echo(long count, const char *host) {
  struct sockaddr_storage ss, from;
  socklen_t len, flen;
  int family = make_addr(host, 0, &ss, &len);
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) die("bind");
  printf("port %d\n", local_port(fd));
  char who[80], first[80] = "";
  for (long i = 0; i < count; i++) {
    flen = sizeof from;
    ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    if (r < 0) die("recvfrom");
    show(&from, who, sizeof who);
    if (!first[0]) {
      strcpy(first, who);
      printf("first from %s\n", who);
    } else if (strcmp(first, who) != 0) {
      printf("also from %s\n", who);
      strcpy(first, who);
    }
    if (sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, flen) != r) die("sendto");
  }
  printf("echoed %ld\n", count);
  return 0;
}

static int udp_socket(struct sockaddr_storage *ss, socklen_t *len) {
  make_addr("127.0.0.1", 0, ss, len);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  if (bind(fd, (struct sockaddr *)ss, *len) < 0) die("bind");
  ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)local_port(fd));
  return fd;
}

static int mode_udp_checks(void) {
  struct sockaddr_storage sa, sb, sc, from;
  socklen_t la, lb, lc, flen;
  char who[80], want[80];
  int a = udp_socket(&sa, &la);
  int b = udp_socket(&sb, &lb);
  int c = udp_socket(&sc, &lc);

  /* unconnected: write has no destination */
  printf("write unconnected %zd errno %d\n", write(a, "x", 1), errno);
  /* nothing queued: MSG_DONTWAIT and poll */
  printf("dontwait empty %zd errno %d\n", recv(a, buf, 10, MSG_DONTWAIT), errno);
  struct pollfd p = {a, POLLIN, 0};
  printf("poll empty %d\n", poll(&p, 1, 0));

  /* boundaries and truncation */
  sendto(b, "0123456789", 10, 0, (struct sockaddr *)&sa, la);
  sendto(b, "abc", 3, 0, (struct sockaddr *)&sa, la);
  sendto(b, "", 0, 0, (struct sockaddr *)&sa, la);
  p.revents = 0;
  printf("poll ready %d revents %s\n", poll(&p, 1, 5000), p.revents & POLLIN ? "IN" : "-");
  flen = sizeof from;
  ssize_t r = recvfrom(a, buf, 4, 0, (struct sockaddr *)&from, &flen);
  printf("truncated %zd %.*s from b %s\n", r, (int)r, buf,
         strcmp(show(&from, who, sizeof who), show(&sb, want, sizeof want)) == 0 ? "yes" : "no");
  r = recv(a, buf, sizeof buf, 0);
  printf("next %zd %.*s\n", r, (int)r, buf);
  r = recv(a, buf, sizeof buf, 0);
  printf("empty datagram %zd\n", r);

  /* readv over two iovecs takes one datagram */
  sendto(b, "hello world", 11, 0, (struct sockaddr *)&sa, la);
  sendto(b, "second", 6, 0, (struct sockaddr *)&sa, la);
  char v1[5], v2[32];
  struct iovec iov[2] = {{v1, sizeof v1}, {v2, sizeof v2}};
  r = readv(a, iov, 2);
  printf("readv %zd %.5s|%.*s\n", r, v1, (int)(r - 5), v2);
  r = recv(a, buf, sizeof buf, 0);
  printf("after readv %zd %.*s\n", r, (int)r, buf);

  /* connect sets the default peer and filters by it */
  printf("connect %d\n", connect(a, (struct sockaddr *)&sb, lb));
  sendto(c, "from-c", 6, 0, (struct sockaddr *)&sa, la);
  sendto(b, "from-b", 6, 0, (struct sockaddr *)&sa, la);
  r = recv(a, buf, sizeof buf, 0);
  printf("connected got %.*s\n", (int)r, buf);
  printf("connected then %zd errno %d\n", recv(a, buf, sizeof buf, MSG_DONTWAIT), errno);
  printf("send %zd\n", send(a, "reply", 5, 0));
  printf("write %zd\n", write(a, "again", 5));
  flen = sizeof from;
  r = recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
  printf("b got %.*s from a %s\n", (int)r, buf,
         strcmp(show(&from, who, sizeof who), show(&sa, want, sizeof want)) == 0 ? "yes" : "no");
  r = recv(b, buf, sizeof buf, 0);
  printf("b got %.*s\n", (int)r, buf);
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  getpeername(a, (struct sockaddr *)&peer, &plen);
  printf("peer is b %s\n", strcmp(show(&peer, who, sizeof who), show(&sb, want, sizeof want)) == 0 ? "yes" : "no");

  /* an unbound socket's first sendto binds it */
  int d = socket(AF_INET, SOCK_DGRAM, 0);
  printf("sendto unbound %zd\n", sendto(d, "auto", 4, 0, (struct sockaddr *)&sb, lb));
  printf("auto port %s\n", local_port(d) > 0 ? "yes" : "no");
  flen = sizeof from;
  r = recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
  printf("b got %.*s from port %s\n", (int)r, buf,
         ntohs(((struct sockaddr_in *)&from)->sin_port) == local_port(d) ? "right" : "wrong");
  int val = 0;
  socklen_t vlen = sizeof val;
  getsockopt(d, SOL_SOCKET, SO_TYPE, &val, &vlen);
  printf("so_type %d\n", val);
  return 0;
}

static int mode_udp_bind(const char *host, int port) {
  struct sockaddr_storage ss;
  socklen_t len;
  int family = make_addr(host, port, &ss, &len);
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  int rc = bind(fd, (struct sockaddr *)&ss, len);
  printf("bind %d errno %d\n", rc, rc < 0 ? errno : 0);
  return 0;
}

/* ------------------------------------------------------------------------ */

static int mode_unix(const char *path, const char *msg) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
  printf("read before connect %zd errno %d\n", read(fd, buf, 1), errno);
  if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
    printf("connect errno %d %s\n", errno, strerror(errno));
    return 0;
  }
  if (write_all(fd, msg, strlen(msg)) < 0) die("write");
  if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
  size_t total = 0;
  ssize_t r;
  while ((r = read(fd, buf + total, sizeof buf - total)) > 0) total += (size_t)r;
  if (r < 0) die("read");
  printf("reply %.*s\n", (int)total, buf);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  printf("getpeername %d errno %d\n", getpeername(fd, (struct sockaddr *)&ss, &len), errno);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc < 2) return 2;
  const char *m = argv[1];
  if (!strcmp(m, "echo") && argc >= 3) return mode_echo(atoi(argv[2]), argc > 3 ? argv[3] : "127.0.0.1", 0);
  if (!strcmp(m, "echo-p1") && argc >= 3) return mode_echo(atoi(argv[2]), "127.0.0.1", 1);
  if (!strcmp(m, "forward") && argc >= 4) return mode_forward(argv[2], atoi(argv[3]));
  if (!strcmp(m, "bind") && argc >= 4) return mode_bind(argv[2], atoi(argv[3]));
  if (!strcmp(m, "checks")) return mode_checks();
  if (!strcmp(m, "v6only") && argc >= 3) return mode_v6only(atoi(argv[2]));
  if (!strcmp(m, "udp-echo") && argc >= 3) return mode_udp_echo(atol(argv[2]), argc > 3 ? argv[3] : "127.0.0.1");
  if (!strcmp(m, "udp-checks")) return mode_udp_checks();
  if (!strcmp(m, "udp-bind") && argc >= 4) return mode_udp_bind(argv[2], atoi(argv[3]));
  if (!strcmp(m, "unix") && argc >= 4) return mode_unix(argv[2], argv[3]);
  printf("unknown mode\n");
  return 2;
}
