/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal to the library, not installed.  Two parts:
 *  - access to an md_ext's libext2fs handle, for modules that need ext2fs
 *    directly (extlinux: contiguous ldlinux.sys allocation);
 *  - what the md-ext*.c files share among themselves (the md_ext struct,
 *    inode helpers, file data, pending directories).  Other modules should
 *    not need the second part.
 */
#ifndef MD_EXT_INTERNAL_H
#define MD_EXT_INTERNAL_H

#include <ext2fs/ext2fs.h>

#include "md-internal.h"
#include "md-readahead.h"

/* The libext2fs handle (borrowed; owned by @fs until md_ext_close()).  Block
 * and inode bitmaps are loaded. */
ext2_filsys md_ext_fs(md_ext *fs);

/* Byte offset of the filesystem inside the image file (the partition start):
 * the on-disk position of block B is md_ext_offset(fs) + B * blocksize. */
uint64_t md_ext_offset(const md_ext *fs);

/* 1 if opened read-only. */
int md_ext_is_rdonly(const md_ext *fs);

/* Translate a libext2fs error into -errno and store "PREFIX: message" on
 * @ctx.  Returns the -errno. */
int md_ext_error(md_ctx *ctx, errcode_t err, const char *fmt, ...) md_printf(3, 4);
/* libext2fs's inode cache, made at once after an open or an initialise. */
int md_ext_inode_cache(md_ext *x);
/* The text of a libext2fs code ("Corrupt group descriptor: bad block for block bitmap"). */
const char *md_ext_strerror(errcode_t err);
/* The -errno equivalent of an errcode_t without touching the message. */
int md_ext_errno(errcode_t err);

/* Look @path up (absolute or relative to the root; symlinks not followed).
 * -ENOENT / -ENOTDIR with a message naming the path. */
int md_ext_lookup(md_ext *fs, const char *path, ext2_ino_t *ino);

/* mkdir -p: make @path and its missing parents (attributes from @attr, NULL
 * = 0755 root:root epoch) and return the directory's inode. */
int md_ext_mkdir_p(md_ext *fs, const char *path, const md_attr *attr, ext2_ino_t *ino);

/* Split @path into its parent directory's inode (which must exist) and the
 * last component (a pointer into @path's normalised copy in *@name_buf,
 * free it).  Errors: -ENOENT/-ENOTDIR (parent), -EINVAL (root). */
int md_ext_lookup_parent(md_ext *fs, const char *path, ext2_ino_t *dir, char **name_buf,
                         const char **name);

/* Link inode @ino as @name in directory @dir (expanding the directory when
 * full).  @mode gives the dirent file type. */
int md_ext_link(md_ext *fs, ext2_ino_t dir, const char *name, ext2_ino_t ino, uint32_t mode);

/* Remove directory entry @name from @dir and drop its inode's link; frees
 * the inode and its blocks on the last link.  Directories are refused (-EISDIR). */
int md_ext_unlink(md_ext *fs, ext2_ino_t dir, const char *name);
/* Give @name in @dir to inode @ino, rewriting its directory entry in place
 * (then dropping the old inode's link), or link it when there is none. */
int md_ext_replace(md_ext *fs, ext2_ino_t dir, const char *name, ext2_ino_t ino, uint32_t mode);
/* Free inode @ino (@in: its contents) and its blocks. */
int md_ext_release_inode(md_ext *fs, ext2_ino_t ino, struct ext2_inode_large *in);

/* Write inode @ino, setting all of its timestamps (a/c/m/crtime) to @t and
 * initialising the large-inode fields when it is new. */
int md_ext_write_inode(md_ext *fs, ext2_ino_t ino, struct ext2_inode_large *inode, int64_t t,
                       int is_new);

/* ---- shared by md-ext.c, md-ext-format.c, md-ext-file.c, md-ext-read.c,
 *      md-ext-dir.c and md-ext-populate.c ---------------------------------- */

struct md_ext {
    md_ctx *ctx;
    md_image *img;
    ext2_filsys fs;
    uint64_t offset;     /* byte offset of the filesystem in the image */
    uint64_t size;       /* bytes available to it */
    int rdonly;
    int64_t epoch;
    bool has_epoch;        /* an epoch is set: clamp mtimes, derive ids, fixed superblock times */
    blk64_t goal;        /* next data block goal: keeps files packed in order */
    uint64_t progress_total;  /* bytes of file data of the running populate */
    uint64_t unkicked;   /* bytes of file data written since writeback was last started */
    bool no_sync;        /* MD_DISK_NO_SYNC: no writeback started, no fsync at close */
    bool fresh;          /* formatted by this handle and no block freed since: a block
                          * allocated now never held metadata, so no copy of it can sit
                          * in libext2fs's I/O cache (file data may bypass it) */
    struct md_ra_chunk *wb_chunk; /* while a chunk is written: its data goes to the
                                   * read-ahead's writer, as this chunk's runs */
};

/* After this many bytes of file data, writeback of the image is started
 * (asynchronously), so that the flush at close has little left to wait for. */
#define MD_EXT_KICK (32u << 20)

/* The read-ahead thread's chunk: a multiple of every block size. */
#define MD_EXT_RA_CHUNK (128u << 10)

/* File data is read and written in pieces of this size. */
#define MD_EXT_CHUNK (1u << 20)

/* md-ext.c */

/* Fill a zeroed @x for the filesystem at [@off, @off + @size) of @img (takes a
 * reference on the image's context). */
void md_ext_init_handle(md_ext *x, md_image *img, uint64_t off, uint64_t size);
/* -EROFS with a message when opened read-only. */
int md_ext_check_rw(md_ext *x);
/* The mode, owner and mtime from @attr (NULL: @defmode, 0:0, the epoch);
 * mtimes are clamped to the epoch when one is set. */
int md_ext_attr_values(md_ext *x, const md_attr *attr, uint32_t defmode, uint32_t *mode,
                       uint32_t *uid, uint32_t *gid, int64_t *mtime);
/* Read inode @ino (as much of it as struct ext2_inode_large holds). */
int md_ext_read_inode(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *inode);
/* Allocate an inode near @dir and count it as used. */
int md_ext_new_inode(md_ext *x, ext2_ino_t dir, uint32_t mode, ext2_ino_t *ino);
/* Whether the inodes have room for the large fields (extra_isize). */
int md_ext_inode_full(ext2_filsys fs);
/* The mtime, with the extra epoch bits when @full. */
int64_t md_ext_inode_mtime(const struct ext2_inode_large *in, int full);
void md_ext_set_owner(struct ext2_inode_large *in, uint32_t uid, uint32_t gid);
uint32_t md_ext_uid_of(const struct ext2_inode_large *in);
uint32_t md_ext_gid_of(const struct ext2_inode_large *in);
/* The dirent file type (EXT2_FT_*) of a mode. */
int md_ext_ftype_of(uint32_t mode);
int md_ext_is_zero(const char *p, size_t n);
/* FNV-1a over @n bytes, continuing from @h. */
uint64_t md_ext_fnv64(uint64_t h, const void *p, size_t n);

/* md-ext-file.c */

/* Where a new file's data comes from when it is not read from its md_data:
 * the read-ahead thread's chunks of tree entry @idx (@e). */
struct md_ext_feed {
    md_ra *ra;
    size_t idx;
    const struct md_entry *e;
    md_tree *tree;
    bool write_behind;   /* the read-ahead's writer writes the data (md_ext.fresh) */
};

/* The message for the read-ahead writer's error @err (-errno) while it wrote
 * the data of tree entry @entry; returns @err. */
int md_ext_data_write_error(md_ext *x, md_tree *tree, size_t entry, int err);

/* A new regular-file inode holding the data of @s (a buffer or an fd,
 * md_data_open()), or of @feed when it is not NULL (then only @s's size and
 * name are used), not yet linked anywhere; *@ret is its number.
 * @progress_done and @po: populate's progress (NULL: none). */
int md_ext_create_file(md_ext *x, ext2_ino_t dir, const struct md_data *s,
                       const struct md_ext_feed *feed, uint32_t mode, uint32_t uid, uint32_t gid,
                       int64_t mtime, uint32_t nlink, ext2_ino_t *ret, uint64_t *progress_done,
                       const md_ext_populate_opts *po);
/* Blocks of data and mapping metadata for a file with @data_blocks allocated
 * blocks in about @runs pieces. */
uint64_t md_ext_file_blocks(ext2_filsys fs, uint64_t data_blocks, uint64_t runs);

/* md-ext-read.c: the contents of inode @ino in chunks to @fn (a negative
 * return stops with that error; 1 stops early, returned as 0). */
int md_ext_read_stream(md_ext *x, ext2_ino_t ino, const char *path,
                       int (*fn)(void *ud, const void *p, size_t n), void *ud);

/* md-ext-populate.c: what populating @tree into @x would take (blocks of
 * data, directories and mappings; inodes; bytes of file data), as the
 * populate's own space check counts it.  Only @x->fs's layout is used. */
int md_ext_tree_need(md_ext *x, md_tree *tree, uint64_t *blocks, uint64_t *inodes, uint64_t *bytes);

/* md-ext-format.c: the size of a filesystem made with @opts (NULL:
 * defaults) that holds @tree with @headroom bytes to spare: its tables,
 * journal and reserved blocks counted as md_ext_format() would make them. */
int md_ext_plan_size(md_ctx *ctx, md_tree *tree, const md_ext_format_opts *opts, uint64_t headroom,
                     uint64_t *size);

/* md-ext-dir.c */

/* Create directory @name in @dir (linked there only when @link); *@ret is its
 * inode. */
int md_ext_make_dir(md_ext *x, ext2_ino_t dir, const char *name, uint32_t mode, uint32_t uid,
                    uint32_t gid, int64_t mtime, int link, ext2_ino_t *ret);

/* A directory whose new entries md_ext_populate() collects and writes in one
 * go with md_ext_pdir_flush() (see md-ext-dir.c). */
struct md_ext_pdir {
    ext2_ino_t ino;      /* 0: not collecting (entries go through ext2fs_link) */
    const char *path;    /* tree path (NULL for the target) */
    int64_t mtime;
    struct md_ext_dent *v;
    size_t n, cap;
    /* a directory that existed before: its names, read once */
    struct md_ext_pname *names;
    size_t names_cap;
    int tried;           /* md_ext_pdir_open_existing() was called */
};

/* Start collecting for directory @ino, which existed before: read its names
 * once.  Indexed (htree) and inline directories, and ones under a block, are
 * left to ext2fs_link() (d->ino stays 0). */
int md_ext_pdir_open_existing(md_ext *x, struct md_ext_pdir *d, ext2_ino_t ino);
/* The inode of @name among an existing directory's names (0: none). */
ext2_ino_t md_ext_pdir_lookup(struct md_ext_pdir *d, const char *name);
/* Forget @name after it was unlinked. */
void md_ext_pdir_forget(struct md_ext_pdir *d, const char *name);
/* Collect entry @name (borrowed until the flush) for inode @ino. */
int md_ext_pdir_add(md_ext *x, struct md_ext_pdir *d, const char *name, ext2_ino_t ino,
                    uint32_t mode);
/* Write the collected entries after the directory's last entry, in new
 * blocks as needed, then drop them. */
int md_ext_pdir_flush(md_ext *x, struct md_ext_pdir *d);
/* Drop the collected entries and names (the struct itself is the caller's). */
void md_ext_pdir_free(struct md_ext_pdir *d);

#endif
