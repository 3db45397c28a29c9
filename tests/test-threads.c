/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Two contexts in two threads (md-ctx.h: objects of different contexts may
 * be used from different threads at once): each thread builds, three times
 * over, an initramfs (gzip) and a GPT image with a FAT ESP and an ext4 root
 * from the same host tree, with the same epoch.  Every output must equal
 * the one a single thread made first (cmp), and the images must be judged
 * clean by e2fsck -fn and fsck.fat -n.  In a -Db_sanitize=thread build
 * (scripts/test makes one) ThreadSanitizer reports any data race between
 * the contexts, and in library state they share.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>

#include "test-util.h"
#include <libminidistro/minidistro.h>

#define ROUNDS 3
#define EPOCH 1700000000

static char dir[PATH_MAX];

struct job {
    int id;
    int rc;
    char msg[512];
};

static void fail_job(struct job *j, md_ctx *ctx, const char *what, int r)
{
    snprintf(j->msg, sizeof(j->msg), "thread %d: %s: %d %s", j->id, what, r,
             ctx ? md_ctx_errmsg(ctx) : "");
    j->rc = r;
}

/* The initramfs and the disk image of round @round into DIR/tID-NAME. */
static int build_once(struct job *j, md_ctx *ctx, int round)
{
    md_cpio_opts co = MD_CPIO_OPTS_INIT;
    md_table_opts to = MD_TABLE_OPTS_INIT;
    md_ext_format_opts fo = MD_EXT_FORMAT_OPTS_INIT;
    md_tree *tree = NULL, *root, *esp;
    md_disk *d = NULL;
    char path[PATH_MAX + 64];
    int r;

    (void)round;
    r = md_tree_new(ctx, &tree);
    if (r >= 0)
        r = md_tree_add_host(tree, MD_TESTDIR "/../lib", NULL);
    if (r < 0)
        return fail_job(j, ctx, "tree", r), r;
    co.compression = MD_COMPRESS_GZIP;
    snprintf(path, sizeof(path), "%s/t%d-initramfs", dir, j->id);
    r = md_cpio_write(tree, path, &co);
    md_tree_free(tree);
    if (r < 0)
        return fail_job(j, ctx, "cpio", r), r;

    to.type = MD_TABLE_GPT;
    fo.fs_type = MD_EXT4;
    fo.label = "root";
    if ((r = md_disk_new(ctx, &d)) < 0 || (r = md_disk_set_size(d, 48 << 20)) < 0 ||
        (r = md_disk_set_table(d, &to)) < 0 || (r = md_disk_add_partition_spec(d, "12M:efi")) < 0 ||
        (r = md_disk_add_partition_spec(d, "rest:linux")) < 0 ||
        (r = md_disk_add_ext(d, 2, &fo, &root)) < 0 || (r = md_disk_add_fat(d, 1, NULL, &esp)) < 0 ||
        (r = md_tree_add_host(root, MD_TESTDIR "/../lib", NULL)) < 0 ||
        (r = md_tree_add_host(esp, MD_TESTDIR "/../docs", NULL)) < 0) {
        md_disk_free(d);
        return fail_job(j, ctx, "disk description", r), r;
    }
    snprintf(path, sizeof(path), "%s/t%d-disk.img", dir, j->id);
    {
        md_disk_write_opts wo = MD_DISK_WRITE_OPTS_INIT;
        wo.flags = MD_DISK_FORCE;
        r = md_disk_write(d, path, &wo);
    }
    md_disk_free(d);
    if (r < 0)
        return fail_job(j, ctx, "disk write", r), r;
    return 0;
}

static void *worker(void *arg)
{
    struct job *j = arg;
    md_ctx *ctx = NULL;
    int round, r;

    r = md_ctx_new(&ctx);
    if (r < 0) {
        fail_job(j, NULL, "md_ctx_new", r);
        return NULL;
    }
    r = md_ctx_set_epoch(ctx, EPOCH);
    for (round = 0; r >= 0 && round < ROUNDS; round++) {
        r = build_once(j, ctx, round);
        if (r < 0 || j->id == 0)
            continue;
        /* each round's outputs are the reference's */
        if (md_test_run("cmp -s '%s/ref-initramfs' '%s/t%d-initramfs' && "
                        "cmp -s '%s/ref-disk.img' '%s/t%d-disk.img'", dir, dir, j->id, dir, dir, j->id) != 0) {
            snprintf(j->msg, sizeof(j->msg), "thread %d, round %d: outputs differ from the reference",
                     j->id, round);
            j->rc = r = -EIO;
        }
    }
    md_ctx_free(ctx);
    return NULL;
}

static void test_two_contexts(void **state)
{
    struct job ref = { 0, 0, "" }, jobs[2] = { { 1, 0, "" }, { 2, 0, "" } };
    pthread_t th[2];
    int i;

    (void)state;
    /* the reference, made by one thread alone */
    worker(&ref);
    if (ref.rc)
        fail_msg("%s", ref.msg);
    assert_int_equal(md_test_run("cp '%s/t0-initramfs' '%s/ref-initramfs' && "
                                 "cp --sparse=always '%s/t0-disk.img' '%s/ref-disk.img'",
                                 dir, dir, dir, dir), 0);
    for (i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
    for (i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (i = 0; i < 2; i++)
        if (jobs[i].rc)
            fail_msg("%s", jobs[i].msg);
    /* judges: the image's filesystems, the archive */
    assert_int_equal(md_test_run("e2fsck -fn '%s/t1-disk.img?offset=%d' >/dev/null 2>&1", dir,
                                 13 << 20), 0);
    assert_int_equal(md_test_run("dd if='%s/t2-disk.img' of='%s/esp' bs=1M skip=1 count=12 "
                                 "status=none && fsck.fat -n '%s/esp' >/dev/null", dir, dir, dir), 0);
    assert_int_equal(md_test_run("gzip -dc '%s/t1-initramfs' | cpio -it --quiet 2>/dev/null | "
                                 "grep -qx md-ctx.c", dir), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test-threads.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    md_test_rmtree(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_contexts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
