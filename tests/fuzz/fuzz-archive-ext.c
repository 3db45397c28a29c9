/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Archive -> tree -> ext4: the input, written to a file, is read with
 * md_tree_add_archive() (any format libarchive reads) into the tree of an
 * md_disk holding one 16 MiB ext4 filesystem on the whole image, and
 * md_disk_write() builds it.  Every image it says it built must be one that
 * libext2fs opens and lists, with one entry per tree entry (plus
 * lost+found); MD_FUZZ_E2FSCK=1 adds e2fsck -fn (fuzz-ext-walk.h). */
#include "fuzz-ext-walk.h"

#define FUZZ_IMAGE_SIZE (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    md_disk_write_opts wo = MD_DISK_WRITE_OPTS_INIT;
    md_table_opts to = MD_TABLE_OPTS_INIT;
    const char *in = fuzz_path(0, "in.archive"), *img = fuzz_path(1, "ext.img");
    md_ctx *ctx = fuzz_ctx();
    md_disk *disk = NULL;
    md_tree *tree = NULL;
    size_t want, got;
    int r;

    fuzz_write_file(in, data, size);
    to.type = MD_TABLE_NONE;
    if (md_disk_new(ctx, &disk) < 0 || md_disk_set_size(disk, FUZZ_IMAGE_SIZE) < 0 ||
        md_disk_set_table(disk, &to) < 0 || md_disk_add_ext(disk, 0, NULL, &tree) < 0)
        abort();
    r = md_tree_add_archive(tree, in);
    if (r < 0) {
        fuzz_assert(*md_ctx_errmsg(ctx), "md_tree_add_archive: error %d without a message", r);
        goto out;
    }
    wo.flags = MD_DISK_FORCE;
    r = md_disk_write(disk, img, &wo);
    if (r < 0) {
        fuzz_assert(*md_ctx_errmsg(ctx), "md_disk_write: error %d without a message", r);
        goto out;
    }
    want = md_tree_count(tree) + (md_tree_contains(tree, "lost+found") == 1 ? 0 : 1);
    got = fuzz_ext_walk(img, 0);
    fuzz_assert(got == want, "%zu entries in the tree (with lost+found), %zu in the filesystem",
                want, got);
    fuzz_e2fsck(img, 0);
out:
    md_disk_free(disk);
    md_ctx_free(ctx);
    unlink(img);
    return 0;
}
