/* recv()/recvfrom()/recvmsg() flags and the poll readiness of sockets that are
 * not connected, through the SDK; one mode per argv[1], one line per check.
 *
 *   tcp PORT        against the test's scripted TCP server on 127.0.0.1:PORT,
 *                   which answers one command byte at a time: 'h' -> "hello",
 *                   'w' -> "abc", 300 ms later "defgh", 't' -> "0123456789"
 *   udp PORT        against the test's UDP echo server on 127.0.0.1:PORT
 *   fresh           poll() on new sockets of every family and type, no timeout
 *   unbound         poll(POLLIN, 200 ms) on a new UDP socket, and its POLLOUT
 *   forever         poll(POLLIN, -1) on a new UDP socket: prints "ready", then
 *                   waits until a signal (SIGTERM, caught) interrupts it
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define UNKNOWN_FLAG 0x8 /* no flag the SDK knows (Linux's MSG_CTRUNC) */

static char buf[256];

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *ename(int e) {
  switch (e) {
  case EAGAIN: return "EAGAIN";
  case EINVAL: return "EINVAL";
  case EINTR: return "EINTR";
  case ENOTCONN: return "ENOTCONN";
  case EFAULT: return "EFAULT";
  default: {
    static char other[32];
    snprintf(other, sizeof other, "errno%d", e);
    return other;
  }
  }
}

/* "N text" for a count, "-1 ENAME" for a failure. */
static const char *result(ssize_t r, const char *data) {
  static char text[300];
  if (r < 0)
    snprintf(text, sizeof text, "-1 %s", ename(errno));
  else
    snprintf(text, sizeof text, "%zd %.*s", r, (int)(r > 64 ? 64 : r), data);
  return text;
}

static const char *names(short r, char *text, size_t size) {
  snprintf(text, size, "%s%s%s%s%s", r & POLLIN ? " IN" : "", r & POLLOUT ? " OUT" : "",
           r & POLLERR ? " ERR" : "", r & POLLHUP ? " HUP" : "", r & POLLNVAL ? " NVAL" : "");
  return text;
}

/* "N NAMES" for a poll result, "-1 ENAME" for a failure. */
static const char *revents(int n, short r) {
  static char text[64];
  char set[40];
  if (n < 0)
    snprintf(text, sizeof text, "-1 %s", ename(errno));
  else
    snprintf(text, sizeof text, "%d%s", n, names(r, set, sizeof set));
  return text;
}

static const char *from_text(const struct sockaddr_in *sin) {
  static char text[64];
  char host[INET_ADDRSTRLEN];
  if (sin->sin_family != AF_INET)
    return "family?";
  inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
  snprintf(text, sizeof text, "%s %d", host, ntohs(sin->sin_port));
  return text;
}

static int wait_readable(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, 5000) == 1 && (p.revents & POLLIN);
}

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static struct sockaddr_in loopback(const char *port) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((unsigned short)atoi(port));
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  return sin;
}

static void command(int fd, char c) {
  if (send(fd, &c, 1, 0) != 1)
    printf("command %c %s\n", c, ename(errno));
}

static int mode_tcp(const char *port) {
  struct sockaddr_in peer = loopback(port), from;
  socklen_t flen;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&peer, sizeof peer) < 0) {
    printf("connect %s\n", ename(errno));
    return 1;
  }
  ssize_t r = recv(fd, buf, 5, MSG_PEEK | MSG_DONTWAIT);
  printf("peek-dontwait-empty %s\n", result(r, buf));
  r = recv(fd, buf, 5, MSG_DONTWAIT);
  printf("dontwait-empty %s\n", result(r, buf));

  /* MSG_PEEK leaves the bytes where they are */
  command(fd, 'h');
  wait_readable(fd);
  pause_ms(50); /* all five bytes */
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, 5, MSG_PEEK);
  printf("peek %s\n", result(r, buf));
  memset(buf, 0, sizeof buf);
  memset(&from, 0, sizeof from);
  flen = sizeof from;
  r = recvfrom(fd, buf, sizeof buf, MSG_PEEK, (struct sockaddr *)&from, &flen);
  printf("peek-again %s from %s\n", result(r, buf), from_text(&from));
  struct pollfd p = {fd, POLLIN, 0};
  int n = poll(&p, 1, 0);
  printf("poll-after-peek %s\n", revents(n, p.revents));
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, sizeof buf, 0);
  printf("read %s\n", result(r, buf));

  /* recvmsg(MSG_PEEK) over two buffers, then the bytes are still there */
  command(fd, 'h');
  wait_readable(fd);
  pause_ms(50);
  char a[2], b[10];
  struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  msg.msg_flags = -1;
  r = recvmsg(fd, &msg, MSG_PEEK);
  printf("recvmsg-peek %zd %.2s|%.*s flags %d\n", r, a, (int)(r > 2 ? r - 2 : 0), b,
         msg.msg_flags);
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, sizeof buf, 0);
  printf("read %s\n", result(r, buf));

  /* MSG_WAITALL waits for the second piece */
  command(fd, 'w');
  long long t0 = now_ms();
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, 8, MSG_WAITALL);
  printf("waitall %s waited %s\n", result(r, buf), now_ms() - t0 >= 200 ? "yes" : "no");

  /* MSG_PEEK | MSG_WAITALL: the same wait, and the bytes stay */
  command(fd, 'w');
  t0 = now_ms();
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, 8, MSG_PEEK | MSG_WAITALL);
  printf("peek-waitall %s waited %s\n", result(r, buf), now_ms() - t0 >= 200 ? "yes" : "no");
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, sizeof buf, 0);
  printf("read %s\n", result(r, buf));

  /* MSG_WAITALL | MSG_DONTWAIT: what is there, without waiting */
  command(fd, 'w');
  wait_readable(fd);
  pause_ms(50);
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, 8, MSG_WAITALL | MSG_DONTWAIT);
  printf("waitall-dontwait %s\n", result(r, buf));
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, 5, MSG_WAITALL);
  printf("rest %s\n", result(r, buf));

  /* TCP's MSG_TRUNC: the bytes are taken, not copied */
  command(fd, 't');
  wait_readable(fd);
  pause_ms(50);
  memset(buf, '.', sizeof buf);
  r = recv(fd, buf, 4, MSG_TRUNC);
  printf("tcp-trunc %s\n", result(r, buf));
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, sizeof buf, 0);
  printf("read %s\n", result(r, buf));
  command(fd, 't');
  wait_readable(fd);
  pause_ms(50);
  memset(a, '.', sizeof a);
  memset(b, '.', sizeof b);
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  iov[1].iov_len = 3;
  r = recvmsg(fd, &msg, MSG_TRUNC);
  printf("tcp-recvmsg-trunc %zd %.2s|%.3s flags %d\n", r, a, b, msg.msg_flags);
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, sizeof buf, 0);
  printf("read %s\n", result(r, buf));

  r = recv(fd, buf, 5, UNKNOWN_FLAG);
  printf("unknown-flag %s\n", result(r, buf));
  close(fd);
  return 0;
}

static void udp_send(int fd, const struct sockaddr_in *to, const char *text) {
  if (sendto(fd, text, strlen(text), 0, (const struct sockaddr *)to, sizeof *to) < 0)
    printf("sendto %s\n", ename(errno));
}

static int mode_udp(const char *port) {
  struct sockaddr_in peer = loopback(port), from;
  socklen_t flen;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ssize_t r = recv(fd, buf, 5, UNKNOWN_FLAG);
  printf("unknown-flag %s\n", result(r, buf));

  /* MSG_PEEK: the source is reported and the datagram stays, whole */
  udp_send(fd, &peer, "0123456789");
  wait_readable(fd);
  memset(buf, 0, sizeof buf);
  memset(&from, 0, sizeof from);
  flen = sizeof from;
  r = recvfrom(fd, buf, 4, MSG_PEEK, (struct sockaddr *)&from, &flen);
  printf("peek %s from %s\n", result(r, buf), from_text(&from));
  memset(buf, 0, sizeof buf);
  memset(&from, 0, sizeof from);
  flen = sizeof from;
  r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
  printf("then %s from %s\n", result(r, buf), from_text(&from));
  r = recv(fd, buf, 4, MSG_PEEK | MSG_DONTWAIT);
  printf("peek-dontwait-empty %s\n", result(r, buf));

  /* recv(MSG_TRUNC): the datagram's real length */
  udp_send(fd, &peer, "0123456789");
  wait_readable(fd);
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, 4, MSG_TRUNC);
  printf("trunc %s\n", result(r, buf));
  udp_send(fd, &peer, "0123456789");
  wait_readable(fd);
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, 4, MSG_PEEK | MSG_TRUNC);
  printf("peek-trunc %s\n", result(r, buf));
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, sizeof buf, 0);
  printf("then %s\n", result(r, buf));

  /* recvmsg() sets MSG_TRUNC in msg_flags; the rest of the datagram is gone */
  udp_send(fd, &peer, "0123456789");
  udp_send(fd, &peer, "next");
  wait_readable(fd);
  char a[2], b[3];
  struct iovec one = {buf, 4};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  memset(buf, 0, sizeof buf);
  memset(&from, 0, sizeof from);
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &one;
  msg.msg_iovlen = 1;
  r = recvmsg(fd, &msg, 0);
  printf("recvmsg %s%s from %s\n", result(r, buf), msg.msg_flags & MSG_TRUNC ? " MSG_TRUNC" : "",
         from_text(&from));
  wait_readable(fd);
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, sizeof buf, 0);
  printf("then %s\n", result(r, buf));

  udp_send(fd, &peer, "0123456789");
  wait_readable(fd);
  struct iovec two[2] = {{a, sizeof a}, {b, sizeof b}};
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = two;
  msg.msg_iovlen = 2;
  r = recvmsg(fd, &msg, MSG_PEEK);
  printf("recvmsg-peek-iov %zd %.2s|%.3s%s\n", r, a, b,
         msg.msg_flags & MSG_TRUNC ? " MSG_TRUNC" : "");
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = two;
  msg.msg_iovlen = 2;
  r = recvmsg(fd, &msg, MSG_TRUNC);
  printf("recvmsg-trunc-flag %zd %.2s|%.3s%s\n", r, a, b,
         msg.msg_flags & MSG_TRUNC ? " MSG_TRUNC" : "");

  udp_send(fd, &peer, "fits");
  wait_readable(fd);
  memset(buf, 0, sizeof buf);
  one.iov_len = sizeof buf;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &one;
  msg.msg_iovlen = 1;
  msg.msg_flags = -1;
  r = recvmsg(fd, &msg, 0);
  printf("recvmsg-fits %s flags %d\n", result(r, buf), msg.msg_flags);

  /* MSG_WAITALL does not join datagrams */
  udp_send(fd, &peer, "0123456789");
  wait_readable(fd);
  memset(buf, 0, sizeof buf);
  r = recv(fd, buf, sizeof buf, MSG_WAITALL);
  printf("waitall %s\n", result(r, buf));
  close(fd);
  return 0;
}

static void fresh_one(const char *name, int family, int type) {
  static const struct {
    const char *name;
    short events;
  } sets[] = {{"in", POLLIN}, {"out", POLLOUT}, {"inout", POLLIN | POLLOUT}};
  int fd = socket(family, type, 0);
  if (fd < 0) {
    printf("fresh %s socket %s\n", name, ename(errno));
    return;
  }
  for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
    struct pollfd p = {fd, sets[i].events, 0};
    int n = poll(&p, 1, 0);
    printf("fresh %s %s %s\n", name, sets[i].name, revents(n, p.revents));
  }
  close(fd);
}

static int mode_fresh(void) {
  fresh_one("inet-stream", AF_INET, SOCK_STREAM);
  fresh_one("inet6-stream", AF_INET6, SOCK_STREAM);
  fresh_one("inet-dgram", AF_INET, SOCK_DGRAM);
  fresh_one("inet6-dgram", AF_INET6, SOCK_DGRAM);
  return 0;
}

static int mode_unbound(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct pollfd p = {fd, POLLIN, 0};
  long long t0 = now_ms();
  int n = poll(&p, 1, 200);
  long long waited = now_ms() - t0;
  printf("unbound-in %s waited %s\n", revents(n, p.revents),
         waited >= 190 ? (waited < 2000 ? "200ms" : "too long") : "too short");
  p.events = POLLIN | POLLOUT;
  p.revents = 0;
  n = poll(&p, 1, 200);
  printf("unbound-inout %s\n", revents(n, p.revents));
  /* beside a descriptor that becomes ready: poll answers for that one */
  int other = socket(AF_INET, SOCK_DGRAM, 0);
  struct pollfd two[2] = {{fd, POLLIN, 0}, {other, POLLOUT, 0}};
  n = poll(two, 2, 5000);
  char first[40], second[40];
  printf("unbound-beside %d:%s /%s\n", n, names(two[0].revents, first, sizeof first),
         names(two[1].revents, second, sizeof second));
  close(other);
  close(fd);
  return 0;
}

static volatile sig_atomic_t caught;

static void on_signal(int sig) { caught = sig; }

static int mode_forever(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct pollfd p = {fd, POLLIN, 0};
  printf("ready\n");
  fflush(stdout);
  long long t0 = now_ms();
  int n = poll(&p, 1, -1);
  printf("forever %s caught %d after %s\n", revents(n, p.revents), (int)caught,
         now_ms() - t0 >= 250 ? "the signal" : "too short");
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 3 && !strcmp(argv[1], "tcp")) return mode_tcp(argv[2]);
  if (argc >= 3 && !strcmp(argv[1], "udp")) return mode_udp(argv[2]);
  if (argc >= 2 && !strcmp(argv[1], "fresh")) return mode_fresh();
  if (argc >= 2 && !strcmp(argv[1], "unbound")) return mode_unbound();
  if (argc >= 2 && !strcmp(argv[1], "forever")) return mode_forever();
  printf("unknown mode\n");
  return 2;
}
