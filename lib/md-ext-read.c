/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading back: files, symlinks, stat and directory listings.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "md-ext-internal.h"

/* ---- reading ------------------------------------------------------------------------ */


static int open_regular(md_ext *x, const char *path, ext2_ino_t *ino, struct ext2_inode_large *in)
{
    int r = md_ext_lookup(x, path, ino);
    if (r < 0)
        return r;
    r = md_ext_read_inode(x, *ino, in);
    if (r < 0)
        return r;
    if (LINUX_S_ISDIR(in->i_mode))
        return md_error(x->ctx, -EISDIR, "%s: is a directory", path);
    if (!LINUX_S_ISREG(in->i_mode))
        return md_error(x->ctx, -EINVAL, "%s: not a regular file", path);
    return 0;
}

/* Stream the file's contents to @fn in pieces. */
int md_ext_read_stream(md_ext *x, ext2_ino_t ino, const char *path,
                       int (*fn)(void *ud, const void *p, size_t n), void *ud)
{
    ext2_file_t f;
    errcode_t err;
    char *buf;
    int r = 0;

    buf = malloc(MD_EXT_CHUNK);
    if (!buf)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    err = ext2fs_file_open(x->fs, ino, 0, &f);
    if (err) {
        free(buf);
        return md_ext_error(x->ctx, err, "%s", path);
    }
    for (;;) {
        unsigned got = 0;
        err = ext2fs_file_read(f, buf, MD_EXT_CHUNK, &got);
        if (err) {
            r = md_ext_error(x->ctx, err, "%s: reading", path);
            break;
        }
        if (!got)
            break;
        r = fn(ud, buf, got);
        if (r != 0)
            break;
    }
    ext2fs_file_close(f);
    free(buf);
    return r < 0 ? r : 0;
}

struct membuf {
    char *p;
    size_t n, cap;
};

static int to_mem(void *ud, const void *p, size_t n)
{
    struct membuf *m = ud;
    if (m->n + n + 1 > m->cap)
        return -ENOMEM;
    memcpy(m->p + m->n, p, n);
    m->n += n;
    return 0;
}

MD_API int md_ext_read_file(md_ext *x, const char *path, void **data, size_t *size)
{
    struct ext2_inode_large in;
    struct membuf m = { NULL, 0, 0 };
    ext2_ino_t ino;
    uint64_t sz;
    int r;

    if (!x || !path || !data)
        return -EINVAL;
    r = open_regular(x, path, &ino, &in);
    if (r < 0)
        return r;
    sz = EXT2_I_SIZE(&in);
    if (sz >= SIZE_MAX)
        return md_error(x->ctx, -ENOMEM, "%s: too big to read into memory", path);
    m.cap = (size_t)sz + 1;
    m.p = malloc(m.cap);
    if (!m.p)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    r = md_ext_read_stream(x, ino, path, to_mem, &m);
    if (r < 0) {
        if (r == -ENOMEM)
            md_error(x->ctx, r, "%s: file longer than its size", path);
        free(m.p);
        return r;
    }
    m.p[m.n] = '\0';
    *data = m.p;
    if (size)
        *size = m.n;
    return 0;
}

struct fdout {
    md_ctx *ctx;
    const char *host_path;  /* for messages */
    int fd;
    uint64_t off;
};

static int to_fd(void *ud, const void *p, size_t n)
{
    struct fdout *o = ud;
    int r = 0;
    /* keep holes: skip writing all-zero pieces, the final ftruncate sets the size */
    if (!md_ext_is_zero(p, n))
        r = md_pwrite_full(o->fd, p, n, o->off);
    if (r < 0)
        return md_error_errno(o->ctx, r, "%s: writing", o->host_path);
    o->off += n;
    return 0;
}

/* a pipe, a terminal, a socket: written in order */
static int to_stream(void *ud, const void *p, size_t n)
{
    struct fdout *o = ud;
    int r = md_write_full(o->fd, p, n);
    if (r < 0)
        return md_error_errno(o->ctx, r, "%s: writing", o->host_path);
    o->off += n;
    return 0;
}

MD_API int md_ext_extract_file(md_ext *x, const char *path, const char *host_path)
{
    struct ext2_inode_large in;
    md_tmpfile t;
    struct fdout o;
    ext2_ino_t ino;
    int r;

    if (!x || !path || !host_path)
        return -EINVAL;
    r = open_regular(x, path, &ino, &in);
    if (r < 0)
        return r;
    r = md_tmpfile_open(x->ctx, &t, host_path, true);
    if (r < 0)
        return r;
    o.ctx = x->ctx;
    o.host_path = host_path;
    o.fd = t.fd;
    o.off = 0;
    r = md_ext_read_stream(x, ino, path, to_fd, &o);
    if (r < 0) {
        md_tmpfile_discard(&t);
        return r;
    }
    if (ftruncate(t.fd, (off_t)o.off) < 0) {
        r = md_error_errno(x->ctx, -errno, "%s", host_path);
        md_tmpfile_discard(&t);
        return r;
    }
    /* best effort, as cp: some host filesystems (vfat) refuse modes */
    (void)fchmod(t.fd, in.i_mode & 0777);
    return md_tmpfile_publish(x->ctx, &t);
}

MD_API int md_ext_extract_fd(md_ext *x, const char *path, int fd)
{
    struct ext2_inode_large in;
    struct fdout o;
    ext2_ino_t ino;
    int r;

    if (!x || !path)
        return -EINVAL;
    if (fd < 0)
        return md_error(x->ctx, -EBADF, "invalid output file descriptor %d", fd);
    r = open_regular(x, path, &ino, &in);
    if (r < 0)
        return r;
    o.ctx = x->ctx;
    o.host_path = "output";
    o.fd = fd;
    o.off = 0;
    return md_ext_read_stream(x, ino, path, to_stream, &o);
}

static void fill_stat(md_ext *x, ext2_ino_t ino, const struct ext2_inode_large *in, md_ext_stat *st)
{
    st->ino = ino;
    st->mode = in->i_mode;
    st->nlink = in->i_links_count;
    st->uid = md_ext_uid_of(in);
    st->gid = md_ext_gid_of(in);
    st->size = EXT2_I_SIZE(in);
    st->mtime = md_ext_inode_mtime(in, md_ext_inode_full(x->fs) && in->i_extra_isize >= 24);
    st->rmajor = st->rminor = 0;
    if (LINUX_S_ISCHR(in->i_mode) || LINUX_S_ISBLK(in->i_mode)) {
        if (in->i_block[0]) {
            st->rmajor = (in->i_block[0] >> 8) & 255;
            st->rminor = in->i_block[0] & 255;
        } else {
            uint32_t d = in->i_block[1];
            st->rmajor = (d & 0xfff00) >> 8;
            st->rminor = (d & 0xff) | ((d >> 12) & 0xfff00);
        }
    }
    st->blocks = ext2fs_get_stat_i_blocks(x->fs, (struct ext2_inode *)in);
}

MD_API int md_ext_stat_path(md_ext *x, const char *path, md_ext_stat *st)
{
    struct ext2_inode_large in;
    ext2_ino_t ino;
    int r;

    if (!x || !path || !st)
        return -EINVAL;
    if (st->version < 1 || st->version > MD_EXT_STAT_VERSION)
        return md_check_version(x->ctx, "md_ext_stat", st->version, MD_EXT_STAT_VERSION);
    r = md_ext_lookup(x, path, &ino);
    if (r < 0)
        return r;
    r = md_ext_read_inode(x, ino, &in);
    if (r < 0)
        return r;
    fill_stat(x, ino, &in, st);
    return 0;
}

MD_API int md_ext_exists(md_ext *x, const char *path)
{
    ext2_ino_t ino;
    int r;

    if (!x || !path)
        return -EINVAL;
    r = md_ext_lookup(x, path, &ino);
    if (r == -ENOENT || r == -ENOTDIR) {
        md_ctx_clear_error(x->ctx);
        return 0;
    }
    return r < 0 ? r : 1;
}

MD_API int md_ext_readlink(md_ext *x, const char *path, char **target)
{
    struct ext2_inode_large in;
    ext2_ino_t ino;
    uint64_t len;
    char *buf;
    int r;

    if (!x || !path || !target)
        return -EINVAL;
    r = md_ext_lookup(x, path, &ino);
    if (r < 0)
        return r;
    r = md_ext_read_inode(x, ino, &in);
    if (r < 0)
        return r;
    if (!LINUX_S_ISLNK(in.i_mode))
        return md_error(x->ctx, -EINVAL, "%s: not a symbolic link", path);
    len = EXT2_I_SIZE(&in);
    if (len > 65536)
        return md_error(x->ctx, -EINVAL, "%s: symlink target too long", path);
    buf = calloc(1, (size_t)len + 1);
    if (!buf)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    if (ext2fs_is_fast_symlink((struct ext2_inode *)&in)) {
        memcpy(buf, in.i_block, (size_t)len);
    } else {
        struct membuf m = { buf, 0, (size_t)len + 1 };
        r = md_ext_read_stream(x, ino, path, to_mem, &m);
        if (r < 0) {
            free(buf);
            return r;
        }
    }
    *target = buf;
    return 0;
}

struct list_ent {
    char *name;
    ext2_ino_t ino;
};

struct list_state {
    struct list_ent *v;
    size_t n, cap;
    int err;
};

static int list_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset, int blocksize,
                   char *buf, void *priv)
{
    struct list_state *ls = priv;
    int len = ext2fs_dirent_name_len(de);
    (void)dir;
    (void)entry;
    (void)offset;
    (void)blocksize;
    (void)buf;

    if (!de->inode)
        return 0;
    if ((len == 1 && de->name[0] == '.') || (len == 2 && de->name[0] == '.' && de->name[1] == '.'))
        return 0;
    if (ls->n == ls->cap) {
        size_t nc = ls->cap ? ls->cap * 2 : 64;
        struct list_ent *nv = realloc(ls->v, nc * sizeof(*nv));
        if (!nv) {
            ls->err = -ENOMEM;
            return DIRENT_ABORT;
        }
        ls->v = nv;
        ls->cap = nc;
    }
    ls->v[ls->n].name = strndup(de->name, (size_t)len);
    if (!ls->v[ls->n].name) {
        ls->err = -ENOMEM;
        return DIRENT_ABORT;
    }
    ls->v[ls->n].ino = de->inode;
    ls->n++;
    return 0;
}

static int cmp_list(const void *a, const void *b)
{
    return strcmp(((const struct list_ent *)a)->name, ((const struct list_ent *)b)->name);
}

MD_API int md_ext_list(md_ext *x, const char *path, md_ext_list_fn fn, void *userdata)
{
    struct list_state ls = { NULL, 0, 0, 0 };
    struct ext2_inode_large in;
    ext2_ino_t ino;
    errcode_t err;
    size_t i;
    int r;

    if (!x || !path || !fn)
        return -EINVAL;
    r = md_ext_lookup(x, path, &ino);
    if (r < 0)
        return r;
    r = md_ext_read_inode(x, ino, &in);
    if (r < 0)
        return r;
    if (!LINUX_S_ISDIR(in.i_mode))
        return md_error(x->ctx, -ENOTDIR, "%s: not a directory", path);
    err = ext2fs_dir_iterate2(x->fs, ino, 0, NULL, list_cb, &ls);
    if (err)
        r = md_ext_error(x->ctx, err, "%s: reading the directory", path);
    else if (ls.err)
        r = md_error(x->ctx, ls.err, "out of memory");
    if (r == 0) {
        if (ls.n > 1) /* an empty directory has no array: qsort(NULL, 0) is UB */
            qsort(ls.v, ls.n, sizeof(*ls.v), cmp_list);
        for (i = 0; i < ls.n; i++) {
            md_ext_stat st = MD_EXT_STAT_INIT;
            r = md_ext_read_inode(x, ls.v[i].ino, &in);
            if (r < 0)
                break;
            fill_stat(x, ls.v[i].ino, &in, &st);
            r = fn(userdata, ls.v[i].name, &st);
            if (r) {
                if (r < 0)
                    r = md_error(x->ctx, -ECANCELED, "listing cancelled");
                break;
            }
        }
    }
    for (i = 0; i < ls.n; i++)
        free(ls.v[i].name);
    free(ls.v);
    return r;
}
