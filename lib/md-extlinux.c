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

struct inst {
    md_ctx *ctx;
    const char *img;      /* image path for messages */
    char where[64];       /* "partition 2" / "whole image" */
    md_ext *ext;          /* the ext module's handle: one open path */
    ext2_filsys fs;       /* its libext2fs handle */
    int64_t epoch;
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
static int make_dirs(struct inst *in, const char *dir, ext2_ino_t *ret)
{
    int r = md_ext_mkdir_p(in->ext, dir, NULL, ret);
    if (r < 0)
        md_error_prefix(in->ctx, "%s: %s", in->img, in->where);
    return r;
}

/* Look up @dir without creating anything: inode or 0 when (partly) missing.
 * Fails if a component exists but is not a directory. */
static int find_dir(struct inst *in, const char *dir, ext2_ino_t *ret)
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

/* Existing regular file @name in @dir_ino: its inode, 0 if none. */
static int find_file(struct inst *in, ext2_ino_t dir_ino, const char *dir, const char *name,
                     ext2_ino_t *ret, struct ext2_inode *inode)
{
    errcode_t err;

    *ret = 0;
    if (!dir_ino)
        return 0;
    err = ext2fs_lookup(in->fs, dir_ino, name, (int)strlen(name), NULL, ret);
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

static int count_holes(struct inst *in, ext2_ino_t ino, const struct ext2_inode *inode,
                       uint64_t *holes);

/* Allocate zeroed, initialised blocks for the holes of @ino. */
static int fill_holes(struct inst *in, ext2_ino_t ino, const char *path, uint64_t holes)
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
static int write_file(struct inst *in, ext2_ino_t dir_ino, const char *dir, const char *name,
                      const void *data, size_t len, uint32_t mode)
{
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
    err = ext2fs_lookup(in->fs, dir_ino, name, (int)strlen(name), NULL, &ino);
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

/* Read the ADV copies at the end of an existing ldlinux.sys. */
static void read_old_adv(struct inst *in, ext2_ino_t ino, const struct ext2_inode *inode,
                         uint8_t *adv)
{
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
static int toggle_blocks(struct inst *in, ext2_ino_t ino, uint64_t size, bool mark)
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

/* Blocks of @ino that are holes or unwritten extents: the ext2 driver of
 * syslinux (core/fs/ext2/bmap.c) maps neither, it would read garbage or fail
 * with an I/O error.  Writers that skip all-zero blocks (mke2fs -d, our own
 * ext module) produce such files. */
static int count_holes(struct inst *in, ext2_ino_t ino, const struct ext2_inode *inode,
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

static int check_refs(struct inst *in, const char *text, const char *dir, ext2_ino_t dir_ino,
                      const struct sl_file *files, size_t nfiles, struct sparse_file **sparse,
                      size_t *nsparse, bool strict)
{
    struct md_sl_ref *refs;
    size_t n, i, k;
    int r;

    r = md_extlinux_config_refs(in->ctx, text, &refs, &n);
    if (r < 0)
        return r;
    for (i = 0; i < n && r >= 0; i++) {
        const char *p = refs[i].path;
        struct ext2_inode inode;
        ext2_ino_t ino;
        errcode_t err;

        /* files this install writes into the install dir count as present */
        for (k = 0; k < nfiles; k++)
            if (!strcmp(p, files[k].name))
                break;
        if (k < nfiles)
            continue;
        if (p[0] != '/' && !dir_ino)
            err = EXT2_ET_FILE_NOT_FOUND;
        else
            err = ext2fs_namei_follow(in->fs, EXT2_ROOT_INO, p[0] == '/' ? EXT2_ROOT_INO : dir_ino,
                                      p, &ino);
        if ((err == EXT2_ET_FILE_NOT_FOUND || err == EXT2_ET_NO_DIRECTORY) && !strict) {
            md_warn(in->ctx, "existing extlinux.conf line %u: %s '%s' not found", refs[i].line,
                    refs[i].what, p);
        } else if (err == EXT2_ET_FILE_NOT_FOUND || err == EXT2_ET_NO_DIRECTORY) {
            r = md_error(in->ctx, -ENOENT, "extlinux.conf line %u: %s '%s' not found in %s (%s)%s%s",
                         refs[i].line, refs[i].what, p, in->img, in->where,
                         p[0] == '/' ? "" : "; relative to ", p[0] == '/' ? "" : dir);
        } else if (err) {
            r = ext_err(in->ctx, err, "extlinux.conf line %u: %s '%s'", refs[i].line,
                        refs[i].what, p);
        } else if ((err = ext2fs_read_inode(in->fs, ino, &inode)) != 0) {
            r = ext_err(in->ctx, err, "extlinux.conf line %u: %s '%s'", refs[i].line,
                        refs[i].what, p);
        } else if (!LINUX_S_ISREG(inode.i_mode)) {
            r = md_error(in->ctx, -EINVAL, "extlinux.conf line %u: %s '%s' is not a regular file",
                         refs[i].line, refs[i].what, p);
        } else if (inode.i_flags & EXT4_INLINE_DATA_FL) {
            r = md_error(in->ctx, -ENOTSUP, "extlinux.conf line %u: %s '%s' is stored as "
                         "inline data, which EXTLINUX cannot read", refs[i].line,
                         refs[i].what, p);
        } else {
            uint64_t holes = 0;
            size_t k2;
            r = count_holes(in, ino, &inode, &holes);
            for (k2 = 0; r >= 0 && holes && k2 < *nsparse; k2++)
                if ((*sparse)[k2].ino == ino)
                    holes = 0; /* already listed */
            if (r >= 0 && holes) {
                struct sparse_file *v = realloc(*sparse, (*nsparse + 1) * sizeof(*v));
                char *cp = strdup(p);
                if (v)
                    *sparse = v;
                if (!v || !cp) {
                    free(cp);
                    r = md_error(in->ctx, -ENOMEM, "out of memory");
                } else {
                    v[*nsparse].ino = ino;
                    v[*nsparse].holes = holes;
                    v[*nsparse].path = cp;
                    (*nsparse)++;
                }
            }
        }
    }
    md_extlinux_refs_free(refs, n);
    return r;
}

/* Boot flag and boot code for a partitioned image. */
struct pt_plan {
    int type;             /* 0 none, 1 dos, 2 gpt */
    uint8_t code[440];
    size_t code_len;
};

static int pt_prepare(md_ctx *ctx, md_image *img, const char *path, uint32_t partno,
                      const char *sdir, struct pt_plan *plan)
{
    md_probe *probe = NULL;
    const char *table;
    char *bin = NULL, *data = NULL;
    size_t size;
    int r;

    r = md_image_probe(img, &probe);
    if (r < 0)
        return r;
    table = md_probe_table(probe);
    if (table && !strcmp(table, "dos")) {
        plan->type = 1;
        if (partno > 4)
            r = md_error(ctx, -EINVAL, "%s: partition %u is a logical partition; the MBR boot "
                         "code (mbr.bin) boots primary partitions 1-4 only", path, partno);
    } else if (table && !strcmp(table, "gpt")) {
        plan->type = 2;
    } else {
        r = md_error(ctx, -EINVAL, "%s: partition %u: no MBR or GPT partition table", path,
                     partno);
    }
    md_probe_free(probe);
    if (r < 0)
        return r;
    bin = md_asprintf("%s/mbr/%s", sdir, plan->type == 1 ? "mbr.bin" : "gptmbr.bin");
    if (!bin)
        return md_error(ctx, -ENOMEM, "out of memory");
    r = read_small_file(ctx, bin, "syslinux-common", &data, &size);
    if (r >= 0 && (size < 64 || size > sizeof(plan->code)))
        r = md_error(ctx, -EINVAL, "%s: %zu bytes, not MBR boot code (at most 440)", bin, size);
    if (r >= 0) {
        memcpy(plan->code, data, size);
        plan->code_len = size;
    }
    free(bin);
    free(data);
    return r;
}

static int pt_apply(md_ctx *ctx, md_image *img, const char *path, uint32_t partno,
                    const struct pt_plan *plan, int fd)
{
    /* MBR: ours becomes the only active partition (mbr.bin boots the first
     * active one); GPT: attribute bit 2, which gptmbr.bin looks for */
    int r = md_image_set_bootable(img, partno);
    if (r < 0)
        return r;
    /* after libfdisk, which writes back the sector it read: boot code only,
     * the disk signature and the table stay */
    r = md_pwrite_full(fd, plan->code, plan->code_len, 0);
    if (r < 0)
        return md_error_errno(ctx, r, "%s: write MBR boot code", path);
    return 0;
}

static int check_features(struct inst *in, uint64_t part_size)
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
    if (ext2fs_blocks_count(sb) * in->fs->blocksize > part_size)
        return md_error(in->ctx, -EINVAL, "%s: %s: the filesystem (%llu bytes) is larger than "
                        "its partition (%llu bytes)", in->img, in->where,
                        (unsigned long long)(ext2fs_blocks_count(sb) * in->fs->blocksize),
                        (unsigned long long)part_size);
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

MD_API int md_extlinux_install(md_image *img, uint32_t partno, const md_extlinux_opts *opts)
{
    md_extlinux_opts o = MD_EXTLINUX_OPTS_INIT;
    struct md_sl_blobs blobs;
    struct inst in;
    struct pt_plan plan;
    struct sl_file *files = NULL;
    struct sparse_file *sparse = NULL;
    size_t nsparse = 0;
    size_t nfiles = 0, i, nsect = 0;
    const char *path, *sdir;
    char *dir = NULL;
    uint64_t part_off = 0, part_size = 0, *sect = NULL, ldl_size, nblocks = 0, spb;
    uint8_t *ldl = NULL, vbr[SECTOR], adv[2 * ADV_SIZE], magic[2];
    ext2_ino_t dir_ino = 0, old_ino = 0, legacy_ino = 0;
    struct ext2_inode old_inode;
    blk64_t run = 0;
    errcode_t err;
    int fd = -1, r;
    bool reserved = false, writing = false;

    memset(&blobs, 0, sizeof(blobs));
    memset(&in, 0, sizeof(in));
    memset(&plan, 0, sizeof(plan));
    if (!img)
        return -EINVAL;
    in.ctx = md_image_ctx(img);
    path = md_image_path(img);
    in.img = md_image_name(img);
    in.epoch = md_ctx_get_epoch(in.ctx);
    if (opts) {
        r = md_check_version(in.ctx, "md_extlinux_opts", opts->version, MD_EXTLINUX_OPTS_VERSION);
        if (r < 0)
            return r;
        o = *opts;
    }
    if (o.flags & ~(MD_EXTLINUX_NO_MBR | MD_EXTLINUX_RAID | MD_EXTLINUX_STUPID))
        return md_error(in.ctx, -EINVAL, "md_extlinux_install: unknown flags 0x%x", o.flags);
    sdir = o.syslinux_dir ? o.syslinux_dir : DEFAULT_SYSLINUX_DIR;
    if (partno)
        snprintf(in.where, sizeof(in.where), "partition %u", partno);
    else
        snprintf(in.where, sizeof(in.where), "whole image");

    /* 1. everything from the host: blobs, modules, boot code */
    r = norm_dir(in.ctx, o.dir ? o.dir : DEFAULT_DIR, &dir);
    if (r < 0)
        goto out;
    r = md_extlinux_blobs_load(in.ctx, o.extlinux_bin ? o.extlinux_bin : DEFAULT_EXTLINUX_BIN,
                               sdir, &blobs);
    if (r < 0)
        goto out;
    if (blobs.ldlen % SECTOR) {
        r = md_error(in.ctx, -EINVAL, "%s: ldlinux.sys length %zu is not whole sectors",
                     blobs.source, blobs.ldlen);
        goto out;
    }
    for (i = 0; o.modules && o.modules[i]; i++)
        ;
    files = md_calloc(i + 2, sizeof(*files));
    if (!files) {
        r = md_error(in.ctx, -ENOMEM, "out of memory");
        goto out;
    }
    /* ldlinux.c32 is written from the blob itself (taken over, not copied) */
    files[0].data = (char *)blobs.c32;
    files[0].size = blobs.c32len;
    blobs.c32 = NULL;
    files[0].name = strdup("ldlinux.c32");
    nfiles = 1;
    if (!files[0].name) {
        r = md_error(in.ctx, -ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; o.modules && o.modules[i]; i++) {
        char *mp;
        size_t k;
        r = check_module_name(in.ctx, o.modules[i]);
        if (r < 0)
            goto out;
        for (k = 0; k < nfiles; k++)
            if (!strcmp(files[k].name, o.modules[i]))
                break;
        if (k < nfiles)
            continue;
        mp = md_asprintf("%s/modules/bios/%s", sdir, o.modules[i]);
        if (!mp) {
            r = md_error(in.ctx, -ENOMEM, "out of memory");
            goto out;
        }
        r = read_small_file(in.ctx, mp, "syslinux-common", &files[nfiles].data, &files[nfiles].size);
        free(mp);
        if (r < 0)
            goto out;
        files[nfiles].name = strdup(o.modules[i]);
        nfiles++;
        if (!files[nfiles - 1].name) {
            r = md_error(in.ctx, -ENOMEM, "out of memory");
            goto out;
        }
    }

    /* 2. the image: partition, table type, filesystem */
    r = md_image_partition_range(img, partno, &part_off, &part_size);
    if (r < 0)
        goto out;
    if (partno && !(o.flags & MD_EXTLINUX_NO_MBR)) {
        r = pt_prepare(in.ctx, img, in.img, partno, sdir, &plan);
        if (r < 0)
            goto out;
    }
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        r = md_error_errno(in.ctx, -errno, "%s", in.img);
        goto out;
    }
    if (part_size < 2048 || md_pread_full(fd, magic, 2, part_off + 1024 + 0x38) < 0 ||
        md_get_le16(magic) != EXT2_SUPER_MAGIC) {
        r = md_error(in.ctx, -EINVAL, "%s: %s: no ext2/3/4 filesystem there%s", in.img, in.where,
                     partno ? "" : " (for a partitioned image name the partition)");
        goto out;
    }
    r = md_ext_open(img, partno, 0, &in.ext);
    if (r < 0)
        goto out;
    in.fs = md_ext_fs(in.ext);
    r = check_features(&in, part_size);
    if (r < 0)
        goto out;

    /* 3. the install dir, an existing ldlinux.sys, the config references */
    r = find_dir(&in, dir, &dir_ino);
    if (r < 0)
        goto out;
    r = find_file(&in, dir_ino, dir, "ldlinux.sys", &old_ino, &old_inode);
    if (r < 0)
        goto out;
    md_extlinux_adv_init(adv);
    if (old_ino)
        read_old_adv(&in, old_ino, &old_inode, adv);
    /* the pre-4.0 name: extlinux removes it, so does an update here */
    {
        struct ext2_inode inode;
        r = find_file(&in, dir_ino, dir, "extlinux.sys", &legacy_ino, &inode);
        if (r < 0)
            goto out;
        if (legacy_ino && !old_ino)
            read_old_adv(&in, legacy_ino, &inode, adv);
    }
    for (i = 0; i < nfiles; i++) {
        ext2_ino_t ino;
        struct ext2_inode inode;
        r = find_file(&in, dir_ino, dir, files[i].name, &ino, &inode);
        if (r < 0)
            goto out;
    }
    if (o.config_text) {
        ext2_ino_t ino;
        struct ext2_inode inode;
        r = find_file(&in, dir_ino, dir, "extlinux.conf", &ino, &inode);
        if (r < 0)
            goto out;
        r = check_refs(&in, o.config_text, dir, dir_ino, files, nfiles, &sparse, &nsparse, true);
        if (r < 0)
            goto out;
    } else if (dir_ino) {
        /* keeping an existing config: its kernel and initrds must not be
         * sparse either; missing ones are only logged (it may use syntax
         * we do not follow, e.g. INCLUDE or a different working dir) */
        ext2_ino_t ino;
        struct ext2_inode inode;
        void *text = NULL;
        size_t len;
        char *cp = md_asprintf("%s/extlinux.conf", strcmp(dir, "/") ? dir : "");
        if (!cp) {
            r = md_error(in.ctx, -ENOMEM, "out of memory");
            goto out;
        }
        r = find_file(&in, dir_ino, dir, "extlinux.conf", &ino, &inode);
        if (r >= 0 && ino)
            r = md_ext_read_file(in.ext, cp, &text, &len);
        free(cp);
        if (r >= 0 && text)
            r = check_refs(&in, text, dir, dir_ino, files, nfiles, &sparse, &nsparse, false);
        free(text);
        if (r < 0)
            goto out;
    }

    /* 4. one contiguous run for ldlinux.sys (old blocks count as free) */
    ldl_size = blobs.ldlen + 2 * ADV_SIZE;
    nblocks = (ldl_size + in.fs->blocksize - 1) / in.fs->blocksize;
    spb = in.fs->blocksize / SECTOR;
    if (old_ino && (r = toggle_blocks(&in, old_ino, EXT2_I_SIZE(&old_inode), false)) < 0)
        goto out;
    {
        blk64_t goal = 0, got_len = 0;
        if (old_ino)
            ext2fs_bmap2(in.fs, old_ino, NULL, NULL, 0, 0, NULL, &goal);
        err = ext2fs_new_range(in.fs, EXT2_NEWRANGE_MIN_LENGTH,
                               goal ? goal : in.fs->super->s_first_data_block, nblocks, NULL,
                               &run, &got_len);
    }
    if (old_ino && (r = toggle_blocks(&in, old_ino, EXT2_I_SIZE(&old_inode), true)) < 0)
        goto out;
    if (!err) {
        /* reserve the run in memory only (no counts): the directories made
         * below must not take blocks from it */
        ext2fs_mark_block_bitmap_range2(in.fs->block_map, run, (unsigned int)nblocks);
        reserved = true;
    }
    if (err == EXT2_ET_BLOCK_ALLOC_FAIL) {
        r = md_error(in.ctx, -ENOSPC, "%s: %s: no free run of %llu contiguous blocks for "
                     "ldlinux.sys (%llu bytes)", in.img, in.where, (unsigned long long)nblocks,
                     (unsigned long long)ldl_size);
        goto out;
    } else if (err) {
        r = ext_err(in.ctx, err, "%s: %s: find room for ldlinux.sys", in.img, in.where);
        goto out;
    }
    {
        /* rough space check for the other files: data + a few map blocks each */
        uint64_t need = 8 + nblocks;
        for (i = 0; i < nfiles; i++)
            need += files[i].size / in.fs->blocksize + 2;
        if (o.config_text)
            need += strlen(o.config_text) / in.fs->blocksize + 2;
        for (i = 0; i < nsparse; i++)
            need += sparse[i].holes + sparse[i].holes / 256 + 2;
        if (ext2fs_free_blocks_count(in.fs->super) < need) {
            r = md_error(in.ctx, -ENOSPC, "%s: %s: not enough free space for the boot loader "
                         "files (%llu blocks needed)", in.img, in.where, (unsigned long long)need);
            goto out;
        }
    }

    /* 5. patch in memory: the file will be at blocks run .. run+nblocks-1 */
    nsect = ldl_size / SECTOR;
    sect = md_calloc(nsect, sizeof(*sect));
    ldl = md_calloc(nblocks, in.fs->blocksize);
    if (!sect || !ldl) {
        r = md_error(in.ctx, -ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < nsect; i++)
        sect[i] = (run + i / spb) * spb + i % spb;
    r = md_extlinux_patch(in.ctx, &blobs, sect, nsect, dir, o.flags, part_off / SECTOR,
                          part_size / SECTOR, vbr, ldl);
    if (r < 0)
        goto out;
    memcpy(ldl + blobs.ldlen, adv, sizeof(adv));
    md_dbg(in.ctx, "ldlinux.sys: blocks %llu..%llu, first sector %llu, %d extent(s)",
           (unsigned long long)run, (unsigned long long)(run + nblocks - 1),
           (unsigned long long)sect[0], r);

    /* ---- validated: from here on we write ---- */
    writing = true;
    r = make_dirs(&in, dir, &dir_ino);
    if (r < 0)
        goto out;
    {
        struct ext2_inode inode;
        struct ext2_inode_large big;
        unsigned isize = EXT2_INODE_SIZE(in.fs->super);
        ext2_ino_t ino = old_ino;
        blk64_t j;

        if (ino) {
            err = ext2fs_read_inode(in.fs, ino, &inode);
            if (!err)
                err = ext2fs_punch(in.fs, ino, &inode, NULL, 0, ~0ULL);
        } else {
            err = ext2fs_new_inode(in.fs, dir_ino, LINUX_S_IFREG | 0444, NULL, &ino);
            if (!err) {
                r = md_ext_link(in.ext, dir_ino, "ldlinux.sys", ino, S_IFREG);
                if (r < 0) {
                    md_error_prefix(in.ctx, "%s: %s: create %s/ldlinux.sys", in.img, in.where,
                                    dir);
                    goto out;
                }
                ext2fs_inode_alloc_stats2(in.fs, ino, +1, 0);
                memset(&inode, 0, sizeof(inode));
                inode.i_mode = LINUX_S_IFREG | 0444;
                inode.i_links_count = 1;
                if (ext2fs_has_feature_extents(in.fs->super))
                    inode.i_flags |= EXT4_EXTENTS_FL;
                err = ext2fs_write_new_inode(in.fs, ino, &inode);
            }
            if (!err && (inode.i_flags & EXT4_EXTENTS_FL)) {
                ext2_extent_handle_t h;
                err = ext2fs_extent_open2(in.fs, ino, &inode, &h);
                if (!err) {
                    ext2fs_extent_free(h);
                    err = ext2fs_write_inode(in.fs, ino, &inode);
                }
            }
        }
        if (err) {
            r = ext_err(in.ctx, err, "%s: %s: create %s/ldlinux.sys", in.img, in.where, dir);
            goto out;
        }
        ext2fs_unmark_block_bitmap_range2(in.fs->block_map, run, (unsigned int)nblocks);
        reserved = false;
        ext2fs_block_alloc_stats_range(in.fs, run, (blk_t)nblocks, +1);
        for (j = 0; j < nblocks && !err; j++) {
            blk64_t pblk = run + j;
            err = ext2fs_bmap2(in.fs, ino, NULL, NULL,
                               BMAP_SET | ((inode.i_flags & EXT4_EXTENTS_FL) ? 0 : BMAP_ALLOC),
                               j, NULL, &pblk);
        }
        for (j = 0; j < nblocks && !err; j++) {
            blk64_t pblk = 0;
            err = ext2fs_bmap2(in.fs, ino, NULL, NULL, 0, j, NULL, &pblk);
            if (!err && pblk != run + j)
                err = EXT2_ET_BAD_BLOCK_NUM;
        }
        /* the whole inode (extra timestamps, crtime) as the ext module reads it */
        memset(&big, 0, sizeof(big));
        if (!err)
            err = ext2fs_read_inode_full(in.fs, ino, (struct ext2_inode *)&big,
                                         (int)(isize < sizeof(big) ? isize : sizeof(big)));
        if (!err)
            err = ext2fs_iblk_add_blocks(in.fs, (struct ext2_inode *)&big, nblocks);
        if (!err)
            err = ext2fs_inode_size_set(in.fs, (struct ext2_inode *)&big, ldl_size);
        if (!err) {
            big.i_mode = LINUX_S_IFREG | 0444;
            big.i_uid = big.i_gid = 0;
            ext2fs_set_i_uid_high(big, 0);
            ext2fs_set_i_gid_high(big, 0);
            /* immutable: keeps the blocks whose numbers the boot code holds */
            big.i_flags |= EXT2_IMMUTABLE_FL;
            r = md_ext_write_inode(in.ext, ino, &big, in.epoch, 0);
            if (r < 0) {
                md_error_prefix(in.ctx, "%s: %s: write %s/ldlinux.sys", in.img, in.where, dir);
                goto out;
            }
            err = io_channel_write_blk64(in.fs->io, run, (int)nblocks, ldl);
        }
        if (err) {
            r = ext_err(in.ctx, err, "%s: %s: write %s/ldlinux.sys", in.img, in.where, dir);
            goto out;
        }
    }
    if (legacy_ino) {
        r = md_ext_unlink(in.ext, dir_ino, "extlinux.sys");
        if (r < 0)
            goto out;
    }
    for (i = 0; i < nsparse; i++) {
        r = fill_holes(&in, sparse[i].ino, sparse[i].path, sparse[i].holes);
        if (r < 0)
            goto out;
    }
    for (i = 0; i < nfiles; i++) {
        r = write_file(&in, dir_ino, dir, files[i].name, files[i].data, files[i].size, 0444);
        if (r < 0)
            goto out;
    }
    if (o.config_text) {
        r = write_file(&in, dir_ino, dir, "extlinux.conf", o.config_text, strlen(o.config_text),
                       0644);
        if (r < 0)
            goto out;
    }
    r = md_ext_close(in.ext);
    in.ext = NULL;
    in.fs = NULL;
    if (r < 0)
        goto out;
    r = md_pwrite_full(fd, vbr, SECTOR, part_off);
    if (r < 0) {
        r = md_error_errno(in.ctx, r, "%s: write the boot sector", in.img);
        goto out;
    }
    if (plan.type) {
        r = pt_apply(in.ctx, img, in.img, partno, &plan, fd);
        if (r < 0)
            goto out;
    }
    r = 0;
out:
    if (in.fs && reserved)
        ext2fs_unmark_block_bitmap_range2(in.fs->block_map, run, (unsigned int)nblocks);
    if (in.ext && writing)
        md_ext_close(in.ext); /* keep what was written consistent */
    else
        md_ext_free(in.ext); /* not flushed: nothing reaches the image on error */
    if (fd >= 0)
        close(fd);
    for (i = 0; files && i < nfiles; i++) {
        free(files[i].name);
        free(files[i].data);
    }
    free(files);
    for (i = 0; i < nsparse; i++)
        free(sparse[i].path);
    free(sparse);
    free(sect);
    free(ldl);
    free(dir);
    md_extlinux_blobs_free(&blobs);
    return r;
}
