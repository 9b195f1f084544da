/* Flow-control tests of relays.
 *
 * pingpong HOST PORT TOTAL: the single-threaded pattern that deadlocks a relay
 * client whose directions are coupled: send 64 KiB (looping until all of it is
 * taken), then one recv of up to 64 KiB (whatever has arrived), until TOTAL bytes
 * are sent; then read until all TOTAL echoed bytes are back. Every received byte is
 * checked against the sent stream, so loss, duplication, reordering or corruption
 * shows as "bad". Prints "sent S got G bad B rounds R" and exits 0 when all is well.
 *
 * pingpong -block connect|send|recv|poll HOST PORT: get blocked in that call on a
 * target that neither reads nor answers, after printing "blocking in CALL"; print
 * the outcome ("connect errno E", "send errno E", "recv errno E", "recv eof",
 * "poll revents R") when the call returns. The test kills the relay meanwhile.
 *
 * pingpong -lazy HOST PORT TOTAL MS: ask a source server for TOTAL bytes of the
 * stream (a decimal line), read nothing for MS milliseconds, then read and check
 * everything until the end of the stream; prints "got G bad B" (or the error).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536
/* The stream repeats a pseudo-random block of a prime length: a byte moved by any
 * whole number of frames or chunks (all powers of two here) no longer matches. */
#define PERIOD 65521

static unsigned char pattern[PERIOD + CHUNK];

static void make_pattern(void) {
  uint32_t x = 2463534242u;
  for (int i = 0; i < PERIOD; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    pattern[i] = (unsigned char)(x >> 24);
  }
  for (int i = PERIOD; i < PERIOD + CHUNK; i++) pattern[i] = pattern[i - PERIOD];
}

static const unsigned char *at(uint64_t pos) { return pattern + pos % PERIOD; }

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

/* Checks n received bytes at stream position pos; returns how many differ. */
static uint64_t check(const unsigned char *buf, size_t n, uint64_t pos) {
  if (memcmp(buf, at(pos), n) == 0) return 0;
  uint64_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    if (buf[i] != at(pos + i)[0] && bad++ < 8)
      fprintf(stderr, "bad byte at %llu (+%zu of %zu): %02x, expected %02x\n",
              (unsigned long long)(pos + i), i, n, buf[i], at(pos + i)[0]);
  }
  return bad;
}

static int pingpong(const char *host, const char *port, uint64_t total) {
  int fd = dial(host, port);
  if (fd < 0) { printf("connect errno %d\n", errno); return 1; }
  static unsigned char buf[CHUNK];
  uint64_t sent = 0, got = 0, bad = 0, rounds = 0;
  while (sent < total) {
    size_t want = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
    size_t done = 0;
    while (done < want) {
      ssize_t w = send(fd, at(sent + done), want - done, 0);
      if (w < 0) {
        printf("send errno %d after sent %llu got %llu\n", errno, (unsigned long long)sent,
               (unsigned long long)got);
        return 1;
      }
      done += (size_t)w;
    }
    sent += want;
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) {
      printf("recv %s %d after sent %llu got %llu\n", r ? "errno" : "eof", r ? errno : 0,
             (unsigned long long)sent, (unsigned long long)got);
      return 1;
    }
    bad += check(buf, (size_t)r, got);
    got += (uint64_t)r;
    rounds++;
  }
  while (got < total) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) {
      printf("drain %s %d after got %llu\n", r ? "errno" : "eof", r ? errno : 0,
             (unsigned long long)got);
      return 1;
    }
    bad += check(buf, (size_t)r, got);
    got += (uint64_t)r;
  }
  printf("sent %llu got %llu bad %llu rounds %llu\n", (unsigned long long)sent,
         (unsigned long long)got, (unsigned long long)bad, (unsigned long long)rounds);
  close(fd);
  return bad != 0 || got != total;
}

static int block(const char *call, const char *host, const char *port) {
  if (!strcmp(call, "connect")) printf("blocking in connect\n");
  int fd = dial(host, port);
  if (fd < 0) { printf("connect errno %d\n", errno); return 1; }
  if (!strcmp(call, "send")) {
    /* Fill every buffer on the way without blocking, then block. */
    int announced = 0;
    for (;;) {
      ssize_t w = send(fd, at(0), CHUNK, MSG_DONTWAIT);
      if (w >= 0) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) break;
      if (!announced) { printf("blocking in send\n"); announced = 1; }
      w = send(fd, at(0), CHUNK, 0);
      if (w < 0) break;
    }
    printf("send errno %d\n", errno);
    return 0;
  }
  if (send(fd, "x", 1, 0) != 1) { printf("send errno %d\n", errno); return 1; }
  if (!strcmp(call, "poll")) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    printf("blocking in poll\n");
    int n = poll(&p, 1, -1);
    if (n < 0) { printf("poll errno %d\n", errno); return 1; }
    printf("poll revents %d\n", p.revents);
  } else {
    printf("blocking in recv\n");
  }
  char c;
  ssize_t r = recv(fd, &c, 1, 0);
  if (r < 0) printf("recv errno %d\n", errno);
  else printf("recv %s\n", r ? "data" : "eof");
  return 0;
}

static int lazy(const char *host, const char *port, uint64_t total, long ms) {
  int fd = dial(host, port);
  if (fd < 0) { printf("connect errno %d\n", errno); return 1; }
  char line[32];
  int len = snprintf(line, sizeof line, "%llu\n", (unsigned long long)total);
  if (send(fd, line, (size_t)len, 0) != len) { printf("send errno %d\n", errno); return 1; }
  struct timespec nap = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
  nanosleep(&nap, NULL);
  static unsigned char buf[CHUNK];
  uint64_t got = 0, bad = 0;
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < 0) {
      printf("recv errno %d after got %llu bad %llu\n", errno, (unsigned long long)got,
             (unsigned long long)bad);
      return 1;
    }
    if (r == 0) break;
    bad += check(buf, (size_t)r, got);
    got += (uint64_t)r;
  }
  printf("got %llu bad %llu\n", (unsigned long long)got, (unsigned long long)bad);
  close(fd);
  return bad != 0 || got != total;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  make_pattern();
  if (argc == 5 && !strcmp(argv[1], "-block")) return block(argv[2], argv[3], argv[4]);
  if (argc == 6 && !strcmp(argv[1], "-lazy"))
    return lazy(argv[2], argv[3], strtoull(argv[4], NULL, 10), atol(argv[5]));
  if (argc != 4) {
    fprintf(stderr, "usage: pingpong HOST PORT TOTAL | pingpong -block CALL HOST PORT"
                    " | pingpong -lazy HOST PORT TOTAL MS\n");
    return 2;
  }
  return pingpong(argv[1], argv[2], strtoull(argv[3], NULL, 10));
}
