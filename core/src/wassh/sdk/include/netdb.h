/* wassh SDK: name resolution for wasm32-wasi (preview1) guests.
 *
 * getaddrinfo() asks the wassh host (host call wassh.sock_getaddrinfo). Names
 * the guest cannot resolve itself may come back as host-reserved addresses
 * with ai_protocol == -1: pass ai_protocol to socket() unchanged, as ordinary
 * code does, and the host connects to the name. Reverse lookups (getnameinfo(),
 * gethostbyaddr()) know the host's own names: --add-host names, names the
 * guest resolved, localhost; no DNS is asked. Services and protocols come from
 * a built-in copy of the common entries of /etc/services and /etc/protocols. */
#ifndef _NETDB_H
#define _NETDB_H
#pragma GCC system_header

#include <features.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo {
    int ai_flags;
    int ai_family;
    int ai_socktype;
    int ai_protocol;
    socklen_t ai_addrlen;
    struct sockaddr *ai_addr;
    char *ai_canonname;
    struct addrinfo *ai_next;
};

#define AI_PASSIVE 0x01
#define AI_CANONNAME 0x02
#define AI_NUMERICHOST 0x04
#define AI_NUMERICSERV 0x08
#define AI_V4MAPPED 0x10
#define AI_ALL 0x20
#define AI_ADDRCONFIG 0x40

#define EAI_AGAIN -1
#define EAI_BADFLAGS -2
#define EAI_FAIL -3
#define EAI_FAMILY -4
#define EAI_MEMORY -5
#define EAI_NONAME -6
#define EAI_SERVICE -7
#define EAI_SOCKTYPE -8
#define EAI_SYSTEM -9
#define EAI_OVERFLOW -10
/* glibc's: the name exists, without an address of the family asked for. */
#define EAI_NODATA -11

#define NI_NOFQDN 0x01
#define NI_NUMERICHOST 0x02
#define NI_NAMEREQD 0x04
#define NI_NUMERICSERV 0x08
#define NI_NUMERICSCOPE 0x10
#define NI_DGRAM 0x20

#define NI_MAXHOST 1025
#define NI_MAXSERV 32

int getaddrinfo(const char *__restrict, const char *__restrict,
                const struct addrinfo *__restrict, struct addrinfo **__restrict);
void freeaddrinfo(struct addrinfo *);
const char *gai_strerror(int);
int getnameinfo(const struct sockaddr *__restrict, socklen_t, char *__restrict, socklen_t,
                char *__restrict, socklen_t, int);

/* Legacy interfaces, implemented on top of getaddrinfo() and the built-in
 * tables. Not thread-safe (static results), as usual. */
struct hostent {
    char *h_name;
    char **h_aliases;
    int h_addrtype;
    int h_length;
    char **h_addr_list;
};
#define h_addr h_addr_list[0]

struct servent {
    char *s_name;
    char **s_aliases;
    int s_port;
    char *s_proto;
};

struct protoent {
    char *p_name;
    char **p_aliases;
    int p_proto;
};

#define IPPORT_RESERVED 1024

#define NETDB_INTERNAL -1
#define NETDB_SUCCESS 0
#define HOST_NOT_FOUND 1
#define TRY_AGAIN 2
#define NO_RECOVERY 3
#define NO_DATA 4
#define NO_ADDRESS NO_DATA

extern int h_errno;

struct hostent *gethostbyname(const char *);
struct hostent *gethostbyname2(const char *, int);
struct hostent *gethostbyaddr(const void *, socklen_t, int);
void sethostent(int);
void endhostent(void);
struct servent *getservbyname(const char *, const char *);
struct servent *getservbyport(int, const char *);
struct servent *getservent(void);
void setservent(int);
void endservent(void);
struct protoent *getprotobyname(const char *);
struct protoent *getprotobynumber(int);
struct protoent *getprotoent(void);
void setprotoent(int);
void endprotoent(void);
const char *hstrerror(int);
void herror(const char *);

#ifdef __cplusplus
}
#endif

#endif
