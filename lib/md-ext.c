/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ext2/3/4 filesystems inside images with libext2fs: errors, accessors,
 * inode helpers, path lookup, open and close.  The other md-ext-*.c files
 * hold format, file data, directories, reading and population (see
 * docs/ext.md); they share md-ext-internal.h.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>

#include "md-ext-internal.h"

/* ---- errors ---------------------------------------------------------------- */

int md_ext_errno(errcode_t err)
{
    if (err > 0 && err < 4096)
        return -(int)err;   /* a plain errno from the io layer */
    switch (err) {
    case EXT2_ET_NO_MEMORY:
        return -ENOMEM;
    case EXT2_ET_BLOCK_ALLOC_FAIL:
    case EXT2_ET_INODE_ALLOC_FAIL:
    case EXT2_ET_DIR_NO_SPACE:
    case EXT2_ET_TOOSMALL:
    case EXT2_ET_RES_GDT_BLOCKS:
    case EXT2_ET_EA_NO_SPACE:
        return -ENOSPC;
    case EXT2_ET_BAD_MAGIC:
    case EXT2_ET_SB_CSUM_INVALID:
    case EXT2_ET_CORRUPT_SUPERBLOCK:
    case EXT2_ET_UNEXPECTED_BLOCK_SIZE:
    case EXT2_ET_INVALID_ARGUMENT:
        return -EINVAL;
    case EXT2_ET_UNSUPP_FEATURE:
    case EXT2_ET_RO_UNSUPP_FEATURE:
    case EXT2_ET_REV_TOO_HIGH:
        return -ENOTSUP;
    case EXT2_ET_FILE_NOT_FOUND:
        return -ENOENT;
    case EXT2_ET_RO_FILSYS:
        return -EROFS;
    case EXT2_ET_DIR_EXISTS:
    case EXT2_ET_FILE_EXISTS:
        return -EEXIST;
    case EXT2_ET_NO_DIRECTORY:
        return -ENOTDIR;
    case EXT2_ET_FILE_TOO_BIG:
        return -EFBIG;
    default:
        return -EIO;
    }
}

/* libext2fs's own text for its codes, read from its table rather than
 * registered with com_err (add_error_table() would change process-wide state
 * behind the application's back); errno values as strerror(). */
const char *md_ext_strerror(errcode_t err)
{
    const struct error_table *t = &et_ext2_error_table;

    if (err >= t->base && err < t->base + t->n_msgs)
        return t->msgs[err - t->base];
    if (err > 0 && err < 4096)
        return strerror((int)err);
    return error_message(err);
}

int md_ext_error(md_ctx *ctx, errcode_t err, const char *fmt, ...)
{
    va_list ap;
    int r;

    /* formatted once, so that a long path in it is shortened, not the reason cut */
    va_start(ap, fmt);
    r = md_verror(ctx, md_ext_errno(err), md_ext_strerror(err), fmt, ap);
    va_end(ap);
    return r;
}

/* ---- accessors ---------------------------------------------------------------- */

ext2_filsys md_ext_fs(md_ext *x)
{
    return x ? x->fs : NULL;
}

uint64_t md_ext_offset(const md_ext *x)
{
    return x ? x->offset : 0;
}

int md_ext_is_rdonly(const md_ext *x)
{
    return x ? x->rdonly : 1;
}

MD_API md_ctx *md_ext_ctx(const md_ext *x)
{
    return x ? x->ctx : NULL;
}

MD_API void md_ext_format_opts_init(md_ext_format_opts *opts)
{
    static const md_ext_format_opts def = MD_EXT_FORMAT_OPTS_INIT;
    if (opts)
        *opts = def;
}

MD_API void md_ext_populate_opts_init(md_ext_populate_opts *opts)
{
    static const md_ext_populate_opts def = MD_EXT_POPULATE_OPTS_INIT;
    if (opts)
        *opts = def;
}

/* ---- small helpers ---------------------------------------------------------- */

uint64_t md_ext_fnv64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n--) {
        h ^= *c++;
        h *= 1099511628211ULL;
    }
    return h;
}

static void set_time(struct ext2_inode_large *in, int full, int64_t t)
{
    uint32_t lo = (uint32_t)t;
    uint32_t extra = (uint32_t)(((t - (int64_t)(int32_t)lo) >> 32) & EXT4_EPOCH_MASK);

    in->i_atime = in->i_ctime = in->i_mtime = lo;
    if (full) {
        in->i_atime_extra = in->i_ctime_extra = in->i_mtime_extra = extra;
        in->i_crtime = lo;
        in->i_crtime_extra = extra;
    }
}

/* Whether the inode has room for the large fields (extra_isize). */
int md_ext_inode_full(ext2_filsys fs)
{
    return EXT2_INODE_SIZE(fs->super) >= sizeof(struct ext2_inode_large);
}

int md_ext_write_inode(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *inode, int64_t t,
                       int is_new)
{
    ext2_filsys fs = x->fs;
    unsigned isize = EXT2_INODE_SIZE(fs->super);
    errcode_t err;

    if (is_new && isize > EXT2_GOOD_OLD_INODE_SIZE) {
        unsigned extra = sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
        if (fs->super->s_want_extra_isize && fs->super->s_want_extra_isize < extra)
            extra = fs->super->s_want_extra_isize;
        if (extra > isize - EXT2_GOOD_OLD_INODE_SIZE)
            extra = isize - EXT2_GOOD_OLD_INODE_SIZE;
        inode->i_extra_isize = (uint16_t)extra;
    }
    set_time(inode, isize > EXT2_GOOD_OLD_INODE_SIZE && inode->i_extra_isize >= 24, t);
    if (is_new) {
        /* write the whole on-disk inode: nothing stale survives past our struct */
        char *buf = calloc(1, isize);
        if (!buf)
            return md_error(x->ctx, -ENOMEM, "out of memory");
        memcpy(buf, inode, isize < sizeof(*inode) ? isize : sizeof(*inode));
        err = ext2fs_write_inode_full(fs, ino, (struct ext2_inode *)buf, (int)isize);
        free(buf);
    } else {
        err = ext2fs_write_inode_full(fs, ino, (struct ext2_inode *)inode,
                                      (int)(isize < sizeof(*inode) ? isize : sizeof(*inode)));
    }
    if (err)
        return md_ext_error(x->ctx, err, "writing inode %u", ino);
    return 0;
}

int md_ext_read_inode(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *inode)
{
    unsigned isize = EXT2_INODE_SIZE(x->fs->super);
    errcode_t err;

    memset(inode, 0, sizeof(*inode));
    err = ext2fs_read_inode_full(x->fs, ino, (struct ext2_inode *)inode,
                                 (int)(isize < sizeof(*inode) ? isize : sizeof(*inode)));
    if (err)
        return md_ext_error(x->ctx, err, "reading inode %u", ino);
    return 0;
}

uint32_t md_ext_uid_of(const struct ext2_inode_large *in)
{
    return in->i_uid | ((uint32_t)in->osd2.linux2.l_i_uid_high << 16);
}

uint32_t md_ext_gid_of(const struct ext2_inode_large *in)
{
    return in->i_gid | ((uint32_t)in->osd2.linux2.l_i_gid_high << 16);
}

void md_ext_set_owner(struct ext2_inode_large *in, uint32_t uid, uint32_t gid)
{
    in->i_uid = (uint16_t)uid;
    in->osd2.linux2.l_i_uid_high = (uint16_t)(uid >> 16);
    in->i_gid = (uint16_t)gid;
    in->osd2.linux2.l_i_gid_high = (uint16_t)(gid >> 16);
}

int64_t md_ext_inode_mtime(const struct ext2_inode_large *in, int full)
{
    int64_t t = (int32_t)in->i_mtime;
    if (full)
        t += (int64_t)(in->i_mtime_extra & EXT4_EPOCH_MASK) << 32;
    return t;
}

int md_ext_ftype_of(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return EXT2_FT_REG_FILE;
    case S_IFDIR: return EXT2_FT_DIR;
    case S_IFLNK: return EXT2_FT_SYMLINK;
    case S_IFCHR: return EXT2_FT_CHRDEV;
    case S_IFBLK: return EXT2_FT_BLKDEV;
    case S_IFIFO: return EXT2_FT_FIFO;
    case S_IFSOCK: return EXT2_FT_SOCK;
    default: return EXT2_FT_UNKNOWN;
    }
}

int md_ext_is_zero(const char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

int md_ext_new_inode(md_ext *x, ext2_ino_t dir, uint32_t mode, ext2_ino_t *ino)
{
    errcode_t err = ext2fs_new_inode(x->fs, dir, (int)mode, NULL, ino);
    if (err)
        return md_ext_error(x->ctx, err, "allocating an inode");
    ext2fs_inode_alloc_stats2(x->fs, *ino, +1, LINUX_S_ISDIR(mode));
    return 0;
}

int md_ext_attr_values(md_ext *x, const md_attr *attr, uint32_t defmode, uint32_t *mode,
                       uint32_t *uid, uint32_t *gid, int64_t *mtime)
{
    if (attr && attr->version != MD_ATTR_VERSION)
        return md_check_version(x->ctx, "md_attr", attr->version, MD_ATTR_VERSION);
    /* any bit set (MD_ATTR_MODE_SET with 0) means the bits as given */
    *mode = (attr && attr->mode) ? (attr->mode & 07777) : defmode;
    *uid = attr ? attr->uid : 0;
    *gid = attr ? attr->gid : 0;
    *mtime = (attr && attr->mtime != MD_MTIME_DEFAULT) ? attr->mtime : x->epoch;
    if (x->has_epoch && (*mtime < 0 || *mtime > x->epoch))
        *mtime = x->epoch;
    return 0;
}

int md_ext_check_rw(md_ext *x)
{
    if (x->rdonly)
        return md_error(x->ctx, -EROFS, "filesystem was opened read-only");
    return 0;
}

/* ---- paths ------------------------------------------------------------------- */

/* Walk @norm (normalised, "" = root) component by component. */
static int walk(md_ext *x, const char *norm, const char *orig, ext2_ino_t *ret)
{
    ext2_ino_t cur = EXT2_ROOT_INO;
    const char *p = norm;

    while (*p) {
        const char *s = p;
        struct ext2_inode inode;
        ext2_ino_t next;
        errcode_t err;

        while (*p && *p != '/')
            p++;
        err = ext2fs_read_inode(x->fs, cur, &inode);
        if (err)
            return md_ext_error(x->ctx, err, "%s", orig);
        if (!LINUX_S_ISDIR(inode.i_mode))
            return md_error(x->ctx, -ENOTDIR, "%s: '%.*s' is not a directory", orig,
                            (int)(s - norm - 1 > 0 ? s - norm - 1 : 0), norm);
        err = ext2fs_lookup(x->fs, cur, s, (int)(p - s), NULL, &next);
        if (err == EXT2_ET_FILE_NOT_FOUND)
            return md_error(x->ctx, -ENOENT, "%s: no such file or directory in the filesystem", orig);
        if (err)
            return md_ext_error(x->ctx, err, "%s", orig);
        cur = next;
        if (*p == '/')
            p++;
    }
    *ret = cur;
    return 0;
}

int md_ext_lookup(md_ext *x, const char *path, ext2_ino_t *ino)
{
    char *norm;
    int r;

    if (!x || !path)
        return -EINVAL;
    r = md_path_normalize(x->ctx, path, &norm);
    if (r < 0)
        return r;
    r = walk(x, norm, path, ino);
    free(norm);
    return r;
}

int md_ext_lookup_parent(md_ext *x, const char *path, ext2_ino_t *dir, char **name_buf,
                         const char **name)
{
    char *norm, *slash;
    int r;

    r = md_path_normalize(x->ctx, path, &norm);
    if (r < 0)
        return r;
    if (!*norm) {
        free(norm);
        return md_error(x->ctx, -EINVAL, "%s: names the root directory", path);
    }
    slash = strrchr(norm, '/');
    if (slash) {
        *slash = '\0';
        r = walk(x, norm, path, dir);
        *name = slash + 1;
    } else {
        *dir = EXT2_ROOT_INO;
        *name = norm;
    }
    if (r == 0) {
        struct ext2_inode inode;
        errcode_t err = ext2fs_read_inode(x->fs, *dir, &inode);
        if (err)
            r = md_ext_error(x->ctx, err, "%s", path);
        else if (!LINUX_S_ISDIR(inode.i_mode))
            r = md_error(x->ctx, -ENOTDIR, "%s: parent is not a directory", path);
    }
    if (r < 0) {
        free(norm);
        return r;
    }
    *name_buf = norm;
    return 0;
}

int md_ext_link(md_ext *x, ext2_ino_t dir, const char *name, ext2_ino_t ino, uint32_t mode)
{
    errcode_t err;
    int tries;

    for (tries = 0; tries < 2; tries++) {
        err = ext2fs_link(x->fs, dir, name, ino, md_ext_ftype_of(mode));
        if (err != EXT2_ET_DIR_NO_SPACE)
            break;
        err = ext2fs_expand_dir(x->fs, dir);
        if (err)
            break;
    }
    if (err)
        return md_ext_error(x->ctx, err, "adding '%s' to directory inode %u", name, dir);
    return 0;
}

int md_ext_release_inode(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in)
{
    x->fresh = false; /* its blocks may be handed out again */
    ext2_filsys fs = x->fs;
    blk64_t acl;
    errcode_t err;

    if (ext2fs_inode_has_valid_blocks2(fs, (struct ext2_inode *)in)) {
        err = ext2fs_punch(fs, ino, (struct ext2_inode *)in, NULL, 0, ~0ULL);
        if (err)
            return md_ext_error(x->ctx, err, "freeing the blocks of inode %u", ino);
    }
    acl = ext2fs_file_acl_block(fs, (struct ext2_inode *)in);
    if (acl) {
        __u32 count = 0;
        err = ext2fs_adjust_ea_refcount3(fs, acl, NULL, -1, &count, ino);
        if (err)
            return md_ext_error(x->ctx, err, "freeing the xattr block of inode %u", ino);
        if (count == 0)
            ext2fs_block_alloc_stats2(fs, acl, -1);
        ext2fs_file_acl_block_set(fs, (struct ext2_inode *)in, 0);
    }
    in->i_links_count = 0;
    in->i_dtime = (uint32_t)(x->has_epoch ? x->epoch : time(NULL));
    ext2fs_inode_alloc_stats2(fs, ino, -1, LINUX_S_ISDIR(in->i_mode));
    return md_ext_write_inode(x, ino, in, md_ext_inode_mtime(in, 0), 0);
}

int md_ext_unlink(md_ext *x, ext2_ino_t dir, const char *name)
{
    struct ext2_inode_large in;
    ext2_ino_t ino;
    errcode_t err;
    int r;

    err = ext2fs_lookup(x->fs, dir, name, (int)strlen(name), NULL, &ino);
    if (err)
        return md_ext_error(x->ctx, err, "'%s'", name);
    r = md_ext_read_inode(x, ino, &in);
    if (r < 0)
        return r;
    if (LINUX_S_ISDIR(in.i_mode))
        return md_error(x->ctx, -EISDIR, "'%s' is a directory in the filesystem; not replacing it",
                        name);
    err = ext2fs_unlink(x->fs, dir, name, ino, 0);
    if (err)
        return md_ext_error(x->ctx, err, "removing '%s'", name);
    if (in.i_links_count > 1) {
        in.i_links_count--;
        return md_ext_write_inode(x, ino, &in,
                                  md_ext_inode_mtime(&in, md_ext_inode_full(x->fs)), 0);
    }
    return md_ext_release_inode(x, ino, &in);
}

/* Drop one link of inode @ino: the inode goes with its last link. */
static int drop_link(md_ext *x, ext2_ino_t ino)
{
    struct ext2_inode_large in;
    int r = md_ext_read_inode(x, ino, &in);

    if (r < 0)
        return r;
    if (in.i_links_count > 1) {
        in.i_links_count--;
        return md_ext_write_inode(x, ino, &in, md_ext_inode_mtime(&in, md_ext_inode_full(x->fs)), 0);
    }
    return md_ext_release_inode(x, ino, &in);
}

struct replace {
    const char *name;
    size_t len;
    ext2_ino_t ino, old;
    int ftype;
};

static int replace_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset, int blocksize,
                      char *buf, void *priv)
{
    struct replace *rp = priv;
    (void)dir;
    (void)entry;
    (void)offset;
    (void)blocksize;
    (void)buf;

    if (!de->inode || (size_t)ext2fs_dirent_name_len(de) != rp->len || memcmp(de->name, rp->name, rp->len))
        return 0;
    rp->old = de->inode;
    de->inode = rp->ino;
    ext2fs_dirent_set_file_type(de, rp->ftype);
    return DIRENT_CHANGED | DIRENT_ABORT;
}

int md_ext_replace(md_ext *x, ext2_ino_t dir, const char *name, ext2_ino_t ino, uint32_t mode)
{
    struct replace rp = { name, strlen(name), ino, 0, 0 };
    errcode_t err;

    rp.ftype = ext2fs_has_feature_filetype(x->fs->super) ? md_ext_ftype_of(mode) : 0;
    /* one directory entry rewritten in place: the old file is there until
     * the new one, complete, takes its name */
    err = ext2fs_dir_iterate2(x->fs, dir, 0, NULL, replace_cb, &rp);
    if (err)
        return md_ext_error(x->ctx, err, "replacing '%s' in directory inode %u", name, dir);
    if (!rp.old)
        return md_ext_link(x, dir, name, ino, mode);
    return drop_link(x, rp.old);
}

/* ---- open / close -------------------------------------------------------------- */

void md_ext_init_handle(md_ext *x, md_image *img, uint64_t off, uint64_t size)
{
    x->ctx = md_ctx_ref(md_image_ctx(img));
    x->img = img;
    x->offset = off;
    x->size = size;
    x->epoch = md_ctx_get_epoch(x->ctx);
    x->has_epoch = md_ctx_has_epoch(x->ctx);
}

/* ext2fs_open2() at the partition's offset; a missing filesystem is named
 * as such rather than as libext2fs's "bad magic number". */
static int open_fs(md_ext *x, uint32_t partno, int oflags)
{
    const char *name = md_image_name(x->img);
    char iopt[64];
    errcode_t err;

    snprintf(iopt, sizeof(iopt), "offset=%llu", (unsigned long long)x->offset);
    err = ext2fs_open2(md_image_path(x->img), iopt, oflags, 0, 0, unix_io_manager, &x->fs);
    if (!err)
        return 0;
    x->fs = NULL;
    if (err == EXT2_ET_BAD_MAGIC)
        return partno ? md_error(x->ctx, -EINVAL, "%s: no ext2/ext3/ext4 filesystem on partition %u",
                                 name, partno)
                      : md_error(x->ctx, -EINVAL, "%s: no ext2/ext3/ext4 filesystem on the whole image "
                                 "(partition 0)", name);
    return md_ext_error(x->ctx, err, "%s: opening the filesystem on partition %u", name, partno);
}

/* Refuse what we cannot use safely, then load the bitmaps. */
static int check_opened(md_ext *x, uint32_t partno)
{
    const char *name = md_image_name(x->img);
    uint64_t fs_bytes = ext2fs_blocks_count(x->fs->super) * x->fs->blocksize;
    md_ctx *ctx = x->ctx;
    errcode_t err;

    if (fs_bytes > x->size)
        return md_error(ctx, -EINVAL, "%s: filesystem on partition %u (%llu bytes) is larger than the partition (%llu bytes)",
                        name, partno, (unsigned long long)fs_bytes, (unsigned long long)x->size);
    if (!x->rdonly && ext2fs_has_feature_journal_needs_recovery(x->fs->super))
        return md_error(ctx, -EBUSY, "%s: filesystem on partition %u needs journal recovery (run e2fsck first)",
                        name, partno);
    if (!x->rdonly && ext2fs_has_feature_inline_data(x->fs->super))
        return md_error(ctx, -ENOTSUP, "%s: filesystem on partition %u uses inline_data: writing is not supported",
                        name, partno);
    /* as e2fsck does before trusting the group descriptors: libext2fs reads
     * the bitmaps wherever they say, and overflows its buffers on some bad
     * values (found by tests/fuzz/fuzz-image) */
    err = ext2fs_check_desc(x->fs);
    if (err)
        return md_ext_error(ctx, err, "%s: filesystem on partition %u is corrupt (run e2fsck)",
                            name, partno);
    err = ext2fs_read_bitmaps(x->fs);
    if (err)
        return md_ext_error(ctx, err, "%s: reading the bitmaps of partition %u", name, partno);
    return md_ext_inode_cache(x);
}

int md_ext_inode_cache(md_ext *x)
{
    /* libext2fs makes its inode cache on the first inode read, and its
     * out-of-memory path there (1.47.0) frees an uninitialised array and
     * leaves a dangling cache behind: made here, at a known point, the
     * later reads never take that path */
    errcode_t err = ext2fs_create_inode_cache(x->fs, 4);
    if (err)
        return md_ext_error(x->ctx, err, "%s: the inode cache", md_image_name(x->img));
    return 0;
}

MD_API int md_ext_open(md_image *img, uint32_t partno, uint32_t flags, md_ext **ret)
{
    uint64_t off, size;
    md_ctx *ctx;
    md_ext *x;
    int r, oflags = EXT2_FLAG_64BITS;

    if (!img || !ret)
        return -EINVAL;
    *ret = NULL;
    ctx = md_image_ctx(img);
    if (flags & ~MD_EXT_RDONLY)
        return md_error(ctx, -EINVAL, "unknown open flags 0x%x", flags);
    if (!(flags & MD_EXT_RDONLY) && md_image_is_rdonly(img))
        return md_error(ctx, -EROFS, "%s: opened read-only; cannot open its filesystem for writing",
                        md_image_name(img));
    r = md_image_partition_range(img, partno, &off, &size);
    if (r < 0)
        return r;
    x = calloc(1, sizeof(*x));
    if (!x)
        return md_error(ctx, -ENOMEM, "out of memory");
    md_ext_init_handle(x, img, off, size);
    x->rdonly = !!(flags & MD_EXT_RDONLY);
    if (!x->rdonly)
        oflags |= EXT2_FLAG_RW;
    r = open_fs(x, partno, oflags);
    if (r == 0)
        r = check_opened(x, partno);
    if (r < 0) {
        md_ext_free(x);
        return r;
    }
    if (x->has_epoch)
        x->fs->now = (time_t)x->epoch;
    x->fs->umask = 0;
    *ret = x;
    return 0;
}

MD_API int md_ext_close(md_ext *x)
{
    errcode_t err = 0;
    int r = 0;

    if (!x)
        return 0;
    if (x->fs) {
        if (!x->rdonly && x->has_epoch)
            x->fs->super->s_mtime = x->fs->super->s_mtime ? (uint32_t)x->epoch : 0;
        /* ext2fs_close_free(), whose flags cannot be given: MD_DISK_NO_SYNC
         * skips the io channel's fsync */
        err = ext2fs_close2(x->fs, x->no_sync ? EXT2_FLAG_FLUSH_NO_SYNC : 0);
        if (err)
            ext2fs_free(x->fs);
        x->fs = NULL;
        if (err)
            r = md_ext_error(x->ctx, err, "%s: writing the filesystem", md_image_name(x->img));
    }
    md_ctx_unref(x->ctx);
    free(x);
    return r;
}

MD_API void md_ext_free(md_ext *x)
{
    if (!x)
        return;
    if (x->fs) {
        /* drop everything pending: no flush */
        x->fs->flags &= ~(EXT2_FLAG_DIRTY | EXT2_FLAG_IB_DIRTY | EXT2_FLAG_BB_DIRTY | EXT2_FLAG_RW);
        ext2fs_free(x->fs);
    }
    md_ctx_unref(x->ctx);
    free(x);
}
