/* wassh SDK: syslog to standard error, getrandom(), passphrases, the
 * resolver calls that have nothing to ask here, and the loopback interface. */
#define _GNU_SOURCE
#include <arpa/nameser.h>
#include <errno.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netdb.h>
#include <readpassphrase.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <syslog.h>
#include <unistd.h>

#include "wassh_host.h"

/* -- syslog: one line per message on stderr --------------------------------- */

static const char *log_ident;
static int log_mask = 0xff;

void openlog(const char *ident, int option, int facility) {
    (void)option, (void)facility;
    log_ident = ident;
}

void closelog(void) { log_ident = NULL; }

int setlogmask(int mask) {
    int old = log_mask;
    if (mask != 0)
        log_mask = mask;
    return old;
}

void vsyslog(int priority, const char *fmt, va_list ap) {
    if (!(log_mask & LOG_MASK(LOG_PRI(priority))))
        return;
    int saved = errno;
    char line[1024];
    size_t n = 0;
    if (log_ident != NULL)
        n = (size_t)snprintf(line, sizeof line, "%s: ", log_ident);
    if (n >= sizeof line)
        n = sizeof line - 1;
    errno = saved; /* for %m */
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (m > 0)
        n += (size_t)m < sizeof line - n ? (size_t)m : sizeof line - n - 1;
    while (n > 0 && line[n - 1] == '\n')
        n--;
    line[n++] = '\n';
    (void)write(STDERR_FILENO, line, n);
    errno = saved;
}

void syslog(int priority, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsyslog(priority, fmt, ap);
    va_end(ap);
}

/* -- randomness ----------------------------------------------------------- */

ssize_t getrandom(void *buf, size_t len, unsigned flags) {
    if (flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) {
        errno = EINVAL;
        return -1;
    }
    size_t done = 0;
    while (done < len) {
        size_t chunk = len - done > 256 ? 256 : len - done;
        if (getentropy((char *)buf + done, chunk) != 0)
            return done ? (ssize_t)done : -1;
        done += chunk;
    }
    return (ssize_t)done;
}

/* -- passphrases ---------------------------------------------------------- */

static char *read_stdin_line(char *buf, size_t size) {
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (n == 0 && r < 0)
                return NULL;
            break;
        }
        if (c == '\n' || c == '\r')
            break;
        if (n + 1 < size)
            buf[n++] = c;
    }
    buf[n] = '\0';
    return buf;
}

char *readpassphrase(const char *prompt, char *buf, size_t size, int flags) {
    if (size == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (flags & RPP_STDIN) {
        if (read_stdin_line(buf, size) == NULL)
            return NULL;
    } else {
        const char *p = prompt != NULL ? prompt : "";
        int32_t err = __wassh_readpassphrase(p, (uint32_t)strlen(p), buf, (uint32_t)size,
                                             (flags & RPP_ECHO_ON) ? 1 : 0);
        if (err != 0) {
            errno = err;
            return NULL;
        }
    }
    for (char *c = buf; *c; c++) {
        if (flags & RPP_SEVENBIT)
            *c &= 0x7f;
        if ((flags & RPP_FORCELOWER) && *c >= 'A' && *c <= 'Z')
            *c += 'a' - 'A';
        if ((flags & RPP_FORCEUPPER) && *c >= 'a' && *c <= 'z')
            *c -= 'a' - 'A';
    }
    return buf;
}

char *getpass(const char *prompt) {
    static char buf[256];
    return readpassphrase(prompt, buf, sizeof buf, RPP_ECHO_OFF);
}

/* -- resolver: no DNS of our own (names are resolved by the host) ----------- */

int res_init(void) { return 0; }

static int no_answer(void) {
    h_errno = NO_RECOVERY;
    errno = ENOSYS;
    return -1;
}

int res_query(const char *name, int class_, int type, unsigned char *answer, int len) {
    (void)name, (void)class_, (void)type, (void)answer, (void)len;
    return no_answer();
}

int res_search(const char *name, int class_, int type, unsigned char *answer, int len) {
    (void)name, (void)class_, (void)type, (void)answer, (void)len;
    return no_answer();
}

int dn_expand(const unsigned char *msg, const unsigned char *end, const unsigned char *src,
              char *dst, int len) {
    (void)msg, (void)end, (void)src, (void)dst, (void)len;
    errno = EMSGSIZE;
    return -1;
}

unsigned ns_get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

unsigned long ns_get32(const unsigned char *p) {
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 |
           p[3];
}

void ns_put16(unsigned v, unsigned char *p) {
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

void ns_put32(unsigned long v, unsigned char *p) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

struct __res_state *__res_state(void) {
    static struct __res_state state;
    return &state;
}

int *__h_errno_location(void) { return &h_errno; }

/* -- network interfaces: the guest sees the loopback one -------------------- */

/* The guest reaches loopback addresses as they are, and everything else
 * through the host's transports, never through an interface of its own: so
 * the one interface it has is "lo" (index 1, as on Linux), with 127.0.0.1/8
 * and ::1/128. */
#define LO_NAME "lo"
#define LO_INDEX 1
#define LO_FLAGS (IFF_UP | IFF_LOOPBACK | IFF_RUNNING | 0x10000) /* and IFF_LOWER_UP */

struct lo_entry {
    struct ifaddrs ifa;
    union {
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    } addr, mask;
    char name[IF_NAMESIZE];
};

int getifaddrs(struct ifaddrs **ifap) {
    if (ifap == NULL) {
        errno = EFAULT;
        return -1;
    }
    struct lo_entry *e = calloc(2, sizeof(*e));
    if (e == NULL)
        return -1;
    for (int i = 0; i < 2; i++) {
        strcpy(e[i].name, LO_NAME);
        e[i].ifa.ifa_name = e[i].name;
        e[i].ifa.ifa_flags = LO_FLAGS;
        e[i].ifa.ifa_addr = (struct sockaddr *)&e[i].addr;
        e[i].ifa.ifa_netmask = (struct sockaddr *)&e[i].mask;
    }
    e[0].ifa.ifa_next = &e[1].ifa;
    e[0].addr.sin.sin_family = AF_INET;
    e[0].addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    e[0].mask.sin.sin_family = AF_INET;
    e[0].mask.sin.sin_addr.s_addr = htonl(0xff000000);
    e[1].addr.sin6.sin6_family = AF_INET6;
    e[1].addr.sin6.sin6_addr = in6addr_loopback;
    e[1].mask.sin6.sin6_family = AF_INET6;
    memset(&e[1].mask.sin6.sin6_addr, 0xff, sizeof(struct in6_addr));
    *ifap = &e[0].ifa;
    return 0;
}

/* getifaddrs() hands out one allocation, starting with the first entry. */
void freeifaddrs(struct ifaddrs *ifa) { free(ifa); }

unsigned if_nametoindex(const char *name) {
    return name != NULL && strcmp(name, LO_NAME) == 0 ? LO_INDEX : 0;
}

char *if_indextoname(unsigned index, char *name) {
    if (index != LO_INDEX) {
        errno = ENXIO;
        return NULL;
    }
    return strcpy(name, LO_NAME);
}

struct if_nameindex *if_nameindex(void) {
    struct if_nameindex *list = calloc(2, sizeof(*list));
    char *name = strdup(LO_NAME);
    if (list == NULL || name == NULL) {
        free(list);
        free(name);
        errno = ENOBUFS;
        return NULL;
    }
    list[0].if_index = LO_INDEX;
    list[0].if_name = name;
    return list;
}

void if_freenameindex(struct if_nameindex *list) {
    if (list == NULL)
        return;
    for (struct if_nameindex *p = list; p->if_index != 0; p++)
        free(p->if_name);
    free(list);
}
