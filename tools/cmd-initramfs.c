/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg initramfs: trees, spec files and BusyBox -> newc cpio initramfs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mdimg.h"

enum {
    OPT_INIT = 0x100,
    OPT_EPOCH,
    OPT_PROGRESS,
    OPT_THREADS,
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg initramfs -o OUT [options] [DIR|ARCHIVE]... [SOURCE OPTIONS]\n"
            "\n"
            "Build a newc cpio archive (a Linux initramfs) from host directories,\n"
            "archives, gen_init_cpio spec files and a BusyBox binary.  No root needed:\n"
            "owners, modes and device nodes come from the description, not the host.\n"
            "\n"
            "Options:\n"
            "  -o, --output OUT      the archive to write (replaced if it exists; written\n"
            "                        to a temporary file and renamed only on success);\n"
            "                        '-' writes to standard output\n"
            "  -c, --compress NAME   none (default), gzip, xz, zstd or lz4, in the variants\n"
            "                        the kernel reads (xz with CRC32, lz4 legacy frames)\n"
            "  -l, --level N         compression level (gzip 1-9, xz 0-9, zstd 1-22,\n"
            "                        lz4 1-12; default 6, 6, 3, 9)\n"
            "      --threads N       compression threads, 1-256 (default or 0: one per\n"
            "                        online CPU); the output is the same for any N\n"
            "      --init FILE       use FILE as /init (mode 0755), added last\n"
            "      --epoch SECONDS   timestamp for entries (default: $SOURCE_DATE_EPOCH or 0)\n"
            "      --progress        show progress also when stderr is not a terminal\n"
            "  -q, --quiet           print nothing on success\n"
            "  -v, --verbose         print library debug messages\n"
            "  -h, --help            show this help\n"
            "%s"
            "\n"
            "Exit status: 0 ok, 1 failure (nothing written), 2 usage error.\n",
            mdimg_sources_help);
}

struct initramfs {
    const char *out, *init, *compress;
    struct mdimg_sources src;
    int have_epoch, have_level, progress;
    unsigned long epoch, level, threads;
};

static int parse(struct initramfs *a, int argc, char **argv)
{
    static const struct option opts[] = {
        { "output", required_argument, NULL, 'o' },
        { "compress", required_argument, NULL, 'c' },
        { "level", required_argument, NULL, 'l' },
        { "init", required_argument, NULL, OPT_INIT },
        { "epoch", required_argument, NULL, OPT_EPOCH },
        { "progress", no_argument, NULL, OPT_PROGRESS },
        { "threads", required_argument, NULL, OPT_THREADS },
        MDIMG_SOURCE_LONGOPTS,
        MDIMG_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    int c;

    /* leading '-': keep DIRs and --spec in command-line order */
    while ((c = getopt_long(argc, argv, "-o:c:l:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 1: mdimg_sources_push(&a->src, MD_SOURCE_AUTO, optarg); break;
        case 'o': a->out = optarg; break;
        case 'c': a->compress = optarg; break;
        case 'l':
            if (mdimg_parse_uint("--level", optarg, 100, &a->level) < 0)
                return EXIT_USAGE;
            a->have_level = 1;
            break;
        case OPT_INIT: a->init = optarg; break;
        case OPT_PROGRESS: a->progress = 1; break;
        case OPT_EPOCH:
            if (mdimg_parse_uint("--epoch", optarg, 0xffffffffUL, &a->epoch) < 0)
                return EXIT_USAGE;
            a->have_epoch = 1;
            break;
        case OPT_THREADS:
            if (mdimg_parse_uint("--threads", optarg, 256, &a->threads) < 0)
                return EXIT_USAGE;
            break;
        case 'h': usage(stdout); return -1;
        default:
            if (!mdimg_common_option(c) && !mdimg_sources_option(&a->src, c, optarg))
                return mdimg_try_help();
        }
    }
    if (!a->out)
        return mdimg_usage_error("missing -o OUT");
    if (mdimg_sources_empty(&a->src) && !a->init)
        return mdimg_usage_error("nothing to archive: give DIRs, archives, --spec, --busybox or --init");
    return 0;
}

/* The options that are bad input rather than bad syntax (exit 1), then the tree. */
static int fill(struct initramfs *a, md_ctx *ctx, md_tree *tree, md_cpio_opts *copts)
{
    int r;

    if (a->compress && (r = md_compress_from_name(ctx, a->compress, &copts->compression)) < 0)
        return r;
    if (a->have_level)
        copts->level = (int32_t)a->level;
    copts->threads = (uint32_t)a->threads;
    if (a->have_epoch && (r = md_ctx_set_epoch(ctx, (int64_t)a->epoch)) < 0)
        return r;
    r = mdimg_sources_add(&a->src, tree);
    if (r >= 0 && a->init) {
        md_attr attr = MD_ATTR_INIT;
        attr.mode = 0755;
        r = md_tree_add_file(tree, "init", a->init, &attr);
    }
    return r;
}

static int write_out(struct initramfs *a, md_ctx *ctx, md_tree *tree, md_cpio_opts *copts)
{
    struct mdimg_progress pr;
    struct stat st;
    int r;

    mdimg_progress_init(&pr, "initramfs", MDIMG_PROGRESS_BYTES, a->progress);
    copts->progress = mdimg_progress_cb;
    copts->userdata = &pr;

    if (strcmp(a->out, "-") == 0) {
        if (isatty(STDOUT_FILENO)) {
            mdimg_err("refusing to write an archive to a terminal");
            return 1;
        }
        r = md_cpio_write_fd(tree, STDOUT_FILENO, copts);
    } else {
        r = md_cpio_write(tree, a->out, copts);
    }
    mdimg_progress_done(&pr);
    if (r < 0)
        return mdimg_fail(ctx, r);
    if (strcmp(a->out, "-") != 0 && stat(a->out, &st) == 0)
        mdimg_info("wrote %s: %zu entries, %lld bytes (%s)\n", a->out, md_tree_count(tree),
                   (long long)st.st_size, md_compress_name(copts->compression));
    return 0;
}

int cmd_initramfs(int argc, char **argv)
{
    md_cpio_opts copts = MD_CPIO_OPTS_INIT;
    struct initramfs a;
    md_ctx *ctx = NULL;
    md_tree *tree = NULL;
    int r, ret;

    memset(&a, 0, sizeof(a));
    if (mdimg_sources_init(&a.src, argc) < 0)
        return 1;
    ret = parse(&a, argc, argv);
    if (ret != 0)
        goto out;
    ret = 1;
    if (mdimg_ctx_new(&ctx) < 0)
        goto out;
    r = md_tree_new(ctx, &tree);
    if (r >= 0)
        r = fill(&a, ctx, tree, &copts);
    ret = r < 0 ? mdimg_fail(ctx, r) : write_out(&a, ctx, tree, &copts);
out:
    md_tree_free(tree);
    md_ctx_free(ctx);
    mdimg_sources_free(&a.src);
    return ret < 0 ? 0 : ret;
}
