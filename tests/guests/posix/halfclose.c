/* shutdown() with Linux's numbers, symbolic and literal (older code writes
 * shutdown(fd, 1)): after "no more writing" the peer's reply still arrives. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static void round_trip(int port, const char *label, int how) {
    int s = dial(port);
    if (write(s, "hello\n", 6) != 6)
        exit(1);
    int rc = shutdown(s, how);
    printf("%s: shutdown %d", label, rc);
    char buf[64];
    ssize_t n, total = 0;
    while ((n = read(s, buf + total, sizeof buf - 1 - (size_t)total)) > 0)
        total += n;
    buf[total] = 0;
    printf(", reply %s", total ? buf : "(none)\n");
    errno = 0;
    rc = shutdown(s, 7);
    printf("%s: shutdown 7: %d %s\n", label, rc, rc ? strerror(errno) : "");
    close(s);
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    int port = atoi(argv[1]);
    printf("SHUT_RD %d SHUT_WR %d SHUT_RDWR %d\n", SHUT_RD, SHUT_WR, SHUT_RDWR);
    round_trip(port, "SHUT_WR", SHUT_WR);
    round_trip(port, "literal 1", 1);
    return 0;
}
