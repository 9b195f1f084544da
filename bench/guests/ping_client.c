/* Client benchmark: 1-byte ping-pong against an echo server; prints the median and
 * p99 round trip in microseconds, measured inside the program. */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: ping_client HOST PORT COUNT\n"); return 2; }
  int count = atoi(argv[3]);
  struct addrinfo hints = {0}, *res;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(argv[1], argv[2], &hints, &res)) { perror("getaddrinfo"); return 1; }
  int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen)) { perror("connect"); return 1; }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  double *t = malloc(sizeof(double) * (size_t)count);
  char c = 'x';
  for (int i = -200; i < count; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (send(fd, &c, 1, 0) != 1 || recv(fd, &c, 1, 0) != 1) { perror("ping"); return 1; }
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (i >= 0) t[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
  }
  qsort(t, (size_t)count, sizeof(double), cmp);
  printf("%.1f %.1f\n", t[count / 2], t[count * 99 / 100]);
  close(fd);
  return 0;
}
