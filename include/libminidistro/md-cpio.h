/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cpio sink: write a tree as a newc ("070701") cpio archive, the format
 * the Linux kernel unpacks as an initramfs, optionally compressed.
 *
 * The archive is written with libarchive's newc writer.  Entries come out in
 * the tree's sorted order (parents first) with the metadata stored in the
 * tree: inode numbers are the tree's stable numbers (1, 2, ... in sorted
 * order), the devmajor/devminor fields are 0, hard links share one inode
 * number and link count and only the last link of a group carries the data
 * (newc semantics, which the kernel relies on).  The TRAILER!!! entry ends
 * the archive.
 *
 * Padding: an uncompressed archive is padded with zeros to a multiple of 512
 * bytes, as GNU cpio and the kernel's gen_init_cpio do.  A compressed
 * archive is the compressed stream of the unpadded cpio data, with nothing
 * after it (standard tools then test it without "trailing garbage" notes).
 *
 * Compression, chosen so the kernel's own decompressors accept the result,
 * runs on md_cpio_opts.threads threads.  The output bytes depend only on
 * the tree, the method and the level, never on the thread count (every
 * method cuts its input at fixed sizes):
 *   gzip  one gzip member (zlib's deflate) built in parallel like pigz:
 *         128 KiB chunks, each with the previous 32 KiB as dictionary,
 *         joined by sync flushes; no file name, zero timestamp, no extra
 *         header fields (the kernel parses none but the name).  Levels
 *         1..9, default 6.
 *   xz    liblzma's multi-threaded encoder: one .xz stream of LZMA2 blocks
 *         of 1.5 dictionary sizes each (12 MiB at preset 6) with a CRC32
 *         check (the kernel's XZ decoder does not do CRC64, which xz(1)
 *         uses by default).  Presets 0..9, default 6.  Fewer threads are
 *         used if the encoder would need more than a quarter of the RAM.
 *   zstd  libzstd's multi-threaded compressor: one frame, with a checksum,
 *         jobs of max(8 MiB, 4 windows), the window at most 128 MiB (the
 *         limit of kernels 5.9..5.15).  Levels 1..22, default 3; levels
 *         above 19 need a lot of memory at boot (the whole window).
 *   lz4   liblz4, the LEGACY frame format (magic 0x184C2102, 8 MiB blocks,
 *         what `lz4 -l` writes), the only lz4 format the kernel reads.
 *         Levels 1..12 (1..2 fast, 3..12 high compression), default 9 as
 *         the kernel's own build uses.
 * Memory for compression is bounded per thread (largest for xz: about
 * 960 MiB per thread at preset 9, 130 MiB at 6) and does not grow with the
 * archive.  The kernel must have the matching CONFIG_RD_* option enabled.
 */
#ifndef LIBMINIDISTRO_MD_CPIO_H
#define LIBMINIDISTRO_MD_CPIO_H

#include "md-common.h"
#include "md-tree.h"

MD_BEGIN_DECLS

/* Compression methods (md_cpio_opts.compression). */
#define MD_COMPRESS_NONE 0
#define MD_COMPRESS_GZIP 1
#define MD_COMPRESS_XZ 2
#define MD_COMPRESS_ZSTD 3
#define MD_COMPRESS_LZ4 4

/* md_cpio_opts.level: the codec's default level. */
#define MD_COMPRESS_LEVEL_DEFAULT (-1)

typedef struct md_cpio_opts {
    uint32_t version;       /* MD_CPIO_OPTS_VERSION */
    uint32_t flags;         /* none defined yet: must be 0 */
    int32_t compression;    /* MD_COMPRESS_* */
    int32_t level;          /* codec level, or MD_COMPRESS_LEVEL_DEFAULT */
    md_progress_fn progress; /* NULL: none.  Bytes of file data written / total */
    void *userdata;         /* passed to @progress */
    /* version 2: */
    uint32_t threads;       /* compression threads; 0: one per online CPU; at most 256 are
                             * used.  The output does not depend on it.  Ignored for
                             * MD_COMPRESS_NONE. */
} md_cpio_opts;

/* Version 1 structs (without @threads) are still accepted: they get 0. */
#define MD_CPIO_OPTS_VERSION 2
#define MD_CPIO_OPTS_INIT \
    { MD_CPIO_OPTS_VERSION, 0, MD_COMPRESS_NONE, MD_COMPRESS_LEVEL_DEFAULT, NULL, NULL, 0 }

/** Fill @opts with the defaults (same as MD_CPIO_OPTS_INIT).  NULL-safe. */
MD_API void md_cpio_opts_init(md_cpio_opts *opts);

/**
 * Write @tree as a newc cpio archive to the file @path.  The data goes to a
 * temporary file in the same directory, renamed over @path (replacing an
 * existing file, as build outputs are) only when everything succeeded: on
 * any failure no file is left at @path (an existing one is untouched).
 * The new file gets mode 0666 & ~umask.  If @path is a symlink, the link
 * itself is replaced.  @opts may be NULL (uncompressed).
 * File contents are streamed: host files are read at this point, in
 * chunks, by a helper thread that reads ahead of the writer (it touches
 * only the files and is joined before this returns); a host file that
 * changed size or vanished since it was added is an error.  Finalises the
 * tree (see md-tree.h).
 * Errors (message on the tree's context, naming the entry or file):
 * -EINVAL (bad options: unknown compression, level out of range, unknown
 * flags; @path exists and is not a regular file), -EISDIR, -EFBIG (a file of 4 GiB or more: newc cannot store it),
 * -ENOENT/-EACCES/-ESTALE (a host file), -EIO (read error), -ENOSPC and
 * other -errno from writing, -ECANCELED (the progress callback said stop),
 * -ENOMEM, -EAGAIN (a thread could not be started).  @path is borrowed.
 */
MD_API int md_cpio_write(md_tree *tree, const char *path, const md_cpio_opts *opts);

/**
 * As md_cpio_write() but to the open file descriptor @fd (a file, pipe or
 * socket; written sequentially from its current position, not closed).
 * On failure part of the archive may already have been written to @fd.
 * Errors: as md_cpio_write().
 */
MD_API int md_cpio_write_fd(md_tree *tree, int fd, const md_cpio_opts *opts);

/**
 * Look up a compression method by name: "none", "gzip", "xz", "zstd" or
 * "lz4" (also "gz", "zst").  Errors: -EINVAL (message on @ctx, which may be
 * NULL, listing the valid names).
 */
MD_API int md_compress_from_name(md_ctx *ctx, const char *name, int32_t *ret);

/** Name of a compression method ("gzip", ...; a static string), NULL for an unknown value. */
MD_API const char *md_compress_name(int32_t compression);

/**
 * The valid levels of a compression method and its default; any of the
 * out pointers may be NULL.  For MD_COMPRESS_NONE all three are 0.
 * Errors: -EINVAL (unknown method).
 */
MD_API int md_compress_levels(int32_t compression, int32_t *min, int32_t *max, int32_t *def);

MD_END_DECLS

#endif
