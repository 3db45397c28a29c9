/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * md_ext_populate(): copy an md_tree into the filesystem, after checking
 * that it fits.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "md-ext-internal.h"

/* ---- population -------------------------------------------------------------------- */

static int create_symlink(md_ext *x, ext2_ino_t dir, const char *path, const char *target,
                          ext2_ino_t *ret)
{
    ext2_ino_t ino;
    errcode_t err;
    size_t len = strlen(target);

    if (len >= x->fs->blocksize)
        return md_error(x->ctx, -ENAMETOOLONG,
                        "%s: symlink target of %zu bytes does not fit a %u-byte block", path, len,
                        x->fs->blocksize);
    err = ext2fs_new_inode(x->fs, dir, LINUX_S_IFLNK | 0777, NULL, &ino);
    if (!err)
        err = ext2fs_symlink(x->fs, dir, ino, NULL, target);
    if (err)
        return md_ext_error(x->ctx, err, "%s: creating the symlink", path);
    *ret = ino;
    return 0;
}

static int create_node(md_ext *x, ext2_ino_t dir, const struct md_entry *e, ext2_ino_t *ret)
{
    struct ext2_inode_large in;
    uint32_t type = e->mode & S_IFMT, lmode;
    ext2_ino_t ino;
    int r;

    switch (type) {
    case S_IFCHR: lmode = LINUX_S_IFCHR; break;
    case S_IFBLK: lmode = LINUX_S_IFBLK; break;
    case S_IFIFO: lmode = LINUX_S_IFIFO; break;
    default: lmode = LINUX_S_IFSOCK; break;
    }
    r = md_ext_new_inode(x, dir, lmode, &ino);
    if (r < 0)
        return r;
    memset(&in, 0, sizeof(in));
    in.i_mode = (uint16_t)(lmode | (e->mode & 07777));
    md_ext_set_owner(&in, e->uid, e->gid);
    in.i_links_count = 1;
    if (type == S_IFCHR || type == S_IFBLK) {
        if (e->rmajor < 256 && e->rminor < 256) {
            in.i_block[0] = e->rmajor * 256 + e->rminor;
        } else {
            in.i_block[1] = (e->rminor & 0xff) | (e->rmajor << 8) | ((e->rminor & ~0xffu) << 12);
        }
    }
    *ret = ino;
    return md_ext_write_inode(x, ino, &in, e->mtime, 1);
}

/* Store owner, mode bits and mtime of @e on existing inode @ino. */
static int apply_attrs(md_ext *x, ext2_ino_t ino, const struct md_entry *e)
{
    struct ext2_inode_large in;
    int r = md_ext_read_inode(x, ino, &in);
    if (r < 0)
        return r;
    in.i_mode = (uint16_t)((in.i_mode & LINUX_S_IFMT) | (e->mode & 07777));
    md_ext_set_owner(&in, e->uid, e->gid);
    return md_ext_write_inode(x, ino, &in, e->mtime, 0);
}

static int set_xattrs(md_ext *x, ext2_ino_t ino, const struct md_entry *e)
{
    struct ext2_xattr_handle *h;
    errcode_t err;
    size_t i;

    if (!e->n_xattrs)
        return 0;
    if (!ext2fs_has_feature_xattr(x->fs->super))
        return md_error(x->ctx, -ENOTSUP, "%s: has xattrs but the filesystem lacks the ext_attr feature",
                        e->path);
    err = ext2fs_xattrs_open(x->fs, ino, &h);
    if (err)
        return md_ext_error(x->ctx, err, "%s: xattrs", e->path);
    err = ext2fs_xattrs_read(h);
    for (i = 0; !err && i < e->n_xattrs; i++)
        err = ext2fs_xattr_set(h, e->xattrs[i].name, e->xattrs[i].value, e->xattrs[i].size);
    if (err) {
        ext2fs_xattrs_close(&h);
        return md_ext_error(x->ctx, err, "%s: setting xattr '%s'", e->path,
                            i > 0 ? e->xattrs[i - 1].name : "");
    }
    err = ext2fs_xattrs_close(&h);
    if (err)
        return md_ext_error(x->ctx, err, "%s: writing xattrs", e->path);
    return 0;
}

/* Data blocks really needed by a regular entry (holes and zero blocks excluded
 * for buffers; holes excluded for host files). */
static int data_estimate(md_ext *x, const struct md_entry *e, uint64_t *blocks, uint64_t *runs)
{
    const struct md_entry *d = md_entry_data(e);
    unsigned bs = x->fs->blocksize;

    *blocks = 0;
    *runs = 0;
    if (d->src == MD_SRC_BUF) {
        uint64_t b, n = (d->size + bs - 1) / bs;
        int prev = 0;
        for (b = 0; b < n; b++) {
            size_t len = (b + 1) * bs <= d->size ? bs : (size_t)(d->size - b * bs);
            int nz = !md_ext_is_zero((const char *)d->buf + b * bs, len);
            if (nz) {
                (*blocks)++;
                if (!prev)
                    (*runs)++;
            }
            prev = nz;
        }
    } else if (d->src == MD_SRC_HOST) {
        int fd = open(d->host_path, O_RDONLY | O_CLOEXEC);
        off_t pos = 0;
        if (fd < 0)
            return md_error_errno(x->ctx, -errno, "%s", d->host_path);
        for (;;) {
            off_t ds = lseek(fd, pos, SEEK_DATA), he;
            if (ds < 0)
                break;
            he = lseek(fd, ds, SEEK_HOLE);
            if (he < 0)
                he = (off_t)d->size;
            *blocks += ((uint64_t)he + bs - 1) / bs - (uint64_t)ds / bs;
            (*runs)++;
            pos = he;
            if ((uint64_t)pos >= d->size)
                break;
        }
        if (pos == 0 && *blocks == 0 && d->size) {
            /* no SEEK_DATA support: assume fully allocated */
            *blocks = (d->size + bs - 1) / bs;
            *runs = 1;
        }
        close(fd);
    }
    return 0;
}

/* The tree inode of each entry's parent directory (0: the target), looked up
 * once for the estimate and the walk. */
static int parent_inos(md_ext *x, md_tree *tree, uint32_t **ret)
{
    uint32_t *v = calloc(tree->n + 1, sizeof(*v));
    size_t i;

    if (!v)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    for (i = 0; i < tree->n; i++) {
        const struct md_entry *e = tree->v[i];
        const char *slash = strrchr(e->path, '/');
        const struct md_entry *p;
        char *pp;

        if (!slash)
            continue;
        pp = strndup(e->path, (size_t)(slash - e->path));
        if (!pp) {
            free(v);
            return md_error(x->ctx, -ENOMEM, "out of memory");
        }
        p = md_tree_lookup(tree, pp);
        free(pp);
        if (!p) {
            free(v);
            return md_error(x->ctx, -EIO, "%s: parent directory missing from the tree", e->path);
        }
        v[i] = p->ino;
    }
    *ret = v;
    return 0;
}

static int estimate(md_ext *x, md_tree *tree, const uint32_t *parent, uint64_t *need_blocks,
                    uint64_t *need_inodes, uint64_t *total_bytes)
{
    ext2_filsys fs = x->fs;
    unsigned bs = fs->blocksize;
    uint64_t blocks = 0, inodes = 0, bytes = 0;
    uint64_t *dirbytes;
    size_t i;
    int r;

    dirbytes = calloc(tree->n + 1, sizeof(*dirbytes));
    if (!dirbytes)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    for (i = 0; i < tree->n; i++) {
        const struct md_entry *e = tree->v[i];
        const char *slash = strrchr(e->path, '/');
        const char *name = slash ? slash + 1 : e->path;

        dirbytes[parent[i]] += 8 + ((strlen(name) + 3) & ~3u);
        if (S_ISREG(e->mode)) {
            uint64_t b, runs;
            if (e->master)
                continue;   /* data and inode counted once, with the group's master */
            if (e->nlink > EXT2_LINK_MAX) {
                free(dirbytes);
                return md_error(x->ctx, -EMLINK, "%s: %u hard links, more than ext2/3/4 allow (%d)",
                                e->path, e->nlink, EXT2_LINK_MAX);
            }
            r = data_estimate(x, e, &b, &runs);
            if (r < 0) {
                free(dirbytes);
                return r;
            }
            blocks += md_ext_file_blocks(fs, b, runs);
            bytes += e->size;
            inodes++;
        } else if (S_ISLNK(e->mode)) {
            if (e->size >= bs) {
                free(dirbytes);
                return md_error(x->ctx, -ENAMETOOLONG,
                                "%s: symlink target of %llu bytes does not fit a %u-byte block",
                                e->path, (unsigned long long)e->size, bs);
            }
            inodes++;
            if (e->size >= sizeof(((struct ext2_inode *)0)->i_block))
                blocks += 1;
        } else {
            inodes++;
        }
        if (e->n_xattrs) {
            if (!ext2fs_has_feature_xattr(fs->super)) {
                free(dirbytes);
                return md_error(x->ctx, -ENOTSUP,
                                "%s: has xattrs but the filesystem lacks the ext_attr feature", e->path);
            }
            blocks++;
        }
    }
    for (i = 0; i <= tree->n; i++) {
        uint64_t per = bs - 12 - 24, n;   /* tail and "." / ".." */
        if (i > 0 && !S_ISDIR(tree->v[i - 1]->mode))
            continue;
        n = (dirbytes[i > 0 ? tree->v[i - 1]->ino : 0] + per - 1) / per;
        if (i == 0)
            n += n ? 1 : 0;   /* the target may be full already */
        else if (n == 0)
            n = 1;
        blocks += md_ext_file_blocks(fs, n, n / 8 + 1);
    }
    free(dirbytes);
    *need_blocks = blocks;
    *need_inodes = inodes;
    *total_bytes = bytes;
    return 0;
}

MD_API int md_ext_populate(md_ext *x, md_tree *tree, const md_ext_populate_opts *opts)
{
    md_ext_populate_opts o = MD_EXT_POPULATE_OPTS_INIT;
    uint64_t need_b = 0, need_i = 0, total = 0, free_b, free_i, done = 0;
    ext2_ino_t tino = EXT2_ROOT_INO, *fsino = NULL;
    uint32_t *parent = NULL;
    unsigned char *isnew = NULL;
    struct md_ext_pdir *pd = NULL;   /* directories created here, by tree inode (0: a new target) */
    int target_new = 0, r;
    size_t i;

    if (!x || !tree)
        return -EINVAL;
    if (opts) {
        if (opts->version < 1 || opts->version > MD_EXT_POPULATE_OPTS_VERSION)
            return md_check_version(x->ctx, "md_ext_populate_opts", opts->version,
                                    MD_EXT_POPULATE_OPTS_VERSION);
        o = *opts;
    }
    if (o.flags)
        return md_error(x->ctx, -EINVAL, "unknown populate flags 0x%x", o.flags);
    r = md_ext_check_rw(x);
    if (r < 0)
        return r;
    r = md_tree_finalize(tree);
    if (r < 0)
        return r;
    if (o.target && *o.target) {
        r = md_ext_lookup(x, o.target, &tino);
        if (r == -ENOENT) {
            md_ctx_clear_error(x->ctx);
            target_new = 1;
        } else if (r < 0) {
            return r;
        } else {
            struct ext2_inode inode;
            errcode_t err = ext2fs_read_inode(x->fs, tino, &inode);
            if (err)
                return md_ext_error(x->ctx, err, "%s", o.target);
            if (!LINUX_S_ISDIR(inode.i_mode))
                return md_error(x->ctx, -ENOTDIR, "%s: target is not a directory", o.target);
        }
    }

    /* validate before the first write */
    r = parent_inos(x, tree, &parent);
    if (r < 0)
        return r;
    r = estimate(x, tree, parent, &need_b, &need_i, &total);
    if (r < 0)
        goto out;
    free_b = ext2fs_free_blocks_count(x->fs->super);
    free_i = x->fs->super->s_free_inodes_count;
    if (need_b > free_b || need_i > free_i) {
        unsigned kb = x->fs->blocksize / 1024;
        r = md_error(x->ctx, -ENOSPC,
                     "the tree does not fit: it needs about %llu KiB (%llu blocks) and %llu inodes, "
                     "the filesystem has %llu KiB (%llu blocks) and %llu inodes free",
                     (unsigned long long)(need_b * kb), (unsigned long long)need_b,
                     (unsigned long long)need_i, (unsigned long long)(free_b * kb),
                     (unsigned long long)free_b, (unsigned long long)free_i);
        goto out;
    }

    x->progress_total = total;
    if (target_new) {
        r = md_ext_mkdir_p(x, o.target, NULL, &tino);
        if (r < 0)
            goto out;
    }
    fsino = calloc(tree->n + 1, sizeof(*fsino));
    isnew = calloc(tree->n + 1, 1);
    pd = calloc(tree->n + 1, sizeof(*pd));
    if (!fsino || !isnew || !pd) {
        r = md_error(x->ctx, -ENOMEM, "out of memory");
        goto out;
    }
    if (target_new) {
        pd[0].ino = tino;
        pd[0].mtime = x->epoch;
        pd[0].tried = 1;
    }
    for (i = 0; i < tree->n; i++) {
        const struct md_entry *e = tree->v[i];
        const char *slash = strrchr(e->path, '/');
        const char *name = slash ? slash + 1 : e->path;
        ext2_ino_t dir = tino, old = 0, ino = 0;
        int pnew = target_new, coll;
        uint32_t type = e->mode & S_IFMT;
        struct md_ext_pdir *pp = &pd[0];

        if (parent[i]) {
            if (!fsino[parent[i]]) {
                r = md_error(x->ctx, -EIO, "%s: parent directory missing from the tree", e->path);
                goto out;
            }
            dir = fsino[parent[i]];
            pnew = isnew[parent[i]];
            pp = &pd[parent[i]];
        }
        if (!pnew && !pp->tried) {
            /* an existing directory: read its names once, then collect */
            r = md_ext_pdir_open_existing(x, pp, dir);
            if (r < 0)
                goto out;
        }
        coll = pp->ino != 0;
        if ((pnew || coll) && pp->ino != dir) {
            r = md_error(x->ctx, -EIO, "%s: internal error: parent directory not pending", e->path);
            goto out;
        }
        if (coll) {
            old = pnew ? 0 : md_ext_pdir_lookup(pp, name);
        } else {
            errcode_t err = ext2fs_lookup(x->fs, dir, name, (int)strlen(name), NULL, &old);
            if (err == EXT2_ET_FILE_NOT_FOUND) {
                old = 0;
            } else if (err) {
                r = md_ext_error(x->ctx, err, "%s", e->path);
                goto out;
            }
        }
        if (type == S_IFDIR) {
            if (old) {
                struct ext2_inode inode;
                errcode_t err = ext2fs_read_inode(x->fs, old, &inode);
                if (err) {
                    r = md_ext_error(x->ctx, err, "%s", e->path);
                    goto out;
                }
                if (LINUX_S_ISDIR(inode.i_mode)) {
                    r = apply_attrs(x, old, e);
                    if (r < 0)
                        goto out;
                    fsino[e->ino] = old;
                    continue;
                }
                r = md_ext_unlink(x, dir, name);
                if (r < 0)
                    goto out;
                md_ext_pdir_forget(pp, name);
            }
            r = md_ext_make_dir(x, dir, name, e->mode, e->uid, e->gid, e->mtime, !coll, &ino);
            if (r == 0 && coll)
                r = md_ext_pdir_add(x, pp, name, ino, S_IFDIR);
            if (r < 0)
                goto out;
            fsino[e->ino] = ino;
            isnew[e->ino] = 1;
            pd[e->ino].ino = ino;
            pd[e->ino].path = e->path;
            pd[e->ino].mtime = e->mtime;
            pd[e->ino].tried = 1;
            r = set_xattrs(x, ino, e);
            if (r < 0)
                goto out;
            continue;
        }
        if (old) {
            r = md_ext_unlink(x, dir, name);
            if (r < 0) {
                if (r == -EISDIR)
                    r = md_error(x->ctx, -EISDIR,
                                 "%s: is a directory in the filesystem; cannot replace it", e->path);
                goto out;
            }
            md_ext_pdir_forget(pp, name);
        }
        if (type == S_IFREG && fsino[e->ino]) {
            /* another link of a file already written */
            r = coll ? md_ext_pdir_add(x, pp, name, fsino[e->ino], S_IFREG)
                     : md_ext_link(x, dir, name, fsino[e->ino], S_IFREG);
            if (r < 0)
                goto out;
            continue;
        }
        if (type == S_IFREG) {
            const struct md_entry *d = md_entry_data(e);
            struct md_ext_src s;
            int fd = -1;

            r = md_entry_open(x->ctx, e, &fd);
            if (r < 0)
                goto out;
            s.fd = fd;
            s.buf = d->src == MD_SRC_BUF ? d->buf : NULL;
            s.size = d->src == MD_SRC_NONE ? 0 : d->size;
            s.name = d->src == MD_SRC_HOST ? d->host_path : e->path;
            r = md_ext_create_file(x, dir, &s, e->mode, e->uid, e->gid, e->mtime, e->nlink, &ino, &done, &o);
            if (fd >= 0)
                close(fd);
            if (r < 0)
                goto out;
        } else if (type == S_IFLNK) {
            r = create_symlink(x, dir, e->path, e->link, &ino);
            if (r == 0)
                r = apply_attrs(x, ino, e);
            if (r < 0)
                goto out;
        } else {
            r = create_node(x, dir, e, &ino);   /* with owner, mode and mtime */
            if (r < 0)
                goto out;
        }
        fsino[e->ino] = ino;
        r = set_xattrs(x, ino, md_entry_data(e));
        if (r < 0)
            goto out;
        r = coll ? md_ext_pdir_add(x, pp, name, ino, e->mode) : md_ext_link(x, dir, name, ino, e->mode);
        if (r < 0)
            goto out;
    }
    /* write the new directories, in tree order */
    for (i = 0; i <= tree->n; i++) {
        if (pd[i].ino) {
            r = md_ext_pdir_flush(x, &pd[i]);
            if (r < 0)
                goto out;
        }
    }
    if (o.progress && o.progress(o.userdata, total, total))
        r = md_error(x->ctx, -ECANCELED, "cancelled");
out:
    if (pd)
        for (i = 0; i <= tree->n; i++)
            md_ext_pdir_free(&pd[i]);
    free(pd);
    free(fsino);
    free(isnew);
    free(parent);
    return r;
}
