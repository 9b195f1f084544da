/* Name lookups as programs make them; one mode per argv[1].
 *
 *   lookup NAME [inet|inet6|unspec] [v4mapped] [all] [addrconfig] [canon]
 *       getaddrinfo: one line per address, the canonical name, or the error
 *   connect NAME PORT MESSAGE
 *       getaddrinfo, then each address in turn until one connects; sends
 *       MESSAGE, half-closes and prints what comes back
 *   hostent NAME         gethostbyname: h_name and the addresses, or h_errno
 *   reverse ADDRESS [NAME]
 *       getnameinfo(NI_NAMEREQD) on a literal, after looking NAME up if given
 *   alarm NAME restart|jump
 *       SIGALRM after 0.3 s while getaddrinfo waits: with "restart" the
 *       handler returns and the lookup goes on; with "jump" it siglongjmps
 *       out, the classic way to put a timeout on gethostbyname */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char *eai_name(int rc) {
    switch (rc) {
    case EAI_NONAME: return "EAI_NONAME";
    case EAI_AGAIN: return "EAI_AGAIN";
    case EAI_FAIL: return "EAI_FAIL";
    case EAI_NODATA: return "EAI_NODATA";
    case EAI_FAMILY: return "EAI_FAMILY";
    case EAI_MEMORY: return "EAI_MEMORY";
    case EAI_SYSTEM: return "EAI_SYSTEM";
    default: return "EAI_OTHER";
    }
}

static void print_addr(const struct sockaddr *sa) {
    char text[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof text);
        printf("inet %s\n", text);
    } else {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof text);
        printf("inet6 %s\n", text);
    }
}

static int lookup(const char *name, int argc, char **argv) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "inet")) hints.ai_family = AF_INET;
        else if (!strcmp(argv[i], "inet6")) hints.ai_family = AF_INET6;
        else if (!strcmp(argv[i], "v4mapped")) hints.ai_flags |= AI_V4MAPPED;
        else if (!strcmp(argv[i], "all")) hints.ai_flags |= AI_ALL;
        else if (!strcmp(argv[i], "addrconfig")) hints.ai_flags |= AI_ADDRCONFIG;
        else if (!strcmp(argv[i], "canon")) hints.ai_flags |= AI_CANONNAME;
    }
    int rc = getaddrinfo(name, "80", &hints, &res);
    if (rc != 0) {
        printf("error %s: %s\n", eai_name(rc), gai_strerror(rc));
        return 1;
    }
    if (res->ai_canonname != NULL) printf("canonical %s\n", res->ai_canonname);
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) print_addr(ai->ai_addr);
    freeaddrinfo(res);
    return 0;
}

static int connect_to(const char *name, const char *port, const char *message) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(name, port, &hints, &res);
    if (rc != 0) {
        printf("error %s: %s\n", eai_name(rc), gai_strerror(rc));
        return 1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            printf("connected ");
            print_addr(ai->ai_addr);
            break;
        }
        printf("connect %s: %s\n", ai->ai_family == AF_INET ? "inet" : "inet6", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return 1;
    if (send(fd, message, strlen(message), 0) < 0 || shutdown(fd, SHUT_WR) < 0) {
        printf("send: %s\n", strerror(errno));
        return 1;
    }
    char buf[512];
    ssize_t n;
    printf("reply ");
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) fwrite(buf, 1, (size_t)n, stdout);
    printf("\n");
    close(fd);
    return n < 0;
}

static int hostent(const char *name) {
    struct hostent *h = gethostbyname(name);
    if (h == NULL) {
        printf("h_errno %d\n", h_errno);
        return 1;
    }
    printf("h_name %s\n", h->h_name);
    for (char **a = h->h_addr_list; *a != NULL; a++) {
        char text[INET_ADDRSTRLEN];
        printf("inet %s\n", inet_ntop(AF_INET, *a, text, sizeof text));
    }
    return 0;
}

static int reverse(const char *literal, const char *name) {
    if (name != NULL) {
        struct addrinfo hints, *res;
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(name, NULL, &hints, &res) == 0) freeaddrinfo(res);
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (strchr(literal, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, literal, &s6->sin6_addr);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        inet_pton(AF_INET, literal, &s4->sin_addr);
        len = sizeof *s4;
    }
    char host[NI_MAXHOST];
    int rc = getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, NULL, 0, NI_NAMEREQD);
    if (rc != 0) {
        printf("error %s\n", eai_name(rc));
        return 1;
    }
    printf("name %s\n", host);
    return 0;
}

static sigjmp_buf escape;
static volatile sig_atomic_t alarms;
static int jump;

static void on_alarm(int sig) {
    (void)sig;
    alarms++;
    if (jump) siglongjmp(escape, 1);
}

static int alarm_lookup(const char *name, const char *how) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    jump = !strcmp(how, "jump");
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 300000}};
    if (sigsetjmp(escape, 1) != 0) {
        printf("lookup abandoned after %d alarm(s)\n", (int)alarms);
        return 3;
    }
    setitimer(ITIMER_REAL, &it, NULL);
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(name, "80", &hints, &res);
    printf("alarms %d\n", (int)alarms);
    if (rc != 0) {
        printf("error %s\n", eai_name(rc));
        return 1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) print_addr(ai->ai_addr);
    freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 3) return 2;
    const char *mode = argv[1];
    if (!strcmp(mode, "lookup")) return lookup(argv[2], argc - 3, argv + 3);
    if (!strcmp(mode, "connect") && argc == 5) return connect_to(argv[2], argv[3], argv[4]);
    if (!strcmp(mode, "hostent")) return hostent(argv[2]);
    if (!strcmp(mode, "reverse")) return reverse(argv[2], argc > 3 ? argv[3] : NULL);
    if (!strcmp(mode, "alarm") && argc == 4) return alarm_lookup(argv[2], argv[3]);
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
