/* The interfaces a program sees: getifaddrs and the if_* calls, one line each. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

static const char *text(const struct sockaddr *sa, char *buf, size_t cap) {
    if (sa == NULL)
        return "-";
    const void *a = sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                                             : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    return inet_ntop(sa->sa_family, a, buf, (socklen_t)cap);
}

int main(void) {
    struct ifaddrs *list;
    if (getifaddrs(&list) != 0) {
        perror("getifaddrs");
        return 1;
    }
    for (struct ifaddrs *p = list; p != NULL; p = p->ifa_next) {
        char a[INET6_ADDRSTRLEN], m[INET6_ADDRSTRLEN];
        if (p->ifa_addr == NULL || (p->ifa_addr->sa_family != AF_INET &&
                                    p->ifa_addr->sa_family != AF_INET6))
            continue;
        printf("%s %s %s/%s flags %#x\n", p->ifa_name,
               p->ifa_addr->sa_family == AF_INET ? "inet" : "inet6",
               text(p->ifa_addr, a, sizeof(a)), text(p->ifa_netmask, m, sizeof(m)),
               p->ifa_flags);
    }
    freeifaddrs(list);
    char name[IF_NAMESIZE];
    printf("if_nametoindex lo %u\n", if_nametoindex("lo"));
    printf("if_indextoname 1 %s\n", if_indextoname(1, name) ? name : "none");
    printf("if_nametoindex nosuch %u\n", if_nametoindex("nosuch0"));
    struct if_nameindex *all = if_nameindex();
    for (struct if_nameindex *p = all; p != NULL && p->if_index != 0; p++)
        printf("if_nameindex %u %s\n", p->if_index, p->if_name);
    if_freenameindex(all);
    return 0;
}
