/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg disk format | populate | cp | ls: ext2/3/4 and FAT filesystems inside images. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mdimg.h"

enum {
    OPT_TARGET = 0x100,
    OPT_PROGRESS,
    OPT_CLUSTER,
    OPT_OEM,
};

/* The partition a command works on: --part N, else the image's default
 * (for a new FAT filesystem: the EFI System partition). */
static int resolve_part(md_image *img, uint32_t *partno, int fat)
{
    if (*partno != MD_DISK_PART_AUTO)
        return 0;
    return fat ? md_image_default_fat_partition(img, partno) : md_image_default_partition(img, partno);
}

/* 1 if libblkid sees a FAT filesystem on partition @partno, else 0: the
 * module that opens it is then chosen (anything else goes to the ext
 * module, whose error says what is there). */
static int part_is_fat(md_image *img, uint32_t partno)
{
    md_probe *pr = NULL;
    uint32_t i, idx = 0;
    const char *t;
    int fat;

    if (md_image_probe(img, &pr) < 0)
        return 0;
    for (i = 1; partno && i <= md_probe_count(pr); i++)
        if (md_probe_number(pr, i) == partno)
            idx = i;
    t = md_probe_fs_type(pr, idx);
    fat = (partno == 0 || idx) && t && !strcmp(t, "vfat");
    md_probe_free(pr);
    return fat;
}

/* ---- format ------------------------------------------------------------------ */

static void format_usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg disk format IMG [--part N] --fs TYPE [options]\n"
            "\n"
            "Make an ext2/3/4 filesystem on partition N of IMG, with mke2fs's defaults\n"
            "for the type and size, or a FAT filesystem with mkfs.fat's.  No root, no\n"
            "mount.\n"
            "\n"
            "Options:\n"
            "  -p, --part N          partition number (1-based; 0 = the whole image); default:\n"
            "                        ext: the bootable partition, else the only Linux\n"
            "                        partition; FAT: the EFI System partition; else the only\n"
            "                        partition; the whole image when there is no table\n"
            "  -t, --fs TYPE         ext2, ext3, ext4, vfat (FAT12/16/32 by size, as mkfs.fat),\n"
            "                        fat12, fat16 or fat32 (required)\n"
            "  -L, --label L         volume label (ext: up to 16 bytes; FAT: up to 11\n"
            "                        characters, made upper case)\n"
            "  -U, --uuid U          filesystem UUID (FAT: volume id XXXX-XXXX; default:\n"
            "                        derived from $SOURCE_DATE_EPOCH when set, else random)\n"
            "ext only:\n"
            "  -O, --features LIST   mke2fs -O style changes, e.g. ^64bit,^metadata_csum\n"
            "  -b, --block-size N    1024, 2048 or 4096 (default: by size, as mke2fs)\n"
            "  -N, --inodes N        number of inodes (default: from the size)\n"
            "  -I, --inode-size N    inode size in bytes (default 256)\n"
            "  -m, --reserved PCT    reserved blocks percentage (default 5)\n"
            "  -J, --journal-blocks N  journal size in blocks (ext3/ext4)\n"
            "      --wait            wait while another program uses IMG (else: an error)\n"
            "FAT only:\n"
            "      --cluster-size N  bytes per cluster, 512..65536 (default: by size, as\n"
            "                        mkfs.fat)\n"
            "      --oem NAME        boot sector OEM name, up to 8 characters (MSWIN4.1)\n"
            "  -q, --quiet           print nothing on success\n"
            "  -v, --verbose         print library debug messages\n"
            "  -h, --help            show this help\n");
}

int cmd_disk_format(int argc, char **argv)
{
    static const struct option opts[] = {
        { "part", required_argument, NULL, 'p' },
        { "fs", required_argument, NULL, 't' },
        { "label", required_argument, NULL, 'L' },
        { "uuid", required_argument, NULL, 'U' },
        { "features", required_argument, NULL, 'O' },
        { "block-size", required_argument, NULL, 'b' },
        { "inodes", required_argument, NULL, 'N' },
        { "inode-size", required_argument, NULL, 'I' },
        { "reserved", required_argument, NULL, 'm' },
        { "journal-blocks", required_argument, NULL, 'J' },
        { "cluster-size", required_argument, NULL, OPT_CLUSTER },
        { "oem", required_argument, NULL, OPT_OEM },
        MDIMG_COMMON_LONGOPTS,
        MDIMG_WAIT_LONGOPT,
        { NULL, 0, NULL, 0 },
    };
    md_ext_format_opts fo = MD_EXT_FORMAT_OPTS_INIT;
    md_fat_format_opts fa = MD_FAT_FORMAT_OPTS_INIT;
    uint32_t partno = MD_DISK_PART_AUTO;
    int have_fs = 0, c, r, fat;
    const char *ext_only = NULL, *fat_only = NULL;
    unsigned long v;
    md_ctx *ctx = NULL;
    md_image *img = NULL;

    while ((c = getopt_long(argc, argv, "p:t:L:U:O:b:N:I:m:J:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (mdimg_parse_partno(optarg, &partno) < 0)
                return EXIT_USAGE;
            break;
        case 't':
            if (mdimg_parse_fs_type("--fs", optarg, &fo.fs_type) < 0)
                return EXIT_USAGE;
            have_fs = 1;
            break;
        case 'L': fo.label = fa.label = optarg; break;
        case 'U': fo.uuid = fa.volume_id = optarg; break;
        case 'O': fo.features = optarg; ext_only = "--features"; break;
        case OPT_CLUSTER:
            if (mdimg_parse_uint("--cluster-size", optarg, 65536, &v) < 0)
                return EXIT_USAGE;
            fa.cluster_size = (uint32_t)v;
            fat_only = "--cluster-size";
            break;
        case OPT_OEM: fa.oem_name = optarg; fat_only = "--oem"; break;
        case 'b':
            if (mdimg_parse_uint("--block-size", optarg, 65536, &v) < 0)
                return EXIT_USAGE;
            fo.block_size = (uint32_t)v;
            ext_only = "--block-size";
            break;
        case 'N':
            if (mdimg_parse_uint("--inodes", optarg, 0xffffffffUL, &v) < 0)
                return EXIT_USAGE;
            fo.inode_count = v;
            ext_only = "--inodes";
            break;
        case 'I':
            if (mdimg_parse_uint("--inode-size", optarg, 65536, &v) < 0)
                return EXIT_USAGE;
            fo.inode_size = (uint32_t)v;
            ext_only = "--inode-size";
            break;
        case 'm':
            if (mdimg_parse_uint("--reserved", optarg, 50, &v) < 0)
                return EXIT_USAGE;
            fo.reserved_percent = (int32_t)v;
            ext_only = "--reserved";
            break;
        case 'J':
            if (mdimg_parse_uint("--journal-blocks", optarg, 0xffffffffUL, &v) < 0)
                return EXIT_USAGE;
            fo.journal_blocks = (uint32_t)v;
            ext_only = "--journal-blocks";
            break;
        case 'h':
            format_usage(stdout);
            return 0;
        default:
            if (!mdimg_common_option(c))
                return mdimg_try_help();
        }
    }
    if (optind + 1 != argc)
        return mdimg_usage_error("expected exactly one IMG argument");
    if (!have_fs)
        return mdimg_usage_error("--fs ext2|ext3|ext4|vfat|fat12|fat16|fat32 is required");
    fat = mdimg_fs_is_fat(fo.fs_type);
    if (fat && ext_only)
        return mdimg_usage_error("%s is for ext filesystems", ext_only);
    if (!fat && fat_only)
        return mdimg_usage_error("%s is for FAT filesystems", fat_only);
    fa.fat_type = fo.fs_type;
    if (mdimg_ctx_new(&ctx) < 0)
        return 1;
    r = mdimg_image_open(ctx, argv[optind], 0, &img);
    if (r >= 0)
        r = resolve_part(img, &partno, fat);
    if (r >= 0)
        r = fat ? md_fat_format(img, partno, &fa, NULL) : md_ext_format(img, partno, &fo, NULL);
    if (r >= 0)
        r = md_image_commit(img);
    if (r < 0) {
        mdimg_fail(ctx, r);
        md_image_free(img);
        md_ctx_free(ctx);
        return 1;
    }
    md_image_free(img);
    md_ctx_free(ctx);
    if (partno)
        mdimg_info("%s: made %s on partition %u\n", argv[optind], md_fs_type_name(fo.fs_type), partno);
    else
        mdimg_info("%s: made %s on the whole image\n", argv[optind], md_fs_type_name(fo.fs_type));
    return 0;
}

/* ---- populate ------------------------------------------------------------------- */

static void populate_usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg disk populate IMG [--part N] [--target DIR] [DIR|ARCHIVE]...\n"
            "                           [SOURCE OPTIONS]\n"
            "\n"
            "Copy trees into the ext2/3/4 filesystem on partition N of IMG, merging with\n"
            "what is there, or into an empty FAT filesystem (as disk format leaves it).\n"
            "Space is checked before anything is written.\n"
            "\n"
            "Options:\n"
            "  -p, --part N        partition number (0 = the whole image); default: the\n"
            "                      bootable partition, else the only Linux partition, the\n"
            "                      whole image when there is no partition table\n"
            "  -C, --target DIR    directory in the filesystem to fill (default /)\n"
            "  -s FILE, -c FILE    short for --spec FILE, --archive FILE\n"
            "      --progress      show progress also when stderr is not a terminal\n"
            "      --wait          wait while another program uses IMG (else: an error)\n"
            "  -q, --quiet         print nothing on success\n"
            "  -v, --verbose       print library debug messages\n"
            "  -h, --help          show this help\n"
            "%s",
            mdimg_sources_help);
}

static int populate_parse(int argc, char **argv, struct mdimg_sources *src, uint32_t *partno,
                          md_ext_populate_opts *po, const char **imgpath, int *progress)
{
    static const struct option opts[] = {
        { "part", required_argument, NULL, 'p' },
        { "target", required_argument, NULL, 'C' },
        { "progress", no_argument, NULL, OPT_PROGRESS },
        MDIMG_SOURCE_LONGOPTS,
        MDIMG_COMMON_LONGOPTS,
        MDIMG_WAIT_LONGOPT,
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, "-p:C:s:c:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (!*imgpath)
                *imgpath = optarg;
            else
                mdimg_sources_push(src, MD_SOURCE_AUTO, optarg);
            break;
        case 'p':
            if (mdimg_parse_partno(optarg, partno) < 0)
                return EXIT_USAGE;
            break;
        case 'C': po->target = optarg; break;
        case OPT_PROGRESS: *progress = 1; break;
        case 's': mdimg_sources_push(src, MD_SOURCE_SPEC, optarg); break;
        case 'c': mdimg_sources_push(src, MD_SOURCE_ARCHIVE, optarg); break;
        case 'h': populate_usage(stdout); return -1;
        default:
            if (!mdimg_common_option(c) && !mdimg_sources_option(src, c, optarg))
                return mdimg_try_help();
        }
    }
    if (!*imgpath)
        return mdimg_usage_error("missing IMG");
    if (mdimg_sources_empty(src))
        return mdimg_usage_error("nothing to copy: give DIRs, archives, --spec or --busybox");
    return 0;
}

int cmd_disk_populate(int argc, char **argv)
{
    md_ext_populate_opts po = MD_EXT_POPULATE_OPTS_INIT;
    struct mdimg_sources src;
    uint32_t partno = MD_DISK_PART_AUTO;
    const char *imgpath = NULL;
    md_ctx *ctx = NULL;
    md_image *img = NULL;
    md_tree *tree = NULL;
    md_ext *fs = NULL;
    md_fat *fat = NULL;
    struct mdimg_progress pr;
    int r, ret, progress = 0;

    if (mdimg_sources_init(&src, argc) < 0)
        return 1;
    ret = populate_parse(argc, argv, &src, &partno, &po, &imgpath, &progress);
    if (ret != 0)
        goto out;
    ret = 1;
    if (mdimg_ctx_new(&ctx) < 0)
        goto out;
    /* build the whole tree first: bad input fails before the image is touched */
    r = md_tree_new(ctx, &tree);
    if (r >= 0)
        r = mdimg_sources_add(&src, tree);
    if (r >= 0)
        r = mdimg_image_open(ctx, imgpath, 0, &img);
    if (r >= 0)
        r = resolve_part(img, &partno, 0);
    mdimg_progress_init(&pr, "disk populate", MDIMG_PROGRESS_BYTES, progress);
    if (r >= 0 && part_is_fat(img, partno)) {
        if (po.target && strcmp(po.target, "/")) {
            mdimg_err("--target: a FAT filesystem is filled from its root");
            goto out;
        }
        r = md_fat_open(img, partno, 0, &fat);
        if (r >= 0)
            r = md_fat_populate(fat, tree, NULL);
        if (r >= 0)
            r = md_fat_close(fat);
        else
            md_fat_free(fat);
        if (r >= 0)
            r = md_image_commit(img);
    } else {
        if (r >= 0)
            r = md_ext_open(img, partno, 0, &fs);
        po.progress = mdimg_progress_cb;
        po.userdata = &pr;
        if (r >= 0)
            r = md_ext_populate(fs, tree, &po);
    }
    mdimg_progress_done(&pr);
    /* the changes reach the image only when everything worked (an atomic
     * copy); a failure drops them */
    if (fs && r >= 0) {
        r = md_ext_close(fs);
        if (r >= 0)
            r = md_image_commit(img);
    } else {
        md_ext_free(fs);
    }
    if (r < 0) {
        mdimg_fail(ctx, r);
        goto out;
    }
    mdimg_info("%s: copied %zu entries\n", imgpath, md_tree_count(tree));
    ret = 0;
out:
    md_tree_free(tree);
    md_image_free(img);
    md_ctx_free(ctx);
    mdimg_sources_free(&src);
    return ret < 0 ? 0 : ret;
}

/* ---- IMG[:PART]:/path ------------------------------------------------------------- */

/*
 * An image location is IMG:/PATH or IMG:N:/PATH.  IMG may itself contain ':'
 * characters: the split is made at the first ':' whose left part names an
 * existing file and whose right part is "/..." or "N:/...".  A bare existing
 * IMG means IMG:/ (for ls).
 */
struct loc {
    char *img;
    uint32_t part;
    const char *path;
};

static int parse_loc(const char *s, struct loc *l, int allow_bare)
{
    const char *p;
    struct stat st;

    memset(l, 0, sizeof(*l));
    for (p = strchr(s, ':'); p; p = strchr(p + 1, ':')) {
        char *img = strndup(s, (size_t)(p - s));
        const char *rest = p + 1;
        uint32_t part = MD_DISK_PART_AUTO;

        if (!img)
            return -ENOMEM;
        if (stat(img, &st) < 0 || S_ISDIR(st.st_mode)) {
            free(img);
            continue;
        }
        if (*rest >= '0' && *rest <= '9') {
            char *end;
            unsigned long v = strtoul(rest, &end, 10);
            if (*end != ':' || v > 4096) {
                free(img);
                continue;
            }
            part = (uint32_t)v;
            rest = end + 1;
        }
        if (*rest != '/') {
            free(img);
            continue;
        }
        l->img = img;
        l->part = part;
        l->path = rest;
        return 1;
    }
    if (allow_bare && stat(s, &st) == 0 && S_ISREG(st.st_mode)) {
        l->img = strdup(s);
        l->part = MD_DISK_PART_AUTO;
        l->path = "/";
        return l->img ? 1 : -ENOMEM;
    }
    return 0;
}

/* Open the filesystem of @l: FAT into *@fat when libblkid sees FAT there
 * (and @fat is given), else ext into *@fs. */
static int open_loc(md_ctx *ctx, struct loc *l, int rdonly, md_image **img, md_ext **fs, md_fat **fat)
{
    int r = mdimg_image_open(ctx, l->img, rdonly, img);
    if (r < 0 || (r = resolve_part(*img, &l->part, 0)) < 0)
        return r;
    if (fat && part_is_fat(*img, l->part))
        return md_fat_open(*img, l->part, rdonly ? MD_FAT_RDONLY : 0, fat);
    return md_ext_open(*img, l->part, rdonly ? MD_EXT_RDONLY : 0, fs);
}

/* ---- cp ------------------------------------------------------------------------------ */

static void cp_usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg disk cp IMG[:PART]:/PATH HOSTFILE|-\n"
            "       mdimg disk cp [--mode MODE] [--owner UID:GID] HOSTFILE IMG[:PART]:/PATH\n"
            "\n"
            "Copy a regular file out of or into the ext2/3/4 filesystem of an image, or out\n"
            "of its FAT filesystem.\n"
            "IMG[:PART]:/PATH: PART is the partition number (0: the whole image; default:\n"
            "the bootable partition, else the only Linux partition; without a table, the\n"
            "whole image);\n"
            "IMG may contain ':' — the first ':' after which \"/...\" or \"N:/...\" follows\n"
            "and before which an existing file is named separates it.  Copying into an\n"
            "existing directory (or a PATH ending in '/') keeps the host file's name; an\n"
            "existing file is replaced.  Host output is written atomically; '-' is\n"
            "standard output; a device, FIFO or symlink at HOSTFILE is never replaced.\n"
            "\n"
            "Options:\n"
            "  -m, --mode MODE     permission bits in the image (octal, 0 included; default:\n"
            "                      the host file's)\n"
            "  -o, --owner U:G     owner in the image (default 0:0)\n"
            "      --wait          wait while another program uses IMG (else: an error)\n"
            "  -q, --quiet         print nothing on success\n"
            "  -v, --verbose       print library debug messages\n"
            "  -h, --help          show this help\n");
}

static int parse_mode(const char *arg, md_attr *attr)
{
    char *end;
    unsigned long v = strtoul(arg, &end, 8);

    if (*end || !*arg || v > 07777)
        return mdimg_usage_error("--mode: '%s' is not an octal mode", arg);
    attr->mode = MD_ATTR_MODE_SET | (uint32_t)v; /* --mode 0 is 0, not "the default" */
    return 0;
}

static int parse_owner(const char *arg, md_attr *attr)
{
    unsigned long u, g;
    char *end;

    u = strtoul(arg, &end, 10);
    if (*end != ':' || end == arg)
        return mdimg_usage_error("--owner: '%s' is not UID:GID", arg);
    g = strtoul(end + 1, &end, 10);
    if (*end || u > 0xffffffffUL || g > 0xffffffffUL)
        return mdimg_usage_error("--owner: '%s' is not UID:GID", arg);
    attr->uid = (uint32_t)u;
    attr->gid = (uint32_t)g;
    return 0;
}

/* HOSTFILE -> IMG:/PATH; into an existing directory (or PATH ending in '/')
 * under the host file's name.  Negative: a library error; 1: reported here. */
static int cp_in(md_ctx *ctx, const char *host, struct loc *dst, md_attr *attr, int have_mode)
{
    md_ext_stat est = MD_EXT_STAT_INIT;
    md_image *img = NULL;
    md_ext *fs = NULL;
    md_fat *fat = NULL;
    size_t len = strlen(dst->path);
    const char *base = strrchr(host, '/');
    char *dpath = NULL;
    struct stat st;
    int r;

    if (stat(host, &st) < 0) {
        int e = errno; /* mdimg_err() may change errno */
        mdimg_err("%s: %s", host, strerror(e));
        return 1;
    }
    if (!have_mode)
        attr->mode = MD_ATTR_MODE_SET | (st.st_mode & 07777);
    base = base ? base + 1 : host;
    r = open_loc(ctx, dst, 0, &img, &fs, &fat);
    if (fat) {
        md_fat_free(fat);
        md_image_free(img);
        mdimg_err("%s: copying into a FAT filesystem is not supported: make it with its files "
                  "(disk create --fs vfat DIR)", dst->img);
        return 1;
    }
    if (r >= 0 && (dst->path[len - 1] == '/' ||
                   (md_ext_stat_path(fs, dst->path, &est) == 0 && (est.mode & S_IFMT) == S_IFDIR))) {
        dpath = malloc(len + strlen(base) + 2);
        if (!dpath)
            r = -ENOMEM;
        else
            sprintf(dpath, "%s%s%s", dst->path, dst->path[len - 1] == '/' ? "" : "/", base);
    }
    if (r >= 0) {
        md_ctx_clear_error(ctx); /* md_ext_stat_path()'s "no such file" */
        r = md_ext_write_host_file(fs, dpath ? dpath : dst->path, host, attr);
    }
    /* published only when everything worked; a failure drops the copy */
    if (r >= 0) {
        r = md_ext_close(fs);
        if (r >= 0)
            r = md_image_commit(img);
    } else {
        md_ext_free(fs);
    }
    md_image_free(img);
    free(dpath);
    return r;
}

static int cp_out(md_ctx *ctx, struct loc *src, const char *host)
{
    md_image *img = NULL;
    md_ext *fs = NULL;
    md_fat *fat = NULL;
    int r = open_loc(ctx, src, 1, &img, &fs, &fat);

    /* "-": standard output; anything else is written atomically */
    if (r >= 0 && fat)
        r = !strcmp(host, "-") ? md_fat_extract_fd(fat, src->path, STDOUT_FILENO)
                               : md_fat_extract_file(fat, src->path, host);
    else if (r >= 0 && !strcmp(host, "-"))
        r = md_ext_extract_fd(fs, src->path, STDOUT_FILENO);
    else if (r >= 0)
        r = md_ext_extract_file(fs, src->path, host);
    md_fat_free(fat);
    md_ext_free(fs);
    md_image_free(img);
    return r;
}

int cmd_disk_cp(int argc, char **argv)
{
    static const struct option opts[] = {
        { "mode", required_argument, NULL, 'm' },
        { "owner", required_argument, NULL, 'o' },
        MDIMG_COMMON_LONGOPTS,
        MDIMG_WAIT_LONGOPT,
        { NULL, 0, NULL, 0 },
    };
    md_attr attr = MD_ATTR_INIT;
    struct loc src, dst;
    int have_mode = 0, c, r, s_is, d_is, ret = 1;
    md_ctx *ctx = NULL;

    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    while ((c = getopt_long(argc, argv, "m:o:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (parse_mode(optarg, &attr))
                return EXIT_USAGE;
            have_mode = 1;
            break;
        case 'o':
            if (parse_owner(optarg, &attr))
                return EXIT_USAGE;
            break;
        case 'h':
            cp_usage(stdout);
            return 0;
        default:
            if (!mdimg_common_option(c))
                return mdimg_try_help();
        }
    }
    if (optind + 2 != argc)
        return mdimg_usage_error("expected SOURCE and DESTINATION");
    s_is = parse_loc(argv[optind], &src, 0);
    d_is = parse_loc(argv[optind + 1], &dst, 0);
    if (s_is < 0 || d_is < 0)
        mdimg_err("out of memory");
    else if (s_is && d_is)
        ret = mdimg_usage_error("copying between two images is not supported");
    else if (!s_is && !d_is)
        ret = mdimg_usage_error("neither '%s' nor '%s' is IMG[:PART]:/PATH of an existing image",
                                argv[optind], argv[optind + 1]);
    else if (mdimg_ctx_new(&ctx) == 0) {
        r = s_is ? cp_out(ctx, &src, argv[optind + 1])
                 : cp_in(ctx, argv[optind], &dst, &attr, have_mode);
        ret = r < 0 ? mdimg_fail(ctx, r) : r;
    }
    md_ctx_free(ctx);
    free(src.img);
    free(dst.img);
    return ret;
}

/* ---- ls ---------------------------------------------------------------------------------- */

static void ls_usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg disk ls [-l] [--json] IMG[:PART][:/PATH]\n"
            "\n"
            "List a directory (or show one entry) of the ext2/3/4 or FAT filesystem in an\n"
            "image, sorted by name (FAT: long names; --json adds the 8.3 short_name).\n"
            "See 'mdimg disk cp --help' for the IMG[:PART]:/PATH syntax.\n"
            "\n"
            "Options:\n"
            "  -l, --long    mode, links, owner, size, mtime (UTC), name [-> target]\n"
            "      --json    a JSON array of {name,type,mode,nlink,uid,gid,size,mtime,...}\n"
            "      --wait    wait while another program writes IMG (else: an error)\n"
            "  -q, --quiet   print nothing but the listing\n"
            "  -v, --verbose print library debug messages\n"
            "  -h, --help    show this help\n");
}

struct ls_state {
    md_ext *fs;
    md_fat *fat;
    const char *dir;
    int lng, json, n;
    const char *short_name; /* FAT: the entry's 8.3 name */
};

static char type_char(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return 'd';
    case S_IFLNK: return 'l';
    case S_IFCHR: return 'c';
    case S_IFBLK: return 'b';
    case S_IFIFO: return 'p';
    case S_IFSOCK: return 's';
    default: return '-';
    }
}

static const char *type_name(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return "dir";
    case S_IFLNK: return "symlink";
    case S_IFCHR: return "chardev";
    case S_IFBLK: return "blockdev";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    default: return "file";
    }
}

/* Names are untrusted bytes: quoted for JSON, escaped for text output. */
static void put_name(const char *s, uint32_t style)
{
    char *q = NULL;

    if (md_quote(s, style, &q) < 0) {
        fputs(style == MD_QUOTE_JSON ? "null" : "?", stdout);
        return;
    }
    fputs(q, stdout);
    free(q);
}

static int ls_one(void *ud, const char *name, const md_ext_stat *st)
{
    struct ls_state *ls = ud;
    char *target = NULL;

    if ((st->mode & S_IFMT) == S_IFLNK && (ls->lng || ls->json)) {
        char *p = malloc(strlen(ls->dir) + strlen(name) + 2);
        if (p) {
            sprintf(p, "%s/%s", ls->dir, name);
            md_ext_readlink(ls->fs, p, &target);
            free(p);
        }
    }
    if (ls->json) {
        printf("%s\n  {\"name\": ", ls->n ? "," : "");
        put_name(name, MD_QUOTE_JSON);
        printf(", \"type\": \"%s\", \"mode\": \"%04o\", \"nlink\": %u, \"uid\": %u, \"gid\": %u, "
               "\"size\": %" PRIu64 ", \"mtime\": %" PRId64,
               type_name(st->mode), st->mode & 07777, st->nlink, st->uid, st->gid, st->size,
               st->mtime);
        if (target) {
            printf(", \"target\": ");
            put_name(target, MD_QUOTE_JSON);
        }
        if ((st->mode & S_IFMT) == S_IFCHR || (st->mode & S_IFMT) == S_IFBLK)
            printf(", \"major\": %u, \"minor\": %u", st->rmajor, st->rminor);
        if (ls->short_name) {
            printf(", \"short_name\": ");
            put_name(ls->short_name, MD_QUOTE_JSON);
        }
        printf("}");
    } else if (ls->lng) {
        static const char rwx[] = "rwxrwxrwx";
        char perm[11], when[32];
        time_t t = (time_t)st->mtime;
        struct tm tm;
        int i;

        perm[0] = type_char(st->mode);
        for (i = 0; i < 9; i++)
            perm[1 + i] = (st->mode & (0400u >> i)) ? rwx[i] : '-';
        if (st->mode & 04000) perm[3] = (st->mode & 0100) ? 's' : 'S';
        if (st->mode & 02000) perm[6] = (st->mode & 0010) ? 's' : 'S';
        if (st->mode & 01000) perm[9] = (st->mode & 0001) ? 't' : 'T';
        perm[10] = '\0';
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
        if ((st->mode & S_IFMT) == S_IFCHR || (st->mode & S_IFMT) == S_IFBLK)
            printf("%s %3u %5u %5u %4u, %4u %s ", perm, st->nlink, st->uid, st->gid, st->rmajor,
                   st->rminor, when);
        else
            printf("%s %3u %5u %5u %10" PRIu64 " %s ", perm, st->nlink, st->uid, st->gid, st->size,
                   when);
        put_name(name, MD_QUOTE_TEXT);
        if (target) {
            fputs(" -> ", stdout);
            put_name(target, MD_QUOTE_TEXT);
        }
        putchar('\n');
    } else {
        put_name(name, MD_QUOTE_TEXT);
        putchar('\n');
    }
    ls->n++;
    free(target);
    return 0;
}

/* A FAT entry as ls_one() prints entries: no owners, one link. */
static int ls_fat_one(void *ud, const char *name, const md_fat_stat *fst)
{
    struct ls_state *ls = ud;
    md_ext_stat st = MD_EXT_STAT_INIT;
    int r;

    st.mode = fst->mode;
    st.nlink = 1;
    st.size = fst->size;
    st.mtime = fst->mtime;
    ls->short_name = fst->short_name[0] ? fst->short_name : NULL;
    r = ls_one(ls, name, &st);
    ls->short_name = NULL;
    return r;
}

int cmd_disk_ls(int argc, char **argv)
{
    static const struct option opts[] = {
        { "long", no_argument, NULL, 'l' },
        { "json", no_argument, NULL, 'j' },
        MDIMG_COMMON_LONGOPTS,
        MDIMG_WAIT_LONGOPT,
        { NULL, 0, NULL, 0 },
    };
    struct ls_state ls = { NULL, NULL, NULL, 0, 0, 0, NULL };
    md_ext_stat st = MD_EXT_STAT_INIT;
    struct loc l;
    md_ctx *ctx = NULL;
    md_image *img = NULL;
    int c, r, ret = 1;

    memset(&l, 0, sizeof(l));
    while ((c = getopt_long(argc, argv, "ljqvh", opts, NULL)) != -1) {
        switch (c) {
        case 'l': ls.lng = 1; break;
        case 'j': ls.json = 1; break;
        case 'h':
            ls_usage(stdout);
            return 0;
        default:
            if (!mdimg_common_option(c))
                return mdimg_try_help();
        }
    }
    if (optind + 1 != argc)
        return mdimg_usage_error("expected one IMG[:PART]:/PATH argument");
    r = parse_loc(argv[optind], &l, 1);
    if (r < 0) {
        mdimg_err("out of memory");
        return 1;
    }
    if (r == 0) {
        mdimg_err("'%s': not IMG[:PART]:/PATH of an existing image file", argv[optind]);
        return 1;
    }
    if (mdimg_ctx_new(&ctx) < 0)
        goto out;
    r = open_loc(ctx, &l, 1, &img, &ls.fs, &ls.fat);
    if (r >= 0 && ls.fat) {
        md_fat_stat fst = MD_FAT_STAT_INIT;
        r = md_fat_stat_path(ls.fat, l.path, &fst);
        st.mode = fst.mode;
        st.size = fst.size;
        st.mtime = fst.mtime;
        st.nlink = 1;
        if (r >= 0 && (st.mode & S_IFMT) != S_IFDIR)
            ls.short_name = fst.short_name;
    } else if (r >= 0) {
        r = md_ext_stat_path(ls.fs, l.path, &st);
    }
    if (r >= 0) {
        ls.dir = l.path;
        if (ls.json)
            printf("[");
        if ((st.mode & S_IFMT) == S_IFDIR) {
            r = ls.fat ? md_fat_list(ls.fat, l.path, ls_fat_one, &ls) : md_ext_list(ls.fs, l.path, ls_one, &ls);
        } else {
            const char *slash = strrchr(l.path, '/');
            char *dir = strndup(l.path, slash ? (size_t)(slash - l.path) : 0);
            ls.dir = dir ? dir : "";
            ls_one(&ls, slash ? slash + 1 : l.path, &st);
            free(dir);
        }
        if (ls.json)
            printf("%s]\n", ls.n ? "\n" : "");
    }
    if (r < 0) {
        mdimg_fail(ctx, r);
        goto out;
    }
    ret = 0;
out:
    md_fat_free(ls.fat);
    md_ext_free(ls.fs);
    md_image_free(img);
    md_ctx_free(ctx);
    free(l.img);
    return ret;
}
