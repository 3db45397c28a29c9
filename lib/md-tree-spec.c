/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Source: the kernel's gen_init_cpio spec format (usr/gen_init_cpio.c).
 *
 *   file <name> <location> <mode> <uid> <gid> [<hard links>...]
 *   dir <name> <mode> <uid> <gid>
 *   nod <name> <mode> <uid> <gid> <dev_type> <maj> <min>
 *   slink <name> <target> <mode> <uid> <gid>
 *   pipe <name> <mode> <uid> <gid>
 *   sock <name> <mode> <uid> <gid>
 *
 * Where we knowingly differ from the kernel's tool (see docs/sources.md):
 *  - errors stop the parse (the kernel only warns about unknown types), and
 *    extra fields on a line are an error instead of being ignored;
 *  - relative locations resolve against a base directory, not the cwd;
 *  - ${VAR} is expanded once, left to right (the kernel rescans the result,
 *    which can loop forever); an unset variable expands to "" as in the
 *    kernel, and is named in the error if the location then does not exist;
 *  - every entry gets the context epoch as mtime, files included (the
 *    kernel uses the host file's mtime for files);
 *  - a '#' after leading blanks also starts a comment.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "md-internal.h"

#define MAX_FIELDS 64

struct spec {
    md_tree *tree;
    const char *name;   /* for messages */
    const char *base;   /* for relative locations; NULL: they are an error */
    unsigned line;
};

static int spec_err(struct spec *s, int err, const char *fmt, ...) md_printf(3, 4);
static int spec_err(struct spec *s, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    md_verror(s->tree->ctx, err, NULL, fmt, ap);
    va_end(ap);
    md_error_prefix(s->tree->ctx, "%s:%u", s->name, s->line);
    return err;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Split @line (modified in place) into fields; returns the count or -1 when
 * there are too many. */
static int split(char *line, char **f)
{
    int n = 0;
    char *p = line;

    for (;;) {
        while (is_blank(*p))
            p++;
        if (!*p)
            return n;
        if (n == MAX_FIELDS)
            return -1;
        f[n++] = p;
        while (*p && !is_blank(*p))
            p++;
        if (*p)
            *p++ = '\0';
    }
}

static int parse_mode(struct spec *s, const char *str, uint32_t fmt, uint32_t *ret)
{
    unsigned long v = 0;
    const char *p;

    if (!*str)
        return spec_err(s, -EINVAL, "bad mode '%s' (expected octal, e.g. 0755)", str);
    for (p = str; *p; p++) {
        if (*p < '0' || *p > '7' || v > 0177777)
            return spec_err(s, -EINVAL, "bad mode '%s' (expected octal, e.g. 0755)", str);
        v = v * 8 + (unsigned long)(*p - '0');
    }
    /* The kernel ORs the type in, so a full mode with the matching type
     * (0100644 on a file line) is accepted; anything else over 07777 is not. */
    if ((v & ~07777UL) && (v & ~07777UL) != fmt)
        return spec_err(s, -EINVAL, "bad mode '%s' (permission bits 0..07777 expected)", str);
    *ret = (uint32_t)(v & 07777);
    return 0;
}

static int parse_u32(struct spec *s, const char *what, const char *str, uint32_t *ret)
{
    unsigned long long v = 0;
    const char *p;

    for (p = str; *p; p++) {
        if (!isdigit((unsigned char)*p) || v > 0xffffffffULL)
            break;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (!*str || *p || v > 0xffffffffULL)
        return spec_err(s, -EINVAL, "bad %s '%s' (expected a decimal number 0..4294967295)",
                        what, str);
    *ret = (uint32_t)v;
    return 0;
}

/* mode uid gid at f[0..2] */
static int parse_attr(struct spec *s, char **f, uint32_t fmt, md_attr *a)
{
    int r;

    md_attr_init(a);
    if ((r = parse_mode(s, f[0], fmt, &a->mode)) < 0 ||
        (r = parse_u32(s, "uid", f[1], &a->uid)) < 0 ||
        (r = parse_u32(s, "gid", f[2], &a->gid)) < 0)
        return r;
    return 0;
}

/* md_attr treats mode 0 as "default": set the real bits after adding.  Any
 * other mode the adders already stored as given. */
static int fix_mode(struct spec *s, const char *path, uint32_t perm)
{
    struct md_entry *e;
    char *norm;
    int r;

    if (perm)
        return 0;
    r = md_path_normalize(s->tree->ctx, path, &norm);
    if (r < 0)
        return r;
    e = md_tree_lookup(s->tree, norm);
    free(norm);
    if (e)
        e->mode = (e->mode & S_IFMT) | perm;
    return 0;
}

/* Expand ${VAR} once, left to right.  Unset variables expand to "" (as the
 * kernel does); their names are collected in @unset for the error message. */
static char *expand_env(const char *in, char **unset)
{
    size_t cap = strlen(in) + 1, o = 0;
    char *out = malloc(cap);
    const char *p = in;

    *unset = NULL;
    if (!out)
        return NULL;
    while (*p) {
        const char *val = NULL, *end;
        size_t vlen;

        if (p[0] == '$' && p[1] == '{' && (end = strchr(p + 2, '}'))) {
            char *var = strndup(p + 2, (size_t)(end - p - 2));
            if (!var)
                goto oom;
            val = getenv(var);
            if (!val) {
                char *u = *unset ? md_asprintf("%s, ${%s}", *unset, var) : md_asprintf("${%s}", var);
                free(*unset);
                *unset = u;
                val = "";
            }
            free(var);
            p = end + 1;
        } else {
            val = p;
            vlen = 1;
            p++;
            goto append;
        }
        vlen = strlen(val);
append:
        if (o + vlen + 1 > cap) {
            char *n;
            cap = (o + vlen + 1) * 2;
            n = realloc(out, cap);
            if (!n)
                goto oom;
            out = n;
        }
        memcpy(out + o, val, vlen);
        o += vlen;
    }
    out[o] = '\0';
    return out;
oom:
    free(out);
    free(*unset);
    *unset = NULL;
    return NULL;
}

static int do_file(struct spec *s, char **f, int n)
{
    md_ctx *ctx = s->tree->ctx;
    char *loc = NULL, *unset = NULL, *host = NULL;
    struct stat st;
    md_attr a;
    int r, i;

    if (n < 6)
        return spec_err(s, -EINVAL, "missing field: 'file <name> <location> <mode> <uid> <gid> "
                        "[<hard links>...]' needs at least 5 fields, got %d", n - 1);
    r = parse_attr(s, f + 3, S_IFREG, &a);
    if (r < 0)
        return r;
    loc = expand_env(f[2], &unset);
    if (!loc)
        return md_error(ctx, -ENOMEM, "out of memory");
    if (!*loc) {
        r = spec_err(s, -EINVAL, "empty file location '%s'%s%s%s", f[2], unset ? " (" : "",
                     unset ? unset : "", unset ? " not set)" : "");
        goto out;
    }
    if (loc[0] == '/') {
        host = loc;
        loc = NULL;
    } else if (s->base) {
        host = md_asprintf("%s/%s", s->base, loc);
    } else {
        r = spec_err(s, -EINVAL, "relative file location '%s' needs a base directory", loc);
        goto out;
    }
    if (!host) {
        r = md_error(ctx, -ENOMEM, "out of memory");
        goto out;
    }
    if (stat(host, &st) < 0) {
        r = -errno;
        r = spec_err(s, r, "file location '%s': %s%s%s%s", host, strerror(-r),
                     unset ? " (" : "", unset ? unset : "", unset ? " not set)" : "");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = spec_err(s, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL,
                     "file location '%s': not a regular file", host);
        goto out;
    }
    r = md_tree_add_file(s->tree, f[1], host, &a);
    if (r < 0)
        goto prefix;
    r = fix_mode(s, f[1], a.mode);
    if (r < 0)
        goto prefix;
    for (i = 6; i < n; i++) {
        r = md_tree_add_hardlink(s->tree, f[i], f[1]);
        if (r < 0)
            goto prefix;
    }
    goto out;
prefix:
    md_error_prefix(ctx, "%s:%u", s->name, s->line);
out:
    free(loc);
    free(host);
    free(unset);
    return r;
}

static int need(struct spec *s, char **f, int n, int want, const char *usage)
{
    if (n < want)
        return spec_err(s, -EINVAL, "missing field: '%s' needs %d fields, got %d", usage, want - 1,
                        n - 1);
    if (n > want)
        return spec_err(s, -EINVAL, "unexpected extra field '%s': '%s' takes %d fields", f[want],
                        usage, want - 1);
    return 0;
}

static int do_line(struct spec *s, char **f, int n)
{
    md_ctx *ctx = s->tree->ctx;
    const char *type = f[0];
    md_attr a;
    int r;

    if (!strcmp(type, "file"))
        return do_file(s, f, n);
    if (!strcmp(type, "dir") || !strcmp(type, "pipe") || !strcmp(type, "sock")) {
        static const char *const usage[] = {
            "dir <name> <mode> <uid> <gid>",
            "pipe <name> <mode> <uid> <gid>",
            "sock <name> <mode> <uid> <gid>",
        };
        int k = type[0] == 'd' ? 0 : type[0] == 'p' ? 1 : 2;
        uint32_t fmt = k == 0 ? S_IFDIR : k == 1 ? S_IFIFO : S_IFSOCK;

        if ((r = need(s, f, n, 5, usage[k])) < 0 || (r = parse_attr(s, f + 2, fmt, &a)) < 0)
            return r;
        if (k == 0)
            r = md_tree_add_dir(s->tree, f[1], &a);
        else
            r = md_tree_add_node(s->tree, f[1], k == 1 ? MD_NODE_FIFO : MD_NODE_SOCK, 0, 0, &a);
        if (r >= 0)
            r = fix_mode(s, f[1], a.mode); /* no-op for the root, which is not an entry */
    } else if (!strcmp(type, "nod")) {
        uint32_t maj, min;

        if ((r = need(s, f, n, 8, "nod <name> <mode> <uid> <gid> <dev_type> <maj> <min>")) < 0)
            return r;
        if (strcmp(f[5], "b") && strcmp(f[5], "c"))
            return spec_err(s, -EINVAL, "bad device type '%s' (expected b or c)", f[5]);
        if ((r = parse_attr(s, f + 2, f[5][0] == 'b' ? S_IFBLK : S_IFCHR, &a)) < 0 ||
            (r = parse_u32(s, "major number", f[6], &maj)) < 0 ||
            (r = parse_u32(s, "minor number", f[7], &min)) < 0)
            return r;
        r = md_tree_add_node(s->tree, f[1], f[5][0] == 'b' ? MD_NODE_BLK : MD_NODE_CHR, maj, min,
                             &a);
        if (r >= 0)
            r = fix_mode(s, f[1], a.mode);
    } else if (!strcmp(type, "slink")) {
        if ((r = need(s, f, n, 6, "slink <name> <target> <mode> <uid> <gid>")) < 0 ||
            (r = parse_attr(s, f + 3, S_IFLNK, &a)) < 0)
            return r;
        r = md_tree_add_symlink(s->tree, f[1], f[2], &a);
        if (r >= 0)
            r = fix_mode(s, f[1], a.mode);
    } else {
        return spec_err(s, -EINVAL, "unknown type '%s' (expected file, dir, nod, slink, pipe or sock)",
                        type);
    }
    if (r < 0)
        md_error_prefix(ctx, "%s:%u", s->name, s->line);
    return r;
}

static int parse(struct spec *s, const char *text, size_t size)
{
    md_ctx *ctx = s->tree->ctx;
    const char *p = text, *end = text + size;
    char *buf = NULL;
    size_t cap = 0;
    int r = 0;

    s->line = 0;
    while (p < end && r >= 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *f[MAX_FIELDS];
        int n;

        s->line++;
        if (len + 1 > cap) {
            char *nb = realloc(buf, len + 1);
            if (!nb) {
                r = md_error(ctx, -ENOMEM, "out of memory");
                break;
            }
            buf = nb;
            cap = len + 1;
        }
        memcpy(buf, p, len);
        buf[len] = '\0';
        p += len + (nl ? 1 : 0);
        if (memchr(buf, '\0', len)) {
            r = spec_err(s, -EINVAL, "NUL byte in line (not a text file?)");
            break;
        }
        n = split(buf, f);
        if (n < 0)
            r = spec_err(s, -EINVAL, "too many fields (at most %d)", MAX_FIELDS);
        else if (n > 0 && f[0][0] != '#')
            r = do_line(s, f, n);
    }
    free(buf);
    return r;
}

MD_API int md_tree_add_spec_buf(md_tree *tree, const char *text, size_t size, const char *name,
                                const char *base_dir)
{
    struct spec s;

    if (!tree || (size && !text))
        return -EINVAL;
    s.tree = tree;
    s.name = name ? name : "<spec>";
    s.base = base_dir;
    return parse(&s, text, size);
}

MD_API int md_tree_add_spec(md_tree *tree, const char *spec_path, const char *base_dir)
{
    char *text = NULL, *dir = NULL;
    size_t size;
    int r;

    if (!tree || !spec_path)
        return -EINVAL;
    r = md_read_file(tree->ctx, spec_path, &text, &size);
    if (r < 0)
        return r;
    if (!base_dir) {
        const char *slash = strrchr(spec_path, '/');
        dir = slash ? (slash == spec_path ? strdup("/") : strndup(spec_path, (size_t)(slash - spec_path)))
                    : strdup(".");
        if (!dir) {
            free(text);
            return md_error(tree->ctx, -ENOMEM, "out of memory");
        }
        base_dir = dir;
    }
    r = md_tree_add_spec_buf(tree, text, size, spec_path, base_dir);
    free(text);
    free(dir);
    return r;
}
