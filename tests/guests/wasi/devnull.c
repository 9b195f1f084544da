/* /dev/null through the virtual /dev preopen. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    int fd = open("/dev/null", O_WRONLY);
    printf("open w: %s\n", fd >= 0 ? "ok" : strerror(errno));
    printf("write: %zd\n", write(fd, "hello", 5));
    close(fd);
    fd = open("/dev/null", O_RDONLY);
    char buf[16];
    printf("open r: %s\n", fd >= 0 ? "ok" : strerror(errno));
    printf("read: %zd\n", read(fd, buf, sizeof buf));
    struct stat s;
    printf("fstat: %d chr=%d\n", fstat(fd, &s), S_ISCHR(s.st_mode));
    close(fd);
    FILE *f = fopen("/dev/null", "w");
    printf("fopen: %s fprintf: %d\n", f ? "ok" : strerror(errno), f ? fprintf(f, "x%d", 42) : -1);
    if (f) fclose(f);
    printf("stat: %d chr=%d\n", stat("/dev/null", &s), S_ISCHR(s.st_mode));
    errno = 0;
    printf("open missing: %d errno=%d\n", open("/dev/nope", O_RDONLY), errno);
    errno = 0;
    printf("create: %d errno=%d\n", open("/dev/new", O_CREAT | O_WRONLY, 0644), errno);
    return 0;
}
