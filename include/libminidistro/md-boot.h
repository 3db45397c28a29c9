/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The boot runner: start QEMU on an image (or a kernel + initramfs), talk to
 * the guest's serial console, wait for strings, type commands, wait for the
 * guest to power off.  Meant for scripted boot tests from any language:
 *
 *     md_boot_opts o = MD_BOOT_OPTS_INIT;
 *     o.disk = "distro.img";
 *     r = md_boot_start(ctx, &o, &b);
 *     r = md_boot_expect(b, "# ", 60000);        (the shell prompt)
 *     r = md_boot_send(b, "poweroff -f\n");
 *     r = md_boot_wait(b, 30000, &status);       (status 0: clean power-off)
 *     md_boot_free(b);
 *
 * QEMU runs as `QEMU -nodefaults -display none -serial stdio -no-reboot
 * -m MIB -accel A ...` in its own process group; its stdin/stdout are the
 * guest's first serial port (so the kernel needs console=ttyS0), its stderr
 * is captured for error messages.  With -no-reboot a guest reboot, a
 * power-off and (with the kernel's panic=-1) a panic all end QEMU.
 *
 * Firmware (md_boot_opts.firmware): SeaBIOS, QEMU's default, on the `pc`
 * machine; or UEFI: OVMF on `-machine q35`, as two pflash drives, the
 * read-only code and a private copy of the variable store (the firmware
 * writes to it) made in a temporary directory that md_boot_free() removes.
 * virtio disks work the same on both machines; on q35 `if=ide` is AHCI.
 *
 * One md_boot is used by one thread at a time.  QEMU is killed (SIGKILL)
 * when the thread that called md_boot_start() exits (PR_SET_PDEATHSIG), so
 * an interrupted test never leaves a guest running.
 */
#ifndef LIBMINIDISTRO_MD_BOOT_H
#define LIBMINIDISTRO_MD_BOOT_H

#include "md-common.h"

MD_BEGIN_DECLS

/** One QEMU run. */
typedef struct md_boot md_boot;

/* md_boot_opts.disk_if */
#define MD_BOOT_IF_VIRTIO 0u    /* -drive if=virtio (default: fastest for boot loaders) */
#define MD_BOOT_IF_IDE 1u       /* -drive if=ide */

/* md_boot_opts.accel */
#define MD_BOOT_ACCEL_AUTO 0u   /* KVM if not itself in a VM (nested KVM is unreliable) and a
                                 * probe guest really runs on /dev/kvm, else TCG; the
                                 * environment variable MD_BOOT_ACCEL=tcg|kvm overrides */
#define MD_BOOT_ACCEL_TCG 1u
#define MD_BOOT_ACCEL_KVM 2u

/* md_boot_opts.firmware (version 2) */
#define MD_BOOT_FIRMWARE_BIOS 0u  /* SeaBIOS on the pc machine (default) */
#define MD_BOOT_FIRMWARE_UEFI 1u  /* OVMF on the q35 machine */
#define MD_BOOT_FIRMWARE_AUTO 2u  /* UEFI if the disk image has a partition table with an
                                   * EFI System partition and nothing a BIOS boots: no
                                   * partition marked bootable (MBR active flag, GPT legacy
                                   * BIOS bootable attribute) and no BIOS boot partition;
                                   * else BIOS.  A boot without a disk, or with a kernel
                                   * (-kernel does not use the disk's loader), is BIOS */

/* Debian's OVMF (package ovmf): the 4 MiB pair QEMU's firmware descriptors name */
#define MD_BOOT_OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define MD_BOOT_OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"

/* md_boot_opts.flags */
#define MD_BOOT_SNAPSHOT 0x1u        /* -snapshot: guest writes to the disk are discarded */
#define MD_BOOT_ECHO 0x2u            /* copy serial output to echo_fd as it arrives */
#define MD_BOOT_NO_PANIC_CHECK 0x4u  /* do not fail md_boot_expect() on "Kernel panic" */
#define MD_BOOT_READONLY 0x8u        /* attach the disk read-only */

typedef struct md_boot_opts {
    uint32_t version;        /* MD_BOOT_OPTS_VERSION */
    uint32_t flags;          /* MD_BOOT_* flags */
    const char *qemu;        /* QEMU binary: a path, or a name searched in PATH;
                              * NULL: "qemu-system-x86_64" */
    const char *disk;        /* raw disk image, or NULL */
    uint32_t disk_if;        /* MD_BOOT_IF_* */
    uint32_t memory_mib;     /* guest RAM, 0: 256 */
    const char *kernel;      /* bzImage for a direct boot (-kernel), or NULL */
    const char *initrd;      /* initramfs (needs kernel), or NULL */
    const char *append;      /* kernel command line (needs kernel); NULL:
                              * "console=ttyS0 panic=-1" */
    uint32_t accel;          /* MD_BOOT_ACCEL_* */
    int32_t echo_fd;         /* with MD_BOOT_ECHO: where serial output is copied */
    const char *const *extra_args; /* NULL-terminated extra QEMU arguments, or NULL */
    /* version 2: */
    uint32_t firmware;       /* MD_BOOT_FIRMWARE_* */
    uint32_t reserved;       /* 0 (keeps the layout free of padding) */
    const char *ovmf_code;   /* UEFI firmware code (used read-only); NULL: MD_BOOT_OVMF_CODE */
    const char *ovmf_vars;   /* UEFI variable store template, copied for each boot (the
                              * file itself is never written); NULL: MD_BOOT_OVMF_VARS */
} md_boot_opts;

/* Version 1 structs (without firmware, reserved, ovmf_code, ovmf_vars) are still
 * accepted: they boot with the BIOS. */
#define MD_BOOT_OPTS_VERSION 2
#define MD_BOOT_OPTS_INIT \
    { MD_BOOT_OPTS_VERSION, 0, NULL, NULL, MD_BOOT_IF_VIRTIO, 256, NULL, NULL, NULL, \
      MD_BOOT_ACCEL_AUTO, -1, NULL, MD_BOOT_FIRMWARE_BIOS, 0, NULL, NULL }

/**
 * Fill @opts with the defaults of MD_BOOT_OPTS_INIT.  NULL-safe.  It writes a
 * whole struct of the current version: code built against version 1 that
 * calls it (rather than MD_BOOT_OPTS_INIT) must be rebuilt, and FFI bindings
 * must declare the current layout.
 */
MD_API void md_boot_opts_init(md_boot_opts *opts);

/**
 * Validate @opts and start QEMU.  Checked before anything runs: the QEMU
 * binary exists (else -ENOENT "qemu-system-x86_64 not found in PATH (install
 * qemu-system-x86)"), the disk, kernel and initrd are readable regular files,
 * the kernel is an x86 bzImage ("HdrS" at offset 0x202), at least one of disk
 * and kernel is given, and initrd/append are only given with a kernel; for
 * UEFI the OVMF code and variable files are readable regular files (else
 * -ENOENT "... (install ovmf)" for the default paths), and ovmf_code/
 * ovmf_vars are only given with firmware UEFI or AUTO.
 * Strings in @opts are copied; echo_fd stays the caller's.
 * On success *@ret is a new handle (free with md_boot_free()).
 * Errors: -EINVAL (options, not a bzImage), -ENOENT, -EACCES, -ENODEV (KVM
 * requested but unusable), -ENOMEM, -errno from fork/pipe and from copying
 * the variable store.
 */
MD_API int md_boot_start(md_ctx *ctx, const md_boot_opts *opts, md_boot **ret);

/**
 * Read serial output until @str appears in the output that follows the
 * previous match (the first call searches from the start), then return 0;
 * the next expect searches after this match.  @timeout_ms 0 waits forever.
 * Errors (message on the context names the string and the reason):
 * -ETIMEDOUT (not seen in time; QEMU keeps running), -EPIPE (QEMU exited
 * without printing it), -ECONNABORTED ("Kernel panic" seen first, unless
 * MD_BOOT_NO_PANIC_CHECK), -EINVAL (empty @str).
 * md_boot_tail() gives the last lines for a report.
 */
MD_API int md_boot_expect(md_boot *b, const char *str, uint32_t timeout_ms);

/**
 * Type @str into the serial console, byte for byte (add "\n" to run a
 * command).  Output arriving meanwhile is collected.  Send after the shell
 * prompt was seen (md_boot_expect(b, "# ", ...)): what is typed earlier may
 * be eaten while the console is set up.
 * Errors: -EPIPE (QEMU has exited), -ETIMEDOUT (QEMU read nothing for
 * 60 s), -errno.
 */
MD_API int md_boot_send(md_boot *b, const char *str);

/**
 * Wait for QEMU to exit, collecting (and echoing) output meanwhile.
 * *@exit_status (optional) receives QEMU's exit code, or 128 + signal number
 * if it was killed (by anyone, or by this library: timeout, md_boot_kill(),
 * Ctrl-A x; QEMU's own exit code 0 after our SIGTERM is reported as 143).
 * A guest power-off with -no-reboot gives 0.
 * @timeout_ms 0 waits forever; on timeout QEMU is killed and -ETIMEDOUT
 * returned.  Calling it again after QEMU ended returns the same status.
 */
MD_API int md_boot_wait(md_boot *b, uint32_t timeout_ms, int *exit_status);

/**
 * Kill QEMU (and anything it started: its whole process group) now: SIGTERM,
 * then SIGKILL after 2 s; reaps it.  Returns 0, also when it had already
 * exited; afterwards md_boot_wait() reports the exit status (143 or 137)
 * and md_boot_send() fails with -EPIPE.  Errors: -EINVAL (@b NULL).
 */
MD_API int md_boot_kill(md_boot *b);

/**
 * Run the console interactively until QEMU exits: bytes from @in_fd go to
 * the guest, serial output to @out_fd.  If @in_fd is a terminal it is put in
 * raw mode (restored on return); Ctrl-A x kills QEMU, Ctrl-A Ctrl-A sends a
 * Ctrl-A.  EOF on @in_fd (or @in_fd < 0) stops relaying input but keeps
 * waiting for QEMU.  Serial output also goes to md_boot_tail()'s history.
 * @timeout_ms 0 waits forever; on timeout QEMU is killed and -ETIMEDOUT
 * returned.  *@exit_status as for md_boot_wait() (after Ctrl-A x: 143).
 * Returns 0 when QEMU exited by itself, 1 when the user quit with Ctrl-A x.
 * Errors: -ETIMEDOUT, -errno.
 */
MD_API int md_boot_interactive(md_boot *b, int in_fd, int out_fd, uint32_t timeout_ms,
                               int *exit_status);

/**
 * The last @lines lines of serial output (and, if QEMU wrote any, its
 * stderr after a "--- qemu stderr ---" line), for error reports.  Borrowed:
 * valid until the next call on @b.  Never NULL ("" on error).
 */
MD_API const char *md_boot_tail(md_boot *b, uint32_t lines);

/** QEMU's process id, or -1 once it has been reaped. */
MD_API int md_boot_pid(const md_boot *b);

/** The accelerator chosen: MD_BOOT_ACCEL_TCG or MD_BOOT_ACCEL_KVM. */
MD_API uint32_t md_boot_accel(const md_boot *b);

/** The firmware chosen: MD_BOOT_FIRMWARE_BIOS or MD_BOOT_FIRMWARE_UEFI. */
MD_API uint32_t md_boot_firmware(const md_boot *b);

/** The context (borrowed). */
MD_API md_ctx *md_boot_ctx(const md_boot *b);

/** Kill QEMU if still running, reap it, free.  NULL-safe. */
MD_API void md_boot_free(md_boot *b);

MD_END_DECLS

#endif
