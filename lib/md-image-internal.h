/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal header of the image module (md-image.c: files, tables; md-image-probe.c:
 * libblkid probing, JSON, the default partition).  Not installed. */
#ifndef MD_IMAGE_INTERNAL_H
#define MD_IMAGE_INTERNAL_H

#include <blkid/blkid.h>

#include "md-internal.h"

#define SECTOR 512u
#define GRAIN_SECTORS 2048u /* 1 MiB alignment */
#define GPT_ATTR_LEGACY_BOOT (UINT64_C(1) << 2)
#define DOS_ACTIVE 0x80u

struct pending_part {
    uint32_t flags;
    uint64_t size;
    uint32_t percent;
    char *type, *name, *uuid;
};

struct md_image {
    md_ctx *ctx;
    char *path;          /* final path */
    md_tmpfile tmp;      /* created images, and the copy of an MD_IMAGE_ATOMIC one, until commit */
    bool created, committed, rdonly;
    bool atomic;         /* an opened image whose changes go to a copy (tmp) */
    int fd;
    int lock_fd;         /* the opened file, locked for as long as the image is open
                          * (its own descriptor is fd unless atomic) */
    uint64_t size;
    struct pending_part *parts;
    size_t n_parts;
    char fdisk_msg[256]; /* last warning libfdisk gave, for error messages */
};

/* Partition type names: aliases, MBR code, GPT GUID, display name.  Ends with a NULL alias1. */
struct md_known_type {
    const char *alias1, *alias2, *alias3;
    unsigned dos;     /* 0: none */
    const char *gpt;  /* NULL: none */
    const char *name;
};
extern const struct md_known_type md_known_types[];

/* The image's partition list (libblkid); *@ret_ls is NULL without a table.
 * Free *@ret_pr with blkid_free_probe(). */
int md_image_blkid_parts(md_image *img, blkid_probe *ret_pr, blkid_partlist *ret_ls);

/* What the checks need of a GPT header. */
struct md_gpt_header {
    uint64_t alt;          /* the other header's LBA (the backup's: the disk's last sector) */
    uint64_t first, last;  /* usable LBAs */
    uint64_t entries;      /* LBA of the entry array */
    uint32_t n_entries, entry_size;
};

/* The GPT header at @lba when its signature, size, LBA and CRC hold. */
bool md_image_gpt_header(md_image *img, uint64_t lba, struct md_gpt_header *g);
/* Entry @i (from 0) of @g's array: true with its LBAs when it is in use. */
bool md_image_gpt_entry(md_image *img, const struct md_gpt_header *g, uint32_t i, uint64_t *first,
                        uint64_t *last);
/* -EINVAL, "truncated image?", when primary header @g places the disk's end
 * (its backup header) or usable sectors past the end of the file. */
int md_image_gpt_truncated(md_image *img, const struct md_gpt_header *g);

/* @v bytes for messages: "16 MiB", "1 TiB", "1.5 GiB". */
void md_image_fmt_size(char *buf, size_t n, uint64_t v);

/* The table @ls of @img against the file before a partition is used: with
 * @all (an image opened for writing) every partition inside the file, none
 * overlapping another or the MBR / the GPT's headers and entries, and a GPT
 * whose backup header is inside the file; else (reading) only partition
 * @partno inside the file.  -EINVAL with a message naming what is wrong. */
int md_image_check_table(md_image *img, blkid_partlist ls, uint32_t partno, bool all);
/* A GPT entry outside the usable sectors (libblkid leaves such partitions
 * out): entry @partno, or with 0 every entry.  -EINVAL with a message (for
 * @writing or reading). */
int md_image_check_gpt_entries(md_image *img, uint32_t partno, bool writing);

#endif
