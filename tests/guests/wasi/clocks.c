/* clocks, nanosleep and random_get. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(void) {
    int64_t prev = ns(CLOCK_MONOTONIC), ok = 1;
    for (int i = 0; i < 1000; i++) {
        int64_t now = ns(CLOCK_MONOTONIC);
        if (now < prev) ok = 0;
        prev = now;
    }
    printf("monotonic non-decreasing: %s\n", ok ? "yes" : "no");
    int64_t t0 = ns(CLOCK_MONOTONIC);
    struct timespec req = {0, 50 * 1000000};
    int rc = nanosleep(&req, NULL);
    int64_t slept = ns(CLOCK_MONOTONIC) - t0;
    printf("nanosleep rc=%d slept>=50ms: %s\n", rc, slept >= 50000000 ? "yes" : "no");
    t0 = ns(CLOCK_MONOTONIC);
    usleep(20000);
    printf("usleep slept>=20ms: %s\n", ns(CLOCK_MONOTONIC) - t0 >= 20000000 ? "yes" : "no");
    int64_t real = ns(CLOCK_REALTIME);
    printf("realtime after 2020: %s\n", real > 1577836800LL * 1000000000 ? "yes" : "no");
    struct timespec res;
    printf("getres rc=%d positive=%s\n", clock_getres(CLOCK_MONOTONIC, &res),
           res.tv_sec > 0 || res.tv_nsec > 0 ? "yes" : "no");

    unsigned char a[64], b[64];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    int r1 = getentropy(a, sizeof a), r2 = getentropy(b, sizeof b);
    int nonzero = 0;
    for (size_t i = 0; i < sizeof a; i++) nonzero |= a[i];
    printf("getentropy rc=%d,%d differ=%s nonzero=%s\n", r1, r2,
           memcmp(a, b, sizeof a) ? "yes" : "no", nonzero ? "yes" : "no");
    return 0;
}
