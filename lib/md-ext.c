/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ext2/3/4 filesystems inside images with libext2fs: format (the steps of
 * mke2fs), open, single-entry operations and population from an md_tree.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>
#include <ext2fs/ext3_extents.h>

#include "md-ext-internal.h"

struct md_ext {
    md_ctx *ctx;
    md_image *img;
    ext2_filsys fs;
    uint64_t offset;     /* byte offset of the filesystem in the image */
    uint64_t size;       /* bytes available to it */
    int rdonly;
    int64_t epoch;
    blk64_t goal;        /* next data block goal: keeps files packed in order */
    uint64_t progress_total;  /* bytes of file data of the running populate */
};

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

int md_ext_error(md_ctx *ctx, errcode_t err, const char *fmt, ...)
{
    char buf[MD_ERRMSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return md_error(ctx, md_ext_errno(err), "%s: %s", buf, error_message(err));
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

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void uuid_from_seed(uint64_t seed, uint8_t out[16])
{
    uint64_t a = splitmix64(&seed), b = splitmix64(&seed);
    int i;

    for (i = 0; i < 8; i++) {
        out[i] = (uint8_t)(a >> (8 * i));
        out[8 + i] = (uint8_t)(b >> (8 * i));
    }
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40); /* version 4 */
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

static uint64_t fnv64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n--) {
        h ^= *c++;
        h *= 1099511628211ULL;
    }
    return h;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Accepts the canonical 8-4-4-4-12 form (dashes optional). */
static int parse_uuid(const char *s, uint8_t out[16])
{
    int n = 0;

    while (*s && n < 32) {
        int v;
        if (*s == '-') {
            s++;
            continue;
        }
        v = hexval((unsigned char)*s);
        if (v < 0)
            return -EINVAL;
        if (n % 2 == 0)
            out[n / 2] = (uint8_t)(v << 4);
        else
            out[n / 2] |= (uint8_t)v;
        n++;
        s++;
    }
    return (n == 32 && !*s) ? 0 : -EINVAL;
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
static int inode_full(ext2_filsys fs)
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

static int read_inode(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *inode)
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

static void set_owner(struct ext2_inode_large *in, uint32_t uid, uint32_t gid)
{
    in->i_uid = (uint16_t)uid;
    in->osd2.linux2.l_i_uid_high = (uint16_t)(uid >> 16);
    in->i_gid = (uint16_t)gid;
    in->osd2.linux2.l_i_gid_high = (uint16_t)(gid >> 16);
}

static uint32_t ext_uid_of(const struct ext2_inode_large *in)
{
    return in->i_uid | ((uint32_t)in->osd2.linux2.l_i_uid_high << 16);
}

static uint32_t ext_gid_of(const struct ext2_inode_large *in)
{
    return in->i_gid | ((uint32_t)in->osd2.linux2.l_i_gid_high << 16);
}

static int64_t inode_mtime(const struct ext2_inode_large *in, int full)
{
    int64_t t = (int32_t)in->i_mtime;
    if (full)
        t += (int64_t)(in->i_mtime_extra & EXT4_EPOCH_MASK) << 32;
    return t;
}

static int ftype_of(uint32_t mode)
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
        err = ext2fs_link(x->fs, dir, name, ino, ftype_of(mode));
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

static int release_inode(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in)
{
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
    in->i_dtime = (uint32_t)(x->epoch > 0 ? x->epoch : time(NULL));
    ext2fs_inode_alloc_stats2(fs, ino, -1, LINUX_S_ISDIR(in->i_mode));
    return md_ext_write_inode(x, ino, in, inode_mtime(in, 0), 0);
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
    r = read_inode(x, ino, &in);
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
        return md_ext_write_inode(x, ino, &in, inode_mtime(&in, inode_full(x->fs)), 0);
    }
    return release_inode(x, ino, &in);
}

/* ---- format ------------------------------------------------------------------- */

enum { F_COMPAT, F_INCOMPAT, F_RO };

static const struct feature {
    const char *name;
    int type;
    uint32_t mask;
    const char *refuse;   /* non-NULL: why it is not supported */
} features[] = {
    { "dir_index", F_COMPAT, EXT2_FEATURE_COMPAT_DIR_INDEX, NULL },
    { "ext_attr", F_COMPAT, EXT2_FEATURE_COMPAT_EXT_ATTR, NULL },
    { "resize_inode", F_COMPAT, EXT2_FEATURE_COMPAT_RESIZE_INODE, NULL },
    { "has_journal", F_COMPAT, EXT3_FEATURE_COMPAT_HAS_JOURNAL, NULL },
    { "sparse_super2", F_COMPAT, EXT4_FEATURE_COMPAT_SPARSE_SUPER2, "not supported by this tool" },
    { "fast_commit", F_COMPAT, EXT4_FEATURE_COMPAT_FAST_COMMIT, "not supported by this tool" },
    { "stable_inodes", F_COMPAT, EXT4_FEATURE_COMPAT_STABLE_INODES, "not supported by this tool" },
    { "sparse_super", F_RO, EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER, NULL },
    { "large_file", F_RO, EXT2_FEATURE_RO_COMPAT_LARGE_FILE, NULL },
    { "huge_file", F_RO, EXT4_FEATURE_RO_COMPAT_HUGE_FILE, NULL },
    { "uninit_bg", F_RO, EXT4_FEATURE_RO_COMPAT_GDT_CSUM, NULL },
    { "dir_nlink", F_RO, EXT4_FEATURE_RO_COMPAT_DIR_NLINK, NULL },
    { "extra_isize", F_RO, EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE, NULL },
    { "metadata_csum", F_RO, EXT4_FEATURE_RO_COMPAT_METADATA_CSUM, NULL },
    { "quota", F_RO, EXT4_FEATURE_RO_COMPAT_QUOTA, "not supported by this tool" },
    { "bigalloc", F_RO, EXT4_FEATURE_RO_COMPAT_BIGALLOC, "not supported (boot loaders cannot read it)" },
    { "project", F_RO, EXT4_FEATURE_RO_COMPAT_PROJECT, "not supported by this tool" },
    { "verity", F_RO, EXT4_FEATURE_RO_COMPAT_VERITY, "not supported by this tool" },
    { "orphan_present", F_RO, EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT, "not supported by this tool" },
    { "filetype", F_INCOMPAT, EXT2_FEATURE_INCOMPAT_FILETYPE, NULL },
    { "extent", F_INCOMPAT, EXT3_FEATURE_INCOMPAT_EXTENTS, NULL },
    { "extents", F_INCOMPAT, EXT3_FEATURE_INCOMPAT_EXTENTS, NULL },
    { "flex_bg", F_INCOMPAT, EXT4_FEATURE_INCOMPAT_FLEX_BG, NULL },
    { "64bit", F_INCOMPAT, EXT4_FEATURE_INCOMPAT_64BIT, NULL },
    { "meta_bg", F_INCOMPAT, EXT2_FEATURE_INCOMPAT_META_BG, "not supported by this tool" },
    { "mmp", F_INCOMPAT, EXT4_FEATURE_INCOMPAT_MMP, "not supported by this tool" },
    { "inline_data", F_INCOMPAT, EXT4_FEATURE_INCOMPAT_INLINE_DATA,
      "not supported (syslinux cannot boot from it)" },
    { "encrypt", F_INCOMPAT, EXT4_FEATURE_INCOMPAT_ENCRYPT, "not supported by this tool" },
    { "casefold", F_INCOMPAT, EXT4_FEATURE_INCOMPAT_CASEFOLD, "not supported by this tool" },
    { "ea_inode", F_INCOMPAT, EXT4_FEATURE_INCOMPAT_EA_INODE, "not supported by this tool" },
    { "large_dir", F_INCOMPAT, EXT4_FEATURE_INCOMPAT_LARGEDIR, "not supported by this tool" },
    { "journal_dev", F_INCOMPAT, EXT3_FEATURE_INCOMPAT_JOURNAL_DEV, "not supported by this tool" },
    { "csum_seed", F_INCOMPAT, EXT4_FEATURE_INCOMPAT_CSUM_SEED, "not supported by this tool" },
};

static uint32_t *feature_word(struct ext2_super_block *sb, int type)
{
    switch (type) {
    case F_COMPAT: return &sb->s_feature_compat;
    case F_INCOMPAT: return &sb->s_feature_incompat;
    default: return &sb->s_feature_ro_compat;
    }
}

/* Apply "a,^b,c" (comma or space separated) to @sb. */
static int apply_features(md_ctx *ctx, struct ext2_super_block *sb, const char *list)
{
    const char *p = list;

    while (*p) {
        const char *s;
        size_t n, i;
        int neg = 0;

        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (*p == '^' || *p == '-') {
            neg = 1;
            p++;
        } else if (*p == '+') {
            p++;
        }
        s = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        n = (size_t)(p - s);
        for (i = 0; i < sizeof(features) / sizeof(features[0]); i++)
            if (strlen(features[i].name) == n && !strncmp(features[i].name, s, n))
                break;
        if (i == sizeof(features) / sizeof(features[0]))
            return md_error(ctx, -EINVAL, "unknown filesystem feature '%.*s'", (int)n, s);
        if (neg) {
            *feature_word(sb, features[i].type) &= ~features[i].mask;
        } else {
            if (features[i].refuse)
                return md_error(ctx, -EINVAL, "filesystem feature '%s' is %s", features[i].name,
                                features[i].refuse);
            *feature_word(sb, features[i].type) |= features[i].mask;
        }
    }
    return 0;
}

static int get_range(md_ctx *ctx, md_image *img, uint32_t partno, uint64_t *off, uint64_t *size)
{
    int r = md_image_partition_range(img, partno, off, size);
    if (r < 0)
        return r;
    if (*size < 64 * 1024)
        return md_error(ctx, -ENOSPC, "%s: partition %u is too small for a filesystem (%llu bytes)",
                        md_image_name(img), partno, (unsigned long long)*size);
    return 0;
}

/* Make the byte range read back as zeros without writing data (holes). */
static int clear_range(md_ctx *ctx, const char *path, uint64_t off, uint64_t size)
{
    static char zeros[1 << 16];
    int fd = open(path, O_RDWR | O_CLOEXEC);
    int r = 0;

    if (fd < 0)
        return md_error_errno(ctx, errno == EACCES ? -EROFS : -errno, "%s", path);
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)size) < 0) {
        /* no hole punching here: write zeros */
        uint64_t done = 0;
        while (done < size && r == 0) {
            size_t n = size - done < sizeof(zeros) ? (size_t)(size - done) : sizeof(zeros);
            r = md_pwrite_full(fd, zeros, n, off + done);
            done += n;
        }
        if (r < 0)
            md_error_errno(ctx, r, "%s: clearing the filesystem area", path);
    }
    close(fd);
    return r;
}

static void new_ext(md_ext *x, md_image *img, uint64_t off, uint64_t size)
{
    x->ctx = md_ctx_ref(md_image_ctx(img));
    x->img = img;
    x->offset = off;
    x->size = size;
    x->epoch = md_ctx_get_epoch(x->ctx);
}

static int make_root_and_lpf(md_ext *x)
{
    ext2_filsys fs = x->fs;
    struct ext2_inode_large in;
    ext2_ino_t lpf;
    unsigned lpf_size = 0;
    errcode_t err;
    int i, r;

    err = ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, NULL);
    if (err)
        return md_ext_error(x->ctx, err, "creating the root directory");
    err = ext2fs_new_inode(fs, EXT2_ROOT_INO, LINUX_S_IFDIR | 0700, NULL, &lpf);
    if (err)
        return md_ext_error(x->ctx, err, "creating lost+found");
    err = ext2fs_mkdir(fs, EXT2_ROOT_INO, lpf, NULL);
    if (!err)
        err = ext2fs_link(fs, EXT2_ROOT_INO, "lost+found", lpf, EXT2_FT_DIR);
    if (err)
        return md_ext_error(x->ctx, err, "creating lost+found");
    /* as mke2fs: room for entries without allocation during e2fsck */
    for (i = 1; i < EXT2_NDIR_BLOCKS; i++) {
        if ((lpf_size += fs->blocksize) >= 16 * 1024 && lpf_size >= 2 * fs->blocksize)
            break;
        err = ext2fs_expand_dir(fs, lpf);
        if (err)
            return md_ext_error(x->ctx, err, "expanding lost+found");
    }
    r = read_inode(x, lpf, &in);
    if (r < 0)
        return r;
    in.i_mode = LINUX_S_IFDIR | 0700;
    r = md_ext_write_inode(x, lpf, &in, x->epoch, 0);
    if (r < 0)
        return r;
    r = read_inode(x, EXT2_ROOT_INO, &in);
    if (r < 0)
        return r;
    return md_ext_write_inode(x, EXT2_ROOT_INO, &in, x->epoch, 0);
}

MD_API int md_ext_format(md_image *img, uint32_t partno, const md_ext_format_opts *opts,
                         md_ext **ret)
{
    md_ext_format_opts o = MD_EXT_FORMAT_OPTS_INIT;
    struct ext2_super_block param;
    struct ext2fs_journal_params jparams;
    uint64_t off, size, blocks, inodes;
    uint32_t bs, ratio;
    const char *path;
    char iopt[64];
    uint8_t uuid[16];
    md_ctx *ctx;
    md_ext *x;
    errcode_t err;
    dgrp_t g;
    int r, log_bs = 0;
    ext2_ino_t i;

    if (ret)
        *ret = NULL;
    if (!img)
        return -EINVAL;
    ctx = md_image_ctx(img);
    if (opts) {
        if (opts->version < 1 || opts->version > MD_EXT_FORMAT_OPTS_VERSION)
            return md_check_version(ctx, "md_ext_format_opts", opts->version,
                                    MD_EXT_FORMAT_OPTS_VERSION);
        o = *opts;
    }
    if (o.fs_type != MD_EXT2 && o.fs_type != MD_EXT3 && o.fs_type != MD_EXT4)
        return md_error(ctx, -EINVAL, "unknown filesystem type %d (expected 2, 3 or 4)", o.fs_type);
    if (o.block_size && o.block_size != 1024 && o.block_size != 2048 && o.block_size != 4096)
        return md_error(ctx, -EINVAL, "block size %u: must be 1024, 2048 or 4096", o.block_size);
    if (o.inode_size && (o.inode_size < 128 || o.inode_size > 1024 ||
                         (o.inode_size & (o.inode_size - 1))))
        return md_error(ctx, -EINVAL, "inode size %u: must be a power of two from 128 to 1024",
                        o.inode_size);
    if (o.reserved_percent != MD_EXT_RESERVED_DEFAULT &&
        (o.reserved_percent < 0 || o.reserved_percent > 50))
        return md_error(ctx, -EINVAL, "reserved blocks percentage %d: must be 0..50",
                        o.reserved_percent);
    if (o.label && strlen(o.label) > EXT2_LABEL_LEN)
        return md_error(ctx, -EINVAL, "label '%s' is longer than %d bytes", o.label, EXT2_LABEL_LEN);
    if (o.uuid && parse_uuid(o.uuid, uuid) < 0)
        return md_error(ctx, -EINVAL, "'%s' is not a UUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                        o.uuid);
    if (o.flags)
        return md_error(ctx, -EINVAL, "unknown format flags 0x%x", o.flags);

    memset(&param, 0, sizeof(param));
    param.s_feature_compat = EXT2_FEATURE_COMPAT_RESIZE_INODE | EXT2_FEATURE_COMPAT_DIR_INDEX |
                             EXT2_FEATURE_COMPAT_EXT_ATTR;
    param.s_feature_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT2_FEATURE_RO_COMPAT_LARGE_FILE;
    param.s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE;
    if (o.fs_type >= MD_EXT3)
        param.s_feature_compat |= EXT3_FEATURE_COMPAT_HAS_JOURNAL;
    if (o.fs_type == MD_EXT4) {
        param.s_feature_incompat |= EXT3_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_FLEX_BG |
                                    EXT4_FEATURE_INCOMPAT_64BIT;
        param.s_feature_ro_compat |= EXT4_FEATURE_RO_COMPAT_HUGE_FILE |
                                     EXT4_FEATURE_RO_COMPAT_METADATA_CSUM |
                                     EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
                                     EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE;
    }
    if (o.features) {
        r = apply_features(ctx, &param, o.features);
        if (r < 0)
            return r;
    }
    if (ext2fs_has_feature_metadata_csum(&param))
        ext2fs_clear_feature_gdt_csum(&param);
    if (ext2fs_has_feature_64bit(&param) && !ext2fs_has_feature_extents(&param))
        return md_error(ctx, -EINVAL, "feature '64bit' needs 'extent'");
    if (ext2fs_has_feature_resize_inode(&param) && !ext2fs_has_feature_sparse_super(&param))
        ext2fs_clear_feature_resize_inode(&param);

    r = get_range(ctx, img, partno, &off, &size);
    if (r < 0)
        return r;

    /* mke2fs.conf's size types */
    bs = o.block_size;
    ratio = o.inode_ratio;
    if (size < 3ULL << 20) {
        if (!bs) bs = 1024;
        if (!ratio) ratio = 8192;
    } else if (size < 512ULL << 20) {
        if (!bs) bs = 1024;
        if (!ratio) ratio = 4096;
    } else if (size < 4ULL << 40) {
        if (!bs) bs = 4096;
        if (!ratio) ratio = 16384;
    } else if (size < 16ULL << 40) {
        if (!bs) bs = 4096;
        if (!ratio) ratio = 32768;
    } else {
        if (!bs) bs = 4096;
        if (!ratio) ratio = 65536;
    }
    if (ratio < bs)
        ratio = bs;
    while ((1024u << log_bs) < bs)
        log_bs++;
    blocks = size / bs;
    if (!ext2fs_has_feature_64bit(&param) && blocks > 0xffffffffULL)
        blocks = 0xffffffffULL;
    inodes = o.inode_count ? o.inode_count : blocks * bs / ratio;
    if (inodes > 0xffffffffULL)
        inodes = 0xffffffffULL;
    if (inodes < 16)
        inodes = 16;

    param.s_rev_level = EXT2_DYNAMIC_REV;
    param.s_log_block_size = (uint32_t)log_bs;
    param.s_log_cluster_size = (uint32_t)log_bs;
    ext2fs_blocks_count_set(&param, blocks);
    param.s_inodes_count = (uint32_t)inodes;
    param.s_inode_size = (uint16_t)(o.inode_size ? o.inode_size : 256);
    ext2fs_r_blocks_count_set(&param, blocks *
                              (uint64_t)(o.reserved_percent == MD_EXT_RESERVED_DEFAULT ? 5 : o.reserved_percent) / 100);
    if (ext2fs_has_feature_flex_bg(&param))
        param.s_log_groups_per_flex = 4;
    if (ext2fs_has_feature_64bit(&param))
        param.s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
    if (param.s_inode_size >= sizeof(struct ext2_inode_large)) {
        param.s_min_extra_isize = param.s_want_extra_isize =
            sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
    } else {
        ext2fs_clear_feature_extra_isize(&param);
    }
    param.s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;

    path = md_image_path(img);
    r = clear_range(ctx, path, off, size);
    if (r < 0)
        return r;

    x = calloc(1, sizeof(*x));
    if (!x)
        return md_error(ctx, -ENOMEM, "out of memory");
    new_ext(x, img, off, size);

    err = ext2fs_initialize(path, EXT2_FLAG_64BITS, &param, unix_io_manager, &x->fs);
    if (err) {
        r = md_ext_error(ctx, err, "%s: cannot make a filesystem of %llu blocks of %u bytes on partition %u",
                         md_image_name(img), (unsigned long long)blocks, bs, partno);
        goto fail;
    }
    snprintf(iopt, sizeof(iopt), "offset=%llu", (unsigned long long)off);
    err = io_channel_set_options(x->fs->io, iopt);
    if (err) {
        r = md_ext_error(ctx, err, "%s: setting the partition offset", path);
        goto fail;
    }
    if (x->epoch > 0)
        x->fs->now = (time_t)x->epoch;
    x->fs->umask = 0;

    /* identity: UUID, hash seed, label, times */
    if (!o.uuid) {
        if (x->epoch > 0) {
            uint64_t seed = fnv64(1469598103934665603ULL, &x->epoch, sizeof(x->epoch));
            seed = fnv64(seed, &off, sizeof(off));
            seed = fnv64(seed, &size, sizeof(size));
            if (o.label)
                seed = fnv64(seed, o.label, strlen(o.label));
            uuid_from_seed(seed, uuid);
        } else if (getrandom(uuid, sizeof(uuid), 0) != (ssize_t)sizeof(uuid)) {
            r = md_error_errno(ctx, -errno, "getrandom");
            goto fail;
        } else {
            uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
            uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
        }
    }
    memcpy(x->fs->super->s_uuid, uuid, 16);
    {
        uint64_t seed = fnv64(0x6d64696d67ULL, uuid, 16);
        uuid_from_seed(seed, (uint8_t *)x->fs->super->s_hash_seed);
    }
    x->fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
    {
        char c = (char)255;
        x->fs->super->s_flags |= ((int)c == -1) ? EXT2_FLAGS_SIGNED_HASH : EXT2_FLAGS_UNSIGNED_HASH;
    }
    if (o.label)
        strncpy((char *)x->fs->super->s_volume_name, o.label, EXT2_LABEL_LEN);
    x->fs->super->s_max_mnt_count = (uint16_t)-1;
    x->fs->super->s_checkinterval = 0;
    if (x->epoch > 0) {
        x->fs->super->s_mkfs_time = x->fs->super->s_lastcheck = (uint32_t)x->epoch;
    }
    if (ext2fs_has_feature_metadata_csum(x->fs->super))
        x->fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
    ext2fs_init_csum_seed(x->fs);

    err = ext2fs_allocate_tables(x->fs);
    if (err) {
        r = md_ext_error(ctx, err, "allocating the filesystem tables");
        goto fail;
    }
    /* the range reads back as zeros: inode tables are initialised */
    for (g = 0; g < x->fs->group_desc_count; g++) {
        ext2fs_bg_flags_set(x->fs, g, EXT2_BG_INODE_ZEROED);
        ext2fs_group_desc_csum_set(x->fs, g);
    }
    r = make_root_and_lpf(x);
    if (r < 0)
        goto fail;
    for (i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(x->fs->super); i++)
        ext2fs_inode_alloc_stats2(x->fs, i, +1, 0);
    ext2fs_mark_ib_dirty(x->fs);
    ext2fs_mark_inode_bitmap2(x->fs->inode_map, EXT2_BAD_INO);
    ext2fs_inode_alloc_stats2(x->fs, EXT2_BAD_INO, +1, 0);
    err = ext2fs_update_bb_inode(x->fs, NULL);
    if (err) {
        r = md_ext_error(ctx, err, "writing the bad blocks inode");
        goto fail;
    }
    if (ext2fs_has_feature_resize_inode(x->fs->super)) {
        err = ext2fs_create_resize_inode(x->fs);
        if (err) {
            r = md_ext_error(ctx, err, "creating the resize inode");
            goto fail;
        }
    }
    if (ext2fs_has_feature_journal(x->fs->super)) {
        err = ext2fs_get_journal_params(&jparams, x->fs);
        if (err && !o.journal_blocks) {
            /* as mke2fs: too small for a journal, go without */
            md_warn(ctx, "filesystem too small for a journal; making it without one");
            ext2fs_clear_feature_journal(x->fs->super);
        } else {
            if (o.journal_blocks) {
                jparams.num_journal_blocks = o.journal_blocks;
                jparams.num_fc_blocks = 0;
            }
            err = ext2fs_add_journal_inode3(x->fs, &jparams, ~0ULL,
                                            EXT2_MKJOURNAL_NO_MNT_CHECK | EXT2_MKJOURNAL_LAZYINIT);
            if (err) {
                r = md_ext_error(ctx, err, "creating a journal of %u blocks",
                                 jparams.num_journal_blocks);
                goto fail;
            }
        }
    }
    ext2fs_mark_super_dirty(x->fs);
    if (ret) {
        *ret = x;
        return 0;
    }
    return md_ext_close(x);
fail:
    md_ext_free(x);
    return r;
}

/* ---- open / close -------------------------------------------------------------- */

MD_API int md_ext_open(md_image *img, uint32_t partno, uint32_t flags, md_ext **ret)
{
    uint64_t off, size;
    char iopt[64];
    md_ctx *ctx;
    md_ext *x;
    errcode_t err;
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
    new_ext(x, img, off, size);
    x->rdonly = !!(flags & MD_EXT_RDONLY);
    if (!x->rdonly)
        oflags |= EXT2_FLAG_RW;
    snprintf(iopt, sizeof(iopt), "offset=%llu", (unsigned long long)off);
    err = ext2fs_open2(md_image_path(img), iopt, oflags, 0, 0, unix_io_manager, &x->fs);
    if (err) {
        x->fs = NULL;
        if (err == EXT2_ET_BAD_MAGIC)
            r = partno ? md_error(ctx, -EINVAL, "%s: no ext2/ext3/ext4 filesystem on partition %u",
                                  md_image_name(img), partno)
                       : md_error(ctx, -EINVAL, "%s: no ext2/ext3/ext4 filesystem on the whole image "
                                  "(partition 0)", md_image_name(img));
        else
            r = md_ext_error(ctx, err, "%s: opening the filesystem on partition %u",
                             md_image_name(img), partno);
        goto fail;
    }
    if (ext2fs_blocks_count(x->fs->super) * x->fs->blocksize > size) {
        r = md_error(ctx, -EINVAL, "%s: filesystem on partition %u (%llu bytes) is larger than the partition (%llu bytes)",
                     md_image_name(img), partno, (unsigned long long)(ext2fs_blocks_count(x->fs->super) * x->fs->blocksize),
                     (unsigned long long)size);
        goto fail;
    }
    if (!x->rdonly && ext2fs_has_feature_journal_needs_recovery(x->fs->super)) {
        r = md_error(ctx, -EBUSY, "%s: filesystem on partition %u needs journal recovery (run e2fsck first)",
                     md_image_name(img), partno);
        goto fail;
    }
    if (!x->rdonly && ext2fs_has_feature_inline_data(x->fs->super)) {
        r = md_error(ctx, -ENOTSUP, "%s: filesystem on partition %u uses inline_data: writing is not supported",
                     md_image_name(img), partno);
        goto fail;
    }
    err = ext2fs_read_bitmaps(x->fs);
    if (err) {
        r = md_ext_error(ctx, err, "%s: reading the bitmaps of partition %u", md_image_name(img), partno);
        goto fail;
    }
    if (x->epoch > 0)
        x->fs->now = (time_t)x->epoch;
    x->fs->umask = 0;
    *ret = x;
    return 0;
fail:
    md_ext_free(x);
    return r;
}

MD_API int md_ext_close(md_ext *x)
{
    errcode_t err = 0;
    int r = 0;

    if (!x)
        return 0;
    if (x->fs) {
        if (!x->rdonly && x->epoch > 0)
            x->fs->super->s_mtime = x->fs->super->s_mtime ? (uint32_t)x->epoch : 0;
        err = ext2fs_close_free(&x->fs);
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

/* ---- file data ----------------------------------------------------------------- */

static uint64_t file_blocks(ext2_filsys fs, uint64_t data_blocks, uint64_t runs);

/* A source of file contents: a buffer or a host fd. */
struct src {
    const void *buf;
    int fd;
    uint64_t size;
    const char *name;   /* for messages */
};

static int is_zero(const char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Physical ranges given to an extent-mapped file, merged while writing and
 * turned into as few extents as possible at the end (allocating per chunk
 * with ext2fs_fallocate() would leave one extent per chunk). */
struct fmap {
    blk64_t l, p, n;
};

struct fmaps {
    struct fmap *v;
    size_t n, cap;
    blk64_t blocks;
};

static int fmaps_add(md_ext *x, struct fmaps *m, blk64_t l, blk64_t p, blk64_t n)
{
    struct fmap *last = m->n ? &m->v[m->n - 1] : NULL;

    m->blocks += n;
    if (last && last->l + last->n == l && last->p + last->n == p) {
        last->n += n;
        return 0;
    }
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 8;
        struct fmap *nv = realloc(m->v, nc * sizeof(*nv));
        if (!nv)
            return md_error(x->ctx, -ENOMEM, "out of memory");
        m->v = nv;
        m->cap = nc;
    }
    m->v[m->n].l = l;
    m->v[m->n].p = p;
    m->v[m->n].n = n;
    m->n++;
    return 0;
}

/* Store the ranges of @m as the extents of inode @ino (tree empty so far). */
static int fmaps_commit(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, struct fmaps *m)
{
    ext2_extent_handle_t h;
    errcode_t err;
    size_t i;
    int first = 1;

    if (!m->n)
        return 0;
    err = ext2fs_extent_open2(x->fs, ino, (struct ext2_inode *)in, &h);
    if (err)
        return md_ext_error(x->ctx, err, "inode %u: opening the extent tree", ino);
    for (i = 0; i < m->n && !err; i++) {
        blk64_t done = 0;
        while (done < m->v[i].n && !err) {
            struct ext2fs_extent ex;
            blk64_t len = m->v[i].n - done;
            if (len > EXT_INIT_MAX_LEN)
                len = EXT_INIT_MAX_LEN;
            memset(&ex, 0, sizeof(ex));
            ex.e_lblk = m->v[i].l + done;
            ex.e_pblk = m->v[i].p + done;
            ex.e_len = (__u32)len;
            err = ext2fs_extent_insert(h, first ? 0 : EXT2_EXTENT_INSERT_AFTER, &ex);
            if (!err)
                err = ext2fs_extent_fix_parents(h);
            first = 0;
            done += len;
        }
    }
    ext2fs_extent_free(h);
    if (err)
        return md_ext_error(x->ctx, err, "inode %u: writing the extent tree", ino);
    err = ext2fs_iblk_add_blocks(x->fs, (struct ext2_inode *)in, m->blocks);
    if (err)
        return md_ext_error(x->ctx, err, "inode %u: block count", ino);
    return 0;
}

/* Extent files: take free ranges from @goal on, write @data, record them. */
static int write_run_ext(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, struct fmaps *m,
                         blk64_t l, blk64_t n, const char *data)
{
    ext2_filsys fs = x->fs;
    errcode_t err;
    int r;

    while (n > 0) {
        blk64_t goal = x->goal ? x->goal : ext2fs_find_inode_goal(fs, ino, (struct ext2_inode *)in, l);
        blk64_t p = 0, got = 0;

        err = ext2fs_new_range(fs, 0, goal, n, NULL, &p, &got);
        if (err == EXT2_ET_BLOCK_ALLOC_FAIL && goal > fs->super->s_first_data_block)
            err = ext2fs_new_range(fs, 0, fs->super->s_first_data_block, n, NULL, &p, &got);
        if (err)
            return md_ext_error(x->ctx, err, "allocating %llu blocks", (unsigned long long)n);
        if (got > n)
            got = n;
        ext2fs_block_alloc_stats_range(fs, p, (blk_t)got, +1);
        err = io_channel_write_blk64(fs->io, p, (int)got, data);
        if (err)
            return md_ext_error(x->ctx, err, "writing file data");
        r = fmaps_add(x, m, l, p, got);
        if (r < 0)
            return r;
        x->goal = p + got;
        l += got;
        n -= got;
        data += (size_t)got * fs->blocksize;
    }
    return 0;
}

/* Allocate logical blocks [l, l+n) of inode @ino and write @data there. */
static int write_run(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, struct fmaps *m,
                     blk64_t l, blk64_t n, const char *data)
{
    ext2_filsys fs = x->fs;
    blk64_t k, start = 0, prev = 0, first = 0;
    errcode_t err;

    if (in->i_flags & EXT4_EXTENTS_FL)
        return write_run_ext(x, ino, in, m, l, n, data);
    for (k = 0; k < n; k++) {
        blk64_t p = 0;
        {
            err = ext2fs_bmap2(fs, ino, (struct ext2_inode *)in, NULL, BMAP_ALLOC, l + k, NULL, &p);
            if (err)
                return md_ext_error(x->ctx, err, "allocating a block");
        }
        if (!p)
            return md_error(x->ctx, -EIO, "inode %u: block %llu not mapped after allocation", ino,
                            (unsigned long long)(l + k));
        if (k > 0 && p == prev + 1) {
            prev = p;
            continue;
        }
        if (k > 0) {
            err = io_channel_write_blk64(fs->io, first, (int)(prev - first + 1),
                                         data + (size_t)start * fs->blocksize);
            if (err)
                return md_ext_error(x->ctx, err, "writing file data");
        }
        first = prev = p;
        start = k;
    }
    err = io_channel_write_blk64(fs->io, first, (int)(prev - first + 1),
                                 data + (size_t)start * fs->blocksize);
    if (err)
        return md_ext_error(x->ctx, err, "writing file data");
    x->goal = prev + 1;
    return 0;
}

#define CHUNK (1u << 20)

/* Write the contents of @s to inode @ino, skipping holes and all-zero blocks. */
static int write_data(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, const struct src *s,
                      uint64_t *progress_done, const md_ext_populate_opts *po)
{
    ext2_filsys fs = x->fs;
    unsigned bs = fs->blocksize;
    uint64_t pos = 0;
    struct fmaps maps = { NULL, 0, 0, 0 };
    char *buf;
    int r = 0;

    if (!s->size)
        return 0;
    buf = malloc(CHUNK);
    if (!buf)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    while (pos < s->size) {
        uint64_t end = s->size, n;
        size_t got, nblk, b;

        if (s->fd >= 0) {
            off_t d = lseek(s->fd, (off_t)pos, SEEK_DATA);
            if (d < 0 && errno == ENXIO)
                break;              /* only a hole remains */
            if (d >= 0) {
                off_t h;
                pos = (uint64_t)d / bs * bs;
                h = lseek(s->fd, (off_t)pos, SEEK_HOLE);
                if (h >= 0 && (uint64_t)h < end)
                    end = ((uint64_t)h + bs - 1) / bs * bs;
                if (end > s->size)
                    end = s->size;
            }
            if (pos >= s->size)
                break;
        }
        n = end - pos;
        if (n > CHUNK)
            n = CHUNK;
        got = (size_t)n;
        if (s->fd >= 0) {
            r = md_pread_full(s->fd, buf, got, pos);
            if (r < 0) {
                r = md_error(x->ctx, r == -EIO ? -ESTALE : r,
                             "%s: read failed (file changed while the image was being built?): %s",
                             s->name, md_strerror(r));
                break;
            }
        } else {
            memcpy(buf, (const char *)s->buf + pos, got);
        }
        nblk = (got + bs - 1) / bs;
        if (got % bs)
            memset(buf + got, 0, nblk * bs - got);
        /* runs of non-zero blocks */
        for (b = 0; b < nblk;) {
            size_t e;
            if (is_zero(buf + b * bs, bs)) {
                b++;
                continue;
            }
            for (e = b + 1; e < nblk && !is_zero(buf + e * bs, bs); e++)
                ;
            r = write_run(x, ino, in, &maps, pos / bs + b, e - b, buf + b * bs);
            if (r < 0)
                goto out;
            b = e;
        }
        pos += got;
        if (po && po->progress) {
            *progress_done += got;
            if (po->progress(po->userdata, *progress_done, x->progress_total)) {
                r = md_error(x->ctx, -ECANCELED, "cancelled");
                goto out;
            }
        }
    }
    if (r == 0 && (in->i_flags & EXT4_EXTENTS_FL))
        r = fmaps_commit(x, ino, in, &maps);
out:
    free(maps.v);
    free(buf);
    return r;
}

/* Prepare a new regular-file inode in memory (extent header on ext4). */
static int init_file_inode(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, uint32_t mode,
                           uint32_t uid, uint32_t gid, uint32_t nlink)
{
    memset(in, 0, sizeof(*in));
    in->i_mode = (uint16_t)(LINUX_S_IFREG | (mode & 07777));
    set_owner(in, uid, gid);
    in->i_links_count = (uint16_t)nlink;
    if (ext2fs_has_feature_extents(x->fs->super)) {
        struct ext3_extent_header *eh = (struct ext3_extent_header *)in->i_block;
        in->i_flags |= EXT4_EXTENTS_FL;
        eh->eh_magic = ext2fs_cpu_to_le16(EXT3_EXT_MAGIC);
        eh->eh_entries = 0;
        eh->eh_max = ext2fs_cpu_to_le16((sizeof(in->i_block) - sizeof(*eh)) /
                                        sizeof(struct ext3_extent));
        eh->eh_depth = 0;
        eh->eh_generation = 0;
    }
    (void)ino;
    return 0;
}

static int new_inode(md_ext *x, ext2_ino_t dir, uint32_t mode, ext2_ino_t *ino)
{
    errcode_t err = ext2fs_new_inode(x->fs, dir, (int)mode, NULL, ino);
    if (err)
        return md_ext_error(x->ctx, err, "allocating an inode");
    ext2fs_inode_alloc_stats2(x->fs, *ino, +1, LINUX_S_ISDIR(mode));
    return 0;
}

/* Create a regular file inode with data from @s; returns its number. */
static int create_file(md_ext *x, ext2_ino_t dir, const struct src *s, uint32_t mode, uint32_t uid,
                       uint32_t gid, int64_t mtime, uint32_t nlink, ext2_ino_t *ret,
                       uint64_t *progress_done, const md_ext_populate_opts *po)
{
    struct ext2_inode_large in;
    ext2_ino_t ino;
    errcode_t err;
    int r;

    r = new_inode(x, dir, LINUX_S_IFREG, &ino);
    if (r < 0)
        return r;
    init_file_inode(x, ino, &in, mode, uid, gid, nlink);
    /* the final size first: fallocate then extends the previous extent
     * instead of starting a new one for every chunk */
    err = ext2fs_inode_size_set(x->fs, (struct ext2_inode *)&in, s->size);
    if (err)
        return md_ext_error(x->ctx, err, "%s: setting the size", s->name);
    r = md_ext_write_inode(x, ino, &in, mtime, 1);
    if (r < 0)
        return r;
    r = write_data(x, ino, &in, s, progress_done, po);
    if (r < 0)
        return r;
    err = ext2fs_inode_size_set(x->fs, (struct ext2_inode *)&in, s->size);
    if (err)
        return md_ext_error(x->ctx, err, "%s: setting the size", s->name);
    r = md_ext_write_inode(x, ino, &in, mtime, 0);
    if (r < 0)
        return r;
    *ret = ino;
    return 0;
}

static int attr_values(md_ext *x, const md_attr *attr, uint32_t defmode, uint32_t *mode,
                       uint32_t *uid, uint32_t *gid, int64_t *mtime)
{
    if (attr && attr->version != MD_ATTR_VERSION)
        return md_check_version(x->ctx, "md_attr", attr->version, MD_ATTR_VERSION);
    *mode = (attr && attr->mode) ? (attr->mode & 07777) : defmode;
    *uid = attr ? attr->uid : 0;
    *gid = attr ? attr->gid : 0;
    *mtime = (attr && attr->mtime != MD_MTIME_DEFAULT) ? attr->mtime : x->epoch;
    if (x->epoch > 0 && (*mtime < 0 || *mtime > x->epoch))
        *mtime = x->epoch;
    return 0;
}

static int check_rw(md_ext *x)
{
    if (x->rdonly)
        return md_error(x->ctx, -EROFS, "filesystem was opened read-only");
    return 0;
}

static int write_file_common(md_ext *x, const char *path, const struct src *s, const md_attr *attr)
{
    uint32_t mode, uid, gid;
    int64_t mtime;
    ext2_ino_t dir, ino = 0, old;
    const char *name;
    char *nb;
    int r;

    r = check_rw(x);
    if (r < 0)
        return r;
    r = attr_values(x, attr, 0644, &mode, &uid, &gid, &mtime);
    if (r < 0)
        return r;
    r = md_ext_lookup_parent(x, path, &dir, &nb, &name);
    if (r < 0)
        return r;
    {
        /* validate before the first write: space for the data (holes counted) */
        uint64_t nb_need = file_blocks(x->fs, (s->size + x->fs->blocksize - 1) / x->fs->blocksize,
                                       s->size / (1u << 20) + 1) + 2;
        uint64_t nb_free = ext2fs_free_blocks_count(x->fs->super);
        if (nb_need > nb_free || x->fs->super->s_free_inodes_count == 0) {
            r = md_error(x->ctx, -ENOSPC,
                         "%s: needs about %llu KiB (%llu blocks) and an inode; %llu KiB (%llu blocks) "
                         "and %u inodes free", path,
                         (unsigned long long)(nb_need * (x->fs->blocksize / 1024)),
                         (unsigned long long)nb_need,
                         (unsigned long long)(nb_free * (x->fs->blocksize / 1024)),
                         (unsigned long long)nb_free, x->fs->super->s_free_inodes_count);
            goto out;
        }
    }
    if (ext2fs_lookup(x->fs, dir, name, (int)strlen(name), NULL, &old) == 0) {
        r = md_ext_unlink(x, dir, name);
        if (r < 0) {
            if (r == -EISDIR)
                r = md_error(x->ctx, -EISDIR, "%s: is a directory", path);
            goto out;
        }
    }
    r = create_file(x, dir, s, mode, uid, gid, mtime, 1, &ino, NULL, NULL);
    if (r < 0)
        goto out;
    r = md_ext_link(x, dir, name, ino, S_IFREG);
out:
    free(nb);
    return r;
}

MD_API int md_ext_write_file(md_ext *x, const char *path, const void *data, size_t size,
                             const md_attr *attr)
{
    struct src s;

    if (!x || !path || (size && !data))
        return -EINVAL;
    s.buf = data;
    s.fd = -1;
    s.size = size;
    s.name = path;
    return write_file_common(x, path, &s, attr);
}

MD_API int md_ext_write_host_file(md_ext *x, const char *path, const char *host_path,
                                  const md_attr *attr)
{
    struct stat st;
    struct src s;
    int fd, r;

    if (!x || !path || !host_path)
        return -EINVAL;
    fd = open(host_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return md_error_errno(x->ctx, -errno, "%s", host_path);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return md_error(x->ctx, -EINVAL, "%s: not a regular file", host_path);
    }
    s.buf = NULL;
    s.fd = fd;
    s.size = (uint64_t)st.st_size;
    s.name = host_path;
    r = write_file_common(x, path, &s, attr);
    close(fd);
    return r;
}

/* ---- directories ------------------------------------------------------------------ */

/* Create directory @name in @dir with the given attributes; returns its inode. */
static int make_dir2(md_ext *x, ext2_ino_t dir, const char *name, uint32_t mode, uint32_t uid,
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
    r = read_inode(x, ino, &in);
    if (r < 0)
        return r;
    in.i_mode = (uint16_t)(LINUX_S_IFDIR | (mode & 07777));
    set_owner(&in, uid, gid);
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
    return make_dir2(x, dir, name, mode, uid, gid, mtime, 1, ret);
}

int md_ext_mkdir_p(md_ext *x, const char *path, const md_attr *attr, ext2_ino_t *ret)
{
    uint32_t mode, uid, gid;
    int64_t mtime;
    ext2_ino_t cur = EXT2_ROOT_INO;
    char *norm, *p;
    int r;

    r = attr_values(x, attr, 0755, &mode, &uid, &gid, &mtime);
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
            r = check_rw(x);
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
    r = check_rw(x);
    if (r < 0)
        return r;
    return md_ext_mkdir_p(x, path, attr, NULL);
}

/* ---- reading ------------------------------------------------------------------------ */

static int open_regular(md_ext *x, const char *path, ext2_ino_t *ino, struct ext2_inode_large *in)
{
    int r = md_ext_lookup(x, path, ino);
    if (r < 0)
        return r;
    r = read_inode(x, *ino, in);
    if (r < 0)
        return r;
    if (LINUX_S_ISDIR(in->i_mode))
        return md_error(x->ctx, -EISDIR, "%s: is a directory", path);
    if (!LINUX_S_ISREG(in->i_mode))
        return md_error(x->ctx, -EINVAL, "%s: not a regular file", path);
    return 0;
}

/* Stream the file's contents to @fn in pieces. */
static int read_stream(md_ext *x, ext2_ino_t ino, const char *path,
                       int (*fn)(void *ud, const void *p, size_t n), void *ud)
{
    ext2_file_t f;
    errcode_t err;
    char *buf;
    int r = 0;

    buf = malloc(CHUNK);
    if (!buf)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    err = ext2fs_file_open(x->fs, ino, 0, &f);
    if (err) {
        free(buf);
        return md_ext_error(x->ctx, err, "%s", path);
    }
    for (;;) {
        unsigned got = 0;
        err = ext2fs_file_read(f, buf, CHUNK, &got);
        if (err) {
            r = md_ext_error(x->ctx, err, "%s: reading", path);
            break;
        }
        if (!got)
            break;
        r = fn(ud, buf, got);
        if (r < 0)
            break;
    }
    ext2fs_file_close(f);
    free(buf);
    return r;
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
    r = read_stream(x, ino, path, to_mem, &m);
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
    if (!is_zero(p, n))
        r = md_pwrite_full(o->fd, p, n, o->off);
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
    r = read_stream(x, ino, path, to_fd, &o);
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

static void fill_stat(md_ext *x, ext2_ino_t ino, const struct ext2_inode_large *in, md_ext_stat *st)
{
    st->ino = ino;
    st->mode = in->i_mode;
    st->nlink = in->i_links_count;
    st->uid = ext_uid_of(in);
    st->gid = ext_gid_of(in);
    st->size = EXT2_I_SIZE(in);
    st->mtime = inode_mtime(in, inode_full(x->fs) && in->i_extra_isize >= 24);
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
    r = read_inode(x, ino, &in);
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
    r = read_inode(x, ino, &in);
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
        r = read_stream(x, ino, path, to_mem, &m);
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
    r = read_inode(x, ino, &in);
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
        qsort(ls.v, ls.n, sizeof(*ls.v), cmp_list);
        for (i = 0; i < ls.n; i++) {
            md_ext_stat st = MD_EXT_STAT_INIT;
            r = read_inode(x, ls.v[i].ino, &in);
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


/* ---- directories written in one go ------------------------------------------------
 *
 * Linking N entries one by one with ext2fs_link() scans the whole directory
 * each time (O(N^2)).  Directories created by md_ext_populate() are instead
 * collected in memory (a pointer per entry) and written once at the end.
 * (Not when the walk leaves them: in byte order "d-x" sorts between "d" and
 * "d/y", so a directory's entries need not follow it directly.)
 */

struct dent {
    const char *name;    /* borrowed from the tree entry's path */
    uint8_t len;
    uint8_t ftype;
    ext2_ino_t ino;
};

struct pname {
    char *name;
    ext2_ino_t ino;      /* 0: removed */
};

struct pdir {
    ext2_ino_t ino;      /* 0: not collecting (entries go through ext2fs_link) */
    const char *path;    /* tree path (NULL for the target) */
    int64_t mtime;
    struct dent *v;
    size_t n, cap;
    /* a directory that existed before: its names, read once */
    struct pname *names;
    size_t names_cap;
    int tried;           /* pdir_open_existing() was called */
};

static size_t names_slot(const struct pdir *d, const char *name, size_t len)
{
    uint64_t h = fnv64(1469598103934665603ULL, name, len);
    size_t i = (size_t)h & (d->names_cap - 1);
    while (d->names[i].name && (strlen(d->names[i].name) != len || memcmp(d->names[i].name, name, len)))
        i = (i + 1) & (d->names_cap - 1);
    return i;
}

static void names_free(struct pdir *d)
{
    size_t i;
    for (i = 0; i < d->names_cap; i++)
        free(d->names[i].name);
    free(d->names);
    d->names = NULL;
    d->names_cap = 0;
}

struct names_scan {
    struct pdir *d;
    size_t count;
    int err;
};

static int names_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset, int blocksize,
                    char *buf, void *priv)
{
    struct names_scan *ns = priv;
    struct pdir *d = ns->d;
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
        struct pdir tmp = *d;
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
static int pdir_open_existing(md_ext *x, struct pdir *d, ext2_ino_t ino)
{
    struct ext2_inode_large in;
    struct names_scan ns = { d, 0, 0 };
    errcode_t err;
    int r = read_inode(x, ino, &in);

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
    d->mtime = inode_mtime(&in, inode_full(x->fs) && in.i_extra_isize >= 24);
    return 0;
}

static ext2_ino_t names_get(struct pdir *d, const char *name)
{
    size_t i;
    if (!d->names)
        return 0;
    i = names_slot(d, name, strlen(name));
    return d->names[i].name ? d->names[i].ino : 0;
}

static void names_del(struct pdir *d, const char *name)
{
    size_t i;
    if (!d->names)
        return;
    i = names_slot(d, name, strlen(name));
    if (d->names[i].name)
        d->names[i].ino = 0;
}

static int pdir_add(md_ext *x, struct pdir *d, const char *name, ext2_ino_t ino, uint32_t mode)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        struct dent *nv = realloc(d->v, nc * sizeof(*nv));
        if (!nv)
            return md_error(x->ctx, -ENOMEM, "out of memory");
        d->v = nv;
        d->cap = nc;
    }
    d->v[d->n].name = name;
    d->v[d->n].len = (uint8_t)strlen(name);
    d->v[d->n].ftype = ext2fs_has_feature_filetype(x->fs->super) ? (uint8_t)ftype_of(mode) : 0;
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

static int pdir_flush(md_ext *x, struct pdir *d)
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
    r = read_inode(x, d->ino, &in);
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
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
    names_free(d);
    return 0;
}

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
    r = new_inode(x, dir, lmode, &ino);
    if (r < 0)
        return r;
    memset(&in, 0, sizeof(in));
    in.i_mode = (uint16_t)(lmode | (e->mode & 07777));
    set_owner(&in, e->uid, e->gid);
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
    int r = read_inode(x, ino, &in);
    if (r < 0)
        return r;
    in.i_mode = (uint16_t)((in.i_mode & LINUX_S_IFMT) | (e->mode & 07777));
    set_owner(&in, e->uid, e->gid);
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

/* Blocks of data and mapping metadata for a file with @data_blocks allocated
 * blocks in about @runs pieces. */
static uint64_t file_blocks(ext2_filsys fs, uint64_t data_blocks, uint64_t runs)
{
    uint64_t per = fs->blocksize / 4, meta = 0;

    if (!data_blocks)
        return 0;
    if (ext2fs_has_feature_extents(fs->super)) {
        /* extents of up to 32768 blocks, (blocksize-12)/12 per tree block */
        uint64_t ext = runs + data_blocks / 32768 + 1;
        if (ext > 4)
            meta = (ext + (fs->blocksize - 12) / 12 - 1) / ((fs->blocksize - 12) / 12) + 1;
    } else {
        uint64_t rest = data_blocks > 12 ? data_blocks - 12 : 0;
        if (rest) {
            meta++;
            rest = rest > per ? rest - per : 0;
        }
        if (rest) {
            uint64_t n = rest < per * per ? rest : per * per;
            meta += 1 + (n + per - 1) / per;
            rest -= n;
        }
        if (rest)
            meta += 1 + (rest + per * per - 1) / (per * per) + (rest + per - 1) / per;
    }
    return data_blocks + meta;
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
            int nz = !is_zero((const char *)d->buf + b * bs, len);
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
            blocks += file_blocks(fs, b, runs);
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
        blocks += file_blocks(fs, n, n / 8 + 1);
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
    struct pdir *pd = NULL;   /* directories created here, by tree inode (0: a new target) */
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
    r = check_rw(x);
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
        struct pdir *pp = &pd[0];

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
            r = pdir_open_existing(x, pp, dir);
            if (r < 0)
                goto out;
        }
        coll = pp->ino != 0;
        if ((pnew || coll) && pp->ino != dir) {
            r = md_error(x->ctx, -EIO, "%s: internal error: parent directory not pending", e->path);
            goto out;
        }
        if (coll) {
            old = pnew ? 0 : names_get(pp, name);
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
                names_del(pp, name);
            }
            r = make_dir2(x, dir, name, e->mode, e->uid, e->gid, e->mtime, !coll, &ino);
            if (r == 0 && coll)
                r = pdir_add(x, pp, name, ino, S_IFDIR);
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
            names_del(pp, name);
        }
        if (type == S_IFREG && fsino[e->ino]) {
            /* another link of a file already written */
            r = coll ? pdir_add(x, pp, name, fsino[e->ino], S_IFREG)
                     : md_ext_link(x, dir, name, fsino[e->ino], S_IFREG);
            if (r < 0)
                goto out;
            continue;
        }
        if (type == S_IFREG) {
            const struct md_entry *d = md_entry_data(e);
            struct src s;
            int fd = -1;

            r = md_entry_open(x->ctx, e, &fd);
            if (r < 0)
                goto out;
            s.fd = fd;
            s.buf = d->src == MD_SRC_BUF ? d->buf : NULL;
            s.size = d->src == MD_SRC_NONE ? 0 : d->size;
            s.name = d->src == MD_SRC_HOST ? d->host_path : e->path;
            r = create_file(x, dir, &s, e->mode, e->uid, e->gid, e->mtime, e->nlink, &ino, &done, &o);
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
        r = coll ? pdir_add(x, pp, name, ino, e->mode) : md_ext_link(x, dir, name, ino, e->mode);
        if (r < 0)
            goto out;
    }
    /* write the new directories, in tree order */
    for (i = 0; i <= tree->n; i++) {
        if (pd[i].ino) {
            r = pdir_flush(x, &pd[i]);
            if (r < 0)
                goto out;
        }
    }
    if (o.progress && o.progress(o.userdata, total, total))
        r = md_error(x->ctx, -ECANCELED, "cancelled");
out:
    if (pd)
        for (i = 0; i <= tree->n; i++) {
            free(pd[i].v);
            names_free(&pd[i]);
        }
    free(pd);
    free(fsino);
    free(isnew);
    free(parent);
    return r;
}
