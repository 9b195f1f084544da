/* The netdb calls a network tool makes, one line per answer. Run natively and
 * under wassh: the lines must agree (the services and protocols are the
 * common ones of /etc/services and /etc/protocols; the only addresses looked
 * up are the loopback ones /etc/hosts names). Arguments add reverse lookups
 * of names the host maps: "rev ADDRESS" and "fwd NAME" (gethostbyname then
 * gethostbyaddr of what it gave). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void serv(const char *name, const char *proto) {
    struct servent *s = getservbyname(name, proto);
    if (s == NULL) {
        printf("getservbyname %s/%s: none\n", name, proto ? proto : "any");
        return;
    }
    printf("getservbyname %s/%s: %s %d/%s", name, proto ? proto : "any", s->s_name,
           ntohs((unsigned short)s->s_port), s->s_proto);
    for (char **a = s->s_aliases; *a != NULL; a++)
        printf(" %s", *a);
    printf("\n");
}

static void port(int p, const char *proto) {
    struct servent *s = getservbyport(htons((unsigned short)p), proto);
    printf("getservbyport %d/%s: %s\n", p, proto ? proto : "any", s ? s->s_name : "none");
}

static void proto(const char *name) {
    struct protoent *p = getprotobyname(name);
    if (p == NULL) {
        printf("getprotobyname %s: none\n", name);
        return;
    }
    printf("getprotobyname %s: %s %d", name, p->p_name, p->p_proto);
    for (char **a = p->p_aliases; *a != NULL; a++)
        printf(" %s", *a);
    printf("\n");
}

static void protonum(int n) {
    struct protoent *p = getprotobynumber(n);
    printf("getprotobynumber %d: %s\n", n, p ? p->p_name : "none");
}

static void nameinfo(const char *what, const char *literal, int port, int flags) {
    struct sockaddr_storage ss;
    socklen_t len;
    char host[NI_MAXHOST], service[NI_MAXSERV];
    memset(&ss, 0, sizeof(ss));
    if (strchr(literal, ':') != NULL) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((unsigned short)port);
        inet_pton(AF_INET6, literal, &sin6->sin6_addr);
        len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((unsigned short)port);
        inet_pton(AF_INET, literal, &sin->sin_addr);
        len = sizeof(*sin);
    }
    int rc = getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), service,
                         sizeof(service), flags);
    if (rc != 0)
        printf("getnameinfo %s %s %d: %s\n", what, literal, port, gai_strerror(rc));
    else
        printf("getnameinfo %s %s %d: %s %s\n", what, literal, port, host, service);
}

static void byaddr(const char *literal) {
    unsigned char addr[16];
    int af = strchr(literal, ':') != NULL ? AF_INET6 : AF_INET;
    inet_pton(af, literal, addr);
    h_errno = 0;
    struct hostent *h = gethostbyaddr(addr, af == AF_INET ? 4 : 16, af);
    if (h == NULL) {
        printf("gethostbyaddr %s: h_errno %d (%s)\n", literal, h_errno, hstrerror(h_errno));
        return;
    }
    char text[INET6_ADDRSTRLEN];
    inet_ntop(h->h_addrtype, h->h_addr_list[0], text, sizeof(text));
    printf("gethostbyaddr %s: %s type %d len %d addr %s\n", literal, h->h_name,
           h->h_addrtype == AF_INET ? 4 : 6, h->h_length, text);
}

static void byname(const char *name) {
    struct hostent *h = gethostbyname(name);
    if (h == NULL) {
        printf("gethostbyname %s: h_errno %d\n", name, h_errno);
        return;
    }
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, h->h_addr_list[0], text, sizeof(text));
    printf("gethostbyname %s: %s len %d\n", name, text, h->h_length);
    /* What a tool does with it: the name back from the address. */
    struct hostent *back = gethostbyaddr(h->h_addr_list[0], 4, AF_INET);
    printf("gethostbyaddr of it: %s\n", back ? back->h_name : "none");
}

int main(int argc, char **argv) {
    if (argc > 1) {
        for (int i = 1; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "rev") == 0) {
                byaddr(argv[i + 1]);
                nameinfo("name", argv[i + 1], 22, 0);
                nameinfo("namereqd", argv[i + 1], 22, NI_NAMEREQD);
            } else if (strcmp(argv[i], "fwd") == 0) {
                byname(argv[i + 1]);
            }
        }
        return 0;
    }
    const char *names[] = {"ssh", "http", "www", "https", "smtp", "mail", "domain", "ftp",
                           "telnet", "whois", "nicname", "tftp", "ntp", "redis", "pop3",
                           "imap", "imap2", "syslog", "shell", "postgres", "x11-0",
                           "iperf3", "nosuchservice", NULL};
    for (int i = 0; names[i] != NULL; i++) {
        serv(names[i], "tcp");
        serv(names[i], "udp");
        serv(names[i], NULL);
    }
    int ports[] = {7, 21, 22, 23, 25, 43, 53, 69, 80, 110, 123, 143, 443, 514, 993, 5201, 6379,
                   8080, 65535, 0};
    for (int i = 0; ports[i] != 0; i++) {
        port(ports[i], "tcp");
        port(ports[i], "udp");
        port(ports[i], NULL);
    }
    const char *protos[] = {"ip", "IP", "tcp", "TCP", "udp", "icmp", "ipv6", "ipv6-icmp",
                            "sctp", "nosuch", NULL};
    for (int i = 0; protos[i] != NULL; i++)
        proto(protos[i]);
    int numbers[] = {0, 1, 6, 17, 41, 58, 132, 200, -1};
    for (int i = 0; numbers[i] >= 0; i++)
        protonum(numbers[i]);
    nameinfo("numeric", "127.0.0.1", 22, NI_NUMERICHOST | NI_NUMERICSERV);
    nameinfo("numerichost", "127.0.0.1", 80, NI_NUMERICHOST);
    nameinfo("numericserv", "127.0.0.1", 80, NI_NUMERICSERV);
    nameinfo("dgram", "127.0.0.1", 69, NI_DGRAM | NI_NUMERICHOST);
    nameinfo("stream", "127.0.0.1", 69, NI_NUMERICHOST);
    nameinfo("unknownport", "127.0.0.1", 5201, NI_NUMERICHOST);
    nameinfo("name", "127.0.0.1", 443, 0);
    nameinfo("namereqd", "127.0.0.1", 22, NI_NAMEREQD);
    nameinfo("numeric+namereqd", "127.0.0.1", 22, NI_NAMEREQD | NI_NUMERICHOST);
    nameinfo("v6numeric", "::1", 22, NI_NUMERICHOST | NI_NUMERICSERV);
    nameinfo("v6", "::1", 6379, NI_NUMERICHOST);
    byaddr("127.0.0.1");
    byname("127.0.0.1");
    byname("localhost");
    printf("hstrerror: %s | %s | %s | %s\n", hstrerror(HOST_NOT_FOUND), hstrerror(TRY_AGAIN),
           hstrerror(NO_RECOVERY), hstrerror(NO_DATA));
    return 0;
}
