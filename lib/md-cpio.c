/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cpio sink: a tree -> newc archive, via libarchive's newc writer.
 *
 * Data path: libarchive formats the newc stream (no filter) and hands
 * blocks to sink_write(), which feeds the multi-threaded compressor of
 * md-compress.c (also for "none": a pass-through); its output comes back
 * to out_write() on this thread.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "md-compress.h"
#include "md-internal.h"
#include "md-readahead.h"

#define CHUNK (128u * 1024u)          /* read size and libarchive block size */
#define NEWC_MAX_SIZE 0xffffffffULL

static const struct codec {
    const char *name;
    int32_t min, max, def;
} codecs[] = {
    [MD_COMPRESS_NONE] = { "none", 0, 0, 0 },
    [MD_COMPRESS_GZIP] = { "gzip", 1, 9, 6 },
    [MD_COMPRESS_XZ] = { "xz", 0, 9, 6 },
    [MD_COMPRESS_ZSTD] = { "zstd", 1, 22, 3 },
    [MD_COMPRESS_LZ4] = { "lz4", 1, 12, 9 },
};
#define N_CODECS ((int32_t)(sizeof(codecs) / sizeof(codecs[0])))

MD_API void md_cpio_opts_init(md_cpio_opts *opts)
{
    static const md_cpio_opts def = MD_CPIO_OPTS_INIT;
    if (opts)
        *opts = def;
}

MD_API const char *md_compress_name(int32_t c)
{
    return c >= 0 && c < N_CODECS ? codecs[c].name : NULL;
}

MD_API int md_compress_levels(int32_t c, int32_t *min, int32_t *max, int32_t *def)
{
    if (c < 0 || c >= N_CODECS)
        return -EINVAL;
    if (min)
        *min = codecs[c].min;
    if (max)
        *max = codecs[c].max;
    if (def)
        *def = codecs[c].def;
    return 0;
}

MD_API int md_compress_from_name(md_ctx *ctx, const char *name, int32_t *ret)
{
    int32_t i;

    if (!ret)
        return -EINVAL;
    if (name) {
        for (i = 0; i < N_CODECS; i++) {
            if (strcmp(name, codecs[i].name) == 0) {
                *ret = i;
                return 0;
            }
        }
        if (strcmp(name, "gz") == 0) {
            *ret = MD_COMPRESS_GZIP;
            return 0;
        }
        if (strcmp(name, "zst") == 0) {
            *ret = MD_COMPRESS_ZSTD;
            return 0;
        }
    }
    if (!ctx)
        return -EINVAL;
    return md_error(ctx, -EINVAL, "unknown compression '%s' (valid: none, gzip, xz, zstd, lz4)",
                    name ? name : "(null)");
}

/* ---- output side ------------------------------------------------------------ */

struct sink {
    md_ctx *ctx;
    md_tree *tree;
    const char *outname;    /* for messages */
    int fd;
    int32_t comp, level;
    uint32_t threads;       /* 0: one per online CPU */
    int err;                /* first output error (negative errno), message set */
    uint64_t raw_bytes;     /* bytes handed to us by libarchive */
    md_compressor *z;
};

static int out_write(struct sink *s, const void *buf, size_t n)
{
    int r = md_write_full(s->fd, buf, n);
    if (r < 0 && !s->err)
        s->err = md_error_errno(s->ctx, r, "%s: write error", s->outname);
    return r;
}

static int compressed_out(void *userdata, const void *buf, size_t n)
{
    return out_write(userdata, buf, n);
}

static la_ssize_t sink_write(struct archive *a, void *userdata, const void *buf, size_t n)
{
    struct sink *s = userdata;
    int r;

    (void)a;
    if (s->err)
        return -1;
    s->raw_bytes += n;
    r = md_compressor_write(s->z, buf, n);
    if (r < 0 && !s->err)
        s->err = r;
    return r < 0 ? -1 : (la_ssize_t)n;
}

static int sink_init(struct sink *s)
{
    return md_compressor_new(s->ctx, s->comp, s->level, s->threads, compressed_out, s, &s->z);
}

static int sink_finish(struct sink *s)
{
    if (s->err)
        return s->err;
    return md_compressor_finish(s->z);
}

static void sink_done(struct sink *s)
{
    md_compressor_free(s->z);
}

/* ---- archive side ------------------------------------------------------------- */

/* Translate a libarchive failure; an output error already has its message. */
static int arch_error(struct sink *s, struct archive *a, const char *what)
{
    int e;

    if (s->err)
        return s->err;
    e = archive_errno(a);
    return md_error(s->ctx, e > 0 ? -e : -EIO, "%s: %s", what,
                    archive_error_string(a) ? archive_error_string(a) : "libarchive error");
}

/* Check @in and copy it to @o; a version-1 struct has no @threads (default 0). */
static int check_opts(md_ctx *ctx, const md_cpio_opts *in, md_cpio_opts *o)
{
    static const md_cpio_opts def = MD_CPIO_OPTS_INIT;
    int r = md_check_version(ctx, "md_cpio_opts", in->version, MD_CPIO_OPTS_VERSION);

    if (r < 0)
        return r;
    *o = def;
    memcpy(o, in, in->version == 1 ? offsetof(md_cpio_opts, threads) : sizeof(*o));
    if (o->flags)
        return md_error(ctx, -EINVAL, "md_cpio_opts: unknown flags 0x%x", o->flags);
    if (o->compression < 0 || o->compression >= N_CODECS)
        return md_error(ctx, -EINVAL, "unknown compression %d (valid: 0 none, 1 gzip, 2 xz, 3 zstd, 4 lz4)",
                        o->compression);
    if (o->level != MD_COMPRESS_LEVEL_DEFAULT) {
        const struct codec *c = &codecs[o->compression];
        if (o->compression == MD_COMPRESS_NONE)
            return md_error(ctx, -EINVAL, "a compression level needs a compression method");
        if (o->level < c->min || o->level > c->max)
            return md_error(ctx, -EINVAL, "%s level must be %d..%d, not %d", c->name, c->min,
                            c->max, o->level);
    }
    return 0;
}

/* Contents read through a file descriptor (host files and the spool), by
 * the read-ahead thread. */
static bool ra_has_fd_data(const struct md_entry *e)
{
    const struct md_entry *d = md_entry_data(e);
    return S_ISREG(e->mode) && e->last_link && (d->src == MD_SRC_HOST || d->src == MD_SRC_SPOOL) &&
           d->size > 0;
}

/* Read ahead what write_data() will take, in its order. */
static int ra_begin(md_tree *tree, md_ra **ret)
{
    unsigned char *want = calloc(tree->n + 1, 1);
    size_t i;

    if (!want)
        return -ENOMEM;
    for (i = 0; i < tree->n; i++)
        want[i] = ra_has_fd_data(tree->v[i]);
    return md_ra_start(ret, tree, want, CHUNK, 0, -1, false);
}

/* Copy one regular file's contents into the archive: host files from the
 * read-ahead thread, buffers directly. */
static int write_data(struct sink *s, struct archive *a, md_ra *ra, size_t idx,
                      uint64_t *done, uint64_t total, const md_cpio_opts *o)
{
    const struct md_entry *e = s->tree->v[idx];
    const struct md_entry *d = md_entry_data(e);
    uint64_t left = d->size, off = 0;
    bool host = ra_has_fd_data(e);

    if (!host && d->src != MD_SRC_BUF && left)
        return md_error(s->ctx, -EINVAL, "%s: no contents for a %llu-byte file", e->path,
                        (unsigned long long)left);
    while (left > 0) {
        struct md_ra_chunk *c = NULL;
        const char *p;
        size_t n;
        la_ssize_t w;

        if (host) {
            c = md_ra_next(ra);
            if (!c || c->entry != idx || c->pos != off) /* cannot happen: both walk the same order */
                return md_error(s->ctx, -EIO, "%s: internal error: read-ahead out of order", e->path);
            if (c->kind != MD_RA_OK)
                return md_ra_error(ra, s->ctx, e, c);
            p = c->buf;
            n = c->n;
            if (!n || n > left)
                return md_error(s->ctx, -EIO, "%s: internal error: read-ahead chunk of %zu bytes", e->path, n);
        } else {
            n = left < CHUNK ? (size_t)left : CHUNK;
            p = (const char *)d->buf + off;
        }
        w = archive_write_data(a, p, n);
        if (c)
            (void)md_ra_done(ra, NULL);
        if (w < 0 || (size_t)w != n)
            return arch_error(s, a, e->path);
        left -= n;
        off += n;
        *done += n;
        if (o->progress && o->progress(o->userdata, *done, total))
            return md_error(s->ctx, -ECANCELED, "cancelled by the progress callback");
    }
    return 0;
}

/* newc has no extended attributes: say once what the archive leaves out. */
static void warn_lost_xattrs(md_tree *tree)
{
    static const struct {
        const char *what, *prefix;
    } kinds[] = {
        { "file capabilities", "security.capability" },
        { "ACLs", "system.posix_acl_" },
        { "SELinux labels", "security.selinux" },
        { "other extended attributes", "" },
    };
    size_t n[4] = { 0, 0, 0, 0 }, i, j, k;
    const char *example[4] = { NULL, NULL, NULL, NULL };
    char msg[MD_ERRMSG_MAX] = "";

    for (i = 0; i <= tree->n; i++) {
        const struct md_entry *e = i < tree->n ? tree->v[i] : &tree->root;
        bool seen[4] = { false, false, false, false };

        if (e->master)
            continue;
        for (j = 0; j < e->n_xattrs; j++) {
            for (k = 0; k < 3 && strncmp(e->xattrs[j].name, kinds[k].prefix, strlen(kinds[k].prefix)); k++)
                ;
            if (!seen[k]) {
                seen[k] = true;
                n[k]++;
                if (!example[k])
                    example[k] = *e->path ? e->path : "/";
            }
        }
    }
    for (k = 0; k < 4; k++) {
        size_t len = strlen(msg);
        if (n[k])
            snprintf(msg + len, sizeof(msg) - len, "%s%s of %zu entr%s (e.g. %s)", len ? ", " : "",
                     kinds[k].what, n[k], n[k] == 1 ? "y" : "ies", example[k]);
    }
    if (*msg)
        md_warn(tree->ctx, "the initramfs (newc cpio) cannot hold extended attributes: dropped %s", msg);
}

/* The "." entry: the kernel applies its mode, owner and mtime to the root of
 * the initramfs (without it "/" stays at 1777). */
static void root_entry(const md_tree *tree, struct archive_entry *ae)
{
    const struct md_entry *r = &tree->root;

    archive_entry_clear(ae);
    archive_entry_copy_pathname(ae, ".");
    archive_entry_set_mode(ae, r->mode);
    archive_entry_set_ino(ae, r->ino);
    archive_entry_set_nlink(ae, r->nlink);
    archive_entry_set_uid(ae, r->uid);
    archive_entry_set_gid(ae, r->gid);
    archive_entry_set_mtime(ae, (time_t)r->mtime, 0);
    archive_entry_set_size(ae, 0);
}

static int write_archive(md_tree *tree, int fd, const char *outname, const md_cpio_opts *o)
{
    md_ctx *ctx = tree->ctx;
    struct sink s;
    struct archive *a = NULL;
    struct archive_entry *ae = NULL;
    md_ra *ra = NULL;
    uint64_t total = 0, done = 0;
    size_t i;
    int r;

    memset(&s, 0, sizeof(s));
    s.ctx = ctx;
    s.tree = tree;
    s.fd = fd;
    s.outname = outname;
    s.comp = o->compression;
    s.level = o->level == MD_COMPRESS_LEVEL_DEFAULT ? codecs[o->compression].def : o->level;
    s.threads = o->threads;

    r = md_tree_finalize(tree);
    if (r < 0)
        return r;
    /* Validate everything we can before the first byte goes out. */
    for (i = 0; i <= tree->n; i++) {
        const struct md_entry *e = i < tree->n ? tree->v[i] : &tree->root;
        if (e->mtime < 0 || (uint64_t)e->mtime > NEWC_MAX_SIZE)
            return md_error(ctx, -ERANGE, "%s: mtime %lld does not fit a newc header", e->path,
                            (long long)e->mtime);
        if (!S_ISREG(e->mode) || !e->last_link)
            continue;
        if (md_entry_data(e)->size > NEWC_MAX_SIZE)
            return md_error(ctx, -EFBIG, "%s: %llu bytes: newc cannot store files of 4 GiB or more",
                            e->path, (unsigned long long)md_entry_data(e)->size);
        total += md_entry_data(e)->size;
    }

    memset(&ra, 0, sizeof(ra));
    a = archive_write_new();
    ae = archive_entry_new();
    if (!a || !ae) {
        r = md_error(ctx, -ENOMEM, "out of memory");
        goto out;
    }
    r = sink_init(&s);
    if (r < 0)
        goto out;
    if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, (int)CHUNK) != ARCHIVE_OK ||
        /* pad a plain archive to 512 bytes like cpio(1); never pad a compressed stream */
        archive_write_set_bytes_in_last_block(a, o->compression == MD_COMPRESS_NONE ? 512 : 1) !=
            ARCHIVE_OK) {
        r = arch_error(&s, a, "cpio");
        goto out;
    }
    if (archive_write_open(a, &s, NULL, sink_write, NULL) != ARCHIVE_OK) {
        r = arch_error(&s, a, outname);
        goto out;
    }
    if (o->progress && o->progress(o->userdata, 0, total)) {
        r = md_error(ctx, -ECANCELED, "cancelled by the progress callback");
        goto out;
    }
    r = ra_begin(tree, &ra);
    if (r < 0) {
        r = md_error_errno(ctx, r, "cannot start the read-ahead thread");
        goto out;
    }
    warn_lost_xattrs(tree);
    root_entry(tree, ae);
    if (archive_write_header(a, ae) != ARCHIVE_OK) {
        r = arch_error(&s, a, ".");
        goto out;
    }

    for (i = 0; i < tree->n; i++) {
        const struct md_entry *e = tree->v[i];
        bool has_data = S_ISREG(e->mode) && e->last_link;

        archive_entry_clear(ae);
        archive_entry_copy_pathname(ae, e->path);
        archive_entry_set_mode(ae, e->mode);
        archive_entry_set_ino(ae, e->ino);
        archive_entry_set_nlink(ae, e->nlink);
        archive_entry_set_uid(ae, e->uid);
        archive_entry_set_gid(ae, e->gid);
        archive_entry_set_mtime(ae, (time_t)e->mtime, 0);
        if (S_ISCHR(e->mode) || S_ISBLK(e->mode)) {
            archive_entry_set_rdevmajor(ae, e->rmajor);
            archive_entry_set_rdevminor(ae, e->rminor);
        }
        if (S_ISLNK(e->mode))
            archive_entry_copy_symlink(ae, e->link);
        /* newc hard links: same ino and nlink everywhere, data on the last one */
        archive_entry_set_size(ae, has_data ? (la_int64_t)md_entry_data(e)->size : 0);
        if (archive_write_header(a, ae) != ARCHIVE_OK) {
            r = arch_error(&s, a, e->path);
            goto out;
        }
        if (has_data && md_entry_data(e)->size) {
            r = write_data(&s, a, ra, i, &done, total, o);
            if (r < 0)
                goto out;
        }
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        r = arch_error(&s, a, outname);
        goto out;
    }
    r = sink_finish(&s);
    if (r < 0)
        goto out;
    md_dbg(ctx, "cpio: %zu entries, %llu bytes of file data, %llu archive bytes before %s compression",
           tree->n, (unsigned long long)total, (unsigned long long)s.raw_bytes,
           codecs[s.comp].name);
out:
    /* After a failure, archive_write_free() would try to close the archive
     * (trailer, flush): make the sink drop everything from now on. */
    if (r < 0 && !s.err)
        s.err = r;
    md_ra_stop(ra);
    if (a)
        archive_write_free(a);
    archive_entry_free(ae);
    sink_done(&s);
    return r;
}

MD_API int md_cpio_write_fd(md_tree *tree, int fd, const md_cpio_opts *opts)
{
    static const md_cpio_opts def = MD_CPIO_OPTS_INIT;
    md_cpio_opts o;
    int r;

    if (!tree)
        return -EINVAL;
    if (!opts)
        opts = &def;
    r = check_opts(tree->ctx, opts, &o);
    if (r < 0)
        return r;
    if (fd < 0)
        return md_error(tree->ctx, -EBADF, "invalid output file descriptor %d", fd);
    return write_archive(tree, fd, "output", &o);
}

MD_API int md_cpio_write(md_tree *tree, const char *path, const md_cpio_opts *opts)
{
    static const md_cpio_opts def = MD_CPIO_OPTS_INIT;
    md_cpio_opts o;
    md_tmpfile t;
    int r;

    if (!tree)
        return -EINVAL;
    if (!path || !*path)
        return md_error(tree->ctx, -EINVAL, "missing output path");
    if (!opts)
        opts = &def;
    r = check_opts(tree->ctx, opts, &o);
    if (r < 0)
        return r;
    /* refuses to replace anything but a regular file (say /dev/stdout) */
    r = md_tmpfile_open(tree->ctx, &t, path, true);
    if (r < 0)
        return r;
    r = write_archive(tree, t.fd, path, &o);
    if (r < 0) {
        md_tmpfile_discard(&t);
        return r;
    }
    return md_tmpfile_publish(tree->ctx, &t);
}
