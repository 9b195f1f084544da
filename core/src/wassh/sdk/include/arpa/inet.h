/* wassh SDK: wasi-libc's <arpa/inet.h> plus inet_addr(), inet_ntoa() and the
 * classful helpers. */
#ifndef __WASSH_ARPA_INET_H
#define __WASSH_ARPA_INET_H
#pragma GCC system_header

#include_next <arpa/inet.h>

#ifdef __cplusplus
extern "C" {
#endif

in_addr_t inet_addr(const char *);
char *inet_ntoa(struct in_addr);
in_addr_t inet_network(const char *);
struct in_addr inet_makeaddr(in_addr_t, in_addr_t);
in_addr_t inet_lnaof(struct in_addr);
in_addr_t inet_netof(struct in_addr);

#ifdef __cplusplus
}
#endif

#endif
