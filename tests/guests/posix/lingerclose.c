/* Sets SO_LINGER {1, 0} before connecting, sends one byte and closes: the
 * peer must see a reset, not an orderly end. Usage: lingerclose PORT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)atoi(argv[1]));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) != 0) {
        perror("setsockopt");
        return 1;
    }
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        perror("connect");
        return 1;
    }
    /* The peer's byte back says it has read ours: only then the reset. */
    char c;
    if (send(fd, "x", 1, 0) != 1 || recv(fd, &c, 1, 0) != 1) {
        perror("exchange");
        return 1;
    }
    close(fd);
    printf("closed\n");
    return 0;
}
