/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * minidistro: build a bootable BusyBox disk image with libminidistro and,
 * optionally, boot it in QEMU and run one command -- using only the
 * installed public API.
 *
 *   cc -o minidistro minidistro.c $(pkg-config --cflags --libs libminidistro)
 *   ./minidistro distro.img /boot/vmlinuz-$(uname -r) disk
 *   ./minidistro --boot distro.img /boot/vmlinuz-$(uname -r) disk
 *
 * Arguments: IMAGE KERNEL [initramfs|disk] [mbr|gpt].
 */
#include <stdio.h>
#include <string.h>

#include <libminidistro/minidistro.h>

static int progress(void *userdata, uint64_t done, uint64_t total)
{
    (void)userdata;
    fprintf(stderr, "\rbuilding: step %llu of %llu", (unsigned long long)done,
            (unsigned long long)total);
    if (done == total)
        fputc('\n', stderr);
    return 0; /* non-zero would cancel the build */
}

/* Boot the image, wait for the shell, run a command, power off.  Returns
 * a negative errno (message on @ctx), or QEMU's exit status. */
static int boot_and_run(md_ctx *ctx, const char *image)
{
    md_boot_opts bo = MD_BOOT_OPTS_INIT;
    md_boot *b = NULL;
    int status = -1, r;

    bo.disk = image;
    bo.flags = MD_BOOT_ECHO; /* copy the serial console to our stdout */
    bo.echo_fd = 1;
    r = md_boot_start(ctx, &bo, &b);
    if (r < 0)
        return r;
    if ((r = md_boot_expect(b, "minidistro: Linux", 240000)) < 0 ||
        (r = md_boot_expect(b, "# ", 120000)) < 0 ||
        (r = md_boot_send(b, "echo hello from $(uname -n); poweroff\n")) < 0 ||
        (r = md_boot_expect(b, "hello from", 60000)) < 0 ||
        (r = md_boot_wait(b, 60000, &status)) < 0) {
        fprintf(stderr, "last serial lines:\n%s\n", md_boot_tail(b, 20));
        md_boot_free(b);
        return r;
    }
    md_boot_free(b);
    printf("\nQEMU exited with status %d\n", status);
    return status;
}

int main(int argc, char **argv)
{
    md_distro_opts opts = MD_DISTRO_OPTS_INIT;
    md_ctx *ctx = NULL;
    char release[128];
    int boot = 0, r;

    if (argc > 1 && strcmp(argv[1], "--boot") == 0) {
        boot = 1;
        argv++;
        argc--;
    }
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s [--boot] IMAGE KERNEL [initramfs|disk] [mbr|gpt]\n", argv[0]);
        return 2;
    }
    r = md_ctx_new(&ctx);
    if (r < 0) {
        fprintf(stderr, "md_ctx_new: %s\n", md_strerror(r));
        return 1;
    }

    opts.output = argv[1];
    opts.kernel = argv[2];
    opts.root = argc > 3 && strcmp(argv[3], "disk") == 0 ? MD_DISTRO_ROOT_DISK
                                                          : MD_DISTRO_ROOT_INITRAMFS;
    opts.table = argc > 4 && strcmp(argv[4], "gpt") == 0 ? MD_TABLE_GPT
                                                         : MD_TABLE_MBR;
    opts.size = 64ull << 20;
    opts.flags = MD_DISTRO_FORCE;
    opts.progress = progress;

    /* Reading the kernel's release is also a check that it is a bzImage. */
    r = md_kernel_release(ctx, opts.kernel, release, sizeof(release));
    if (r < 0)
        goto fail;
    printf("libminidistro %s: building %s for Linux %s (%s root)\n", md_version(), opts.output,
           release, opts.root == MD_DISTRO_ROOT_DISK ? "disk" : "initramfs");

    r = md_distro_build(ctx, &opts);
    if (r < 0)
        goto fail;
    printf("built %s\n", opts.output);

    if (boot) {
        r = boot_and_run(ctx, opts.output);
        if (r < 0)
            goto fail;
        if (r > 0) { /* reported above; there is no library error to print */
            md_ctx_free(ctx);
            return 1;
        }
    }
    md_ctx_free(ctx);
    return 0;

fail:
    fprintf(stderr, "minidistro: %s\n", *md_ctx_errmsg(ctx) ? md_ctx_errmsg(ctx) : md_strerror(r));
    md_ctx_free(ctx);
    return 1;
}
