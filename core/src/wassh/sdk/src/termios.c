/* wassh SDK: terminals. tcgetattr()/tcsetattr() reach the host terminal behind
 * a descriptor (stdin, stdout, stderr or an opened /dev/tty); the host restores
 * the terminal's original attributes when the guest ends, however it ends.
 * isatty() is true exactly when tcgetattr() works. TIOCGWINSZ asks the host
 * for the window size (a resize arrives as SIGWINCH). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <pty.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include "wassh_host.h"

#undef ioctl
#undef isatty

_Static_assert(NCCS == 32, "termios c_cc size");

static int fail(int err) {
    errno = err;
    return -1;
}

int tcgetattr(int fd, struct termios *t) {
    struct __wassh_termios w;
    int32_t err = __wassh_tty_get_attr(fd, &w);
    if (err != 0)
        return fail(err);
    memset(t, 0, sizeof *t);
    t->c_iflag = w.iflag;
    t->c_oflag = w.oflag;
    t->c_cflag = w.cflag;
    t->c_lflag = w.lflag;
    memcpy(t->c_cc, w.cc, NCCS);
    t->__c_ispeed = w.ispeed;
    t->__c_ospeed = w.ospeed;
    return 0;
}

int tcsetattr(int fd, int action, const struct termios *t) {
    if (action < TCSANOW || action > TCSAFLUSH)
        return fail(EINVAL);
    struct __wassh_termios w = {
        .iflag = t->c_iflag,
        .oflag = t->c_oflag,
        .cflag = t->c_cflag,
        .lflag = t->c_lflag,
        .ispeed = t->c_cflag & CBAUD,
        .ospeed = t->c_cflag & CBAUD,
    };
    memcpy(w.cc, t->c_cc, NCCS);
    int32_t err = __wassh_tty_set_attr(fd, action, &w);
    return err ? fail(err) : 0;
}

int __wassh_isatty(int fd) {
    struct __wassh_termios w;
    int32_t err = __wassh_tty_get_attr(fd, &w);
    if (err != 0) {
        errno = err == EBADF ? EBADF : ENOTTY;
        return 0;
    }
    return 1;
}

int isatty(int fd) { return __wassh_isatty(fd); }

/* The speed lives in c_cflag, as in musl. */
speed_t cfgetospeed(const struct termios *t) { return t->c_cflag & CBAUD; }
speed_t cfgetispeed(const struct termios *t) { return cfgetospeed(t); }

int cfsetospeed(struct termios *t, speed_t speed) {
    if (speed & ~CBAUD)
        return fail(EINVAL);
    t->c_cflag = (t->c_cflag & ~CBAUD) | speed;
    return 0;
}

int cfsetispeed(struct termios *t, speed_t speed) { return speed ? cfsetospeed(t, speed) : 0; }
int cfsetspeed(struct termios *t, speed_t speed) { return cfsetospeed(t, speed); }

void cfmakeraw(struct termios *t) {
    t->c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t->c_oflag &= ~OPOST;
    t->c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t->c_cflag &= ~(CSIZE | PARENB);
    t->c_cflag |= CS8;
    t->c_cc[VMIN] = 1;
    t->c_cc[VTIME] = 0;
}

static int tty_only(int fd) { return __wassh_isatty(fd) ? 0 : -1; }

int tcdrain(int fd) { return tty_only(fd); }
int tcflow(int fd, int action) {
    (void)action;
    return tty_only(fd);
}
int tcsendbreak(int fd, int duration) {
    (void)duration;
    return tty_only(fd);
}
int tcflush(int fd, int queue) {
    if (queue < TCIFLUSH || queue > TCIOFLUSH)
        return fail(EINVAL);
    return tty_only(fd);
}
pid_t tcgetsid(int fd) { return tty_only(fd) ? -1 : getpid(); }

int tcgetwinsize(int fd, struct winsize *ws) {
    if (!__wassh_isatty(fd))
        return -1;
    uint16_t w[4];
    int32_t err = __wassh_tty_get_window_size(fd, w);
    if (err != 0)
        return fail(err);
    ws->ws_row = w[0];
    ws->ws_col = w[1];
    ws->ws_xpixel = w[2];
    ws->ws_ypixel = w[3];
    return 0;
}

int tcsetwinsize(int fd, const struct winsize *ws) {
    if (!__wassh_isatty(fd))
        return -1;
    uint16_t w[4] = {ws->ws_row, ws->ws_col, ws->ws_xpixel, ws->ws_ypixel};
    int32_t err = __wassh_tty_set_window_size(fd, w);
    return err ? fail(err) : 0;
}

static char tty_path[] = "/dev/tty";

int ttyname_r(int fd, char *buf, size_t len) {
    if (!__wassh_isatty(fd))
        return errno;
    if (len < sizeof tty_path)
        return ERANGE;
    memcpy(buf, tty_path, sizeof tty_path);
    return 0;
}

char *ttyname(int fd) {
    static char buf[sizeof tty_path];
    int err = ttyname_r(fd, buf, sizeof buf);
    if (err != 0) {
        errno = err;
        return NULL;
    }
    return buf;
}

int __wassh_ioctl(int fd, int request, ...) {
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    switch (request) {
    case TIOCGWINSZ:
        return tcgetwinsize(fd, arg);
    case TIOCSWINSZ:
        return tcsetwinsize(fd, arg);
    case TIOCSCTTY:
    case TIOCNOTTY:
        return tty_only(fd);
    case TIOCGPGRP: {
        pid_t pgrp = tcgetpgrp(fd);
        if (pgrp < 0)
            return -1;
        *(pid_t *)arg = pgrp;
        return 0;
    }
    case TIOCSPGRP:
        return tcsetpgrp(fd, *(const pid_t *)arg);
    case FIOCLEX:
    case FIONCLEX:
        return fcntl(fd, F_GETFD) < 0 ? -1 : 0; /* no exec: close-on-exec means nothing */
    case FIONBIO: {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
            return -1;
        flags = *(const int *)arg ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        return fcntl(fd, F_SETFL, flags);
    }
    default:
        return ioctl(fd, request, arg);
    }
}

/* -- pseudo-terminals: the guest cannot create any ------------------------ */

int openpty(int *master, int *slave, char *name, const struct termios *t,
            const struct winsize *ws) {
    (void)master, (void)slave, (void)name, (void)t, (void)ws;
    return fail(ENOENT);
}

int posix_openpt(int flags) {
    (void)flags;
    return fail(ENOENT);
}

int grantpt(int fd) {
    (void)fd;
    return fail(EINVAL);
}

int unlockpt(int fd) {
    (void)fd;
    return fail(EINVAL);
}

char *ptsname(int fd) {
    (void)fd;
    errno = ENOTTY;
    return NULL;
}

int login_tty(int fd) {
    (void)fd;
    return fail(ENOSYS);
}
