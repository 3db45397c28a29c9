/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Raw disk image files: sparse creation with atomic publication, partition
 * tables (MBR/GPT via libfdisk) and probing (libblkid).
 *
 * Partitions are numbered from 1 as in the kernel's /dev/sdaN; number 0
 * means the whole image (an unpartitioned "superfloppy" filesystem).
 */
#ifndef LIBMINIDISTRO_MD_IMAGE_H
#define LIBMINIDISTRO_MD_IMAGE_H

#include "md-common.h"

MD_BEGIN_DECLS

typedef struct md_image md_image;

/* md_image_open() flags */
#define MD_IMAGE_RDONLY 0x1u

/* md_image_create_opts.flags */
#define MD_IMAGE_FORCE 0x1u     /* replace an existing file at the path */

typedef struct md_image_create_opts {
    uint32_t version;   /* MD_IMAGE_CREATE_OPTS_VERSION */
    uint32_t flags;     /* MD_IMAGE_* */
} md_image_create_opts;

#define MD_IMAGE_CREATE_OPTS_VERSION 1
#define MD_IMAGE_CREATE_OPTS_INIT { MD_IMAGE_CREATE_OPTS_VERSION, 0 }
MD_API void md_image_create_opts_init(md_image_create_opts *opts);

/**
 * Create a sparse image of @size bytes (a multiple of 512) at @path.  The
 * data goes to a temporary file next to @path until md_image_commit()
 * renames it into place; freeing the image without committing removes it,
 * so a failed build leaves no partial file.
 * Errors: -EEXIST (exists, no MD_IMAGE_FORCE), -EINVAL (size), -errno.
 */
MD_API int md_image_create(md_ctx *ctx, const char *path, uint64_t size,
                           const md_image_create_opts *opts, md_image **ret);

/** Open an existing image file.  Errors: -ENOENT, -EACCES, -EINVAL (not a regular file). */
MD_API int md_image_open(md_ctx *ctx, const char *path, uint32_t flags, md_image **ret);

/** Publish a created image under its final path (no-op for opened images). */
MD_API int md_image_commit(md_image *img);

/** Close; an uncommitted created image is deleted.  NULL-safe. */
MD_API void md_image_free(md_image *img);

/** The path data is written to now: the temporary path until commit.  Borrowed. */
MD_API const char *md_image_path(const md_image *img);

/** Size of the image in bytes. */
MD_API uint64_t md_image_size(const md_image *img);

/** The context (borrowed). */
MD_API md_ctx *md_image_ctx(const md_image *img);

/**
 * Byte range of partition @partno (1-based; 0 = the whole image) as read
 * from the image's partition table.
 * Errors: -ENOENT (no such partition, message says how many there are),
 * -EINVAL (partno > 0 on an image without a partition table).
 */
MD_API int md_image_partition_range(md_image *img, uint32_t partno, uint64_t *offset,
                                    uint64_t *size);

/* The rest (partition tables, probing) is declared below by its module owner. */

MD_END_DECLS

#endif
