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

#endif
