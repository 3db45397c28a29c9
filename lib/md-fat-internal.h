/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal header of the FAT module: md-fat.c (handle, boot sector
 * validation, FAT entries, cluster chains, times), md-fat-format.c
 * (geometry, format, size planning), md-fat-name.c (names: checks, case
 * folding, short names, long-name slots), md-fat-populate.c and
 * md-fat-read.c.  Not installed.
 */
#ifndef MD_FAT_INTERNAL_H
#define MD_FAT_INTERNAL_H

#include "md-internal.h"

#define FAT_DIRENT 32u
#define FAT_ATTR_RO 0x01u
#define FAT_ATTR_VOLUME 0x08u
#define FAT_ATTR_DIR 0x10u
#define FAT_ATTR_ARCH 0x20u
#define FAT_ATTR_LFN 0x0fu
#define FAT_CASE_LOWER_BASE 0x08u
#define FAT_CASE_LOWER_EXT 0x10u
#define FAT_LFN_MAX 255u         /* UTF-16 units in a long name */
#define FAT_LFN_CHARS 13u        /* units per long-name slot */
#define FAT_DIR_MAX_SLOTS 65536u /* entries of one directory (2 MiB) */
#define FAT12_MAX_CLUSTERS 4084u
#define FAT16_MIN_CLUSTERS 4087u /* Windows calls 4085 and 4086 FAT12, Linux FAT16: avoid both */
#define FAT16_MAX_CLUSTERS 65524u
#define FAT32_MIN_CLUSTERS 65525u
#define FAT32_MAX_CLUSTERS 0x0ffffff5u /* cluster numbers 2 .. 0x0ffffff6 */
#define FAT_TIME_MIN INT64_C(315532800)  /* 1980-01-01 00:00:00 UTC */
#define FAT_TIME_MAX INT64_C(4354819198) /* 2107-12-31 23:59:58 UTC */

/* The numbers a filesystem is laid out by: from a BPB, or planned. */
struct md_fat_geom {
    uint32_t type;          /* 12, 16, 32 */
    uint32_t sector_size;   /* bytes */
    uint32_t spc;           /* sectors per cluster */
    uint32_t reserved;      /* sectors before the first FAT */
    uint32_t nfats;
    uint32_t fat_sectors;   /* of one FAT */
    uint32_t root_entries;  /* FAT12/16 fixed root; 0 on FAT32 */
    uint32_t root_sectors;
    uint32_t total;         /* sectors of the filesystem */
    uint32_t clusters;      /* data clusters: numbers 2 .. clusters + 1 */
    uint32_t data_start;    /* first sector of cluster 2 */
    uint32_t root_cluster;  /* FAT32 */
    uint32_t fsinfo;        /* FAT32 FSInfo sector (0: none) */
    uint32_t backup;        /* FAT32 backup boot sector (0: none) */
    uint32_t active_fat;    /* the FAT read (FAT32 without mirroring may name one) */
    uint16_t spt, heads;
};

struct md_fat {
    md_ctx *ctx;
    md_image *img;
    int fd;                 /* the image's, borrowed */
    uint32_t partno;
    uint64_t off, size;     /* the partition's byte range */
    bool rdonly;
    bool fresh;             /* made by md_fat_format through this handle: the range reads as
                             * zeros where nothing was written, and nothing is in use */
    bool populated;
    struct md_fat_geom g;
    uint32_t cluster_bytes;
    uint32_t volume_id;
    uint32_t fat32_flags;   /* BPB extended flags */
    char label[12];
    char oem[9];
    uint8_t media;
    /* FAT read cache: a window of the active FAT */
    uint8_t *win;
    uint64_t win_start;     /* byte offset in the FAT */
    size_t win_len;
};

/* ---- md-fat.c ---------------------------------------------------------- */

/* "IMG: partition N" or "IMG" for messages. */
const char *md_fat_where(const md_fat *f, char *buf, size_t size);
/* A new handle on @img's partition @partno (range read, context referenced). */
int md_fat_handle_new(md_image *img, uint32_t partno, md_fat **ret);
/* Byte offset of cluster @c in the filesystem (from the partition start). */
uint64_t md_fat_cluster_off(const md_fat *f, uint32_t c);
/* pread/pwrite inside the partition's range only (-EIO with a message otherwise). */
int md_fat_pread(md_fat *f, void *buf, size_t n, uint64_t rel);
int md_fat_pwrite(md_fat *f, const void *buf, size_t n, uint64_t rel);
/* FAT entry @c (0 .. clusters + 1) of the active FAT, masked to its width. */
int md_fat_get_entry(md_fat *f, uint32_t c, uint32_t *val);
/* The end-of-chain threshold and the bad-cluster value for the type. */
uint32_t md_fat_eoc_min(uint32_t type);
/* The cluster after @c in a chain: *@next 0 at the end of the chain.
 * Anything but a valid cluster or an end mark is -EIO naming @what. */
int md_fat_next(md_fat *f, uint32_t c, const char *what, uint32_t *next);
/* Clusters in use (count the FAT). */
int md_fat_count_free(md_fat *f, uint32_t *free_clusters);
/* Validate a boot sector (@bs, 512 bytes at least) for a partition of
 * @part_size bytes into @g; the message names the bad value. */
int md_fat_parse_bpb(md_ctx *ctx, const char *where, const uint8_t *bs, uint64_t part_size,
                     struct md_fat_geom *g);

/* FAT date/time of @t seconds since 1970, UTC, clamped to 1980..2107;
 * @cs: hundredths of a second for the creation time (NULL: not wanted). */
void md_fat_time_to(int64_t t, uint16_t *date, uint16_t *time, uint8_t *cs);
/* Seconds since 1970 of a FAT date/time read as UTC (invalid fields clamp). */
int64_t md_fat_time_from(uint16_t date, uint16_t time);
/* A short directory entry at @e (32 bytes) on a filesystem of @type: every
 * time field from @t; the cluster's high half only on FAT32. */
void md_fat_dirent(uint32_t type, uint8_t *e, const uint8_t name[11], uint8_t attr, uint8_t lcase,
                   uint32_t cluster, uint32_t size, int64_t t);
/* FNV-1a over @n bytes, continuing from @h. */
uint64_t md_fat_fnv64(uint64_t h, const void *p, size_t n);

/* ---- md-fat-format.c --------------------------------------------------- */

/* The geometry md_fat_format() would give a range of @bytes with @o
 * (checked).  Errors as md_fat_format(); @where prefixes messages. */
int md_fat_plan_geom(md_ctx *ctx, const char *where, uint64_t bytes, const md_fat_format_opts *o,
                     struct md_fat_geom *g);
/* The size of a filesystem made with @opts (NULL: defaults) that holds
 * @tree with @headroom bytes to spare, as md_fat_format() and
 * md_fat_populate() would lay it out; a multiple of 1 MiB.  FAT32 asked
 * for explicitly is at least 36 MiB (OVMF refuses FAT32 with too few
 * clusters); the default type is chosen by size, so a computed size under
 * 512 MiB is FAT16 or FAT12. */
int md_fat_plan_size(md_ctx *ctx, md_tree *tree, const md_fat_format_opts *opts,
                     uint64_t headroom, uint64_t *size);

/* ---- md-fat-populate.c ------------------------------------------------- */

/* Clusters a populate of @tree needs on a filesystem laid out as @g (its
 * checks included: names, types, the fixed root's size). */
int md_fat_tree_clusters(md_ctx *ctx, md_tree *tree, const struct md_fat_geom *g, uint64_t *clusters);

/* ---- md-fat-name.c ----------------------------------------------------- */

/* A name as FAT stores it. */
struct md_fat_name {
    uint16_t u[FAT_LFN_MAX + 1]; /* UTF-16 */
    uint32_t n;                  /* units */
    uint8_t sfn[11];             /* short name, space padded */
    uint8_t lcase;               /* FAT_CASE_LOWER_* */
    bool exact;                  /* sfn is the name itself (upper-cased): no ~N needed */
    bool lfn;                    /* long-name slots are needed */
};

/* Decode the UTF-8 component @s (@len bytes) into @nm->u and check that
 * FAT can hold it; *@why says what is wrong on -EINVAL. */
int md_fat_name_parse(const char *s, size_t len, struct md_fat_name *nm, const char **why);
/* The basis short name and whether it is the name itself (Linux vfat's
 * rules): fills sfn, lcase, exact, lfn. */
void md_fat_name_basis(struct md_fat_name *nm);
/* Write "~N" into the basis @sfn (base part shortened as needed): N is 1..999999. */
void md_fat_name_tail(const uint8_t basis[11], uint32_t n, uint8_t out[11]);
/* Upper-case one UTF-16 unit as FAT compares names (ASCII, Latin-1, Latin
 * Extended-A, Greek, Cyrillic). */
uint16_t md_fat_upcase(uint16_t c);
/* Long-name checksum of an 11-byte short name. */
uint8_t md_fat_lfn_checksum(const uint8_t sfn[11]);
/* Slots of long-name entries for @n units. */
static inline uint32_t md_fat_lfn_slots(uint32_t n)
{
    return (n + FAT_LFN_CHARS - 1) / FAT_LFN_CHARS;
}
/* Write the long-name slots of @nm (for short name @sfn) into @out
 * (md_fat_lfn_slots(nm->n) * 32 bytes), last slot first as on disk. */
void md_fat_lfn_encode(const struct md_fat_name *nm, uint8_t *out);
/* UTF-8 of UTF-16 @u (@n units; unpaired surrogates become U+FFFD) into
 * @out (at least 3 * @n + 1 bytes). */
void md_fat_utf16_to_utf8(const uint16_t *u, size_t n, char *out);
/* The display form of short name @sfn with case flags @lcase ("readme.TXT")
 * into @out (at least 40 bytes, UTF-8: bytes over 0x7f are code page 437). */
void md_fat_sfn_display(const uint8_t sfn[11], uint8_t lcase, char *out);
/* The stored form of short name @sfn: "README.TXT" (bytes as they are) into @out[13]. */
void md_fat_sfn_plain(const uint8_t sfn[11], char *out);
/* Compare UTF-8 names as FAT does (case-insensitively); 0 when equal. */
int md_fat_name_cmp_ci(const char *a, const char *b);

#endif
