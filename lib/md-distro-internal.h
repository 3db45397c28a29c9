/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal header of the distro module: md-distro.c (the builder) and
 * md-distro-rootfs.c (a foreign root filesystem).  Not installed. */
#ifndef MD_DISTRO_INTERNAL_H
#define MD_DISTRO_INTERNAL_H

#include "md-internal.h"

/* What boots a root filesystem: paths in its tree (normalised). */
struct md_rootfs_boot {
    char *kernel;        /* e.g. "boot/vmlinuz-6.1.0-50-cloud-amd64" */
    char *initrd;        /* e.g. "boot/initrd.img-6.1.0-50-cloud-amd64" */
    char release[128];   /* the kernel's release string */
};

/* The tree's kernel (/vmlinuz, /boot/vmlinuz, else the newest
 * /boot/vmlinuz-*) and its initrd (/initrd.img, /boot/initrd.img-VERSION).
 * Errors: -ENOENT naming what was looked for, -ENOEXEC (not a bzImage). */
int md_rootfs_find_boot(md_tree *t, struct md_rootfs_boot *rb);
void md_rootfs_boot_free(struct md_rootfs_boot *rb);

/* Add "UUID=@uuid / @fstype errors=remount-ro 0 1" to /etc/fstab unless a
 * line mounts something on / already. */
int md_rootfs_fstab_root(md_tree *t, const char *uuid, const char *fstype);

/* Root's password in /etc/shadow (yescrypt, else SHA-512; the salt derived
 * from the epoch when one is set). */
int md_rootfs_set_password(md_tree *t, const char *password);

/* /etc/hostname */
int md_rootfs_set_hostname(md_tree *t, const char *hostname);

/* ---- md-distro-efi.c: UEFI boot ------------------------------------------ */

/* The files of UEFI boot, each an unnamed temporary file next to the
 * output image, never published. */
struct md_esp {
    md_tmpfile uki;       /* the unified kernel image */
    md_tmpfile kernel;    /* a kernel, initrd and os-release copied out of a tree */
    md_tmpfile initrd;
    md_tmpfile osrel;
    uint64_t size;        /* the ESP's size (md_esp_add()) */
};
void md_esp_init(struct md_esp *e);
void md_esp_free(struct md_esp *e);

/* What the UKI is made of: host paths (or md_tmpfile tmp_paths). */
struct md_esp_uki {
    const char *output;           /* the image being built: scratch files go next to it */
    const char *stub;             /* NULL: MD_UKI_DEFAULT_STUB */
    const char *kernel;
    const char *initrd;           /* or NULL */
    const char *cmdline;
    const char *os_release;       /* a file, or NULL: */
    const char *os_release_text;  /* this text (or NULL: none) */
};
int md_esp_make_uki(md_ctx *ctx, struct md_esp *e, const struct md_esp_uki *u);

/* Copy regular file @path of @tree into @t, a scratch file named after
 * @output and @what. */
int md_esp_copy_out(md_tree *tree, const char *path, const char *output, const char *what,
                    md_tmpfile *t);

/* Put a FAT on partition @partno of @disk holding the UKI as
 * \EFI\BOOT\BOOTX64.EFI, and set e->size: @given (a multiple of 1 MiB;
 * -ENOSPC saying what is needed when the UKI does not fit), or with @given
 * 0 what the UKI needs with 1 MiB to spare.  The caller adds the partition
 * (e->size bytes, type "efi"). */
int md_esp_add(md_disk *disk, struct md_esp *e, uint32_t partno, uint64_t given);

#endif
