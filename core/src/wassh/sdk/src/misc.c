/* wassh SDK: syslog to standard error, getrandom(), passphrases, and the
 * resolver and interface calls that have nothing to ask here. */
#define _GNU_SOURCE
#include <arpa/nameser.h>
#include <errno.h>
#include <ifaddrs.h>
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

/* -- network interfaces: the guest sees none of the host's ------------------ */

int getifaddrs(struct ifaddrs **ifap) {
    *ifap = NULL;
    errno = ENOSYS;
    return -1;
}

void freeifaddrs(struct ifaddrs *ifa) { (void)ifa; }
