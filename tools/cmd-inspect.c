/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg inspect: partition table and filesystems of an image (libblkid). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mdimg.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg inspect IMG [--json]\n"
            "\n"
            "Show the partition table of a raw disk image (type, disk id, partitions with\n"
            "start, size, type, bootable flag, GPT name and GUID) and the filesystem found\n"
            "in each partition (or on the whole image): type, label, UUID.  The image is\n"
            "opened read-only.\n"
            "\n"
            "Options:\n"
            "  -j, --json      print a JSON object instead (sizes and offsets in bytes)\n"
            "      --wait      wait while another program writes IMG (else: an error)\n"
            "  -q, --quiet     print only errors and the report\n"
            "  -v, --verbose   print library debug messages\n"
            "  -h, --help      show this help\n"
            "\n"
            "Exit status: 0 ok, 1 failure, 2 usage error.\n");
}

static const char *human(uint64_t v, char *buf, size_t n)
{
    static const char units[] = "KMGTP";
    double d = (double)v;
    int u = -1;

    if (v < 1024) {
        snprintf(buf, n, "%" PRIu64 "B", v);
        return buf;
    }
    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    snprintf(buf, n, d == (double)(uint64_t)d ? "%.0f%c" : "%.1f%c", d, units[u]);
    return buf;
}

/* "-" for none; names and labels are untrusted bytes, escaped for the terminal */
static const char *nz(const char *s, char *buf, size_t n)
{
    char *q = NULL;

    if (!s)
        return "-";
    if (md_quote(s, MD_QUOTE_TEXT, &q) < 0)
        return "?";
    snprintf(buf, n, "%s", q);
    free(q);
    return buf;
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        MDIMG_COMMON_LONGOPTS,
        MDIMG_WAIT_LONGOPT,
        { NULL, 0, NULL, 0 },
    };
    const char *path;
    md_ctx *ctx = NULL;
    md_image *img = NULL;
    md_probe *pr = NULL;
    int json = 0, c, r, ret = 1;
    uint32_t i, n;

    while ((c = getopt_long(argc, argv, "jqvh", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default:
            if (!mdimg_common_option(c))
                return mdimg_try_help();
        }
    }
    if (optind >= argc)
        return mdimg_usage_error("missing IMG");
    if (optind + 1 < argc)
        return mdimg_usage_error("unexpected argument '%s'", argv[optind + 1]);
    path = argv[optind];

    if (mdimg_ctx_new(&ctx) < 0)
        return 1;
    r = mdimg_image_open(ctx, path, 1, &img);
    if (r < 0)
        goto fail;
    r = md_image_probe(img, &pr);
    if (r < 0)
        goto fail;
    if (json) {
        char *s = NULL;
        r = md_probe_to_json(pr, &s);
        if (r < 0)
            goto fail;
        fputs(s, stdout);
        free(s);
    } else {
        uint64_t alloc = 0;
        char a[32], b[32], s1[256], s2[256], s3[256], s4[256];

        md_image_usage(img, NULL, &alloc);
        printf("%s: %s (%" PRIu64 " bytes), %s allocated\n", nz(path, s1, sizeof(s1)),
               human(md_image_size(img), a, sizeof(a)),
               md_image_size(img), human(alloc, b, sizeof(b)));
        if (md_probe_table(pr)) {
            printf("table: %s, id %s\n", md_probe_table(pr), nz(md_probe_table_id(pr), s1, sizeof(s1)));
        } else {
            printf("table: none\n");
        }
        if (md_probe_fs_type(pr, 0))
            printf("filesystem: %s, label %s, uuid %s\n", nz(md_probe_fs_type(pr, 0), s1, sizeof(s1)),
                   nz(md_probe_fs_label(pr, 0), s2, sizeof(s2)), nz(md_probe_fs_uuid(pr, 0), s3, sizeof(s3)));
        n = md_probe_count(pr);
        if (n) {
            printf("\n%-3s %-4s %12s %12s %7s  %-18s %-10s %-8s %-16s %s\n", "#", "boot", "start", "sectors",
                   "size", "type", "name", "fs", "label", "fs uuid");
            for (i = 1; i <= n; i++) {
                const char *tn = md_probe_type_name(pr, i);
                printf("%-3u %-4s %12" PRIu64 " %12" PRIu64 " %7s  %-18s %-10s %-8s %-16s %s\n",
                       md_probe_number(pr, i), md_probe_flags(pr, i) & MD_PART_BOOTABLE ? "*" : "",
                       md_probe_start(pr, i) / 512, md_probe_size(pr, i) / 512,
                       human(md_probe_size(pr, i), a, sizeof(a)), tn ? tn : nz(md_probe_type(pr, i), b, sizeof(b)),
                       nz(md_probe_name(pr, i), s1, sizeof(s1)), nz(md_probe_fs_type(pr, i), s2, sizeof(s2)),
                       nz(md_probe_fs_label(pr, i), s3, sizeof(s3)), nz(md_probe_fs_uuid(pr, i), s4, sizeof(s4)));
            }
        }
    }
    ret = 0;
    goto out;
fail:
    ret = mdimg_fail(ctx, r);
out:
    md_probe_free(pr);
    md_image_free(img);
    md_ctx_free(ctx);
    return ret;
}
