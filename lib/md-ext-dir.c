/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Directories: mkdir -p, and the directories md_ext_populate() writes in
 * one go.
 */
#include <string.h>
#include <sys/stat.h>

#include <ext2fs/ext2fs.h>

#include "md-ext-internal.h"

/* ---- directories ------------------------------------------------------------------ */

/* Create directory @name in @dir with the given attributes; returns its inode. */
int md_ext_make_dir(md_ext *x, ext2_ino_t dir, const char *name, uint32_t mode, uint32_t uid,
                    uint32_t gid, int64_t mtime, int link, ext2_ino_t *ret)
{
    struct ext2_inode_large in;
    ext2_ino_t ino;
    errcode_t err;
    int r;

    err = ext2fs_new_inode(x->fs, dir, LINUX_S_IFDIR | 0755, NULL, &ino);
    if (err)
        return md_ext_error(x->ctx, err, "allocating an inode for directory '%s'", name);
    err = ext2fs_mkdir(x->fs, dir, ino, NULL);
    if (err)
        return md_ext_error(x->ctx, err, "creating directory '%s'", name);
    r = md_ext_read_inode(x, ino, &in);
    if (r < 0)
        return r;
    in.i_mode = (uint16_t)(LINUX_S_IFDIR | (mode & 07777));
    md_ext_set_owner(&in, uid, gid);
    r = md_ext_write_inode(x, ino, &in, mtime, 0);
    if (r < 0)
        return r;
    if (link) {
        r = md_ext_link(x, dir, name, ino, S_IFDIR);
        if (r < 0)
            return r;
    }
    *ret = ino;
    return 0;
}

static int make_dir(md_ext *x, ext2_ino_t dir, const char *name, uint32_t mode, uint32_t uid,
                    uint32_t gid, int64_t mtime, ext2_ino_t *ret)
{
    return md_ext_make_dir(x, dir, name, mode, uid, gid, mtime, 1, ret);
}

int md_ext_mkdir_p(md_ext *x, const char *path, const md_attr *attr, ext2_ino_t *ret)
{
    uint32_t mode, uid, gid;
    int64_t mtime;
    ext2_ino_t cur = EXT2_ROOT_INO;
    char *norm, *p;
    int r;

    r = md_ext_attr_values(x, attr, 0755, &mode, &uid, &gid, &mtime);
    if (r < 0)
        return r;
    r = md_path_normalize(x->ctx, path, &norm);
    if (r < 0)
        return r;
    p = norm;
    while (*p) {
        char *s = p, save;
        struct ext2_inode inode;
        ext2_ino_t next;
        errcode_t err;

        while (*p && *p != '/')
            p++;
        save = *p;
        *p = '\0';
        err = ext2fs_lookup(x->fs, cur, s, (int)strlen(s), NULL, &next);
        if (err == EXT2_ET_FILE_NOT_FOUND) {
            r = md_ext_check_rw(x);
            if (r == 0)
                r = make_dir(x, cur, s, mode, uid, gid, mtime, &next);
            if (r < 0)
                break;
        } else if (err) {
            r = md_ext_error(x->ctx, err, "%s", path);
            break;
        } else {
            err = ext2fs_read_inode(x->fs, next, &inode);
            if (err) {
                r = md_ext_error(x->ctx, err, "%s", path);
                break;
            }
            if (!LINUX_S_ISDIR(inode.i_mode)) {
                r = md_error(x->ctx, -ENOTDIR, "%s: '%s' exists and is not a directory", path, norm);
                break;
            }
        }
        cur = next;
        *p = save;
        if (*p == '/')
            p++;
    }
    free(norm);
    if (r == 0 && ret)
        *ret = cur;
    return r;
}

MD_API int md_ext_mkdir(md_ext *x, const char *path, const md_attr *attr)
{
    int r;
    if (!x || !path)
        return -EINVAL;
    r = md_ext_check_rw(x);
    if (r < 0)
        return r;
    return md_ext_mkdir_p(x, path, attr, NULL);
}

/* ---- directories written in one go ------------------------------------------------
 *
 * Linking N entries one by one with ext2fs_link() scans the whole directory
 * each time (O(N^2)).  Directories created by md_ext_populate() are instead
 * collected in memory (a pointer per entry) and written once at the end.
 * (Not when the walk leaves them: in byte order "d-x" sorts between "d" and
 * "d/y", so a directory's entries need not follow it directly.)
 */

struct md_ext_dent {
    const char *name;    /* borrowed from the tree entry's path */
    uint8_t len;
    uint8_t ftype;
    ext2_ino_t ino;
};

struct md_ext_pname {
    char *name;
    ext2_ino_t ino;      /* 0: removed */
};

static size_t names_slot(const struct md_ext_pdir *d, const char *name, size_t len)
{
    uint64_t h = md_ext_fnv64(1469598103934665603ULL, name, len);
    size_t i = (size_t)h & (d->names_cap - 1);
    while (d->names[i].name && (strlen(d->names[i].name) != len || memcmp(d->names[i].name, name, len)))
        i = (i + 1) & (d->names_cap - 1);
    return i;
}

static void names_free(struct md_ext_pdir *d)
{
    size_t i;
    for (i = 0; d->names && i < d->names_cap; i++) /* NULL: its allocation failed */
        free(d->names[i].name);
    free(d->names);
    d->names = NULL;
    d->names_cap = 0;
}

void md_ext_pdir_free(struct md_ext_pdir *d)
{
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
    names_free(d);
}

struct names_scan {
    struct md_ext_pdir *d;
    size_t count;
    int err;
};

static int names_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset, int blocksize,
                    char *buf, void *priv)
{
    struct names_scan *ns = priv;
    struct md_ext_pdir *d = ns->d;
    int len = ext2fs_dirent_name_len(de);
    size_t i;
    (void)dir;
    (void)entry;
    (void)offset;
    (void)blocksize;
    (void)buf;

    if (!de->inode || (len == 1 && de->name[0] == '.') ||
        (len == 2 && de->name[0] == '.' && de->name[1] == '.'))
        return 0;
    if ((ns->count + 1) * 2 > d->names_cap) {
        /* grow and rehash */
        struct md_ext_pdir tmp = *d;
        size_t j;
        tmp.names_cap = d->names_cap ? d->names_cap * 2 : 64;
        tmp.names = calloc(tmp.names_cap, sizeof(*tmp.names));
        if (!tmp.names) {
            ns->err = -ENOMEM;
            return DIRENT_ABORT;
        }
        for (j = 0; j < d->names_cap; j++)
            if (d->names[j].name)
                tmp.names[names_slot(&tmp, d->names[j].name, strlen(d->names[j].name))] = d->names[j];
        free(d->names);
        d->names = tmp.names;
        d->names_cap = tmp.names_cap;
    }
    i = names_slot(d, de->name, (size_t)len);
    if (!d->names[i].name) {
        d->names[i].name = strndup(de->name, (size_t)len);
        if (!d->names[i].name) {
            ns->err = -ENOMEM;
            return DIRENT_ABORT;
        }
        ns->count++;
    }
    d->names[i].ino = de->inode;
    return 0;
}

/* Start collecting entries for directory @ino, which existed before: read
 * its names once.  Indexed (htree) directories are left to ext2fs_link(). */
int md_ext_pdir_open_existing(md_ext *x, struct md_ext_pdir *d, ext2_ino_t ino)
{
    struct ext2_inode_large in;
    struct names_scan ns = { d, 0, 0 };
    errcode_t err;
    int r = md_ext_read_inode(x, ino, &in);

    d->tried = 1;
    if (r < 0)
        return r;
    if ((in.i_flags & (EXT2_INDEX_FL | EXT4_INLINE_DATA_FL)) || EXT2_I_SIZE(&in) < x->fs->blocksize)
        return 0;
    d->names = calloc(64, sizeof(*d->names));
    if (!d->names)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    d->names_cap = 64;
    err = ext2fs_dir_iterate2(x->fs, ino, 0, NULL, names_cb, &ns);
    if (err || ns.err) {
        names_free(d);
        return err ? md_ext_error(x->ctx, err, "reading directory inode %u", ino)
                   : md_error(x->ctx, ns.err, "out of memory");
    }
    d->ino = ino;
    d->mtime = md_ext_inode_mtime(&in, md_ext_inode_full(x->fs) && in.i_extra_isize >= 24);
    return 0;
}

ext2_ino_t md_ext_pdir_lookup(struct md_ext_pdir *d, const char *name)
{
    size_t i;
    if (!d->names)
        return 0;
    i = names_slot(d, name, strlen(name));
    return d->names[i].name ? d->names[i].ino : 0;
}

void md_ext_pdir_forget(struct md_ext_pdir *d, const char *name)
{
    size_t i;
    if (!d->names)
        return;
    i = names_slot(d, name, strlen(name));
    if (d->names[i].name)
        d->names[i].ino = 0;
}

int md_ext_pdir_add(md_ext *x, struct md_ext_pdir *d, const char *name, ext2_ino_t ino,
                    uint32_t mode)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        struct md_ext_dent *nv = realloc(d->v, nc * sizeof(*nv));
        if (!nv)
            return md_error(x->ctx, -ENOMEM, "out of memory");
        d->v = nv;
        d->cap = nc;
    }
    d->v[d->n].name = name;
    d->v[d->n].len = (uint8_t)strlen(name);
    d->v[d->n].ftype =
        ext2fs_has_feature_filetype(x->fs->super) ? (uint8_t)md_ext_ftype_of(mode) : 0;
    d->v[d->n].ino = ino;
    d->n++;
    return 0;
}

static unsigned dent_size(unsigned len)
{
    return (8 + len + 3) & ~3u;
}

/* Finish the entry at @last (offset in @buf) so that it reaches @end. */
static void close_block(ext2_filsys fs, char *buf, unsigned last, unsigned end)
{
    struct ext2_dir_entry *de = (struct ext2_dir_entry *)(buf + last);
    ext2fs_set_rec_len(fs, end - last, de);
}

/* What md_ext_pdir_flush() carries from one step to the next. */
struct flush {
    md_ext *x;
    struct md_ext_pdir *d;
    struct ext2_inode_large in;
    unsigned bs, usable;   /* usable: the block without the checksum tail */
    int csum;
    char *buf;             /* the block being filled */
    blk64_t base;          /* the directory's last block, where new entries start */
    blk64_t nblk;          /* blocks from base on that the entries need */
    unsigned pos;          /* where the next entry goes in buf */
    unsigned last;         /* the entry before it */
};

/* Read the directory's last block into f->buf and find where new entries
 * go: after its last entry, or in place of an unused one. */
static int flush_read_tail(struct flush *f)
{
    ext2_filsys fs = f->x->fs;
    ext2_ino_t ino = f->d->ino;
    blk64_t pblk;
    unsigned off;
    errcode_t err;

    err = ext2fs_bmap2(fs, ino, (struct ext2_inode *)&f->in, NULL, 0, f->base, NULL, &pblk);
    if (!err && !pblk)
        err = EXT2_ET_DIR_CORRUPTED;
    if (!err)
        err = ext2fs_read_dir_block4(fs, pblk, f->buf, 0, ino);
    if (err)
        return md_ext_error(f->x->ctx, err, "reading directory inode %u", ino);
    /* find the last entry ("..", in a directory ext2fs_mkdir() just made) */
    for (off = 0; off < f->usable;) {
        struct ext2_dir_entry *de = (struct ext2_dir_entry *)(f->buf + off);
        unsigned rl;
        if (ext2fs_get_rec_len(fs, de, &rl) || rl < 8 || off + rl > f->bs)
            return md_error(f->x->ctx, -EIO, "directory inode %u: bad block %llu", ino,
                            (unsigned long long)f->base);
        f->last = off;
        if (off + rl >= f->usable)
            break;
        off += rl;
    }
    if (((struct ext2_dir_entry *)(f->buf + f->last))->inode == 0) {
        /* an unused entry: new entries start in its place */
        f->pos = f->last;
    } else {
        /* the last entry spans the rest of the block: shrink it to its size */
        struct ext2_dir_entry *de = (struct ext2_dir_entry *)(f->buf + f->last);
        f->pos = f->last + dent_size((unsigned)ext2fs_dirent_name_len(de));
        ext2fs_set_rec_len(fs, f->pos - f->last, de);
    }
    return 0;
}

/* Dry run of the packing in flush_pack(): how many blocks from base on. */
static void flush_count_blocks(struct flush *f)
{
    unsigned p = f->pos;
    size_t i;

    f->nblk = 1;
    for (i = 0; i < f->d->n; i++) {
        unsigned need = dent_size(f->d->v[i].len);
        if (p + need > f->usable) {
            f->nblk++;
            p = 0;
        }
        p += need;
    }
}

/* Allocate the blocks after base, all at once. */
static int flush_alloc(struct flush *f)
{
    md_ext *x = f->x;
    ext2_ino_t ino = f->d->ino;
    blk64_t k, pblk;
    errcode_t err = 0;

    if (f->nblk <= 1)
        return 0;
    if (f->in.i_flags & EXT4_EXTENTS_FL) {
        err = ext2fs_fallocate(x->fs, EXT2_FALLOCATE_FORCE_INIT, ino, (struct ext2_inode *)&f->in,
                               x->goal ? x->goal : ~0ULL, f->base + 1, f->nblk - 1);
    } else {
        for (k = f->base + 1; k < f->base + f->nblk && !err; k++)
            err = ext2fs_bmap2(x->fs, ino, (struct ext2_inode *)&f->in, NULL, BMAP_ALLOC, k, NULL,
                               &pblk);
    }
    if (err)
        return md_ext_error(x->ctx, err, "allocating %llu directory blocks",
                            (unsigned long long)(f->nblk - 1));
    return 0;
}

/* Finish f->buf and write it as logical block @k of the directory. */
static int flush_write_block(struct flush *f, blk64_t k)
{
    md_ext *x = f->x;
    blk64_t pblk;
    errcode_t err;

    close_block(x->fs, f->buf, f->last, f->usable);
    if (f->csum)
        ext2fs_initialize_dirent_tail(x->fs, EXT2_DIRENT_TAIL(f->buf, f->bs));
    err = ext2fs_bmap2(x->fs, f->d->ino, (struct ext2_inode *)&f->in, NULL, 0, k, NULL, &pblk);
    if (!err && !pblk)
        err = EXT2_ET_BLOCK_ALLOC_FAIL;
    if (!err)
        err = ext2fs_write_dir_block4(x->fs, pblk, f->buf, 0, f->d->ino);
    if (err)
        return md_ext_error(x->ctx, err, "writing directory inode %u", f->d->ino);
    if (pblk >= x->goal)
        x->goal = pblk + 1;
    return 0;
}

/* Pack the collected entries in order from f->pos on, writing each block
 * when the next entry does not fit, and the last one at the end. */
static int flush_pack(struct flush *f)
{
    const struct md_ext_pdir *d = f->d;
    blk64_t k = f->base;
    size_t i;
    int r;

    for (i = 0; i <= d->n; i++) {
        unsigned need = i < d->n ? dent_size(d->v[i].len) : 0;
        struct ext2_dir_entry *de;

        if (i == d->n || f->pos + need > f->usable) {
            r = flush_write_block(f, k);
            if (r < 0)
                return r;
            if (i == d->n)
                break;
            k++;
            memset(f->buf, 0, f->bs);
            f->pos = 0;
        }
        de = (struct ext2_dir_entry *)(f->buf + f->pos);
        de->inode = d->v[i].ino;
        ext2fs_dirent_set_name_len(de, d->v[i].len);
        ext2fs_dirent_set_file_type(de, d->v[i].ftype);
        ext2fs_set_rec_len(f->x->fs, need, de);
        memcpy(de->name, d->v[i].name, d->v[i].len);
        f->last = f->pos;
        f->pos += need;
    }
    return 0;
}

int md_ext_pdir_flush(md_ext *x, struct md_ext_pdir *d)
{
    struct flush f;
    errcode_t err;
    int r;

    if (!d->n)
        goto done;
    memset(&f, 0, sizeof(f));
    f.x = x;
    f.d = d;
    f.bs = x->fs->blocksize;
    f.csum = ext2fs_has_feature_metadata_csum(x->fs->super);
    f.usable = f.csum ? f.bs - (unsigned)sizeof(struct ext2_dir_entry_tail) : f.bs;
    r = md_ext_read_inode(x, d->ino, &f.in);
    if (r < 0)
        return r;
    if (EXT2_I_SIZE(&f.in) < f.bs || EXT2_I_SIZE(&f.in) % f.bs)
        return md_error(x->ctx, -EIO, "directory inode %u: unexpected size %llu", d->ino,
                        (unsigned long long)EXT2_I_SIZE(&f.in));
    /* new entries go after the last entry of the last block, then into new blocks */
    f.base = EXT2_I_SIZE(&f.in) / f.bs - 1;
    f.buf = malloc(f.bs);
    if (!f.buf)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    r = flush_read_tail(&f);
    if (r == 0) {
        flush_count_blocks(&f);
        r = flush_alloc(&f);
    }
    if (r == 0)
        r = flush_pack(&f);
    free(f.buf);
    if (r < 0)
        return r;
    err = ext2fs_inode_size_set(x->fs, (struct ext2_inode *)&f.in,
                                (uint64_t)(f.base + f.nblk) * f.bs);
    if (err)
        return md_ext_error(x->ctx, err, "directory inode %u", d->ino);
    r = md_ext_write_inode(x, d->ino, &f.in, d->mtime, 0);
    if (r < 0)
        return r;
done:
    md_ext_pdir_free(d);
    return 0;
}
