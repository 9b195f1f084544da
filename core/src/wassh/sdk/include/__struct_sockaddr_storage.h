/* wassh SDK: shadows wasi-libc's internal header of the same name (same include
 * guard): sockaddr_storage is 128 bytes, large enough for sockaddr_un. */
#ifndef __wasilibc___struct_sockaddr_storage_h
#define __wasilibc___struct_sockaddr_storage_h
#pragma GCC system_header

#include <__typedef_sa_family_t.h>

struct sockaddr_storage {
    __attribute__((aligned(__BIGGEST_ALIGNMENT__))) sa_family_t ss_family;
    char __ss_data[128 - sizeof(sa_family_t)];
};

#endif
