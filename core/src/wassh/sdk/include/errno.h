/* wassh SDK: errno names wasi-libc leaves out, given the number of the closest
 * WASI error (they are aliases, as some Linux names already are). */
#ifndef __WASSH_ERRNO_H
#define __WASSH_ERRNO_H
#pragma GCC system_header

#include_next <errno.h>

#ifndef EPFNOSUPPORT
#define EPFNOSUPPORT EAFNOSUPPORT
#endif
#ifndef ESOCKTNOSUPPORT
#define ESOCKTNOSUPPORT EPROTONOSUPPORT
#endif
#ifndef ESHUTDOWN
#define ESHUTDOWN EPIPE
#endif
#ifndef ETOOMANYREFS
#define ETOOMANYREFS EMFILE
#endif
#ifndef EHOSTDOWN
#define EHOSTDOWN EHOSTUNREACH
#endif

#endif
