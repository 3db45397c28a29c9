/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * md_ext_format(): the steps of mke2fs, with mke2fs.conf's defaults.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "md-ext-internal.h"

/* ---- UUIDs ------------------------------------------------------------------ */

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
        v = md_hexval((unsigned char)*s);
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

/* ext2fs_expand_dir() can report success after failing to map the new
 * block (an allocation failure inside ext2fs_extent_replace() is lost in
 * libext2fs 1.47): every block of lost+found is looked up. */
static int check_lpf_blocks(md_ext *x, ext2_ino_t lpf, unsigned n)
{
    blk64_t lblk, pblk;
    errcode_t err;

    for (lblk = 0; lblk < n; lblk++) {
        pblk = 0;
        err = ext2fs_bmap2(x->fs, lpf, NULL, NULL, 0, lblk, NULL, &pblk);
        if (err)
            return md_ext_error(x->ctx, err, "expanding lost+found: reading its block %llu",
                                (unsigned long long)lblk);
        if (!pblk)
            return md_error(x->ctx, -EIO, "expanding lost+found: block %llu was not mapped (libext2fs "
                            "lost an error)", (unsigned long long)lblk);
    }
    return 0;
}

static int make_root_and_lpf(md_ext *x)
{
    ext2_filsys fs = x->fs;
    struct ext2_inode_large in;
    ext2_ino_t lpf;
    unsigned lpf_size = 0, lpf_blocks = 1;
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
        lpf_blocks++;
    }
    /* every block, the last one added included (lpf_size stops one short
     * when the loop ends on EXT2_NDIR_BLOCKS, with 1 KiB blocks) */
    r = check_lpf_blocks(x, lpf, lpf_blocks);
    if (r < 0)
        return r;
    r = md_ext_read_inode(x, lpf, &in);
    if (r < 0)
        return r;
    in.i_mode = LINUX_S_IFDIR | 0700;
    r = md_ext_write_inode(x, lpf, &in, x->epoch, 0);
    if (r < 0)
        return r;
    /* as mke2fs: 0755 root:root (libext2fs applies fs->umask, which is 0 here) */
    r = md_ext_read_inode(x, EXT2_ROOT_INO, &in);
    if (r < 0)
        return r;
    in.i_mode = LINUX_S_IFDIR | 0755;
    md_ext_set_owner(&in, 0, 0);
    return md_ext_write_inode(x, EXT2_ROOT_INO, &in, x->epoch, 0);
}

/* What md_ext_format() carries from one step to the next. */
struct format_state {
    md_image *img;
    uint32_t partno;
    md_ctx *ctx;
    md_ext_format_opts o;
    struct ext2_super_block param;  /* what ext2fs_initialize() is asked for */
    uint64_t off, size;             /* the partition's byte range */
    uint64_t blocks;
    uint32_t bs;
    uint8_t uuid[16];               /* parsed from o.uuid, else derived or random */
    md_ext *x;
};

static int format_check_opts(struct format_state *st, const md_ext_format_opts *opts)
{
    md_ext_format_opts *o = &st->o;
    md_ctx *ctx = st->ctx;

    if (opts) {
        if (opts->version < 1 || opts->version > MD_EXT_FORMAT_OPTS_VERSION)
            return md_check_version(ctx, "md_ext_format_opts", opts->version,
                                    MD_EXT_FORMAT_OPTS_VERSION);
        *o = *opts;
    }
    if (o->fs_type != MD_EXT2 && o->fs_type != MD_EXT3 && o->fs_type != MD_EXT4)
        return md_error(ctx, -EINVAL, "unknown filesystem type %d (expected 2, 3 or 4)",
                        o->fs_type);
    if (o->block_size && o->block_size != 1024 && o->block_size != 2048 && o->block_size != 4096)
        return md_error(ctx, -EINVAL, "block size %u: must be 1024, 2048 or 4096", o->block_size);
    if (o->inode_size && (o->inode_size < 128 || o->inode_size > 1024 ||
                          (o->inode_size & (o->inode_size - 1))))
        return md_error(ctx, -EINVAL, "inode size %u: must be a power of two from 128 to 1024",
                        o->inode_size);
    if (o->reserved_percent != MD_EXT_RESERVED_DEFAULT &&
        (o->reserved_percent < 0 || o->reserved_percent > 50))
        return md_error(ctx, -EINVAL, "reserved blocks percentage %d: must be 0..50",
                        o->reserved_percent);
    if (o->label && strlen(o->label) > EXT2_LABEL_LEN)
        return md_error(ctx, -EINVAL, "label '%s' is longer than %d bytes", o->label,
                        EXT2_LABEL_LEN);
    if (o->uuid && parse_uuid(o->uuid, st->uuid) < 0)
        return md_error(ctx, -EINVAL, "'%s' is not a UUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                        o->uuid);
    if (o->flags)
        return md_error(ctx, -EINVAL, "unknown format flags 0x%x", o->flags);
    return 0;
}

/* The type's default features (mke2fs.conf), then o.features on top. */
static int format_features(struct format_state *st)
{
    struct ext2_super_block *param = &st->param;
    int r;

    param->s_feature_compat = EXT2_FEATURE_COMPAT_RESIZE_INODE | EXT2_FEATURE_COMPAT_DIR_INDEX |
                              EXT2_FEATURE_COMPAT_EXT_ATTR;
    param->s_feature_ro_compat = EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER |
                                 EXT2_FEATURE_RO_COMPAT_LARGE_FILE;
    param->s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE;
    if (st->o.fs_type >= MD_EXT3)
        param->s_feature_compat |= EXT3_FEATURE_COMPAT_HAS_JOURNAL;
    if (st->o.fs_type == MD_EXT4) {
        param->s_feature_incompat |= EXT3_FEATURE_INCOMPAT_EXTENTS |
                                     EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_64BIT;
        param->s_feature_ro_compat |= EXT4_FEATURE_RO_COMPAT_HUGE_FILE |
                                      EXT4_FEATURE_RO_COMPAT_METADATA_CSUM |
                                      EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
                                      EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE;
    }
    if (st->o.features) {
        r = apply_features(st->ctx, param, st->o.features);
        if (r < 0)
            return r;
    }
    if (ext2fs_has_feature_metadata_csum(param))
        ext2fs_clear_feature_gdt_csum(param);
    if (ext2fs_has_feature_64bit(param) && !ext2fs_has_feature_extents(param))
        return md_error(st->ctx, -EINVAL, "feature '64bit' needs 'extent'");
    if (ext2fs_has_feature_resize_inode(param) && !ext2fs_has_feature_sparse_super(param))
        ext2fs_clear_feature_resize_inode(param);
    return 0;
}

/* Block size, inode count and the rest of the superblock parameters. */
static void format_geometry(struct format_state *st)
{
    struct ext2_super_block *param = &st->param;
    const md_ext_format_opts *o = &st->o;
    uint64_t size = st->size, blocks, inodes;
    uint32_t bs = o->block_size, ratio = o->inode_ratio;
    int log_bs = 0, reserved;

    /* mke2fs.conf's size types */
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
    if (!ext2fs_has_feature_64bit(param) && blocks > 0xffffffffULL)
        blocks = 0xffffffffULL;
    inodes = o->inode_count ? o->inode_count : blocks * bs / ratio;
    if (inodes > 0xffffffffULL)
        inodes = 0xffffffffULL;
    if (inodes < 16)
        inodes = 16;

    param->s_rev_level = EXT2_DYNAMIC_REV;
    param->s_log_block_size = (uint32_t)log_bs;
    param->s_log_cluster_size = (uint32_t)log_bs;
    ext2fs_blocks_count_set(param, blocks);
    param->s_inodes_count = (uint32_t)inodes;
    param->s_inode_size = (uint16_t)(o->inode_size ? o->inode_size : 256);
    reserved = o->reserved_percent == MD_EXT_RESERVED_DEFAULT ? 5 : o->reserved_percent;
    ext2fs_r_blocks_count_set(param, blocks * (uint64_t)reserved / 100);
    if (ext2fs_has_feature_flex_bg(param))
        param->s_log_groups_per_flex = 4;
    if (ext2fs_has_feature_64bit(param))
        param->s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
    if (param->s_inode_size >= sizeof(struct ext2_inode_large)) {
        param->s_min_extra_isize = param->s_want_extra_isize =
            sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
    } else {
        ext2fs_clear_feature_extra_isize(param);
    }
    param->s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
    st->blocks = blocks;
    st->bs = bs;
}

/* ext2fs_initialize() in memory only, on /dev/null (initialising writes
 * nothing): the geometry and the journal are checked before anything is
 * cleared, and the result says how much room the tables leave. */
static int format_dry_run(struct format_state *st, uint64_t *free_blocks, uint64_t *free_inodes,
                          ext2_filsys *ret)
{
    struct ext2fs_journal_params jp;
    ext2_filsys fs;
    uint64_t fb, journal = 0;
    errcode_t err;

    err = ext2fs_initialize("/dev/null", EXT2_FLAG_64BITS, &st->param, unix_io_manager, &fs);
    if (err)
        return md_ext_error(st->ctx, err, "cannot make a filesystem of %llu blocks of %u bytes",
                            (unsigned long long)st->blocks, st->bs);
    fb = ext2fs_free_blocks_count(fs->super);
    if (ext2fs_has_feature_journal(fs->super)) {
        if (st->o.journal_blocks)
            journal = st->o.journal_blocks;
        else if (ext2fs_get_journal_params(&jp, fs) == 0)
            journal = (uint64_t)jp.num_journal_blocks + jp.num_fc_blocks;
    }
    if (ret)
        *ret = fs; /* the caller's, to look at */
    else
        ext2fs_free(fs);
    /* as libext2fs's own limits, said before the range is cleared */
    if ((st->o.journal_blocks && st->o.journal_blocks < 1024) || (journal && journal + 64 > fb)) {
        if (ret) {
            ext2fs_free(fs);
            *ret = NULL;
        }
        if (journal && journal + 64 > fb)
            return md_error(st->ctx, -ENOSPC, "a journal of %llu blocks does not fit the %llu free blocks",
                            (unsigned long long)journal, (unsigned long long)fb);
        return md_error(st->ctx, -EINVAL, "a journal of %u blocks is too small (at least 1024)",
                        st->o.journal_blocks);
    }
    /* the journal, the reserved blocks, root and lost+found are not for files */
    {
        uint64_t used = journal + ext2fs_r_blocks_count(&st->param) + 8;
        fb = fb > used ? fb - used : 0;
    }
    if (free_blocks)
        *free_blocks = fb;
    if (free_inodes)
        *free_inodes = st->param.s_inodes_count > 16 ? st->param.s_inodes_count - 16 : 0;
    return 0;
}

#define MIB (1024ull * 1024ull)

int md_ext_plan_size(md_ctx *ctx, md_tree *tree, const md_ext_format_opts *opts, uint64_t headroom,
                     uint64_t *size)
{
    struct format_state st;
    uint64_t guess = 0, fb, fi, blocks, inodes, bytes;
    md_ext x;
    int r, i;

    memset(&st, 0, sizeof(st));
    st.ctx = ctx;
    md_ext_format_opts_init(&st.o);
    if ((r = format_check_opts(&st, opts)) < 0 || (r = format_features(&st)) < 0 ||
        (r = md_tree_finalize(tree)) < 0)
        return r;
    /* grow a first guess (the file data and 1/8 more, plus room for the
     * tables of a small filesystem) until the tree and the headroom fit */
    for (i = 0; i < 64; i++) {
        struct ext2_super_block keep = st.param;
        uint64_t have, want;

        if (!guess) {
            uint64_t data = 0;
            size_t k;
            for (k = 0; k < tree->n; k++)
                data += S_ISREG(tree->v[k]->mode) && !tree->v[k]->master ? tree->v[k]->size : 0;
            guess = data + data / 8 + headroom + 8 * MIB;
        }
        guess = (guess + MIB - 1) / MIB * MIB;
        st.size = guess;
        format_geometry(&st);
        memset(&x, 0, sizeof(x));
        x.ctx = ctx;
        r = format_dry_run(&st, &fb, &fi, &x.fs);
        st.param = keep;
        if (r == -ENOSPC) {
            md_ctx_clear_error(ctx);
            guess += guess / 4;
            continue;
        }
        if (r < 0)
            return r;
        r = md_ext_tree_need(&x, tree, &blocks, &inodes, &bytes);
        ext2fs_free(x.fs);
        if (r < 0)
            return r;
        have = fb * st.bs;
        want = blocks * st.bs + headroom;
        if (want <= have && inodes <= fi) {
            *size = guess;
            return 0;
        }
        /* short of space or of inodes: grow by what is missing and a bit */
        guess += want > have ? want - have + (want - have) / 8 : 0;
        if (inodes > fi)
            guess += (inodes - fi) * (guess / (fi ? fi : 1)) + guess / 16;
        guess += MIB;
    }
    return md_error(ctx, -EFBIG, "cannot find a filesystem size that holds the tree");
}

/* ext2fs_initialize() on the partition's byte range. */
static int format_init_fs(struct format_state *st)
{
    const char *path = md_image_path(st->img);
    md_ext *x = st->x;
    char iopt[64];
    errcode_t err;
    int r;

    err = ext2fs_initialize(path, EXT2_FLAG_64BITS, &st->param, unix_io_manager, &x->fs);
    if (err)
        return md_ext_error(st->ctx, err, "%s: cannot make a filesystem of %llu blocks of %u bytes on partition %u",
                            md_image_name(st->img), (unsigned long long)st->blocks, st->bs,
                            st->partno);
    snprintf(iopt, sizeof(iopt), "offset=%llu", (unsigned long long)st->off);
    err = io_channel_set_options(x->fs->io, iopt);
    if (err)
        return md_ext_error(st->ctx, err, "%s: setting the partition offset", path);
    r = md_ext_inode_cache(x);
    if (r < 0)
        return r;
    if (x->has_epoch)
        x->fs->now = (time_t)x->epoch;
    x->fs->umask = 0;
    return 0;
}

/* identity: UUID, hash seed, label, times */
static int format_identity(struct format_state *st)
{
    md_ext *x = st->x;
    struct ext2_super_block *sb = x->fs->super;
    uint8_t *uuid = st->uuid;

    if (!st->o.uuid) {
        if (x->has_epoch) {
            uint64_t seed = md_ext_fnv64(1469598103934665603ULL, &x->epoch, sizeof(x->epoch));
            seed = md_ext_fnv64(seed, &st->off, sizeof(st->off));
            seed = md_ext_fnv64(seed, &st->size, sizeof(st->size));
            if (st->o.label)
                seed = md_ext_fnv64(seed, st->o.label, strlen(st->o.label));
            uuid_from_seed(seed, uuid);
        } else if (getrandom(uuid, sizeof(st->uuid), 0) != (ssize_t)sizeof(st->uuid)) {
            return md_error_errno(st->ctx, -errno, "getrandom");
        } else {
            uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
            uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
        }
    }
    memcpy(sb->s_uuid, uuid, 16);
    {
        uint64_t seed = md_ext_fnv64(0x6d64696d67ULL, uuid, 16);
        uuid_from_seed(seed, (uint8_t *)sb->s_hash_seed);
    }
    sb->s_def_hash_version = EXT2_HASH_HALF_MD4;
    {
        char c = (char)255;
        sb->s_flags |= ((int)c == -1) ? EXT2_FLAGS_SIGNED_HASH : EXT2_FLAGS_UNSIGNED_HASH;
    }
    if (st->o.label)
        strncpy((char *)sb->s_volume_name, st->o.label, EXT2_LABEL_LEN);
    sb->s_max_mnt_count = (uint16_t)-1;
    sb->s_checkinterval = 0;
    if (x->has_epoch) {
        sb->s_mkfs_time = sb->s_lastcheck = (uint32_t)x->epoch;
    }
    if (ext2fs_has_feature_metadata_csum(sb))
        sb->s_checksum_type = EXT2_CRC32C_CHKSUM;
    ext2fs_init_csum_seed(x->fs);
    return 0;
}

/* Group tables, root and lost+found, the reserved inodes, bad blocks and
 * resize inodes. */
static int format_tables(struct format_state *st)
{
    ext2_filsys fs = st->x->fs;
    errcode_t err;
    ext2_ino_t i;
    dgrp_t g;
    int r;

    err = ext2fs_allocate_tables(fs);
    if (err)
        return md_ext_error(st->ctx, err, "allocating the filesystem tables");
    /* the range reads back as zeros: inode tables are initialised */
    for (g = 0; g < fs->group_desc_count; g++) {
        ext2fs_bg_flags_set(fs, g, EXT2_BG_INODE_ZEROED);
        ext2fs_group_desc_csum_set(fs, g);
    }
    r = make_root_and_lpf(st->x);
    if (r < 0)
        return r;
    for (i = EXT2_ROOT_INO + 1; i < EXT2_FIRST_INODE(fs->super); i++)
        ext2fs_inode_alloc_stats2(fs, i, +1, 0);
    ext2fs_mark_ib_dirty(fs);
    ext2fs_mark_inode_bitmap2(fs->inode_map, EXT2_BAD_INO);
    ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
    err = ext2fs_update_bb_inode(fs, NULL);
    if (err)
        return md_ext_error(st->ctx, err, "writing the bad blocks inode");
    if (ext2fs_has_feature_resize_inode(fs->super)) {
        err = ext2fs_create_resize_inode(fs);
        if (err)
            return md_ext_error(st->ctx, err, "creating the resize inode");
    }
    return 0;
}

static int format_journal(struct format_state *st)
{
    ext2_filsys fs = st->x->fs;
    struct ext2fs_journal_params jparams;
    errcode_t err;

    if (!ext2fs_has_feature_journal(fs->super))
        return 0;
    err = ext2fs_get_journal_params(&jparams, fs);
    if (err && !st->o.journal_blocks) {
        /* as mke2fs: too small for a journal, go without */
        md_warn(st->ctx, "filesystem too small for a journal; making it without one");
        ext2fs_clear_feature_journal(fs->super);
        return 0;
    }
    if (st->o.journal_blocks) {
        jparams.num_journal_blocks = st->o.journal_blocks;
        jparams.num_fc_blocks = 0;
    }
    err = ext2fs_add_journal_inode3(fs, &jparams, ~0ULL,
                                    EXT2_MKJOURNAL_NO_MNT_CHECK | EXT2_MKJOURNAL_LAZYINIT);
    if (err)
        return md_ext_error(st->ctx, err, "creating a journal of %u blocks",
                            jparams.num_journal_blocks);
    return 0;
}

MD_API int md_ext_format(md_image *img, uint32_t partno, const md_ext_format_opts *opts,
                         md_ext **ret)
{
    struct format_state st;
    int r;

    if (ret)
        *ret = NULL;
    if (!img)
        return -EINVAL;
    memset(&st, 0, sizeof(st));
    st.img = img;
    st.partno = partno;
    st.ctx = md_image_ctx(img);
    md_ext_format_opts_init(&st.o);
    r = format_check_opts(&st, opts);
    if (r == 0)
        r = format_features(&st);
    if (r == 0)
        r = get_range(st.ctx, img, partno, &st.off, &st.size);
    if (r < 0)
        return r;
    format_geometry(&st);
    /* everything that can fail is tried before the old contents are cleared */
    r = format_dry_run(&st, NULL, NULL, NULL);
    if (r == 0)
        r = clear_range(st.ctx, md_image_path(img), st.off, st.size);
    if (r < 0) {
        if (partno)
            md_error_prefix(st.ctx, "%s: partition %u", md_image_name(img), partno);
        else
            md_error_prefix(st.ctx, "%s", md_image_name(img));
        return r;
    }

    st.x = calloc(1, sizeof(*st.x));
    if (!st.x)
        return md_error(st.ctx, -ENOMEM, "out of memory");
    md_ext_init_handle(st.x, img, st.off, st.size);
    st.x->fresh = true;
    r = format_init_fs(&st);
    if (r == 0)
        r = format_identity(&st);
    if (r == 0)
        r = format_tables(&st);
    if (r == 0)
        r = format_journal(&st);
    if (r < 0) {
        md_ext_free(st.x);
        return r;
    }
    ext2fs_mark_super_dirty(st.x->fs);
    if (ret) {
        *ret = st.x;
        return 0;
    }
    return md_ext_close(st.x);
}
