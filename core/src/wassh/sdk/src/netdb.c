/* wassh SDK: getaddrinfo() and friends.
 *
 * The host (wassh.sock_getaddrinfo) resolves node names: literals, localhost
 * and real names. Names are answered with host-reserved addresses marked by
 * protocol -1, which the program passes on to socket(). The guest handles
 * everything else: hints checks, services, a NULL node, building the list. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "netdb_tables.h"
#include "sigwrap.h"
#include "wassh_host.h"

/* As many addresses as the host hands out for one name. */
#define GAI_RES_CAP 64

#define AI_KNOWN_FLAGS \
    (AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_NUMERICSERV | AI_V4MAPPED | AI_ALL | \
     AI_ADDRCONFIG)
#define NI_KNOWN_FLAGS \
    (NI_NOFQDN | NI_NUMERICHOST | NI_NAMEREQD | NI_NUMERICSERV | NI_NUMERICSCOPE | NI_DGRAM)

int h_errno;

WASSH_IMPORT("wassh", "sock_getnameinfo")
int32_t __wassh_sock_getnameinfo(int32_t family, const void *addr, char *name_out,
                                 uint32_t name_cap, uint32_t *len_out);

/* Whether word is one of the space-separated words of list. */
static int has_word(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; *p != '\0';) {
        const char *end = strchr(p, ' ');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, word, n) == 0)
            return 1;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

/* The first row named name (or with it as an alias) for proto (NULL: any). */
static const struct __wassh_service *find_service(const char *name, const char *proto) {
    for (size_t i = 0; i < __wassh_nservices; i++) {
        const struct __wassh_service *s = &__wassh_services[i];
        if (proto != NULL && strcmp(s->proto, proto) != 0)
            continue;
        if (strcmp(s->name, name) == 0 || has_word(s->aliases, name))
            return s;
    }
    return NULL;
}

static const struct __wassh_service *find_port(int port, const char *proto) {
    for (size_t i = 0; i < __wassh_nservices; i++) {
        const struct __wassh_service *s = &__wassh_services[i];
        if (s->port == port && (proto == NULL || strcmp(s->proto, proto) == 0))
            return s;
    }
    return NULL;
}

/* Returns 0 and stores the port (host order), or an EAI_* code. */
static int parse_service(const char *service, int flags, int socktype, uint16_t *port) {
    *port = 0;
    if (service == NULL)
        return 0;
    if (service[0] >= '0' && service[0] <= '9') {
        unsigned long v = 0;
        const char *p = service;
        while (*p >= '0' && *p <= '9' && v <= 65535) {
            v = v * 10 + (unsigned long)(*p - '0');
            p++;
        }
        if (*p == '\0' && v <= 65535) {
            *port = (uint16_t)v;
            return 0;
        }
    }
    if (flags & AI_NUMERICSERV)
        return EAI_NONAME;
    const char *proto = socktype == SOCK_DGRAM    ? "udp"
                        : socktype == SOCK_STREAM ? "tcp"
                                                  : NULL;
    const struct __wassh_service *named = find_service(service, proto);
    if (named == NULL)
        return EAI_SERVICE;
    *port = (uint16_t)named->port;
    return 0;
}

/* One list entry and its address, freed together. */
struct gai_entry {
    struct addrinfo ai;
    union {
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    } sa;
};

void freeaddrinfo(struct addrinfo *ai) {
    while (ai != NULL) {
        struct addrinfo *next = ai->ai_next;
        free(ai->ai_canonname);
        free(ai); /* ai is the first member of struct gai_entry */
        ai = next;
    }
}

static void make_local_records(int family, int passive, struct __wassh_gai_record *rec,
                               uint32_t *n) {
    *n = 0;
    /* IPv4 first: the wildcard 0.0.0.0 / loopback 127.0.0.1 works on every host. */
    if (family == AF_UNSPEC || family == AF_INET) {
        memset(&rec[*n], 0, sizeof(rec[*n]));
        rec[*n].family = AF_INET;
        if (!passive) {
            rec[*n].addr[0] = 127;
            rec[*n].addr[3] = 1;
        }
        (*n)++;
    }
    if (family == AF_UNSPEC || family == AF_INET6) {
        memset(&rec[*n], 0, sizeof(rec[*n]));
        rec[*n].family = AF_INET6;
        if (!passive)
            rec[*n].addr[15] = 1;
        (*n)++;
    }
}

int getaddrinfo(const char *restrict node, const char *restrict service,
                const struct addrinfo *restrict hints, struct addrinfo **restrict res) {
    int flags = 0, family = AF_UNSPEC, socktype = 0, protocol = 0;
    struct __wassh_gai_record rec[GAI_RES_CAP];
    uint32_t nrec = 0;
    uint16_t port;

    if (res == NULL) {
        errno = EFAULT;
        return EAI_SYSTEM;
    }
    *res = NULL;
    if (hints != NULL) {
        flags = hints->ai_flags;
        family = hints->ai_family;
        socktype = hints->ai_socktype;
        protocol = hints->ai_protocol;
    }
    if ((flags & ~AI_KNOWN_FLAGS) != 0)
        return EAI_BADFLAGS;
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
        return EAI_FAMILY;
    if (socktype != 0 && socktype != SOCK_STREAM && socktype != SOCK_DGRAM)
        return EAI_SOCKTYPE;
    if (node == NULL && service == NULL)
        return EAI_NONAME;
    if (node == NULL && (flags & AI_CANONNAME))
        return EAI_BADFLAGS;

    int err = parse_service(service, flags, socktype, &port);
    if (err != 0)
        return err;

    if (node == NULL) {
        make_local_records(family, (flags & AI_PASSIVE) != 0, rec, &nrec);
    } else {
        int32_t rc;
        /* A caught signal's handler runs, then the lookup goes on (glibc's
         * resolver restarts its waits too); the host keeps it under way. */
        do {
            rc = __wassh_sock_getaddrinfo(node, (uint32_t)strlen(node), family, socktype,
                                          protocol, flags, rec, GAI_RES_CAP, &nrec);
        } while (rc == EINTR && (__wassh_signals_interrupted(), 1));
        if (rc == 0)
            __wassh_signals_check();
        if (rc < 0)
            return rc;
        if (rc > 0) {
            errno = rc;
            return EAI_SYSTEM;
        }
        if (nrec > GAI_RES_CAP)
            nrec = GAI_RES_CAP;
    }

    struct addrinfo *head = NULL, **tail = &head;
    for (uint32_t i = 0; i < nrec; i++) {
        const struct __wassh_gai_record *r = &rec[i];
        if (r->family != AF_INET && r->family != AF_INET6)
            continue;
        if (family != AF_UNSPEC && r->family != family)
            continue;
        struct gai_entry *e = calloc(1, sizeof(*e));
        if (e == NULL) {
            freeaddrinfo(head);
            return EAI_MEMORY;
        }
        e->ai.ai_flags = flags;
        e->ai.ai_family = r->family;
        e->ai.ai_socktype = r->socktype != 0 ? r->socktype
                            : socktype != 0  ? socktype
                                             : SOCK_STREAM;
        e->ai.ai_protocol = r->protocol != 0 ? r->protocol : protocol;
        e->ai.ai_addr = (struct sockaddr *)&e->sa;
        if (r->family == AF_INET) {
            e->sa.sin.sin_family = AF_INET;
            e->sa.sin.sin_port = htons(port);
            memcpy(&e->sa.sin.sin_addr, r->addr, 4);
            e->ai.ai_addrlen = sizeof(struct sockaddr_in);
        } else {
            e->sa.sin6.sin6_family = AF_INET6;
            e->sa.sin6.sin6_port = htons(port);
            memcpy(&e->sa.sin6.sin6_addr, r->addr, 16);
            e->ai.ai_addrlen = sizeof(struct sockaddr_in6);
        }
        *tail = &e->ai;
        tail = &e->ai.ai_next;
    }
    if (head == NULL)
        return EAI_NONAME;
    if ((flags & AI_CANONNAME) && node != NULL) {
        char canon[NI_MAXHOST];
        uint32_t canon_len = 0;
        if (__wassh_sock_canonname(node, (uint32_t)strlen(node), canon, sizeof(canon) - 1,
                                   &canon_len) == 0 &&
            canon_len < sizeof(canon)) {
            canon[canon_len] = '\0';
            head->ai_canonname = strdup(canon);
        } else {
            head->ai_canonname = strdup(node);
        }
        if (head->ai_canonname == NULL) {
            freeaddrinfo(head);
            return EAI_MEMORY;
        }
    }
    *res = head;
    return 0;
}

const char *gai_strerror(int code) {
    switch (code) {
    case 0:
        return "Success";
    case EAI_AGAIN:
        return "Temporary failure in name resolution";
    case EAI_BADFLAGS:
        return "Invalid flags";
    case EAI_FAIL:
        return "Non-recoverable failure in name resolution";
    case EAI_FAMILY:
        return "Address family not supported";
    case EAI_MEMORY:
        return "Out of memory";
    case EAI_NONAME:
        return "Name or service not known";
    case EAI_SERVICE:
        return "Service not supported for socket type";
    case EAI_SOCKTYPE:
        return "Socket type not supported";
    case EAI_SYSTEM:
        return "System error";
    case EAI_OVERFLOW:
        return "Argument buffer overflow";
    case EAI_NODATA:
        return "No address associated with hostname";
    default:
        return "Unknown error";
    }
}

int getnameinfo(const struct sockaddr *restrict sa, socklen_t salen, char *restrict host,
                socklen_t hostlen, char *restrict serv, socklen_t servlen, int flags) {
    char buf[INET6_ADDRSTRLEN + 16];
    const void *addr;
    uint16_t port;

    if (sa == NULL)
        return EAI_FAMILY;
    if ((flags & ~NI_KNOWN_FLAGS) != 0)
        return EAI_BADFLAGS;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        if (salen < sizeof(*sin))
            return EAI_FAMILY;
        addr = &sin->sin_addr;
        port = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        if (salen < sizeof(*sin6))
            return EAI_FAMILY;
        addr = &sin6->sin6_addr;
        port = ntohs(sin6->sin6_port);
    } else {
        return EAI_FAMILY;
    }
    if ((host == NULL || hostlen == 0) && (serv == NULL || servlen == 0))
        return EAI_NONAME;
    if (host != NULL && hostlen != 0) {
        /* As glibc: a name unless NI_NUMERICHOST, else (or when there is none)
         * the numeric form, unless NI_NAMEREQD. The names are the host's own
         * (--add-host, names resolved earlier, localhost): no DNS is asked. */
        if ((flags & NI_NUMERICHOST) == 0) {
            char name[256];
            uint32_t n = 0;
            if (__wassh_sock_getnameinfo(sa->sa_family, addr, name, sizeof(name) - 1, &n) == 0) {
                if (n >= hostlen)
                    return EAI_OVERFLOW;
                memcpy(host, name, n);
                host[n] = '\0';
                goto service;
            }
        }
        if (flags & NI_NAMEREQD)
            return EAI_NONAME;
        if (inet_ntop(sa->sa_family, addr, buf, sizeof(buf)) == NULL)
            return EAI_FAMILY;
        if (sa->sa_family == AF_INET6) {
            uint32_t scope = ((const struct sockaddr_in6 *)sa)->sin6_scope_id;
            if (scope != 0) {
                size_t l = strlen(buf);
                snprintf(buf + l, sizeof(buf) - l, "%%%u", (unsigned)scope);
            }
        }
        if (strlen(buf) >= hostlen)
            return EAI_OVERFLOW;
        strcpy(host, buf);
    }
service:
    if (serv != NULL && servlen != 0) {
        const struct __wassh_service *named = NULL;
        if ((flags & NI_NUMERICSERV) == 0)
            named = find_port(port, (flags & NI_DGRAM) ? "udp" : "tcp");
        int n = named != NULL ? snprintf(buf, sizeof(buf), "%s", named->name)
                              : snprintf(buf, sizeof(buf), "%u", (unsigned)port);
        if (n < 0 || (socklen_t)n >= servlen)
            return EAI_OVERFLOW;
        strcpy(serv, buf);
    }
    return 0;
}

/* ---- legacy interfaces (static results, not thread-safe, as usual) ---- */

#define MAX_ALIASES 8

/* Splits a space-separated alias list into words (copies in store). */
static void split_aliases(const char *list, char *store, size_t cap, char **out) {
    size_t n = 0;
    snprintf(store, cap, "%s", list);
    for (char *p = store; *p != '\0' && n < MAX_ALIASES;) {
        out[n++] = p;
        char *end = strchr(p, ' ');
        if (end == NULL)
            break;
        *end = '\0';
        p = end + 1;
    }
    out[n] = NULL;
}

static struct servent serv_result;
static char serv_store[96];
static char *serv_aliases[MAX_ALIASES + 1];
static size_t serv_next;

static struct servent *fill_servent(const struct __wassh_service *s) {
    if (s == NULL)
        return NULL;
    split_aliases(s->aliases, serv_store, sizeof(serv_store), serv_aliases);
    serv_result.s_name = (char *)s->name;
    serv_result.s_aliases = serv_aliases;
    serv_result.s_port = htons((uint16_t)s->port);
    serv_result.s_proto = (char *)s->proto;
    return &serv_result;
}

struct servent *getservbyname(const char *name, const char *proto) {
    return name == NULL ? NULL : fill_servent(find_service(name, proto));
}

struct servent *getservbyport(int port, const char *proto) {
    return fill_servent(find_port(ntohs((uint16_t)port), proto));
}

void setservent(int stayopen) {
    (void)stayopen;
    serv_next = 0;
}

void endservent(void) {
    serv_next = 0;
}

struct servent *getservent(void) {
    if (serv_next >= __wassh_nservices)
        return NULL;
    return fill_servent(&__wassh_services[serv_next++]);
}

static struct protoent proto_result;
static char proto_store[64];
static char *proto_aliases[MAX_ALIASES + 1];
static size_t proto_next;

static struct protoent *fill_protoent(const struct __wassh_protocol *p) {
    if (p == NULL)
        return NULL;
    split_aliases(p->aliases, proto_store, sizeof(proto_store), proto_aliases);
    proto_result.p_name = (char *)p->name;
    proto_result.p_aliases = proto_aliases;
    proto_result.p_proto = p->number;
    return &proto_result;
}

struct protoent *getprotobyname(const char *name) {
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < __wassh_nprotocols; i++) {
        const struct __wassh_protocol *p = &__wassh_protocols[i];
        if (strcmp(p->name, name) == 0 || has_word(p->aliases, name))
            return fill_protoent(p);
    }
    return NULL;
}

struct protoent *getprotobynumber(int number) {
    for (size_t i = 0; i < __wassh_nprotocols; i++)
        if (__wassh_protocols[i].number == number)
            return fill_protoent(&__wassh_protocols[i]);
    return NULL;
}

void setprotoent(int stayopen) {
    (void)stayopen;
    proto_next = 0;
}

void endprotoent(void) {
    proto_next = 0;
}

struct protoent *getprotoent(void) {
    if (proto_next >= __wassh_nprotocols)
        return NULL;
    return fill_protoent(&__wassh_protocols[proto_next++]);
}

#define HOSTENT_MAX_ADDRS GAI_RES_CAP

static struct hostent host_result;
static char host_name[256];
static char *host_aliases[1];
static struct in6_addr host_addrs[HOSTENT_MAX_ADDRS];
static char *host_addr_list[HOSTENT_MAX_ADDRS + 1];

static struct hostent *fill_hostent(const char *name, int af, size_t n) {
    snprintf(host_name, sizeof(host_name), "%s", name);
    for (size_t i = 0; i < n; i++)
        host_addr_list[i] = (char *)&host_addrs[i];
    host_addr_list[n] = NULL;
    host_aliases[0] = NULL;
    host_result.h_name = host_name;
    host_result.h_aliases = host_aliases;
    host_result.h_addrtype = af;
    host_result.h_length = af == AF_INET6 ? 16 : 4;
    host_result.h_addr_list = host_addr_list;
    return &host_result;
}

struct hostent *gethostbyname2(const char *name, int af) {
    struct addrinfo hints, *res = NULL;
    if (af != AF_INET && af != AF_INET6) {
        errno = EAFNOSUPPORT;
        h_errno = NETDB_INTERNAL;
        return NULL;
    }
    if (name == NULL) {
        h_errno = HOST_NOT_FOUND;
        return NULL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = af;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME; /* h_name is the canonical name, as glibc gives it */
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        h_errno = rc == EAI_AGAIN    ? TRY_AGAIN
                  : rc == EAI_NONAME ? HOST_NOT_FOUND
                  : rc == EAI_FAMILY ? HOST_NOT_FOUND
                  : rc == EAI_NODATA ? NO_DATA
                                     : NO_RECOVERY;
        return NULL;
    }
    char canon[sizeof(host_name)];
    snprintf(canon, sizeof(canon), "%s", res->ai_canonname != NULL ? res->ai_canonname : name);
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < HOSTENT_MAX_ADDRS; ai = ai->ai_next) {
        if (af == AF_INET)
            memcpy(&host_addrs[n], &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
        else
            memcpy(&host_addrs[n], &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
        n++;
    }
    freeaddrinfo(res);
    return fill_hostent(canon, af, n);
}

struct hostent *gethostbyname(const char *name) {
    return gethostbyname2(name, AF_INET);
}

struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type) {
    char name[256];
    uint32_t n = 0;
    socklen_t need = type == AF_INET ? 4 : type == AF_INET6 ? 16 : 0;
    if (need == 0) {
        errno = EAFNOSUPPORT;
        h_errno = NETDB_INTERNAL;
        return NULL;
    }
    if (addr == NULL || len < need) {
        errno = EINVAL;
        h_errno = NETDB_INTERNAL;
        return NULL;
    }
    /* The names are the host's own (--add-host, names resolved earlier,
     * localhost); no DNS is asked, so any other address has no name. */
    if (__wassh_sock_getnameinfo(type, addr, name, sizeof(name) - 1, &n) != 0) {
        h_errno = HOST_NOT_FOUND;
        return NULL;
    }
    name[n] = '\0';
    memcpy(&host_addrs[0], addr, need);
    return fill_hostent(name, type, 1);
}

void sethostent(int stayopen) {
    (void)stayopen;
}

void endhostent(void) {}

const char *hstrerror(int code) {
    switch (code) {
    case 0:
        return "Resolver Error 0 (no error)";
    case HOST_NOT_FOUND:
        return "Unknown host";
    case TRY_AGAIN:
        return "Host name lookup failure";
    case NO_RECOVERY:
        return "Unknown server error";
    case NO_DATA:
        return "No address associated with name";
    default:
        return "Unknown resolver error";
    }
}

void herror(const char *prefix) {
    if (prefix != NULL && *prefix != '\0')
        fprintf(stderr, "%s: %s\n", prefix, hstrerror(h_errno));
    else
        fprintf(stderr, "%s\n", hstrerror(h_errno));
}
