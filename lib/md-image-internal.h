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

#endif
