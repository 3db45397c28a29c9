/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The distro: a complete BusyBox system (init, /etc, a shell on the serial
 * console, clean poweroff), the kernel modules a distribution kernel needs
 * to reach its root disk, and the one-call builder that turns a kernel and
 * a BusyBox binary into a bootable disk image (initramfs + ext4 root +
 * EXTLINUX) without root privileges.
 */
#ifndef LIBMINIDISTRO_MD_DISTRO_H
#define LIBMINIDISTRO_MD_DISTRO_H

#include "md-common.h"
#include "md-image.h"
#include "md-tree.h"

MD_BEGIN_DECLS

/* ------------------------------------------------------------------ */
/* Kernels                                                            */

/**
 * Read the release string ("6.1.0-56-cloud-amd64", what `uname -r` prints)
 * from the header of the x86 bzImage @kernel into @buf (@size bytes,
 * NUL-terminated, truncated if too small).  Also the check that @kernel is
 * a bootable bzImage at all.
 * Returns the length of the release string.
 * Errors: -ENOENT/-EACCES (cannot open, message names the file), -ENOEXEC
 * (not an x86 bzImage, or a boot protocol older than 2.00), -EINVAL.
 */
MD_API int md_kernel_release(md_ctx *ctx, const char *kernel, char *buf, size_t size);

/* ------------------------------------------------------------------ */
/* Kernel modules                                                     */

/* md_kmods_opts.flags */
#define MD_KMODS_OPTIONAL 0x1u  /* skip names that are neither built in nor modules */

typedef struct md_kmods_opts {
    uint32_t version;           /* MD_KMODS_OPTS_VERSION */
    uint32_t flags;             /* MD_KMODS_* */
    const char *kernel_config;  /* the kernel's .config: tells built-in drivers
                                 * (CONFIG_X=y) when there is no modules.builtin;
                                 * NULL: none */
    const char *release;        /* kernel release; NULL: the last path component
                                 * of @modules_dir */
} md_kmods_opts;

#define MD_KMODS_OPTS_VERSION 1
#define MD_KMODS_OPTS_INIT { MD_KMODS_OPTS_VERSION, 0, NULL, NULL }
/** Fill @opts with MD_KMODS_OPTS_INIT (no flags, no config, release from the directory).  NULL-safe. */
MD_API void md_kmods_opts_init(md_kmods_opts *opts);

/** Path, inside the tree, of the load-order list written by md_tree_add_kmods(). */
#define MD_KMODS_LOAD_LIST "etc/minidistro/modules"

/**
 * Add the kernel modules @names (a NULL-terminated array; "virtio-blk" and
 * "virtio_blk" are the same module; aliases from modules.alias are
 * resolved) and everything they depend on (modules.dep) from @modules_dir
 * (a /lib/modules/RELEASE directory; may be NULL when @opts gives a kernel
 * config and every name is built in) to @tree under
 * lib/modules/RELEASE/, uncompressed (.ko.xz, .ko.zst and .ko.gz are
 * decompressed, so BusyBox insmod can load them).  The load order
 * (dependencies first) is appended to the text file MD_KMODS_LOAD_LIST in
 * the tree, one absolute path per line, which the distro's /init reads.
 * A name built into the kernel (modules.builtin, or =y in the kernel
 * config) adds nothing.  All strings are borrowed.
 * Returns the number of module files added.
 * Errors: -ENOENT naming the driver when it is neither built in nor
 * available as a module (unless MD_KMODS_OPTIONAL), or a missing file;
 * -EINVAL (bad modules.dep line, bad arguments), -ENOMEM.
 */
MD_API int md_tree_add_kmods(md_tree *tree, const char *modules_dir, const char *const *names,
                             const md_kmods_opts *opts);

/* ------------------------------------------------------------------ */
/* The system                                                         */

/**
 * Add the minidistro system files to @tree, normally on top of
 * md_tree_add_busybox() with MD_BUSYBOX_NO_INIT:
 *  - /init: mounts proc, sysfs, devtmpfs; prints "minidistro: Linux
 *    RELEASE"; loads the modules listed in MD_KMODS_LOAD_LIST; then, when
 *    the kernel command line has root=LABEL=x, root=UUID=x or
 *    root=/dev/x, waits for that device, mounts it (rw) and switch_roots to
 *    its /sbin/init; without root= it stays in the initramfs and runs
 *    /sbin/init there.
 *  - /etc: hostname (@hostname, NULL = "minidistro"), inittab for BusyBox
 *    init (a login shell on the console, clean unmount on poweroff),
 *    init.d/rcS, fstab, passwd, group, profile (PS1 = "user@host:dir# "),
 *    and the /sbin/init link.
 * Errors: -EINVAL (bad hostname), -ENOMEM.
 */
MD_API int md_tree_add_distro_files(md_tree *tree, const char *hostname);

/* ------------------------------------------------------------------ */
/* The one-call builder                                               */

/* md_distro_opts.root */
#define MD_DISTRO_ROOT_INITRAMFS 0  /* the system runs from the initramfs (RAM) */
#define MD_DISTRO_ROOT_DISK 1       /* /init switch_roots to the ext4 partition: persistent */

/* md_distro_opts.flags */
#define MD_DISTRO_FORCE 0x1u        /* replace an existing output file */
#define MD_DISTRO_NO_MODULES 0x2u   /* do not look for disk driver modules */
#define MD_DISTRO_NO_SYNC 0x4u      /* the image is not flushed to stable storage at the
                                     * end (MD_DISK_NO_SYNC) */

typedef struct md_distro_opts {
    uint32_t version;                /* MD_DISTRO_OPTS_VERSION */
    uint32_t flags;                  /* MD_DISTRO_* */
    const char *output;              /* the disk image to create (required) */
    const char *kernel;              /* x86 bzImage (required, except with rootfs: then
                                      * NULL means the rootfs's own /vmlinuz) */
    const char *kernel_config;       /* NULL: "config" next to the kernel, or
                                      * /boot/config-RELEASE for /boot/vmlinuz-RELEASE */
    const char *modules_dir;         /* NULL: /lib/modules/RELEASE when it exists */
    const char *busybox;             /* static BusyBox; NULL: /bin/busybox */
    const char *hostname;            /* NULL: "minidistro" */
    const char *append;              /* extra kernel command line words, or NULL */
    const char *initramfs_output;    /* also write the initramfs here (for direct
                                      * -kernel boots); NULL: don't */
    const char *const *overlays;     /* NULL-terminated host directories copied on
                                      * top of the system, in order; or NULL */
    const char *const *modules;      /* NULL-terminated extra module names, or NULL */
    uint64_t size;                   /* image size in bytes; 0: 64 MiB, or with rootfs:
                                      * computed from its contents (see md-disk.h) */
    uint32_t root;                   /* MD_DISTRO_ROOT_* */
    uint32_t table;                  /* MD_TABLE_MBR or MD_TABLE_GPT (md-image.h) */
    int32_t compression;             /* initramfs codec: MD_COMPRESS_* (md-cpio.h) or
                                      * MD_DISTRO_COMPRESS_AUTO */
    uint32_t reserved;               /* 0 */
    md_progress_fn progress;         /* called after each phase (done/total = phases; the
                                      * last call, once everything is published, cannot
                                      * cancel), or NULL */
    void *userdata;
    /* version 2 */
    const char *rootfs;              /* a distribution's root filesystem, a directory or an
                                      * archive (tar, cpio, any compression), instead of
                                      * the BusyBox system; NULL: BusyBox */
    const char *initrd;              /* with rootfs: the initrd to boot (host file); NULL:
                                      * the rootfs's own */
    const char *root_password;       /* with rootfs: set root's password (hashed); NULL:
                                      * leave /etc/shadow as it is */
    uint64_t free_bytes;             /* a computed size's free space (md_disk_set_headroom):
                                      * bytes, or */
    uint32_t free_percent;           /* with free_bytes 0: this percentage of the contents;
                                      * MD_DISTRO_FREE_DEFAULT: md-disk.h's default */
    uint32_t reserved2;              /* 0 */
    /* version 3 */
    uint32_t boot;                   /* MD_DISTRO_BOOT_*: what the image boots under */
    uint32_t reserved3;              /* 0 */
    const char *efi_stub;            /* UEFI: the EFI stub the unified kernel image is made
                                      * from; NULL: MD_UKI_DEFAULT_STUB (md-uki.h) */
    uint64_t esp_size;               /* UEFI: the EFI System partition's size in bytes (a
                                      * multiple of 1 MiB); 0: the UKI's size and room */
} md_distro_opts;

#define MD_DISTRO_FREE_DEFAULT 0xffffffffu

/* md_distro_opts.boot */
#define MD_DISTRO_BOOT_BIOS 0u      /* EXTLINUX on the root partition (SeaBIOS, any PC BIOS) */
#define MD_DISTRO_BOOT_UEFI 1u      /* an EFI System partition with \EFI\BOOT\BOOTX64.EFI */
#define MD_DISTRO_BOOT_HYBRID 2u    /* both, in one image: the same kernel, root, command line */

/* md_distro_opts.compression: zstd when the kernel config says CONFIG_RD_ZSTD=y
 * (fast to build and to unpack under emulation), else gzip (every kernel). */
#define MD_DISTRO_COMPRESS_AUTO (-1)

#define MD_DISTRO_OPTS_VERSION 3
#define MD_DISTRO_OPTS_INIT                                                              \
    { MD_DISTRO_OPTS_VERSION, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
      NULL, 0, MD_DISTRO_ROOT_INITRAMFS, MD_TABLE_MBR, MD_DISTRO_COMPRESS_AUTO, 0, \
      NULL, NULL, NULL, NULL, NULL, 0, MD_DISTRO_FREE_DEFAULT, 0, \
      MD_DISTRO_BOOT_BIOS, 0, NULL, 0 }
/** Fill @opts with MD_DISTRO_OPTS_INIT (initramfs root, MBR, 64 MiB, auto codec, BIOS boot).  NULL-safe. */
MD_API void md_distro_opts_init(md_distro_opts *opts);

/** The ext4 label of the root partition, used in root=LABEL=... */
#define MD_DISTRO_ROOT_LABEL "minidistro"

/**
 * Build a bootable disk image at @opts->output: the BusyBox system
 * (md_tree_add_busybox + md_tree_add_distro_files + overlays + disk driver
 * modules when the kernel needs them) packed as an initramfs (zstd or gzip,
 * see MD_DISTRO_COMPRESS_AUTO); an MBR or
 * GPT table with one bootable Linux partition; an ext4 filesystem labelled
 * MD_DISTRO_ROOT_LABEL holding the same system plus /boot/vmlinuz and
 * /boot/initramfs; EXTLINUX booting it with "console=ttyS0 panic=-1 quiet"
 * (+ "root=LABEL=minidistro" for MD_DISTRO_ROOT_DISK).
 * The drivers needed for a disk root (virtio_pci, virtio_blk, ext4) must be
 * built in or available as modules, else the build fails naming the missing
 * one.
 *
 * With @opts->rootfs the system is that root filesystem instead (a
 * directory or an archive: owners, modes, xattrs, ACLs and mtimes as it has
 * them), booted by its own kernel and initrd (/vmlinuz, /initrd.img, else
 * the newest /boot/vmlinuz-* and its /boot/initrd.img-*; or @opts->kernel
 * and @opts->initrd) from an ext4 root filesystem with a 4 KiB block size:
 * EXTLINUX passes "root=UUID=<the filesystem's UUID> ro console=ttyS0" (+
 * @opts->append), /etc/fstab gets a root line when it has none for "/",
 * @opts->root_password and @opts->hostname are written to /etc/shadow and
 * /etc/hostname.  The size is computed from the contents unless given.
 * (root, busybox, modules, compression and initramfs_output are for the
 * BusyBox system and must be left at their defaults.)
 *
 * @opts->boot says what boots the image:
 *  - MD_DISTRO_BOOT_BIOS: as above, the root filesystem on partition 1.
 *  - MD_DISTRO_BOOT_UEFI: partition 1 is an EFI System partition (FAT,
 *    labelled "ESP"; on MBR type 0xef) whose only file is
 *    \EFI\BOOT\BOOTX64.EFI, the removable-media path every UEFI firmware
 *    boots without a boot entry: a unified kernel image (md_uki_write())
 *    of the kernel, the initramfs (or the rootfs's initrd) and the command
 *    line the EXTLINUX entry would have.  A UKI rather than a boot loader
 *    plus a loader entry because it is one file the firmware runs
 *    directly: nothing to configure, and nothing that could disagree with
 *    the root filesystem's own copy.  The root filesystem is partition 2,
 *    the same as with BIOS (its /boot keeps the kernel and initramfs).
 *  - MD_DISTRO_BOOT_HYBRID: both: the ESP as with UEFI and EXTLINUX on the
 *    root filesystem, marked bootable (on GPT the legacy-BIOS-bootable
 *    attribute, with syslinux's gptmbr.bin in the protective MBR).
 * UEFI boots from an MBR too; a GPT (@opts->table) is what UEFI machines
 * expect.  The kernel needs its EFI stub (CONFIG_EFI_STUB, which Debian's
 * kernels and scripts/build-kernel's have).
 *
 * Nothing is left at @opts->output on failure.
 * All strings are borrowed.
 * Errors: -EINVAL (bad options), -ENOENT (missing kernel, initrd, BusyBox,
 * overlay, driver or EFI stub: named, with what was looked for in a rootfs
 * and the package that has the stub), -ENOEXEC (kernel is not a bzImage),
 * -EINVAL also for a UEFI kernel without the EFI stub, -ENOSPC (image too
 * small: says how much is needed), -EEXIST (output exists, no
 * MD_DISTRO_FORCE), -ECANCELED, and the errors of the modules used.
 */
MD_API int md_distro_build(md_ctx *ctx, const md_distro_opts *opts);

MD_END_DECLS

#endif
