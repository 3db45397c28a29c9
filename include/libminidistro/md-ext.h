/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ext2/ext3/ext4 filesystems inside disk images, made and filled in-process
 * with libext2fs: no mke2fs, no mount, no root.
 *
 * A filesystem lives on partition N of an md_image (1-based as in
 * /dev/sdaN) or on the whole image (N = 0).  Paths inside the filesystem are
 * absolute or relative to its root ("/etc/fstab", "etc/fstab"), '/'
 * separated, with no ".." components.
 *
 * Determinism: with a fixed UUID (or SOURCE_DATE_EPOCH / md_ctx_set_epoch()
 * set, from which the UUID is derived) the bytes written depend only on the
 * inputs: the hash seed is derived from the UUID and every timestamp of the
 * filesystem (superblock, inodes) is the context epoch or the entry's own
 * mtime.  Without an epoch the superblock times are the current time, as
 * with mke2fs.
 */
#ifndef LIBMINIDISTRO_MD_EXT_H
#define LIBMINIDISTRO_MD_EXT_H

#include "md-common.h"
#include "md-image.h"
#include "md-tree.h"

MD_BEGIN_DECLS

/** An open ext2/3/4 filesystem inside an md_image. */
typedef struct md_ext md_ext;

/* md_ext_format_opts.fs_type */
#define MD_EXT2 2
#define MD_EXT3 3
#define MD_EXT4 4

/* md_ext_open() flags */
#define MD_EXT_RDONLY 0x1u

/* md_ext_format_opts.reserved_percent: the mke2fs default (5 %) */
#define MD_EXT_RESERVED_DEFAULT (-1)

typedef struct md_ext_format_opts {
    uint32_t version;        /* MD_EXT_FORMAT_OPTS_VERSION */
    int32_t fs_type;         /* MD_EXT2, MD_EXT3 or MD_EXT4 (default MD_EXT4) */
    uint32_t block_size;     /* 1024, 2048 or 4096; 0: as mke2fs (1024 under 512 MiB) */
    uint32_t inode_size;     /* 128 or 256...; 0: 256 */
    uint64_t inode_count;    /* 0: from inode_ratio */
    uint32_t inode_ratio;    /* bytes per inode; 0: as mke2fs for the size */
    int32_t reserved_percent;/* 0..50; MD_EXT_RESERVED_DEFAULT: 5 */
    const char *label;       /* volume label, up to 16 bytes; NULL: none */
    const char *uuid;        /* "xxxxxxxx-xxxx-..." ; NULL: derived from the context
                                epoch when one is set, else random */
    const char *features;    /* mke2fs -O syntax applied on top of the type's
                                defaults, e.g. "^64bit,^metadata_csum"; NULL: none */
    uint32_t journal_blocks; /* ext3/ext4 journal size in blocks; 0: as mke2fs */
    uint32_t flags;          /* reserved, 0 */
} md_ext_format_opts;

#define MD_EXT_FORMAT_OPTS_VERSION 1
#define MD_EXT_FORMAT_OPTS_INIT \
    { MD_EXT_FORMAT_OPTS_VERSION, MD_EXT4, 0, 0, 0, 0, MD_EXT_RESERVED_DEFAULT, NULL, NULL, NULL, 0, 0 }
/** Fill @opts with MD_EXT_FORMAT_OPTS_INIT (ext4, sizes as mke2fs).  NULL-safe. */
MD_API void md_ext_format_opts_init(md_ext_format_opts *opts);

/**
 * Make a new filesystem on partition @partno of @img (0 = whole image), like
 * mke2fs with /etc/mke2fs.conf's defaults for the type and size: root
 * directory, lost+found, resize inode, journal (ext3/ext4; left out, as
 * mke2fs does, when the filesystem is too small for one).  The byte range is
 * cleared first (holes are punched: the image stays sparse).  inline_data,
 * bigalloc and other features the boot loaders cannot read are refused.
 * With @ret non-NULL the new filesystem is returned open read-write (close
 * it with md_ext_close()); with @ret NULL it is flushed and closed.
 * @img is borrowed and must outlive the md_ext.
 * Errors: -EINVAL (bad option, unknown feature or type: the message names
 * it), -ENOENT/-EINVAL (no such partition), -ENOSPC (range too small),
 * -EROFS (image opened read-only), -EIO.
 */
MD_API int md_ext_format(md_image *img, uint32_t partno, const md_ext_format_opts *opts,
                         md_ext **ret);

/**
 * Open the filesystem on partition @partno of @img (0 = whole image).
 * @flags: MD_EXT_RDONLY.  @img is borrowed and must outlive the md_ext.
 * Errors: -EINVAL (no ext2/3/4 filesystem there: the message says what was
 * found), -ENOENT (no such partition), -ENOTSUP (features libext2fs cannot
 * handle), -EIO.
 */
MD_API int md_ext_open(md_image *img, uint32_t partno, uint32_t flags, md_ext **ret);

/**
 * Write the pending metadata (superblock, group descriptors, bitmaps) and
 * close.  The handle is freed even when flushing fails.  NULL-safe (returns 0).
 * Errors: -EIO (the filesystem may then be inconsistent).
 */
MD_API int md_ext_close(md_ext *fs);

/**
 * Release the handle WITHOUT writing pending metadata: for use after a
 * failure, when the image is going to be discarded.  Data and inodes
 * already written stay, so a filesystem that was modified must be closed
 * with md_ext_close() instead.  NULL-safe.
 */
MD_API void md_ext_free(md_ext *fs);

/** The context of the image the filesystem is on (borrowed). */
MD_API md_ctx *md_ext_ctx(const md_ext *fs);

/* ------------------------------------------------------------------ */
/* Population                                                         */

typedef struct md_ext_populate_opts {
    uint32_t version;          /* MD_EXT_POPULATE_OPTS_VERSION */
    uint32_t flags;            /* reserved, 0 */
    const char *target;        /* directory to fill (created if missing); NULL: "/" */
    md_progress_fn progress;   /* bytes of file data written; NULL: none */
    void *userdata;
} md_ext_populate_opts;

#define MD_EXT_POPULATE_OPTS_VERSION 1
#define MD_EXT_POPULATE_OPTS_INIT { MD_EXT_POPULATE_OPTS_VERSION, 0, NULL, NULL, NULL }
/** Fill @opts with MD_EXT_POPULATE_OPTS_INIT (into "/", no progress).  NULL-safe. */
MD_API void md_ext_populate_opts_init(md_ext_populate_opts *opts);

/**
 * Copy every entry of @tree into the filesystem below the target directory,
 * merging with what is already there: existing directories keep their
 * contents (and get the tree's attributes), an existing non-directory is
 * replaced.  Regular files keep their holes (all-zero blocks are not
 * allocated); hard links share one inode; symlinks, device nodes, FIFOs,
 * sockets, owners, modes, mtimes and xattrs are stored as in the tree.
 * Space and inodes are estimated before the first write: a tree that does
 * not fit fails with -ENOSPC and a message saying how much was needed and
 * how much is free, leaving the filesystem untouched.
 * Errors: -ENOSPC, -ESTALE (a host file changed or vanished: message names
 * it), -ENOTDIR (a path component is not a directory in the filesystem),
 * -ECANCELED (progress callback), -EROFS, -EIO.  After an error other than
 * -ENOSPC the filesystem may be partly filled.
 */
MD_API int md_ext_populate(md_ext *fs, md_tree *tree, const md_ext_populate_opts *opts);

/* ------------------------------------------------------------------ */
/* Single entries                                                     */

/**
 * Create directory @path and any missing parents (as mkdir -p; existing
 * directories are left as they are).  @attr may be NULL (0755, 0:0, the
 * context epoch); it applies to the directories created.
 * Errors: -ENOTDIR (a component is not a directory), -ENOSPC, -EROFS, -EINVAL.
 */
MD_API int md_ext_mkdir(md_ext *fs, const char *path, const md_attr *attr);

/**
 * Write a regular file @path with @size bytes of @data (borrowed), replacing
 * an existing file (not a directory); the parent directory must exist.
 * @attr may be NULL (0644, 0:0, the context epoch).
 * Errors: -ENOENT (no parent), -EISDIR, -ENOSPC, -EROFS, -EINVAL.
 */
MD_API int md_ext_write_file(md_ext *fs, const char *path, const void *data, size_t size,
                             const md_attr *attr);

/**
 * As md_ext_write_file() with the contents of host file @host_path, streamed
 * (holes kept).  Errors: as md_ext_write_file(), and -errno for the host
 * file (message names it).
 */
MD_API int md_ext_write_host_file(md_ext *fs, const char *path, const char *host_path,
                                  const md_attr *attr);

/**
 * Read the regular file @path into a new buffer (NUL-terminated for
 * convenience, the terminator not counted in @size); free it with free(3).
 * Errors: -ENOENT, -EISDIR / -EINVAL (not a regular file), -ENOMEM, -EIO.
 */
MD_API int md_ext_read_file(md_ext *fs, const char *path, void **data, size_t *size);

/**
 * Copy the regular file @path to host file @host_path, streamed, written
 * atomically (temporary file renamed on success; an existing regular file
 * is replaced, anything else at @host_path — a device, FIFO, symlink — is
 * refused with -EINVAL).  Errors: as md_ext_read_file() and -errno for the
 * host file.
 */
MD_API int md_ext_extract_file(md_ext *fs, const char *path, const char *host_path);

/**
 * As md_ext_extract_file() but to the open file descriptor @fd (a pipe or
 * terminal too: written sequentially from its current position, not closed;
 * holes are written as zeros).  On failure part of the file may have been
 * written.  Errors: as md_ext_read_file(), -EBADF, -errno from writing.
 */
MD_API int md_ext_extract_fd(md_ext *fs, const char *path, int fd);

/** File information filled in by md_ext_stat_path() and passed to md_ext_list()'s callback. */
typedef struct md_ext_stat {
    uint32_t version;   /* set by the caller: MD_EXT_STAT_VERSION */
    uint32_t ino;
    uint32_t mode;      /* S_IFMT | permission bits */
    uint32_t nlink;
    uint32_t uid;
    uint32_t gid;
    uint64_t size;
    int64_t mtime;
    uint32_t rmajor;    /* device nodes */
    uint32_t rminor;
    uint64_t blocks;    /* allocated 512-byte sectors, as st_blocks */
} md_ext_stat;

#define MD_EXT_STAT_VERSION 1
#define MD_EXT_STAT_INIT { MD_EXT_STAT_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * Information about @path (symlinks are not followed).  @st->version must be
 * set.  Errors: -ENOENT, -ENOTDIR, -EINVAL.
 */
MD_API int md_ext_stat_path(md_ext *fs, const char *path, md_ext_stat *st);

/** 1 if @path exists, 0 if not, negative on error (e.g. -ENOTDIR is reported as 0). */
MD_API int md_ext_exists(md_ext *fs, const char *path);

/**
 * Target of symlink @path in a new NUL-terminated string (free(3)).
 * Errors: -ENOENT, -EINVAL (not a symlink), -ENOMEM.
 */
MD_API int md_ext_readlink(md_ext *fs, const char *path, char **target);

/**
 * Entry callback for md_ext_list(): @name and @st are borrowed for the call.
 * Return 0 to continue, non-zero to stop (md_ext_list() then returns that value
 * if positive, -ECANCELED if negative).
 */
typedef int (*md_ext_list_fn)(void *userdata, const char *name, const md_ext_stat *st);

/**
 * Call @fn for every entry of directory @path except "." and "..", sorted by
 * name (byte order).  Errors: -ENOENT, -ENOTDIR, -ENOMEM, -EIO.
 */
MD_API int md_ext_list(md_ext *fs, const char *path, md_ext_list_fn fn, void *userdata);

MD_END_DECLS

#endif
