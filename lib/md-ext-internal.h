/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal access to an md_ext's libext2fs handle, for modules that need
 * ext2fs directly (extlinux: contiguous ldlinux.sys allocation).  Not
 * installed.
 */
#ifndef MD_EXT_INTERNAL_H
#define MD_EXT_INTERNAL_H

#include <ext2fs/ext2fs.h>

#include "md-internal.h"

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

/* Write inode @ino, setting all of its timestamps (a/c/m/crtime) to @t and
 * initialising the large-inode fields when it is new. */
int md_ext_write_inode(md_ext *fs, ext2_ino_t ino, struct ext2_inode_large *inode, int64_t t,
                       int is_new);

#endif
