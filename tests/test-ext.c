/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ext module: format variants checked by e2fsck -fn, population of every
 * entry type read back with an independent ext2fs_open2() and debugfs,
 * determinism, error paths.
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
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "md-ext-internal.h"
#include "test-util.h"

static char tmpdir[256];
#define EPOCH 1700000000LL

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-ext.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[512];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
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
    assert_int_equal(md_ctx_set_epoch(ctx, EPOCH), 0);
    return ctx;
}

/* A fresh image of @size bytes; with @mbr an MBR with one partition (1 MiB on). */
static md_image *new_image(md_ctx *ctx, const char *name, uint64_t size, int mbr)
{
    md_image_create_opts co = MD_IMAGE_CREATE_OPTS_INIT;
    md_image *img;

    co.flags = MD_IMAGE_FORCE;
    assert_int_equal(md_image_create(ctx, tpath(name), size, &co, &img), 0);
    if (mbr) {
        md_table_opts to = MD_TABLE_OPTS_INIT;
        to.type = MD_TABLE_MBR;
        to.disk_id = "0x12345678";
        assert_int_equal(md_image_add_partition_spec(img, "rest:linux:bootable"), 0);
        assert_int_equal(md_image_write_table(img, &to), 0);
    }
    return img;
}

static int fsck_ok(const char *path, uint64_t offset)
{
    return md_test_run("e2fsck -fn '%s?offset=%llu' >'%s' 2>&1", path, (unsigned long long)offset,
               tpath("fsck.log"));
}

/* ---- format variants ------------------------------------------------------------ */

static void test_format_variants(void **state)
{
    static const struct {
        int32_t type;
        uint32_t bs;
        const char *features;
    } v[] = {
        { MD_EXT2, 1024, NULL },
        { MD_EXT2, 4096, NULL },
        { MD_EXT3, 1024, NULL },
        { MD_EXT3, 4096, NULL },
        { MD_EXT4, 1024, NULL },
        { MD_EXT4, 4096, NULL },
        { MD_EXT4, 4096, "^64bit" },
        { MD_EXT4, 1024, "^metadata_csum" },
        { MD_EXT4, 4096, "^64bit,^metadata_csum,uninit_bg" },
        { MD_EXT4, 2048, "^flex_bg,^resize_inode" },
        { MD_EXT3, 4096, "extent,flex_bg" },
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        md_ctx *ctx = new_ctx();
        int mbr = (int)(i % 2);
        md_image *img = new_image(ctx, "fmt.img", 48ULL << 20, mbr);
        md_ext_format_opts o = MD_EXT_FORMAT_OPTS_INIT;
        md_ext *fs;
        uint64_t off, size;
        ext2_filsys efs;
        char *out;

        o.fs_type = v[i].type;
        o.block_size = v[i].bs;
        o.features = v[i].features;
        o.label = "variant";
        assert_int_equal(md_image_partition_range(img, mbr ? 1 : 0, &off, &size), 0);
        if (md_ext_format(img, mbr ? 1 : 0, &o, NULL) != 0)
            fail_msg("format %zu: %s", i, md_ctx_errmsg(ctx));
        assert_int_equal(md_image_commit(img), 0);
        if (fsck_ok(tpath("fmt.img"), off) != 0) {
            out = md_test_capture("cat '%s'", tpath("fsck.log"));
            fail_msg("variant %zu: e2fsck -fn complained:\n%s", i, out);
        }
        /* the right type, size and features, read by an independent open */
        assert_int_equal(md_ext_open(img, mbr ? 1 : 0, MD_EXT_RDONLY, &fs), 0);
        efs = md_ext_fs(fs);
        assert_int_equal(efs->blocksize, v[i].bs);
        assert_true(ext2fs_blocks_count(efs->super) * v[i].bs <= size);
        assert_true(ext2fs_blocks_count(efs->super) * v[i].bs > size - v[i].bs);
        assert_int_equal(!!ext2fs_has_feature_journal(efs->super), v[i].type >= MD_EXT3);
        assert_false(ext2fs_has_feature_inline_data(efs->super));
        if (v[i].type == MD_EXT4 && !v[i].features) {
            assert_true(ext2fs_has_feature_metadata_csum(efs->super));
            assert_true(ext2fs_has_feature_64bit(efs->super));
            assert_true(ext2fs_has_feature_extents(efs->super));
        }
        if (v[i].features && strstr(v[i].features, "^64bit"))
            assert_false(ext2fs_has_feature_64bit(efs->super));
        md_ext_free(fs);
        out = md_test_capture("blkid -p -o export -O %llu '%s'", (unsigned long long)off, tpath("fmt.img"));
        assert_non_null(strstr(out, "LABEL=variant"));
        /* blkid calls anything with extents ext4 */
        assert_non_null(strstr(out, v[i].type == MD_EXT4 || (v[i].features && strstr(v[i].features, "extent"))
                                        ? "TYPE=ext4"
                                        : v[i].type == MD_EXT3 ? "TYPE=ext3" : "TYPE=ext2"));
        free(out);
        md_image_free(img);
        md_ctx_free(ctx);
    }
}

static void test_format_uuid_and_mke2fs_defaults(void **state)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "u.img", 600ULL << 20, 0);
    md_ext_format_opts o = MD_EXT_FORMAT_OPTS_INIT;
    char *out;
    (void)state;

    o.uuid = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    assert_int_equal(md_ext_format(img, 0, &o, NULL), 0);
    assert_int_equal(md_image_commit(img), 0);
    out = md_test_capture("dumpe2fs -h '%s' 2>/dev/null", tpath("u.img"));
    assert_non_null(strstr(out, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"));
    /* 600 MiB: mke2fs's default type gives 4 KiB blocks and 16 KiB per inode */
    assert_non_null(strstr(out, "Block size:               4096"));
    assert_non_null(strstr(out, "Inode count:              38400"));
    assert_non_null(strstr(out, "Inode size:\t          256"));
    assert_non_null(strstr(out, "Filesystem created:       Tue Nov 14 22:13:20 2023"));
    assert_non_null(strstr(out, "Last write time:          Tue Nov 14 22:13:20 2023"));
    assert_non_null(strstr(out, "has_journal"));
    free(out);
    assert_int_equal(fsck_ok(tpath("u.img"), 0), 0);
    md_image_free(img);
    md_ctx_free(ctx);
}

/* ---- population -------------------------------------------------------------------- */

static md_tree *every_type_tree(md_ctx *ctx, const char *hostfile)
{
    md_attr a = MD_ATTR_INIT;
    md_tree *t;
    char slow[3000];
    static char big[300000];
    size_t i;

    assert_int_equal(md_tree_new(ctx, &t), 0);
    a.mode = 0750;
    a.uid = 1000;
    a.gid = 100;
    a.mtime = 1600000000;
    assert_int_equal(md_tree_add_dir(t, "etc/conf.d", &a), 0);
    a.mode = 0640;
    assert_int_equal(md_tree_add_data(t, "etc/conf.d/hello", "hello world\n", 12, &a), 0);
    assert_int_equal(md_tree_add_data(t, "empty", "", 0, NULL), 0);
    for (i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7 + i / 4096);
    memset(big + 100000, 0, 50000);  /* all-zero blocks: a hole */
    assert_int_equal(md_tree_add_data(t, "big", big, sizeof(big), NULL), 0);
    assert_int_equal(md_tree_add_file(t, "bin/host", hostfile, NULL), 0);
    assert_int_equal(md_tree_add_hardlink(t, "bin/hardlink", "big"), 0);
    assert_int_equal(md_tree_add_symlink(t, "fast", "etc/conf.d/hello", NULL), 0);
    memset(slow, 'a', sizeof(slow) - 1);
    slow[sizeof(slow) - 1] = '\0';
    assert_int_equal(md_tree_add_symlink(t, "slow", slow, NULL), 0);
    a.mode = 0620;
    a.uid = 0;
    a.gid = 5;
    a.mtime = MD_MTIME_DEFAULT;
    assert_int_equal(md_tree_add_node(t, "dev/tty1", MD_NODE_CHR, 4, 1, &a), 0);
    assert_int_equal(md_tree_add_node(t, "dev/big", MD_NODE_BLK, 259, 70000, NULL), 0);
    assert_int_equal(md_tree_add_node(t, "dev/fifo", MD_NODE_FIFO, 0, 0, NULL), 0);
    assert_int_equal(md_tree_add_node(t, "dev/sock", MD_NODE_SOCK, 0, 0, NULL), 0);
    assert_int_equal(md_tree_set_xattr(t, "etc/conf.d/hello", "user.test", "value", 5), 0);
    assert_int_equal(md_tree_set_xattr(t, "etc/conf.d/hello", "security.selinux",
                                       "system_u:object_r:etc_t:s0", 27), 0);
    return t;
}

static void make_hostfile(const char *path, size_t size)
{
    FILE *f = fopen(path, "w");
    size_t i;
    assert_non_null(f);
    for (i = 0; i < size; i++)
        fputc((int)((i * 31) & 0xff), f);
    fclose(f);
}

/* Independent read-back with a plain ext2fs_open2 of the image file. */
static ext2_filsys raw_open(const char *path, uint64_t off)
{
    char opt[64];
    ext2_filsys fs;
    snprintf(opt, sizeof(opt), "offset=%llu", (unsigned long long)off);
    assert_int_equal(ext2fs_open2(path, opt, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs), 0);
    return fs;
}

static ext2_ino_t raw_lookup(ext2_filsys fs, const char *path)
{
    ext2_ino_t ino = 0;
    errcode_t err = ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino);
    if (err)
        fail_msg("namei %s: %s", path, error_message(err));
    return ino;
}

static void raw_read(ext2_filsys fs, const char *path, char *buf, size_t cap, size_t *n)
{
    ext2_file_t f;
    unsigned got = 0;
    assert_int_equal(ext2fs_file_open(fs, raw_lookup(fs, path), 0, &f), 0);
    assert_int_equal(ext2fs_file_read(f, buf, (unsigned)cap, &got), 0);
    ext2fs_file_close(f);
    *n = got;
}

static void check_every_type(const char *img, uint64_t off, const char *hostfile, int bs4k)
{
    ext2_filsys fs = raw_open(img, off);
    struct ext2_inode_large in;
    static char buf[400000], exp[400000];
    size_t n, i;
    ext2_ino_t a, b;
    struct ext2_xattr_handle *h;
    void *val;
    size_t vlen;
    char *out;
    FILE *f;

    raw_read(fs, "/etc/conf.d/hello", buf, sizeof(buf), &n);
    assert_int_equal(n, 12);
    assert_memory_equal(buf, "hello world\n", 12);
    assert_int_equal(ext2fs_read_inode_full(fs, raw_lookup(fs, "/etc/conf.d/hello"),
                                            (struct ext2_inode *)&in, sizeof(in)), 0);
    assert_int_equal(in.i_mode, LINUX_S_IFREG | 0640);
    assert_int_equal(in.i_uid, 1000);
    assert_int_equal(in.i_gid, 100);
    assert_int_equal(in.i_mtime, 1600000000);
    assert_int_equal(ext2fs_read_inode_full(fs, raw_lookup(fs, "/etc/conf.d"),
                                            (struct ext2_inode *)&in, sizeof(in)), 0);
    assert_int_equal(in.i_mode, LINUX_S_IFDIR | 0750);
    assert_int_equal(in.i_mtime, 1600000000);

    /* xattrs */
    assert_int_equal(ext2fs_xattrs_open(fs, raw_lookup(fs, "/etc/conf.d/hello"), &h), 0);
    assert_int_equal(ext2fs_xattrs_read(h), 0);
    assert_int_equal(ext2fs_xattr_get(h, "user.test", &val, &vlen), 0);
    assert_int_equal(vlen, 5);
    assert_memory_equal(val, "value", 5);
    ext2fs_free_mem(&val);
    assert_int_equal(ext2fs_xattr_get(h, "security.selinux", &val, &vlen), 0);
    assert_int_equal(vlen, 27);
    ext2fs_free_mem(&val);
    ext2fs_xattrs_close(&h);

    /* big buffer with a zero hole, and its hard link */
    raw_read(fs, "/big", buf, sizeof(buf), &n);
    assert_int_equal(n, 300000);
    for (i = 0; i < 300000; i++)
        exp[i] = (char)(i * 7 + i / 4096);
    memset(exp + 100000, 0, 50000);
    assert_memory_equal(buf, exp, 300000);
    a = raw_lookup(fs, "/big");
    b = raw_lookup(fs, "/bin/hardlink");
    assert_int_equal(a, b);
    assert_int_equal(ext2fs_read_inode_full(fs, a, (struct ext2_inode *)&in, sizeof(in)), 0);
    assert_int_equal(in.i_links_count, 2);
    /* the zero blocks are not allocated: less than the data blocks of a dense file */
    assert_true(ext2fs_get_stat_i_blocks(fs, (struct ext2_inode *)&in) * 512 <
                (300000 + fs->blocksize - 1) / fs->blocksize * fs->blocksize);

    /* host file */
    raw_read(fs, "/bin/host", buf, sizeof(buf), &n);
    f = fopen(hostfile, "r");
    assert_non_null(f);
    i = fread(exp, 1, sizeof(exp), f);
    fclose(f);
    assert_int_equal(n, i);
    assert_memory_equal(buf, exp, n);

    /* empty file */
    assert_int_equal(ext2fs_read_inode_full(fs, raw_lookup(fs, "/empty"), (struct ext2_inode *)&in,
                                            sizeof(in)), 0);
    assert_int_equal(EXT2_I_SIZE(&in), 0);
    assert_int_equal(in.i_blocks, 0);

    /* symlinks: fast in the inode, slow in a block */
    assert_int_equal(ext2fs_read_inode_full(fs, raw_lookup(fs, "/fast"), (struct ext2_inode *)&in,
                                            sizeof(in)), 0);
    assert_true(LINUX_S_ISLNK(in.i_mode));
    assert_true(ext2fs_is_fast_symlink((struct ext2_inode *)&in));
    assert_memory_equal(in.i_block, "etc/conf.d/hello", 16);
    if (bs4k) {
        assert_int_equal(ext2fs_read_inode_full(fs, raw_lookup(fs, "/slow"), (struct ext2_inode *)&in,
                                                sizeof(in)), 0);
        assert_false(ext2fs_is_fast_symlink((struct ext2_inode *)&in));
        assert_int_equal(EXT2_I_SIZE(&in), 2999);
    }

    /* nodes */
    assert_int_equal(ext2fs_read_inode_full(fs, raw_lookup(fs, "/dev/tty1"), (struct ext2_inode *)&in,
                                            sizeof(in)), 0);
    assert_int_equal(in.i_mode, LINUX_S_IFCHR | 0620);
    assert_int_equal(in.i_gid, 5);
    assert_int_equal(in.i_mtime, (uint32_t)EPOCH);
    assert_int_equal(ext2fs_read_inode_full(fs, raw_lookup(fs, "/dev/fifo"), (struct ext2_inode *)&in,
                                            sizeof(in)), 0);
    assert_true(LINUX_S_ISFIFO(in.i_mode));
    assert_int_equal(ext2fs_read_inode_full(fs, raw_lookup(fs, "/dev/sock"), (struct ext2_inode *)&in,
                                            sizeof(in)), 0);
    assert_true(LINUX_S_ISSOCK(in.i_mode));
    ext2fs_close_free(&fs);

    /* debugfs agrees on device numbers and link targets */
    out = md_test_capture("debugfs -R 'stat /dev/tty1' '%s?offset=%llu' 2>/dev/null", img,
                  (unsigned long long)off);
    assert_non_null(strstr(out, "Device major/minor number: 04:01"));
    free(out);
    out = md_test_capture("debugfs -R 'stat /dev/big' '%s?offset=%llu' 2>/dev/null", img,
                  (unsigned long long)off);
    assert_non_null(strstr(out, "Device major/minor number: 259:70000"));
    free(out);
    out = md_test_capture("debugfs -R 'stat /fast' '%s?offset=%llu' 2>/dev/null", img, (unsigned long long)off);
    assert_non_null(strstr(out, "Fast link dest: \"etc/conf.d/hello\""));
    free(out);
}

static void populate_variant(int32_t type, uint32_t bs, int mbr)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "pop.img", 32ULL << 20, mbr);
    md_ext_format_opts o = MD_EXT_FORMAT_OPTS_INIT;
    const char *host = tpath("hostfile");
    md_ext *fs;
    md_tree *t;
    uint64_t off, size;

    make_hostfile(host, 70000);
    o.fs_type = type;
    o.block_size = bs;
    assert_int_equal(md_ext_format(img, mbr, &o, &fs), 0);
    t = every_type_tree(ctx, host);
    if (bs < 4096)
        assert_int_equal(md_tree_remove(t, "slow"), 0);
    if (md_ext_populate(fs, t, NULL) != 0)
        fail_msg("populate: %s", md_ctx_errmsg(ctx));
    assert_int_equal(md_ext_close(fs), 0);
    assert_int_equal(md_image_commit(img), 0);
    assert_int_equal(md_image_partition_range(img, (uint32_t)mbr, &off, &size), 0);
    if (fsck_ok(tpath("pop.img"), off) != 0)
        fail_msg("e2fsck:\n%s", md_test_capture("cat '%s'", tpath("fsck.log")));
    check_every_type(tpath("pop.img"), off, host, bs == 4096);
    md_tree_free(t);
    md_image_free(img);
    md_ctx_free(ctx);
}

static void test_populate_ext4(void **state)
{
    (void)state;
    populate_variant(MD_EXT4, 4096, 1);
}

static void test_populate_ext2_1k(void **state)
{
    (void)state;
    populate_variant(MD_EXT2, 1024, 0);
}

static void test_populate_ext3(void **state)
{
    (void)state;
    populate_variant(MD_EXT3, 4096, 0);
}

/* Populating twice merges: directories keep old entries, files are replaced. */
static void test_populate_merge_and_target(void **state)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "m.img", 16ULL << 20, 0);
    md_ext_populate_opts po = MD_EXT_POPULATE_OPTS_INIT;
    md_ext *fs;
    md_tree *t1, *t2;
    void *data;
    size_t n;
    (void)state;

    assert_int_equal(md_ext_format(img, 0, NULL, &fs), 0);
    assert_int_equal(md_tree_new(ctx, &t1), 0);
    assert_int_equal(md_tree_add_data(t1, "etc/a", "one", 3, NULL), 0);
    assert_int_equal(md_tree_add_data(t1, "etc/b", "two", 3, NULL), 0);
    assert_int_equal(md_ext_populate(fs, t1, NULL), 0);
    assert_int_equal(md_tree_new(ctx, &t2), 0);
    assert_int_equal(md_tree_add_data(t2, "etc/b", "TWO!", 4, NULL), 0);
    assert_int_equal(md_tree_add_data(t2, "etc/c", "three", 5, NULL), 0);
    assert_int_equal(md_ext_populate(fs, t2, NULL), 0);
    po.target = "/opt/sub";
    assert_int_equal(md_ext_populate(fs, t2, &po), 0);
    assert_int_equal(md_ext_read_file(fs, "/etc/a", &data, &n), 0);
    assert_int_equal(n, 3);
    free(data);
    assert_int_equal(md_ext_read_file(fs, "/etc/b", &data, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(data, "TWO!");
    free(data);
    assert_int_equal(md_ext_read_file(fs, "opt/sub/etc/c", &data, &n), 0);
    assert_string_equal(data, "three");
    free(data);
    /* a file cannot replace a directory */
    md_tree_free(t1);
    assert_int_equal(md_tree_new(ctx, &t1), 0);
    assert_int_equal(md_tree_add_data(t1, "etc", "x", 1, NULL), 0);
    assert_int_equal(md_ext_populate(fs, t1, NULL), -EISDIR);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "etc"));
    assert_int_equal(md_ext_close(fs), 0);
    assert_int_equal(md_image_commit(img), 0);
    assert_int_equal(fsck_ok(tpath("m.img"), 0), 0);
    md_tree_free(t1);
    md_tree_free(t2);
    md_image_free(img);
    md_ctx_free(ctx);
}


/* Byte order puts "d-ng" and "d.a" between "d" and "d/k": directories must
 * still get all their entries. */
static void test_populate_sort_order(void **state)
{
    static const char *const files[] = { "d/k", "d-ng.txt", "d-ng/y/z", "d.a", "d/x/deep", "d+/q",
                                         "e/d/k", "e/d-/k", "e/d./k" };
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "o.img", 8ULL << 20, 0);
    md_ext *fs;
    md_tree *t;
    size_t i;
    (void)state;

    assert_int_equal(md_ext_format(img, 0, NULL, &fs), 0);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        assert_int_equal(md_tree_add_data(t, files[i], files[i], strlen(files[i]), NULL), 0);
    if (md_ext_populate(fs, t, NULL) != 0)
        fail_msg("populate: %s", md_ctx_errmsg(ctx));
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        void *data;
        size_t n;
        char p[64];
        snprintf(p, sizeof(p), "/%s", files[i]);
        if (md_ext_read_file(fs, p, &data, &n) != 0)
            fail_msg("%s: %s", p, md_ctx_errmsg(ctx));
        assert_int_equal(n, strlen(files[i]));
        free(data);
    }
    assert_int_equal(md_ext_close(fs), 0);
    assert_int_equal(md_image_commit(img), 0);
    assert_int_equal(fsck_ok(tpath("o.img"), 0), 0);
    md_tree_free(t);
    md_image_free(img);
    md_ctx_free(ctx);
}


struct prog {
    int calls;
    uint64_t last_done, last_total;
    int cancel_at;
};

static int on_progress(void *ud, uint64_t done, uint64_t total)
{
    struct prog *p = ud;
    p->calls++;
    assert_true(done >= p->last_done);
    p->last_done = done;
    p->last_total = total;
    return p->cancel_at && p->calls >= p->cancel_at;
}

static void test_populate_progress(void **state)
{
    static char data[3 << 20];
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "p.img", 16ULL << 20, 0);
    md_ext_populate_opts po = MD_EXT_POPULATE_OPTS_INIT;
    struct prog pr = { 0, 0, 0, 0 };
    md_ext *fs;
    md_tree *t;
    (void)state;

    memset(data, 7, sizeof(data));
    assert_int_equal(md_ext_format(img, 0, NULL, &fs), 0);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "a", data, sizeof(data), NULL), 0);
    assert_int_equal(md_tree_add_data(t, "b", data, 1000, NULL), 0);
    po.progress = on_progress;
    po.userdata = &pr;
    assert_int_equal(md_ext_populate(fs, t, &po), 0);
    assert_true(pr.calls >= 3);
    assert_int_equal(pr.last_done, sizeof(data) + 1000);
    assert_int_equal(pr.last_total, sizeof(data) + 1000);
    /* a non-zero return cancels */
    memset(&pr, 0, sizeof(pr));
    pr.cancel_at = 1;
    po.target = "/again";
    assert_int_equal(md_ext_populate(fs, t, &po), -ECANCELED);
    po.flags = 0x80;
    assert_int_equal(md_ext_populate(fs, t, &po), -EINVAL);
    assert_int_equal(md_ext_close(fs), 0);
    md_tree_free(t);
    md_image_free(img);
    md_ctx_free(ctx);
}


static int count_cb(void *ud, const char *name, const md_ext_stat *st)
{
    (void)name;
    (void)st;
    (*(int *)ud)++;
    return 0;
}

/* A second populate appends to directories that already span several blocks
 * (and replaces some of their files). */
static void test_populate_append_existing(void **state)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "x.img", 16ULL << 20, 0);
    md_ext *fs;
    md_tree *t;
    char p[64];
    int i, round, n;
    void *data;
    size_t len;
    (void)state;

    assert_int_equal(md_ext_format(img, 0, NULL, &fs), 0);   /* 1 KiB blocks */
    for (round = 0; round < 2; round++) {
        assert_int_equal(md_tree_new(ctx, &t), 0);
        for (i = 0; i < 300; i++) {
            snprintf(p, sizeof(p), "d/r%d-%03d", round, i);
            assert_int_equal(md_tree_add_data(t, p, "x", 1, NULL), 0);
            snprintf(p, sizeof(p), "top%d-%03d", round, i);
            assert_int_equal(md_tree_add_data(t, p, "y", 1, NULL), 0);
        }
        for (i = 0; i < 10; i++) {   /* replaced in round 1 */
            snprintf(p, sizeof(p), "d/r0-%03d", i * 7);
            assert_int_equal(md_tree_add_data(t, p, "new", 3, NULL), 0);
        }
        if (md_ext_populate(fs, t, NULL) != 0)
            fail_msg("round %d: %s", round, md_ctx_errmsg(ctx));
        md_tree_free(t);
    }
    n = 0;
    assert_int_equal(md_ext_list(fs, "/d", count_cb, &n), 0);
    assert_int_equal(n, 600);
    n = 0;
    assert_int_equal(md_ext_list(fs, "/", count_cb, &n), 0);
    assert_int_equal(n, 600 + 2);   /* + d, lost+found */
    assert_int_equal(md_ext_read_file(fs, "/d/r0-014", &data, &len), 0);
    assert_string_equal(data, "new");
    free(data);
    assert_int_equal(md_ext_read_file(fs, "/d/r1-299", &data, &len), 0);
    assert_string_equal(data, "x");
    free(data);
    assert_int_equal(md_ext_close(fs), 0);
    assert_int_equal(md_image_commit(img), 0);
    assert_int_equal(fsck_ok(tpath("x.img"), 0), 0);
    md_image_free(img);
    md_ctx_free(ctx);
}

/* An empty directory lists as nothing (issue 11 item 15: the listing was sorted
 * with qsort(NULL, 0, ...), undefined behaviour that UBSan reports; found by
 * tests/fuzz/fuzz-image on the lost+found of its seeds). */
static void test_list_empty_dir(void **state)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "x.img", 1ULL << 20, 0);
    md_ext *fs;
    int n = 0;
    (void)state;

    assert_int_equal(md_ext_format(img, 0, NULL, &fs), 0);
    assert_int_equal(md_ext_mkdir(fs, "/empty", NULL), 0);
    assert_int_equal(md_ext_list(fs, "/empty", count_cb, &n), 0);
    assert_int_equal(md_ext_list(fs, "/lost+found", count_cb, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(md_ext_list(fs, "/", count_cb, &n), 0);
    assert_int_equal(n, 2);   /* empty, lost+found */
    assert_int_equal(md_ext_close(fs), 0);
    md_image_free(img);
    md_ctx_free(ctx);
}

/* ---- single entries ------------------------------------------------------------------ */

struct names {
    char buf[1024];
};

static int collect(void *ud, const char *name, const md_ext_stat *st)
{
    struct names *n = ud;
    char one[300];
    snprintf(one, sizeof(one), "%s:%o:%llu ", name, st->mode, (unsigned long long)st->size);
    strncat(n->buf, one, sizeof(n->buf) - strlen(n->buf) - 1);
    return 0;
}

static void test_single_entries(void **state)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "s.img", 8ULL << 20, 0);
    md_ext_stat st = MD_EXT_STAT_INIT;
    md_attr a = MD_ATTR_INIT;
    struct names names;
    md_ext *fs;
    void *data;
    size_t n;
    char *target;
    FILE *f;
    char buf[64];
    (void)state;

    assert_int_equal(md_ext_format(img, 0, NULL, &fs), 0);
    a.mode = 0700;
    assert_int_equal(md_ext_mkdir(fs, "/a/b/c", &a), 0);
    assert_int_equal(md_ext_mkdir(fs, "/a/b/c", NULL), 0);   /* -p: exists is fine */
    assert_int_equal(md_ext_write_file(fs, "/a/b/f", "12345", 5, NULL), 0);
    assert_int_equal(md_ext_write_file(fs, "/a/b/f", "abc", 3, NULL), 0);   /* replace */
    assert_int_equal(md_ext_exists(fs, "/a/b/f"), 1);
    assert_int_equal(md_ext_exists(fs, "/a/nope"), 0);
    assert_int_equal(md_ext_exists(fs, "/a/b/f/x"), 0);
    assert_int_equal(md_ext_stat_path(fs, "a/b/c", &st), 0);
    assert_int_equal(st.mode, S_IFDIR | 0700);
    assert_int_equal(st.mtime, EPOCH);
    assert_int_equal(md_ext_read_file(fs, "/a/b/f", &data, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(data, "abc");
    free(data);
    memset(&names, 0, sizeof(names));
    assert_int_equal(md_ext_list(fs, "/a/b", collect, &names), 0);
    assert_string_equal(names.buf, "c:40700:1024 f:100644:3 ");
    assert_int_equal(md_ext_extract_file(fs, "/a/b/f", tpath("out")), 0);
    f = fopen(tpath("out"), "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "abc");
    {
        /* a failed host write: the message names the host file, nothing is left */
        struct rlimit old, lim;
        void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        lim = old;
        lim.rlim_cur = 1;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        assert_int_equal(md_ext_read_file(fs, "/a/zz", &data, &n), -ENOENT); /* a stale message */
        assert_int_equal(md_ext_extract_file(fs, "/a/b/f", tpath("out2")), -EFBIG);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, oldsig);
        assert_non_null(strstr(md_ctx_errmsg(ctx), "out2: writing"));
        assert_int_equal(access(tpath("out2"), F_OK), -1);
    }
    /* errors name the path */
    assert_int_equal(md_ext_read_file(fs, "/a/b", &data, &n), -EISDIR);
    assert_int_equal(md_ext_read_file(fs, "/a/zz", &data, &n), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "/a/zz"));
    assert_int_equal(md_ext_write_file(fs, "/no/dir/f", "x", 1, NULL), -ENOENT);
    assert_int_equal(md_ext_write_file(fs, "/a/b/f/x", "x", 1, NULL), -ENOTDIR);
    assert_int_equal(md_ext_write_file(fs, "/a/b/c", "x", 1, NULL), -EISDIR);
    assert_int_equal(md_ext_mkdir(fs, "/a/b/f/g", NULL), -ENOTDIR);
    assert_int_equal(md_ext_readlink(fs, "/a/b/f", &target), -EINVAL);
    assert_int_equal(md_ext_list(fs, "/a/b/f", collect, &names), -ENOTDIR);
    assert_int_equal(md_ext_close(fs), 0);
    /* read-only open refuses writes */
    assert_int_equal(md_ext_open(img, 0, MD_EXT_RDONLY, &fs), 0);
    assert_int_equal(md_ext_write_file(fs, "/x", "x", 1, NULL), -EROFS);
    md_ext_free(fs);
    assert_int_equal(md_image_commit(img), 0);
    assert_int_equal(fsck_ok(tpath("s.img"), 0), 0);
    md_image_free(img);
    md_ctx_free(ctx);
}

/* ---- determinism ----------------------------------------------------------------------- */

static void build_det(const char *name, const char *hostfile)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, name, 24ULL << 20, 1);
    md_ext_format_opts o = MD_EXT_FORMAT_OPTS_INIT;
    md_ext *fs;
    md_tree *t;

    o.block_size = 4096;
    assert_int_equal(md_ext_format(img, 1, &o, &fs), 0);
    t = every_type_tree(ctx, hostfile);
    assert_int_equal(md_ext_populate(fs, t, NULL), 0);
    assert_int_equal(md_ext_close(fs), 0);
    assert_int_equal(md_image_commit(img), 0);
    md_tree_free(t);
    md_image_free(img);
    md_ctx_free(ctx);
}

static void test_determinism(void **state)
{
    const char *host = tpath("hostfile2");
    (void)state;
    make_hostfile(host, 12345);
    build_det("d1.img", host);
    /* different umask, TZ, cwd, host mtime: same bytes */
    umask(077);
    setenv("TZ", "Asia/Tokyo", 1);
    assert_int_equal(chdir("/"), 0);
    assert_int_equal(md_test_run("touch -d 2001-01-01 '%s'", host), 0);
    build_det("d2.img", host);
    umask(022);
    unsetenv("TZ");
    assert_int_equal(md_test_run("cmp '%s' '%s'", tpath("d1.img"), tpath("d2.img")), 0);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_errors(void **state)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "e.img", 4ULL << 20, 1);
    md_ext_format_opts o = MD_EXT_FORMAT_OPTS_INIT;
    md_ext *fs;
    md_tree *t;
    static char big[6 << 20];
    char *before, *after;
    (void)state;

    o.features = "^64bit,frobnicate";
    assert_int_equal(md_ext_format(img, 1, &o, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "frobnicate"));
    o.features = "inline_data";
    assert_int_equal(md_ext_format(img, 1, &o, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "inline_data"));
    o.features = "bigalloc";
    assert_int_equal(md_ext_format(img, 1, &o, NULL), -EINVAL);
    o.features = NULL;
    o.fs_type = 5;
    assert_int_equal(md_ext_format(img, 1, &o, NULL), -EINVAL);
    o.fs_type = MD_EXT4;
    o.uuid = "not-a-uuid";
    assert_int_equal(md_ext_format(img, 1, &o, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "not-a-uuid"));
    o.uuid = NULL;
    o.block_size = 3000;
    assert_int_equal(md_ext_format(img, 1, &o, NULL), -EINVAL);
    o.block_size = 0;
    assert_true(md_ext_format(img, 7, &o, NULL) < 0);   /* no partition 7 */
    assert_true(strlen(md_ctx_errmsg(ctx)) > 0);
    /* no filesystem yet */
    assert_int_equal(md_ext_open(img, 1, 0, &fs), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "no ext2/ext3/ext4 filesystem"));

    /* ENOSPC before the first write: the image is unchanged */
    assert_int_equal(md_ext_format(img, 1, &o, &fs), 0);
    assert_int_equal(md_ext_close(fs), 0);
    before = md_test_capture("sha256sum < '%s'", md_image_path(img));
    assert_int_equal(md_ext_open(img, 1, 0, &fs), 0);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    memset(big, 1, sizeof(big));
    assert_int_equal(md_tree_add_data(t, "small", "x", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "huge", big, sizeof(big), NULL), 0);
    assert_int_equal(md_ext_populate(fs, t, NULL), -ENOSPC);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "needs about"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), "free"));
    md_ext_free(fs);
    after = md_test_capture("sha256sum < '%s'", md_image_path(img));
    assert_string_equal(before, after);
    free(before);
    free(after);
    md_tree_free(t);

    /* a host file that changed size after it was added */
    assert_int_equal(md_ext_open(img, 1, 0, &fs), 0);
    make_hostfile(tpath("shrinks"), 5000);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_file(t, "f", tpath("shrinks"), NULL), 0);
    make_hostfile(tpath("shrinks"), 100);
    assert_int_equal(md_ext_populate(fs, t, NULL), -ESTALE);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "shrinks"));
    md_tree_free(t);
    /* ...or vanished */
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_file(t, "g", tpath("shrinks"), NULL), 0);
    unlink(tpath("shrinks"));
    assert_true(md_ext_populate(fs, t, NULL) < 0);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "shrinks"));
    md_tree_free(t);
    /* symlink too long for 1 KiB blocks (4 MiB partition: 1 KiB blocks) */
    assert_int_equal(md_tree_new(ctx, &t), 0);
    memset(big, 'l', 2000);
    big[2000] = '\0';
    assert_int_equal(md_tree_add_symlink(t, "long", big, NULL), 0);
    assert_int_equal(md_ext_populate(fs, t, NULL), -ENAMETOOLONG);
    md_tree_free(t);
    assert_int_equal(md_ext_close(fs), 0);
    md_image_free(img);
    md_ctx_free(ctx);

    assert_null(md_ext_ctx(NULL));
    md_ext_free(NULL);
    assert_int_equal(md_ext_close(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_variants),
        cmocka_unit_test(test_format_uuid_and_mke2fs_defaults),
        cmocka_unit_test(test_populate_ext4),
        cmocka_unit_test(test_populate_ext2_1k),
        cmocka_unit_test(test_populate_ext3),
        cmocka_unit_test(test_populate_merge_and_target),
        cmocka_unit_test(test_populate_sort_order),
        cmocka_unit_test(test_populate_progress),
        cmocka_unit_test(test_populate_append_existing),
        cmocka_unit_test(test_list_empty_dir),
        cmocka_unit_test(test_single_entries),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
