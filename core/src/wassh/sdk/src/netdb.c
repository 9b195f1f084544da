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

#include "wassh_host.h"

#define GAI_RES_CAP 16

#define AI_KNOWN_FLAGS \
    (AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_NUMERICSERV | AI_V4MAPPED | AI_ALL | \
     AI_ADDRCONFIG)
#define NI_KNOWN_FLAGS \
    (NI_NOFQDN | NI_NUMERICHOST | NI_NAMEREQD | NI_NUMERICSERV | NI_NUMERICSCOPE | NI_DGRAM)

int h_errno;

static const struct {
    const char *name;
    uint16_t port;
} services[] = {
    {"echo", 7},   {"ftp", 21},     {"ssh", 22},     {"telnet", 23},
    {"smtp", 25},  {"domain", 53},  {"http", 80},    {"https", 443},
};

static int service_port_by_name(const char *name) {
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
        if (strcmp(services[i].name, name) == 0)
            return services[i].port;
    return -1;
}

/* Returns 0 and stores the port (host order), or an EAI_* code. */
static int parse_service(const char *service, int flags, uint16_t *port) {
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
    int named = service_port_by_name(service);
    if (named < 0)
        return EAI_SERVICE;
    *port = (uint16_t)named;
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

    int err = parse_service(service, flags, &port);
    if (err != 0)
        return err;

    if (node == NULL) {
        make_local_records(family, (flags & AI_PASSIVE) != 0, rec, &nrec);
    } else {
        int32_t rc = __wassh_sock_getaddrinfo(node, (uint32_t)strlen(node), family, socktype,
                                              protocol, flags, rec, GAI_RES_CAP, &nrec);
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
        head->ai_canonname = strdup(node);
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
        /* No reverse lookups: the numeric form is the only name there is. */
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
    if (serv != NULL && servlen != 0) {
        int n = snprintf(buf, sizeof(buf), "%u", (unsigned)port);
        if (n < 0 || (socklen_t)n >= servlen)
            return EAI_OVERFLOW;
        strcpy(serv, buf);
    }
    return 0;
}

/* ---- legacy interfaces ---- */

static struct servent serv_result;
static char serv_name[16];
static char serv_proto[8];
static char *serv_aliases[1];

static struct servent *fill_servent(const char *name, uint16_t port, const char *proto) {
    if (proto != NULL && strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
        return NULL;
    snprintf(serv_name, sizeof(serv_name), "%s", name);
    snprintf(serv_proto, sizeof(serv_proto), "%s", proto != NULL ? proto : "tcp");
    serv_aliases[0] = NULL;
    serv_result.s_name = serv_name;
    serv_result.s_aliases = serv_aliases;
    serv_result.s_port = htons(port);
    serv_result.s_proto = serv_proto;
    return &serv_result;
}

struct servent *getservbyname(const char *name, const char *proto) {
    if (name == NULL)
        return NULL;
    int port = service_port_by_name(name);
    return port < 0 ? NULL : fill_servent(name, (uint16_t)port, proto);
}

struct servent *getservbyport(int port, const char *proto) {
    uint16_t p = ntohs((uint16_t)port);
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
        if (services[i].port == p)
            return fill_servent(services[i].name, p, proto);
    return NULL;
}

#define HOSTENT_MAX_ADDRS GAI_RES_CAP

static struct hostent host_result;
static char host_name[256];
static char *host_aliases[1];
static struct in_addr host_addrs[HOSTENT_MAX_ADDRS];
static char *host_addr_list[HOSTENT_MAX_ADDRS + 1];

struct hostent *gethostbyname(const char *name) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (name == NULL) {
        h_errno = HOST_NOT_FOUND;
        return NULL;
    }
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        h_errno = rc == EAI_AGAIN ? TRY_AGAIN : rc == EAI_NONAME ? HOST_NOT_FOUND : NO_RECOVERY;
        return NULL;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < HOSTENT_MAX_ADDRS; ai = ai->ai_next) {
        host_addrs[n] = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        host_addr_list[n] = (char *)&host_addrs[n];
        n++;
    }
    host_addr_list[n] = NULL;
    freeaddrinfo(res);
    snprintf(host_name, sizeof(host_name), "%s", name);
    host_aliases[0] = NULL;
    host_result.h_name = host_name;
    host_result.h_aliases = host_aliases;
    host_result.h_addrtype = AF_INET;
    host_result.h_length = 4;
    host_result.h_addr_list = host_addr_list;
    return &host_result;
}

const char *hstrerror(int code) {
    switch (code) {
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
