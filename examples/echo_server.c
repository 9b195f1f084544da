/* A TCP echo server to run under wassh; ordinary POSIX C.
 *
 *   wassh cc -O2 examples/echo_server.c -o build/echo_server.wasm
 *   wassh run build/echo_server.wasm -- [PORT [ADDRESS]]
 *
 * PORT 0 (the default) takes any free port; ADDRESS defaults to 127.0.0.1.
 * Prints "listening on ADDRESS port P", then echoes every client, many at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 256

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  const char *address = argc > 2 ? argv[2] : "127.0.0.1";
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, address, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    len = sizeof *sin;
  } else if (inet_pton(AF_INET6, address, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    len = sizeof *sin6;
  } else {
    fprintf(stderr, "echo_server: %s is not an IP address\n", address);
    return 2;
  }

  int listener = socket(ss.ss_family, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listener, (struct sockaddr *)&ss, len) < 0 || listen(listener, 64) < 0) {
    fprintf(stderr, "echo_server: cannot listen on %s port %d: %s\n", address, port,
            strerror(errno));
    return 1;
  }
  getsockname(listener, (struct sockaddr *)&ss, &len);
  port = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
  printf("listening on %s port %d\n", address, port);
  fflush(stdout);

  struct pollfd fds[MAX_FDS] = {{.fd = listener, .events = POLLIN}};
  int nfds = 1;
  char buf[16384];
  for (;;) {
    fds[0].events = nfds < MAX_FDS ? POLLIN : 0; /* full: leave new clients queued */
    if (poll(fds, nfds, -1) < 0) return 1;
    for (int i = nfds - 1; i >= 1; i--) {
      if (!fds[i].revents) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      ssize_t off = 0;
      while (n > 0 && off < n) {
        ssize_t w = write(fds[i].fd, buf + off, n - off);
        if (w < 0) break;
        off += w;
      }
      if (n <= 0 || off < n) { /* end of stream or error: drop the client */
        close(fds[i].fd);
        fds[i] = fds[--nfds];
      }
    }
    if (fds[0].revents & POLLIN) {
      int client = accept(listener, NULL, NULL);
      if (client >= 0) fds[nfds++] = (struct pollfd){.fd = client, .events = POLLIN};
    }
  }
}
