/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg initramfs: trees, spec files and BusyBox -> newc cpio initramfs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mdimg.h"

enum {
    OPT_SPEC = 0x100,
    OPT_BUSYBOX,
    OPT_INIT,
    OPT_PREFIX,
    OPT_KEEP_OWNER,
    OPT_KEEP_MTIME,
    OPT_NO_HARDLINKS,
    OPT_EPOCH,
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg initramfs -o OUT [options] [DIR]...\n"
            "\n"
            "Build a newc cpio archive (a Linux initramfs) from host directories,\n"
            "gen_init_cpio spec files and a BusyBox binary.  No root needed: owners,\n"
            "modes and device nodes come from the description, not the host.\n"
            "\n"
            "Sources are added in this order, later ones replacing earlier entries:\n"
            "--busybox first, then DIRs and --spec files in command-line order, and\n"
            "--init last.\n"
            "\n"
            "Options:\n"
            "  -o, --output OUT      the archive to write (replaced if it exists; written\n"
            "                        to a temporary file and renamed only on success);\n"
            "                        '-' writes to standard output\n"
            "  -c, --compress NAME   none (default), gzip, xz, zstd or lz4, in the variants\n"
            "                        the kernel reads (xz with CRC32, lz4 legacy frames)\n"
            "  -l, --level N         compression level (gzip 1-9, xz 0-9, zstd 1-22,\n"
            "                        lz4 1-12; default 6, 6, 3, 9)\n"
            "      --spec FILE       add the entries of a gen_init_cpio spec file\n"
            "                        (relative locations: from the spec's directory)\n"
            "      --busybox PATH    add a BusyBox system from a static busybox binary\n"
            "      --init FILE       use FILE as /init (mode 0755)\n"
            "      --prefix DIR      put the contents of each DIR under DIR in the archive\n"
            "      --keep-owner      keep the host owners of DIR files (default: 0:0)\n"
            "      --keep-mtime      keep host mtimes, clamped to the epoch (default: epoch)\n"
            "      --no-hardlinks    store hard-linked host files as separate copies\n"
            "      --epoch SECONDS   timestamp for entries (default: $SOURCE_DATE_EPOCH or 0)\n"
            "  -q, --quiet           print nothing on success\n"
            "  -v, --verbose         print library debug messages\n"
            "  -h, --help            show this help\n"
            "\n"
            "Exit status: 0 ok, 1 failure (nothing written), 2 usage error.\n");
}

struct source {
    int kind; /* 'd' directory, 's' spec */
    const char *path;
};

int cmd_initramfs(int argc, char **argv)
{
    static const struct option opts[] = {
        { "output", required_argument, NULL, 'o' },
        { "compress", required_argument, NULL, 'c' },
        { "level", required_argument, NULL, 'l' },
        { "spec", required_argument, NULL, OPT_SPEC },
        { "busybox", required_argument, NULL, OPT_BUSYBOX },
        { "init", required_argument, NULL, OPT_INIT },
        { "prefix", required_argument, NULL, OPT_PREFIX },
        { "keep-owner", no_argument, NULL, OPT_KEEP_OWNER },
        { "keep-mtime", no_argument, NULL, OPT_KEEP_MTIME },
        { "no-hardlinks", no_argument, NULL, OPT_NO_HARDLINKS },
        { "epoch", required_argument, NULL, OPT_EPOCH },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    md_cpio_opts copts = MD_CPIO_OPTS_INIT;
    md_host_opts hopts = MD_HOST_OPTS_INIT;
    const char *out = NULL, *busybox = NULL, *init = NULL, *compress = NULL;
    struct source *src;
    size_t n_src = 0, i;
    int have_epoch = 0, have_level = 0;
    unsigned long epoch = 0, level = 0;
    md_ctx *ctx = NULL;
    md_tree *tree = NULL;
    struct stat st;
    int c, r;

    src = calloc((size_t)argc, sizeof(*src));
    if (!src) {
        mdimg_err("out of memory");
        return 1;
    }
    /* leading '-': keep DIRs and --spec in command-line order */
    while ((c = getopt_long(argc, argv, "-o:c:l:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            src[n_src].kind = 'd';
            src[n_src++].path = optarg;
            break;
        case OPT_SPEC:
            src[n_src].kind = 's';
            src[n_src++].path = optarg;
            break;
        case 'o': out = optarg; break;
        case 'c': compress = optarg; break;
        case 'l':
            if (mdimg_parse_uint("--level", optarg, 100, &level) < 0)
                goto usage_fail;
            have_level = 1;
            break;
        case OPT_BUSYBOX: busybox = optarg; break;
        case OPT_INIT: init = optarg; break;
        case OPT_PREFIX: hopts.prefix = optarg; break;
        case OPT_KEEP_OWNER: hopts.flags |= MD_HOST_KEEP_OWNER; break;
        case OPT_KEEP_MTIME: hopts.flags |= MD_HOST_KEEP_MTIME; break;
        case OPT_NO_HARDLINKS: hopts.flags |= MD_HOST_NO_HARDLINKS; break;
        case OPT_EPOCH:
            if (mdimg_parse_uint("--epoch", optarg, 0xffffffffUL, &epoch) < 0)
                goto usage_fail;
            have_epoch = 1;
            break;
        case 'q': mdimg_verbose = -1; break;
        case 'v': mdimg_verbose = 1; break;
        case 'h':
            usage(stdout);
            free(src);
            return 0;
        default:
            usage(stderr);
            goto usage_fail;
        }
    }
    if (!out) {
        mdimg_usage_error("missing -o OUT");
        goto usage_fail;
    }
    if (n_src == 0 && !busybox && !init) {
        mdimg_usage_error("nothing to archive: give DIRs, --spec, --busybox or --init");
        goto usage_fail;
    }

    if (mdimg_ctx_new(&ctx) < 0) {
        free(src);
        return 1;
    }
    /* An unknown method or a bad level is bad input, not bad syntax: exit 1. */
    if (compress) {
        r = md_compress_from_name(ctx, compress, &copts.compression);
        if (r < 0)
            goto fail;
    }
    if (have_level)
        copts.level = (int32_t)level;
    if (have_epoch) {
        r = md_ctx_set_epoch(ctx, (int64_t)epoch);
        if (r < 0)
            goto fail;
    }
    r = md_tree_new(ctx, &tree);
    if (r < 0)
        goto fail;

    if (busybox) {
        md_busybox_opts bopts = MD_BUSYBOX_OPTS_INIT;
        r = md_tree_add_busybox(tree, busybox, &bopts);
        if (r < 0)
            goto fail;
    }
    for (i = 0; i < n_src; i++) {
        /* md_tree_add_host() names a missing DIR or a non-directory itself */
        if (src[i].kind == 's')
            r = md_tree_add_spec(tree, src[i].path, NULL);
        else
            r = md_tree_add_host(tree, src[i].path, &hopts);
        if (r < 0)
            goto fail;
    }
    if (init) {
        md_attr attr = MD_ATTR_INIT;
        attr.mode = 0755;
        r = md_tree_add_file(tree, "init", init, &attr);
        if (r < 0)
            goto fail;
    }

    if (strcmp(out, "-") == 0) {
        if (isatty(STDOUT_FILENO)) {
            mdimg_err("refusing to write an archive to a terminal");
            r = -EINVAL;
            goto fail_quiet;
        }
        r = md_cpio_write_fd(tree, STDOUT_FILENO, &copts);
        if (r < 0)
            goto fail;
    } else {
        r = md_cpio_write(tree, out, &copts);
        if (r < 0)
            goto fail;
    }
    if (strcmp(out, "-") != 0 && stat(out, &st) == 0)
        mdimg_info("wrote %s: %zu entries, %lld bytes (%s)\n", out, md_tree_count(tree),
                   (long long)st.st_size, md_compress_name(copts.compression));
    md_tree_free(tree);
    md_ctx_free(ctx);
    free(src);
    return 0;

fail:
    mdimg_fail(ctx, r);
fail_quiet:
    md_tree_free(tree);
    md_ctx_free(ctx);
    free(src);
    return 1;
usage_fail:
    free(src);
    return EXIT_USAGE;
}
