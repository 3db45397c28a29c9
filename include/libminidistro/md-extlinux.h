/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * EXTLINUX (syslinux for ext2/3/4) installed into an image file without root
 * and without mounting: boot sector (VBR), ldlinux.sys, ldlinux.c32, optional
 * com32 modules, extlinux.conf, and the MBR boot code + active flag (MBR) or
 * gptmbr + legacy-BIOS-bootable attribute (GPT) for partitioned images.
 *
 * The boot sector and ldlinux.sys are not shipped as files by Debian: they
 * are read out of the /usr/bin/extlinux binary (see docs/extlinux.md).
 */
#ifndef LIBMINIDISTRO_MD_EXTLINUX_H
#define LIBMINIDISTRO_MD_EXTLINUX_H

#include "md-common.h"
#include "md-image.h"

MD_BEGIN_DECLS

/* md_extlinux_opts.flags */
#define MD_EXTLINUX_NO_MBR 0x1u  /* do not write MBR/GPT boot code nor set the boot flag */
#define MD_EXTLINUX_RAID   0x2u  /* on boot failure try the next BIOS disk (INT 18h) */
#define MD_EXTLINUX_STUPID 0x4u  /* read one sector at a time (broken BIOSes) */

typedef struct md_extlinux_opts {
    uint32_t version;            /* MD_EXTLINUX_OPTS_VERSION */
    uint32_t flags;              /* MD_EXTLINUX_* */
    const char *dir;             /* install dir in the filesystem, NULL: "/boot/syslinux" */
    const char *syslinux_dir;    /* mbr/ and modules/bios/, NULL: "/usr/lib/syslinux" */
    const char *extlinux_bin;    /* binary holding the boot sector and ldlinux.sys blobs,
                                    NULL: "/usr/bin/extlinux"; or a directory holding
                                    ldlinux.bss, ldlinux.sys and ldlinux.c32 (a syslinux
                                    build's core/ output) */
    const char *const *modules;  /* NULL-terminated list of extra .c32 names or NULL */
    const char *config_text;     /* contents of extlinux.conf, NULL: keep an existing one */
} md_extlinux_opts;

#define MD_EXTLINUX_OPTS_VERSION 1
#define MD_EXTLINUX_OPTS_INIT { MD_EXTLINUX_OPTS_VERSION, 0, NULL, NULL, NULL, NULL, NULL }

/** Fill @opts with the defaults (same as MD_EXTLINUX_OPTS_INIT); a NULL @opts is ignored. */
MD_API void md_extlinux_opts_init(md_extlinux_opts *opts);

/**
 * Install EXTLINUX into the ext2/3/4 filesystem on partition @partno of @img
 * (0: the whole image is the filesystem, no MBR is needed).  Running it again
 * updates the installation in place (like `extlinux --update`); the ADV of an
 * existing ldlinux.sys is kept.
 *
 * Everything is checked before the first write, so on error the image is left
 * as it was: the filesystem type and features (inline_data, bigalloc, 64 KiB
 * blocks are refused), room for ldlinux.sys in one contiguous run, the
 * syslinux files (named with the Debian package providing them), the build
 * match of the boot sector and ldlinux.sys, and every kernel and initrd that
 * @opts->config_text names (KERNEL, LINUX, INITRD, APPEND initrd=).
 *
 * All pointers are borrowed.  Errors: -EINVAL (bad option, not an ext
 * filesystem, a partition MBR boot code cannot boot), -ENOENT (partition,
 * syslinux file, or a file named in the config missing), -ENOTSUP (feature),
 * -ENOSPC, -EIO, -errno.
 */
MD_API int md_extlinux_install(md_image *img, uint32_t partno, const md_extlinux_opts *opts);

/* ---- extlinux.conf from a structured description ----------------------- */

typedef struct md_extlinux_config md_extlinux_config;

/** New empty config (PROMPT 0, TIMEOUT 0, no serial).  Errors: -EINVAL, -ENOMEM. */
MD_API int md_extlinux_config_new(md_ctx *ctx, md_extlinux_config **ret);

/** Free; NULL-safe. */
MD_API void md_extlinux_config_free(md_extlinux_config *cfg);

/** DEFAULT label (copied); NULL: the first entry.  Errors: -EINVAL (whitespace), -ENOMEM. */
MD_API int md_extlinux_config_set_default(md_extlinux_config *cfg, const char *label);

/** TIMEOUT in tenths of a second (0: boot the default at once).  Errors: -EINVAL (more
 * than 35999, syslinux's limit of one hour). */
MD_API int md_extlinux_config_set_timeout(md_extlinux_config *cfg, uint32_t deciseconds);

/**
 * PROMPT: @prompt 0 = show the boot: prompt only when Shift/Alt is held; any
 * other value = always (rendered as PROMPT 1).  Every value is accepted.
 * Errors: -EINVAL only when @cfg is NULL (then no message is stored: there is
 * no context to store it on).
 */
MD_API int md_extlinux_config_set_prompt(md_extlinux_config *cfg, int32_t prompt);

/**
 * SERIAL line: serial console on @port (0 = COM1/ttyS0) at @baud; @baud 0
 * removes the line.  Errors: -EINVAL (port > 3, or @baud outside 75..115200 or not a
 * divisor of 115200).
 */
MD_API int md_extlinux_config_set_serial(md_extlinux_config *cfg, uint32_t port, uint32_t baud);

/**
 * Add a LABEL entry.  @kernel is an absolute path in the filesystem (or a
 * path relative to the install dir); @initrd a comma separated list of paths
 * or NULL; @append the kernel command line or NULL.  Strings are copied.
 * Errors: -EINVAL (missing label/kernel, whitespace in label or paths,
 * newline anywhere, duplicate label), -ENOMEM.
 */
MD_API int md_extlinux_config_add_entry(md_extlinux_config *cfg, const char *label,
                                        const char *kernel, const char *initrd,
                                        const char *append);

/**
 * Render the config as extlinux.conf text into *@text (owned by @cfg, valid
 * until the next change or free).  Errors: -EINVAL (no entry, or the DEFAULT label
 * names none), -ENOMEM.
 */
MD_API int md_extlinux_config_render(md_extlinux_config *cfg, const char **text);

MD_END_DECLS

#endif
