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
static int data_estimate(md_ext *x, md_tree *tree, const struct md_entry *e, uint64_t *blocks,
                         uint64_t *runs)
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
    } else if (d->src == MD_SRC_HOST && !d->host_sparse) {
        /* all allocated: at most one block per block of its size (zero
         * blocks are left out when written); nothing to open */
        *blocks = (d->size + bs - 1) / bs;
        *runs = d->size ? 1 : 0;
    } else if (d->src == MD_SRC_HOST) {
        /* only the layout of holes is read here; the file is opened (and
         * checked) again when its data is copied */
        struct md_data hd;
        bool seek_ok = true;
        off_t pos = 0;
        int fd, r = md_data_open(tree, x->ctx, e, &hd);
        if (r < 0)
            return r;
        fd = hd.fd;
        for (;;) {
            off_t ds = lseek(fd, pos, SEEK_DATA), he;
            if (ds < 0) {
                seek_ok = errno == ENXIO; /* ENXIO: only a hole is left */
                break;
            }
            he = lseek(fd, ds, SEEK_HOLE);
            if (he < 0)
                he = (off_t)d->size;
            *blocks += ((uint64_t)he + bs - 1) / bs - (uint64_t)ds / bs;
            (*runs)++;
            pos = he;
            if ((uint64_t)pos >= d->size)
                break;
        }
        if (!seek_ok && pos == 0) {
            /* no SEEK_DATA support: assume fully allocated */
            *blocks = (d->size + bs - 1) / bs;
            *runs = 1;
        }
        md_data_close(&hd);
    } else if (d->src == MD_SRC_SPOOL && d->size) {
        *blocks = (d->size + bs - 1) / bs; /* at most: zero blocks are left out when written */
        *runs = 1;
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

/* Space and inodes a tree needs, and the bytes of file data it carries. */
struct need {
    uint64_t blocks, inodes, bytes;
};

/* Add what entry @e itself needs (its directory entry is counted by the caller). */
static int estimate_entry(md_ext *x, md_tree *tree, const struct md_entry *e, struct need *need)
{
    ext2_filsys fs = x->fs;
    unsigned bs = fs->blocksize;
    int r;

    if (S_ISREG(e->mode)) {
        uint64_t b, runs;
        if (e->master)
            return 0;   /* data and inode counted once, with the group's master */
        if (e->nlink > EXT2_LINK_MAX)
            return md_error(x->ctx, -EMLINK, "%s: %u hard links, more than ext2/3/4 allow (%d)",
                            e->path, e->nlink, EXT2_LINK_MAX);
        r = data_estimate(x, tree, e, &b, &runs);
        if (r < 0)
            return r;
        need->blocks += md_ext_file_blocks(fs, b, runs);
        need->bytes += e->size;
        need->inodes++;
    } else if (S_ISLNK(e->mode)) {
        if (e->size >= bs)
            return md_error(x->ctx, -ENAMETOOLONG,
                            "%s: symlink target of %llu bytes does not fit a %u-byte block",
                            e->path, (unsigned long long)e->size, bs);
        need->inodes++;
        if (e->size >= sizeof(((struct ext2_inode *)0)->i_block))
            need->blocks += 1;
    } else {
        need->inodes++;
    }
    if (e->n_xattrs) {
        uint64_t bytes = 0, room;
        size_t k;

        if (!ext2fs_has_feature_xattr(fs->super))
            return md_error(x->ctx, -ENOTSUP,
                            "%s: has xattrs but the filesystem lacks the ext_attr feature", e->path);
        /* what one xattr block and the inode's spare room can hold, told
         * before anything is written (entries: 16 bytes + name + value,
         * rounded to 4; the block's header 32, the inode's 4) */
        for (k = 0; k < e->n_xattrs; k++)
            bytes += 16 + ((strlen(e->xattrs[k].name) + 3) & ~3u) + ((e->xattrs[k].size + 3) & ~(size_t)3);
        room = bs - 32;
        if (EXT2_INODE_SIZE(fs->super) > EXT2_GOOD_OLD_INODE_SIZE + 32 + 4)
            room += EXT2_INODE_SIZE(fs->super) - EXT2_GOOD_OLD_INODE_SIZE - 32 - 4;
        if (bytes > room)
            return md_error(x->ctx, -ENOSPC, "%s: its extended attributes take %llu bytes; a %u-byte "
                            "block and the inode hold at most %llu (use 4096-byte blocks)", e->path,
                            (unsigned long long)bytes, bs, (unsigned long long)room);
        need->blocks++;
    }
    return 0;
}

/* Blocks for the directories of @tree (index 0: the target), given the
 * bytes of entries each receives. */
static uint64_t estimate_dirs(ext2_filsys fs, const md_tree *tree, const uint64_t *dirbytes)
{
    uint64_t blocks = 0;
    size_t i;

    for (i = 0; i <= tree->n; i++) {
        uint64_t per = fs->blocksize - 12 - 24, n;   /* tail and "." / ".." */
        if (i > 0 && !S_ISDIR(tree->v[i - 1]->mode))
            continue;
        n = (dirbytes[i > 0 ? tree->v[i - 1]->ino : 0] + per - 1) / per;
        if (i == 0)
            n += n ? 1 : 0;   /* the target may be full already */
        else if (n == 0)
            n = 1;
        blocks += md_ext_file_blocks(fs, n, n / 8 + 1);
    }
    return blocks;
}

static int estimate(md_ext *x, md_tree *tree, const uint32_t *parent, struct need *need)
{
    uint64_t *dirbytes;
    size_t i;
    int r = 0;

    dirbytes = calloc(tree->n + 2, sizeof(*dirbytes)); /* by tree inode: 1 (the root) .. n + 1 */
    if (!dirbytes)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    for (i = 0; i < tree->n && r == 0; i++) {
        const struct md_entry *e = tree->v[i];
        const char *slash = strrchr(e->path, '/');
        const char *name = slash ? slash + 1 : e->path;

        dirbytes[parent[i]] += 8 + ((strlen(name) + 3) & ~3u);
        r = estimate_entry(x, tree, e, need);
    }
    if (r == 0)
        need->blocks += estimate_dirs(x->fs, tree, dirbytes);
    free(dirbytes);
    return r;
}

int md_ext_tree_need(md_ext *x, md_tree *tree, uint64_t *blocks, uint64_t *inodes, uint64_t *bytes)
{
    struct need need = { 0, 0, 0 };
    uint32_t *parent = NULL;
    int r;

    r = md_tree_finalize(tree);
    if (r == 0)
        r = parent_inos(x, tree, &parent);
    if (r == 0)
        r = estimate(x, tree, parent, &need);
    free(parent);
    *blocks = need.blocks;
    *inodes = need.inodes;
    *bytes = need.bytes;
    return r;
}

/* What md_ext_populate() carries from one step (and one entry) to the next.
 * Arrays are indexed by tree inode (0: the target). */
struct populate {
    md_ext *x;
    md_tree *tree;
    md_ext_populate_opts o;
    ext2_ino_t tino;          /* the target directory */
    int target_new;           /* it does not exist yet */
    uint32_t *parent;         /* per entry: its parent's tree inode */
    ext2_ino_t *fsino;        /* filesystem inode of each tree inode written so far */
    unsigned char *isnew;     /* the directory was made by this populate */
    struct md_ext_pdir *pd;   /* directories created here, by tree inode (0: a new target) */
    uint64_t total, done;     /* bytes of file data, for progress */
    md_ra *ra;                /* reads the files' contents ahead (NULL: read here) */
    bool write_behind;        /* and its writer writes them (a fresh filesystem) */
    size_t cur;               /* the entry being written */
};

/* Where one entry goes. */
struct slot {
    const char *name;         /* last component of the entry's path */
    ext2_ino_t dir;           /* filesystem inode of its parent */
    ext2_ino_t old;           /* what the parent holds under that name (0: nothing) */
    struct md_ext_pdir *pp;   /* the parent's pending directory */
    int coll;                 /* the parent collects its entries (md_ext_pdir_add) */
};

static int populate_opts(struct populate *st, const md_ext_populate_opts *opts)
{
    md_ext *x = st->x;
    int r;

    if (opts) {
        if (opts->version < 1 || opts->version > MD_EXT_POPULATE_OPTS_VERSION)
            return md_check_version(x->ctx, "md_ext_populate_opts", opts->version,
                                    MD_EXT_POPULATE_OPTS_VERSION);
        st->o = *opts;
    }
    if (st->o.flags)
        return md_error(x->ctx, -EINVAL, "unknown populate flags 0x%x", st->o.flags);
    r = md_ext_check_rw(x);
    if (r < 0)
        return r;
    return md_tree_finalize(st->tree);
}

/* Look the target up; a missing one is made later, after the checks. */
static int populate_target(struct populate *st)
{
    md_ext *x = st->x;
    const char *target = st->o.target;
    struct ext2_inode inode;
    errcode_t err;
    int r;

    if (!target || !*target)
        return 0;
    r = md_ext_lookup(x, target, &st->tino);
    if (r == -ENOENT) {
        md_ctx_clear_error(x->ctx);
        st->target_new = 1;
        return 0;
    }
    if (r < 0)
        return r;
    err = ext2fs_read_inode(x->fs, st->tino, &inode);
    if (err)
        return md_ext_error(x->ctx, err, "%s", target);
    if (!LINUX_S_ISDIR(inode.i_mode))
        return md_error(x->ctx, -ENOTDIR, "%s: target is not a directory", target);
    return 0;
}

/* Regular files of the tree the filesystem already holds (as regular
 * files): each keeps its blocks until its new copy is written.  Only for
 * the message of a tree that does not fit. */
static uint64_t count_replaced(struct populate *st)
{
    md_ext *x = st->x;
    uint64_t n = 0;
    size_t i;

    if (st->target_new)
        return 0;
    for (i = 0; i < st->tree->n; i++) {
        const struct md_entry *e = st->tree->v[i];
        struct ext2_inode in;
        ext2_ino_t ino;

        if (S_ISREG(e->mode) &&
            ext2fs_namei(x->fs, EXT2_ROOT_INO, st->tino, e->path, &ino) == 0 &&
            ext2fs_read_inode(x->fs, ino, &in) == 0 && LINUX_S_ISREG(in.i_mode))
            n++;
    }
    return n;
}

/* A non-directory of the tree over a directory the filesystem holds at its
 * path is refused when its turn comes; say so before the first write
 * instead (entries sorted before it would already be written).  Tree
 * directories are followed down the directories the filesystem holds under
 * their names; below a name the filesystem holds as anything else (the tree
 * replaces it with a new directory) nothing can be in the way. */
static int check_in_the_way(struct populate *st)
{
    md_ext *x = st->x;
    md_tree *tree = st->tree;
    ext2_ino_t *fsdir;
    size_t i;
    int r = 0;

    if (st->target_new)
        return 0;
    fsdir = calloc(tree->n + 2, sizeof(*fsdir)); /* by tree inode: what the filesystem holds */
    if (!fsdir)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    for (i = 0; i < tree->n && r == 0; i++) {
        const struct md_entry *e = tree->v[i];
        const char *slash = strrchr(e->path, '/');
        const char *name = slash ? slash + 1 : e->path;
        ext2_ino_t dir = st->parent[i] ? fsdir[st->parent[i]] : st->tino, ino;
        struct ext2_inode in;
        errcode_t err;

        if (!dir)
            continue;
        err = ext2fs_lookup(x->fs, dir, name, (int)strlen(name), NULL, &ino);
        if (err == EXT2_ET_FILE_NOT_FOUND)
            continue;
        if (!err)
            err = ext2fs_read_inode(x->fs, ino, &in);
        if (err) {
            r = md_ext_error(x->ctx, err, "%s", e->path);
        } else if (S_ISDIR(e->mode)) {
            if (LINUX_S_ISDIR(in.i_mode) && e->ino < tree->n + 2)
                fsdir[e->ino] = ino;
        } else if (LINUX_S_ISDIR(in.i_mode)) {
            r = md_error(x->ctx, -EISDIR, "%s: is a directory in the filesystem; cannot replace it",
                         e->path);
        }
    }
    free(fsdir);
    return r;
}

/* validate before the first write */
static int populate_check_space(struct populate *st)
{
    md_ext *x = st->x;
    struct need need = { 0, 0, 0 };
    uint64_t free_b, free_i, replaced;
    char why[160] = "";
    unsigned kb;
    int r;

    r = parent_inos(x, st->tree, &st->parent);
    if (r < 0)
        return r;
    r = check_in_the_way(st);
    if (r < 0)
        return r;
    r = estimate(x, st->tree, st->parent, &need);
    if (r < 0)
        return r;
    free_b = ext2fs_free_blocks_count(x->fs->super);
    free_i = x->fs->super->s_free_inodes_count;
    if (need.blocks <= free_b && need.inodes <= free_i) {
        st->total = need.bytes;
        return 0;
    }
    kb = x->fs->blocksize / 1024;
    replaced = count_replaced(st);
    if (replaced)
        snprintf(why, sizeof(why), " (the %llu file%s it replaces %s freed only once %s new "
                 "cop%s written: both copies must fit)", (unsigned long long)replaced,
                 replaced == 1 ? "" : "s", replaced == 1 ? "is" : "are",
                 replaced == 1 ? "its" : "their", replaced == 1 ? "y is" : "ies are");
    return md_error(x->ctx, -ENOSPC,
                    "the tree does not fit: it needs about %llu KiB (%llu blocks) and %llu inodes, "
                    "the filesystem has %llu KiB (%llu blocks) and %llu inodes free%s",
                    (unsigned long long)(need.blocks * kb), (unsigned long long)need.blocks,
                    (unsigned long long)need.inodes, (unsigned long long)(free_b * kb),
                    (unsigned long long)free_b, (unsigned long long)free_i, why);
}

/* The first writes: a missing target; then the per-tree-inode arrays. */
static int populate_prepare(struct populate *st)
{
    md_ext *x = st->x;
    size_t n = st->tree->n + 2; /* tree inodes: 0 (the target), 1 (the root) .. n + 1 */
    int r;

    x->progress_total = st->total;
    if (st->target_new) {
        r = md_ext_mkdir_p(x, st->o.target, NULL, &st->tino);
        if (r < 0)
            return r;
    }
    st->fsino = calloc(n, sizeof(*st->fsino));
    st->isnew = calloc(n, 1);
    st->pd = calloc(n, sizeof(*st->pd));
    if (!st->fsino || !st->isnew || !st->pd)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    if (st->target_new) {
        st->pd[0].ino = st->tino;
        st->pd[0].mtime = x->epoch;
        st->pd[0].tried = 1;
    }
    return 0;
}

/* Find entry @i's parent directory and what it already holds under the
 * entry's name. */
static int entry_slot(struct populate *st, size_t i, struct slot *sl)
{
    md_ext *x = st->x;
    const struct md_entry *e = st->tree->v[i];
    const char *slash = strrchr(e->path, '/');
    uint32_t parent = st->parent[i];
    int pnew = st->target_new, r;

    sl->name = slash ? slash + 1 : e->path;
    sl->dir = st->tino;
    sl->old = 0;
    sl->pp = &st->pd[0];
    if (parent) {
        if (!st->fsino[parent])
            return md_error(x->ctx, -EIO, "%s: parent directory missing from the tree", e->path);
        sl->dir = st->fsino[parent];
        pnew = st->isnew[parent];
        sl->pp = &st->pd[parent];
    }
    if (!pnew && !sl->pp->tried) {
        /* an existing directory: read its names once, then collect */
        r = md_ext_pdir_open_existing(x, sl->pp, sl->dir);
        if (r < 0)
            return r;
    }
    sl->coll = sl->pp->ino != 0;
    if ((pnew || sl->coll) && sl->pp->ino != sl->dir)
        return md_error(x->ctx, -EIO, "%s: internal error: parent directory not pending", e->path);
    if (sl->coll) {
        sl->old = pnew ? 0 : md_ext_pdir_lookup(sl->pp, sl->name);
    } else {
        errcode_t err = ext2fs_lookup(x->fs, sl->dir, sl->name, (int)strlen(sl->name), NULL,
                                      &sl->old);
        if (err == EXT2_ET_FILE_NOT_FOUND)
            sl->old = 0;
        else if (err)
            return md_ext_error(x->ctx, err, "%s", e->path);
    }
    return 0;
}

/* Enter @ino as the slot's name: collected, or linked at once. */
static int slot_link(struct populate *st, const struct slot *sl, ext2_ino_t ino, uint32_t mode)
{
    return sl->coll ? md_ext_pdir_add(st->x, sl->pp, sl->name, ino, mode)
                    : md_ext_link(st->x, sl->dir, sl->name, ino, mode);
}

/* A directory entry: an existing directory takes its attributes, anything
 * else of that name is replaced by a new directory (which collects its
 * entries). */
static int populate_dir(struct populate *st, const struct md_entry *e, const struct slot *sl)
{
    md_ext *x = st->x;
    ext2_ino_t ino = 0;
    int r;

    if (sl->old) {
        struct ext2_inode inode;
        errcode_t err = ext2fs_read_inode(x->fs, sl->old, &inode);
        if (err)
            return md_ext_error(x->ctx, err, "%s", e->path);
        if (LINUX_S_ISDIR(inode.i_mode)) {
            /* an existing directory keeps its entries, takes the tree's attributes */
            r = apply_attrs(x, sl->old, e);
            if (r == 0)
                r = set_xattrs(x, sl->old, e);
            if (r < 0)
                return r;
            st->fsino[e->ino] = sl->old;
            return 0;
        }
        r = md_ext_unlink(x, sl->dir, sl->name);
        if (r < 0)
            return r;
        md_ext_pdir_forget(sl->pp, sl->name);
    }
    r = md_ext_make_dir(x, sl->dir, sl->name, e->mode, e->uid, e->gid, e->mtime, !sl->coll, &ino);
    if (r == 0 && sl->coll)
        r = md_ext_pdir_add(x, sl->pp, sl->name, ino, S_IFDIR);
    if (r < 0)
        return r;
    st->fsino[e->ino] = ino;
    st->isnew[e->ino] = 1;
    st->pd[e->ino].ino = ino;
    st->pd[e->ino].path = e->path;
    st->pd[e->ino].mtime = e->mtime;
    st->pd[e->ino].tried = 1;
    return set_xattrs(x, ino, e);
}

/* Undo a new, unnamed inode after a failure (md_ext_create_file() frees its
 * own); nothing to do for 0. */
static void drop_new(md_ext *x, ext2_ino_t ino)
{
    struct ext2_inode_large in;
    char msg[MD_ERRMSG_MAX];

    if (!ino)
        return;
    snprintf(msg, sizeof(msg), "%s", md_ctx_errmsg(x->ctx));
    if (md_ext_read_inode(x, ino, &in) == 0 && in.i_links_count)
        (void)md_ext_release_inode(x, ino, &in);
    md_error(x->ctx, 0, "%s", msg); /* the first error is the one to report */
}

/* Is the data of regular entry @e read through a descriptor (a host file or
 * the spool), so that the read-ahead thread can read it? */
static bool fd_data(const struct md_entry *e)
{
    const struct md_entry *d = md_entry_data(e);

    return (d->src == MD_SRC_HOST || d->src == MD_SRC_SPOOL) && d->size > 0;
}

/* Start the read-ahead of every file populate_file() will write, in its
 * order: the first link of each regular file with data in a descriptor.
 * Without it (no memory, no thread) the files are read here: the same bytes. */
static void populate_readahead(struct populate *st)
{
    md_tree *t = st->tree;
    unsigned char *want = calloc(t->n + 1, 1), *seen = calloc(t->n + 2, 1);
    size_t i, n = 0;

    if (want && seen) {
        for (i = 0; i < t->n; i++) {
            const struct md_entry *e = t->v[i];
            if (!S_ISREG(e->mode) || e->ino > t->n + 1 || seen[e->ino])
                continue;
            seen[e->ino] = 1;
            want[i] = fd_data(e);
            n += want[i];
        }
    }
    free(seen);
    st->write_behind = st->x->fresh && md_image_fd(st->x->img) >= 0;
    if (!want || !n ||
        md_ra_start(&st->ra, t, want, MD_EXT_RA_CHUNK, st->x->fs->blocksize,
                    st->write_behind ? md_image_fd(st->x->img) : -1, !st->x->no_sync) < 0) {
        if (!n)
            free(want);
        else
            md_dbg(st->x->ctx, "ext: no read-ahead thread: files are read on the calling thread");
        st->ra = NULL;
        st->write_behind = false;
    }
}

static int populate_file(struct populate *st, ext2_ino_t dir, const struct md_entry *e,
                         ext2_ino_t *ino)
{
    const struct md_entry *m = md_entry_data(e);
    struct md_ext_feed feed = { st->ra, st->cur, e, st->tree, st->write_behind };
    md_ext *x = st->x;
    struct md_data d;
    int r;

    if (st->ra && fd_data(e)) {
        /* opened, checked and read by the read-ahead thread */
        memset(&d, 0, sizeof(d));
        d.fd = -1;
        d.size = m->size;
        d.name = m->src == MD_SRC_HOST ? m->host_path : e->path;
        return md_ext_create_file(x, dir, &d, &feed, e->mode, e->uid, e->gid, e->mtime, e->nlink, ino,
                                  &st->done, &st->o);
    }
    r = md_data_open(st->tree, x->ctx, e, &d);
    if (r < 0)
        return r;
    r = md_ext_create_file(x, dir, &d, NULL, e->mode, e->uid, e->gid, e->mtime, e->nlink, ino,
                           &st->done, &st->o);
    md_data_close(&d);
    return r;
}

/* Any other entry: replaces what is there (but not a directory). */
static int populate_other(struct populate *st, const struct md_entry *e, const struct slot *sl)
{
    md_ext *x = st->x;
    uint32_t type = e->mode & S_IFMT;
    ext2_ino_t ino = 0;
    int r;

    if (sl->old) {
        /* a directory is never replaced: said before anything is written */
        struct ext2_inode oi;
        errcode_t err = ext2fs_read_inode(x->fs, sl->old, &oi);
        if (err)
            return md_ext_error(x->ctx, err, "%s", e->path);
        if (LINUX_S_ISDIR(oi.i_mode))
            return md_error(x->ctx, -EISDIR,
                            "%s: is a directory in the filesystem; cannot replace it", e->path);
    }
    if (type == S_IFREG && st->fsino[e->ino]) {
        /* another link of a file already written */
        ino = st->fsino[e->ino];
    } else {
        /* the new inode complete first: a failure leaves the old file */
        if (type == S_IFREG) {
            r = populate_file(st, sl->dir, e, &ino);
        } else if (type == S_IFLNK) {
            r = create_symlink(x, sl->dir, e->path, e->link, &ino);
            if (r == 0)
                r = apply_attrs(x, ino, e);
        } else {
            r = create_node(x, sl->dir, e, &ino);   /* with owner, mode and mtime */
        }
        if (r == 0)
            r = set_xattrs(x, ino, md_entry_data(e));
        if (r < 0) {
            drop_new(x, ino);
            return r;
        }
        st->fsino[e->ino] = ino;
    }
    if (!sl->old)
        return slot_link(st, sl, ino, e->mode);
    if (!sl->coll)
        return md_ext_replace(x, sl->dir, sl->name, ino, e->mode);
    /* a collected directory: the old name leaves the disk, the new one is
     * written with the directory */
    r = md_ext_unlink(x, sl->dir, sl->name);
    if (r < 0)
        return r;
    md_ext_pdir_forget(sl->pp, sl->name);
    return slot_link(st, sl, ino, e->mode);
}

static int populate_entry(struct populate *st, size_t i)
{
    const struct md_entry *e = st->tree->v[i];
    struct slot sl;
    int r;

    r = entry_slot(st, i, &sl);
    if (r < 0)
        return r;
    if ((e->mode & S_IFMT) == S_IFDIR)
        return populate_dir(st, e, &sl);
    return populate_other(st, e, &sl);
}

static void populate_free(struct populate *st)
{
    size_t i;

    if (st->pd)
        for (i = 0; i <= st->tree->n + 1; i++)
            md_ext_pdir_free(&st->pd[i]);
    free(st->pd);
    free(st->fsino);
    free(st->isnew);
    free(st->parent);
}

MD_API int md_ext_populate(md_ext *x, md_tree *tree, const md_ext_populate_opts *opts)
{
    struct populate st;
    size_t i;
    int r;

    if (!x || !tree)
        return -EINVAL;
    memset(&st, 0, sizeof(st));
    st.x = x;
    st.tree = tree;
    md_ext_populate_opts_init(&st.o);
    st.tino = EXT2_ROOT_INO;
    r = populate_opts(&st, opts);
    if (r == 0)
        r = populate_target(&st);
    if (r < 0)
        return r;

    r = populate_check_space(&st);
    if (r == 0)
        r = populate_prepare(&st);
    if (r == 0)
        populate_readahead(&st);
    for (i = 0; r == 0 && i < tree->n; i++) {
        st.cur = i;
        r = populate_entry(&st, i);
    }
    if (st.ra) {
        /* every byte handed to the writer is in the file before the
         * directories and the metadata that name it */
        size_t bad = 0;
        int k = md_ra_drain(st.ra, &bad);
        if (r == 0 && k < 0)
            r = md_ext_data_write_error(x, tree, bad, k);
    }
    md_ra_stop(st.ra);
    st.ra = NULL;
    /* write the new directories, in tree order: after a failure too, so that
     * every inode made so far is named somewhere (a consistent filesystem,
     * partly filled) */
    for (i = 0; st.pd && i <= tree->n + 1; i++) {
        if (st.pd[i].ino) {
            int r2 = md_ext_pdir_flush(x, &st.pd[i]);
            if (r == 0)
                r = r2;
        }
    }
    /* the root's own attributes, when a source gave them, go to the target
     * directory: last, once nothing else changes it */
    if (r == 0 && tree->root_set) {
        r = apply_attrs(x, st.tino, &tree->root);
        if (r == 0)
            r = set_xattrs(x, st.tino, &tree->root);
    }
    if (r == 0 && st.o.progress && st.o.progress(st.o.userdata, st.total, st.total))
        r = md_error(x->ctx, -ECANCELED, "cancelled");
    populate_free(&st);
    return r;
}
