/* Every way a guest can send a packet, each reporting what the host allowed.
 *
 *   policyprobe connect HOST PORT       getaddrinfo, then connect to each address in turn
 *   policyprobe bindconnect ADDR PORT   bind 127.0.0.1:0 (or [::1]:0) first, then connect
 *   policyprobe udp ADDR PORT           sendto, then connect + send
 *   policyprobe listen ADDR             bind ADDR:0 and listen
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void report(const char *what, int rc) {
  if (rc < 0) printf("%s: %s\n", what, strerror(errno));
  else printf("%s: ok\n", what);
}

/* A literal as a sockaddr; returns its length, or 0 if ADDR is not a literal. */
static socklen_t literal(const char *addr, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((unsigned short)port);
    return sizeof *in4;
  }
  if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((unsigned short)port);
    return sizeof *in6;
  }
  return 0;
}

static int mode_connect(const char *host, const char *port) {
  struct addrinfo hints, *res, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc) { printf("getaddrinfo: %s\n", gai_strerror(rc)); return 1; }
  int status = 1;
  for (ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) { report("socket", -1); continue; }
    rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    report(ai->ai_family == AF_INET6 ? "connect6" : "connect4", rc);
    if (rc == 0) {
      report("send", (int)send(fd, "x", 1, 0));
      status = 0;
    }
    close(fd);
  }
  freeaddrinfo(res);
  return status;
}

static int mode_bindconnect(const char *addr, int port) {
  struct sockaddr_storage to, from;
  socklen_t len = literal(addr, port, &to);
  if (!len) { printf("not a literal\n"); return 2; }
  socklen_t flen = literal(to.ss_family == AF_INET ? "127.0.0.1" : "::1", 0, &from);
  int fd = socket(to.ss_family, SOCK_STREAM, 0);
  report("bind", bind(fd, (struct sockaddr *)&from, flen));
  int rc = connect(fd, (struct sockaddr *)&to, len);
  report("connect", rc);
  if (rc == 0) report("send", (int)send(fd, "x", 1, 0));
  close(fd);
  return rc == 0 ? 0 : 1;
}

static int mode_udp(const char *addr, int port) {
  struct sockaddr_storage to;
  socklen_t len = literal(addr, port, &to);
  if (!len) { printf("not a literal\n"); return 2; }
  int fd = socket(to.ss_family, SOCK_DGRAM, 0);
  report("sendto", (int)sendto(fd, "x", 1, 0, (struct sockaddr *)&to, len));
  close(fd);
  fd = socket(to.ss_family, SOCK_DGRAM, 0);
  int rc = connect(fd, (struct sockaddr *)&to, len);
  report("connect", rc);
  if (rc == 0) report("send", (int)send(fd, "y", 1, 0));
  close(fd);
  return 0;
}

static int mode_listen(const char *addr) {
  struct sockaddr_storage at;
  socklen_t len = literal(addr, 0, &at);
  if (!len) { printf("not a literal\n"); return 2; }
  int fd = socket(at.ss_family, SOCK_STREAM, 0);
  int rc = bind(fd, (struct sockaddr *)&at, len);
  report("bind", rc);
  if (rc == 0) report("listen", listen(fd, 4));
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc >= 4 && !strcmp(argv[1], "connect")) return mode_connect(argv[2], argv[3]);
  if (argc >= 4 && !strcmp(argv[1], "bindconnect")) return mode_bindconnect(argv[2], atoi(argv[3]));
  if (argc >= 4 && !strcmp(argv[1], "udp")) return mode_udp(argv[2], atoi(argv[3]));
  if (argc >= 3 && !strcmp(argv[1], "listen")) return mode_listen(argv[2]);
  printf("usage: policyprobe connect|bindconnect|udp|listen ...\n");
  return 2;
}
