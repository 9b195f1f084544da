/* Client benchmark: push N bytes in 64 KiB writes (or CHUNK-byte writes, at most
 * 64 KiB) to a sink, read its 16-byte (count, checksum) reply back. */
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: push_client HOST PORT BYTES [CHUNK]\n");
    return 2;
  }
  uint64_t total = strtoull(argv[3], NULL, 10);
  static char buf[65536];
  size_t chunk = argc == 5 ? (size_t)strtoull(argv[4], NULL, 10) : sizeof buf;
  if (chunk == 0 || chunk > sizeof buf) chunk = sizeof buf;
  struct addrinfo hints = {0}, *res;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(argv[1], argv[2], &hints, &res)) { perror("getaddrinfo"); return 1; }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen)) { perror("connect"); return 1; }
  freeaddrinfo(res);
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(i * 7);
  /* announce the length: relays without half-close never deliver our EOF */
  if (send(fd, &total, sizeof total, 0) != (ssize_t)sizeof total) { perror("send"); return 1; }
  uint64_t sent = 0;
  while (sent < total) {
    size_t n = total - sent < chunk ? (size_t)(total - sent) : chunk;
    ssize_t w = send(fd, buf, n, 0);
    if (w <= 0) { perror("send"); return 1; }
    sent += (uint64_t)w;
  }
  uint64_t reply[2] = {0, 0};
  size_t got = 0;
  while (got < sizeof reply) {
    ssize_t r = recv(fd, (char *)reply + got, sizeof reply - got, 0);
    if (r <= 0) break;
    got += (size_t)r;
  }
  uint64_t count = reply[0];
  clock_gettime(CLOCK_MONOTONIC, &t1);
  close(fd);
  /* bytes acknowledged by the sink, and seconds from connect to that acknowledgement */
  printf("%llu %.6f\n", (unsigned long long)count,
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  return count == total ? 0 : 1;
}
