/* An ordinary POSIX TCP client: resolve, connect, send a line, print the reply.
 * Built for wasm32-wasi with `wassh cc`, run with `wassh run`. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
    return 2;
  }
  struct addrinfo hints = {0}, *res, *ai;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(argv[1], argv[2], &hints, &res);
  if (rc) {
    fprintf(stderr, "getaddrinfo %s: %s\n", argv[1], gai_strerror(rc));
    return 1;
  }
  int fd = -1;
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (fd >= 0) close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    fprintf(stderr, "connect %s:%s: %s\n", argv[1], argv[2], strerror(errno));
    return 1;
  }
  const char *hello = "hello from a WebAssembly guest\n";
  send(fd, hello, strlen(hello), 0);
  shutdown(fd, SHUT_WR);
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) fwrite(buf, 1, (size_t)n, stdout);
  close(fd);
  return n < 0 ? 1 : 0;
}
