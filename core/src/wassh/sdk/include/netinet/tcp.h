/* wassh SDK: TCP socket options (Linux numbering, as the wassh host expects). */
#ifndef __WASSH_NETINET_TCP_H
#define __WASSH_NETINET_TCP_H
#pragma GCC system_header

#include <netinet/in.h>

#define TCP_NODELAY 1
#define TCP_MAXSEG 2
#define TCP_KEEPIDLE 4
#define TCP_KEEPINTVL 5
#define TCP_KEEPCNT 6

#ifndef SOL_TCP
#define SOL_TCP IPPROTO_TCP
#endif

#endif
