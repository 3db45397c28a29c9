/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cpio archive input and the cpio writer: the input (seeded with newc
 * archives, the format of every initramfs) is read with
 * md_tree_add_archive(); a tree it accepted is written back with
 * md_cpio_write(), compressed as the input's size modulo 5 picks (none,
 * gzip, xz, zstd, lz4), and that archive must read back, with libarchive
 * directly and with md_tree_add_archive(), as the same number of entries.
 * Only archive contents are written (they are in memory): no host file is
 * read. */
#include <archive.h>
#include <archive_entry.h>

#include "fuzz-util.h"

/* Entries of newc archive @path as libarchive lists them, without ".". */
static size_t count_newc(const char *path)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    size_t n = 0;
    int r;

    if (!a)
        abort();
    archive_read_support_format_cpio(a);
    archive_read_support_filter_all(a);
    r = archive_read_open_filename(a, path, 65536);
    fuzz_assert(r == ARCHIVE_OK, "libarchive cannot open what md_cpio_write wrote: %s",
                archive_error_string(a));
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        fuzz_assert(archive_format(a) == ARCHIVE_FORMAT_CPIO_SVR4_NOCRC,
                    "md_cpio_write wrote format 0x%x, not newc", archive_format(a));
        if (strcmp(archive_entry_pathname(e), ".") != 0)
            n++;
    }
    fuzz_assert(r == ARCHIVE_EOF, "libarchive cannot read what md_cpio_write wrote: %s",
                archive_error_string(a));
    archive_read_free(a);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = fuzz_path(0, "in.cpio"), *out = fuzz_path(1, "out.cpio");
    md_cpio_opts co = MD_CPIO_OPTS_INIT;
    md_ctx *ctx = fuzz_ctx();
    md_tree *tree = NULL, *back = NULL;
    size_t n;
    int r;

    fuzz_write_file(in, data, size);
    co.compression = (int32_t)(size % 5); /* MD_COMPRESS_NONE .. MD_COMPRESS_LZ4 */
    co.level = co.compression == MD_COMPRESS_XZ ? 0 : MD_COMPRESS_LEVEL_DEFAULT;
    if (md_tree_new(ctx, &tree) < 0 || md_tree_new(ctx, &back) < 0)
        abort();
    r = md_tree_add_archive(tree, in);
    if (r < 0) {
        fuzz_assert(*md_ctx_errmsg(ctx), "md_tree_add_archive: error %d without a message", r);
        goto out;
    }
    r = md_cpio_write(tree, out, &co);
    if (r < 0) {
        fuzz_assert(*md_ctx_errmsg(ctx), "md_cpio_write: error %d without a message", r);
        goto out;
    }
    n = count_newc(out);
    fuzz_assert(n == md_tree_count(tree), "%zu entries in the tree, %zu in the archive written",
                md_tree_count(tree), n);
    r = md_tree_add_archive(back, out);
    fuzz_assert(r == 0, "md_tree_add_archive of what md_cpio_write wrote: %d %s", r,
                md_ctx_errmsg(ctx));
    fuzz_assert(md_tree_count(back) == md_tree_count(tree), "%zu entries written, %zu read back",
                md_tree_count(tree), md_tree_count(back));
out:
    md_tree_free(back);
    md_tree_free(tree);
    md_ctx_free(ctx);
    unlink(out);
    return 0;
}
