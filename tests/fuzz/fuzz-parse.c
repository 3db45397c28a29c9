/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The small parsers of user input: md_parse_size(), md_table_from_name(),
 * md_fs_type_from_name(), md_compress_from_name() on the whole input, then
 * line by line a partition table: the first line a table name, the others
 * (up to 8) partition specs for md_disk_add_partition_spec().  When every
 * line is accepted the table is written to an 8 MiB image (md_disk_write),
 * and libblkid, through md_image_probe(), must see as many partitions as
 * were described, inside the image. */
#include "fuzz-util.h"

#define FUZZ_IMAGE_SIZE (8u << 20)
#define FUZZ_MAX_PARTS 8

static void check_image(md_ctx *ctx, const char *path, uint32_t table, uint32_t nparts)
{
    md_image *img = NULL;
    md_probe *probe = NULL;
    char *json = NULL;
    uint32_t i;
    int r;

    r = md_image_open(ctx, path, MD_IMAGE_RDONLY, &img);
    fuzz_assert(r == 0, "md_image_open of a written image: %d %s", r, md_ctx_errmsg(ctx));
    r = md_image_probe(img, &probe);
    fuzz_assert(r == 0, "md_image_probe: %d %s", r, md_ctx_errmsg(ctx));
    fuzz_assert(md_probe_count(probe) == nparts, "%u partitions written, %u probed (table %s)",
                nparts, md_probe_count(probe), md_table_name(table));
    for (i = 1; i <= nparts; i++) {
        uint64_t off = 0, len = 0;
        r = md_image_partition_range(img, i, &off, &len);
        fuzz_assert(r == 0, "partition %u: %d %s", i, r, md_ctx_errmsg(ctx));
        fuzz_assert(len > 0 && off + len <= FUZZ_IMAGE_SIZE, "partition %u at %llu+%llu", i,
                    (unsigned long long)off, (unsigned long long)len);
    }
    r = md_probe_to_json(probe, &json);
    fuzz_assert(r == 0, "md_probe_to_json: %d", r);
    free(json);
    md_probe_free(probe);
    md_image_free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    md_disk_write_opts wo = MD_DISK_WRITE_OPTS_INIT;
    md_table_opts to = MD_TABLE_OPTS_INIT;
    md_ctx *ctx = fuzz_ctx();
    md_disk *disk = NULL;
    char *s = fuzz_strndup(data, size), *line, *next;
    uint64_t u64;
    uint32_t u32, nparts = 0;
    int32_t i32;
    int ok = 1, r;

    (void)md_parse_size(s, &u64);
    (void)md_table_from_name(ctx, s, &u32);
    (void)md_table_from_name(NULL, s, &u32);
    (void)md_fs_type_from_name(ctx, s, &i32);
    (void)md_compress_from_name(ctx, s, &i32);

    if (md_disk_new(ctx, &disk) < 0 || md_disk_set_size(disk, FUZZ_IMAGE_SIZE) < 0)
        abort();
    next = strchr(s, '\n');
    if (next)
        *next++ = '\0';
    if (md_table_from_name(ctx, s, &to.type) < 0)
        goto out;
    to.flags = MD_TABLE_SEED;
    to.seed = 1;
    if (md_disk_set_table(disk, &to) < 0)
        goto out;
    for (line = next; line && nparts < FUZZ_MAX_PARTS; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        r = md_disk_add_partition_spec(disk, line);
        if (r < 0) {
            fuzz_assert(*md_ctx_errmsg(ctx), "spec '%s': error %d without a message", line, r);
            ok = 0;
            continue;
        }
        nparts++;
    }
    if (!ok || nparts == 0 || to.type == MD_TABLE_NONE)
        goto out;
    wo.flags = MD_DISK_FORCE;
    r = md_disk_write(disk, fuzz_path(0, "parts.img"), &wo);
    if (r == 0)
        check_image(ctx, fuzz_path(0, "parts.img"), to.type, nparts);
    else
        fuzz_assert(*md_ctx_errmsg(ctx), "md_disk_write: error %d without a message", r);
out:
    md_disk_free(disk);
    md_ctx_free(ctx);
    free(s);
    return 0;
}
