/* A signal that ends a blocking recv(MSG_WAITALL) or send() after some bytes
 * moved: Linux returns the count so far, not EINTR (the bytes would be lost). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_alarm(int sig) { (void)sig; }

static int dial(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        exit(1);
    }
    return s;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    int port = atoi(argv[1]);

    int s = dial(port); /* the peer sends 4 bytes, then nothing */
    char buf[10];
    alarm(1);
    ssize_t n = recv(s, buf, sizeof buf, MSG_WAITALL);
    printf("recv waitall: %zd%s\n", n, n < 0 ? (errno == EINTR ? " EINTR" : " ?") : "");
    close(s);

    s = dial(port); /* the peer reads nothing from this one */
    size_t size = 64 << 20;
    char *big = calloc(1, size);
    alarm(1);
    n = send(s, big, size, 0);
    printf("send: %s\n", n > 0 && (size_t)n < size ? "a partial count" :
                         n < 0 && errno == EINTR ? "EINTR" : "?");
    close(s);
    return 0;
}
