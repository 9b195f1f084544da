/* resolve: the guest of wassh.testing's resolver conformance cases.
 *
 * Built with the wassh SDK (wassh.cc) for wasm32-wasi. One mode per argv[1];
 * results are printed one per line as "word value..." for the host to check;
 * getaddrinfo's failures by name (EAI_NONAME), an errno by name (ECONNREFUSED).
 *
 *   lookup FAMILY NAME [FAMILY NAME...]
 *       getaddrinfo(NAME, AI_CANONNAME) for each pair in turn, FAMILY being
 *       unspec, inet or inet6. Before each: "asking FAMILY NAME" (so the host
 *       knows the guest waits in it); after: "answer FAMILY NAME CANONICAL
 *       ADDRESS..." (the addresses in the order getaddrinfo gave them) or
 *       "error FAMILY NAME EAI_..."
 *   connect NAME PORT TOKEN
 *       getaddrinfo(NAME, PORT), then each address in turn until one connects
 *       ("connect ADDRESS ERRNO" for each that fails, "connected ADDRESS" for
 *       the one that does); greets the kit's peer server with "TOKEN echo",
 *       sends a message, half-closes and reads the echo to its end: "echo ok N"
 *       or "echo mismatch N" (N bytes read), "echo ERRNO" if reading fails
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *eai_name(int rc) {
  static char other[24];
  switch (rc) {
    case EAI_NONAME: return "EAI_NONAME";
    case EAI_NODATA: return "EAI_NODATA";
    case EAI_AGAIN: return "EAI_AGAIN";
    case EAI_FAIL: return "EAI_FAIL";
    case EAI_FAMILY: return "EAI_FAMILY";
    case EAI_MEMORY: return "EAI_MEMORY";
    case EAI_SERVICE: return "EAI_SERVICE";
    case EAI_SYSTEM: return "EAI_SYSTEM";
    default: snprintf(other, sizeof other, "EAI_%d", rc); return other;
  }
}

static const char *ename(int e) {
  static char other[16];
  switch (e) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EINTR: return "EINTR";
    case EPIPE: return "EPIPE";
    default: snprintf(other, sizeof other, "E%d", e); return other;
  }
}

static const char *address(const struct sockaddr *sa, char *out, size_t n) {
  if (sa->sa_family == AF_INET)
    return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, n);
  if (sa->sa_family == AF_INET6)
    return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, n);
  snprintf(out, n, "family-%d", sa->sa_family);
  return out;
}

static int family_of(const char *text, int *family) {
  if (!strcmp(text, "unspec")) *family = AF_UNSPEC;
  else if (!strcmp(text, "inet")) *family = AF_INET;
  else if (!strcmp(text, "inet6")) *family = AF_INET6;
  else return -1;
  return 0;
}

static int mode_lookup(int argc, char **argv) {
  for (int i = 0; i + 1 < argc; i += 2) {
    const char *fam = argv[i], *name = argv[i + 1];
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    if (family_of(fam, &hints.ai_family) < 0) {
      printf("bad-family %s\n", fam);
      return 2;
    }
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    printf("asking %s %s\n", fam, name);
    int rc = getaddrinfo(name, "80", &hints, &res);
    if (rc != 0) {
      printf("error %s %s %s\n", fam, name, eai_name(rc));
      continue;
    }
    printf("answer %s %s %s", fam, name, res->ai_canonname ? res->ai_canonname : "-");
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
      char text[INET6_ADDRSTRLEN + 16];
      printf(" %s", address(ai->ai_addr, text, sizeof text));
    }
    printf("\n");
    freeaddrinfo(res);
  }
  return 0;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, 0);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int mode_connect(const char *name, const char *port, const char *token) {
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(name, port, &hints, &res);
  if (rc != 0) {
    printf("error unspec %s %s\n", name, eai_name(rc));
    return 1;
  }
  int fd = -1;
  char text[INET6_ADDRSTRLEN + 16];
  for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
      printf("socket %s %s\n", address(ai->ai_addr, text, sizeof text), ename(errno));
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      printf("connected %s\n", address(ai->ai_addr, text, sizeof text));
    } else {
      printf("connect %s %s\n", address(ai->ai_addr, text, sizeof text), ename(errno));
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) return 1;
  char message[512];
  int greeting = snprintf(message, sizeof message, "%s echo\n", token);
  int total = snprintf(message + greeting, sizeof message - (size_t)greeting,
                       "reached %s by its name\n", name);
  if (send_all(fd, message, (size_t)(greeting + total)) < 0 || shutdown(fd, SHUT_WR) < 0) {
    printf("send %s\n", ename(errno));
    close(fd);
    return 1;
  }
  char echoed[512];
  size_t got = 0;
  for (;;) {
    ssize_t r = recv(fd, echoed + got, sizeof echoed - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      printf("echo %s\n", ename(errno));
      close(fd);
      return 1;
    }
    if (r == 0 || (got += (size_t)r) == sizeof echoed) break;
  }
  close(fd);
  int same = got == (size_t)total && memcmp(echoed, message + greeting, got) == 0;
  printf("echo %s %zu\n", same ? "ok" : "mismatch", got);
  return same ? 0 : 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *m = argc > 1 ? argv[1] : "";
  if (!strcmp(m, "lookup") && argc >= 4 && argc % 2 == 0) return mode_lookup(argc - 2, argv + 2);
  if (!strcmp(m, "connect") && argc == 5) return mode_connect(argv[2], argv[3], argv[4]);
  fprintf(stderr, "resolve: unknown mode or wrong arguments: %s (%d)\n", m, argc);
  return 2;
}
