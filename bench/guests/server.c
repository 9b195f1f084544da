/* Benchmark server: `echo` or `sink` mode, one thread, a poll(2) loop over every
 * connection. Prints its port on stdout once it accepts connections.
 * Built three ways from this one file: natively with gcc, for wassh with
 * `wassh cc`, and (with -DPREOPENED_LISTENER) for runtimes that hand the guest a
 * listening socket as fd 3 (wasmtime's -S tcplisten). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifndef PREOPENED_LISTENER
#include <netinet/in.h>
#endif

#define MAXCONN 1100
#define BUFSZ 65536

struct conn {
  int fd;
  uint64_t count, sum;
  uint64_t expect;     /* sink: announced payload length (after the 8-byte header) */
  size_t header;       /* sink: header bytes received so far */
  /* echo: bytes read but not yet written back */
  size_t pending, off;
  char *buf;
};

static struct conn conns[MAXCONN];
static struct pollfd pfds[MAXCONN + 1];

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

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

static void drop(int i, int *n) {
  close(conns[i].fd);
  free(conns[i].buf);
  conns[i] = conns[*n - 1];
  (*n)--;
}

int main(int argc, char **argv) {
  int sink = argc > 1 && strcmp(argv[1], "sink") == 0;
  int lfd = open_listener(argc > 2 ? atoi(argv[2]) : 0);
#ifdef PREOPENED_LISTENER
  printf("ready\n");
  fflush(stdout);
#endif
  set_nonblock(lfd);
  int n = 0;
  for (;;) {
    pfds[0].fd = lfd;
    pfds[0].events = n < MAXCONN ? POLLIN : 0;
    for (int i = 0; i < n; i++) {
      pfds[i + 1].fd = conns[i].fd;
      pfds[i + 1].events = conns[i].pending ? POLLOUT : POLLIN;
      pfds[i + 1].revents = 0;
    }
    if (poll(pfds, (nfds_t)n + 1, -1) < 0) {
      if (errno == EINTR) continue;
      perror("poll");
      return 1;
    }
    if (pfds[0].revents & POLLIN) {
      for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0) break;
        set_nonblock(c);
        conns[n].fd = c;
        conns[n].count = conns[n].sum = 0;
        conns[n].expect = 0;
        conns[n].header = 0;
        conns[n].pending = conns[n].off = 0;
        conns[n].buf = malloc(BUFSZ);
        n++;
        if (n == MAXCONN) break;
      }
    }
    for (int i = n - 1; i >= 0; i--) {
      short re = pfds[i + 1].revents;
      struct conn *k = &conns[i];
      if (!re) continue;
      if (k->pending) {
        ssize_t w = send(k->fd, k->buf + k->off, k->pending, 0);
        if (w > 0) { k->off += (size_t)w; k->pending -= (size_t)w; }
        else if (w < 0 && errno != EAGAIN) { drop(i, &n); }
        continue;
      }
      ssize_t r = recv(k->fd, k->buf, BUFSZ, 0);
      if (r < 0) { if (errno != EAGAIN) drop(i, &n); continue; }
      if (r == 0) {
        if (sink && k->expect != UINT64_MAX) {
          uint64_t out[2] = {k->count, k->sum};
          send(k->fd, out, sizeof out, 0);
        }
        drop(i, &n);
        continue;
      }
      if (sink) {
        char *data = k->buf;
        size_t len = (size_t)r;
        while (k->header < 8 && len) { /* the length header, little-endian */
          k->expect |= (uint64_t)(uint8_t)*data << (8 * k->header);
          k->header++;
          data++;
          len--;
        }
        /* checksum: the sum of the payload's bytes (added 8 at a time when aligned) */
        size_t j = 0;
        if (((uintptr_t)data & 7) == 0) {
          const uint64_t *w = (const uint64_t *)(void *)data;
          for (; j + 8 <= len; j += 8) {
            uint64_t v = w[j / 8];
            v = (v & 0x00FF00FF00FF00FFull) + ((v >> 8) & 0x00FF00FF00FF00FFull);
            v = (v & 0x0000FFFF0000FFFFull) + ((v >> 16) & 0x0000FFFF0000FFFFull);
            k->sum += (v & 0xFFFFFFFFull) + (v >> 32);
          }
        }
        for (; j < len; j++) k->sum += (uint8_t)data[j];
        k->count += len;
        if (k->header == 8 && k->count == k->expect) {
          uint64_t out[2] = {k->count, k->sum};
          send(k->fd, out, sizeof out, 0);
          k->expect = UINT64_MAX; /* answered: the EOF below must not answer again */
        }
        continue;
      }
      ssize_t w = send(k->fd, k->buf, (size_t)r, 0);
      if (w < 0) { if (errno != EAGAIN) { drop(i, &n); continue; } w = 0; }
      if (w < r) { k->off = (size_t)w; k->pending = (size_t)(r - w); }
    }
  }
}
