/* Name lookups as a guest times them: getaddrinfo of COUNT distinct names
 * (FORMAT with %d for 0..COUNT-1), then of the same names again, each printed as
 * "first MICROSECONDS" or "again MICROSECONDS"; a failed lookup prints
 * "error NAME TEXT" and ends with status 1.
 *
 *   lookup_client COUNT FORMAT */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: lookup_client COUNT FORMAT\n");
        return 2;
    }
    int count = atoi(argv[1]);
    const char *phases[] = {"first", "again"};
    for (int phase = 0; phase < 2; phase++) {
        for (int i = 0; i < count; i++) {
            char name[256];
            snprintf(name, sizeof name, argv[2], i);
            struct addrinfo hints, *res;
            memset(&hints, 0, sizeof hints);
            hints.ai_socktype = SOCK_STREAM;
            double start = now_us();
            int rc = getaddrinfo(name, "80", &hints, &res);
            double took = now_us() - start;
            if (rc != 0) {
                printf("error %s %s\n", name, gai_strerror(rc));
                return 1;
            }
            freeaddrinfo(res);
            printf("%s %.1f\n", phases[phase], took);
        }
    }
    return 0;
}
