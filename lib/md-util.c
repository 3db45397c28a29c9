/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "md-internal.h"

/* openat2(2) (Linux 5.6): struct open_how and the RESOLVE_* flags are
 * fixed by the kernel ABI; spelled out here so that older headers build. */
#ifdef SYS_openat2
struct md_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
#define MD_RESOLVE_NO_MAGICLINKS 0x02
#define MD_RESOLVE_NO_SYMLINKS 0x04
#define MD_RESOLVE_BENEATH 0x08
#endif

void *md_calloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size ? size : 1);
}

char *md_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *md_asprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&s, fmt, ap);
    va_end(ap);
    return r < 0 ? NULL : s;
}

void md_freep(void *p)
{
    free(*(void **)p);
}

void md_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

int md_read_full(int fd, void *buf, size_t n)
{
    char *p = buf;

    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO; /* unexpected end of file */
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int md_write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int md_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t r = pwrite(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int md_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    char *p = buf;

    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

const char *md_file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symlink";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    default: return "of an unknown type";
    }
}

int md_open_regular(md_ctx *ctx, const char *path, const char *what, struct stat *st)
{
    int fd, r;

    /* O_NONBLOCK: a FIFO without a writer (or a device) would block the
     * open; it is refused by its type below instead.  It does not change
     * how a regular file is read. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return md_error_errno(ctx, -errno, "%s", path);
    if (fstat(fd, st) < 0) {
        r = -errno;
        close(fd);
        return md_error_errno(ctx, r, "%s", path);
    }
    if (!S_ISREG(st->st_mode)) {
        r = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
        close(fd);
        return md_error(ctx, r, "%s: is %s, not %s", path, md_file_kind(st->st_mode), what);
    }
    return fd;
}

int md_read_file(md_ctx *ctx, const char *path, char **data, size_t *size)
{
    struct stat st;
    char *buf;
    int fd, r;

    fd = md_open_regular(ctx, path, "a regular file", &st);
    if (fd < 0)
        return fd;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return md_error(ctx, -ENOMEM, "%s: out of memory", path);
    }
    r = md_read_full(fd, buf, (size_t)st.st_size);
    close(fd);
    if (r < 0) {
        free(buf);
        return md_error_errno(ctx, r, "%s: read", path);
    }
    buf[st.st_size] = '\0';
    *data = buf;
    *size = (size_t)st.st_size;
    return 0;
}

/* ---- opening below a directory, following no symlink ------------------------ */

int md_openat_components(int dirfd, const char *rel, int flags)
{
    char name[MD_NAME_MAX + 1];
    const char *p = rel;
    int cur = dirfd, fd = -1, err = 0;

    for (;;) {
        const char *s;
        size_t n;

        while (*p == '/')
            p++;
        s = p;
        while (*p && *p != '/')
            p++;
        n = (size_t)(p - s);
        while (*p == '/')
            p++;
        if (n == 0 || n > MD_NAME_MAX || (n == 1 && s[0] == '.') ||
            (n == 2 && s[0] == '.' && s[1] == '.')) {
            /* what RESOLVE_BENEATH would refuse, or not a path a walk makes */
            err = n > MD_NAME_MAX ? ENAMETOOLONG : n == 2 ? EXDEV : EINVAL;
            break;
        }
        memcpy(name, s, n);
        name[n] = '\0';
        if (!*p) {
            fd = openat(cur, name, flags | O_NOFOLLOW);
            err = fd < 0 ? errno : 0;
            break;
        }
        /* a symlink here fails with ENOTDIR (O_PATH | O_NOFOLLOW opens the
         * link itself, which O_DIRECTORY then refuses) */
        fd = openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        err = errno;
        if (cur != dirfd)
            close(cur);
        cur = dirfd;
        if (fd < 0)
            return -err;
        cur = fd;
        fd = -1;
    }
    if (cur != dirfd)
        close(cur);
    return fd >= 0 ? fd : -err;
}

int md_openat_beneath(int dirfd, const char *rel, int flags)
{
#ifdef SYS_openat2
    struct md_open_how how;
    long fd;

    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t)(unsigned)(flags | O_NOFOLLOW);
    how.resolve = MD_RESOLVE_BENEATH | MD_RESOLVE_NO_SYMLINKS | MD_RESOLVE_NO_MAGICLINKS;
    fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    if (fd >= 0)
        return (int)fd;
    /* ENOSYS: a kernel before 5.6; EPERM: a seccomp filter that does not
     * know the call (older container runtimes); E2BIG/EINVAL: a kernel that
     * does not know a flag.  The fallback is as strict. */
    if (errno != ENOSYS && errno != EPERM && errno != E2BIG && errno != EINVAL)
        return -errno;
#endif
    return md_openat_components(dirfd, rel, flags);
}

/* An unnamed file in @dir (O_TMPFILE): whatever happens to the process —
 * an error, Ctrl-C, SIGKILL — it vanishes with its last descriptor, and it
 * gets a name only when published (linkat of /proc/self/fd/N, which needs no
 * privilege).  -1 where the filesystem or the kernel cannot. */
static int open_anon(md_tmpfile *t, const char *dir)
{
    char proc[64];
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);

    if (fd < 0)
        return -1;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (access(proc, F_OK) < 0 || !(t->tmp_path = strdup(proc))) {
        close(fd);
        return -1;
    }
    t->fd = fd;
    t->anon = true;
    return 0;
}

static int open_named(md_ctx *ctx, md_tmpfile *t, const char *path, const char *slash)
{
    mode_t um;

    if (slash)
        t->tmp_path = md_asprintf("%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
    else
        t->tmp_path = md_asprintf(".%s.XXXXXX", path);
    if (!t->tmp_path)
        return md_error(ctx, -ENOMEM, "out of memory");
    t->fd = mkostemp(t->tmp_path, O_CLOEXEC);
    if (t->fd < 0) {
        int r = -errno;
        free(t->tmp_path);
        t->tmp_path = NULL;
        return md_error_errno(ctx, r, "%s: cannot create output file", path);
    }
    /* mkostemp makes 0600; give the file the mode a plain creat() would. */
    um = umask(0);
    umask(um);
    (void)fchmod(t->fd, 0666 & ~um);
    return 0;
}

int md_tmpfile_open(md_ctx *ctx, md_tmpfile *t, const char *path, bool overwrite)
{
    const char *slash;
    struct stat st;
    char *dir;
    int r;

    memset(t, 0, sizeof(*t));
    t->fd = -1;
    t->overwrite = overwrite;
    if (!path || !*path)
        return md_error(ctx, -EINVAL, "empty output path");
    slash = strrchr(path, '/');
    if (lstat(path, &st) == 0) {
        /* only a regular file is ever replaced: renaming over a device node,
         * a FIFO or a symlink (say /dev/null, /dev/stdout) is never meant */
        if (S_ISDIR(st.st_mode))
            return md_error(ctx, -EISDIR, "%s: is a directory", path);
        if (!S_ISREG(st.st_mode))
            return md_error(ctx, -EINVAL, "%s: exists and is not a regular file (%s): refusing to "
                            "replace it", path, S_ISLNK(st.st_mode) ? "a symlink" :
                            S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ?
                            "a device" : "a socket");
        if (!overwrite)
            return md_error(ctx, -EEXIST, "%s: already exists (use --force to replace it)", path);
    }
    t->path = strdup(path);
    dir = slash ? (slash == path ? strdup("/") : strndup(path, (size_t)(slash - path))) : strdup(".");
    if (!t->path || !dir) {
        free(dir);
        md_tmpfile_discard(t);
        return md_error(ctx, -ENOMEM, "out of memory");
    }
    r = open_anon(t, dir) == 0 ? 0 : open_named(ctx, t, path, slash);
    free(dir);
    if (r < 0)
        md_tmpfile_discard(t);
    return r;
}

/* An unnamed file's final name: linked where it goes (no replace), or, to
 * replace a regular file, linked under a temporary name renamed over it. */
static int link_anon(md_ctx *ctx, md_tmpfile *t)
{
    const char *slash = strrchr(t->path, '/');
    unsigned char rnd[6];
    char *name;
    int i, r = 0;

    if (!t->overwrite) {
        if (linkat(AT_FDCWD, t->tmp_path, AT_FDCWD, t->path, AT_SYMLINK_FOLLOW) == 0)
            return 0;
        if (errno == EEXIST)
            return md_error(ctx, -EEXIST, "%s: appeared while it was being made (by another run?); "
                            "left alone (use --force to replace it)", t->path);
        return md_error_errno(ctx, -errno, "%s: link", t->path);
    }
    for (i = 0; i < 100; i++) {
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            return md_error_errno(ctx, -errno, "getrandom");
        name = md_asprintf("%.*s%s.%s.%02x%02x%02x%02x%02x%02x", slash ? (int)(slash - t->path) : 0,
                           t->path, slash ? "/" : "", slash ? slash + 1 : t->path, rnd[0], rnd[1],
                           rnd[2], rnd[3], rnd[4], rnd[5]);
        if (!name)
            return md_error(ctx, -ENOMEM, "out of memory");
        if (linkat(AT_FDCWD, t->tmp_path, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0) {
            if (rename(name, t->path) < 0) {
                r = md_error_errno(ctx, -errno, "%s: rename", t->path);
                unlink(name);
            }
            free(name);
            return r;
        }
        r = -errno;
        free(name);
        if (r != -EEXIST)
            return md_error_errno(ctx, r, "%s: link", t->path);
    }
    return md_error(ctx, -EEXIST, "%s: no free temporary name", t->path);
}

/* Put the temporary file in place.  Without overwrite nothing that appeared
 * at the path meanwhile (another run, say) is replaced; with it, still only a
 * regular file. */
static int put_in_place(md_ctx *ctx, md_tmpfile *t)
{
    struct stat st;

    if (t->overwrite && lstat(t->path, &st) == 0 && !S_ISREG(st.st_mode))
        return md_error(ctx, -EINVAL, "%s: became something other than a regular file "
                        "meanwhile: refusing to replace it", t->path);
    if (t->anon)
        return link_anon(ctx, t);
    if (t->overwrite) {
        if (rename(t->tmp_path, t->path) < 0)
            return md_error_errno(ctx, -errno, "%s: rename", t->path);
        return 0;
    }
    if (renameat2(AT_FDCWD, t->tmp_path, AT_FDCWD, t->path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS) {
        if (errno == EEXIST)
            return md_error(ctx, -EEXIST, "%s: appeared while it was being made (by another run?); "
                            "left alone (use --force to replace it)", t->path);
        return md_error_errno(ctx, -errno, "%s: rename", t->path);
    }
    /* a filesystem without RENAME_NOREPLACE: link() does not replace either */
    if (link(t->tmp_path, t->path) < 0) {
        if (errno == EEXIST)
            return md_error(ctx, -EEXIST, "%s: appeared while it was being made (by another run?); "
                            "left alone (use --force to replace it)", t->path);
        return md_error_errno(ctx, -errno, "%s: link", t->path);
    }
    unlink(t->tmp_path);
    return 0;
}

int md_tmpfile_publish(md_ctx *ctx, md_tmpfile *t)
{
    int r;

    /* the name first: an unnamed file lives only as long as its descriptor */
    r = put_in_place(ctx, t);
    if (t->fd >= 0 && close(t->fd) < 0 && r == 0)
        r = md_error_errno(ctx, -errno, "%s: close", t->path);
    t->fd = -1;
    if (r == 0) {
        free(t->tmp_path);
        t->tmp_path = NULL;
    }
    md_tmpfile_discard(t);
    return r;
}

void md_tmpfile_discard(md_tmpfile *t)
{
    if (t->fd >= 0)
        close(t->fd); /* an unnamed file is gone with it */
    t->fd = -1;
    if (t->tmp_path) {
        if (!t->anon)
            unlink(t->tmp_path);
        free(t->tmp_path);
        t->tmp_path = NULL;
    }
    free(t->path);
    t->path = NULL;
}

int md_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

MD_API int md_parse_size(const char *s, uint64_t *ret)
{
    unsigned long long v;
    uint64_t mult = 1;
    char *end;

    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = 1ULL << 10; end++; break;
    case 'm': case 'M': mult = 1ULL << 20; end++; break;
    case 'g': case 'G': mult = 1ULL << 30; end++; break;
    case 't': case 'T': mult = 1ULL << 40; end++; break;
    default: return -EINVAL;
    }
    if (mult > 1 && *end == 'i')
        end++;
    if (*end == 'B')
        end++;
    if (*end)
        return -EINVAL;
    if (v > UINT64_MAX / mult)
        return -ERANGE;
    *ret = v * mult;
    return 0;
}

/* The length of the UTF-8 sequence at @s if it is a valid one (no
 * overlong form, no surrogate, at most U+10FFFF), else 0. */
static size_t utf8_len(const unsigned char *s, uint32_t *cp)
{
    size_t n, i;
    uint32_t c;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, c = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, c = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, c = s[0] & 0x07;
    else
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

void md_json_put(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    while (*s) {
        uint32_t cp = 0;
        size_t n = utf8_len(s, &cp);

        if (n == 1 && (*s == '"' || *s == '\\'))
            fprintf(f, "\\%c", *s);
        else if (!n)
            fputs("\\ufffd", f); /* not UTF-8: JSON text must be (RFC 8259) */
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            fprintf(f, "\\u%04x", (unsigned)cp);
        else
            fwrite(s, 1, n, f);
        s += n ? n : 1;
    }
    fputc('"', f);
}

/* Text for a terminal or a line-oriented listing: control characters (and
 * the backslash that introduces the escapes) never reach the output raw.
 * Control characters, C0 and C1 (U+0080..U+009F: U+009B is a CSI to some
 * terminals), and bytes that are not UTF-8 (a lone 0x9B is the 8-bit CSI)
 * as \xNN per byte; a backslash doubled. */
static void text_put(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    while (*s) {
        uint32_t cp = 0;
        size_t n = utf8_len(s, &cp), i;

        if (n == 1 && *s == '\\') {
            fputs("\\\\", f);
        } else if (!n || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
            for (i = 0; i < (n ? n : 1); i++)
                fprintf(f, "\\x%02x", s[i]);
        } else {
            fwrite(s, 1, n, f);
        }
        s += n ? n : 1;
    }
}

MD_API int md_quote(const char *s, uint32_t style, char **ret)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (!ret || (style != MD_QUOTE_JSON && style != MD_QUOTE_TEXT))
        return -EINVAL;
    f = open_memstream(&buf, &len);
    if (!f)
        return -ENOMEM;
    if (style == MD_QUOTE_JSON)
        md_json_put(f, s);
    else if (s)
        text_put(f, s);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return -ENOMEM;
    }
    *ret = buf;
    return 0;
}
