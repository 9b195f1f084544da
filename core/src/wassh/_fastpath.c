/* wassh._fastpath: host calls as C callbacks registered with wasmtime's C API.
 *
 * Every import of a guest is a C function here. The hot calls (fd_read,
 * fd_write, sock_recv, sock_send, the SDK's sock_recvfrom/sock_sendto and
 * poll_oneoff) are served in C when every descriptor they name is one the
 * Python host has attached to this module (a connected stream of an
 * os_sockets transport, a pipe or standard stream, a regular file); then no
 * Python code runs and the GIL is never taken, so a guest waiting here lets
 * every other thread run. Anything else, and every check that fails before any
 * byte has moved (a bad pointer, unknown flags, a descriptor not attached),
 * calls the import's Python implementation, which stays the reference: it
 * computes the errno and does the bookkeeping. An OS error after bytes could
 * have moved goes to the host's `fail` callable, the one place OS errors
 * become WASI errnos. docs/fastpath.md describes the contract with the host.
 *
 * No wasmtime header is needed: the callback's types are a pointer-sized
 * return and an array of raw values whose stride the host passes in, and the
 * only wasmtime function called (wasmtime_trap_new) comes from the library
 * wasmtime-py already loaded, as an address.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef POLLRDHUP
#define POLLRDHUP 0x2000
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* What an attached descriptor is. A listener is attached for poll_oneoff only
 * (its flags allow no transfer): an event loop polls it with its connections. */
enum { K_NONE = 0, K_SOCKET = 1, K_STREAM = 2, K_FILE = 3, K_LISTENER = 4 };
/* Entry flags. */
enum { F_READ = 1, F_WRITE = 2, F_NONBLOCK = 4, F_REGULAR = 8, F_ACCEPT = 16 };
/* Which fast handler an import has (the host names them; see fastpath.py). */
enum {
    OP_PLAIN = 0,
    OP_FD_READ,
    OP_FD_WRITE,
    OP_SOCK_RECV,
    OP_SOCK_SEND,
    OP_RECVFROM,
    OP_SENDTO,
    OP_POLL,
    OP_ACCEPT,
    OP_ACCEPT_P1,
    OP_COUNT
};

#define FD_LIMIT 1024
#define GUEST_IOV_MAX 1024
#define MAX_SUBSCRIPTIONS (4 * FD_LIMIT)
#define SUBSCRIPTION_SIZE 48
#define EVENT_SIZE 32
#define MAX_WAIT_MS 86400000LL

/* WASI errno numbers. */
#define W_EAGAIN 6
#define W_EINTR 27
#define W_ECONNRESET 15
#define W_EPIPE 64
/* WASI constants. */
#define EVENTTYPE_CLOCK 0
#define EVENTTYPE_FD_READ 1
#define EVENTTYPE_FD_WRITE 2
#define HANGUP 1
#define SUBCLOCKFLAG_ABSTIME 1
#define WASH_MSG_DONTWAIT 0x40

/* How a fast handler ended. */
typedef enum { DONE, FALLBACK, FALLBACK_BOUNDS, TRAP } Outcome;

typedef void *(*trap_new_fn)(const char *msg, size_t len);

typedef struct {
    int osfd;
    uint8_t kind;
    uint8_t flags;
    uint8_t wire_len;
    uint16_t wire_port;
    uint32_t wire_family;
    uint8_t wire_addr[16];
    uint64_t sent;
    uint64_t received;
    unsigned declined; /* epoch + 1 when the host declined it in that epoch */
} Entry;

struct Runtime;

typedef struct {
    struct Runtime *rt;
    int op;
    int returns;
    Py_ssize_t nparams;
    char params[16];
    PyObject *entry;
} Import;

typedef struct Runtime {
    PyObject_HEAD
    uint8_t *mem;
    uint64_t mem_size;
    int wake_fd;
    trap_new_fn trap_new;
    size_t stride;
    PyObject *query_size;
    PyObject *fail;
    PyObject *on_wake;
    PyObject *offer;
    PyObject *adopt;
    PyObject *unwind;
    volatile int signals;
    volatile unsigned epoch;
    Import **imports;
    Py_ssize_t nimports;
    Py_ssize_t cap;
    uint64_t calls[OP_COUNT];
    uint64_t fast[OP_COUNT];
    Entry fds[FD_LIMIT];
} Runtime;

static const char TRAP_MESSAGE[] = "wassh: guest unwound by the host";

/* -- raw values --------------------------------------------------------------------- */

static inline uint32_t arg_u32(const Import *imp, void *args, int i) {
    int32_t v;
    memcpy(&v, (char *)args + (size_t)i * imp->rt->stride, sizeof v);
    return (uint32_t)v;
}

static inline uint64_t arg_u64(const Import *imp, void *args, int i) {
    int64_t v;
    memcpy(&v, (char *)args + (size_t)i * imp->rt->stride, sizeof v);
    return (uint64_t)v;
}

static inline void set_result(void *args, uint32_t value) {
    int32_t v = (int32_t)value;
    memcpy(args, &v, sizeof v);
}

/* -- guest memory ------------------------------------------------------------------- */

static inline int in_bounds(const Runtime *rt, uint64_t ptr, uint64_t len) {
    return rt->mem != NULL && ptr + len <= rt->mem_size;
}

static inline void put_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint16_t get_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* -- calling the host (with the GIL) -------------------------------------------------- */

/* Hand the exception in flight to the runtime, which re-raises it once the guest
 * has unwound. Called with the GIL held. */
static void keep_exception(Runtime *rt) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL) {
        if (tb != NULL) PyException_SetTraceback(value, tb);
        if (PyObject_SetAttrString(rt->unwind, "pending", value) < 0) PyErr_Clear();
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

static void *new_trap(Runtime *rt) { return rt->trap_new(TRAP_MESSAGE, sizeof TRAP_MESSAGE - 1); }

/* The import's Python implementation: it returns the result, or None once it has
 * stored what unwinds the guest. */
static void *call_python(Import *imp, void *args) {
    Runtime *rt = imp->rt;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *argv[16];
    void *trap = NULL;
    Py_ssize_t i;
    for (i = 0; i < imp->nparams; i++) {
        switch (imp->params[i]) {
        case 'i': argv[i] = PyLong_FromUnsignedLong(arg_u32(imp, args, (int)i)); break;
        case 's': argv[i] = PyLong_FromLong((int32_t)arg_u32(imp, args, (int)i)); break;
        case 'I': argv[i] = PyLong_FromUnsignedLongLong(arg_u64(imp, args, (int)i)); break;
        default: argv[i] = PyLong_FromLongLong((int64_t)arg_u64(imp, args, (int)i)); break;
        }
        if (argv[i] == NULL) break;
    }
    PyObject *result = NULL;
    if (i == imp->nparams) result = PyObject_Vectorcall(imp->entry, argv, (size_t)i, NULL);
    while (i > 0) Py_DECREF(argv[--i]);
    if (result == NULL) {
        keep_exception(rt);
        trap = new_trap(rt);
    } else if (result == Py_None) {
        trap = new_trap(rt);
    } else if (imp->returns) {
        unsigned long long v = PyLong_AsUnsignedLongLongMask(result);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            keep_exception(rt);
            trap = new_trap(rt);
        } else {
            set_result(args, (uint32_t)v);
        }
    }
    Py_XDECREF(result);
    PyGILState_Release(gil);
    return trap;
}

/* What failed, for the host's `fail`. */
enum { FAILED_RECV = 0, FAILED_SEND = 1, FAILED_ACCEPT = 2 };

/* The OS error `err` on guest descriptor `fd`: the host maps it (and notes a
 * reset). Returns the WASI errno, or -1 when the host raised (the guest traps). */
static int host_fail(Runtime *rt, uint32_t fd, int write, int err) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunction(rt->fail, "Iii", fd, write, err);
    int out = -1;
    if (r == NULL) {
        keep_exception(rt);
    } else {
        out = (int)PyLong_AsLong(r);
        if (out == -1 && PyErr_Occurred()) keep_exception(rt);
    }
    Py_XDECREF(r);
    PyGILState_Release(gil);
    return out;
}

/* A system call was interrupted: run the host's signal handlers, as Python's own
 * calls do (PEP 475). 0 to retry, -1 to trap. */
static int interrupted(Runtime *rt) {
    PyGILState_STATE gil = PyGILState_Ensure();
    int r = PyErr_CheckSignals();
    if (r < 0) keep_exception(rt);
    PyGILState_Release(gil);
    return r < 0 ? -1 : 0;
}

/* The wake pipe fired while waiting (or signals are queued): the host drains it,
 * and raises if the guest is being stopped. 0 to go on, -1 to trap, 1 when a
 * queued signal has a guest handler to run: the call fails with EINTR, and the
 * SDK runs the handler once it has returned. */
static int woken(Runtime *rt) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *r = PyObject_CallNoArgs(rt->on_wake);
    int out = -1;
    if (r == NULL) keep_exception(rt);
    else out = r == Py_True ? 0 : 1;
    Py_XDECREF(r);
    PyGILState_Release(gil);
    return out;
}

/* Block until `osfd` reports `events` (or trouble). 0 to retry the call, -1 to
 * trap, 1 for EINTR. */
static int wait_fd(Runtime *rt, int osfd, short events) {
    struct pollfd p[2] = {{osfd, events, 0}, {rt->wake_fd, POLLIN, 0}};
    if (rt->signals != 0) {
        int w = woken(rt);
        if (w != 0) return w;
    }
    for (;;) {
        int n = poll(p, 2, -1);
        if (n < 0) {
            if (errno == EINTR) {
                if (interrupted(rt) < 0) return -1;
                continue;
            }
            return 0; /* the retried call reports what is wrong */
        }
        if (p[1].revents) return woken(rt);
        return 0;
    }
}

/* -- descriptors ---------------------------------------------------------------------- */

/* The attached entry for guest descriptor `fd`, asking the host to attach it the
 * first time it is seen in this epoch; NULL when it stays with Python. */
static Entry *entry_for(Runtime *rt, uint32_t fd) {
    if (fd >= FD_LIMIT) return NULL;
    Entry *e = &rt->fds[fd];
    if (e->kind != K_NONE) return e;
    if (e->declined == rt->epoch + 1) return NULL;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *key = PyLong_FromUnsignedLong(fd);
    PyObject *r = key ? PyObject_CallOneArg(rt->offer, key) : NULL;
    Py_XDECREF(key);
    if (r == NULL) PyErr_Clear(); /* the Python path will meet the same problem */
    Py_XDECREF(r);
    PyGILState_Release(gil);
    if (e->kind != K_NONE) return e;
    e->declined = rt->epoch + 1;
    return NULL;
}

/* Decode a guest iovec array into `iov`. FALLBACK_BOUNDS when any part lies outside
 * memory (Python answers EFAULT), FALLBACK when there are too many (EINVAL). */
static Outcome guest_iovecs(Runtime *rt, uint32_t ptr, uint32_t count, struct iovec *iov) {
    if (count > GUEST_IOV_MAX) return FALLBACK;
    if (!in_bounds(rt, ptr, 8ULL * count)) return FALLBACK_BOUNDS;
    /* Overlapping buffers may name more than memory holds: cut the total there, as
     * the Python host does (a short transfer). */
    uint64_t budget = rt->mem_size;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *raw = rt->mem + ptr + 8ULL * i;
        uint32_t buf = get_u32(raw), len = get_u32(raw + 4);
        if (!in_bounds(rt, buf, len)) return FALLBACK_BOUNDS;
        uint64_t take = count == 1 ? len : (len < budget ? len : budget);
        budget -= take;
        iov[i].iov_base = rt->mem + buf;
        iov[i].iov_len = (size_t)take;
    }
    return DONE;
}

/* recv on a connected stream: bytes, or -errno (WASI), or INT64_MIN to trap. */
#define TRAPPED INT64_MIN

static int64_t sock_recv1(Runtime *rt, uint32_t fd, Entry *e, void *buf, size_t len, int nonblock) {
    int osfd = e->osfd;
    for (;;) {
        ssize_t n = recv(osfd, buf, len, MSG_DONTWAIT);
        if (n >= 0) {
            e->received += (uint64_t)n;
            return n;
        }
        int err = errno;
        if (err == EINTR) {
            if (interrupted(rt) < 0) return TRAPPED;
            continue;
        }
        if (err == EAGAIN || err == EWOULDBLOCK) {
            if (nonblock) return -W_EAGAIN;
            int w = wait_fd(rt, osfd, POLLIN);
            if (w < 0) return TRAPPED;
            if (w > 0) return -W_EINTR;
            continue;
        }
        int w = host_fail(rt, fd, FAILED_RECV, err);
        return w < 0 ? TRAPPED : -w;
    }
}

/* send on a connected stream, all of it unless non-blocking (then what fits). */
static int64_t sock_send1(Runtime *rt, uint32_t fd, Entry *e, const uint8_t *buf, size_t len,
                          int nonblock) {
    int osfd = e->osfd;
    size_t sent = 0;
    for (;;) {
        ssize_t n = send(osfd, buf + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            sent += (size_t)n;
            e->sent += (uint64_t)n;
            if (sent >= len) return (int64_t)sent;
            continue;
        }
        int err = errno;
        if (err == EINTR) {
            if (interrupted(rt) < 0) return TRAPPED;
            continue;
        }
        if (err == EAGAIN || err == EWOULDBLOCK) {
            if (nonblock) return sent ? (int64_t)sent : -W_EAGAIN;
            int w = wait_fd(rt, osfd, POLLOUT);
            if (w < 0) return TRAPPED;
            if (w > 0) return sent ? (int64_t)sent : -W_EINTR;
            continue;
        }
        if (sent) return (int64_t)sent;
        int w = host_fail(rt, fd, 1, err);
        return w < 0 ? TRAPPED : -w;
    }
}

/* read on a pipe, standard stream or file: wait (unless a regular file) for
 * readability, then one readv. */
static int64_t stream_read(Runtime *rt, uint32_t fd, Entry *e, struct iovec *iov, int count) {
    if (count == 0) return 0;
    int osfd = e->osfd;
    if (!(e->flags & F_REGULAR) && e->kind == K_STREAM) {
        if (rt->signals != 0 && !(e->flags & F_NONBLOCK)) {
            int w = woken(rt);
            if (w < 0) return TRAPPED;
            if (w > 0) return -W_EINTR;
        }
        for (;;) {
            struct pollfd p[2] = {{osfd, POLLIN, 0}, {rt->wake_fd, POLLIN, 0}};
            int n = poll(p, 2, (e->flags & F_NONBLOCK) ? 0 : -1);
            if (n < 0 && errno == EINTR) {
                if (interrupted(rt) < 0) return TRAPPED;
                continue;
            }
            if (n > 0 && p[1].revents) {
                int w = woken(rt);
                if (w < 0) return TRAPPED;
                if (w > 0 && !(e->flags & F_NONBLOCK)) return -W_EINTR;
            }
            if (n > 0 && p[0].revents) break;
            if (e->flags & F_NONBLOCK) return -W_EAGAIN;
        }
    }
    for (;;) {
        ssize_t n = readv(osfd, iov, count);
        if (n >= 0) return n;
        int err = errno;
        if (err == EINTR) {
            if (interrupted(rt) < 0) return TRAPPED;
            continue;
        }
        int w = host_fail(rt, fd, 0, err);
        return w < 0 ? TRAPPED : -w;
    }
}

/* write to a pipe or standard stream: each buffer whole unless the descriptor is
 * non-blocking; a reader gone is EPIPE (or the count so far). */
static int64_t stream_write(Runtime *rt, uint32_t fd, Entry *e, struct iovec *iov, int count) {
    int osfd = e->osfd;
    int64_t total = 0;
    for (int i = 0; i < count; i++) {
        const uint8_t *data = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left) {
            ssize_t n = write(osfd, data, left);
            if (n >= 0) {
                total += n;
                data += n;
                left -= (size_t)n;
                continue;
            }
            int err = errno;
            if (err == EINTR) {
                if (interrupted(rt) < 0) return TRAPPED;
                continue;
            }
            if (err == EAGAIN || err == EWOULDBLOCK) {
                if (total) return total;
                if (e->flags & F_NONBLOCK) return -W_EAGAIN;
                int w = wait_fd(rt, osfd, POLLOUT);
                if (w < 0) return TRAPPED;
                if (w > 0) return -W_EINTR;
                continue;
            }
            if (err == EPIPE) return total ? total : -W_EPIPE;
            int w = host_fail(rt, fd, 1, err);
            return w < 0 ? TRAPPED : -w;
        }
    }
    return total;
}

static int64_t file_io(Runtime *rt, uint32_t fd, Entry *e, struct iovec *iov, int count, int write) {
    if (count == 0) return 0;
    for (;;) {
        ssize_t n = write ? writev(e->osfd, iov, count) : readv(e->osfd, iov, count);
        if (n >= 0) return n;
        int err = errno;
        if (err == EINTR) {
            if (interrupted(rt) < 0) return TRAPPED;
            continue;
        }
        int w = host_fail(rt, fd, write, err);
        return w < 0 ? TRAPPED : -w;
    }
}

/* Store a count (or an errno) as the call's result. */
static Outcome finish_count(Runtime *rt, void *args, int64_t n, uint32_t out) {
    if (n == TRAPPED) return TRAP;
    if (n < 0) {
        set_result(args, (uint32_t)-n);
        return DONE;
    }
    put_u32(rt->mem + out, (uint32_t)n);
    set_result(args, 0);
    return DONE;
}

/* -- the fast handlers ---------------------------------------------------------------- */

/* fd_read / fd_write (fd, iovs, iovs_len, nread_out); sock_recv (fd, iovs, iovs_len,
 * flags, out, oflags_out); sock_send (fd, iovs, iovs_len, flags, out). */
static Outcome fast_rw(Import *imp, void *args, int write, int socket_call) {
    Runtime *rt = imp->rt;
    uint32_t fd = arg_u32(imp, args, 0), iovs = arg_u32(imp, args, 1);
    uint32_t count = arg_u32(imp, args, 2);
    uint32_t out, oflags = 0;
    if (socket_call) {
        if (arg_u32(imp, args, 3) != 0) return FALLBACK; /* peek, waitall: Python's */
        out = arg_u32(imp, args, 4);
        if (!write) oflags = arg_u32(imp, args, 5);
    } else {
        out = arg_u32(imp, args, 3);
    }
    Entry *e = entry_for(rt, fd);
    if (e == NULL) return FALLBACK;
    if (socket_call && e->kind != K_SOCKET) return FALLBACK;
    if (!(e->flags & (write ? F_WRITE : F_READ))) return FALLBACK;
    if (!in_bounds(rt, out, 4)) return FALLBACK_BOUNDS;
    if (socket_call && !write && !in_bounds(rt, oflags, 2)) return FALLBACK_BOUNDS;
    struct iovec small[4];
    struct iovec *iov = small;
    if (count > 4) {
        if (count > GUEST_IOV_MAX || e->kind == K_SOCKET) return FALLBACK;
        iov = PyMem_RawMalloc(sizeof(struct iovec) * count);
        if (iov == NULL) return FALLBACK;
    }
    Outcome o = guest_iovecs(rt, iovs, count, iov);
    int64_t n = 0;
    if (o == DONE) {
        if (e->kind == K_SOCKET) {
            if (count != 1) {
                o = FALLBACK; /* scatter/gather over a socket: Python's loop */
            } else if (write) {
                n = sock_send1(rt, fd, e, iov[0].iov_base, iov[0].iov_len, e->flags & F_NONBLOCK);
            } else {
                n = sock_recv1(rt, fd, e, iov[0].iov_base, iov[0].iov_len, e->flags & F_NONBLOCK);
            }
        } else if (e->kind == K_STREAM) {
            n = write ? stream_write(rt, fd, e, iov, (int)count)
                      : stream_read(rt, fd, e, iov, (int)count);
        } else {
            n = file_io(rt, fd, e, iov, (int)count, write);
        }
    }
    if (iov != small) PyMem_RawFree(iov);
    if (o != DONE) return o;
    o = finish_count(rt, args, n, out);
    if (o == DONE && n >= 0 && socket_call && !write) put_u16(rt->mem + oflags, 0);
    return o;
}

/* The SDK's sock_recvfrom (fd, buf, len, out, flags, domain_out, addr_out, port_out)
 * on a connected stream: one recv, and the peer as the guest dialled it. */
static Outcome fast_recvfrom(Import *imp, void *args) {
    Runtime *rt = imp->rt;
    uint32_t fd = arg_u32(imp, args, 0), buf = arg_u32(imp, args, 1);
    uint32_t len = arg_u32(imp, args, 2), out = arg_u32(imp, args, 3);
    uint32_t flags = arg_u32(imp, args, 4), domain_out = arg_u32(imp, args, 5);
    uint32_t addr_out = arg_u32(imp, args, 6), port_out = arg_u32(imp, args, 7);
    if (flags & ~(uint32_t)WASH_MSG_DONTWAIT) return FALLBACK;
    Entry *e = entry_for(rt, fd);
    if (e == NULL || e->kind != K_SOCKET) return FALLBACK;
    if (!in_bounds(rt, buf, len) || !in_bounds(rt, out, 4)) return FALLBACK_BOUNDS;
    if ((domain_out && !in_bounds(rt, domain_out, 4)) || (addr_out && !in_bounds(rt, addr_out, 16)) ||
        (port_out && !in_bounds(rt, port_out, 2)))
        return FALLBACK_BOUNDS;
    int64_t n = sock_recv1(rt, fd, e, rt->mem + buf, len, (e->flags & F_NONBLOCK) || flags);
    Outcome o = finish_count(rt, args, n, out);
    if (o == DONE && n >= 0) {
        if (domain_out) put_u32(rt->mem + domain_out, e->wire_family);
        if (addr_out) memcpy(rt->mem + addr_out, e->wire_addr, e->wire_len);
        if (port_out) put_u16(rt->mem + port_out, e->wire_port);
    }
    return o;
}

/* The SDK's sock_sendto (fd, buf, len, out, flags, domain, addr, port) on a
 * connected stream, which ignores the address as Linux does. */
static Outcome fast_sendto(Import *imp, void *args) {
    Runtime *rt = imp->rt;
    uint32_t fd = arg_u32(imp, args, 0), buf = arg_u32(imp, args, 1);
    uint32_t len = arg_u32(imp, args, 2), out = arg_u32(imp, args, 3);
    uint32_t flags = arg_u32(imp, args, 4);
    if (flags & ~(uint32_t)WASH_MSG_DONTWAIT) return FALLBACK;
    if (!in_bounds(rt, buf, len) || !in_bounds(rt, out, 4)) return FALLBACK_BOUNDS;
    Entry *e = entry_for(rt, fd);
    if (e == NULL || e->kind != K_SOCKET) return FALLBACK;
    int64_t n = sock_send1(rt, fd, e, rt->mem + buf, len, (e->flags & F_NONBLOCK) || flags);
    return finish_count(rt, args, n, out);
}

/* The SDK's sock_accept (fd, out) and preview1's (fd, flags, out) on an attached
 * listener: the OS accept (and its wait) here, the new socket made by the host. */
static Outcome fast_accept(Import *imp, void *args, int preview1) {
    Runtime *rt = imp->rt;
    uint32_t fd = arg_u32(imp, args, 0);
    uint32_t flags = preview1 ? arg_u32(imp, args, 1) : 0;
    uint32_t out = arg_u32(imp, args, preview1 ? 2 : 1);
    if (flags & ~(uint32_t)4) return FALLBACK; /* only FDFLAGS_NONBLOCK */
    Entry *e = entry_for(rt, fd);
    if (e == NULL || e->kind != K_LISTENER || !(e->flags & F_ACCEPT)) return FALLBACK;
    if (!in_bounds(rt, out, 4)) return FALLBACK_BOUNDS;
    int osfd = e->osfd, conn;
    for (;;) {
        conn = accept4(osfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn >= 0) break;
        int err = errno;
        if (err == EINTR) {
            if (interrupted(rt) < 0) return TRAP;
            continue;
        }
        if (err == EAGAIN || err == EWOULDBLOCK) {
            if (e->flags & F_NONBLOCK) {
                set_result(args, W_EAGAIN);
                return DONE;
            }
            int w = wait_fd(rt, osfd, POLLIN);
            if (w < 0) return TRAP;
            if (w > 0) {
                set_result(args, W_EINTR);
                return DONE;
            }
            continue;
        }
        int w = host_fail(rt, fd, FAILED_ACCEPT, err);
        if (w < 0) return TRAP;
        set_result(args, (uint32_t)w);
        return DONE;
    }
    /* The host wraps the connection as the transport's accept hook would have and
     * installs it: the guest's descriptor, or -errno (the table is full). */
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunction(rt->adopt, "Iii", fd, conn, (flags & 4) ? 1 : 0);
    long result = 0;
    Outcome o = DONE;
    if (r == NULL) {
        keep_exception(rt);
        o = TRAP;
    } else {
        result = PyLong_AsLong(r);
        if (result == -1 && PyErr_Occurred()) {
            keep_exception(rt);
            o = TRAP;
        }
    }
    Py_XDECREF(r);
    PyGILState_Release(gil);
    if (o == TRAP) return TRAP;
    if (result < 0) {
        set_result(args, (uint32_t)-result);
        return DONE;
    }
    put_u32(rt->mem + out, (uint32_t)result);
    set_result(args, 0);
    return DONE;
}

/* -- poll_oneoff ---------------------------------------------------------------------- */

typedef struct {
    uint64_t userdata;
    uint8_t tag;
    uint8_t kind;
    short mask;
    int osfd;
} Pending;

typedef struct {
    uint64_t userdata;
    uint16_t error;
    uint8_t tag;
    uint16_t flags;
} Event;

static int64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Far enough to never come, near enough that sums cannot overflow. */
#define FAR_NS (INT64_MAX / 4)

static int64_t clamp_ns(uint64_t v) { return v > (uint64_t)FAR_NS ? FAR_NS : (int64_t)v; }

static int socket_event(uint8_t kind, int write, short revents, Event *ev) {
    ev->error = 0;
    ev->flags = 0;
    if (kind == K_SOCKET || kind == K_LISTENER) {
        uint16_t hangup = (revents & (POLLHUP | POLLRDHUP)) ? HANGUP : 0;
        if (write) {
            if ((revents & POLLHUP) && !(revents & POLLOUT)) {
                ev->error = W_EPIPE;
                ev->flags = HANGUP;
            }
        } else {
            if ((revents & POLLERR) && !(revents & POLLIN)) ev->error = W_ECONNRESET;
            ev->flags = hangup;
        }
    } else {
        if (write && (revents & (POLLERR | POLLHUP))) ev->error = W_EPIPE;
        else ev->flags = (revents & POLLHUP) ? HANGUP : 0;
    }
    return 1;
}

static Outcome fast_poll(Import *imp, void *args) {
    Runtime *rt = imp->rt;
    uint32_t subs = arg_u32(imp, args, 0), out = arg_u32(imp, args, 1);
    uint32_t nsubs = arg_u32(imp, args, 2), nevents_out = arg_u32(imp, args, 3);
    if (rt->signals != 0) return FALLBACK; /* the Python poll delivers them */
    if (nsubs == 0 || nsubs > MAX_SUBSCRIPTIONS) return FALLBACK;
    if (!in_bounds(rt, nevents_out, 4) || !in_bounds(rt, subs, (uint64_t)SUBSCRIPTION_SIZE * nsubs) ||
        !in_bounds(rt, out, (uint64_t)EVENT_SIZE * nsubs))
        return FALLBACK_BOUNDS;

    Pending pend_small[16];
    Event ev_small[16];
    struct pollfd pfd_small[17];
    Pending *pend = pend_small;
    Event *events = ev_small;
    struct pollfd *pfds = pfd_small;
    if (nsubs > 16) {
        pend = PyMem_RawMalloc(sizeof(Pending) * nsubs);
        events = PyMem_RawMalloc(sizeof(Event) * nsubs);
        pfds = PyMem_RawMalloc(sizeof(struct pollfd) * (nsubs + 1));
        if (pend == NULL || events == NULL || pfds == NULL) {
            PyMem_RawFree(pend);
            PyMem_RawFree(events);
            PyMem_RawFree(pfds);
            return FALLBACK;
        }
    }
    Outcome outcome = DONE;
    int have_deadline = 0;
    int64_t deadline = 0;
    uint64_t clock_userdata = 0;
    size_t npend = 0, nimmediate = 0, npfd = 0;

    for (uint32_t i = 0; i < nsubs && outcome == DONE; i++) {
        const uint8_t *s = rt->mem + subs + (uint64_t)SUBSCRIPTION_SIZE * i;
        uint64_t userdata = get_u64(s);
        uint8_t tag = s[8];
        uint32_t what = get_u32(s + 16);
        if (tag == EVENTTYPE_CLOCK) {
            if (what > 1) { /* not REALTIME or MONOTONIC: Python answers EINVAL */
                outcome = FALLBACK;
                break;
            }
            int64_t timeout = clamp_ns(get_u64(s + 24));
            uint16_t flags = get_u16(s + 40);
            int64_t when;
            if (!(flags & SUBCLOCKFLAG_ABSTIME)) when = now_ns(CLOCK_MONOTONIC) + timeout;
            else if (what == 0) when = now_ns(CLOCK_MONOTONIC) + (timeout - now_ns(CLOCK_REALTIME));
            else when = timeout;
            if (!have_deadline || when < deadline) {
                have_deadline = 1;
                deadline = when;
                clock_userdata = userdata;
            }
        } else if (tag == EVENTTYPE_FD_READ || tag == EVENTTYPE_FD_WRITE) {
            Entry *e = entry_for(rt, what);
            if (e == NULL) {
                outcome = FALLBACK;
                break;
            }
            int write = tag == EVENTTYPE_FD_WRITE;
            if (e->kind == K_FILE || (e->flags & F_REGULAR)) {
                Event *ev = &events[nimmediate++];
                ev->userdata = userdata;
                ev->tag = tag;
                ev->error = 0;
                ev->flags = 0;
                continue;
            }
            short mask = write ? POLLOUT : (e->kind == K_STREAM ? POLLIN : POLLIN | POLLRDHUP);
            pend[npend++] = (Pending){userdata, tag, e->kind, mask, e->osfd};
            size_t j;
            for (j = 0; j < npfd && pfds[j].fd != e->osfd; j++) {}
            if (j == npfd) pfds[npfd++] = (struct pollfd){e->osfd, 0, 0};
            pfds[j].events |= mask;
        } else {
            outcome = FALLBACK;
        }
    }

    size_t nevents = nimmediate;
    while (outcome == DONE) {
        int ms;
        if (nevents) ms = 0;
        else if (!have_deadline) ms = -1;
        else {
            int64_t left = deadline - now_ns(CLOCK_MONOTONIC);
            long long m = left <= 0 ? 0 : (left + 999999) / 1000000;
            ms = (int)(m > MAX_WAIT_MS ? MAX_WAIT_MS : m);
        }
        if (npend || ms != 0) {
            pfds[npfd] = (struct pollfd){rt->wake_fd, POLLIN, 0};
            for (size_t j = 0; j < npfd; j++) pfds[j].revents = 0;
            int n = poll(pfds, (nfds_t)(npfd + 1), ms);
            if (n < 0) {
                if (errno == EINTR) {
                    if (interrupted(rt) < 0) outcome = TRAP;
                    continue;
                }
                outcome = FALLBACK;
                break;
            }
            if (pfds[npfd].revents || rt->signals != 0) {
                outcome = FALLBACK; /* Python drains the pipe and delivers signals */
                break;
            }
            if (n > 0) {
                for (size_t k = 0; k < npend; k++) {
                    Pending *p = &pend[k];
                    short revents = 0;
                    for (size_t j = 0; j < npfd; j++)
                        if (pfds[j].fd == p->osfd) revents = pfds[j].revents;
                    if (!(revents & (p->mask | POLLERR | POLLHUP | POLLNVAL))) continue;
                    Event *ev = &events[nevents++];
                    ev->userdata = p->userdata;
                    ev->tag = p->tag;
                    socket_event(p->kind, p->tag == EVENTTYPE_FD_WRITE, revents, ev);
                }
            }
        }
        if (have_deadline && now_ns(CLOCK_MONOTONIC) >= deadline) {
            Event *ev = &events[nevents++];
            ev->userdata = clock_userdata;
            ev->tag = EVENTTYPE_CLOCK;
            ev->error = 0;
            ev->flags = 0;
        }
        if (nevents) break;
    }
    if (outcome == DONE) {
        for (size_t k = 0; k < nevents; k++) {
            uint8_t *p = rt->mem + out + (uint64_t)EVENT_SIZE * k;
            memset(p, 0, EVENT_SIZE);
            put_u64(p, events[k].userdata);
            put_u16(p + 8, events[k].error);
            p[10] = events[k].tag;
            put_u16(p + 24, events[k].flags);
        }
        put_u32(rt->mem + nevents_out, (uint32_t)nevents);
        set_result(args, 0);
    }
    if (pend != pend_small) {
        PyMem_RawFree(pend);
        PyMem_RawFree(events);
        PyMem_RawFree(pfds);
    }
    return outcome;
}

/* -- the callback wasmtime calls ------------------------------------------------------- */

static void refresh_size(Runtime *rt) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *r = PyObject_CallNoArgs(rt->query_size);
    if (r != NULL) {
        unsigned long long size = PyLong_AsUnsignedLongLong(r);
        if (!PyErr_Occurred()) rt->mem_size = size;
    }
    PyErr_Clear();
    Py_XDECREF(r);
    PyGILState_Release(gil);
}

static void *hostcall(void *env, void *caller, void *args, size_t nargs) {
    (void)caller;
    (void)nargs;
    Import *imp = env;
    Runtime *rt = imp->rt;
    Outcome o = FALLBACK;
    rt->calls[imp->op]++;
    if (rt->mem != NULL) {
        switch (imp->op) {
        case OP_FD_READ: o = fast_rw(imp, args, 0, 0); break;
        case OP_FD_WRITE: o = fast_rw(imp, args, 1, 0); break;
        case OP_SOCK_RECV: o = fast_rw(imp, args, 0, 1); break;
        case OP_SOCK_SEND: o = fast_rw(imp, args, 1, 1); break;
        case OP_RECVFROM: o = fast_recvfrom(imp, args); break;
        case OP_SENDTO: o = fast_sendto(imp, args); break;
        case OP_POLL: o = fast_poll(imp, args); break;
        case OP_ACCEPT: o = fast_accept(imp, args, 0); break;
        case OP_ACCEPT_P1: o = fast_accept(imp, args, 1); break;
        default: break;
        }
    }
    if (o == DONE) {
        rt->fast[imp->op]++;
        return NULL;
    }
    if (o == TRAP) return new_trap(rt);
    if (o == FALLBACK_BOUNDS) {
        /* Memory may have grown since the size was read: read it again, then let
         * Python answer this call (EFAULT, if the pointer really is wild). */
        refresh_size(rt);
    }
    return call_python(imp, args);
}

/* -- the Python type -------------------------------------------------------------------- */

static int Runtime_traverse(Runtime *self, visitproc visit, void *arg) {
    Py_VISIT(self->query_size);
    Py_VISIT(self->fail);
    Py_VISIT(self->on_wake);
    Py_VISIT(self->offer);
    Py_VISIT(self->adopt);
    Py_VISIT(self->unwind);
    for (Py_ssize_t i = 0; i < self->nimports; i++) Py_VISIT(self->imports[i]->entry);
    return 0;
}

static int Runtime_clear(Runtime *self) {
    Py_CLEAR(self->query_size);
    Py_CLEAR(self->fail);
    Py_CLEAR(self->on_wake);
    Py_CLEAR(self->offer);
    Py_CLEAR(self->adopt);
    Py_CLEAR(self->unwind);
    for (Py_ssize_t i = 0; i < self->nimports; i++) Py_CLEAR(self->imports[i]->entry);
    return 0;
}

static void Runtime_dealloc(Runtime *self) {
    PyObject_GC_UnTrack(self);
    Runtime_clear(self);
    for (Py_ssize_t i = 0; i < self->nimports; i++) PyMem_Free(self->imports[i]);
    PyMem_Free(self->imports);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Runtime_init(Runtime *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"trap_new", "stride", "wake_fd", "query_size", "fail",
                             "on_wake",  "offer",  "adopt",   "unwind",     NULL};
    unsigned long long trap_new;
    Py_ssize_t stride;
    int wake_fd;
    PyObject *query_size, *fail, *on_wake, *offer, *adopt, *unwind;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "KniOOOOOO", kwlist, &trap_new, &stride,
                                     &wake_fd, &query_size, &fail, &on_wake, &offer, &adopt,
                                     &unwind))
        return -1;
    if (trap_new == 0 || stride < 8) {
        PyErr_SetString(PyExc_ValueError, "bad trap_new address or value stride");
        return -1;
    }
    self->trap_new = (trap_new_fn)(uintptr_t)trap_new;
    self->stride = (size_t)stride;
    self->wake_fd = wake_fd;
    Py_XSETREF(self->query_size, Py_NewRef(query_size));
    Py_XSETREF(self->fail, Py_NewRef(fail));
    Py_XSETREF(self->on_wake, Py_NewRef(on_wake));
    Py_XSETREF(self->offer, Py_NewRef(offer));
    Py_XSETREF(self->adopt, Py_NewRef(adopt));
    Py_XSETREF(self->unwind, Py_NewRef(unwind));
    for (int i = 0; i < FD_LIMIT; i++) self->fds[i].osfd = -1;
    return 0;
}

static PyObject *Runtime_define(Runtime *self, PyObject *args) {
    int op, returns;
    const char *params;
    Py_ssize_t nparams;
    PyObject *entry;
    if (!PyArg_ParseTuple(args, "is#pO", &op, &params, &nparams, &returns, &entry)) return NULL;
    if (op < 0 || op >= OP_COUNT || nparams > 15 || strspn(params, "isIS") != (size_t)nparams) {
        PyErr_SetString(PyExc_ValueError, "bad operation or parameter letters");
        return NULL;
    }
    if (self->nimports == self->cap) {
        Py_ssize_t cap = self->cap ? self->cap * 2 : 64;
        Import **grown = PyMem_Realloc(self->imports, sizeof(Import *) * (size_t)cap);
        if (grown == NULL) return PyErr_NoMemory();
        self->imports = grown;
        self->cap = cap;
    }
    Import *imp = PyMem_Calloc(1, sizeof(Import));
    if (imp == NULL) return PyErr_NoMemory();
    imp->rt = self;
    imp->op = op;
    imp->returns = returns;
    imp->nparams = nparams;
    memcpy(imp->params, params, (size_t)nparams);
    imp->entry = Py_NewRef(entry);
    self->imports[self->nimports++] = imp;
    return Py_BuildValue("(KK)", (unsigned long long)(uintptr_t)&hostcall,
                         (unsigned long long)(uintptr_t)imp);
}

static PyObject *Runtime_set_memory(Runtime *self, PyObject *args) {
    unsigned long long base, size;
    if (!PyArg_ParseTuple(args, "KK", &base, &size)) return NULL;
    self->mem = (uint8_t *)(uintptr_t)base;
    self->mem_size = size;
    Py_RETURN_NONE;
}

static PyObject *Runtime_attach(Runtime *self, PyObject *args) {
    unsigned int fd;
    int kind, flags, osfd;
    unsigned int wire_family, wire_port;
    Py_buffer addr;
    if (!PyArg_ParseTuple(args, "IiiiIy*I", &fd, &kind, &flags, &osfd, &wire_family, &addr,
                          &wire_port))
        return NULL;
    if (fd >= FD_LIMIT || kind <= K_NONE || kind > K_LISTENER || osfd < 0 || addr.len > 16) {
        PyBuffer_Release(&addr);
        PyErr_SetString(PyExc_ValueError, "bad descriptor entry");
        return NULL;
    }
    Entry *e = &self->fds[fd];
    e->osfd = osfd;
    e->kind = (uint8_t)kind;
    e->flags = (uint8_t)flags;
    e->wire_family = wire_family;
    e->wire_len = (uint8_t)addr.len;
    memcpy(e->wire_addr, addr.buf, (size_t)addr.len);
    e->wire_port = (uint16_t)wire_port;
    e->sent = e->received = 0;
    e->declined = 0;
    PyBuffer_Release(&addr);
    Py_RETURN_NONE;
}

static PyObject *Runtime_detach(Runtime *self, PyObject *arg) {
    unsigned long fd = PyLong_AsUnsignedLong(arg);
    if (fd == (unsigned long)-1 && PyErr_Occurred()) return NULL;
    if (fd >= FD_LIMIT) return Py_BuildValue("(KK)", 0ULL, 0ULL);
    Entry *e = &self->fds[fd];
    PyObject *counts = Py_BuildValue("(KK)", (unsigned long long)e->sent,
                                     (unsigned long long)e->received);
    memset(e, 0, sizeof *e);
    e->osfd = -1;
    return counts;
}

static PyObject *Runtime_new_epoch(Runtime *self, PyObject *unused) {
    (void)unused;
    self->epoch++;
    Py_RETURN_NONE;
}

static PyObject *Runtime_add_signals(Runtime *self, PyObject *arg) {
    long delta = PyLong_AsLong(arg);
    if (delta == -1 && PyErr_Occurred()) return NULL;
    __atomic_add_fetch(&self->signals, (int)delta, __ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}

static PyObject *Runtime_stats(Runtime *self, PyObject *unused) {
    (void)unused;
    PyObject *calls = PyTuple_New(OP_COUNT), *fast = PyTuple_New(OP_COUNT);
    if (calls == NULL || fast == NULL) {
        Py_XDECREF(calls);
        Py_XDECREF(fast);
        return NULL;
    }
    for (int i = 0; i < OP_COUNT; i++) {
        PyTuple_SET_ITEM(calls, i, PyLong_FromUnsignedLongLong(self->calls[i]));
        PyTuple_SET_ITEM(fast, i, PyLong_FromUnsignedLongLong(self->fast[i]));
    }
    return Py_BuildValue("(NN)", calls, fast);
}

static PyMethodDef Runtime_methods[] = {
    {"define", (PyCFunction)Runtime_define, METH_VARARGS,
     "define(op, params, returns, entry) -> (callback address, env address)"},
    {"set_memory", (PyCFunction)Runtime_set_memory, METH_VARARGS,
     "set_memory(base, size): where the guest's linear memory lives"},
    {"attach", (PyCFunction)Runtime_attach, METH_VARARGS,
     "attach(fd, kind, flags, osfd, wire_family, wire_addr, wire_port)"},
    {"detach", (PyCFunction)Runtime_detach, METH_O, "detach(fd) -> (sent, received)"},
    {"new_epoch", (PyCFunction)Runtime_new_epoch, METH_NOARGS,
     "forget every descriptor the host declined"},
    {"add_signals", (PyCFunction)Runtime_add_signals, METH_O,
     "add_signals(delta): signals queued for the guest"},
    {"stats", (PyCFunction)Runtime_stats, METH_NOARGS,
     "stats() -> (calls per operation, calls served in C per operation)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RuntimeType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "wassh._fastpath.Runtime",
    .tp_basicsize = sizeof(Runtime),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compiled host calls of one guest process.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Runtime_init,
    .tp_dealloc = (destructor)Runtime_dealloc,
    .tp_traverse = (traverseproc)Runtime_traverse,
    .tp_clear = (inquiry)Runtime_clear,
    .tp_methods = Runtime_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "wassh._fastpath", "wassh's compiled host calls.", -1,
    NULL,                  NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    if (PyType_Ready(&RuntimeType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Runtime", (PyObject *)&RuntimeType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    static const struct {
        const char *name;
        long value;
    } constants[] = {
        {"OP_PLAIN", OP_PLAIN},     {"OP_FD_READ", OP_FD_READ},   {"OP_FD_WRITE", OP_FD_WRITE},
        {"OP_SOCK_RECV", OP_SOCK_RECV}, {"OP_SOCK_SEND", OP_SOCK_SEND}, {"OP_RECVFROM", OP_RECVFROM},
        {"OP_SENDTO", OP_SENDTO},   {"OP_POLL", OP_POLL},         {"OP_ACCEPT", OP_ACCEPT},
        {"OP_ACCEPT_P1", OP_ACCEPT_P1}, {"F_ACCEPT", F_ACCEPT},         {"K_SOCKET", K_SOCKET},
        {"K_STREAM", K_STREAM},     {"K_FILE", K_FILE},           {"K_LISTENER", K_LISTENER},           {"F_READ", F_READ},
        {"F_WRITE", F_WRITE},       {"F_NONBLOCK", F_NONBLOCK},   {"F_REGULAR", F_REGULAR},
        {"FD_LIMIT", FD_LIMIT},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
