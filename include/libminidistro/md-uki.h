/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unified kernel images (UKI): one EFI program that carries the kernel, its
 * initramfs, its command line and an os-release, started by UEFI firmware
 * directly (\EFI\BOOT\BOOTX64.EFI) or by systemd-boot.  Built like systemd's
 * ukify, in-process: the PE/COFF image of systemd's EFI stub
 * (linuxx64.efi.stub, package systemd-boot-efi) gets new sections
 *
 *     .osrel    os-release text                 (if given)
 *     .cmdline  kernel command line             (if given)
 *     .initrd   the initramfs files concatenated (if given)
 *     .linux    the kernel (a bzImage with the EFI stub), always last
 *
 * and the stub, when started, hands them to the kernel.  The bytes depend
 * only on the inputs: no timestamps are added (the stub's own TimeDateStamp
 * is kept), so the same inputs give the same file.
 *
 * Layout, as ukify does it: each new section's virtual address is the end
 * of the previous section rounded up to the stub's SectionAlignment, its
 * file data starts at the end of the file rounded up to FileAlignment and is
 * zero-padded to a multiple of it; .linux is last (the kernel may use the
 * memory after it while decompressing in place) and flagged as code, the
 * others as initialised data, all readable.  The file header's
 * NumberOfSections and the optional header's SizeOfImage,
 * SizeOfInitializedData (data sections) and SizeOfCode (.linux) are updated;
 * a symbol table at the end of the stub is dropped as ukify does.  The PE
 * checksum is computed (the Windows CheckSumMappedFile algorithm), as
 * objcopy does for the stub itself; firmware ignores it.
 */
#ifndef LIBMINIDISTRO_MD_UKI_H
#define LIBMINIDISTRO_MD_UKI_H

#include "md-common.h"

MD_BEGIN_DECLS

/** The stub used when md_uki_opts.stub is NULL (Debian: systemd-boot-efi). */
#define MD_UKI_DEFAULT_STUB "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

typedef struct md_uki_opts {
    uint32_t version;               /* MD_UKI_OPTS_VERSION */
    uint32_t flags;                 /* none defined yet: must be 0 */
    const char *stub;               /* EFI stub (PE32+); NULL: MD_UKI_DEFAULT_STUB */
    const char *kernel;             /* required: bzImage with the EFI stub (CONFIG_EFI_STUB) */
    const char *const *initrds;     /* NULL-terminated list of initramfs files, or NULL.
                                     * Several are concatenated, each padded with zeros
                                     * to a multiple of 4 bytes (the kernel unpacks
                                     * concatenated cpio archives in order) */
    const char *cmdline;            /* kernel command line for .cmdline, or NULL.  Stored as
                                     * given, without a NUL.  With Secure Boot the stub then
                                     * ignores command lines passed by the boot loader */
    const char *os_release;         /* os-release file for .osrel, or NULL */
    const char *os_release_text;    /* or its text (not both) */
} md_uki_opts;

#define MD_UKI_OPTS_VERSION 1
#define MD_UKI_OPTS_INIT { MD_UKI_OPTS_VERSION, 0, NULL, NULL, NULL, NULL, NULL, NULL }

/** Fill @opts with the defaults of MD_UKI_OPTS_INIT.  NULL-safe. */
MD_API void md_uki_opts_init(md_uki_opts *opts);

/**
 * Write a unified kernel image to @path.  Everything is checked before the
 * output is created: the stub is a PE32+ image for x86-64 that is not
 * signed, has no section of the names above yet and has room in its headers
 * for the new section headers (before the first section's data); the kernel
 * is a bzImage ("HdrS" at 0x202) whose EFI stub is present ("MZ" at 0 and a
 * "PE\0\0" header for the stub's machine); every file is a readable regular
 * file.  Empty text or files add no section (.linux excepted).
 * The image is written to a temporary file in the same directory, renamed
 * over @path (replacing a regular file) only when complete: on any failure
 * nothing is left at @path and an existing file is untouched.  The new file
 * gets mode 0666 & ~umask.  Files are streamed, not loaded whole; one that
 * changes size while being copied is an error.
 * Errors (message on @ctx naming the file and the reason): -EINVAL (bad
 * options; not a PE32+ x86-64 stub, a signed stub, a stub that is a UKI
 * already; not a bzImage, a kernel without the EFI stub; @path exists and
 * is not a regular file), -ENOENT (a missing file; a missing default stub
 * names the package systemd-boot-efi), -EACCES, -EISDIR (@path is a
 * directory), -ENOSPC (no room for the section headers in the stub), -EFBIG
 * (the image would exceed 4 GiB, PE's limit), -ESTALE (an input changed
 * size meanwhile), -EIO, -ENOMEM and other -errno from writing.
 * All pointers are borrowed.
 */
MD_API int md_uki_write(md_ctx *ctx, const char *path, const md_uki_opts *opts);

MD_END_DECLS

#endif
