/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg uki: systemd's EFI stub + kernel + initrds + command line -> one EFI program. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mdimg.h"

enum { OPT_KERNEL = 0x100, OPT_INITRD, OPT_CMDLINE, OPT_OS_RELEASE, OPT_STUB };

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg uki -o OUT --kernel BZIMAGE [--initrd FILE]... [--cmdline STR]\n"
            "                 [--os-release FILE] [--stub PATH]\n"
            "\n"
            "Build a unified kernel image: systemd's EFI stub with the kernel, its\n"
            "initramfs, command line and os-release appended as PE sections (.osrel,\n"
            ".cmdline, .initrd, .linux), as ukify does.  UEFI firmware starts it\n"
            "directly, e.g. as \\EFI\\BOOT\\BOOTX64.EFI on an EFI System Partition.\n"
            "Same inputs, same bytes.\n"
            "\n"
            "Options:\n"
            "  -o, --output OUT      the image to write (replaced if it exists; written to\n"
            "                        a temporary file and renamed only on success)\n"
            "      --kernel FILE     bzImage built with the EFI stub (CONFIG_EFI_STUB=y)\n"
            "      --initrd FILE     initramfs; repeat for several (concatenated in order,\n"
            "                        each padded to 4 bytes)\n"
            "      --cmdline STR     kernel command line, e.g. \"console=ttyS0 panic=-1\"\n"
            "      --os-release FILE os-release for .osrel (how boot menus name the image)\n"
            "      --stub PATH       EFI stub (default %s,\n"
            "                        package systemd-boot-efi)\n"
            "  -q, --quiet           print nothing on success\n"
            "  -v, --verbose         print library debug messages\n"
            "  -h, --help            show this help\n"
            "\n"
            "Exit status: 0 ok, 1 failure (nothing written), 2 usage error.\n",
            MD_UKI_DEFAULT_STUB);
}

struct uki_args {
    const char *out;
    md_uki_opts opts;
    const char **initrds;
    size_t n_initrds;
};

/* Returns 0 to go on, -1 after --help, else the exit status. */
static int parse(struct uki_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        { "output", required_argument, NULL, 'o' },
        { "kernel", required_argument, NULL, OPT_KERNEL },
        { "initrd", required_argument, NULL, OPT_INITRD },
        { "cmdline", required_argument, NULL, OPT_CMDLINE },
        { "os-release", required_argument, NULL, OPT_OS_RELEASE },
        { "stub", required_argument, NULL, OPT_STUB },
        MDIMG_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, "o:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': a->out = optarg; break;
        case OPT_KERNEL: a->opts.kernel = optarg; break;
        case OPT_INITRD: a->initrds[a->n_initrds++] = optarg; break;
        case OPT_CMDLINE: a->opts.cmdline = optarg; break;
        case OPT_OS_RELEASE: a->opts.os_release = optarg; break;
        case OPT_STUB: a->opts.stub = optarg; break;
        case 'h': usage(stdout); return -1;
        default:
            if (!mdimg_common_option(c))
                return mdimg_try_help();
        }
    }
    if (optind < argc)
        return mdimg_usage_error("unexpected argument '%s'", argv[optind]);
    if (!a->out)
        return mdimg_usage_error("missing -o OUT");
    if (!a->opts.kernel)
        return mdimg_usage_error("missing --kernel BZIMAGE");
    if (a->n_initrds)
        a->opts.initrds = a->initrds;
    return 0;
}

int cmd_uki(int argc, char **argv)
{
    struct uki_args a;
    md_ctx *ctx = NULL;
    struct stat st;
    int r, ret;

    memset(&a, 0, sizeof(a));
    md_uki_opts_init(&a.opts);
    a.initrds = calloc((size_t)argc + 1, sizeof(*a.initrds));
    if (!a.initrds) {
        mdimg_err("out of memory");
        return 1;
    }
    ret = parse(&a, argc, argv);
    if (ret != 0)
        goto out;
    ret = 1;
    if (mdimg_ctx_new(&ctx) < 0)
        goto out;
    r = md_uki_write(ctx, a.out, &a.opts);
    if (r < 0) {
        ret = mdimg_fail(ctx, r);
        goto out;
    }
    if (stat(a.out, &st) == 0)
        mdimg_info("wrote %s: %lld bytes\n", a.out, (long long)st.st_size);
    ret = 0;
out:
    md_ctx_free(ctx);
    free(a.initrds);
    return ret < 0 ? 0 : ret;
}
