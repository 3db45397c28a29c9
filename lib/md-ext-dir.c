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
    for (i = 0; i < d->names_cap; i++)
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
    d->names_cap = 64;
    d->names = calloc(d->names_cap, sizeof(*d->names));
    if (!d->names)
        return md_error(x->ctx, -ENOMEM, "out of memory");
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

int md_ext_pdir_flush(md_ext *x, struct md_ext_pdir *d)
{
    ext2_filsys fs = x->fs;
    unsigned bs = fs->blocksize;
    int csum = ext2fs_has_feature_metadata_csum(fs->super);
    unsigned usable = csum ? bs - (unsigned)sizeof(struct ext2_dir_entry_tail) : bs;
    struct ext2_inode_large in;
    unsigned pos, last = 0, off;
    blk64_t nblk = 1, k, pblk, base;
    size_t i;
    char *buf = NULL;
    errcode_t err;
    int r;

    if (!d->n)
        goto done;
    r = md_ext_read_inode(x, d->ino, &in);
    if (r < 0)
        return r;
    if (EXT2_I_SIZE(&in) < bs || EXT2_I_SIZE(&in) % bs)
        return md_error(x->ctx, -EIO, "directory inode %u: unexpected size %llu", d->ino,
                        (unsigned long long)EXT2_I_SIZE(&in));
    /* new entries go after the last entry of the last block, then into new blocks */
    base = EXT2_I_SIZE(&in) / bs - 1;
    buf = malloc(bs);
    if (!buf)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    err = ext2fs_bmap2(fs, d->ino, (struct ext2_inode *)&in, NULL, 0, base, NULL, &pblk);
    if (!err && !pblk)
        err = EXT2_ET_DIR_CORRUPTED;
    if (!err)
        err = ext2fs_read_dir_block4(fs, pblk, buf, 0, d->ino);
    if (err) {
        free(buf);
        return md_ext_error(x->ctx, err, "reading directory inode %u", d->ino);
    }
    /* find the last entry ("..", in a directory ext2fs_mkdir() just made) */
    for (off = 0; off < usable;) {
        struct ext2_dir_entry *de = (struct ext2_dir_entry *)(buf + off);
        unsigned rl;
        if (ext2fs_get_rec_len(fs, de, &rl) || rl < 8 || off + rl > bs) {
            free(buf);
            return md_error(x->ctx, -EIO, "directory inode %u: bad block %llu", d->ino,
                            (unsigned long long)base);
        }
        last = off;
        if (off + rl >= usable)
            break;
        off += rl;
    }
    if (((struct ext2_dir_entry *)(buf + last))->inode == 0) {
        /* an unused entry: new entries start in its place */
        pos = last;
    } else {
        /* the last entry spans the rest of the block: shrink it to its size */
        pos = last + dent_size((unsigned)ext2fs_dirent_name_len((struct ext2_dir_entry *)(buf + last)));
        ext2fs_set_rec_len(fs, pos - last, (struct ext2_dir_entry *)(buf + last));
    }
    /* dry run: how many blocks */
    {
        unsigned p = pos;
        for (i = 0; i < d->n; i++) {
            unsigned need = dent_size(d->v[i].len);
            if (p + need > usable) {
                nblk++;
                p = 0;
            }
            p += need;
        }
    }
    if (nblk > 1) {
        if (in.i_flags & EXT4_EXTENTS_FL) {
            err = ext2fs_fallocate(fs, EXT2_FALLOCATE_FORCE_INIT, d->ino, (struct ext2_inode *)&in,
                                   x->goal ? x->goal : ~0ULL, base + 1, nblk - 1);
        } else {
            for (k = base + 1, err = 0; k < base + nblk && !err; k++)
                err = ext2fs_bmap2(fs, d->ino, (struct ext2_inode *)&in, NULL, BMAP_ALLOC, k, NULL,
                                   &pblk);
        }
        if (err) {
            free(buf);
            return md_ext_error(x->ctx, err, "allocating %llu directory blocks",
                                (unsigned long long)(nblk - 1));
        }
    }
    k = base;
    for (i = 0; i <= d->n; i++) {
        unsigned need = i < d->n ? dent_size(d->v[i].len) : 0;
        if (i == d->n || pos + need > usable) {
            /* write block k */
            close_block(fs, buf, last, usable);
            if (csum)
                ext2fs_initialize_dirent_tail(fs, EXT2_DIRENT_TAIL(buf, bs));
            err = ext2fs_bmap2(fs, d->ino, (struct ext2_inode *)&in, NULL, 0, k, NULL, &pblk);
            if (!err && !pblk)
                err = EXT2_ET_BLOCK_ALLOC_FAIL;
            if (!err)
                err = ext2fs_write_dir_block4(fs, pblk, buf, 0, d->ino);
            if (err) {
                free(buf);
                return md_ext_error(x->ctx, err, "writing directory inode %u", d->ino);
            }
            if (pblk >= x->goal)
                x->goal = pblk + 1;
            if (i == d->n)
                break;
            k++;
            memset(buf, 0, bs);
            pos = 0;
        }
        {
            struct ext2_dir_entry *de = (struct ext2_dir_entry *)(buf + pos);
            de->inode = d->v[i].ino;
            ext2fs_dirent_set_name_len(de, d->v[i].len);
            ext2fs_dirent_set_file_type(de, d->v[i].ftype);
            ext2fs_set_rec_len(fs, need, de);
            memcpy(de->name, d->v[i].name, d->v[i].len);
            last = pos;
            pos += need;
        }
    }
    free(buf);
    err = ext2fs_inode_size_set(fs, (struct ext2_inode *)&in, (uint64_t)(base + nblk) * bs);
    if (err)
        return md_ext_error(x->ctx, err, "directory inode %u", d->ino);
    r = md_ext_write_inode(x, d->ino, &in, d->mtime, 0);
    if (r < 0)
        return r;
done:
    md_ext_pdir_free(d);
    return 0;
}
