/* wassh SDK: read, write, readv and writev that a caught signal interrupts as
 * on Linux. They replace wasi-libc's (same calls underneath) so that a read
 * blocked on a socket, a pipe or standard input, which the host ends with EINTR
 * for a caught signal, runs the handler and is then restarted (the handler was
 * installed with SA_RESTART, as signal() installs it) or fails with EINTR.
 * stdio reads and writes come through readv and writev. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>
#include <wasi/api.h>

#include "sigwrap.h"

_Static_assert(sizeof(struct iovec) == sizeof(__wasi_iovec_t), "iovec is WASI's");

static ssize_t result(__wasi_errno_t err, size_t n) {
    if (err != 0) {
        errno = err == ENOTCAPABLE ? EBADF : err;
        return -1;
    }
    return (ssize_t)n;
}

ssize_t read(int fd, void *buf, size_t len) {
    __wasi_iovec_t iov = {.buf = buf, .buf_len = len};
    size_t n = 0;
    __wasi_errno_t err;
    WASSH_RESTARTABLE(err, __wasi_fd_read(fd, &iov, 1, &n));
    return result(err, n);
}

ssize_t write(int fd, const void *buf, size_t len) {
    __wasi_ciovec_t iov = {.buf = buf, .buf_len = len};
    size_t n = 0;
    __wasi_errno_t err;
    WASSH_RESTARTABLE(err, __wasi_fd_write(fd, &iov, 1, &n));
    return result(err, n);
}

ssize_t readv(int fd, const struct iovec *iov, int count) {
    if (count < 0)
        return errno = EINVAL, -1;
    size_t n = 0;
    __wasi_errno_t err;
    WASSH_RESTARTABLE(err, __wasi_fd_read(fd, (const __wasi_iovec_t *)iov, (size_t)count, &n));
    return result(err, n);
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    if (count < 0)
        return errno = EINVAL, -1;
    size_t n = 0;
    __wasi_errno_t err;
    WASSH_RESTARTABLE(err,
                      __wasi_fd_write(fd, (const __wasi_ciovec_t *)iov, (size_t)count, &n));
    return result(err, n);
}
