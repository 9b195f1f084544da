/* wassh SDK: <spawn.h>. posix_spawn() and posix_spawnp() start another wasm
 * program under the same host (see the program map in the README), with the
 * same network policy, preopens and plugins; waitpid() and kill() reach it.
 *
 * The child's descriptors 0, 1 and 2 are what the file actions make of the
 * parent's (addclose, adddup2, addopen: opened by the parent, then handed
 * over); higher descriptors are not inherited, as if all were close-on-exec.
 * A socket cannot be handed over (ENOTSUP). Attributes are accepted; the
 * child always starts with default signal dispositions and an empty mask, in
 * its own process group for every purpose the SDK answers. */
#ifndef __WASSH_SPAWN_H
#define __WASSH_SPAWN_H
#pragma GCC system_header

#include <sched.h>
#include_next <spawn.h>

#endif
