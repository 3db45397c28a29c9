/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * EXTLINUX installation into an ext2/3/4 filesystem inside an image file,
 * with libext2fs only: no mount, no root.
 *
 * What `extlinux --install DIR` does, and what we reproduce (the layouts come
 * from syslinux's libinstaller/syslxint.h; all offsets are read from the
 * blobs themselves, none is hard-coded):
 *  - ldlinux.sys = the core image (a multiple of 512 bytes) followed by two
 *    512-byte ADV copies.  Its "patch area" (found by the LDLINUX_MAGIC dword)
 *    gets the sector counts and a negative checksum; the "extended patch area"
 *    it points to receives the list of the file's sectors (as extents), the
 *    two ADV sector numbers and the install directory.  The sector numbers
 *    are relative to the start of the filesystem.
 *  - The boot sector (VBR) is written over bytes 0..511 of the filesystem
 *    (unused by ext2/3/4: the superblock starts at 1024) with the first
 *    sector of ldlinux.sys patched in and a fake FAT BPB (sizes, geometry,
 *    hidden sectors = partition start).
 *  - ldlinux.c32 (the same build) goes next to ldlinux.sys.
 * We place ldlinux.sys in one contiguous free run and mark it immutable so
 * nothing moves it later (the sector list is baked into the boot code).
 *
 * Debian ships neither ldlinux.sys nor the boot sector as files: they are
 * compiled into /usr/bin/extlinux (bin2c arrays in .data).  They are found
 * there by their signatures; see md_extlinux_blobs_parse().
 *
 * This file owns the installation (the filesystem and the image); the blobs,
 * the patcher and the ADV are in md-extlinux-blobs.c, extlinux.conf (builder
 * and reference scanner) in md-extlinux-config.c.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <et/com_err.h>

#include "md-ext-internal.h"
#include "md-extlinux-internal.h"
#include "md-internal.h"

#define DEFAULT_DIR "/boot/syslinux"
#define DEFAULT_SYSLINUX_DIR "/usr/lib/syslinux"

MD_API void md_extlinux_opts_init(md_extlinux_opts *opts)
{
    static const md_extlinux_opts init = MD_EXTLINUX_OPTS_INIT;
    if (opts)
        *opts = init;
}

/* ---- installation -------------------------------------------------------- */

/* libext2fs errors become -errno + message through the ext module */
#define ext_err md_ext_error

/* A file the install writes into the install dir (ldlinux.c32, modules). */
struct sl_file {
    char *name;
    char *data;
    size_t size;
};

/* A file EXTLINUX will read, whose holes must be filled first. */
struct sparse_file {
    ext2_ino_t ino;
    uint64_t holes;       /* blocks */
    char *path;
};

/* Boot flag and boot code for a partitioned image. */
struct pt_plan {
    int type;             /* 0 none, 1 dos, 2 gpt */
    uint8_t code[440];
    size_t code_len;
};

/*
 * One md_extlinux_install() call.  Each phase fills in what the next ones
 * need; the phases up to patch_ldlinux() only read, so that an error leaves
 * the image as it was; install_free() releases everything.
 */
struct install {
    md_ctx *ctx;
    md_image *image;
    uint32_t partno;
    md_extlinux_opts o;   /* the caller's options, or the defaults */
    const char *path;     /* where the image's bytes are (md_image_path) */
    const char *img;      /* image path for messages */
    char where[64];       /* "partition 2" / "whole image" */
    const char *sdir;     /* the syslinux dir: mbr/, modules/bios/ */
    char *dir;            /* the install dir, normalised */
    int64_t epoch;

    /* from the host */
    struct md_sl_blobs blobs;
    struct sl_file *files;  /* ldlinux.c32, then the modules */
    size_t nfiles;
    struct pt_plan plan;    /* MBR or GPT boot code, partitioned images only */

    /* the image and its filesystem */
    uint64_t part_off, part_size;
    int fd;
    md_ext *ext;          /* the ext module's handle: one open path */
    ext2_filsys fs;       /* its libext2fs handle */

    /* what is there already */
    ext2_ino_t dir_ino;   /* the install dir, 0 while it does not exist */
    ext2_ino_t old_ino;   /* an existing ldlinux.sys, 0 if none */
    struct ext2_inode old_inode;
    ext2_ino_t legacy_ino;  /* an existing extlinux.sys (pre-4.0 name), 0 if none */
    uint8_t adv[2 * ADV_SIZE];  /* the ADV to write: a fresh one or the old one */
    struct sparse_file *sparse; /* kernels and initrds whose holes get filled */
    size_t nsparse;

    /* ldlinux.sys */
    uint64_t ldl_size, nblocks;
    blk64_t run;          /* its first block: one contiguous run */
    bool reserved;        /* the run is marked in the in-memory bitmap only */
    bool writing;         /* past the checks: the image is being changed */
    uint8_t vbr[SECTOR];  /* the patched boot sector */
    uint8_t *ldl;         /* the patched file, nblocks blocks */
};

/* Normalise an install dir: absolute, no ".", "..", "//", no trailing '/'. */
static int norm_dir(md_ctx *ctx, const char *in, char **out)
{
    char *s, *w;
    const char *p = in;

    if (!in || in[0] != '/')
        return md_error(ctx, -EINVAL, "install directory '%s': must be an absolute path",
                        in ? in : "");
    s = malloc(strlen(in) + 2);
    if (!s)
        return md_error(ctx, -ENOMEM, "out of memory");
    w = s;
    while (*p) {
        const char *c;
        size_t len;
        while (*p == '/')
            p++;
        if (!*p)
            break;
        c = p;
        len = strcspn(p, "/");
        p += len;
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) {
            free(s);
            return md_error(ctx, -EINVAL, "install directory '%s': '.' and '..' not allowed", in);
        }
        *w++ = '/';
        memcpy(w, c, len);
        w += len;
    }
    if (w == s)
        *w++ = '/';
    *w = '\0';
    *out = s;
    return 0;
}

/* Create the missing directories of @dir (0755 root, the context epoch);
 * returns the inode of @dir. */
static int make_dirs(struct install *in, const char *dir, ext2_ino_t *ret)
{
    int r = md_ext_mkdir_p(in->ext, dir, NULL, ret);
    if (r < 0)
        md_error_prefix(in->ctx, "%s: %s", in->img, in->where);
    return r;
}

/* Look up @dir without creating anything: inode or 0 when (partly) missing.
 * Fails if a component exists but is not a directory. */
static int find_dir(struct install *in, const char *dir, ext2_ino_t *ret)
{
    ext2_ino_t ino;
    struct ext2_inode inode;
    errcode_t err;

    *ret = 0;
    err = ext2fs_namei(in->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, dir, &ino);
    if (err == EXT2_ET_FILE_NOT_FOUND || err == EXT2_ET_NO_DIRECTORY) {
        /* is some existing component not a directory? walk the prefixes */
        char *tmp = strdup(dir), *slash;
        if (!tmp)
            return md_error(in->ctx, -ENOMEM, "out of memory");
        for (slash = strchr(tmp + 1, '/');; slash = strchr(slash + 1, '/')) {
            if (slash)
                *slash = '\0';
            if (ext2fs_namei(in->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, tmp, &ino) == 0 &&
                ext2fs_read_inode(in->fs, ino, &inode) == 0 && !LINUX_S_ISDIR(inode.i_mode)) {
                int r = md_error(in->ctx, -ENOTDIR, "%s: %s: '%s' exists and is not a directory",
                                 in->img, in->where, tmp);
                free(tmp);
                return r;
            }
            if (!slash)
                break;
            *slash = '/';
        }
        free(tmp);
        return 0;
    }
    if (err)
        return ext_err(in->ctx, err, "%s: %s: lookup '%s'", in->img, in->where, dir);
    err = ext2fs_read_inode(in->fs, ino, &inode);
    if (err)
        return ext_err(in->ctx, err, "%s: %s: read inode of '%s'", in->img, in->where, dir);
    if (!LINUX_S_ISDIR(inode.i_mode))
        return md_error(in->ctx, -ENOTDIR, "%s: %s: '%s' exists and is not a directory",
                        in->img, in->where, dir);
    *ret = ino;
    return 0;
}

/* Existing regular file @name in the install dir: its inode, 0 if none. */
static int find_file(struct install *in, const char *name, ext2_ino_t *ret,
                     struct ext2_inode *inode)
{
    const char *dir = in->dir;
    errcode_t err;

    *ret = 0;
    if (!in->dir_ino)
        return 0;
    err = ext2fs_lookup(in->fs, in->dir_ino, name, (int)strlen(name), NULL, ret);
    if (err == EXT2_ET_FILE_NOT_FOUND) {
        *ret = 0;
        return 0;
    }
    if (!err)
        err = ext2fs_read_inode(in->fs, *ret, inode);
    if (err)
        return ext_err(in->ctx, err, "%s: %s: %s/%s", in->img, in->where, dir, name);
    if (!LINUX_S_ISREG(inode->i_mode))
        return md_error(in->ctx, -EEXIST, "%s: %s: %s%s%s exists and is not a regular file",
                        in->img, in->where, dir, strcmp(dir, "/") ? "/" : "", name);
    return 0;
}

/* Blocks of @ino that are holes or unwritten extents: the ext2 driver of
 * syslinux (core/fs/ext2/bmap.c) maps neither, it would read garbage or fail
 * with an I/O error.  Writers that skip all-zero blocks (mke2fs -d, our own
 * ext module) produce such files. */
static int count_holes(struct install *in, ext2_ino_t ino, const struct ext2_inode *inode,
                       uint64_t *holes)
{
    uint64_t nb = (EXT2_I_SIZE(inode) + in->fs->blocksize - 1) / in->fs->blocksize, j;
    struct ext2_inode copy = *inode;

    *holes = 0;
    for (j = 0; j < nb; j++) {
        blk64_t pblk = 0;
        int flags = 0;
        errcode_t err = ext2fs_bmap2(in->fs, ino, &copy, NULL, 0, j, &flags, &pblk);
        if (err)
            return ext_err(in->ctx, err, "%s: map inode %u", in->img, ino);
        if (!pblk || (flags & BMAP_RET_UNINIT))
            (*holes)++;
    }
    return 0;
}

/* Allocate zeroed, initialised blocks for the holes of @ino. */
static int fill_holes(struct install *in, ext2_ino_t ino, const char *path, uint64_t holes)
{
    struct ext2_inode inode;
    uint64_t nb;
    errcode_t err = ext2fs_read_inode(in->fs, ino, &inode);

    if (!err) {
        nb = (EXT2_I_SIZE(&inode) + in->fs->blocksize - 1) / in->fs->blocksize;
        err = ext2fs_fallocate(in->fs, EXT2_FALLOCATE_ZERO_BLOCKS | EXT2_FALLOCATE_FORCE_INIT,
                               ino, NULL, ~0ULL, 0, nb);
    }
    if (err)
        return ext_err(in->ctx, err, "%s: %s: fill the holes of %s", in->img, in->where, path);
    md_info(in->ctx, "%s: filled %llu hole block(s) with zeros: EXTLINUX cannot read "
            "sparse files", path, (unsigned long long)holes);
    return 0;
}

/* Write a file EXTLINUX reads with the ext module, then make sure it has
 * no holes (the ext module leaves all-zero blocks unallocated). */
static int write_file(struct install *in, const char *name, const void *data, size_t len,
                      uint32_t mode)
{
    const char *dir = in->dir;
    md_attr attr = MD_ATTR_INIT;
    struct ext2_inode inode;
    ext2_ino_t ino;
    uint64_t holes = 0;
    errcode_t err;
    char *p;
    int r;

    p = md_asprintf("%s/%s", strcmp(dir, "/") ? dir : "", name);
    if (!p)
        return md_error(in->ctx, -ENOMEM, "out of memory");
    attr.mode = mode;
    r = md_ext_write_file(in->ext, p, data, len, &attr);
    if (r < 0) {
        md_error_prefix(in->ctx, "%s: %s", in->img, in->where);
        goto out;
    }
    err = ext2fs_lookup(in->fs, in->dir_ino, name, (int)strlen(name), NULL, &ino);
    if (!err)
        err = ext2fs_read_inode(in->fs, ino, &inode);
    if (err) {
        r = ext_err(in->ctx, err, "%s: %s: %s", in->img, in->where, p);
        goto out;
    }
    r = count_holes(in, ino, &inode, &holes);
    if (r >= 0 && holes)
        r = fill_holes(in, ino, p, holes);
out:
    free(p);
    return r;
}

/* Take the ADV copies at the end of an existing ldlinux.sys into in->adv. */
static void read_old_adv(struct install *in, ext2_ino_t ino, const struct ext2_inode *inode)
{
    uint8_t *adv = in->adv;
    uint64_t size = EXT2_I_SIZE(inode);
    ext2_file_t f;
    unsigned int got = 0;
    uint8_t tmp[2 * ADV_SIZE];

    if (size < 2 * ADV_SIZE || ext2fs_file_open(in->fs, ino, 0, &f))
        return;
    if (!ext2fs_file_llseek(f, size - 2 * ADV_SIZE, EXT2_SEEK_SET, NULL) &&
        !ext2fs_file_read(f, tmp, sizeof(tmp), &got) && got == sizeof(tmp)) {
        int k = md_extlinux_adv_valid(tmp);
        if (k >= 0) {
            /* both copies get the valid one, as syslinux_validate_adv */
            memcpy(adv, tmp + (size_t)k * ADV_SIZE, ADV_SIZE);
            memcpy(adv + ADV_SIZE, tmp + (size_t)k * ADV_SIZE, ADV_SIZE);
            md_dbg(in->ctx, "kept the ADV of the existing ldlinux.sys");
        }
    }
    ext2fs_file_close(f);
}

/* Mark (@mark true) or unmark the data blocks of @ino in the in-memory
 * block bitmap: lets the free-run search consider the old ldlinux.sys space
 * free before anything is written. */
static int toggle_blocks(struct install *in, ext2_ino_t ino, uint64_t size, bool mark)
{
    uint64_t nb = (size + in->fs->blocksize - 1) / in->fs->blocksize, j;
    for (j = 0; j < nb; j++) {
        blk64_t pblk = 0;
        errcode_t err = ext2fs_bmap2(in->fs, ino, NULL, NULL, 0, j, NULL, &pblk);
        if (err)
            return ext_err(in->ctx, err, "%s: map ldlinux.sys", in->img);
        if (!pblk)
            continue;
        if (mark)
            ext2fs_mark_block_bitmap2(in->fs->block_map, pblk);
        else
            ext2fs_unmark_block_bitmap2(in->fs->block_map, pblk);
    }
    return 0;
}

static int read_small_file(md_ctx *ctx, const char *path, const char *pkg, char **data,
                           size_t *size)
{
    int r;
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return md_error(ctx, -ENOENT, "%s: not found (Debian package %s; or name another "
                        "syslinux directory with --syslinux-dir)", path, pkg);
    r = md_read_file(ctx, path, data, size);
    return r;
}

/* Is @name one of the files this install writes into the install dir? */
static bool is_own_file(const struct install *in, const char *name)
{
    size_t k;
    for (k = 0; k < in->nfiles; k++)
        if (!strcmp(name, in->files[k].name))
            return true;
    return false;
}

/* Look up a file the config names: 1 (and its inode) when it is a regular
 * file EXTLINUX can read, 0 when it is missing and only logged (!@strict). */
static int lookup_ref(struct install *in, const struct md_sl_ref *ref, bool strict,
                      ext2_ino_t *ino, struct ext2_inode *inode)
{
    const char *p = ref->path;
    errcode_t err;

    if (p[0] != '/' && !in->dir_ino)
        err = EXT2_ET_FILE_NOT_FOUND;
    else
        err = ext2fs_namei_follow(in->fs, EXT2_ROOT_INO, p[0] == '/' ? EXT2_ROOT_INO : in->dir_ino,
                                  p, ino);
    if ((err == EXT2_ET_FILE_NOT_FOUND || err == EXT2_ET_NO_DIRECTORY) && !strict) {
        md_warn(in->ctx, "existing extlinux.conf line %u: %s '%s' not found", ref->line,
                ref->what, p);
        return 0;
    }
    if (err == EXT2_ET_FILE_NOT_FOUND || err == EXT2_ET_NO_DIRECTORY)
        return md_error(in->ctx, -ENOENT, "extlinux.conf line %u: %s '%s' not found in %s (%s)%s%s",
                        ref->line, ref->what, p, in->img, in->where,
                        p[0] == '/' ? "" : "; relative to ", p[0] == '/' ? "" : in->dir);
    if (err)
        return ext_err(in->ctx, err, "extlinux.conf line %u: %s '%s'", ref->line, ref->what, p);
    if ((err = ext2fs_read_inode(in->fs, *ino, inode)) != 0)
        return ext_err(in->ctx, err, "extlinux.conf line %u: %s '%s'", ref->line, ref->what, p);
    if (!LINUX_S_ISREG(inode->i_mode))
        return md_error(in->ctx, -EINVAL, "extlinux.conf line %u: %s '%s' is not a regular file",
                        ref->line, ref->what, p);
    if (inode->i_flags & EXT4_INLINE_DATA_FL)
        return md_error(in->ctx, -ENOTSUP, "extlinux.conf line %u: %s '%s' is stored as "
                        "inline data, which EXTLINUX cannot read", ref->line, ref->what, p);
    return 1;
}

/* List @ino (named @path) in in->sparse if it has holes and is not listed yet. */
static int note_sparse(struct install *in, ext2_ino_t ino, const struct ext2_inode *inode,
                       const char *path)
{
    struct sparse_file *v;
    uint64_t holes = 0;
    size_t k;
    char *cp;
    int r;

    r = count_holes(in, ino, inode, &holes);
    if (r < 0 || !holes)
        return r;
    for (k = 0; k < in->nsparse; k++)
        if (in->sparse[k].ino == ino)
            return 0; /* already listed */
    v = realloc(in->sparse, (in->nsparse + 1) * sizeof(*v));
    cp = strdup(path);
    if (v)
        in->sparse = v;
    if (!v || !cp) {
        free(cp);
        return md_error(in->ctx, -ENOMEM, "out of memory");
    }
    v[in->nsparse].ino = ino;
    v[in->nsparse].holes = holes;
    v[in->nsparse].path = cp;
    in->nsparse++;
    return 0;
}

/* The kernels and initrds config @text names must exist (@strict) and get
 * their holes filled. */
static int check_refs(struct install *in, const char *text, bool strict)
{
    struct md_sl_ref *refs;
    size_t n, i;
    int r;

    r = md_extlinux_config_refs(in->ctx, text, &refs, &n);
    if (r < 0)
        return r;
    for (i = 0; i < n && r >= 0; i++) {
        struct ext2_inode inode;
        ext2_ino_t ino;

        /* files this install writes into the install dir count as present */
        if (is_own_file(in, refs[i].path))
            continue;
        r = lookup_ref(in, &refs[i], strict, &ino, &inode);
        if (r > 0)
            r = note_sparse(in, ino, &inode, refs[i].path);
    }
    md_extlinux_refs_free(refs, n);
    return r;
}

/* The table type and its boot code (mbr.bin or gptmbr.bin) into in->plan. */
static int pt_prepare(struct install *in)
{
    struct pt_plan *plan = &in->plan;
    md_probe *probe = NULL;
    const char *table;
    char *bin = NULL, *data = NULL;
    size_t size;
    int r;

    r = md_image_probe(in->image, &probe);
    if (r < 0)
        return r;
    table = md_probe_table(probe);
    if (table && !strcmp(table, "dos")) {
        plan->type = 1;
        if (in->partno > 4)
            r = md_error(in->ctx, -EINVAL, "%s: partition %u is a logical partition; the MBR boot "
                         "code (mbr.bin) boots primary partitions 1-4 only", in->img, in->partno);
    } else if (table && !strcmp(table, "gpt")) {
        plan->type = 2;
    } else {
        r = md_error(in->ctx, -EINVAL, "%s: partition %u: no MBR or GPT partition table", in->img,
                     in->partno);
    }
    md_probe_free(probe);
    if (r < 0)
        return r;
    bin = md_asprintf("%s/mbr/%s", in->sdir, plan->type == 1 ? "mbr.bin" : "gptmbr.bin");
    if (!bin)
        return md_error(in->ctx, -ENOMEM, "out of memory");
    r = read_small_file(in->ctx, bin, "syslinux-common", &data, &size);
    if (r >= 0 && (size < 64 || size > sizeof(plan->code)))
        r = md_error(in->ctx, -EINVAL, "%s: %zu bytes, not MBR boot code (at most 440)", bin, size);
    if (r >= 0) {
        memcpy(plan->code, data, size);
        plan->code_len = size;
    }
    free(bin);
    free(data);
    return r;
}

static int pt_apply(struct install *in)
{
    /* MBR: ours becomes the only active partition (mbr.bin boots the first
     * active one); GPT: attribute bit 2, which gptmbr.bin looks for */
    int r = md_image_set_bootable(in->image, in->partno);
    if (r < 0)
        return r;
    /* after libfdisk, which writes back the sector it read: boot code only,
     * the disk signature and the table stay */
    r = md_pwrite_full(in->fd, in->plan.code, in->plan.code_len, 0);
    if (r < 0)
        return md_error_errno(in->ctx, r, "%s: write MBR boot code", in->img);
    return 0;
}

static int check_features(struct install *in)
{
    struct ext2_super_block *sb = in->fs->super;

    if (ext2fs_has_feature_inline_data(sb))
        return md_error(in->ctx, -ENOTSUP, "%s: %s: the filesystem has the inline_data feature, "
                        "which EXTLINUX cannot read (make it with -O ^inline_data)",
                        in->img, in->where);
    if (ext2fs_has_feature_bigalloc(sb))
        return md_error(in->ctx, -ENOTSUP, "%s: %s: the filesystem has the bigalloc feature, "
                        "which EXTLINUX cannot boot from", in->img, in->where);
    if (in->fs->blocksize > 32768)
        return md_error(in->ctx, -ENOTSUP, "%s: %s: block size %u: EXTLINUX boots from block "
                        "sizes up to 32 KiB", in->img, in->where, in->fs->blocksize);
    if (ext2fs_blocks_count(sb) >= (1ULL << 32))
        return md_error(in->ctx, -ENOTSUP, "%s: %s: more than 2^32 blocks: EXTLINUX reads only "
                        "the low 32 bits of the block count", in->img, in->where);
    if (ext2fs_has_feature_journal_needs_recovery(sb))
        return md_error(in->ctx, -EINVAL, "%s: %s: the journal needs recovery (run e2fsck first)",
                        in->img, in->where);
    if (ext2fs_has_feature_encrypt(sb) || ext2fs_has_feature_casefold(sb))
        md_warn(in->ctx, "%s: encrypted/casefolded directories cannot be read by EXTLINUX",
                in->img);
    if (ext2fs_blocks_count(sb) * in->fs->blocksize > in->part_size)
        return md_error(in->ctx, -EINVAL, "%s: %s: the filesystem (%llu bytes) is larger than "
                        "its partition (%llu bytes)", in->img, in->where,
                        (unsigned long long)(ext2fs_blocks_count(sb) * in->fs->blocksize),
                        (unsigned long long)in->part_size);
    return 0;
}

static int check_module_name(md_ctx *ctx, const char *m)
{
    size_t len = m ? strlen(m) : 0;
    if (!len || strchr(m, '/') || len < 5 || strcmp(m + len - 4, ".c32") || !strcmp(m, "ldlinux.c32"))
        return md_error(ctx, -EINVAL, "module '%s': expected a file name like menu.c32",
                        m ? m : "");
    return 0;
}

/* ---- the phases of md_extlinux_install(), in order ----------------------- */

/* The options: version, flags, the install dir. */
static int install_setup(struct install *in, md_image *img, uint32_t partno,
                         const md_extlinux_opts *opts)
{
    static const md_extlinux_opts defaults = MD_EXTLINUX_OPTS_INIT;
    int r;

    in->ctx = md_image_ctx(img);
    in->image = img;
    in->partno = partno;
    in->path = md_image_path(img);
    in->img = md_image_name(img);
    in->epoch = md_ctx_get_epoch(in->ctx);
    in->o = defaults;
    if (opts) {
        r = md_check_version(in->ctx, "md_extlinux_opts", opts->version, MD_EXTLINUX_OPTS_VERSION);
        if (r < 0)
            return r;
        in->o = *opts;
    }
    if (in->o.flags & ~(MD_EXTLINUX_NO_MBR | MD_EXTLINUX_RAID | MD_EXTLINUX_STUPID))
        return md_error(in->ctx, -EINVAL, "md_extlinux_install: unknown flags 0x%x", in->o.flags);
    in->sdir = in->o.syslinux_dir ? in->o.syslinux_dir : DEFAULT_SYSLINUX_DIR;
    if (partno)
        snprintf(in->where, sizeof(in->where), "partition %u", partno);
    else
        snprintf(in->where, sizeof(in->where), "whole image");
    return norm_dir(in->ctx, in->o.dir ? in->o.dir : DEFAULT_DIR, &in->dir);
}

/* 1. everything from the host: the blobs (boot sector, ldlinux.sys, ldlinux.c32) ... */
static int load_blobs(struct install *in)
{
    size_t n;
    int r;

    r = md_extlinux_blobs_load(in->ctx, in->o.extlinux_bin ? in->o.extlinux_bin : DEFAULT_EXTLINUX_BIN,
                               in->sdir, &in->blobs);
    if (r < 0)
        return r;
    if (in->blobs.ldlen % SECTOR)
        return md_error(in->ctx, -EINVAL, "%s: ldlinux.sys length %zu is not whole sectors",
                        in->blobs.source, in->blobs.ldlen);
    for (n = 0; in->o.modules && in->o.modules[n]; n++)
        ;
    in->files = md_calloc(n + 2, sizeof(*in->files));
    if (!in->files)
        return md_error(in->ctx, -ENOMEM, "out of memory");
    /* ldlinux.c32 is written from the blob itself (taken over, not copied) */
    in->files[0].data = (char *)in->blobs.c32;
    in->files[0].size = in->blobs.c32len;
    in->blobs.c32 = NULL;
    in->files[0].name = strdup("ldlinux.c32");
    in->nfiles = 1;
    if (!in->files[0].name)
        return md_error(in->ctx, -ENOMEM, "out of memory");
    return 0;
}

/* ... and the modules (a module named twice is read once) */
static int load_modules(struct install *in)
{
    const char *const *m;
    int r;

    for (m = in->o.modules; m && *m; m++) {
        struct sl_file *f = &in->files[in->nfiles];
        char *mp;

        r = check_module_name(in->ctx, *m);
        if (r < 0)
            return r;
        if (is_own_file(in, *m))
            continue;
        mp = md_asprintf("%s/modules/bios/%s", in->sdir, *m);
        if (!mp)
            return md_error(in->ctx, -ENOMEM, "out of memory");
        r = read_small_file(in->ctx, mp, "syslinux-common", &f->data, &f->size);
        free(mp);
        if (r < 0)
            return r;
        f->name = strdup(*m);
        in->nfiles++;
        if (!f->name)
            return md_error(in->ctx, -ENOMEM, "out of memory");
    }
    return 0;
}

/* 2. the image: the partition, its table type and MBR boot code ... */
static int find_partition(struct install *in)
{
    int r = md_image_partition_range(in->image, in->partno, &in->part_off, &in->part_size);
    if (r >= 0 && in->partno && !(in->o.flags & MD_EXTLINUX_NO_MBR))
        r = pt_prepare(in);
    return r;
}

/* ... and the filesystem on it */
static int open_fs(struct install *in)
{
    uint8_t magic[2];
    int r;

    in->fd = open(in->path, O_RDWR | O_CLOEXEC);
    if (in->fd < 0)
        return md_error_errno(in->ctx, -errno, "%s", in->img);
    if (in->part_size < 2048 || md_pread_full(in->fd, magic, 2, in->part_off + 1024 + 0x38) < 0 ||
        md_get_le16(magic) != EXT2_SUPER_MAGIC)
        return md_error(in->ctx, -EINVAL, "%s: %s: no ext2/3/4 filesystem there%s", in->img,
                        in->where, in->partno ? "" : " (for a partitioned image name the partition)");
    r = md_ext_open(in->image, in->partno, 0, &in->ext);
    if (r < 0)
        return r;
    in->fs = md_ext_fs(in->ext);
    return check_features(in);
}

/* 3. the install dir, an existing ldlinux.sys (its ADV is kept), and no
 * non-regular file where ours go */
static int find_existing(struct install *in)
{
    struct ext2_inode inode;
    ext2_ino_t ino;
    size_t i;
    int r;

    r = find_dir(in, in->dir, &in->dir_ino);
    if (r >= 0)
        r = find_file(in, "ldlinux.sys", &in->old_ino, &in->old_inode);
    if (r < 0)
        return r;
    md_extlinux_adv_init(in->adv);
    if (in->old_ino)
        read_old_adv(in, in->old_ino, &in->old_inode);
    /* the pre-4.0 name: extlinux removes it, so does an update here */
    r = find_file(in, "extlinux.sys", &in->legacy_ino, &inode);
    if (r < 0)
        return r;
    if (in->legacy_ino && !in->old_ino)
        read_old_adv(in, in->legacy_ino, &inode);
    for (i = 0; i < in->nfiles; i++) {
        r = find_file(in, in->files[i].name, &ino, &inode);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ... and the config's references */
static int check_config(struct install *in)
{
    struct ext2_inode inode;
    ext2_ino_t ino;
    void *text = NULL;
    size_t len;
    char *cp;
    int r;

    if (in->o.config_text) {
        r = find_file(in, "extlinux.conf", &ino, &inode);
        return r < 0 ? r : check_refs(in, in->o.config_text, true);
    }
    if (!in->dir_ino)
        return 0;
    /* keeping an existing config: its kernel and initrds must not be
     * sparse either; missing ones are only logged (it may use syntax
     * we do not follow, e.g. INCLUDE or a different working dir) */
    cp = md_asprintf("%s/extlinux.conf", strcmp(in->dir, "/") ? in->dir : "");
    if (!cp)
        return md_error(in->ctx, -ENOMEM, "out of memory");
    r = find_file(in, "extlinux.conf", &ino, &inode);
    if (r >= 0 && ino)
        r = md_ext_read_file(in->ext, cp, &text, &len);
    free(cp);
    if (r >= 0 && text)
        r = check_refs(in, text, false);
    free(text);
    return r;
}

/* 4. one contiguous run for ldlinux.sys (old blocks count as free) ... */
static int place_ldlinux(struct install *in)
{
    blk64_t goal = 0, got_len = 0;
    errcode_t err;
    int r;

    in->ldl_size = in->blobs.ldlen + 2 * ADV_SIZE;
    in->nblocks = (in->ldl_size + in->fs->blocksize - 1) / in->fs->blocksize;
    if (in->old_ino && (r = toggle_blocks(in, in->old_ino, EXT2_I_SIZE(&in->old_inode), false)) < 0)
        return r;
    if (in->old_ino)
        ext2fs_bmap2(in->fs, in->old_ino, NULL, NULL, 0, 0, NULL, &goal);
    err = ext2fs_new_range(in->fs, EXT2_NEWRANGE_MIN_LENGTH,
                           goal ? goal : in->fs->super->s_first_data_block, in->nblocks, NULL,
                           &in->run, &got_len);
    if (in->old_ino && (r = toggle_blocks(in, in->old_ino, EXT2_I_SIZE(&in->old_inode), true)) < 0)
        return r;
    if (!err) {
        /* reserve the run in memory only (no counts): the directories made
         * below must not take blocks from it */
        ext2fs_mark_block_bitmap_range2(in->fs->block_map, in->run, (unsigned int)in->nblocks);
        in->reserved = true;
    }
    if (err == EXT2_ET_BLOCK_ALLOC_FAIL)
        return md_error(in->ctx, -ENOSPC, "%s: %s: no free run of %llu contiguous blocks for "
                        "ldlinux.sys (%llu bytes)", in->img, in->where,
                        (unsigned long long)in->nblocks, (unsigned long long)in->ldl_size);
    if (err)
        return ext_err(in->ctx, err, "%s: %s: find room for ldlinux.sys", in->img, in->where);
    return 0;
}

/* ... and a rough space check for the other files: data + a few map blocks each */
static int check_space(struct install *in)
{
    uint64_t need = 8 + in->nblocks;
    size_t i;

    for (i = 0; i < in->nfiles; i++)
        need += in->files[i].size / in->fs->blocksize + 2;
    if (in->o.config_text)
        need += strlen(in->o.config_text) / in->fs->blocksize + 2;
    for (i = 0; i < in->nsparse; i++)
        need += in->sparse[i].holes + in->sparse[i].holes / 256 + 2;
    if (ext2fs_free_blocks_count(in->fs->super) < need)
        return md_error(in->ctx, -ENOSPC, "%s: %s: not enough free space for the boot loader "
                        "files (%llu blocks needed)", in->img, in->where, (unsigned long long)need);
    return 0;
}

/* 5. patch in memory: the file will be at blocks run .. run+nblocks-1 */
static int patch_ldlinux(struct install *in)
{
    uint64_t spb = in->fs->blocksize / SECTOR, *sect;
    size_t nsect = in->ldl_size / SECTOR, i;
    int r;

    sect = md_calloc(nsect, sizeof(*sect));
    in->ldl = md_calloc(in->nblocks, in->fs->blocksize);
    if (!sect || !in->ldl) {
        free(sect);
        return md_error(in->ctx, -ENOMEM, "out of memory");
    }
    for (i = 0; i < nsect; i++)
        sect[i] = (in->run + i / spb) * spb + i % spb;
    r = md_extlinux_patch(in->ctx, &in->blobs, sect, nsect, in->dir, in->o.flags,
                          in->part_off / SECTOR, in->part_size / SECTOR, in->vbr, in->ldl);
    if (r >= 0) {
        memcpy(in->ldl + in->blobs.ldlen, in->adv, sizeof(in->adv));
        md_dbg(in->ctx, "ldlinux.sys: blocks %llu..%llu, first sector %llu, %d extent(s)",
               (unsigned long long)in->run, (unsigned long long)(in->run + in->nblocks - 1),
               (unsigned long long)sect[0], r);
    }
    free(sect);
    return r;
}

/* 6. the inode of ldlinux.sys: the old one emptied, or a new one linked
 * into the install dir (which exists by now) */
static int ldlinux_inode(struct install *in, ext2_ino_t *ret, struct ext2_inode *inode)
{
    ext2_ino_t ino = in->old_ino;
    errcode_t err;
    int r;

    if (ino) {
        err = ext2fs_read_inode(in->fs, ino, inode);
        if (!err)
            err = ext2fs_punch(in->fs, ino, inode, NULL, 0, ~0ULL);
    } else {
        err = ext2fs_new_inode(in->fs, in->dir_ino, LINUX_S_IFREG | 0444, NULL, &ino);
        if (!err) {
            r = md_ext_link(in->ext, in->dir_ino, "ldlinux.sys", ino, S_IFREG);
            if (r < 0) {
                md_error_prefix(in->ctx, "%s: %s: create %s/ldlinux.sys", in->img, in->where,
                                in->dir);
                return r;
            }
            ext2fs_inode_alloc_stats2(in->fs, ino, +1, 0);
            memset(inode, 0, sizeof(*inode));
            inode->i_mode = LINUX_S_IFREG | 0444;
            inode->i_links_count = 1;
            if (ext2fs_has_feature_extents(in->fs->super))
                inode->i_flags |= EXT4_EXTENTS_FL;
            err = ext2fs_write_new_inode(in->fs, ino, inode);
        }
        if (!err && (inode->i_flags & EXT4_EXTENTS_FL)) {
            ext2_extent_handle_t h;
            err = ext2fs_extent_open2(in->fs, ino, inode, &h);
            if (!err) {
                ext2fs_extent_free(h);
                err = ext2fs_write_inode(in->fs, ino, inode);
            }
        }
    }
    if (err)
        return ext_err(in->ctx, err, "%s: %s: create %s/ldlinux.sys", in->img, in->where, in->dir);
    *ret = ino;
    return 0;
}

static int ldlinux_write_error(struct install *in, errcode_t err)
{
    return ext_err(in->ctx, err, "%s: %s: write %s/ldlinux.sys", in->img, in->where, in->dir);
}

/* ... gets the blocks of the run, in order (checked) ... */
static int ldlinux_map(struct install *in, ext2_ino_t ino, const struct ext2_inode *inode)
{
    errcode_t err = 0;
    blk64_t j;

    ext2fs_unmark_block_bitmap_range2(in->fs->block_map, in->run, (unsigned int)in->nblocks);
    in->reserved = false;
    ext2fs_block_alloc_stats_range(in->fs, in->run, (blk_t)in->nblocks, +1);
    for (j = 0; j < in->nblocks && !err; j++) {
        blk64_t pblk = in->run + j;
        err = ext2fs_bmap2(in->fs, ino, NULL, NULL,
                           BMAP_SET | ((inode->i_flags & EXT4_EXTENTS_FL) ? 0 : BMAP_ALLOC),
                           j, NULL, &pblk);
    }
    for (j = 0; j < in->nblocks && !err; j++) {
        blk64_t pblk = 0;
        err = ext2fs_bmap2(in->fs, ino, NULL, NULL, 0, j, NULL, &pblk);
        if (!err && pblk != in->run + j)
            err = EXT2_ET_BAD_BLOCK_NUM;
    }
    return err ? ldlinux_write_error(in, err) : 0;
}

/* ... then its size, owner, mode, IMMUTABLE flag and times, then its data */
static int ldlinux_write(struct install *in, ext2_ino_t ino)
{
    struct ext2_inode_large big;
    unsigned isize = EXT2_INODE_SIZE(in->fs->super);
    errcode_t err;
    int r;

    /* the whole inode (extra timestamps, crtime) as the ext module reads it */
    memset(&big, 0, sizeof(big));
    err = ext2fs_read_inode_full(in->fs, ino, (struct ext2_inode *)&big,
                                 (int)(isize < sizeof(big) ? isize : sizeof(big)));
    if (!err)
        err = ext2fs_iblk_add_blocks(in->fs, (struct ext2_inode *)&big, in->nblocks);
    if (!err)
        err = ext2fs_inode_size_set(in->fs, (struct ext2_inode *)&big, in->ldl_size);
    if (!err) {
        big.i_mode = LINUX_S_IFREG | 0444;
        big.i_uid = big.i_gid = 0;
        ext2fs_set_i_uid_high(big, 0);
        ext2fs_set_i_gid_high(big, 0);
        /* immutable: keeps the blocks whose numbers the boot code holds */
        big.i_flags |= EXT2_IMMUTABLE_FL;
        r = md_ext_write_inode(in->ext, ino, &big, in->epoch, 0);
        if (r < 0) {
            md_error_prefix(in->ctx, "%s: %s: write %s/ldlinux.sys", in->img, in->where, in->dir);
            return r;
        }
        err = io_channel_write_blk64(in->fs->io, in->run, (int)in->nblocks, in->ldl);
    }
    return err ? ldlinux_write_error(in, err) : 0;
}

/* ---- validated: from here on we write ---- */
static int write_ldlinux(struct install *in)
{
    struct ext2_inode inode;
    ext2_ino_t ino = 0;
    int r;

    in->writing = true;
    r = make_dirs(in, in->dir, &in->dir_ino);
    if (r >= 0)
        r = ldlinux_inode(in, &ino, &inode);
    if (r >= 0)
        r = ldlinux_map(in, ino, &inode);
    if (r >= 0)
        r = ldlinux_write(in, ino);
    return r;
}

/* 7. the old extlinux.sys goes; the kernels and initrds get their holes
 * filled; ldlinux.c32, the modules and the config are written */
static int write_files(struct install *in)
{
    size_t i;
    int r;

    if (in->legacy_ino) {
        r = md_ext_unlink(in->ext, in->dir_ino, "extlinux.sys");
        if (r < 0)
            return r;
    }
    for (i = 0; i < in->nsparse; i++) {
        r = fill_holes(in, in->sparse[i].ino, in->sparse[i].path, in->sparse[i].holes);
        if (r < 0)
            return r;
    }
    for (i = 0; i < in->nfiles; i++) {
        r = write_file(in, in->files[i].name, in->files[i].data, in->files[i].size, 0444);
        if (r < 0)
            return r;
    }
    if (in->o.config_text)
        return write_file(in, "extlinux.conf", in->o.config_text, strlen(in->o.config_text),
                          0644);
    return 0;
}

/* 8. the filesystem is closed (flushed); then the boot sector, and for a
 * partitioned image the boot flag and the MBR boot code */
static int write_boot_sectors(struct install *in)
{
    int r = md_ext_close(in->ext);

    in->ext = NULL;
    in->fs = NULL;
    if (r < 0)
        return r;
    r = md_pwrite_full(in->fd, in->vbr, SECTOR, in->part_off);
    if (r < 0)
        return md_error_errno(in->ctx, r, "%s: write the boot sector", in->img);
    if (in->plan.type)
        return pt_apply(in);
    return 0;
}

static void install_free(struct install *in)
{
    size_t i;

    if (in->fs && in->reserved)
        ext2fs_unmark_block_bitmap_range2(in->fs->block_map, in->run, (unsigned int)in->nblocks);
    if (in->ext && in->writing)
        md_ext_close(in->ext); /* keep what was written consistent */
    else
        md_ext_free(in->ext); /* not flushed: nothing reaches the image on error */
    if (in->fd >= 0)
        close(in->fd);
    for (i = 0; in->files && i < in->nfiles; i++) {
        free(in->files[i].name);
        free(in->files[i].data);
    }
    free(in->files);
    for (i = 0; i < in->nsparse; i++)
        free(in->sparse[i].path);
    free(in->sparse);
    free(in->ldl);
    free(in->dir);
    md_extlinux_blobs_free(&in->blobs);
}

MD_API int md_extlinux_install(md_image *img, uint32_t partno, const md_extlinux_opts *opts)
{
    struct install in;
    int r;

    if (!img)
        return -EINVAL;
    memset(&in, 0, sizeof(in));
    in.fd = -1;
    r = install_setup(&in, img, partno, opts);
    if (r >= 0)
        r = load_blobs(&in);
    if (r >= 0)
        r = load_modules(&in);
    if (r >= 0)
        r = find_partition(&in);
    if (r >= 0)
        r = open_fs(&in);
    if (r >= 0)
        r = find_existing(&in);
    if (r >= 0)
        r = check_config(&in);
    if (r >= 0)
        r = place_ldlinux(&in);
    if (r >= 0)
        r = check_space(&in);
    if (r >= 0)
        r = patch_ldlinux(&in);
    /* everything above only reads: an error up to here leaves the image as it was */
    if (r >= 0)
        r = write_ldlinux(&in);
    if (r >= 0)
        r = write_files(&in);
    if (r >= 0)
        r = write_boot_sectors(&in);
    install_free(&in);
    return r < 0 ? r : 0;
}
