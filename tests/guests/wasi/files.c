/* File and directory calls beneath a preopen given as argv[1]. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *root;
static char pbuf[4][512];
static int pi;

static const char *P(const char *name) {
    char *b = pbuf[pi++ & 3];
    snprintf(b, 512, "%s/%s", root, name);
    return b;
}

#define TRY(expr)                                                                  \
    do {                                                                           \
        errno = 0;                                                                 \
        long _r = (long)(expr);                                                    \
        printf("%-50s -> %ld", #expr, _r);                                         \
        if (_r < 0) printf(" errno=%d (%s)", errno, strerror(errno));              \
        printf("\n");                                                              \
    } while (0)

static void cat(const char *name) {
    int fd = open(P(name), O_RDONLY);
    if (fd < 0) {
        printf("cat %s: errno=%d\n", name, errno);
        return;
    }
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    printf("cat %s: %zd [%.*s]\n", name, n, (int)(n > 0 ? n : 0), buf);
    close(fd);
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list(const char *name) {
    DIR *d = opendir(P(name));
    if (!d) {
        printf("ls %s: errno=%d\n", name, errno);
        return;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        char *s = malloc(strlen(e->d_name) + 4);
        sprintf(s, "%s:%d", e->d_name, e->d_type);
        names[n++] = s;
    }
    closedir(d);
    qsort(names, n, sizeof(char *), cmp);
    printf("ls %s:", name);
    for (int i = 0; i < n; i++) printf(" %s", names[i]);
    printf("\n");
}

static void st(const char *name, int follow) {
    struct stat s;
    int r = follow ? stat(P(name), &s) : lstat(P(name), &s);
    if (r < 0) {
        printf("%s %s: errno=%d\n", follow ? "stat" : "lstat", name, errno);
        return;
    }
    const char *kind = S_ISREG(s.st_mode) ? "reg" : S_ISDIR(s.st_mode) ? "dir"
                       : S_ISLNK(s.st_mode) ? "lnk" : "other";
    printf("%s %s: %s size=%lld nlink=%llu\n", follow ? "stat" : "lstat", name, kind,
           S_ISDIR(s.st_mode) ? 0LL : (long long)s.st_size, (unsigned long long)s.st_nlink);
}

int main(int argc, char **argv) {
    root = argc > 1 ? argv[1] : "/sb";
    char buf[256];
    int fd;

    TRY(mkdir(P("d"), 0755));
    TRY(mkdir(P("d"), 0755));
    TRY(fd = open(P("d/f.txt"), O_CREAT | O_WRONLY | O_TRUNC, 0644));
    TRY(write(fd, "hello world\n", 12));
    TRY(read(fd, buf, 4));
    TRY(close(fd));
    cat("d/f.txt");

    TRY(fd = open(P("d/f.txt"), O_RDWR));
    TRY(lseek(fd, 6, SEEK_SET));
    memset(buf, 0, sizeof buf);
    TRY(read(fd, buf, 5));
    printf("read at 6: [%s]\n", buf);
    TRY(lseek(fd, 0, SEEK_CUR));
    TRY(lseek(fd, -3, SEEK_END));
    TRY(lseek(fd, 0, SEEK_END));
    TRY(lseek(fd, -100, SEEK_SET));
    TRY(pwrite(fd, "W", 1, 6));
    memset(buf, 0, sizeof buf);
    TRY(pread(fd, buf, 5, 6));
    printf("pread at 6: [%s]\n", buf);
    TRY(lseek(fd, 0, SEEK_CUR));
    TRY(ftruncate(fd, 5));
    struct stat s;
    TRY(fstat(fd, &s));
    printf("size after ftruncate: %lld\n", (long long)s.st_size);
    TRY(close(fd));
    cat("d/f.txt");

    TRY(fd = open(P("d/f.txt"), O_WRONLY | O_APPEND));
    TRY(lseek(fd, 0, SEEK_SET));
    TRY(write(fd, "+more", 5));
    TRY(fcntl(fd, F_GETFL) & O_APPEND ? 1 : 0);
    TRY(close(fd));
    cat("d/f.txt");

    TRY(fd = open(P("d/f.txt"), O_WRONLY | O_TRUNC));
    TRY(close(fd));
    st("d/f.txt", 1);
    TRY(fd = open(P("d/f.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644));
    TRY(fd = open(P("d/missing"), O_RDONLY));
    TRY(fd = open(P("d/f.txt"), O_RDONLY | O_DIRECTORY));
    TRY(fd = open(P("d/f.txt/"), O_RDONLY));
    TRY(fd = open(P("d"), O_WRONLY));
    TRY(fd = open(P("d/f.txt/x"), O_RDONLY));
    TRY(fd = open(P("d"), O_RDONLY));
    TRY(fstat(fd, &s));
    printf("dir fd is dir: %d\n", S_ISDIR(s.st_mode));
    TRY(read(fd, buf, 4));
    TRY(close(fd));

    fd = open(P("d/f.txt"), O_WRONLY);
    TRY(write(fd, "0123456789", 10));
    TRY(close(fd));
    st("d", 1);
    st("d/f.txt", 1);
    st("d/nothing", 1);

    struct timespec times[2] = {{1000000000, 0}, {1234567890, 500}};
    TRY(utimensat(AT_FDCWD, P("d/f.txt"), times, 0));
    TRY(stat(P("d/f.txt"), &s));
    printf("mtime=%lld atime=%lld\n", (long long)s.st_mtim.tv_sec, (long long)s.st_atim.tv_sec);

    TRY(mkdir(P("d/sub"), 0755));
    TRY(mkdir(P("d/sub/deeper/x"), 0755));
    fd = open(P("d/sub/a"), O_CREAT | O_WRONLY, 0644);
    close(fd);
    fd = open(P("d/sub/b"), O_CREAT | O_WRONLY, 0644);
    close(fd);
    TRY(symlink("f.txt", P("d/link")));
    TRY(symlink("f.txt", P("d/link")));
    TRY(symlink("nowhere", P("d/dangling")));
    list("d");
    list("d/sub");
    list("d/nothing");
    memset(buf, 0, sizeof buf);
    TRY(readlink(P("d/link"), buf, sizeof buf));
    printf("readlink: [%s]\n", buf);
    TRY(readlink(P("d/f.txt"), buf, sizeof buf));
    st("d/link", 0);
    st("d/link", 1);
    st("d/dangling", 0);
    st("d/dangling", 1);
    cat("d/link");

    TRY(link(P("d/f.txt"), P("d/hard")));
    st("d/f.txt", 1);
    cat("d/hard");
    TRY(rename(P("d/f.txt"), P("d/g.txt")));
    st("d/f.txt", 1);
    cat("d/g.txt");
    TRY(rename(P("d/g.txt"), P("d/sub/moved")));
    TRY(rename(P("d/sub"), P("d/sub2")));
    list("d/sub2");
    TRY(rename(P("d/missing"), P("d/x")));

    TRY(rmdir(P("d/sub2")));
    TRY(rmdir(P("d/hard")));
    TRY(unlink(P("d/sub2")));
    TRY(unlink(P("d/sub2/a")));
    TRY(unlink(P("d/sub2/b")));
    TRY(unlink(P("d/sub2/moved")));
    TRY(unlink(P("d/sub2/missing")));
    TRY(rmdir(P("d/sub2")));
    TRY(unlink(P("d/link")));
    TRY(unlink(P("d/dangling")));
    TRY(unlink(P("d/hard")));
    list("d");
    TRY(rmdir(P("d")));
    list(".");

    /* Many entries: readdir must continue across buffer refills. */
    TRY(mkdir(P("many"), 0755));
    for (int i = 0; i < 300; i++) {
        char name[64];
        snprintf(name, sizeof name, "many/entry-with-a-longish-name-%03d", i);
        close(open(P(name), O_CREAT | O_WRONLY, 0644));
    }
    DIR *d = opendir(P("many"));
    int count = 0;
    long sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        count++;
        if (e->d_name[0] != '.') sum += atoi(e->d_name + 26);
    }
    closedir(d);
    printf("many: %d entries, sum %ld\n", count, sum);

    /* Path calls on a descriptor that is not a directory, or not open at all.
       (wasmtime answers EBADF for most of these; wassh answers ENOTDIR as POSIX does.) */
    printf("-- non-directory fds --\n");
    int f = open(P("many/entry-with-a-longish-name-000"), O_RDONLY);
    TRY(openat(f, "x", O_RDONLY));
    TRY(mkdirat(f, "x", 0755));
    TRY(fstatat(f, "x", &s, 0));
    TRY(unlinkat(f, "x", 0));
    TRY(openat(99, "x", O_RDONLY));
    TRY(fstatat(99, "x", &s, 0));
    TRY(fdopendir(f) ? 0 : -1);
    close(f);
    return 0;
}
