/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg disk create: sparse image + partition table (+ filesystem) in one step. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mdimg.h"

enum {
    OPT_SIZE = 0x100,
    OPT_TABLE,
    OPT_PART,
    OPT_SEED,
    OPT_DISK_ID,
    OPT_FORCE,
    OPT_FS,
    OPT_LABEL,
    OPT_UUID,
    OPT_FEATURES,
    OPT_EXTLINUX,
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg disk create IMG --size SIZE [--table mbr|gpt|none] [--part SPEC]...\n"
            "                         [--seed N] [--force] [--fs ext2|ext3|ext4 [--label L] [DIR]...]\n"
            "                         [--extlinux [EXTLINUX OPTIONS]]\n"
            "\n"
            "Create a sparse raw disk image (no zeros are written: unused space stays a\n"
            "hole), optionally with an MBR or GPT partition table written by libfdisk,\n"
            "and optionally make an ext2/3/4 filesystem filled with the DIR trees.\n"
            "IMG is written under a temporary name and renamed only on success.\n"
            "\n"
            "Options:\n"
            "  -s, --size SIZE      image size: 512-byte multiple, K/M/G/T suffixes (64M)\n"
            "  -t, --table TYPE     gpt, mbr (alias dos) or none (default: gpt when --part\n"
            "                       is given, else none)\n"
            "  -p, --part SPEC      add a partition (repeat, in order; the first is 1):\n"
            "                         SIZE[:TYPE[:FLAG[,FLAG]...]]\n"
            "                       SIZE: 100M, N%% of the usable space, or rest\n"
            "                       TYPE: linux (default), efi, bios-boot (GPT), swap,\n"
            "                             an MBR code (0x83) or a GPT type GUID\n"
            "                       FLAG: bootable (MBR active flag / GPT legacy BIOS\n"
            "                             bootable), name=NAME (GPT), uuid=GUID (GPT)\n"
            "                       Partitions start on 1 MiB boundaries.\n"
            "      --seed N         derive the disk id and partition GUIDs from N\n"
            "                       (default: from $SOURCE_DATE_EPOCH when set, else random)\n"
            "      --disk-id ID     explicit disk id: 0x1234abcd (MBR) or a GUID (GPT)\n"
            "  -f, --force          replace IMG if it exists\n"
            "      --fs TYPE        make an ext2, ext3 or ext4 filesystem on the bootable\n"
            "                       partition (else partition 1; the whole image with\n"
            "                       --table none) and copy the DIRs into it (owners 0:0)\n"
            "      --label L        filesystem label (with --fs)\n"
            "      --uuid U         filesystem UUID (with --fs; default: derived from\n"
            "                       $SOURCE_DATE_EPOCH when set, else random)\n"
            "      --features LIST  mke2fs -O style feature changes (with --fs)\n"
            "      --extlinux       install the EXTLINUX boot loader into that filesystem\n"
            "                       (as `mdimg extlinux install`; the DIRs must hold the\n"
            "                       kernel and initrds the config names), with:\n"
            "%s"
            "  -q, --quiet          print nothing on success\n"
            "  -v, --verbose        print library debug messages\n"
            "  -h, --help           show this help\n"
            "\n"
            "Examples:\n"
            "  mdimg disk create disk.img --size 64M --table mbr --part 100%%:linux:bootable \\\n"
            "        --fs ext4 rootfs/\n"
            "  mdimg disk create disk.img --size 1G --part 1M:bios-boot \\\n"
            "        --part 64M:efi:name=ESP --part rest:linux:bootable,name=root\n"
            "  mdimg disk create disk.img --size 64M --table mbr --part rest:linux:bootable \\\n"
            "        --fs ext4 rootfs/ --extlinux --kernel /boot/vmlinuz --initrd /boot/initrd.gz \\\n"
            "        --append console=ttyS0 --serial 0,115200\n"
            "\n"
            "Exit status: 0 ok, 1 failure (no IMG left behind), 2 usage error.\n",
            mdimg_extlinux_help);
}

int cmd_disk_create(int argc, char **argv)
{
    static const struct option opts[] = {
        { "size", required_argument, NULL, 's' },
        { "table", required_argument, NULL, 't' },
        { "part", required_argument, NULL, 'p' },
        { "seed", required_argument, NULL, OPT_SEED },
        { "disk-id", required_argument, NULL, OPT_DISK_ID },
        { "force", no_argument, NULL, 'f' },
        { "fs", required_argument, NULL, OPT_FS },
        { "label", required_argument, NULL, OPT_LABEL },
        { "uuid", required_argument, NULL, OPT_UUID },
        { "features", required_argument, NULL, OPT_FEATURES },
        { "extlinux", no_argument, NULL, OPT_EXTLINUX },
        MDIMG_EXTLINUX_LONGOPTS,
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    md_image_create_opts copts = MD_IMAGE_CREATE_OPTS_INIT;
    md_table_opts topts = MD_TABLE_OPTS_INIT;
    md_ext_format_opts fopts = MD_EXT_FORMAT_OPTS_INIT;
    const char *img_path = NULL, *table = NULL, *size_s = NULL, *fs = NULL;
    const char **parts = NULL, **dirs = NULL;
    size_t n_parts = 0, n_dirs = 0, i;
    uint64_t size = 0;
    unsigned long seed = 0;
    uint32_t fs_part = 0;
    md_ctx *ctx = NULL;
    md_image *img = NULL;
    md_tree *tree = NULL;
    md_ext *ext = NULL;
    struct mdimg_extlinux xl;
    int extlinux = 0;
    int c, r, ret = 1;

    mdimg_extlinux_init(&xl);

    parts = calloc((size_t)argc + 1, sizeof(*parts));
    dirs = calloc((size_t)argc + 1, sizeof(*dirs));
    if (!parts || !dirs) {
        mdimg_err("out of memory");
        goto out;
    }
    while ((c = getopt_long(argc, argv, "-s:t:p:fqvh", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (!img_path)
                img_path = optarg;
            else
                dirs[n_dirs++] = optarg;
            break;
        case 's': size_s = optarg; break;
        case 't': table = optarg; break;
        case 'p': parts[n_parts++] = optarg; break;
        case OPT_SEED:
            if (mdimg_parse_uint("--seed", optarg, ULONG_MAX, &seed) < 0)
                goto usage_fail;
            topts.flags |= MD_TABLE_SEED;
            topts.seed = seed;
            break;
        case OPT_DISK_ID: topts.disk_id = optarg; break;
        case 'f': copts.flags |= MD_IMAGE_FORCE; break;
        case OPT_FS: fs = optarg; break;
        case OPT_LABEL: fopts.label = optarg; break;
        case OPT_UUID: fopts.uuid = optarg; break;
        case OPT_FEATURES: fopts.features = optarg; break;
        case OPT_EXTLINUX: extlinux = 1; break;
        case 'q': mdimg_verbose = -1; break;
        case 'v': mdimg_verbose = 1; break;
        case 'h':
            usage(stdout);
            ret = 0;
            goto out;
        default:
            r = mdimg_extlinux_option(&xl, c, optarg);
            if (r < 0)
                goto usage_fail;
            if (r == 0) {
                usage(stderr);
                goto usage_fail;
            }
        }
    }
    if (!img_path) {
        mdimg_usage_error("missing IMG");
        goto usage_fail;
    }
    if (!size_s) {
        mdimg_usage_error("missing --size SIZE");
        goto usage_fail;
    }
    if (mdimg_parse_size("--size", size_s, &size) < 0)
        goto usage_fail;
    if (!table)
        table = n_parts ? "gpt" : "none";
    if (!strcmp(table, "none")) {
        table = NULL;
        if (n_parts) {
            mdimg_usage_error("--part needs a partition table (--table gpt or mbr)");
            goto usage_fail;
        }
        if (topts.disk_id || (topts.flags & MD_TABLE_SEED)) {
            mdimg_usage_error("--seed and --disk-id need a partition table");
            goto usage_fail;
        }
    } else if (strcmp(table, "gpt") && strcmp(table, "mbr") && strcmp(table, "dos")) {
        mdimg_usage_error("--table: unknown partition table type '%s' (use gpt, mbr or none)", table);
        goto usage_fail;
    }
    if (fs) {
        if (mdimg_parse_fs_type("--fs", fs, &fopts.fs_type) < 0)
            goto usage_fail;
        if (table && !n_parts) {
            mdimg_usage_error("--fs with a partition table needs a --part to put it on");
            goto usage_fail;
        }
    } else if (n_dirs || fopts.label || fopts.uuid || fopts.features) {
        mdimg_usage_error("%s needs --fs", n_dirs ? "DIR" : fopts.label ? "--label" : fopts.uuid ? "--uuid" : "--features");
        goto usage_fail;
    }
    if (xl.used && !extlinux) {
        mdimg_usage_error("EXTLINUX options need --extlinux");
        goto usage_fail;
    }
    if (extlinux && !fs) {
        mdimg_usage_error("--extlinux needs --fs");
        goto usage_fail;
    }
    for (i = 0; i < n_dirs; i++) {
        struct stat st;
        if (stat(dirs[i], &st) < 0) {
            mdimg_err("%s: %s", dirs[i], strerror(errno));
            goto out;
        }
        if (!S_ISDIR(st.st_mode)) {
            mdimg_err("%s: not a directory", dirs[i]);
            goto out;
        }
    }

    if (mdimg_ctx_new(&ctx) < 0)
        goto out;
    if (extlinux && (ret = mdimg_extlinux_prepare(&xl, ctx)) != 0)
        goto out;
    ret = 1;
    r = md_image_create(ctx, img_path, size, &copts, &img);
    if (r < 0)
        goto fail;
    if (table) {
        topts.label = table;
        for (i = 0; i < n_parts; i++) {
            r = md_image_add_partition_spec(img, parts[i]);
            if (r == -EINVAL) {
                mdimg_usage_error("--part: %s", md_ctx_errmsg(ctx));
                ret = EXIT_USAGE;
                goto out;
            }
            if (r < 0)
                goto fail;
        }
        r = md_image_write_table(img, &topts);
        if (r < 0)
            goto fail;
    }
    if (fs) {
        md_probe *pr = NULL;
        if (table) {
            /* the bootable partition, else partition 1 */
            r = md_image_probe(img, &pr);
            if (r < 0)
                goto fail;
            fs_part = 1;
            for (i = 1; i <= md_probe_count(pr); i++)
                if (md_probe_flags(pr, (uint32_t)i) & MD_PART_BOOTABLE) {
                    fs_part = md_probe_number(pr, (uint32_t)i);
                    break;
                }
            md_probe_free(pr);
        }
        r = md_tree_new(ctx, &tree);
        if (r < 0)
            goto fail;
        for (i = 0; i < n_dirs; i++) {
            r = md_tree_add_host(tree, dirs[i], NULL);
            if (r < 0)
                goto fail;
        }
        r = md_ext_format(img, fs_part, &fopts, &ext);
        if (r < 0)
            goto fail;
        if (n_dirs) {
            r = md_ext_populate(ext, tree, NULL);
            if (r < 0)
                goto fail;
        }
        r = md_ext_close(ext);
        ext = NULL;
        if (r < 0)
            goto fail;
        if (extlinux) {
            r = md_extlinux_install(img, fs_part, &xl.opts);
            if (r < 0)
                goto fail;
        }
    }
    r = md_image_commit(img);
    if (r < 0)
        goto fail;
    {
        uint64_t alloc = 0;
        md_image_usage(img, NULL, &alloc);
        mdimg_info("%s: %" PRIu64 " bytes (%" PRIu64 " allocated)%s%s%s%s%s\n", img_path, size, alloc,
                   table ? ", " : "", table ? (strcmp(table, "gpt") ? "MBR" : "GPT") : "",
                   fs ? ", " : "", fs ? fs : "", extlinux ? ", EXTLINUX" : "");
    }
    ret = 0;
    goto out;

usage_fail:
    ret = EXIT_USAGE;
    goto out;
fail:
    ret = mdimg_fail(ctx, r);
out:
    md_ext_free(ext);
    md_tree_free(tree);
    md_image_free(img); /* unlinks the temporary file unless committed */
    md_ctx_free(ctx);
    mdimg_extlinux_free(&xl);
    free(parts);
    free(dirs);
    return ret;
}
