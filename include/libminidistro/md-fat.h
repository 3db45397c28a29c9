/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FAT12/16/32 filesystems (with VFAT long names) inside disk images, made,
 * filled and read in-process: no mkfs.fat, no mtools, no mount, no root.
 * This is what EFI System partitions are made with.
 *
 * A filesystem lives on partition N of an md_image (1-based) or on the
 * whole image (N = 0).  Paths inside it are absolute or relative to its
 * root ("/EFI/BOOT/BOOTX64.EFI"), '/' separated, and are looked up as FAT
 * does: case-insensitively, by long or by short (8.3) name.
 *
 * Layout (docs/fat.md): the type and cluster size are chosen from the size
 * as mkfs.fat chooses them, the tables are aligned to clusters as mkfs.fat
 * aligns them, and md_fat_populate() allocates every directory and file
 * contiguously in the tree's order.  Determinism: with a volume id given,
 * or an epoch set on the context (SOURCE_DATE_EPOCH, md_ctx_set_epoch()),
 * the bytes written depend only on the inputs.  Timestamps are stored as
 * UTC, whatever the host's time zone.
 */
#ifndef LIBMINIDISTRO_MD_FAT_H
#define LIBMINIDISTRO_MD_FAT_H

#include "md-common.h"
#include "md-image.h"
#include "md-tree.h"

MD_BEGIN_DECLS

/** An open FAT filesystem inside an md_image. */
typedef struct md_fat md_fat;

/* FAT types: md_fat_format_opts.fat_type, md_fat_type(), and the
 * filesystem types of md_fs_type_from_name() ("vfat"/"fat", "fat12",
 * "fat16", "fat32"; the ext types are MD_EXT2..MD_EXT4 in md-ext.h). */
#define MD_VFAT 1     /* the FAT type the size calls for, as mkfs.fat chooses it */
#define MD_FAT12 12
#define MD_FAT16 16
#define MD_FAT32 32

typedef struct md_fat_format_opts {
    uint32_t version;        /* MD_FAT_FORMAT_OPTS_VERSION */
    int32_t fat_type;        /* MD_VFAT (or 0): FAT32 from 512 MiB on, else FAT16 or FAT12
                              * (whichever the cluster count allows); MD_FAT12/16/32: that one */
    uint32_t cluster_size;   /* bytes per cluster, a power of two from 512 to 65536; 0: as
                              * mkfs.fat for the type and size */
    uint32_t flags;          /* reserved, 0 */
    const char *label;       /* volume label: up to 11 characters, printable ASCII except
                              * "*+,./:;<=>?[\]| (lower case is made upper case); NULL or "":
                              * none ("NO NAME") */
    const char *volume_id;   /* "ABCD-1234" (as blkid shows it) or 8 hex digits; NULL:
                              * derived from the context epoch when one is set, else random */
    const char *oem_name;    /* boot sector OEM name, up to 8 printable ASCII characters;
                              * NULL: "MSWIN4.1" (what the FAT specification recommends) */
} md_fat_format_opts;

#define MD_FAT_FORMAT_OPTS_VERSION 1
#define MD_FAT_FORMAT_OPTS_INIT { MD_FAT_FORMAT_OPTS_VERSION, MD_VFAT, 0, 0, NULL, NULL, NULL }
/** Fill @opts with MD_FAT_FORMAT_OPTS_INIT (type and cluster size by size).  NULL-safe. */
MD_API void md_fat_format_opts_init(md_fat_format_opts *opts);

/**
 * Make a new, empty FAT filesystem on partition @partno of @img (0 = the
 * whole image): boot sector with a BPB as mkfs.fat writes it (512-byte
 * sectors, media 0xF8, 2 FATs, hidden sectors = the partition's start,
 * mkfs.fat's sectors per track and heads, a stub that says the disk is not
 * bootable), FAT32's FSInfo sector and backup boot sector at 6, an empty
 * root directory holding the volume label.  Options and geometry are
 * checked before anything is written; then the byte range is cleared
 * (holes punched: the image stays sparse) and the tables written.  With
 * @ret non-NULL the new filesystem is returned open (for md_fat_populate();
 * close it with md_fat_close()); with @ret NULL it is closed.  @img is
 * borrowed and must outlive the md_fat.
 * Errors: -EINVAL (bad option: the message names it; a partition over
 * 2 TiB), -ENOENT (no such partition), -ENOSPC (the partition is too
 * small for any FAT, or for the type asked: the message says the minimum),
 * -EROFS (image opened read-only), -EIO.
 */
MD_API int md_fat_format(md_image *img, uint32_t partno, const md_fat_format_opts *opts,
                         md_fat **ret);

/* md_fat_open() flags */
#define MD_FAT_RDONLY 0x1u

/**
 * Open the FAT filesystem on partition @partno of @img (0 = the whole
 * image).  The boot sector is validated before anything else is read:
 * sector and cluster sizes, the table sizes and the total must be
 * consistent and lie inside the partition; nothing outside the
 * partition's byte range is ever read.  @flags: MD_FAT_RDONLY.  @img is
 * borrowed and must outlive the md_fat.
 * Errors: -EINVAL (no FAT filesystem there, or a corrupt boot sector: the
 * message says which value is wrong), -ENOENT (no such partition), -EIO.
 */
MD_API int md_fat_open(md_image *img, uint32_t partno, uint32_t flags, md_fat **ret);

/**
 * Close: nothing is pending (every call writes what it changes), so this
 * only frees the handle.  NULL-safe (returns 0).
 */
MD_API int md_fat_close(md_fat *fat);

/** Same as md_fat_close(), for error paths.  NULL-safe. */
MD_API void md_fat_free(md_fat *fat);

/** The context of the image the filesystem is on (borrowed). */
MD_API md_ctx *md_fat_ctx(const md_fat *fat);

/** What a FAT filesystem is made of, filled by md_fat_get_info(). */
typedef struct md_fat_info {
    uint32_t version;        /* set by the caller: MD_FAT_INFO_VERSION */
    int32_t fat_type;        /* MD_FAT12, MD_FAT16 or MD_FAT32 */
    uint32_t sector_size;    /* bytes */
    uint32_t cluster_size;   /* bytes */
    uint32_t clusters;       /* data clusters */
    uint32_t free_clusters;  /* counted in the FAT */
    uint32_t root_entries;   /* FAT12/16: slots of the fixed root directory; FAT32: 0 */
    uint32_t volume_id;
    uint64_t size;           /* bytes the filesystem covers (a multiple of the sectors per track) */
    char label[12];          /* volume label, trailing spaces removed; "" when none */
    char oem_name[9];        /* NUL-terminated */
} md_fat_info;

#define MD_FAT_INFO_VERSION 1
#define MD_FAT_INFO_INIT { MD_FAT_INFO_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, "", "" }

/** Fill @info (its version set by the caller).  Errors: -EINVAL (version), -EIO. */
MD_API int md_fat_get_info(md_fat *fat, md_fat_info *info);

/* ------------------------------------------------------------------ */
/* Population                                                         */

/* md_fat_populate_opts.flags */
#define MD_FAT_SKIP_SPECIAL 0x1u /* leave out symlinks, device nodes, FIFOs and sockets with
                                  * one warning, instead of refusing them */

typedef struct md_fat_populate_opts {
    uint32_t version;          /* MD_FAT_POPULATE_OPTS_VERSION */
    uint32_t flags;            /* MD_FAT_* */
    md_progress_fn progress;   /* bytes of file data written; NULL: none */
    void *userdata;
} md_fat_populate_opts;

#define MD_FAT_POPULATE_OPTS_VERSION 1
#define MD_FAT_POPULATE_OPTS_INIT { MD_FAT_POPULATE_OPTS_VERSION, 0, NULL, NULL }
/** Fill @opts with MD_FAT_POPULATE_OPTS_INIT.  NULL-safe. */
MD_API void md_fat_populate_opts_init(md_fat_populate_opts *opts);

/**
 * Fill an empty filesystem (as md_fat_format() makes it: nothing in the
 * root but the label, no cluster in use but the root's) with the
 * directories and regular files of @tree.  Names are stored as VFAT does:
 * a name that fits 8.3 in one case is a short entry alone (lower case
 * through the NT case flags), any other gets long-name entries and a short
 * alias NAME~N.EXT (docs/fat.md).  Times: the entry's mtime, as UTC,
 * clamped to 1980..2107, for modification, creation and access.
 * Everything is checked before the first write, and the filesystem is left
 * untouched on any of these errors (the messages name the entries):
 *  -EINVAL: a symlink, device node, FIFO or socket (unless
 *   MD_FAT_SKIP_SPECIAL); a name FAT cannot hold (control characters,
 *   "*:<>?\|, a trailing dot or space, over 255 UTF-16 units, not UTF-8);
 *   two names in one directory that differ only in case;
 *  -EFBIG: a file of 4 GiB or more;
 *  -ENOSPC: more entries than FAT12/16's fixed root directory holds (the
 *   message says how many fit), a directory over 65536 entries, or more
 *   clusters than are free (the message says how much is needed);
 *  -ENOTEMPTY: the filesystem is not empty.
 * Owners, modes, hard links (stored as copies) and xattrs, which FAT
 * cannot hold, only get one warning each on the context.
 * Errors after the first write: -ESTALE (a host file changed or vanished),
 * -ECANCELED (progress callback), -EROFS, -EIO; the filesystem may then be
 * partly written.
 */
MD_API int md_fat_populate(md_fat *fat, md_tree *tree, const md_fat_populate_opts *opts);

/* ------------------------------------------------------------------ */
/* Reading                                                            */

/* md_fat_stat.attr bits (the directory entry's attribute byte) */
#define MD_FAT_ATTR_RDONLY 0x01u
#define MD_FAT_ATTR_HIDDEN 0x02u
#define MD_FAT_ATTR_SYSTEM 0x04u
#define MD_FAT_ATTR_DIR 0x10u
#define MD_FAT_ATTR_ARCHIVE 0x20u

/** A directory entry, filled by md_fat_stat_path() and passed to md_fat_list()'s callback. */
typedef struct md_fat_stat {
    uint32_t version;        /* set by the caller: MD_FAT_STAT_VERSION */
    uint32_t mode;           /* S_IFDIR | 0755, or S_IFREG | 0644 (0444 when read-only) */
    uint32_t attr;           /* MD_FAT_ATTR_* */
    uint32_t cluster;        /* first cluster (0: none) */
    uint64_t size;           /* bytes (0 for directories) */
    int64_t mtime;           /* modification time, read as UTC */
    int64_t ctime;           /* creation time, read as UTC (0 when not set) */
    char short_name[13];     /* the 8.3 name as stored ("README.TXT"); "" for the root */
} md_fat_stat;

#define MD_FAT_STAT_VERSION 1
#define MD_FAT_STAT_INIT { MD_FAT_STAT_VERSION, 0, 0, 0, 0, 0, 0, "" }

/**
 * Information about @path; the root is a directory.  @st->version must be
 * set.  Errors: -ENOENT, -ENOTDIR, -EINVAL, -EIO (a corrupt directory).
 */
MD_API int md_fat_stat_path(md_fat *fat, const char *path, md_fat_stat *st);

/**
 * Entry callback for md_fat_list(): @name (UTF-8: the long name when a
 * valid one is there, else the short name with its case flags applied) and
 * @st are borrowed for the call.  Return 0 to continue, non-zero to stop
 * (md_fat_list() then returns that value if positive, -ECANCELED if
 * negative).
 */
typedef int (*md_fat_list_fn)(void *userdata, const char *name, const md_fat_stat *st);

/**
 * Call @fn for every entry of directory @path except ".", ".." and the
 * volume label, sorted by name (byte order).  Long names are reassembled
 * from their entries and used only when their checksum matches the short
 * entry they belong to.  A name given is always one path component (never
 * empty, "." or "..", no '/'): a long name that is not gives way to the
 * short name, in which '/' and control characters read as '?'; an entry
 * whose short name is blank too is left out, with a warning logged on the
 * context.  Cluster chains are followed with a bound (a loop
 * or a chain longer than FAT allows is an error, never a hang).
 * Errors: -ENOENT, -ENOTDIR, -ENOMEM, -EIO (a corrupt directory or chain:
 * the message says what).
 */
MD_API int md_fat_list(md_fat *fat, const char *path, md_fat_list_fn fn, void *userdata);

/**
 * Read regular file @path into a new buffer (NUL-terminated for
 * convenience, the terminator not counted in @size); free it with free(3).
 * Errors: -ENOENT, -EISDIR, -ENOMEM, -EIO (chain shorter than the size,
 * or broken; a size larger than the filesystem's data clusters, refused
 * before anything is allocated or read).
 */
MD_API int md_fat_read_file(md_fat *fat, const char *path, void **data, size_t *size);

/**
 * Copy regular file @path to host file @host_path, streamed, written
 * atomically (a temporary file renamed on success; an existing regular
 * file is replaced, anything else there is refused with -EINVAL).
 * Errors: as md_fat_read_file() and -errno for the host file.
 */
MD_API int md_fat_extract_file(md_fat *fat, const char *path, const char *host_path);

/**
 * As md_fat_extract_file() but to the open file descriptor @fd (written
 * sequentially from its position, not closed; a pipe is fine).  On failure
 * part of the file may have been written.
 * Errors: as md_fat_read_file(), -EBADF, -errno from writing.
 */
MD_API int md_fat_extract_fd(md_fat *fat, const char *path, int fd);

MD_END_DECLS

#endif
