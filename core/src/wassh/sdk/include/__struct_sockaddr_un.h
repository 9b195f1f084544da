/* wassh SDK: shadows wasi-libc's internal header of the same name (same include
 * guard) to give struct sockaddr_un a real sun_path, as on every POSIX system. */
#ifndef __wasilibc___struct_sockaddr_un_h
#define __wasilibc___struct_sockaddr_un_h
#pragma GCC system_header

#include <__typedef_sa_family_t.h>

struct sockaddr_un {
    sa_family_t sun_family;
    char sun_path[108];
};

#endif
