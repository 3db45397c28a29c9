/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the image pipeline (md_disk): descriptions checked before
 * anything is written, images read back through libblkid and libext2fs, the
 * default partition rule, and no file left behind on failure. */
#include <errno.h>
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

#include "md-internal.h"
#include "md-ext-internal.h"
#include "test-util.h"

#define MiB (1024ULL * 1024ULL)

struct fixture {
    md_ctx *ctx;
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(md_ctx_new(&f->ctx), 0);
    assert_int_equal(md_ctx_set_epoch(f->ctx, 1700000000), 0);
    strcpy(f->dir, "/tmp/md-test-disk.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/disk.img", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    md_test_rmtree(f->dir);
    md_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* Nothing but the image itself (or nothing at all) in the directory. */
static void assert_dir_holds(const struct fixture *f, int want_image)
{
    char cmd[160], line[256];
    FILE *p;
    int n = 0;

    snprintf(cmd, sizeof(cmd), "ls -A '%s'", f->dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = '\0';
        assert_string_equal(line, "disk.img");
        n++;
    }
    pclose(p);
    assert_int_equal(n, want_image);
}

static void test_names(void **state)
{
    md_ctx *ctx;
    int32_t t = 0;

    (void)state;
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_fs_type_from_name(ctx, "ext3", &t), 0);
    assert_int_equal(t, MD_EXT3);
    assert_int_equal(md_fs_type_from_name(ctx, "xfs", &t), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "'xfs'"));
    md_ctx_free(ctx);
    assert_int_equal(md_fs_type_from_name(NULL, NULL, &t), -EINVAL);
    assert_string_equal(md_fs_type_name(MD_EXT4), "ext4");
    assert_null(md_fs_type_name(7));
}

/* A described but inconsistent image is refused before anything exists. */
static void test_checked_first(void **state)
{
    struct fixture *f = *state;
    md_table_opts t = MD_TABLE_OPTS_INIT;
    md_part_opts p = MD_PART_OPTS_INIT;
    md_disk *d;
    md_tree *tree;

    assert_int_equal(md_disk_new(f->ctx, &d), 0);
    assert_ptr_equal(md_disk_ctx(d), f->ctx);
    assert_int_equal(md_disk_set_size(d, 1000), -EINVAL);
    assert_int_equal(md_disk_set_headroom(d, 0, 1001), -EINVAL);
    assert_int_equal(md_disk_set_size(d, 16 * MiB), 0);
    assert_int_equal(md_disk_size(d), 16 * MiB);
    /* no partitions and no table: no table; partitions: GPT */
    assert_int_equal(md_disk_table(d), MD_TABLE_NONE);
    assert_int_equal(md_disk_add_partition(d, &p), 0);
    assert_int_equal(md_disk_table(d), MD_TABLE_GPT);
    assert_int_equal(md_disk_partition_count(d), 1);
    /* partitions with an explicit "none" */
    t.type = MD_TABLE_NONE;
    assert_int_equal(md_disk_set_table(d, &t), 0);
    assert_int_equal(md_disk_write(d, f->path, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "need a partition table"));
    t.flags = MD_TABLE_SEED;
    assert_int_equal(md_disk_set_table(d, &t), -EINVAL);
    t.flags = 0;
    t.type = 9;
    assert_int_equal(md_disk_set_table(d, &t), -EINVAL);
    t.type = MD_TABLE_MBR;
    assert_int_equal(md_disk_set_table(d, &t), 0);
    /* a filesystem on a partition that does not exist, or on the whole image
     * of a partitioned disk */
    assert_int_equal(md_disk_add_ext(d, 3, NULL, &tree), 0);
    assert_int_equal(md_disk_write(d, f->path, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "partition 3"));
    assert_int_equal(md_disk_add_ext(d, 3, NULL, &tree), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "already has"));
    md_disk_free(d);

    assert_int_equal(md_disk_new(f->ctx, &d), 0);
    assert_int_equal(md_disk_set_size(d, 16 * MiB), 0);
    assert_int_equal(md_disk_add_partition(d, &p), 0);
    assert_int_equal(md_disk_add_ext(d, 0, NULL, &tree), 0);
    assert_int_equal(md_disk_write(d, f->path, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "partition 0"));
    /* bad partition descriptions are refused when added */
    assert_int_equal(md_disk_add_partition_spec(d, "12X"), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "'12X'"));
    assert_int_equal(md_disk_add_partition_spec(d, "1M::frob"), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "frob"));
    p.percent = 101;
    assert_int_equal(md_disk_add_partition(d, &p), -EINVAL);
    assert_int_equal(md_disk_partition_count(d), 1);
    assert_int_equal(md_disk_set_extlinux(d, 5, NULL), -EINVAL);
    md_disk_free(d);
    assert_dir_holds(f, 0);
    md_disk_free(NULL);
}

/* Everything the pipeline wrote, read back with the other modules. */
static void test_write_and_read_back(void **state)
{
    struct fixture *f = *state;
    md_disk_write_opts wo = MD_DISK_WRITE_OPTS_INIT;
    md_ext_format_opts fo = MD_EXT_FORMAT_OPTS_INIT;
    md_disk *d;
    md_tree *tree;
    md_image *img;
    md_ext *fs;
    md_probe *pr;
    void *data;
    size_t size;
    int idx;

    assert_int_equal(md_disk_new(f->ctx, &d), 0);
    assert_int_equal(md_disk_set_size(d, 48 * MiB), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "1M:bios-boot"), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "8M:efi:name=ESP"), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "rest:linux:name=root"), 0);
    fo.fs_type = MD_EXT3;
    fo.label = "pipeline";
    idx = md_disk_add_ext(d, MD_DISK_PART_AUTO, &fo, &tree);
    assert_int_equal(idx, 0);
    fo.label = NULL; /* the disk keeps its own copy */
    assert_int_equal(md_tree_add_data(tree, "etc/motd", "hello\n", 6, NULL), 0);
    assert_int_equal(md_disk_fs_count(d), 1);
    assert_int_equal(md_disk_write(d, f->path, &wo), 0);
    /* the only Linux partition is 3 */
    assert_int_equal(md_disk_fs_partition(d, 0), 3);
    assert_dir_holds(f, 1);
    /* exists: refused without the flag, replaced with it */
    assert_int_equal(md_disk_write(d, f->path, &wo), -EEXIST);
    wo.flags = MD_DISK_FORCE;
    assert_int_equal(md_disk_write(d, f->path, &wo), 0);
    wo.flags = MD_DISK_FORCE | MD_DISK_NO_SYNC;
    assert_int_equal(md_disk_write(d, f->path, &wo), 0);
    wo.flags = 0x80;
    assert_int_equal(md_disk_write(d, f->path, &wo), -EINVAL);
    md_disk_free(d);

    assert_int_equal(md_image_open(f->ctx, f->path, MD_IMAGE_RDONLY, &img), 0);
    assert_int_equal(md_image_probe(img, &pr), 0);
    assert_string_equal(md_probe_table(pr), "gpt");
    assert_int_equal(md_probe_count(pr), 3);
    assert_string_equal(md_probe_fs_type(pr, 3), "ext3");
    assert_string_equal(md_probe_fs_label(pr, 3), "pipeline");
    assert_null(md_probe_fs_type(pr, 2));
    md_probe_free(pr);
    assert_int_equal(md_ext_open(img, 3, MD_EXT_RDONLY, &fs), 0);
    assert_int_equal(md_ext_read_file(fs, "/etc/motd", &data, &size), 0);
    assert_int_equal(size, 6);
    assert_memory_equal(data, "hello\n", 6);
    free(data);
    md_ext_free(fs);
    md_image_free(img);
}

static int count_cb(void *ud, uint64_t done, uint64_t total)
{
    uint64_t *last = ud;

    assert_true(done <= total);
    assert_true(done >= *last);
    *last = done;
    return 0;
}

static int cancel_cb(void *ud, uint64_t done, uint64_t total)
{
    (void)ud;
    (void)done;
    (void)total;
    return 1;
}

/* Progress over all filesystems; a cancel or a failure leaves nothing. */
static void test_progress_and_failure(void **state)
{
    struct fixture *f = *state;
    md_disk_write_opts wo = MD_DISK_WRITE_OPTS_INIT;
    md_table_opts t = MD_TABLE_OPTS_INIT;
    static char big[300 * 1024];
    uint64_t last = 0;
    md_disk *d;
    md_tree *a, *b;

    memset(big, 'x', sizeof(big));
    assert_int_equal(md_disk_new(f->ctx, &d), 0);
    assert_int_equal(md_disk_set_size(d, 32 * MiB), 0);
    t.type = MD_TABLE_MBR;
    assert_int_equal(md_disk_set_table(d, &t), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "12M"), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "rest"), 0);
    assert_int_equal(md_disk_add_ext(d, 1, NULL, &a), 0);
    assert_int_equal(md_disk_add_ext(d, 2, NULL, &b), 1);
    assert_int_equal(md_tree_add_data(a, "a", big, sizeof(big), NULL), 0);
    assert_int_equal(md_tree_add_data(b, "b", big, sizeof(big), NULL), 0);
    wo.progress = count_cb;
    wo.userdata = &last;
    assert_int_equal(md_disk_write(d, f->path, &wo), 0);
    assert_int_equal(last, 2 * sizeof(big));
    assert_int_equal(unlink(f->path), 0);

    wo.progress = cancel_cb;
    assert_int_equal(md_disk_write(d, f->path, &wo), -ECANCELED);
    assert_dir_holds(f, 0);

    /* too much for partition 1 */
    wo.progress = NULL;
    assert_int_equal(md_tree_add_data(a, "c", big, sizeof(big), NULL), 0);
    {
        int i;
        char name[16];
        for (i = 0; i < 40; i++) {
            snprintf(name, sizeof(name), "d%d", i);
            assert_int_equal(md_tree_add_data(a, name, big, sizeof(big), NULL), 0);
        }
    }
    assert_int_equal(md_disk_write(d, f->path, &wo), -ENOSPC);
    assert_dir_holds(f, 0);
    md_disk_free(d);
}

static void add_blob(md_tree *t, const char *path, size_t n)
{
    char *b = malloc(n);
    size_t i;

    assert_non_null(b);
    for (i = 0; i < n; i++)
        b[i] = (char)(i * 7 + (i >> 12));
    assert_int_equal(md_tree_add_data(t, path, b, n, NULL), 0);
    free(b);
}

/* Free space in filesystem @partno of the image, in bytes. */
static uint64_t free_bytes(struct fixture *f, uint32_t partno)
{
    md_image *img;
    md_ext *fs;
    uint64_t n;

    assert_int_equal(md_image_open(f->ctx, f->path, MD_IMAGE_RDONLY, &img), 0);
    assert_int_equal(md_ext_open(img, partno, MD_EXT_RDONLY, &fs), 0);
    n = (ext2fs_free_blocks_count(fs->fs->super) - ext2fs_r_blocks_count(fs->fs->super)) *
        (uint64_t)fs->fs->blocksize;
    md_ext_free(fs);
    md_image_free(img);
    return n;
}

/* No size: computed from the trees, with the headroom asked for. */
static void test_computed_size(void **state)
{
    struct fixture *f = *state;
    md_table_opts t = MD_TABLE_OPTS_INIT;
    md_disk_write_opts wo = MD_DISK_WRITE_OPTS_INIT;
    md_disk *d;
    md_tree *tree;
    uint64_t size;

    wo.flags = MD_DISK_FORCE;
    /* the whole image: data 6 MiB, default headroom (at least 16 MiB) */
    assert_int_equal(md_disk_new(f->ctx, &d), 0);
    assert_int_equal(md_disk_add_ext(d, MD_DISK_PART_AUTO, NULL, &tree), 0);
    add_blob(tree, "big/a", 6 * MiB);
    add_blob(tree, "big/b", 1000);
    assert_int_equal(md_disk_write(d, f->path, &wo), 0);
    size = md_disk_size(d);
    assert_true(size >= 22 * MiB && size < 40 * MiB);
    assert_int_equal(size % MiB, 0);
    assert_true(free_bytes(f, 0) >= 16 * MiB);
    /* a headroom of 1 MiB gives a smaller image that still holds the tree */
    assert_int_equal(md_disk_set_headroom(d, MiB, 0), 0);
    assert_int_equal(md_disk_write(d, f->path, &wo), 0);
    assert_true(md_disk_size(d) < size);
    assert_true(free_bytes(f, 0) >= MiB);
    /* percent of the contents */
    assert_int_equal(md_disk_set_headroom(d, 0, 100), 0);
    assert_int_equal(md_disk_write(d, f->path, &wo), 0);
    assert_true(free_bytes(f, 0) >= 6 * MiB);
    md_disk_free(d);

    /* GPT: 1 MiB before, the fixed partition, the filesystem's, 1 MiB for the backup */
    assert_int_equal(md_disk_new(f->ctx, &d), 0);
    assert_int_equal(md_disk_set_headroom(d, 2 * MiB, 0), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "3M:efi"), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "rest:linux"), 0);
    assert_int_equal(md_disk_add_ext(d, MD_DISK_PART_AUTO, NULL, &tree), 0);
    add_blob(tree, "x", 3 * MiB);
    assert_int_equal(md_disk_write(d, f->path, &wo), 0);
    assert_int_equal(md_disk_fs_partition(d, 0), 2);
    assert_true(free_bytes(f, 2) >= 2 * MiB);
    size = md_disk_size(d);
    /* a given size that is too small says what would do */
    assert_int_equal(md_disk_set_size(d, 6 * MiB), 0);
    assert_int_equal(md_disk_write(d, f->path, &wo), -ENOSPC);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "too small"));
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "--size"));
    /* what cannot be sized */
    assert_int_equal(md_disk_set_size(d, 0), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "10%:swap"), 0);
    assert_int_equal(md_disk_write(d, f->path, &wo), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "10%"));
    md_disk_free(d);
    (void)size;

    /* two Linux partitions, none bootable: which one is not known */
    assert_int_equal(md_disk_new(f->ctx, &d), 0);
    t.type = MD_TABLE_MBR;
    assert_int_equal(md_disk_set_table(d, &t), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "rest"), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "rest"), 0);
    assert_int_equal(md_disk_add_ext(d, MD_DISK_PART_AUTO, NULL, &tree), 0);
    assert_int_equal(md_disk_write(d, f->path, &wo), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "which partition"));
    md_disk_free(d);
}

/* The default partition: bootable, else the only Linux one. */
static void test_default_partition(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *parts[3];
        uint32_t table;
        int want; /* partition, or -errno */
    } cases[] = {
        { { NULL }, MD_TABLE_NONE, 0 },
        { { "4M", "rest:linux:bootable", NULL }, MD_TABLE_MBR, 2 },
        { { "4M:efi", "rest", NULL }, MD_TABLE_GPT, 2 },
        { { "4M:swap", NULL }, MD_TABLE_MBR, 1 },
        { { "4M", "rest", NULL }, MD_TABLE_GPT, -EINVAL },
        { { "4M:efi", "rest:swap", NULL }, MD_TABLE_GPT, -ENOENT },
        { { NULL }, MD_TABLE_GPT, -ENOENT },
    };
    size_t i, j;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        md_table_opts t = MD_TABLE_OPTS_INIT;
        md_image *img;
        uint32_t part = 77;
        md_disk *d;

        assert_int_equal(md_disk_new(f->ctx, &d), 0);
        assert_int_equal(md_disk_set_size(d, 16 * MiB), 0);
        t.type = cases[i].table;
        assert_int_equal(md_disk_set_table(d, &t), 0);
        for (j = 0; cases[i].parts[j]; j++)
            assert_int_equal(md_disk_add_partition_spec(d, cases[i].parts[j]), 0);
        assert_int_equal(md_disk_write(d, f->path, NULL), 0);
        md_disk_free(d);
        assert_int_equal(md_image_open(f->ctx, f->path, MD_IMAGE_RDONLY, &img), 0);
        if (cases[i].want >= 0) {
            assert_int_equal(md_image_default_partition(img, &part), 0);
            assert_int_equal(part, (uint32_t)cases[i].want);
        } else {
            assert_int_equal(md_image_default_partition(img, &part), cases[i].want);
            assert_true(strlen(md_ctx_errmsg(f->ctx)) > 0);
        }
        md_image_free(img);
        assert_int_equal(unlink(f->path), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_checked_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_and_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_computed_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_partition, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
