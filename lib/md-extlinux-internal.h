/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internal API of the extlinux module, shared by its sources and with
 * tests/test-extlinux.c so that the unit test exercises the blob parser, the
 * patcher, the ADV and the config scanner directly.  Not installed.
 *   md-extlinux.c         md_extlinux_install(): the filesystem and the image
 *   md-extlinux-blobs.c   md_extlinux_blobs_*, md_extlinux_patch, md_extlinux_adv_*
 *   md-extlinux-config.c  md_extlinux_config_* (public) and md_extlinux_config_refs
 *
 * The layouts come from syslinux's libinstaller/syslxint.h.
 */
#ifndef MD_EXTLINUX_INTERNAL_H
#define MD_EXTLINUX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "md-internal.h"

/* Where the boot sector and ldlinux.sys come from by default (Debian's
 * extlinux package); a missing default gets a message naming the package. */
#define DEFAULT_EXTLINUX_BIN "/usr/bin/extlinux"

#define SECTOR 512u
#define LDLINUX_MAGIC 0x3eb202feu
#define ADV_MAGIC1 0x5a2d2fa5u
#define ADV_MAGIC2 0xa3041767u
#define ADV_MAGIC3 0xdd28bf64u
#define ADV_SIZE 512u

/* Offsets in struct patch_area (syslxint.h) */
#define PA_MAGIC 0
#define PA_INSTANCE 4
#define PA_DATA_SECTORS 8
#define PA_ADV_SECTORS 10
#define PA_DWORDS 12
#define PA_CHECKSUM 16
#define PA_MAXTRANSFER 20
#define PA_EPAOFFSET 22
/* ... and in struct ext_patch_area */
#define EPA_ADVPTROFFSET 0
#define EPA_DIROFFSET 2
#define EPA_DIRLEN 4
#define EPA_SUBVOLOFFSET 6
#define EPA_SUBVOLLEN 8
#define EPA_SECPTROFFSET 10
#define EPA_SECPTRCNT 12
#define EPA_SECT1PTR0 14
#define EPA_SECT1PTR1 16
#define EPA_RAIDPATCH 18
#define EPA_SIZE 20
/* struct syslinux_extent { u64 lba; u16 len; } packed */
#define EXTENT_SIZE 10

/* The boot sector, ldlinux.sys and ldlinux.c32 of one syslinux build. */
struct md_sl_blobs {
    uint8_t vbr[SECTOR];
    uint8_t *ldlinux;     /* core image, ldlen bytes (a multiple of 4) */
    size_t ldlen;
    uint8_t *c32;         /* ldlinux.c32 of the same build */
    size_t c32len;
    uint32_t instance;    /* LDLINUX_MAGIC ^ HEXDATE */
    size_t pa;            /* patch area offset in ldlinux */
    uint16_t epa[EPA_SIZE / 2]; /* the ext_patch_area fields */
    char *source;         /* where they came from, for messages */
};

/* Find the blobs in @buf (an extlinux binary, named @name in messages). */
int md_extlinux_blobs_parse(md_ctx *ctx, const uint8_t *buf, size_t n, const char *name,
                            struct md_sl_blobs *b);
/* From an extlinux binary or a directory of syslinux files at @path. */
int md_extlinux_blobs_load(md_ctx *ctx, const char *path, const char *syslinux_dir,
                           struct md_sl_blobs *b);
/* Frees the buffers of @b (not @b itself); accepts NULL. */
void md_extlinux_blobs_free(struct md_sl_blobs *b);

/* Fill @vbr (SECTOR bytes) and @ldl (b->ldlen bytes), copies of the blobs,
 * for a file whose sectors are @sect[0 .. @nsect). */
int md_extlinux_patch(md_ctx *ctx, const struct md_sl_blobs *b, const uint64_t *sect,
                      size_t nsect, const char *dir, uint32_t flags, uint64_t hidden,
                      uint64_t total_sectors, uint8_t *vbr, uint8_t *ldl);

/* @adv holds the two copies: 2 * ADV_SIZE bytes. */
void md_extlinux_adv_init(uint8_t *adv);
/* The index (0/1) of a valid copy, -1 if none. */
int md_extlinux_adv_valid(const uint8_t *adv);

/* A file a config refers to. */
struct md_sl_ref {
    char *path;           /* as written in the config */
    unsigned line;
    const char *what;     /* "kernel", "initrd" */
};
int md_extlinux_config_refs(md_ctx *ctx, const char *text, struct md_sl_ref **refs, size_t *n);
void md_extlinux_refs_free(struct md_sl_ref *refs, size_t n);

#endif
