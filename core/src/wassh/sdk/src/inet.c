/* wassh SDK: small libc pieces wasi-libc leaves out. */
#include <errno.h>
#include <stdint.h>
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

/* The classful helpers (BSD code still calls them), as glibc answers. */

/* glibc's reading: up to four parts of a byte each (decimal, 0 octal, 0x hex),
 * concatenated: "10.1" is 0x0a01, not inet_addr's 10.0.0.1. */
in_addr_t inet_network(const char *cp) {
    in_addr_t parts[4], val;
    size_t n = 0;
    if (cp == NULL)
        return INADDR_NONE;
    for (;;) {
        unsigned base = 10;
        int digit = 0;
        val = 0;
        if (*cp == '0')
            digit = 1, base = 8, cp++;
        if (*cp == 'x' || *cp == 'X')
            digit = 0, base = 16, cp++;
        for (;; cp++) {
            char c = *cp;
            if (c >= '0' && c <= '9') {
                if (base == 8 && c >= '8')
                    return INADDR_NONE;
                val = val * base + (in_addr_t)(c - '0');
            } else if (base == 16 && ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')) {
                val = (val << 4) + (in_addr_t)((c | 0x20) - 'a' + 10);
            } else {
                break;
            }
            digit = 1;
            if (val > 0xff)
                return INADDR_NONE;
        }
        if (!digit || n >= 4)
            return INADDR_NONE;
        parts[n++] = val;
        if (*cp != '.')
            break;
        cp++;
    }
    while (*cp == ' ' || (*cp >= '\t' && *cp <= '\r'))
        cp++;
    if (*cp != '\0')
        return INADDR_NONE;
    val = 0;
    for (size_t i = 0; i < n; i++)
        val = (val << 8) | parts[i];
    return val;
}

struct in_addr inet_makeaddr(in_addr_t net, in_addr_t host) {
    struct in_addr a;
    if (net < 256)
        host |= net << 24;
    else if (net < 65536)
        host |= net << 16;
    else
        host |= net << 8;
    a.s_addr = htonl(host);
    return a;
}

in_addr_t inet_lnaof(struct in_addr in) {
    uint32_t h = ntohl(in.s_addr);
    if (h >> 31 == 0)
        return h & 0xffffff;
    if (h >> 30 == 2)
        return h & 0xffff;
    return h & 0xff;
}

in_addr_t inet_netof(struct in_addr in) {
    uint32_t h = ntohl(in.s_addr);
    if (h >> 31 == 0)
        return h >> 24;
    if (h >> 30 == 2)
        return h >> 16;
    return h >> 8;
}
