/* wassh SDK: wasi-libc's <netinet/in.h> plus the option constants the wassh
 * host understands, in case the libc headers ever stop defining them. */
#ifndef __WASSH_NETINET_IN_H
#define __WASSH_NETINET_IN_H
#pragma GCC system_header

#include_next <netinet/in.h>

#ifndef IP_TOS
#define IP_TOS 1
#endif
#ifndef IP_MTU_DISCOVER
#define IP_MTU_DISCOVER 10
#endif
#ifndef IPV6_V6ONLY
#define IPV6_V6ONLY 26
#endif
#ifndef IPV6_TCLASS
#define IPV6_TCLASS 67
#endif

#endif
