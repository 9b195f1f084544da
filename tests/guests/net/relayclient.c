/* Relay tests: open every HOST PORT pair given (in order), send a line on each, read each
 * line back, and report per connection what the guest saw (connect errno, peer address,
 * echo or read errno). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int dial(const char *host, const char *port) {
  struct addrinfo hints, *res, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) { errno = EHOSTUNREACH; return -1; }
  int fd = -1, err = 0;
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) { err = errno; continue; }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) errno = err;
  return fd;
}

/* -send N HOST PORT: write N bytes, close and exit at once (queued bytes must still
 * reach the server). */
static int send_and_exit(long n, const char *host, const char *port) {
  int fd = dial(host, port);
  if (fd < 0) { printf("connect errno %d\n", errno); return 1; }
  static char buf[65536];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)('a' + i % 26);
  while (n > 0) {
    ssize_t w = send(fd, buf, n < (long)sizeof buf ? (size_t)n : sizeof buf, 0);
    if (w < 0) { printf("send errno %d\n", errno); return 1; }
    n -= w;
  }
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 5 && !strcmp(argv[1], "-send")) return send_and_exit(atol(argv[2]), argv[3], argv[4]);
  int n = (argc - 1) / 2;
  int *fds = calloc((size_t)n + 1, sizeof(int));
  for (int i = 0; i < n; i++) {
    fds[i] = dial(argv[1 + 2 * i], argv[2 + 2 * i]);
    if (fds[i] < 0) { printf("%d connect errno %d\n", i, errno); continue; }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getpeername(fds[i], (struct sockaddr *)&ss, &len) == 0 &&
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
      printf("%d peer %s %s\n", i, host, serv);
  }
  for (int i = 0; i < n; i++) {
    if (fds[i] < 0) continue;
    char msg[64];
    int len = snprintf(msg, sizeof msg, "hello-%d\n", i);
    if (send(fds[i], msg, (size_t)len, 0) != len) printf("%d send errno %d\n", i, errno);
  }
  for (int i = 0; i < n; i++) {
    if (fds[i] < 0) continue;
    char want[64], got[64];
    int len = snprintf(want, sizeof want, "hello-%d\n", i), have = 0;
    while (have < len) {
      ssize_t r = recv(fds[i], got + have, (size_t)(len - have), 0);
      if (r < 0) { printf("%d recv errno %d\n", i, errno); break; }
      if (r == 0) { printf("%d eof after %d\n", i, have); break; }
      have += (int)r;
    }
    if (have == len) printf("%d echo %s", i, memcmp(want, got, (size_t)len) ? "WRONG\n" : want);
  }
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
  return 0;
}
