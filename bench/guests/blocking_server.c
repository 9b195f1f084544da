/* Benchmark server, the blocking shape: `echo` or `sink` mode, one thread, one
 * connection at a time on blocking sockets, no poll: accept, then read/write until
 * the client's EOF, then accept the next. Prints its port on stdout once it
 * accepts connections.
 * The sink protocol is server.c's: an 8-byte little-endian payload length, then
 * the payload; the 16-byte reply (count, byte sum) goes out when the payload is
 * complete (or at EOF if it never completes).
 * Built three ways from this one file: natively with gcc, for wassh with
 * `wassh cc`, and (with -DPREOPENED_LISTENER) for runtimes that hand the guest a
 * listening socket as fd 3 (wasmtime's -S tcplisten). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifndef PREOPENED_LISTENER
#include <netinet/in.h>
#endif

#define BUFSZ 65536

static char buf[BUFSZ];

static int open_listener(int port) {
#ifdef PREOPENED_LISTENER
  (void)port;
  return 3;
#else
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(0x7f000001);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 1024)) {
    perror("bind/listen");
    exit(1);
  }
  socklen_t len = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &len);
  printf("%d\n", ntohs(sa.sin_port));
  fflush(stdout);
  return fd;
#endif
}

/* Write all of it; 0 on success, -1 when the peer is gone. */
static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The sum of the bytes (added 8 at a time when aligned), as server.c does. */
static uint64_t byte_sum(const char *data, size_t len) {
  uint64_t sum = 0;
  size_t j = 0;
  if (((uintptr_t)data & 7) == 0) {
    const uint64_t *w = (const uint64_t *)(const void *)data;
    for (; j + 8 <= len; j += 8) {
      uint64_t v = w[j / 8];
      v = (v & 0x00FF00FF00FF00FFull) + ((v >> 8) & 0x00FF00FF00FF00FFull);
      v = (v & 0x0000FFFF0000FFFFull) + ((v >> 16) & 0x0000FFFF0000FFFFull);
      sum += (v & 0xFFFFFFFFull) + (v >> 32);
    }
  }
  for (; j < len; j++) sum += (uint8_t)data[j];
  return sum;
}

static void serve_echo(int fd) {
  for (;;) {
    ssize_t r = read(fd, buf, BUFSZ);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    if (write_all(fd, buf, (size_t)r)) return;
  }
}

static void serve_sink(int fd) {
  uint64_t count = 0, sum = 0, expect = 0;
  size_t header = 0;
  int answered = 0;
  for (;;) {
    ssize_t r = read(fd, buf, BUFSZ);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    const char *data = buf;
    size_t len = (size_t)r;
    while (header < 8 && len) { /* the length header, little-endian */
      expect |= (uint64_t)(uint8_t)*data << (8 * header);
      header++;
      data++;
      len--;
    }
    sum += byte_sum(data, len);
    count += len;
    if (header == 8 && count == expect && !answered) {
      uint64_t out[2] = {count, sum};
      if (write_all(fd, (const char *)out, sizeof out)) return;
      answered = 1;
    }
  }
  if (header && !answered) {
    uint64_t out[2] = {count, sum};
    write_all(fd, (const char *)out, sizeof out);
  }
}

int main(int argc, char **argv) {
  int sink = argc > 1 && strcmp(argv[1], "sink") == 0;
  int lfd = open_listener(argc > 2 ? atoi(argv[2]) : 0);
#ifdef PREOPENED_LISTENER
  /* a runtime may hand the listener over non-blocking: this shape blocks in accept */
  fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) & ~O_NONBLOCK);
  printf("ready\n");
  fflush(stdout);
#endif
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("accept");
      return 1;
    }
    if (sink)
      serve_sink(c);
    else
      serve_echo(c);
    close(c);
  }
}
