/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The image pipeline: describe a whole disk image once — its size, partition
 * table, partitions, which filesystem goes on which partition, what fills each
 * filesystem and what boots from it — and build it with one call.  This is
 * what `mdimg disk create`, md_distro_build() and the examples use:
 *
 *     md_disk *d;
 *     md_tree *root;
 *     md_table_opts t = MD_TABLE_OPTS_INIT;
 *     md_ext_format_opts fo = MD_EXT_FORMAT_OPTS_INIT;
 *
 *     md_disk_new(ctx, &d);
 *     md_disk_set_size(d, 64 << 20);
 *     t.type = MD_TABLE_MBR;
 *     md_disk_set_table(d, &t);
 *     md_disk_add_partition_spec(d, "rest:linux:bootable");
 *     idx = md_disk_add_ext(d, MD_DISK_PART_AUTO, &fo, &root);   (root: owned by d)
 *     md_tree_add_host(root, "rootfs", NULL);
 *     md_disk_set_extlinux(d, idx, &xo);                         (optional)
 *     r = md_disk_write(d, "disk.img", NULL);
 *     md_disk_free(d);
 *
 * md_disk_write() checks the description, builds the image under a temporary
 * name next to the output — create (sparse) → partition table → for each
 * filesystem in order: format, populate → boot loaders → publish — and renames
 * it into place only when every step succeeded: on failure nothing is left at
 * the output path and an existing file there is untouched.
 */
#ifndef LIBMINIDISTRO_MD_DISK_H
#define LIBMINIDISTRO_MD_DISK_H

#include "md-common.h"
#include "md-ext.h"
#include "md-extlinux.h"
#include "md-fat.h"
#include "md-image.h"
#include "md-tree.h"

MD_BEGIN_DECLS

/* ---- filesystem type names ------------------------------------------------ */

/* Filesystem types: MD_EXT2, MD_EXT3, MD_EXT4 (md-ext.h); MD_VFAT, MD_FAT12,
 * MD_FAT16, MD_FAT32 (md-fat.h). */

/**
 * Look up a filesystem type by name: "ext2", "ext3", "ext4", "vfat" (also
 * "fat": FAT of the type its size calls for), "fat12", "fat16", "fat32".
 * Errors: -EINVAL (message on @ctx, which may be NULL, listing the names).
 */
MD_API int md_fs_type_from_name(md_ctx *ctx, const char *name, int32_t *ret);

/** Name of a filesystem type ("ext4", "vfat", "fat32", ...; static); NULL for an unknown value. */
MD_API const char *md_fs_type_name(int32_t type);

/* ---- the recipe ------------------------------------------------------------ */

/** A description of a disk image, built by md_disk_write(). */
typedef struct md_disk md_disk;

/**
 * The partition of md_disk_add_ext() and md_disk_add_fat(): chosen when
 * the table is written, for ext as md_image_default_partition() chooses
 * (the whole image without a table; else the bootable partition, else the
 * only Linux partition), for FAT as md_image_default_fat_partition() does
 * (the only EFI System partition, else the only partition).
 */
#define MD_DISK_PART_AUTO 0xffffffffu

/**
 * A new, empty description: no size, no table, no filesystem.  The disk
 * keeps a reference on @ctx.
 * Errors: -EINVAL, -ENOMEM.
 */
MD_API int md_disk_new(md_ctx *ctx, md_disk **ret);

/** Free the description and the trees it owns.  NULL-safe. */
MD_API void md_disk_free(md_disk *disk);

/** The context (borrowed). */
MD_API md_ctx *md_disk_ctx(const md_disk *disk);

/**
 * The image size in bytes: a multiple of 512, or 0 (the default) to have
 * md_disk_write() compute it: each filesystem as small as holds its tree
 * (data, directories, inode tables, journal, reserved blocks, as
 * md_ext_format() would make them) plus the headroom of
 * md_disk_set_headroom(); partitions without a size take their
 * filesystem's; the table's own space and 1 MiB alignment added.
 * Errors: -EINVAL.
 */
MD_API int md_disk_set_size(md_disk *disk, uint64_t size);

/**
 * The free space a computed size leaves in each filesystem: @bytes, or, when
 * @bytes is 0, @percent (0..1000) of the filesystem's contents.  Default:
 * 20 % of the contents, at least 16 MiB.
 * Errors: -EINVAL (@percent over 1000).
 */
MD_API int md_disk_set_headroom(md_disk *disk, uint64_t bytes, uint32_t percent);

/** The image size set, or the one the last md_disk_write() computed; 0 if none yet. */
MD_API uint64_t md_disk_size(const md_disk *disk);

/**
 * The partition table: @opts->type MD_TABLE_NONE, MD_TABLE_MBR or
 * MD_TABLE_GPT, with the ids of md_table_opts (copied).  Without this call
 * the table is GPT when partitions are added, else none.
 * Errors: -EINVAL (bad version, type or flags; a seed or disk id for
 * MD_TABLE_NONE), -ENOMEM.
 */
MD_API int md_disk_set_table(md_disk *disk, const md_table_opts *opts);

/** The table type md_disk_write() uses (MD_TABLE_*). */
MD_API uint32_t md_disk_table(const md_disk *disk);

/**
 * Append a partition, as md_image_add_partition() does (copied; the first
 * added is partition 1).  Errors: as md_image_add_partition().
 */
MD_API int md_disk_add_partition(md_disk *disk, const md_part_opts *opts);

/**
 * Append a partition described as md_image_add_partition_spec() reads it
 * ("64M:efi", "rest:linux:bootable", ...).
 * Errors: -EINVAL (syntax: the message names the spec and the bad field), -ENOMEM.
 */
MD_API int md_disk_add_partition_spec(md_disk *disk, const char *spec);

/** Number of partitions added. */
MD_API uint32_t md_disk_partition_count(const md_disk *disk);

/**
 * Put an ext2/3/4 filesystem on partition @partno (1-based; 0: the whole
 * image, which needs MD_TABLE_NONE; MD_DISK_PART_AUTO: see above) made with
 * @opts (copied; NULL: MD_EXT_FORMAT_OPTS_INIT) and filled with the entries
 * of *@tree, a new empty tree owned by the disk (borrowed by the caller until
 * md_disk_free(); add sources to it with the md_tree_* calls).  Filesystems
 * are made in the order they are added.
 * Returns the filesystem's index (0, 1, ...) for md_disk_set_extlinux().
 * Errors: -EINVAL (bad options; a partition given twice), -ENOMEM.
 */
MD_API int md_disk_add_ext(md_disk *disk, uint32_t partno, const md_ext_format_opts *opts,
                           md_tree **tree);

/**
 * Put a FAT filesystem on partition @partno (as md_disk_add_ext(); with
 * MD_DISK_PART_AUTO the EFI System partition) made with @opts (copied;
 * NULL: MD_FAT_FORMAT_OPTS_INIT, the type by size) and filled with the
 * directories and files of *@tree (owned by the disk, as md_disk_add_ext()
 * says).  A computed size (md_disk_set_size() 0) holds the tree's clusters,
 * the FATs and reserved sectors and the headroom; by default the type
 * follows that size (FAT16 or FAT12 under 512 MiB), and FAT32 asked for
 * explicitly is made at least 36 MiB, as OVMF refuses a FAT32 with too few
 * clusters.  What FAT cannot hold is refused at md_disk_write() as
 * md_fat_populate() refuses it, before the image is created when the size
 * is computed.
 * Returns the filesystem's index (0, 1, ...).
 * Errors: -EINVAL (bad options; a partition given twice), -ENOMEM.
 */
MD_API int md_disk_add_fat(md_disk *disk, uint32_t partno, const md_fat_format_opts *opts,
                           md_tree **tree);

/** Number of filesystems added. */
MD_API uint32_t md_disk_fs_count(const md_disk *disk);

/**
 * The partition filesystem @index is on: as given to md_disk_add_ext() or
 * md_disk_add_fat(), or,
 * for MD_DISK_PART_AUTO, the one the last md_disk_write() chose.
 */
MD_API uint32_t md_disk_fs_partition(const md_disk *disk, uint32_t index);

/**
 * Install EXTLINUX (md_extlinux_install()) into the ext filesystem @index
 * after it is populated, so that the kernel and initrds its config names can
 * come from the filesystem's tree.  @opts is copied (strings and the module
 * list too).
 * Errors: -EINVAL (no such filesystem, a FAT filesystem, bad options), -ENOMEM.
 */
MD_API int md_disk_set_extlinux(md_disk *disk, uint32_t index, const md_extlinux_opts *opts);

/* md_disk_write_opts.flags */
#define MD_DISK_FORCE 0x1u  /* replace an existing (regular) file at the output path */
/* Do not flush the image to stable storage when it is done (no writeback
 * started while it is written, no fsync at the end): the image is complete
 * for every reader at once, as the output of tar or cp is, but a crash of
 * the machine soon after may lose it.  Default: an image with an ext
 * filesystem is durable when md_disk_write() returns. */
#define MD_DISK_NO_SYNC 0x2u

typedef struct md_disk_write_opts {
    uint32_t version;         /* MD_DISK_WRITE_OPTS_VERSION */
    uint32_t flags;           /* MD_DISK_* */
    md_progress_fn progress;  /* bytes of file data written into all filesystems / their total;
                               * NULL: none */
    void *userdata;           /* passed to @progress */
} md_disk_write_opts;

#define MD_DISK_WRITE_OPTS_VERSION 1
#define MD_DISK_WRITE_OPTS_INIT { MD_DISK_WRITE_OPTS_VERSION, 0, NULL, NULL }
/** Fill @opts with the defaults of MD_DISK_WRITE_OPTS_INIT.  NULL-safe. */
MD_API void md_disk_write_opts_init(md_disk_write_opts *opts);

/**
 * Build the described image at @path (borrowed).  Checked before the image
 * is created: partitions need a table; a filesystem on
 * partition 0 needs MD_TABLE_NONE, one on partition N needs N partitions;
 * at most 4 partitions on MBR, 128 on GPT, no partition GUID given twice;
 * no two filesystems on one partition (also after MD_DISK_PART_AUTO is
 * resolved, which happens once the table is written).  Each
 * filesystem's tree is finalised (md-tree.h).  The description is not
 * changed and may be written again.  @opts may be NULL.
 * Errors (message on the context, naming the image, partition or entry):
 * -EINVAL (an inconsistent description; see above; a computed size with a
 * partition given in percent, or a sizeless partition without a
 * filesystem), -EEXIST (@path exists, no MD_DISK_FORCE), -ENOSPC (a
 * partition or the files do not fit: the message says what size is needed),
 * -ECANCELED (progress callback), and the
 * errors of md_image_create(), md_image_write_table(), md_ext_format(),
 * md_ext_populate(), md_fat_format(), md_fat_populate() and
 * md_extlinux_install().
 */
MD_API int md_disk_write(md_disk *disk, const char *path, const md_disk_write_opts *opts);

MD_END_DECLS

#endif
