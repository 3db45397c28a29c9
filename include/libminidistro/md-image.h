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
#define MD_IMAGE_RDONLY 0x1u   /* read only (a shared lock) */
#define MD_IMAGE_WAIT 0x2u     /* wait for a lock another program holds (else -EBUSY) */
#define MD_IMAGE_ATOMIC 0x4u   /* changes go to a copy (holes kept, copy_file_range) that
                                * md_image_commit() renames over the image: a failure,
                                * a crash or a full disk leaves the image as it was */

/* md_image_create_opts.flags */
#define MD_IMAGE_FORCE 0x1u     /* replace an existing file at the path */

typedef struct md_image_create_opts {
    uint32_t version;   /* MD_IMAGE_CREATE_OPTS_VERSION */
    uint32_t flags;     /* MD_IMAGE_* */
} md_image_create_opts;

#define MD_IMAGE_CREATE_OPTS_VERSION 1
#define MD_IMAGE_CREATE_OPTS_INIT { MD_IMAGE_CREATE_OPTS_VERSION, 0 }
/** Fill @opts with the defaults (same as MD_IMAGE_CREATE_OPTS_INIT); a NULL @opts is ignored. */
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

/**
 * Open an existing image file, locked for as long as it is open: a shared
 * lock (MD_IMAGE_RDONLY) or an exclusive one (OFD locks on the whole file,
 * which QEMU's image locking respects too).  With MD_IMAGE_ATOMIC the
 * changes are made to a copy published by md_image_commit() (freeing the
 * image without a commit drops them); the copy is made in the image's
 * directory, and where that directory is not writable the image is
 * changed in place (with a warning).  Without MD_IMAGE_ATOMIC changes are
 * made in place and md_image_commit() does nothing.
 * Errors: -ENOENT, -EACCES, -EINVAL (not a regular file, unknown flags),
 * -EBUSY (in use by another program; not with MD_IMAGE_WAIT), -ENOSPC (no
 * room for the copy), -ENOMEM.
 */
MD_API int md_image_open(md_ctx *ctx, const char *path, uint32_t flags, md_image **ret);

/**
 * Publish a created image under its final path: the temporary file is
 * closed and renamed over the path given to md_image_create() (an existing
 * file there is replaced only with MD_IMAGE_FORCE, checked at creation).
 * For an image opened with MD_IMAGE_ATOMIC the changed copy replaces the
 * image.  After success the image stays open and usable, now under its
 * final path.  Returns 0 and does nothing for an image opened without
 * MD_IMAGE_ATOMIC (its changes are in place) or one already committed.
 * Errors: -EINVAL (@img NULL); -errno from dup(): nothing has changed, the
 * image is still uncommitted and usable and the call can be repeated;
 * -errno from close() or rename() ("PATH: rename: ..."): see below.
 * After a failed close() or rename() the temporary file has been deleted
 * (its data is lost) and the final path is untouched (a file MD_IMAGE_FORCE
 * was to replace is still there).  The handle is dead: its descriptor is
 * closed and it counts as committed, so a second md_image_commit() returns 0
 * without publishing anything and md_image_path() names the final path.
 * Call nothing but md_image_free() on it: calls through the descriptor fail,
 * and calls that open md_image_path() by name (whole-image md_ext_format(),
 * md_ext_open(), md_extlinux_install()) would reach whatever file is at the
 * final path.
 */
MD_API int md_image_commit(md_image *img);

/** Close; an uncommitted created image is deleted.  NULL-safe. */
MD_API void md_image_free(md_image *img);

/** The path data is written to now: the temporary path until commit.  Borrowed. */
MD_API const char *md_image_path(const md_image *img);

/**
 * The path the image is known by: its final path, also while a created
 * image still lives under a temporary name.  For messages.  Borrowed.
 */
MD_API const char *md_image_name(const md_image *img);

/** 1 if the image was opened with MD_IMAGE_RDONLY, else 0. */
MD_API int md_image_is_rdonly(const md_image *img);

/** Size of the image in bytes. */
MD_API uint64_t md_image_size(const md_image *img);

/** The context (borrowed). */
MD_API md_ctx *md_image_ctx(const md_image *img);

/**
 * Byte range of partition @partno (1-based; 0 = the whole image) as read
 * from the image's partition table.  The table is checked against the file
 * first, since what uses the range reads and writes there: on an image
 * opened for writing every partition must lie inside the file, none may
 * overlap another, the MBR (sector 0) or a GPT's headers and entry arrays,
 * and a GPT must not describe a disk larger than the file; on a read-only
 * image partition @partno must lie inside the file (past its end there is
 * no data, only a short read).  See docs/disk.md.
 * Errors: -ENOENT (no such partition, message says how many there are),
 * -EINVAL (partno > 0 on an image without a partition table; a table that
 * fails the checks: "IMG: partition 2 ends at 1.0 TiB, beyond the image's
 * 16 MiB: truncated image?", "IMG: partitions 1 and 2 overlap (sectors
 * A-B)...").
 */
MD_API int md_image_partition_range(md_image *img, uint32_t partno, uint64_t *offset,
                                    uint64_t *size);

/* The rest (partition tables, probing) is declared below by its module owner. */

/**
 * Grow the image file to @new_size bytes (a multiple of 512, >= the current
 * size; the new space is a hole).  A GPT's backup header and the last usable
 * LBA are moved to the new end so the space can be partitioned.
 * Errors: -EINVAL (shrinking, not a multiple of 512), -EROFS (read-only), -errno.
 */
MD_API int md_image_resize(md_image *img, uint64_t new_size);

/**
 * Apparent size (file length) and allocated size (st_blocks * 512) in bytes;
 * either pointer may be NULL.  Errors: -errno from fstat.
 */
MD_API int md_image_usage(md_image *img, uint64_t *apparent, uint64_t *allocated);

/* ---- partition tables ---------------------------------------------------- */

/* Partition type names accepted by md_part_opts.type (besides a raw MBR type
 * code such as "0x83"/"83" or a GPT type GUID, and libfdisk's aliases). */
#define MD_PART_LINUX "linux"          /* MBR 0x83, GPT Linux filesystem */
#define MD_PART_EFI "efi"              /* MBR 0xef, GPT EFI System */
#define MD_PART_BIOS_BOOT "bios-boot"  /* GPT only: BIOS boot partition */
#define MD_PART_SWAP "swap"            /* MBR 0x82, GPT Linux swap */

/* md_part_opts.flags */
#define MD_PART_BOOTABLE 0x1u  /* MBR active flag / GPT attribute bit 2 (legacy BIOS bootable) */

/* Description of one partition for md_image_add_partition(). */
typedef struct md_part_opts {
    uint32_t version;   /* MD_PART_OPTS_VERSION */
    uint32_t flags;     /* MD_PART_* */
    uint64_t size;      /* bytes (rounded up to 512); 0 = see percent */
    uint32_t percent;   /* when size is 0: 1..100 percent of the usable space
                           (100 or 0 with size 0 = the rest of the disk) */
    uint32_t reserved;
    const char *type;   /* NULL = MD_PART_LINUX; see MD_PART_* names */
    const char *name;   /* GPT partition name (UTF-8, <= 36 chars); NULL = none */
    const char *uuid;   /* GPT partition GUID; NULL = derived from the seed or random */
} md_part_opts;

#define MD_PART_OPTS_VERSION 1
#define MD_PART_OPTS_INIT { MD_PART_OPTS_VERSION, 0, 0, 0, 0, NULL, NULL, NULL }
/** Fill @opts with the defaults (same as MD_PART_OPTS_INIT); a NULL @opts is ignored. */
MD_API void md_part_opts_init(md_part_opts *opts);

/**
 * Parse a partition description and queue it as md_image_add_partition()
 * does.  Syntax: SIZE[:TYPE[:FLAG[,FLAG]...]] where SIZE is a size as
 * md_parse_size() reads it ("100M"), "N%" of the usable space, or "rest";
 * TYPE is as md_part_opts.type (empty: linux); FLAGs are "bootable",
 * "name=NAME" (GPT name) and "uuid=GUID" (GPT partition GUID).  Examples:
 * "1M:bios-boot", "64M:efi:name=ESP", "rest:linux:bootable,name=root",
 * "100%::bootable".  @spec is copied.
 * Errors: -EINVAL (syntax: the message names the spec and the bad field), -ENOMEM.
 */
MD_API int md_image_add_partition_spec(md_image *img, const char *spec);

/* Partition table types: md_table_opts.type, md_disk_set_table() (md-disk.h)
 * and md_distro_opts.table (md-distro.h) all use these. */
#define MD_TABLE_NONE 0u  /* no table: one filesystem on the whole image ("superfloppy") */
#define MD_TABLE_MBR 1u   /* MBR ("dos"): up to 4 primary partitions, < 2 TiB */
#define MD_TABLE_GPT 2u   /* GUID partition table */

/**
 * Look up a table type by name: "gpt", "mbr" (also "dos") or "none".
 * Errors: -EINVAL (message on @ctx, which may be NULL, listing the names).
 */
MD_API int md_table_from_name(md_ctx *ctx, const char *name, uint32_t *ret);

/** Name of a table type ("gpt", "mbr", "none"; static); NULL for an unknown value. */
MD_API const char *md_table_name(uint32_t type);

/* md_table_opts.flags */
#define MD_TABLE_SEED 0x1u   /* use md_table_opts.seed for ids */

/* Options of md_image_write_table(). */
typedef struct md_table_opts {
    uint32_t version;   /* MD_TABLE_OPTS_VERSION */
    uint32_t flags;     /* MD_TABLE_* */
    uint32_t type;      /* MD_TABLE_GPT (default) or MD_TABLE_MBR */
    uint32_t reserved;  /* 0 */
    uint64_t seed;      /* with MD_TABLE_SEED: seed of the disk id and GUIDs */
    const char *disk_id;/* explicit disk id: "0x1234abcd" (MBR) or a GUID (GPT); NULL = derived */
} md_table_opts;

#define MD_TABLE_OPTS_VERSION 1
#define MD_TABLE_OPTS_INIT { MD_TABLE_OPTS_VERSION, 0, MD_TABLE_GPT, 0, 0, NULL }
/** Fill @opts with the defaults (same as MD_TABLE_OPTS_INIT); a NULL @opts is ignored. */
MD_API void md_table_opts_init(md_table_opts *opts);

/**
 * Queue a partition for the next md_image_write_table(), in order (the
 * first queued is partition 1).  @opts is copied (strings too).
 * Nothing is written yet; only the description is checked here.
 * Errors: -EINVAL (bad version, percent > 100, flags), -ENOMEM.
 */
MD_API int md_image_add_partition(md_image *img, const md_part_opts *opts);

/**
 * Write a new partition table holding the queued partitions (which are then
 * forgotten, whether the call succeeds or fails), replacing any table on the
 * image, with libfdisk.  Partitions start on 1 MiB boundaries (the first at
 * LBA 2048) and follow each other; one partition of size 0 (or 100%) takes
 * the rest of the disk, leaving aligned room for the partitions after it.
 * Ids are deterministic when MD_TABLE_SEED is set or, else, when the context
 * has a non-zero epoch (SOURCE_DATE_EPOCH): derived by hashing the seed and
 * the partition index; otherwise they are random.
 * Everything is validated before the first write: on error the image is
 * unchanged.
 * Errors: -EINVAL (unknown label or type, GPT-only type on MBR, more than 4
 * MBR partitions or 128 GPT partitions, bad GUID, a partition GUID given
 * twice or equal to the disk GUID), -ENOSPC (a partition does not fit; the message
 * says how much space is free), -EROFS, -EIO.
 */
MD_API int md_image_write_table(md_image *img, const md_table_opts *opts);

/**
 * The partition a filesystem goes on when the caller names none (what
 * `mdimg disk create --fs`, `disk populate` and `extlinux install` use):
 * 0 (the whole image) when the image has no partition table; else the
 * first bootable partition (MBR active flag / GPT legacy BIOS bootable);
 * else the only Linux partition (MBR 0x83, GPT "Linux filesystem" or a
 * "Linux root" type); else the only partition.
 * Errors: -EINVAL (several candidates and none bootable: the message lists
 * them and says to name one), -ENOENT (a table without partitions, or only
 * non-Linux ones among several), -EIO.
 */
MD_API int md_image_default_partition(md_image *img, uint32_t *partno);

/**
 * The partition a FAT filesystem goes on when the caller names none (an
 * EFI System partition, typically): 0 (the whole image) when the image has
 * no partition table; else the only EFI System partition (MBR 0xef, GPT
 * C12A7328-F81F-11D2-BA4B-00A0C93EC93B); else the only partition.
 * Errors: -EINVAL (several EFI System partitions: the message lists them),
 * -ENOENT (none among several partitions, or no partition), -EIO.
 */
MD_API int md_image_default_fat_partition(md_image *img, uint32_t *partno);

/**
 * Mark partition @partno bootable: on MBR set its active flag (and clear it
 * on the other partitions), on GPT set attribute bit 2 (legacy BIOS
 * bootable).  Other bytes of the table (and MBR boot code) are preserved.
 * Errors: -EINVAL (no table; a table md_image_partition_range() refuses
 * for writing), -ENOENT (no such partition), -EROFS, -EIO.
 */
MD_API int md_image_set_bootable(md_image *img, uint32_t partno);

/* ---- probing --------------------------------------------------------------- */

/* What libblkid sees in an image: the table and, per partition, the
 * filesystem.  Entries are indexed 0..md_probe_count(): index 0 is the whole
 * disk (its filesystem fields describe an unpartitioned filesystem), 1..count
 * are the partitions in table order. */
typedef struct md_probe md_probe;

/**
 * Probe @img with libblkid.  *@ret is owned by the caller (md_probe_free());
 * it is a snapshot and does not reference @img.
 * Errors: -ENOMEM, -EIO (libblkid failed to read the image).
 */
MD_API int md_image_probe(md_image *img, md_probe **ret);

/** Free a probe result.  NULL-safe. */
MD_API void md_probe_free(md_probe *probe);

/** Table type: "dos" or "gpt"; NULL when the image has no partition table.  Borrowed. */
MD_API const char *md_probe_table(const md_probe *probe);
/** Disk identifier: "0x1234abcd" or the disk GUID; NULL when no table.  Borrowed. */
MD_API const char *md_probe_table_id(const md_probe *probe);
/** Number of partitions (valid entry indexes are 0..count). */
MD_API uint32_t md_probe_count(const md_probe *probe);

/* Per-entry accessors.  Out-of-range indexes yield 0 / NULL.  Strings are
 * borrowed from the probe result; NULL when unknown. */
/** Partition number as the kernel numbers it (0 for the whole disk). */
MD_API uint32_t md_probe_number(const md_probe *probe, uint32_t idx);
/** Start offset in bytes. */
MD_API uint64_t md_probe_start(const md_probe *probe, uint32_t idx);
/** Size in bytes. */
MD_API uint64_t md_probe_size(const md_probe *probe, uint32_t idx);
/** Partition type: "0x83" on MBR, the type GUID (lower case) on GPT.  Borrowed. */
MD_API const char *md_probe_type(const md_probe *probe, uint32_t idx);
/** Human name of the type ("Linux filesystem"), NULL when not known.  Borrowed. */
MD_API const char *md_probe_type_name(const md_probe *probe, uint32_t idx);
/** MD_PART_BOOTABLE when the MBR active flag / GPT bit 2 is set. */
MD_API uint32_t md_probe_flags(const md_probe *probe, uint32_t idx);
/** Raw flags: MBR boot indicator byte, or the GPT attribute bits. */
MD_API uint64_t md_probe_attrs(const md_probe *probe, uint32_t idx);
/** GPT partition name.  Borrowed. */
MD_API const char *md_probe_name(const md_probe *probe, uint32_t idx);
/** Partition UUID: GPT partition GUID, or the MBR "disk id-NN" form (PARTUUID).  Borrowed. */
MD_API const char *md_probe_uuid(const md_probe *probe, uint32_t idx);
/** Filesystem type found in the entry ("ext4", "vfat"...).  Borrowed. */
MD_API const char *md_probe_fs_type(const md_probe *probe, uint32_t idx);
/** Filesystem label.  Borrowed. */
MD_API const char *md_probe_fs_label(const md_probe *probe, uint32_t idx);
/** Filesystem UUID.  Borrowed. */
MD_API const char *md_probe_fs_uuid(const md_probe *probe, uint32_t idx);

/**
 * Render the probe as a JSON object (UTF-8, trailing newline):
 * {"size":N,"table":"gpt"|null,"id":...,"filesystem":{...}|null,
 *  "partitions":[{"number","start","size","type","type_name","bootable",
 *  "attrs","name","uuid","filesystem":{"type","label","uuid"}|null}]}.
 * *@json is allocated with malloc(); the caller frees it with free().
 * Errors: -ENOMEM.
 */
MD_API int md_probe_to_json(const md_probe *probe, char **json);

MD_END_DECLS

#endif
