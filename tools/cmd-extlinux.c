/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg extlinux install: rootless EXTLINUX installation into an image. */
#include <string.h>

#include "mdimg.h"

static void usage_install(FILE *f)
{
    fprintf(f,
            "Usage: mdimg extlinux install IMG [options]\n"
            "\n"
            "Install the EXTLINUX boot loader into the ext2/3/4 filesystem of IMG, without\n"
            "root and without mounting.  Running it again updates the installation.\n"
            "For a partitioned image the MBR boot code (mbr.bin, or gptmbr.bin for GPT) is\n"
            "written and the partition is marked bootable.\n"
            "\n"
            "Options:\n"
            "  --part N              partition holding the filesystem (0: the whole image is\n"
            "                        the filesystem, no MBR); default: the bootable\n"
            "                        partition, else the only Linux partition; without a\n"
            "                        partition table, the whole image\n"
            "  --label NAME          entry label for --kernel (default linux)\n"
            "%s"
            "  --wait                wait while another program uses IMG (else: an error)\n"
            "  -q, --quiet           print nothing on success\n"
            "  -v, --verbose         print library debug messages\n"
            "  -h, --help            show this help\n"
            "\n"
            "Without --config or --kernel an existing extlinux.conf is kept.\n"
            "Kernel and initrd files named in the config must already be in the image.\n",
            mdimg_extlinux_help);
}

static int cmd_install(int argc, char **argv)
{
    enum { O_PART = 256 };
    static const struct option lopts[] = {
        { "part", required_argument, NULL, O_PART },
        { "label", required_argument, NULL, MDIMG_XL_LABEL },
        MDIMG_EXTLINUX_LONGOPTS,
        MDIMG_COMMON_LONGOPTS,
        MDIMG_WAIT_LONGOPT,
        { NULL, 0, NULL, 0 },
    };
    struct mdimg_extlinux x;
    uint32_t part = MD_DISK_PART_AUTO;
    int c, r, ret = 1;
    md_ctx *ctx = NULL;
    md_image *img = NULL;

    mdimg_extlinux_init(&x);
    while ((c = getopt_long(argc, argv, "qvh", lopts, NULL)) != -1) {
        if (c == O_PART) {
            if (mdimg_parse_partno(optarg, &part) < 0)
                return EXIT_USAGE;
        } else if (c == 'h') {
            usage_install(stdout);
            return 0;
        } else if (mdimg_common_option(c)) {
            continue;
        } else if ((r = mdimg_extlinux_option(&x, c, optarg)) < 0) {
            return EXIT_USAGE;
        } else if (r == 0) {
            return mdimg_try_help();
        }
    }
    if (optind + 1 != argc)
        return mdimg_usage_error(optind >= argc ? "missing IMG" : "too many arguments");
    if (mdimg_ctx_new(&ctx) < 0)
        goto out;
    ret = mdimg_extlinux_prepare(&x, ctx);
    if (ret)
        goto out;
    ret = 1;
    r = mdimg_image_open(ctx, argv[optind], 0, &img);
    if (r >= 0 && part == MD_DISK_PART_AUTO)
        r = md_image_default_partition(img, &part);
    if (r >= 0)
        r = md_extlinux_install(img, part, &x.opts);
    if (r >= 0)
        r = md_image_commit(img);
    if (r < 0) {
        mdimg_fail(ctx, r);
        goto out;
    }
    if (part)
        mdimg_info("%s: EXTLINUX installed in partition %u, %s\n", argv[optind], part,
                   x.opts.dir ? x.opts.dir : "/boot/syslinux");
    else
        mdimg_info("%s: EXTLINUX installed, %s\n", argv[optind],
                   x.opts.dir ? x.opts.dir : "/boot/syslinux");
    ret = 0;
out:
    md_image_free(img);
    mdimg_extlinux_free(&x);
    md_ctx_free(ctx);
    return ret;
}

int cmd_extlinux(int argc, char **argv)
{
    static char name[] = "extlinux install";

    if (argc < 2) {
        fprintf(stderr, "Usage: mdimg extlinux install IMG [options]\n"
                        "Run 'mdimg extlinux install --help' for the options.\n");
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage_install(stdout);
        return 0;
    }
    if (strcmp(argv[1], "install")) {
        mdimg_err("unknown subcommand '%s' (known: install)", argv[1]);
        return mdimg_try_help();
    }
    mdimg_set_cmdname(argv + 1, name);
    optind = 0;
    return cmd_install(argc - 1, argv + 1);
}
