/* Scale benchmark: open N connections to an echo server, then for R rounds write
 * 4 KiB on every connection and read each echo back, driven by poll(2).
 * Prints the elapsed seconds and the bytes moved. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 4096

int main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: fan_client HOST PORT CONNS ROUNDS\n"); return 2; }
  int n = atoi(argv[3]), rounds = atoi(argv[4]);
  if (n <= 0 || rounds < 0) { fprintf(stderr, "bad counts\n"); return 2; }
  struct addrinfo hints = {0}, *res;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(argv[1], argv[2], &hints, &res)) { perror("getaddrinfo"); return 1; }
  int *fds = calloc((size_t)n, sizeof(int));
  size_t *left = calloc((size_t)n, sizeof(size_t));
  struct pollfd *p = calloc((size_t)n, sizeof(struct pollfd));
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; i++) {
    fds[i] = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fds[i] < 0 || connect(fds[i], res->ai_addr, res->ai_addrlen)) {
      fprintf(stderr, "connect %d: %s\n", i, strerror(errno));
      return 1;
    }
  }
  static char out[CHUNK], in[65536];
  memset(out, 'z', sizeof out);
  unsigned long long moved = 0;
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < n; i++) {
      if (send(fds[i], out, CHUNK, 0) != CHUNK) { perror("send"); return 1; }
      left[i] = CHUNK;
    }
    int pending = n;
    while (pending) {
      for (int i = 0; i < n; i++) {
        p[i].fd = left[i] ? fds[i] : -1;
        p[i].events = POLLIN;
        p[i].revents = 0;
      }
      if (poll(p, (nfds_t)n, 10000) <= 0) { fprintf(stderr, "stalled\n"); return 1; }
      for (int i = 0; i < n; i++) {
        if (!(p[i].revents & POLLIN)) continue;
        ssize_t got = recv(fds[i], in, left[i] < sizeof in ? left[i] : sizeof in, 0);
        if (got <= 0) { fprintf(stderr, "recv %d failed\n", i); return 1; }
        left[i] -= (size_t)got;
        moved += (unsigned long long)got;
        if (!left[i]) pending--;
      }
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.4f %llu\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9,
         moved);
  return 0;
}
