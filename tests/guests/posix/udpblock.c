/* A blocking recv on a UDP socket that has no address waits (nothing can
 * arrive) until a signal ends it, as on Linux: here SIGALRM after 1 s. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t rang;

static void on_alarm(int sig) {
    (void)sig;
    rang = 1;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm; /* no SA_RESTART: the recv ends with EINTR */
    sigaction(SIGALRM, &sa, NULL);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    char buf[16];
    alarm(1);
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    int err = errno;
    printf("recv %zd %s, alarm %s\n", n, n < 0 && err == EINTR ? "EINTR" : strerror(err),
           rang ? "rang" : "did not ring");
    return 0;
}
