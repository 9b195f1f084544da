/* Attempts to leave the preopen (fd 3): every one must fail. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRY(expr)                                                                  \
    do {                                                                           \
        errno = 0;                                                                 \
        long _r = (long)(expr);                                                    \
        printf("%-45s -> %ld", #expr, _r);                                         \
        if (_r < 0) printf(" errno=%d (%s)", errno, strerror(errno));              \
        printf("\n");                                                              \
    } while (0)

int main(void) {
    struct stat s;
    char buf[256];
    int fd;
    TRY(mkdir("/sb/sub", 0755));
    close(open("/sb/sub/ok", O_CREAT | O_WRONLY, 0644));
    TRY(symlink("../", "/sb/up"));
    TRY(symlink("../../", "/sb/sub/up2"));
    TRY(symlink("/etc/passwd", "/sb/abs"));
    TRY(symlink("loop", "/sb/loop"));
    TRY(symlink("sub/ok", "/sb/inside"));
    TRY(symlink("../ok", "/sb/sub/sibling"));
    TRY(symlink("../sub/ok", "/sb/sub/roundtrip"));
    /* Relative to the preopen through openat: wasi-libc passes these verbatim. */
    TRY(fd = openat(3, "..", O_RDONLY));
    TRY(fd = openat(3, "../", O_RDONLY | O_DIRECTORY));
    TRY(fd = openat(3, "sub/../../etc/passwd", O_RDONLY));
    TRY(fd = openat(3, "sub/../sub/ok", O_RDONLY));
    TRY(fd = openat(3, "up/etc/passwd", O_RDONLY));
    TRY(fd = openat(3, "up", O_RDONLY));
    TRY(fd = openat(3, "sub/up2", O_RDONLY));
    TRY(fd = openat(3, "abs", O_RDONLY));
    TRY(fd = openat(3, "hostabs", O_RDONLY)); /* made by the host: -> /etc/passwd */
    TRY(fd = openat(3, "loop", O_RDONLY));
    TRY(fd = openat(3, "inside", O_RDONLY));
    TRY(fd = openat(3, "sub/sibling", O_RDONLY));
    TRY(fd = openat(3, "sub/roundtrip", O_RDONLY));
    TRY(fstatat(3, "../", &s, 0));
    TRY(fstatat(3, "up", &s, 0));
    TRY(fstatat(3, "up", &s, AT_SYMLINK_NOFOLLOW));
    TRY(fstatat(3, "hostabs", &s, 0));
    TRY(fstatat(3, "hostabs", &s, AT_SYMLINK_NOFOLLOW));
    TRY(mkdirat(3, "../evil", 0755));
    TRY(mkdirat(3, "up/evil", 0755));
    TRY(unlinkat(3, "up/etc/passwd", 0));
    TRY(renameat(3, "sub/ok", 3, "../stolen"));
    TRY(renameat(3, "sub/ok", 3, "up/stolen"));
    TRY(linkat(3, "up/etc/passwd", 3, "hard", 0));
    TRY(linkat(3, "sub/ok", 3, "../hard", 0));
    TRY(symlinkat("x", 3, "../link"));
    TRY(readlinkat(3, "up/x", buf, sizeof buf));
    /* A directory fd below the preopen is a sandbox of its own. */
    int sub = openat(3, "sub", O_RDONLY | O_DIRECTORY);
    TRY(fd = openat(sub, "../sub/ok", O_RDONLY));
    TRY(fd = openat(sub, "sibling", O_RDONLY));
    TRY(fd = openat(sub, "ok", O_RDONLY));
    return 0;
}
