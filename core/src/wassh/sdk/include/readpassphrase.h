/* wassh SDK: readpassphrase() (OpenBSD), answered by the host: it asks on the
 * terminal (or however the embedder collects secrets). */
#ifndef __WASSH_READPASSPHRASE_H
#define __WASSH_READPASSPHRASE_H
#pragma GCC system_header

#include <stddef.h>

#define RPP_ECHO_OFF 0x00
#define RPP_ECHO_ON 0x01
#define RPP_REQUIRE_TTY 0x02
#define RPP_FORCELOWER 0x04
#define RPP_FORCEUPPER 0x08
#define RPP_SEVENBIT 0x10
#define RPP_STDIN 0x20

#ifdef __cplusplus
extern "C" {
#endif

char *readpassphrase(const char *, char *, size_t, int);

#ifdef __cplusplus
}
#endif

#endif
