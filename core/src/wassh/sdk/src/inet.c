/* wassh SDK: small libc pieces wasi-libc leaves out. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

in_addr_t inet_addr(const char *cp) {
    struct in_addr a;
    if (cp == NULL || inet_aton(cp, &a) == 0)
        return INADDR_NONE;
    return a.s_addr;
}

char *inet_ntoa(struct in_addr in) {
    static char buf[INET_ADDRSTRLEN];
    const unsigned char *b = (const unsigned char *)&in.s_addr;
    snprintf(buf, sizeof(buf), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    return buf;
}

/* A wasm guest has no host name of its own. */
int gethostname(char *name, size_t len) {
    static const char host[] = "localhost";
    if (name == NULL) {
        errno = EFAULT;
        return -1;
    }
    if (len < sizeof(host)) {
        if (len > 0) {
            memcpy(name, host, len - 1);
            name[len - 1] = '\0';
        }
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(name, host, sizeof(host));
    return 0;
}
