/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A foreign root filesystem as the system of md_distro_build(): a Debian (or
 * other) tarball or directory brings its own kernel, initrd, /etc.  What the
 * builder needs from it and does to it lives here: finding the kernel and
 * initrd in the tree, the root line of /etc/fstab, the root password and
 * the hostname.  Small files of the tree are read and rewritten in memory;
 * everything else stays where the tree has it.
 */
#include <crypt.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "md-internal.h"
#include "md-distro-internal.h"

#define SMALL_MAX (1u << 20) /* /etc files: more is not a config file */

/* ---- reading and writing small files of the tree ---------------------------------- */

/* The contents of regular entry @path (normalised), NUL-terminated;
 * -ENOENT when there is none. */
static int read_small(md_tree *t, const char *path, char **text, size_t *len)
{
    struct md_entry *e = md_tree_lookup(t, path);
    struct md_data d;
    char *buf;
    int r;

    *text = NULL;
    *len = 0;
    if (!e)
        return -ENOENT;
    if (!S_ISREG(e->mode))
        return md_error(t->ctx, -EINVAL, "/%s in the root filesystem is not a regular file", path);
    r = md_tree_finalize(t); /* the spool is flushed */
    if (r < 0)
        return r;
    r = md_data_open(t, t->ctx, e, &d);
    if (r < 0)
        return r;
    if (d.size > SMALL_MAX) {
        md_data_close(&d);
        return md_error(t->ctx, -EFBIG, "/%s in the root filesystem: %llu bytes is not a config file",
                        path, (unsigned long long)d.size);
    }
    buf = malloc((size_t)d.size + 1);
    if (!buf) {
        md_data_close(&d);
        return md_error(t->ctx, -ENOMEM, "out of memory");
    }
    r = md_data_read(&d, buf, (size_t)d.size, 0);
    md_data_close(&d);
    if (r < 0) {
        free(buf);
        return md_error_errno(t->ctx, r, "/%s in the root filesystem", path);
    }
    buf[d.size] = '\0';
    *text = buf;
    *len = (size_t)d.size;
    return 0;
}

/* Replace (or add) @path with @text, keeping an existing file's mode,
 * owner and mtime (else @mode, root, the epoch). */
static int write_small(md_tree *t, const char *path, const char *text, uint32_t mode)
{
    const struct md_entry *e = md_tree_lookup(t, path);
    md_attr a = MD_ATTR_INIT;
    int r;

    a.mode = mode;
    if (e && S_ISREG(e->mode)) {
        a.mode = e->mode & 07777;
        a.uid = e->uid;
        a.gid = e->gid;
        a.mtime = e->mtime;
    }
    r = md_tree_add_data(t, path, text, strlen(text), &a);
    if (r >= 0 && a.mode == 0) {
        struct md_entry *n = md_tree_lookup(t, path);
        if (n)
            n->mode = S_IFREG; /* a real 0000, as /etc/shadow is on some systems */
    }
    return r;
}

/* ---- kernel and initrd ------------------------------------------------------------ */

/* Follow symlinks inside the tree (absolute targets are from the tree's
 * root), at most 16; *@out is the normalised path of what is at the end. */
static int resolve_in_tree(md_tree *t, const char *path, char **out)
{
    char *cur = md_strdup(path);
    int hops;

    for (hops = 0; cur && hops < 16; hops++) {
        const struct md_entry *e = md_tree_lookup(t, cur);
        char *next, *norm = NULL;
        const char *slash;

        if (!e || !S_ISLNK(e->mode)) {
            *out = cur;
            return e ? 0 : -ENOENT;
        }
        slash = strrchr(cur, '/');
        if (e->link[0] == '/' || !slash)
            next = md_strdup(e->link);
        else
            next = md_asprintf("%.*s/%s", (int)(slash - cur), cur, e->link);
        free(cur);
        cur = NULL;
        if (!next || md_path_normalize(t->ctx, next, &norm) < 0) {
            free(next);
            return -ENOENT; /* a link out of the tree ("..") leads nowhere here */
        }
        free(next);
        cur = norm;
    }
    free(cur);
    return -ELOOP;
}

/* The newest boot/PREFIX-VERSION of the tree (version order), or NULL. */
static const struct md_entry *newest_in_boot(md_tree *t, const char *prefix)
{
    const struct md_entry *best = NULL;
    size_t i, plen = strlen(prefix);

    for (i = 0; i < t->n; i++) {
        const struct md_entry *e = t->v[i];
        if (strncmp(e->path, "boot/", 5) || strncmp(e->path + 5, prefix, plen) ||
            e->path[5 + plen] != '-' || strchr(e->path + 5, '/') || !S_ISREG(e->mode) ||
            !strcmp(e->path + strlen(e->path) - 4, ".old"))
            continue;
        if (!best || strverscmp(e->path, best->path) > 0)
            best = e;
    }
    return best;
}

static int regular_at(md_tree *t, const char *link, char **out)
{
    const struct md_entry *e;
    int r = resolve_in_tree(t, link, out);

    if (r < 0) {
        free(*out);
        *out = NULL;
        return r;
    }
    e = md_tree_lookup(t, *out);
    if (!e || !S_ISREG(e->mode)) {
        free(*out);
        *out = NULL;
        return -ENOENT;
    }
    return 0;
}

int md_rootfs_find_boot(md_tree *t, struct md_rootfs_boot *rb)
{
    const struct md_entry *k = NULL, *i;
    struct md_data d;
    const char *ver;
    char *name;
    int r;

    memset(rb, 0, sizeof(*rb));
    r = md_tree_finalize(t);
    if (r < 0)
        return r;
    /* the distribution's own pointers first: /vmlinuz, /boot/vmlinuz */
    if (regular_at(t, "vmlinuz", &rb->kernel) < 0 && regular_at(t, "boot/vmlinuz", &rb->kernel) < 0) {
        k = newest_in_boot(t, "vmlinuz");
        if (!k)
            return md_error(t->ctx, -ENOENT, "the root filesystem has no kernel: looked for /vmlinuz, "
                            "/boot/vmlinuz and /boot/vmlinuz-* (install one, e.g. linux-image-amd64, "
                            "or give --kernel)");
        rb->kernel = md_strdup(k->path);
        if (!rb->kernel)
            return md_error(t->ctx, -ENOMEM, "out of memory");
    }
    k = md_tree_lookup(t, rb->kernel);
    name = md_asprintf("/%s in the root filesystem", rb->kernel);
    if (!name)
        return md_error(t->ctx, -ENOMEM, "out of memory");
    r = md_data_open(t, t->ctx, k, &d);
    if (r >= 0) {
        r = md_kernel_release_data(t->ctx, name, &d, rb->release, sizeof(rb->release));
        md_data_close(&d);
    }
    free(name);
    if (r < 0)
        return r;
    /* its initrd: /initrd.img, or boot/initrd.img-VERSION of the kernel's
     * file name or release */
    ver = strrchr(rb->kernel, '/');
    ver = ver ? ver + 1 : rb->kernel;
    ver = strncmp(ver, "vmlinuz-", 8) ? rb->release : ver + 8;
    if (regular_at(t, "initrd.img", &rb->initrd) == 0)
        return 0;
    rb->initrd = md_asprintf("boot/initrd.img-%s", ver);
    if (!rb->initrd)
        return md_error(t->ctx, -ENOMEM, "out of memory");
    i = md_tree_lookup(t, rb->initrd);
    if (i && S_ISREG(i->mode))
        return 0;
    free(rb->initrd);
    rb->initrd = md_asprintf("boot/initrd.img-%s", rb->release);
    i = rb->initrd ? md_tree_lookup(t, rb->initrd) : NULL;
    if (i && S_ISREG(i->mode))
        return 0;
    r = md_error(t->ctx, -ENOENT, "the root filesystem has no initrd for kernel /%s: looked for "
                 "/initrd.img and /boot/initrd.img-%s (install initramfs-tools or dracut, or give "
                 "--initrd)", rb->kernel, ver);
    free(rb->initrd);
    rb->initrd = NULL;
    return r;
}

void md_rootfs_boot_free(struct md_rootfs_boot *rb)
{
    free(rb->kernel);
    free(rb->initrd);
    rb->kernel = rb->initrd = NULL;
}

/* ---- /etc/fstab ------------------------------------------------------------------------ */

/* Does a non-comment line of @text mount something on "/"? */
static bool has_root_line(const char *text)
{
    const char *p = text;

    while (p && *p) {
        char dev[256], mnt[256];
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[1024];

        if (len < sizeof(line)) {
            memcpy(line, p, len);
            line[len] = '\0';
            if (line[strspn(line, " \t")] != '#' && sscanf(line, "%255s %255s", dev, mnt) == 2 &&
                !strcmp(mnt, "/"))
                return true;
        }
        p = eol ? eol + 1 : NULL;
    }
    return false;
}

int md_rootfs_fstab_root(md_tree *t, const char *uuid, const char *fstype)
{
    char *text = NULL, *out;
    size_t len;
    int r = read_small(t, "etc/fstab", &text, &len);

    if (r < 0 && r != -ENOENT)
        return r;
    if (text && has_root_line(text)) {
        free(text);
        return 0;
    }
    out = md_asprintf("%s%sUUID=%s / %s errors=remount-ro 0 1\n", text ? text : "",
                      text && len && text[len - 1] != '\n' ? "\n" : "", uuid, fstype);
    free(text);
    if (!out)
        return md_error(t->ctx, -ENOMEM, "out of memory");
    r = write_small(t, "etc/fstab", out, 0644);
    free(out);
    return r;
}

/* ---- the root password ------------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* yescrypt ($y$, what Debian's passwd writes), else SHA-512 ($6$).  The
 * salt is random, or derived from the epoch when one is set, so that the
 * image stays reproducible. */
static int hash_password(md_ctx *ctx, const char *password, char *out, size_t size)
{
    static const char *const prefixes[] = { "$y$", "$6$" };
    unsigned char rnd[32];
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    size_t i, k;

    if (md_ctx_has_epoch(ctx)) {
        uint64_t s = (uint64_t)md_ctx_get_epoch(ctx) ^ UINT64_C(0x726f6f7470617373);
        for (i = 0; i < sizeof(rnd); i += 8) {
            s = mix(s);
            for (k = 0; k < 8; k++)
                rnd[i + k] = (unsigned char)(s >> (8 * k));
        }
    } else if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        return md_error_errno(ctx, -errno, "random bytes for the password salt");
    }
    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        memset(&cd, 0, sizeof(cd));
        if (!crypt_gensalt_rn(prefixes[i], 0, (const char *)rnd, (int)sizeof(rnd), setting,
                              (int)sizeof(setting)))
            continue;
        if (crypt_rn(password, setting, &cd, (int)sizeof(cd)) && cd.output[0] != '*' &&
            strlen(cd.output) < size) {
            strcpy(out, cd.output);
            explicit_bzero(&cd, sizeof(cd));
            return 0;
        }
    }
    explicit_bzero(&cd, sizeof(cd));
    return md_error(ctx, -ENOTSUP, "libcrypt cannot hash a password with yescrypt or SHA-512");
}

int md_rootfs_set_password(md_tree *t, const char *password)
{
    char hash[CRYPT_OUTPUT_SIZE], *text = NULL, *out, *p, *line_end = NULL;
    size_t len;
    int r;

    if (strchr(password, '\n'))
        return md_error(t->ctx, -EINVAL, "the root password must not contain a newline");
    r = hash_password(t->ctx, password, hash, sizeof(hash));
    if (r < 0)
        return r;
    r = read_small(t, "etc/shadow", &text, &len);
    if (r < 0 && r != -ENOENT)
        return r;
    /* the root line: "root:HASH:rest" */
    for (p = text; p && *p; p = line_end ? line_end + 1 : NULL) {
        line_end = strchr(p, '\n');
        if (!strncmp(p, "root:", 5))
            break;
    }
    if (p && *p) {
        /* keep the line's other fields (and the lines after it) */
        char *rest = strchr(p + 5, ':');
        if (rest && (!line_end || rest < line_end))
            out = md_asprintf("%.*sroot:%s%s", (int)(p - text), text, hash, rest);
        else
            out = md_asprintf("%.*sroot:%s:0:0:99999:7:::\n%s", (int)(p - text), text, hash,
                              line_end ? line_end + 1 : "");
    } else {
        out = md_asprintf("%s%sroot:%s:0:0:99999:7:::\n", text ? text : "",
                          text && len && text[len - 1] != '\n' ? "\n" : "", hash);
    }
    explicit_bzero(hash, sizeof(hash));
    free(text);
    if (!out)
        return md_error(t->ctx, -ENOMEM, "out of memory");
    r = write_small(t, "etc/shadow", out, 0640);
    explicit_bzero(out, strlen(out));
    free(out);
    return r;
}

int md_rootfs_set_hostname(md_tree *t, const char *hostname)
{
    char *text;
    int r;

    text = md_asprintf("%s\n", hostname);
    if (!text)
        return md_error(t->ctx, -ENOMEM, "out of memory");
    r = write_small(t, "etc/hostname", text, 0644);
    free(text);
    return r;
}
