/* wassh SDK: shared internal definitions. */
#ifndef WASSH_SDK_INTERNAL_H
#define WASSH_SDK_INTERNAL_H

/* The host's descriptor table size (FD_SETSIZE). */
#define WASSH_FD_LIMIT 1024

/* The one synthetic user and group. */
#define WASSH_UID 1000
#define WASSH_GID 1000

#endif
