/* A blocking echo server for the compiled accept: prints its port, checks that a
 * non-blocking accept with nothing pending says EAGAIN, then serves COUNT
 * connections one at a time (recv/send until the end of stream) and exits.
 *
 *   acceptloop COUNT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x7f000001);
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 16)) return 1;
    socklen_t len = sizeof sa;
    getsockname(l, (struct sockaddr *)&sa, &len);
    fcntl(l, F_SETFL, fcntl(l, F_GETFL) | O_NONBLOCK);
    int r = accept(l, NULL, NULL);
    int e = errno;
    if (r != -1 || e != EAGAIN) {
        printf("FAIL nonblocking accept: %d errno %d\n", r, e);
        return 1;
    }
    fcntl(l, F_SETFL, fcntl(l, F_GETFL) & ~O_NONBLOCK);
    printf("%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    char buf[4096];
    long total = 0;
    for (int i = 0; i < count; i++) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        int c = accept(l, (struct sockaddr *)&peer, &plen);
        if (c < 0 || ntohl(peer.sin_addr.s_addr) != 0x7f000001) {
            printf("FAIL accept: %d errno %d\n", c, errno);
            return 1;
        }
        ssize_t k;
        while ((k = recv(c, buf, sizeof buf, 0)) > 0) {
            total += k;
            if (send(c, buf, (size_t)k, 0) != k) return 1;
        }
        close(c);
    }
    printf("served %d connections, %ld bytes\n", count, total);
    return 0;
}
