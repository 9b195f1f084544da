/* wassh SDK: a user database with one user, described by the environment:
 * name from $USER (or $LOGNAME, else "user"), home from $HOME (else "/"),
 * shell from $SHELL (else "/bin/sh"); uid and gid 1000; one group named like
 * the user. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wassh_sdk.h"

static const char *env_or(const char *a, const char *b, const char *fallback) {
    const char *v = getenv(a);
    if ((v == NULL || *v == '\0') && b != NULL)
        v = getenv(b);
    return v != NULL && *v != '\0' ? v : fallback;
}

static const char *user_name(void) { return env_or("USER", "LOGNAME", "user"); }

/* Copies the user's entry into buf; returns 0 or ERANGE. */
static int fill_passwd(struct passwd *pw, char *buf, size_t len) {
    const char *fields[] = {user_name(), "x", "", env_or("HOME", NULL, "/"),
                            env_or("SHELL", NULL, "/bin/sh")};
    char *out[5];
    size_t used = 0;
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(fields[i]) + 1;
        if (used + n > len)
            return ERANGE;
        out[i] = memcpy(buf + used, fields[i], n);
        used += n;
    }
    pw->pw_name = out[0];
    pw->pw_passwd = out[1];
    pw->pw_gecos = out[2];
    pw->pw_dir = out[3];
    pw->pw_shell = out[4];
    pw->pw_uid = WASSH_UID;
    pw->pw_gid = WASSH_GID;
    return 0;
}

static struct passwd the_passwd;
static char passwd_buf[4096];

static struct passwd *user(void) {
    if (fill_passwd(&the_passwd, passwd_buf, sizeof passwd_buf) != 0) {
        errno = ERANGE;
        return NULL;
    }
    return &the_passwd;
}

struct passwd *getpwuid(uid_t uid) { return uid == WASSH_UID ? user() : NULL; }

struct passwd *getpwnam(const char *name) {
    return name != NULL && strcmp(name, user_name()) == 0 ? user() : NULL;
}

static int pw_next;
void setpwent(void) { pw_next = 0; }
void endpwent(void) { pw_next = 0; }
struct passwd *getpwent(void) { return pw_next++ == 0 ? user() : NULL; }

static int pw_r(int match, struct passwd *pw, char *buf, size_t len, struct passwd **res) {
    *res = NULL;
    if (!match)
        return 0;
    int err = fill_passwd(pw, buf, len);
    if (err == 0)
        *res = pw;
    return err;
}

int getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len, struct passwd **res) {
    return pw_r(uid == WASSH_UID, pw, buf, len, res);
}

int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
               struct passwd **res) {
    return pw_r(name != NULL && strcmp(name, user_name()) == 0, pw, buf, len, res);
}

/* -- groups --------------------------------------------------------------- */

static int fill_group(struct group *gr, char *buf, size_t len) {
    const char *name = user_name();
    size_t n = strlen(name) + 1;
    size_t need = sizeof(char *) + n + 2;
    if (need > len)
        return ERANGE;
    char **mem = (char **)buf; /* buf is suitably aligned by the callers below */
    mem[0] = NULL;
    char *p = buf + sizeof(char *);
    gr->gr_name = memcpy(p, name, n);
    gr->gr_passwd = memcpy(p + n, "x", 2);
    gr->gr_gid = WASSH_GID;
    gr->gr_mem = mem;
    return 0;
}

static struct group the_group;
static char *group_buf[512];

static struct group *group(void) {
    if (fill_group(&the_group, (char *)group_buf, sizeof group_buf) != 0) {
        errno = ERANGE;
        return NULL;
    }
    return &the_group;
}

struct group *getgrgid(gid_t gid) { return gid == WASSH_GID ? group() : NULL; }

struct group *getgrnam(const char *name) {
    return name != NULL && strcmp(name, user_name()) == 0 ? group() : NULL;
}

static int gr_next;
void setgrent(void) { gr_next = 0; }
void endgrent(void) { gr_next = 0; }
struct group *getgrent(void) { return gr_next++ == 0 ? group() : NULL; }

static int gr_r(int match, struct group *gr, char *buf, size_t len, struct group **res) {
    *res = NULL;
    if (!match)
        return 0;
    size_t skew = (-(uintptr_t)buf) & (sizeof(char *) - 1);
    if (skew > len)
        return ERANGE;
    int err = fill_group(gr, buf + skew, len - skew);
    if (err == 0)
        *res = gr;
    return err;
}

int getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len, struct group **res) {
    return gr_r(gid == WASSH_GID, gr, buf, len, res);
}

int getgrnam_r(const char *name, struct group *gr, char *buf, size_t len, struct group **res) {
    return gr_r(name != NULL && strcmp(name, user_name()) == 0, gr, buf, len, res);
}

int getgrouplist(const char *user, gid_t group, gid_t *groups, int *ngroups) {
    (void)user;
    gid_t mine[2] = {group, WASSH_GID};
    int n = group == WASSH_GID ? 1 : 2;
    int fits = *ngroups >= n;
    for (int i = 0; i < n && i < *ngroups; i++)
        groups[i] = mine[i];
    *ngroups = n;
    return fits ? n : -1;
}

int initgroups(const char *user, gid_t group) {
    (void)user;
    return group == WASSH_GID ? 0 : (errno = EPERM, -1);
}

char *getlogin(void) { return (char *)user_name(); }

int getlogin_r(char *buf, size_t len) {
    const char *name = user_name();
    size_t n = strlen(name) + 1;
    if (n > len)
        return ERANGE;
    memcpy(buf, name, n);
    return 0;
}
