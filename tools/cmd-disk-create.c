/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg disk create: describe the image (md_disk) from the options, build it. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mdimg.h"

enum {
    OPT_SEED = 0x100,
    OPT_FREE,
    OPT_DISK_ID,
    OPT_FS,
    OPT_FS_PART,
    OPT_LABEL,
    OPT_UUID,
    OPT_FEATURES,
    OPT_EXTLINUX,
    OPT_PROGRESS,
    OPT_NO_SYNC,
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg disk create IMG [--size SIZE | --free SIZE|N%%] [--table mbr|gpt|none]\n"
            "                         [--part SPEC]...\n"
            "                         [--seed N] [--force] [--fs TYPE [--label L]\n"
            "                         [DIR|ARCHIVE]... [SOURCE OPTIONS]] [--extlinux [EXTLINUX OPTIONS]]\n"
            "\n"
            "Create a sparse raw disk image (no zeros are written: unused space stays a\n"
            "hole), optionally with an MBR or GPT partition table written by libfdisk,\n"
            "and optionally make an ext2/3/4 or FAT filesystem filled from the sources.\n"
            "IMG is written under a temporary name and renamed only on success.\n"
            "\n"
            "Options:\n"
            "  -s, --size SIZE      image size: 512-byte multiple, K/M/G/T suffixes (64M);\n"
            "                       default: computed from the sources (printed)\n"
            "      --free SIZE|N%%   free space a computed size leaves in the filesystem\n"
            "                       (default: 20%% of its contents, at least 16M)\n"
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
            "      --fs TYPE        make a filesystem and fill it from the sources: ext2,\n"
            "                       ext3, ext4, or FAT: vfat (FAT12/16/32 by size, as\n"
            "                       mkfs.fat), fat12, fat16, fat32.  It goes on --fs-part\n"
            "                       N, else (ext) on the bootable partition, else on the\n"
            "                       only Linux partition, or (FAT) on the EFI System\n"
            "                       partition; else on the only partition (the whole\n"
            "                       image with --table none).  FAT holds directories and\n"
            "                       regular files only: symlinks, devices, FIFOs and\n"
            "                       sockets are refused\n"
            "      --fs-part N      the partition for --fs\n"
            "      --label L        filesystem label (with --fs; FAT: up to 11 characters)\n"
            "      --uuid U         filesystem UUID, for FAT the volume id XXXX-XXXX (with\n"
            "                       --fs; default: derived from $SOURCE_DATE_EPOCH when\n"
            "                       set, else random)\n"
            "      --features LIST  mke2fs -O style feature changes (with an ext --fs)\n"
            "%s"
            "      --extlinux       install the EXTLINUX boot loader into that filesystem\n"
            "                       (as `mdimg extlinux install`; the sources must hold the\n"
            "                       kernel and initrds the config names), with:\n"
            "%s"
            "      --progress       show progress also when stderr is not a terminal\n"
            "      --no-sync        do not flush IMG to stable storage at the end (by\n"
            "                       default an image with an ext filesystem is durable\n"
            "                       when the command returns; like tar or cp, --no-sync\n"
            "                       leaves the writeback to the kernel: faster, but a\n"
            "                       crash soon after may lose IMG)\n"
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
            "        --fs ext4 rootfs.tar.gz --extlinux --kernel /boot/vmlinuz \\\n"
            "        --initrd /boot/initrd.gz --append console=ttyS0 --serial 0,115200\n"
            "  mdimg disk create esp.img --part 64M:efi --fs vfat --label ESP esp/\n"
            "\n"
            "Exit status: 0 ok, 1 failure (no IMG left behind), 2 usage error.\n",
            mdimg_sources_help, mdimg_extlinux_help);
}

/* What the options say, before anything is built. */
struct create {
    const char *img, *size_s, *free_s, *table_s, **parts;
    size_t n_parts;
    md_table_opts table;
    md_ext_format_opts fo;
    const char *fs;
    uint32_t fs_part;
    struct mdimg_sources src;
    struct mdimg_extlinux xl;
    int extlinux, force, progress, no_sync;
    uint64_t size, free_bytes;
    uint32_t free_pct;
};

static int parse(struct create *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "size", required_argument, NULL, 's' },
        { "free", required_argument, NULL, OPT_FREE },
        { "table", required_argument, NULL, 't' },
        { "part", required_argument, NULL, 'p' },
        { "seed", required_argument, NULL, OPT_SEED },
        { "disk-id", required_argument, NULL, OPT_DISK_ID },
        { "force", no_argument, NULL, 'f' },
        { "fs", required_argument, NULL, OPT_FS },
        { "fs-part", required_argument, NULL, OPT_FS_PART },
        { "label", required_argument, NULL, OPT_LABEL },
        { "uuid", required_argument, NULL, OPT_UUID },
        { "features", required_argument, NULL, OPT_FEATURES },
        { "extlinux", no_argument, NULL, OPT_EXTLINUX },
        { "progress", no_argument, NULL, OPT_PROGRESS },
        { "no-sync", no_argument, NULL, OPT_NO_SYNC },
        MDIMG_EXTLINUX_LONGOPTS,
        MDIMG_SOURCE_LONGOPTS,
        MDIMG_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    unsigned long seed;
    int ch, r;

    while ((ch = getopt_long(argc, argv, "-s:t:p:fqvh", opts, NULL)) != -1) {
        switch (ch) {
        case 1:
            if (!c->img)
                c->img = optarg;
            else
                mdimg_sources_push(&c->src, MD_SOURCE_AUTO, optarg);
            break;
        case 's': c->size_s = optarg; break;
        case OPT_FREE: c->free_s = optarg; break;
        case 't': c->table_s = optarg; break;
        case 'p': c->parts[c->n_parts++] = optarg; break;
        case OPT_SEED:
            if (mdimg_parse_uint("--seed", optarg, ULONG_MAX, &seed) < 0)
                return EXIT_USAGE;
            c->table.flags |= MD_TABLE_SEED;
            c->table.seed = seed;
            break;
        case OPT_DISK_ID: c->table.disk_id = optarg; break;
        case 'f': c->force = 1; break;
        case OPT_FS: c->fs = optarg; break;
        case OPT_FS_PART:
            if (mdimg_parse_partno(optarg, &c->fs_part) < 0)
                return EXIT_USAGE;
            break;
        case OPT_LABEL: c->fo.label = optarg; break;
        case OPT_UUID: c->fo.uuid = optarg; break;
        case OPT_FEATURES: c->fo.features = optarg; break;
        case OPT_EXTLINUX: c->extlinux = 1; break;
        case OPT_PROGRESS: c->progress = 1; break;
        case OPT_NO_SYNC: c->no_sync = 1; break;
        case 'h': usage(stdout); return -1;
        default:
            if (mdimg_common_option(ch) || mdimg_sources_option(&c->src, ch, optarg))
                break;
            r = mdimg_extlinux_option(&c->xl, ch, optarg);
            if (r < 0)
                return EXIT_USAGE;
            if (r == 0)
                return mdimg_try_help();
        }
    }
    return 0;
}

/* Option combinations that make no sense: usage errors (exit 2). */
static int check(struct create *c)
{
    uint32_t t;

    if (!c->img)
        return mdimg_usage_error("missing IMG");
    if (c->size_s && mdimg_parse_size("--size", c->size_s, &c->size) < 0)
        return EXIT_USAGE;
    if (c->size_s && c->free_s)
        return mdimg_usage_error("--free is for a computed size: it excludes --size");
    if (c->free_s && mdimg_parse_free(c->free_s, &c->free_bytes, &c->free_pct) < 0)
        return EXIT_USAGE;
    if (!c->size_s && !c->fs)
        return mdimg_usage_error("missing --size SIZE (only a filesystem's contents can size the image)");
    if (c->table_s && mdimg_parse_table("--table", c->table_s, &c->table.type) < 0)
        return EXIT_USAGE;
    t = c->table_s ? c->table.type : c->n_parts ? MD_TABLE_GPT : MD_TABLE_NONE;
    if (t == MD_TABLE_NONE && c->n_parts)
        return mdimg_usage_error("--part needs a partition table (--table gpt or mbr)");
    if (t == MD_TABLE_NONE && (c->table.disk_id || (c->table.flags & MD_TABLE_SEED)))
        return mdimg_usage_error("--seed and --disk-id need a partition table");
    c->table.type = t;
    if (c->fs) {
        if (mdimg_parse_fs_type("--fs", c->fs, &c->fo.fs_type) < 0)
            return EXIT_USAGE;
        if (t != MD_TABLE_NONE && !c->n_parts)
            return mdimg_usage_error("--fs with a partition table needs a --part to put it on");
    } else if (c->src.n || c->src.busybox || c->fo.label || c->fo.uuid || c->fo.features ||
               c->fs_part != MD_DISK_PART_AUTO) {
        return mdimg_usage_error("%s needs --fs", c->src.n || c->src.busybox ? "DIR" :
                                 c->fo.label ? "--label" : c->fo.uuid ? "--uuid" :
                                 c->fo.features ? "--features" : "--fs-part");
    }
    if (c->xl.used && !c->extlinux)
        return mdimg_usage_error("EXTLINUX options need --extlinux");
    if (c->extlinux && !c->fs)
        return mdimg_usage_error("--extlinux needs --fs");
    if (c->fs && mdimg_fs_is_fat(c->fo.fs_type) && c->fo.features)
        return mdimg_usage_error("--features is for ext filesystems");
    if (c->fs && mdimg_fs_is_fat(c->fo.fs_type) && c->extlinux)
        return mdimg_usage_error("--extlinux installs into ext2/3/4, not FAT");
    return 0;
}

/* A bad --part description is a usage error (exit 2), as a bad size is. */
static int add_parts(struct create *c, md_disk *d, md_ctx *ctx)
{
    size_t i;
    int r;

    for (i = 0; i < c->n_parts; i++) {
        r = md_disk_add_partition_spec(d, c->parts[i]);
        if (r == -EINVAL)
            return mdimg_usage_error("--part: %s", md_ctx_errmsg(ctx));
        if (r < 0)
            return mdimg_fail(ctx, r);
    }
    return 0;
}

static int describe(struct create *c, md_disk *d)
{
    md_tree *tree;
    int r, idx;

    if ((r = md_disk_set_size(d, c->size)) < 0 || (r = md_disk_set_table(d, &c->table)) < 0)
        return r;
    if (c->free_s && (r = md_disk_set_headroom(d, c->free_bytes, c->free_pct)) < 0)
        return r;
    if (!c->fs)
        return 0;
    if (mdimg_fs_is_fat(c->fo.fs_type)) {
        md_fat_format_opts fa = MD_FAT_FORMAT_OPTS_INIT;
        fa.fat_type = c->fo.fs_type;
        fa.label = c->fo.label;
        fa.volume_id = c->fo.uuid;
        idx = md_disk_add_fat(d, c->fs_part, &fa, &tree);
    } else {
        idx = md_disk_add_ext(d, c->fs_part, &c->fo, &tree);
    }
    if (idx < 0)
        return idx;
    r = mdimg_sources_add(&c->src, tree);
    if (r >= 0 && c->extlinux)
        r = md_disk_set_extlinux(d, (uint32_t)idx, &c->xl.opts);
    return r;
}

static void report(const struct create *c, const md_disk *d)
{
    struct stat st;

    if (stat(c->img, &st) < 0)
        return;
    mdimg_info("%s: %" PRIu64 " bytes%s (%" PRIu64 " allocated)", c->img, md_disk_size(d),
               c->size_s ? "" : ", computed from the contents", (uint64_t)st.st_blocks * 512u);
    if (c->table.type != MD_TABLE_NONE)
        mdimg_info(", %s", c->table.type == MD_TABLE_GPT ? "GPT" : "MBR");
    if (c->fs && md_disk_fs_partition(d, 0))
        mdimg_info(", %s on partition %u", c->fs, md_disk_fs_partition(d, 0));
    else if (c->fs)
        mdimg_info(", %s on the whole image", c->fs);
    mdimg_info("%s\n", c->extlinux ? ", EXTLINUX" : "");
}

static int run(struct create *c)
{
    md_disk_write_opts wo = MD_DISK_WRITE_OPTS_INIT;
    struct mdimg_progress pr;
    md_ctx *ctx = NULL;
    md_disk *d = NULL;
    int r, ret;

    if (c->force)
        wo.flags |= MD_DISK_FORCE;
    if (c->no_sync)
        wo.flags |= MD_DISK_NO_SYNC;
    mdimg_progress_init(&pr, "disk create", MDIMG_PROGRESS_BYTES, c->progress);
    wo.progress = mdimg_progress_cb;
    wo.userdata = &pr;
    if (mdimg_ctx_new(&ctx) < 0)
        return 1;
    if (c->extlinux && (ret = mdimg_extlinux_prepare(&c->xl, ctx)) != 0)
        goto out;
    r = md_disk_new(ctx, &d);
    if (r < 0) {
        ret = mdimg_fail(ctx, r);
        goto out;
    }
    if ((ret = add_parts(c, d, ctx)) != 0)
        goto out;
    r = describe(c, d);
    if (r >= 0)
        r = md_disk_write(d, c->img, &wo);
    mdimg_progress_done(&pr);
    ret = r < 0 ? mdimg_fail(ctx, r) : 0;
    if (ret == 0)
        report(c, d);
out:
    md_disk_free(d);
    md_ctx_free(ctx);
    return ret;
}

int cmd_disk_create(int argc, char **argv)
{
    static const md_table_opts tdef = MD_TABLE_OPTS_INIT;
    static const md_ext_format_opts fdef = MD_EXT_FORMAT_OPTS_INIT;
    struct create c;
    int ret;

    memset(&c, 0, sizeof(c));
    c.table = tdef;
    c.fo = fdef;
    c.fs_part = MD_DISK_PART_AUTO;
    mdimg_extlinux_init(&c.xl);
    c.parts = calloc((size_t)argc + 1, sizeof(*c.parts));
    if (!c.parts || mdimg_sources_init(&c.src, argc) < 0) {
        free(c.parts);
        mdimg_err("out of memory");
        return 1;
    }
    ret = parse(&c, argc, argv);
    if (ret == 0)
        ret = check(&c);
    if (ret == 0)
        ret = run(&c);
    mdimg_extlinux_free(&c.xl);
    mdimg_sources_free(&c.src);
    free(c.parts);
    return ret < 0 ? 0 : ret;
}
