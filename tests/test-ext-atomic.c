/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Failures that come after a change could have begun leave the old state
 * (suite robustness; issue 11 items 7 and 17).  The images are changed in
 * place (no MD_IMAGE_ATOMIC copy, which would hide the filesystem's own
 * behaviour the way the CLI's copies do), and judged by e2fsck -fn, by
 * their bytes (sha256sum) and by reading the files back:
 *  - a host file that shrinks while md_ext_populate() copies it over an
 *    existing file (truncated from the progress callback, after its first
 *    MiB was written), on ext4 (extents) and ext2 (block map): -ESTALE
 *    naming it, the old file's contents intact, no block or inode left in
 *    use (e2fsck -fn clean).  The old file was once unlinked first; then the
 *    shrunk file was written with zeros for a tail (SEEK_DATA finds no data
 *    past the new end: a success), and the extent file's written blocks,
 *    not yet in any extent, stayed marked in use after the failure;
 *  - an xattr of 2,000 bytes for a 1 KiB-block filesystem, a file over a
 *    directory (with an entry sorted before it, which was written before
 *    the refusal), a journal of 1 block for md_ext_format() over an existing
 *    filesystem: refused before the first write, the image byte for byte
 *    unchanged;
 *  - item 17: replacing a file where both copies do not fit, by
 *    md_ext_write_file() (`disk cp`) and md_ext_populate(): -ENOSPC saying
 *    both copies must fit, the image unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "md-ext-internal.h"
#include "test-util.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-ext-atomic.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    md_test_rmtree(tmpdir);
    return 0;
}

static char *tpath(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
    return buf[i];
}

static md_ctx *new_ctx(void)
{
    md_ctx *ctx;
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_set_epoch(ctx, 1700000000), 0);
    return ctx;
}

/* An image of @size bytes holding a fresh ext4 (blocks of @bs bytes) with
 * /etc/old ("old contents\n") and @extra, opened in place. */
static md_image *make_fs_type(md_ctx *ctx, const char *name, uint64_t size, int32_t type,
                              uint32_t bs, const char *extra, size_t extra_size)
{
    md_image_create_opts co = MD_IMAGE_CREATE_OPTS_INIT;
    md_ext_format_opts fo = MD_EXT_FORMAT_OPTS_INIT;
    md_image *img;
    md_tree *t;
    md_ext *fs;

    co.flags = MD_IMAGE_FORCE;
    assert_int_equal(md_image_create(ctx, tpath(name), size, &co, &img), 0);
    assert_int_equal(md_image_commit(img), 0);
    fo.fs_type = type;
    fo.block_size = bs;
    assert_int_equal(md_ext_format(img, 0, &fo, &fs), 0);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "etc/old", "old contents\n", 13, NULL), 0);
    if (extra)
        assert_int_equal(md_tree_add_data(t, "big", extra, extra_size, NULL), 0);
    assert_int_equal(md_ext_populate(fs, t, NULL), 0);
    assert_int_equal(md_ext_close(fs), 0);
    md_tree_free(t);
    return img;
}

static md_image *make_fs(md_ctx *ctx, const char *name, uint64_t size, uint32_t bs,
                         const char *extra, size_t extra_size)
{
    return make_fs_type(ctx, name, size, MD_EXT4, bs, extra, extra_size);
}

static char *sum(const char *path)
{
    return md_test_capture("sha256sum < '%s'", path);
}

static void fsck_clean(const char *path)
{
    if (md_test_run("e2fsck -fn '%s' >'%s' 2>&1", path, tpath("fsck.log")) != 0) {
        md_test_run("cat '%s' >&2", tpath("fsck.log"));
        fail_msg("e2fsck -fn %s finds errors", path);
    }
}

/* /etc/old still holds "old contents\n" */
static void old_intact(md_image *img)
{
    md_ext *fs;
    void *data;
    size_t n;

    assert_int_equal(md_ext_open(img, 0, MD_EXT_RDONLY, &fs), 0);
    assert_int_equal(md_ext_read_file(fs, "/etc/old", &data, &n), 0);
    assert_int_equal(n, 13);
    assert_memory_equal(data, "old contents\n", 13);
    free(data);
    md_ext_free(fs);
}

/* After a refused populate: close @fs (flushing what it holds), the image
 * e2fsck-clean with /etc/old intact; frees @t, @img and @ctx. */
static void close_and_check(md_ext *fs, md_image *img, md_tree *t, md_ctx *ctx)
{
    assert_int_equal(md_ext_close(fs), 0);
    fsck_clean(md_image_path(img));
    old_intact(img);
    md_tree_free(t);
    md_image_free(img);
    md_ctx_free(ctx);
}

/* ---- a host file shrinking during the copy over an existing file ----------------------- */

struct shrink {
    const char *path;
    int calls;
};

static int shrink_cb(void *ud, uint64_t done, uint64_t total)
{
    struct shrink *s = ud;

    (void)total;
    if (s->calls++ == 0 && done > 0)
        assert_int_equal(truncate(s->path, 100), 0);
    return 0;
}

static void shrink_during_replace(int32_t type, uint32_t bs)
{
    md_ext_populate_opts po = MD_EXT_POPULATE_OPTS_INIT;
    struct shrink s = { NULL, 0 };
    const char *host = tpath("grows-then-shrinks");
    md_image *img;
    md_ctx *ctx;
    md_tree *t;
    md_ext *fs;
    char *buf;
    FILE *f;

    ctx = new_ctx();
    img = make_fs_type(ctx, "shrink.img", 32 << 20, type, bs, NULL, 0);
    /* 16 MiB: more than the read-ahead ring holds (32 x 128 KiB), so the
     * truncation at the first progress call lands before the file is read
     * to its end, whatever the threads' timing */
    buf = malloc(16 << 20);
    assert_non_null(buf);
    memset(buf, 'n', 16 << 20);
    f = fopen(host, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, 16 << 20, f), 16 << 20);
    fclose(f);
    free(buf);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_file(t, "etc/old", host, NULL), 0);
    s.path = host;
    po.progress = shrink_cb;
    po.userdata = &s;
    assert_int_equal(md_ext_open(img, 0, 0, &fs), 0);
    assert_int_equal(md_ext_populate(fs, t, &po), -ESTALE);
    assert_true(s.calls >= 1);
    if (!strstr(md_ctx_errmsg(ctx), "grows-then-shrinks"))
        fail_msg("the message does not name the file: %s", md_ctx_errmsg(ctx));
    close_and_check(fs, img, t, ctx);
}

static void test_shrink_during_replace(void **state)
{
    (void)state;
    md_test_need_tool("e2fsck", "e2fsprogs");
    shrink_during_replace(MD_EXT4, 4096); /* extents: blocks held in memory until the end */
    shrink_during_replace(MD_EXT2, 1024); /* block map: blocks in the inode as they come */
}

/* ---- no room for an extent leaf ----------------------------------------------------------- */

/* Six one-block pieces of data between holes need six extents, more than
 * the inode holds: the fifth insertion splits the tree into a leaf block.
 * With exactly the data blocks free, the space check, which counts that
 * leaf, refuses the file before anything is written: -ENOSPC, no block
 * taken.  (Were the check to miss it, the leaf's allocation would fail after
 * the data was written; fmaps_commit() then frees the blocks not yet in an
 * extent, and the inode's release the rest.) */
static void test_no_room_for_a_leaf(void **state)
{
    const size_t span = 64 << 10;
    md_image *img;
    md_ctx *ctx;
    md_tree *t;
    md_ext *fs;
    blk64_t before, after;
    char *islands;
    size_t i;
    (void)state;

    md_test_need_tool("e2fsck", "e2fsprogs");
    ctx = new_ctx();
    img = make_fs(ctx, "leaf.img", 8 << 20, 1024, NULL, 0);
    islands = calloc(1, 5 * span + 1024);
    assert_non_null(islands);
    for (i = 0; i < 6; i++)
        memset(islands + i * span, 'i', 1024);
    assert_int_equal(md_ext_open(img, 0, 0, &fs), 0);
    before = ext2fs_free_blocks_count(fs->fs->super);
    /* a file that leaves exactly six blocks free, populated first */
    {
        md_tree *fill;
        size_t n = (size_t)(before - 6) * 1024;
        char *buf = malloc(n);
        assert_non_null(buf);
        memset(buf, 'f', n);
        assert_int_equal(md_tree_new(ctx, &fill), 0);
        assert_int_equal(md_tree_add_data(fill, "fill", buf, n, NULL), 0);
        free(buf);
        assert_int_equal(md_ext_populate(fs, fill, NULL), 0);
        md_tree_free(fill);
    }
    before = ext2fs_free_blocks_count(fs->fs->super);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "islands", islands, 5 * span + 1024, NULL), 0);
    free(islands);
    assert_int_equal(md_ext_populate(fs, t, NULL), -ENOSPC);
    /* the space check counts the leaf: refused before the first write */
    assert_non_null(strstr(md_ctx_errmsg(ctx), "the tree does not fit"));
    after = ext2fs_free_blocks_count(fs->fs->super);
    if (after != before)
        fail_msg("%llu blocks free before, %llu after the failure (%s)", (unsigned long long)before,
                 (unsigned long long)after, md_ctx_errmsg(ctx));
    close_and_check(fs, img, t, ctx);
}

/* ---- refused before the first write ------------------------------------------------------ */

static void test_refused_before_writing(void **state)
{
    md_ext_format_opts fo = MD_EXT_FORMAT_OPTS_INIT;
    char *before, *after, value[2000];
    const char *path;
    md_image *img;
    md_ctx *ctx;
    md_tree *t;
    md_ext *fs;
    (void)state;

    md_test_need_tool("e2fsck", "e2fsprogs");
    ctx = new_ctx();
    img = make_fs(ctx, "refuse.img", 8 << 20, 1024, NULL, 0);
    path = md_image_path(img);
    before = sum(path);
    /* a 2,000-byte xattr does not fit a 1 KiB block and the inode */
    memset(value, 'v', sizeof(value));
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "a-first", "x", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "etc/old", "new", 3, NULL), 0);
    assert_int_equal(md_tree_set_xattr(t, "etc/old", "user.big", value, sizeof(value)), 0);
    assert_int_equal(md_ext_open(img, 0, 0, &fs), 0);
    assert_int_equal(md_ext_populate(fs, t, NULL), -ENOSPC);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "extended attributes"));
    assert_int_equal(md_ext_close(fs), 0);
    md_tree_free(t);
    after = sum(path);
    assert_string_equal(before, after);
    free(after);

    /* a file over a directory, with an entry sorted before it */
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "a-first", "x", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "etc", "not a directory", 15, NULL), 0);
    assert_int_equal(md_ext_open(img, 0, 0, &fs), 0);
    assert_int_equal(md_ext_populate(fs, t, NULL), -EISDIR);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "etc: is a directory"));
    assert_int_equal(md_ext_close(fs), 0);
    md_tree_free(t);
    after = sum(path);
    if (strcmp(before, after))
        md_test_run("debugfs -R 'ls -l /' '%s' >&2", path);
    assert_string_equal(before, after);
    free(after);
    /* the same through md_ext_write_file() (`disk cp`) */
    assert_int_equal(md_ext_open(img, 0, 0, &fs), 0);
    assert_int_equal(md_ext_write_file(fs, "/etc", "x", 1, NULL), -EISDIR);
    assert_int_equal(md_ext_close(fs), 0);
    after = sum(path);
    assert_string_equal(before, after);
    free(after);

    /* a journal of 1 block: refused before the old filesystem is cleared */
    fo.fs_type = MD_EXT4;
    fo.journal_blocks = 1;
    assert_int_equal(md_ext_format(img, 0, &fo, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "journal"));
    after = sum(path);
    assert_string_equal(before, after);
    free(after);
    fsck_clean(path);
    old_intact(img);
    free(before);
    md_image_free(img);
    md_ctx_free(ctx);
}

/* ---- item 17: both copies must fit ------------------------------------------------------- */

static void test_replace_needs_both(void **state)
{
    static char big[5 << 20], big2[5 << 20];
    md_image *img;
    const char *path;
    char *before, *after;
    md_ctx *ctx;
    md_tree *t;
    md_ext *fs;
    (void)state;

    md_test_need_tool("e2fsck", "e2fsprogs");
    ctx = new_ctx();
    memset(big, 'a', sizeof(big));
    memset(big2, 'b', sizeof(big2));
    img = make_fs(ctx, "full.img", 8 << 20, 1024, big, sizeof(big));
    path = md_image_path(img);
    before = sum(path);
    assert_int_equal(md_ext_open(img, 0, 0, &fs), 0);
    /* as `disk cp` replaces */
    assert_int_equal(md_ext_write_file(fs, "/big", big2, sizeof(big2), NULL), -ENOSPC);
    if (!strstr(md_ctx_errmsg(ctx), "the file it replaces is freed only once the new one is "
                                    "written: both must fit"))
        fail_msg("md_ext_write_file: %s", md_ctx_errmsg(ctx));
    /* as `disk populate` replaces */
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "big", big2, sizeof(big2), NULL), 0);
    assert_int_equal(md_ext_populate(fs, t, NULL), -ENOSPC);
    if (!strstr(md_ctx_errmsg(ctx), "(the 1 file it replaces is freed only once its new copy is "
                                    "written: both copies must fit)"))
        fail_msg("md_ext_populate: %s", md_ctx_errmsg(ctx));
    md_tree_free(t);
    /* a tree of new files only does not say so */
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "new", big2, sizeof(big2), NULL), 0);
    assert_int_equal(md_ext_populate(fs, t, NULL), -ENOSPC);
    assert_null(strstr(md_ctx_errmsg(ctx), "replaces"));
    md_tree_free(t);
    assert_int_equal(md_ext_close(fs), 0);
    after = sum(path);
    assert_string_equal(before, after);
    free(after);
    free(before);
    fsck_clean(path);
    old_intact(img);
    md_image_free(img);
    md_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shrink_during_replace),
        cmocka_unit_test(test_no_room_for_a_leaf),
        cmocka_unit_test(test_refused_before_writing),
        cmocka_unit_test(test_replace_needs_both),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
