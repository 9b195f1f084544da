/* wassh SDK: <netinet/tcp.h>, musl's (struct tcphdr, struct tcp_info and the
 * TCP_* option names, Linux's numbers, which the wassh host maps). */
#ifndef __WASSH_NETINET_TCP_H
#define __WASSH_NETINET_TCP_H
#pragma GCC system_header

#include <netinet/in.h>
#include_next <netinet/tcp.h>

#ifndef TCP_NODELAY
#define TCP_NODELAY 1
#endif
#ifndef TCP_MAXSEG
#define TCP_MAXSEG 2
#endif
#ifndef TCP_KEEPIDLE
#define TCP_KEEPIDLE 4
#endif
#ifndef TCP_KEEPINTVL
#define TCP_KEEPINTVL 5
#endif
#ifndef TCP_KEEPCNT
#define TCP_KEEPCNT 6
#endif
#ifndef SOL_TCP
#define SOL_TCP IPPROTO_TCP
#endif

#endif
