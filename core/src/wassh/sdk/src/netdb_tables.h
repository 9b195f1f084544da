/* wassh SDK: the built-in services and protocols tables (private to the SDK). */
#ifndef WASSH_SDK_NETDB_TABLES_H
#define WASSH_SDK_NETDB_TABLES_H

#include <stddef.h>

struct __wassh_service {
    const char *name;
    int port; /* host order */
    const char *proto; /* "tcp" or "udp" */
    const char *aliases; /* space-separated, may be empty */
};

struct __wassh_protocol {
    const char *name;
    int number;
    const char *aliases;
};

extern const struct __wassh_service __wassh_services[];
extern const size_t __wassh_nservices;
extern const struct __wassh_protocol __wassh_protocols[];
extern const size_t __wassh_nprotocols;

#endif
