/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FAT module: each type formatted and checked by fsck.fat -n and blkid,
 * short-name generation (basis names, ~N collisions, case flags), the
 * long-name checksum, timestamps stored as UTC whatever TZ says,
 * refusals before any write, read-back of everything written (our reader
 * and mtools), images made by mkfs.fat + mcopy read by ours, corrupt boot
 * sectors, looping chains and impossible sizes refused without crashing,
 * the pipeline.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "md-fat-internal.h"
#include "test-util.h"

static char tmpdir[256];
#define EPOCH 1700000000LL /* 2023-11-14 22:13:20 UTC */

static int setup(void **state)
{
    (void)state;
    /* every time conversion must ignore the host's zone: run far from UTC */
    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-fat.XXXXXX");
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

/* Warnings the library logs, kept for the checks. */
struct logbuf {
    int n;
    char text[8192];
};

static void log_cb(void *ud, int prio, const char *msg)
{
    struct logbuf *l = ud;
    size_t len = strlen(l->text);

    if (prio > MD_LOG_WARNING)
        return;
    l->n++;
    snprintf(l->text + len, sizeof(l->text) - len, "%s\n", msg);
}

static md_ctx *new_ctx(void)
{
    md_ctx *ctx;
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_set_epoch(ctx, EPOCH), 0);
    return ctx;
}

/* A fresh image without a table: the filesystem is the whole file, so
 * fsck.fat and mtools read it as it is. */
static md_image *new_image(md_ctx *ctx, const char *name, uint64_t size)
{
    md_image_create_opts co = MD_IMAGE_CREATE_OPTS_INIT;
    md_image *img;

    co.flags = MD_IMAGE_FORCE;
    assert_int_equal(md_image_create(ctx, tpath(name), size, &co, &img), 0);
    /* published at once: the judges read it by its name */
    assert_int_equal(md_image_commit(img), 0);
    return img;
}

static int fsck_ok(const char *path)
{
    int r = md_test_run("fsck.fat -n '%s' >'%s' 2>&1", path, tpath("fsck.log"));
    if (r != 0 || md_test_run("grep -qi 'warning' '%s'", tpath("fsck.log")) == 0)
        md_test_run("cat '%s' >&2", tpath("fsck.log"));
    return r;
}

static void need_judges(void)
{
    md_test_need_tool("fsck.fat", "dosfstools");
    md_test_need_tool("mdir", "mtools");
    md_test_need_tool("mcopy", "mtools");
    md_test_need_tool("blkid", "util-linux");
}

static void put_file(const char *rel, const void *data, size_t n)
{
    FILE *f = fopen(tpath(rel), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* ---- format ---------------------------------------------------------------------- */

struct fmt_case {
    uint64_t size;
    int32_t want;       /* asked */
    int32_t type;       /* got */
    uint32_t cluster;
};

static void test_format_types(void **state)
{
    static const struct fmt_case cases[] = {
        { 1 << 20, MD_VFAT, MD_FAT12, 2048 },
        { 4 << 20, MD_VFAT, MD_FAT12, 2048 },
        { 16 << 20, MD_VFAT, MD_FAT16, 2048 },
        { 64 << 20, MD_VFAT, MD_FAT16, 2048 },
        { 300 << 20, MD_VFAT, MD_FAT16, 8192 },
        { 600 << 20, MD_VFAT, MD_FAT32, 4096 },
        { 64 << 20, MD_FAT12, MD_FAT12, 32768 },
        { 64 << 20, MD_FAT32, MD_FAT32, 512 },
        { 40 << 20, MD_FAT32, MD_FAT32, 512 },
    };
    md_ctx *ctx;
    size_t i;

    (void)state;
    need_judges();
    ctx = new_ctx();
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        md_fat_format_opts fo = MD_FAT_FORMAT_OPTS_INIT;
        md_fat_info info = MD_FAT_INFO_INIT;
        md_image *img = new_image(ctx, "fmt.img", cases[i].size);
        md_fat *f;
        char *out;

        fo.fat_type = cases[i].want;
        fo.label = "efi boot";
        fo.volume_id = "1234-ABCD";
        assert_int_equal(md_fat_format(img, 0, &fo, NULL), 0);
        assert_int_equal(fsck_ok(md_image_path(img)), 0);
        out = md_test_capture("blkid -p -o export '%s'", md_image_path(img));
        assert_non_null(strstr(out, "TYPE=vfat"));
        assert_non_null(strstr(out, "LABEL=EFI\\ BOOT")); /* upper-cased */
        assert_non_null(strstr(out, "UUID=1234-ABCD"));
        assert_non_null(strstr(out, cases[i].type == MD_FAT32 ? "VERSION=FAT32" :
                               cases[i].type == MD_FAT16 ? "VERSION=FAT16" : "VERSION=FAT12"));
        free(out);
        assert_int_equal(md_fat_open(img, 0, MD_FAT_RDONLY, &f), 0);
        assert_int_equal(md_fat_get_info(f, &info), 0);
        assert_int_equal(info.fat_type, cases[i].type);
        assert_int_equal(info.cluster_size, cases[i].cluster);
        assert_int_equal(info.volume_id, 0x1234abcdu);
        assert_string_equal(info.label, "EFI BOOT");
        assert_string_equal(info.oem_name, "MSWIN4.1");
        /* FAT32's root cluster is in use, nothing else */
        assert_int_equal(info.free_clusters, info.clusters - (cases[i].type == MD_FAT32));
        md_fat_close(f);
        md_image_free(img);
    }
    md_ctx_free(ctx);
}

/* mkfs.fat lays out the same numbers: sectors per track, FAT size, root, clusters. */
static void test_format_like_mkfs(void **state)
{
    static const uint32_t mib[] = { 2, 8, 33, 100, 511, 512 };
    md_ctx *ctx;
    size_t i;

    (void)state;
    md_test_need_tool("mkfs.fat", "dosfstools");
    md_test_need_tool("fsck.fat", "dosfstools");
    ctx = new_ctx();
    for (i = 0; i < sizeof(mib) / sizeof(mib[0]); i++) {
        md_image *img = new_image(ctx, "ours.img", (uint64_t)mib[i] << 20);
        char *a, *b;

        assert_int_equal(md_fat_format(img, 0, NULL, NULL), 0);
        assert_int_equal(md_test_run("rm -f '%s' && truncate -s %uM '%s' && mkfs.fat '%s' >/dev/null",
                             tpath("mkfs.img"), mib[i], tpath("mkfs.img"), tpath("mkfs.img")), 0);
#define GEOM "fsck.fat -n -v '%s' | grep -E 'per cluster|reserved|entries|per FAT|data clusters|total|track'"
        a = md_test_capture(GEOM, tpath("mkfs.img"));
        b = md_test_capture(GEOM, md_image_path(img));
#undef GEOM
        assert_true(strlen(a) > 100);
        assert_string_equal(a, b);
        free(a);
        free(b);
        md_image_free(img);
    }
    md_ctx_free(ctx);
}

static void test_format_errors(void **state)
{
    md_fat_format_opts fo = MD_FAT_FORMAT_OPTS_INIT;
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "small.img", 32 << 20);

    (void)state;
    fo.fat_type = MD_FAT32;
    assert_int_equal(md_fat_format(img, 0, &fo, NULL), -ENOSPC);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "too small for FAT32"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), "65525 clusters"));
    md_image_free(img);
    img = new_image(ctx, "small.img", 4 << 20);
    fo.fat_type = MD_FAT16;
    assert_int_equal(md_fat_format(img, 0, &fo, NULL), -ENOSPC);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "too small for FAT16"));
    md_fat_format_opts_init(&fo);
    fo.label = "TOO LONG LABEL";
    assert_int_equal(md_fat_format(img, 0, &fo, NULL), -EINVAL);
    fo.label = "A:B";
    assert_int_equal(md_fat_format(img, 0, &fo, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "':'"));
    fo.label = NULL;
    fo.volume_id = "12345";
    assert_int_equal(md_fat_format(img, 0, &fo, NULL), -EINVAL);
    fo.volume_id = NULL;
    fo.cluster_size = 3000;
    assert_int_equal(md_fat_format(img, 0, &fo, NULL), -EINVAL);
    fo.cluster_size = 0;
    fo.oem_name = "TOOLONGNAME";
    assert_int_equal(md_fat_format(img, 0, &fo, NULL), -EINVAL);
    fo.oem_name = NULL;
    fo.fat_type = 7;
    assert_int_equal(md_fat_format(img, 0, &fo, NULL), -EINVAL);
    assert_int_equal(md_fat_format(img, 3, NULL, NULL), -EINVAL); /* no table: no partition 3 */
    md_image_free(img);
    md_ctx_free(ctx);
}

/* ---- names ------------------------------------------------------------------------ */

struct name_case {
    const char *name;
    const char *basis;  /* 11 bytes */
    bool exact, lfn;
    uint8_t lcase;
};

static void test_short_names(void **state)
{
    static const struct name_case cases[] = {
        { "README.TXT", "README  TXT", true, false, 0 },
        { "readme.txt", "README  TXT", true, false, FAT_CASE_LOWER_BASE | FAT_CASE_LOWER_EXT },
        { "readme.TXT", "README  TXT", true, false, FAT_CASE_LOWER_BASE },
        { "README.txt", "README  TXT", true, false, FAT_CASE_LOWER_EXT },
        { "ReadMe.txt", "README  TXT", true, true, 0 },   /* mixed case: a long name too */
        { "12345678.abc", "12345678ABC", true, false, FAT_CASE_LOWER_EXT },
        { "BOOTX64.EFI", "BOOTX64 EFI", true, false, 0 },
        { "EFI", "EFI        ", true, false, 0 },
        { "a~1", "A~1        ", true, false, FAT_CASE_LOWER_BASE },
        { "$%'-_@~`!(){}^#&.x", "$%'-_@~`X  ", false, true, 0 },
        { "longfilename.txt", "LONGFILETXT", false, true, 0 },
        { "ABCDEFGHI.TXT", "ABCDEFGHTXT", false, true, 0 },
        { "A.TEXT", "A       TEX", false, true, 0 },
        { "a b.txt", "AB      TXT", false, true, 0 },
        { ".bashrc", "BASHRC     ", false, true, 0 },   /* only a dot before: no extension */
        { "...x.y", "X       Y  ", false, true, 0 },
        { "a.b.c", "AB      C  ", false, true, 0 },
        { "file.tar.gz", "FILETAR GZ ", false, true, 0 },
        { "x+y=z[1].txt", "X_Y_Z_1_TXT", false, true, 0 },
        { "a,b;c", "A_B_C      ", false, true, 0 },
        { "\xc3\xbcn\xc3\xaf.txt", "_N_     TXT", false, true, 0 },   /* ünï.txt */
        { "verylongname", "VERYLONG   ", false, true, 0 },
        { " lead", "LEAD       ", false, true, 0 },
    };
    struct md_fat_name nm;
    const char *why;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct name_case *c = &cases[i];
        assert_int_equal(md_fat_name_parse(c->name, strlen(c->name), &nm, &why), 0);
        md_fat_name_basis(&nm);
        if (memcmp(nm.sfn, c->basis, 11) || nm.exact != c->exact || nm.lfn != c->lfn ||
            nm.lcase != c->lcase)
            fail_msg("'%s': got '%.11s' exact %d lfn %d lcase 0x%x, want '%s' %d %d 0x%x", c->name,
                     nm.sfn, nm.exact, nm.lfn, nm.lcase, c->basis, c->exact, c->lfn, c->lcase);
    }
}

static void test_name_tails(void **state)
{
    static const struct { const char *basis; uint32_t n; const char *want; } cases[] = {
        { "LONGFILETXT", 1, "LONGFI~1TXT" },
        { "LONGFILETXT", 9, "LONGFI~9TXT" },
        { "LONGFILETXT", 10, "LONGF~10TXT" },
        { "LONGFILETXT", 100, "LONG~100TXT" },
        { "LONGFILETXT", 999999, "L~999999TXT" },
        { "AB      TXT", 1, "AB~1    TXT" },
        { "AB      TXT", 12345, "AB~12345TXT" },
        { "BASHRC     ", 1, "BASHRC~1   " },
        { "X          ", 3, "X~3        " },
    };
    uint8_t out[11];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        md_fat_name_tail((const uint8_t *)cases[i].basis, cases[i].n, out);
        if (memcmp(out, cases[i].want, 11))
            fail_msg("tail %u of '%s': '%.11s', want '%s'", cases[i].n, cases[i].basis, out,
                     cases[i].want);
    }
}

static void test_name_refusals(void **state)
{
    static const char *const bad[] = { "a:b", "a*b", "a?b", "a<b", "a>b", "a|b", "a\"b", "a\\b",
                                       "tab\there", "del\x7f", "dot.", "space ", "\xff\xfe",
                                       "\xc0\xaf" /* overlong '/' */ };
    char longname[300];
    struct md_fat_name nm;
    const char *why;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (md_fat_name_parse(bad[i], strlen(bad[i]), &nm, &why) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(why);
    }
    memset(longname, 'a', 255);
    longname[255] = '\0';
    assert_int_equal(md_fat_name_parse(longname, 255, &nm, &why), 0);
    assert_int_equal(nm.n, 255);
    longname[255] = 'b';
    longname[256] = '\0';
    assert_int_equal(md_fat_name_parse(longname, 256, &nm, &why), -EINVAL);
    assert_non_null(strstr(why, "255"));
    /* a character outside the BMP counts two units */
    assert_int_equal(md_fat_name_parse("\xf0\x9f\x98\x80", 4, &nm, &why), 0);
    assert_int_equal(nm.n, 2);
    assert_int_equal(nm.u[0], 0xd83d);
    assert_int_equal(nm.u[1], 0xde00);
    /* case folding beyond ASCII */
    assert_int_equal(md_fat_name_cmp_ci("\xc3\xa9t\xc3\xa9", "\xc3\x89T\xc3\x89"), 0);   /* été */
    assert_int_equal(md_fat_name_cmp_ci("\xd0\xb4\xd0\xb0", "\xd0\x94\xd0\x90"), 0);     /* да */
    assert_true(md_fat_name_cmp_ci("abc", "abd") != 0);
}

static void test_lfn_checksum(void **state)
{
    struct md_fat_name nm;
    uint8_t slots[2 * FAT_DIRENT];
    const char *why;
    char back[64];

    (void)state;
    /* values worked out by hand from the specification's rotate-and-add */
    assert_int_equal(md_fat_lfn_checksum((const uint8_t *)"README  TXT"), 0x73);
    assert_int_equal(md_fat_lfn_checksum((const uint8_t *)"LONGFI~1TXT"), 0xd4);
    assert_int_equal(md_fat_lfn_checksum((const uint8_t *)"BOOTX64 EFI"), 0x1d);
    /* a 14-unit name takes two slots: the last first (0x42), a NUL, then 0xFFFF */
    assert_int_equal(md_fat_name_parse("longfilename.x", 14, &nm, &why), 0);
    md_fat_name_basis(&nm);
    md_fat_name_tail(nm.sfn, 1, nm.sfn);
    assert_int_equal(md_fat_lfn_slots(nm.n), 2);
    md_fat_lfn_encode(&nm, slots);
    assert_int_equal(slots[0], 0x42);
    assert_int_equal(slots[FAT_DIRENT], 0x01);
    assert_int_equal(slots[11], 0x0f);
    assert_int_equal(slots[13], md_fat_lfn_checksum(nm.sfn));
    assert_int_equal(slots[FAT_DIRENT + 13], md_fat_lfn_checksum(nm.sfn));
    assert_int_equal(md_get_le16(slots + 1), 'x');            /* unit 13 */
    assert_int_equal(md_get_le16(slots + 3), 0x0000);         /* the terminator */
    assert_int_equal(md_get_le16(slots + 5), 0xffff);         /* padding */
    assert_int_equal(md_get_le16(slots + FAT_DIRENT + 1), 'l');
    md_fat_utf16_to_utf8(nm.u, nm.n, back);
    assert_string_equal(back, "longfilename.x");
}

/* ---- times ------------------------------------------------------------------------------ */

static void test_times(void **state)
{
    uint16_t d, t;
    uint8_t cs;

    (void)state;
    md_fat_time_to(EPOCH, &d, &t, &cs); /* 2023-11-14 22:13:20 UTC, also in Tokyo */
    assert_int_equal(d, (43 << 9) | (11 << 5) | 14);
    assert_int_equal(t, (22 << 11) | (13 << 5) | 10);
    assert_int_equal(cs, 0);
    md_fat_time_to(EPOCH + 1, &d, &t, &cs);
    assert_int_equal(t, (22 << 11) | (13 << 5) | 10);
    assert_int_equal(cs, 100);
    assert_int_equal(md_fat_time_from(d, t), EPOCH);
    md_fat_time_to(0, &d, &t, &cs);                  /* 1970: clamped to 1980-01-01 */
    assert_int_equal(d, (0 << 9) | (1 << 5) | 1);
    assert_int_equal(t, 0);
    assert_int_equal(md_fat_time_from(d, t), 315532800);
    md_fat_time_to(INT64_C(5000000000), &d, &t, &cs); /* 2128: clamped to 2107-12-31 23:59:58 */
    assert_int_equal(d, (127 << 9) | (12 << 5) | 31);
    assert_int_equal(t, (23 << 11) | (59 << 5) | 29);
    assert_int_equal(md_fat_time_from(d, t), FAT_TIME_MAX);
    md_fat_time_to(951782400, &d, &t, &cs);          /* 2000-02-29 00:00:00, a leap day */
    assert_int_equal(d, (20 << 9) | (2 << 5) | 29);
}

/* ---- populate and read back ----------------------------------------------------------- */

static md_tree *sample_tree(md_ctx *ctx)
{
    md_attr a = MD_ATTR_INIT;
    md_tree *t;
    char name[64], *big;
    int i;

    big = malloc(3 << 20);
    assert_non_null(big);
    for (i = 0; i < (3 << 20); i++)
        big[i] = (char)(i * 7 + i / 4096);
    put_file("big.src", big, 3 << 20);
    free(big);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "EFI/BOOT/BOOTX64.EFI", "MZ-stub", 7, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "readme.txt", "hello\n", 6, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "ReadMe2.Txt", "mixed\n", 6, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "A long name with spaces.text", "long\n", 5, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "empty", "", 0, NULL), 0);
    assert_int_equal(md_tree_add_file(t, "dir/sub/big.bin", tpath("big.src"), NULL), 0);
    assert_int_equal(md_tree_add_dir(t, "dir/emptydir", NULL), 0);
    assert_int_equal(md_tree_add_data(t, "dir/\xc3\xbcnic\xc3\xb6" "de.txt", "u\n", 2, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "dir/LONGFI~1.TXT", "taken\n", 6, NULL), 0);
    for (i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "dir/longfilename%02d.txt", i);
        assert_int_equal(md_tree_add_data(t, name, name, strlen(name), NULL), 0);
    }
    a.mtime = 0; /* 1970: stored as 1980 */
    assert_int_equal(md_tree_add_data(t, "old.txt", "old\n", 4, &a), 0);
    return t;
}

struct listing {
    char text[65536];
};

static int list_cb(void *ud, const char *name, const md_fat_stat *st)
{
    struct listing *l = ud;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof(l->text) - len, "%s|%s|%c|%llu|%lld\n", name, st->short_name,
             S_ISDIR(st->mode) ? 'd' : 'f', (unsigned long long)st->size, (long long)st->mtime);
    return 0;
}

static void populate_one(int32_t type, uint64_t size)
{
    md_fat_format_opts fo = MD_FAT_FORMAT_OPTS_INIT;
    struct logbuf log;
    struct listing l;
    md_ctx *ctx = new_ctx();
    md_tree *t = sample_tree(ctx);
    md_image *img = new_image(ctx, "pop.img", size);
    const char *p;
    md_fat *f;
    void *data;
    size_t n;
    char *out;

    memset(&log, 0, sizeof(log));
    md_ctx_set_log_fn(ctx, log_cb, &log, MD_LOG_WARNING);
    fo.fat_type = type;
    fo.label = "POP";
    assert_int_equal(md_fat_format(img, 0, &fo, &f), 0);
    assert_int_equal(md_fat_populate(f, t, NULL), 0);
    assert_int_equal(log.n, 0);
    /* a second populate: the filesystem is not empty any more */
    assert_int_equal(md_fat_populate(f, t, NULL), -ENOTEMPTY);
    md_fat_close(f);
    p = md_image_path(img);
    assert_int_equal(fsck_ok(p), 0);

    /* mtools: the names and contents */
    out = md_test_capture("MTOOLS_SKIP_CHECK=1 mdir -i '%s' ::/dir", p);
    assert_non_null(strstr(out, "LONGFI~1 TXT         6"));     /* the exact name keeps its SFN */
    assert_non_null(strstr(out, "LONGFI~2 TXT"));               /* the first generated one */
    assert_non_null(strstr(out, "longfilename00.txt"));
    assert_non_null(strstr(out, "LONGF~10 TXT"));
    assert_non_null(strstr(out, "LONGF~13 TXT"));
    assert_non_null(strstr(out, "\xc3\xbcnic\xc3\xb6" "de.txt"));
    free(out);
    out = md_test_capture("MTOOLS_SKIP_CHECK=1 mdir -i '%s' ::/", p);
    assert_non_null(strstr(out, "readme   txt"));               /* NT case flags, no long name */
    assert_non_null(strstr(out, "README2  TXT         6 2023-11-14  22:13  ReadMe2.Txt"));
    assert_non_null(strstr(out, "old      txt         4 1980-01-01   0:00"));
    free(out);
    assert_int_equal(md_test_run("cd '%s' && rm -rf mc && mkdir mc && MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' ::/dir mc/ "
                         "&& cmp mc/dir/sub/big.bin big.src", tmpdir, p), 0);

    /* our reader */
    assert_int_equal(md_fat_open(img, 0, MD_FAT_RDONLY, &f), 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(md_fat_list(f, "/", list_cb, &l), 0);
    assert_string_equal(l.text,
                        "A long name with spaces.text|ALONGN~1.TEX|f|5|1700000000\n"
                        "EFI|EFI|d|0|1700000000\n"
                        "ReadMe2.Txt|README2.TXT|f|6|1700000000\n"
                        "dir|DIR|d|0|1700000000\n"
                        "empty|EMPTY|f|0|1700000000\n"
                        "old.txt|OLD.TXT|f|4|315532800\n"
                        "readme.txt|README.TXT|f|6|1700000000\n");
    memset(&l, 0, sizeof(l));
    assert_int_equal(md_fat_list(f, "dir/sub", list_cb, &l), 0);
    assert_string_equal(l.text, "big.bin|BIG.BIN|f|3145728|1700000000\n");
    memset(&l, 0, sizeof(l));
    assert_int_equal(md_fat_list(f, "DIR/EMPTYDIR", list_cb, &l), 0);
    assert_string_equal(l.text, "");
    assert_int_equal(md_fat_read_file(f, "/efi/boot/bootx64.efi", &data, &n), 0);
    assert_int_equal(n, 7);
    assert_memory_equal(data, "MZ-stub", 7);
    free(data);
    assert_int_equal(md_fat_read_file(f, "dir/longfi~3.txt", &data, &n), 0); /* by short name */
    assert_string_equal(data, "dir/longfilename01.txt");
    free(data);
    assert_int_equal(md_fat_read_file(f, "empty", &data, &n), 0);
    assert_int_equal(n, 0);
    free(data);
    assert_int_equal(md_fat_extract_file(f, "dir/sub/big.bin", tpath("big.out")), 0);
    assert_int_equal(md_test_run("cmp '%s' '%s'", tpath("big.out"), tpath("big.src")), 0);
    {
        int fd = open(tpath("fd.out"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(md_fat_extract_fd(f, "a long name with spaces.TEXT", fd), 0);
        close(fd);
        assert_int_equal(md_test_run("printf 'long\\n' | cmp - '%s'", tpath("fd.out")), 0);
    }
    assert_int_equal(md_fat_read_file(f, "nope", &data, &n), -ENOENT);
    assert_int_equal(md_fat_read_file(f, "dir", &data, &n), -EISDIR);
    assert_int_equal(md_fat_list(f, "readme.txt", list_cb, &l), -ENOTDIR);
    assert_int_equal(md_fat_read_file(f, "readme.txt/x", &data, &n), -ENOTDIR);
    assert_int_equal(md_fat_extract_file(f, "nope", tpath("nope.out")), -ENOENT);
    assert_int_equal(access(tpath("nope.out"), F_OK), -1);
    md_fat_close(f);
    md_image_free(img);
    md_tree_free(t);
    md_ctx_free(ctx);
}

static void test_populate_fat12(void **state)
{
    (void)state;
    need_judges();
    populate_one(MD_FAT12, 8 << 20);
}

static void test_populate_fat16(void **state)
{
    (void)state;
    need_judges();
    populate_one(MD_FAT16, 32 << 20);
}

static void test_populate_fat32(void **state)
{
    (void)state;
    need_judges();
    populate_one(MD_FAT32, 40 << 20);
}

/* On-disk bytes of the entries: times as UTC, LFN checksums, '.' and '..'. */
static void test_populate_raw(void **state)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "raw.img", 8 << 20);
    md_fat_format_opts fo = MD_FAT_FORMAT_OPTS_INIT;
    md_fat_stat st = MD_FAT_STAT_INIT;
    md_attr a = MD_ATTR_INIT;
    uint8_t root[512 * 32], sub[2048];
    md_tree *t;
    md_fat *f;
    int fd;

    (void)state;
    fo.fat_type = MD_FAT12;
    assert_int_equal(md_tree_new(ctx, &t), 0);
    a.mtime = EPOCH - 1; /* an odd second: the creation time's hundredths hold it */
    assert_int_equal(md_tree_add_data(t, "Long File Name.txt", "x", 1, &a), 0);
    assert_int_equal(md_tree_add_dir(t, "d", &a), 0);
    assert_int_equal(md_fat_format(img, 0, &fo, &f), 0);
    assert_int_equal(md_fat_populate(f, t, NULL), 0);
    assert_int_equal(md_fat_stat_path(f, "d", &st), 0);
    fd = open(md_image_path(img), O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    /* FAT12 of 8 MiB: the root at sector 28 (mkfs.fat's layout), clusters of 2 KiB after it */
    assert_int_equal(md_pread_full(fd, root, sizeof(root), 28 * 512), 0);
    assert_int_equal(md_pread_full(fd, sub, sizeof(sub), md_fat_cluster_off(f, st.cluster)), 0);
    close(fd);
    md_fat_close(f);
    /* no label: the long name's two slots, then its short entry */
    assert_int_equal(root[0], 0x42);
    assert_int_equal(root[11], 0x0f);
    assert_memory_equal(root + 64, "LONGFI~1TXT", 11);
    assert_int_equal(root[13], md_fat_lfn_checksum(root + 64));
    assert_int_equal(root[32 + 13], md_fat_lfn_checksum(root + 64));
    assert_int_equal(root[64 + 11], FAT_ATTR_ARCH);
    /* 22:13:19 UTC whatever TZ says: two-second time, 100 hundredths in the creation time */
    assert_int_equal(md_get_le16(root + 64 + 22), (22 << 11) | (13 << 5) | 9);
    assert_int_equal(md_get_le16(root + 64 + 24), (43 << 9) | (11 << 5) | 14);
    assert_int_equal(root[64 + 13], 100);
    assert_int_equal(md_get_le16(root + 64 + 14), (22 << 11) | (13 << 5) | 9);
    assert_int_equal(md_get_le16(root + 64 + 16), (43 << 9) | (11 << 5) | 14);
    assert_int_equal(md_get_le16(root + 64 + 18), (43 << 9) | (11 << 5) | 14);
    assert_int_equal(md_get_le32(root + 64 + 28), 1);
    /* "d": lower case through the NT flag, no long name */
    assert_memory_equal(root + 96, "D          ", 11);
    assert_int_equal(root[96 + 11], FAT_ATTR_DIR);
    assert_int_equal(root[96 + 12], FAT_CASE_LOWER_BASE);
    assert_int_equal(root[128], 0);
    /* its "." and ".." (the root is cluster 0) */
    assert_memory_equal(sub, ".          ", 11);
    assert_int_equal(md_get_le16(sub + 26), st.cluster);
    assert_memory_equal(sub + 32, "..         ", 11);
    assert_int_equal(md_get_le16(sub + 32 + 26), 0);
    assert_int_equal(sub[64], 0);
    /* contiguous in tree order: the file (first by path) at cluster 2, the directory after it */
    assert_int_equal(md_get_le16(root + 64 + 26), 2);
    assert_int_equal(st.cluster, 3);
    md_image_free(img);
    md_tree_free(t);
    md_ctx_free(ctx);
}

static void test_populate_refusals(void **state)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "ref.img", 4 << 20);
    md_fat_populate_opts po = MD_FAT_POPULATE_OPTS_INIT;
    struct logbuf log;
    md_tree *t;
    md_fat *f;
    char *before, *after;
    int i;

    (void)state;
    md_test_need_tool("sha256sum", "coreutils");
    assert_int_equal(md_fat_format(img, 0, NULL, &f), 0);
    before = md_test_capture("sha256sum < '%s'", md_image_path(img));

    /* a symlink, a device, a FIFO: refused, naming the entry */
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "ok.txt", "ok", 2, NULL), 0);
    assert_int_equal(md_tree_add_symlink(t, "bin/sh", "busybox", NULL), 0);
    assert_int_equal(md_fat_populate(f, t, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "'bin/sh' is a symlink"));
    assert_int_equal(md_tree_add_node(t, "dev/console", MD_NODE_CHR, 5, 1, NULL), 0);
    assert_int_equal(md_tree_add_node(t, "run/fifo", MD_NODE_FIFO, 0, 0, NULL), 0);
    assert_int_equal(md_fat_populate(f, t, NULL), -EINVAL);
    /* skipped with one warning when asked */
    memset(&log, 0, sizeof(log));
    md_ctx_set_log_fn(ctx, log_cb, &log, MD_LOG_WARNING);
    md_tree_free(t);

    /* names */
    {
        static const char *const bad[] = { "a:b", "trailing.", "trailing ", "ctl\x01", "q?" };
        for (i = 0; i < 5; i++) {
            assert_int_equal(md_tree_new(ctx, &t), 0);
            assert_int_equal(md_tree_add_data(t, bad[i], "x", 1, NULL), 0);
            assert_int_equal(md_fat_populate(f, t, NULL), -EINVAL);
            assert_non_null(strstr(md_ctx_errmsg(ctx), bad[i]));
            md_tree_free(t);
        }
    }
    /* two names differing in case: both named */
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "d/Foo.txt", "1", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "d/FOO.TXT", "2", 1, NULL), 0);
    assert_int_equal(md_fat_populate(f, t, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "'d/FOO.TXT' and 'd/Foo.txt' differ only in case"));
    md_tree_free(t);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "\xc3\xa9t\xc3\xa9", "1", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "\xc3\x89T\xc3\x89", "2", 1, NULL), 0);
    assert_int_equal(md_fat_populate(f, t, NULL), -EINVAL);
    md_tree_free(t);
    /* too full: the message says what is needed */
    {
        char *blob = calloc(1, 5 << 20);
        assert_non_null(blob);
        blob[0] = 1;
        assert_int_equal(md_tree_new(ctx, &t), 0);
        assert_int_equal(md_tree_add_data(t, "blob", blob, 5 << 20, NULL), 0);
        free(blob);
        assert_int_equal(md_fat_populate(f, t, NULL), -ENOSPC);
        assert_non_null(strstr(md_ctx_errmsg(ctx), "need 2560 clusters of 2048 bytes (5120 KiB)"));
        md_tree_free(t);
    }
    /* FAT12/16's fixed root: 512 entries */
    assert_int_equal(md_tree_new(ctx, &t), 0);
    for (i = 0; i < 513; i++) {
        char name[32];
        snprintf(name, sizeof(name), "F%d", i);
        assert_int_equal(md_tree_add_data(t, name, "", 0, NULL), 0);
    }
    assert_int_equal(md_fat_populate(f, t, NULL), -ENOSPC);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "root directory needs 513 entries"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), "holds 512"));
    md_tree_free(t);
    /* a file of 4 GiB (sparse on the host) */
    {
        int fd = open(tpath("4g"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t)1 << 32), 0);
        close(fd);
        assert_int_equal(md_tree_new(ctx, &t), 0);
        assert_int_equal(md_tree_add_file(t, "huge", tpath("4g"), NULL), 0);
        assert_int_equal(md_fat_populate(f, t, NULL), -EFBIG);
        assert_non_null(strstr(md_ctx_errmsg(ctx), "'huge'"));
        md_tree_free(t);
        unlink(tpath("4g"));
    }
    /* nothing was written by any of these */
    after = md_test_capture("sha256sum < '%s'", md_image_path(img));
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* specials skipped on request; owners and modes: one warning with the count */
    assert_int_equal(md_tree_new(ctx, &t), 0);
    {
        md_attr a = MD_ATTR_INIT;
        a.uid = 1000;
        assert_int_equal(md_tree_add_data(t, "owned1", "x", 1, &a), 0);
        a.uid = 0;
        a.mode = 0755;
        assert_int_equal(md_tree_add_data(t, "exec", "x", 1, &a), 0);
        assert_int_equal(md_tree_add_data(t, "plain", "x", 1, NULL), 0);
        assert_int_equal(md_tree_add_symlink(t, "link", "plain", NULL), 0);
        assert_int_equal(md_tree_add_node(t, "sock", MD_NODE_SOCK, 0, 0, NULL), 0);
    }
    po.flags = MD_FAT_SKIP_SPECIAL;
    assert_int_equal(md_fat_populate(f, t, &po), 0);
    assert_int_equal(log.n, 2);
    assert_non_null(strstr(log.text, "2 left out ('link' and others)"));
    assert_non_null(strstr(log.text, "2 entries with an owner"));
    md_tree_free(t);
    md_fat_close(f);
    assert_int_equal(fsck_ok(md_image_path(img)), 0);
    md_image_free(img);
    md_ctx_free(ctx);
}

/* A directory bigger than one cluster (long names), on FAT32 the root too. */
static void test_populate_big_dirs(void **state)
{
    md_fat_format_opts fo = MD_FAT_FORMAT_OPTS_INIT;
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "bigdir.img", 40 << 20);
    struct listing *l = calloc(1, sizeof(*l));
    md_tree *t;
    md_fat *f;
    char name[80];
    int i;

    (void)state;
    need_judges();
    assert_non_null(l);
    fo.fat_type = MD_FAT32;
    assert_int_equal(md_tree_new(ctx, &t), 0);
    for (i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "A rather long file name number %03d.data", i);
        assert_int_equal(md_tree_add_data(t, name, name, strlen(name), NULL), 0);
        snprintf(name, sizeof(name), "sub/Another long name in a subdirectory %03d", i);
        assert_int_equal(md_tree_add_data(t, name, "", 0, NULL), 0);
    }
    assert_int_equal(md_fat_format(img, 0, &fo, &f), 0);
    assert_int_equal(md_fat_populate(f, t, NULL), 0);
    md_fat_close(f);
    assert_int_equal(fsck_ok(md_image_path(img)), 0);
    assert_int_equal(md_test_run("test $(MTOOLS_SKIP_CHECK=1 mdir -b -i '%s' ::/ | wc -l) = 301", md_image_path(img)), 0);
    assert_int_equal(md_test_run("test $(MTOOLS_SKIP_CHECK=1 mdir -b -i '%s' ::/sub | wc -l) = 300", md_image_path(img)), 0);
    assert_int_equal(md_fat_open(img, 0, 0, &f), 0);
    assert_int_equal(md_fat_list(f, "sub", list_cb, l), 0);
    assert_non_null(strstr(l->text, "Another long name in a subdirectory 299|ANOT~300|"));
    md_fat_close(f);
    free(l);
    md_image_free(img);
    md_tree_free(t);
    md_ctx_free(ctx);
}

static void test_determinism(void **state)
{
    char *sum[2];
    int i;

    (void)state;
    md_test_need_tool("sha256sum", "coreutils");
    for (i = 0; i < 2; i++) {
        md_ctx *ctx = new_ctx();
        md_tree *t = sample_tree(ctx);
        md_image *img = new_image(ctx, i ? "det2.img" : "det1.img", 40 << 20);
        md_fat *f;

        setenv("TZ", i ? "America/Los_Angeles" : "Asia/Tokyo", 1);
        tzset();
        assert_int_equal(md_fat_format(img, 0, NULL, &f), 0);
        assert_int_equal(md_fat_populate(f, t, NULL), 0);
        md_fat_close(f);
        sum[i] = md_test_capture("sha256sum < '%s'", md_image_path(img));
        md_image_free(img);
        md_tree_free(t);
        md_ctx_free(ctx);
    }
    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    assert_string_equal(sum[0], sum[1]);
    free(sum[0]);
    free(sum[1]);
}

/* ---- reading what others wrote; corrupt images ------------------------------------------- */

static void test_read_mtools_image(void **state)
{
    struct listing l;
    md_ctx *ctx;
    md_image *img;
    md_fat *f;
    void *data;
    size_t n;

    (void)state;
    md_test_need_tool("mkfs.fat", "dosfstools");
    md_test_need_tool("mcopy", "mtools");
    ctx = new_ctx();
    put_file("m1.txt", "one\n", 4);
    assert_int_equal(md_test_run("cd '%s' && rm -f m.img && mkfs.fat -C -F 32 m.img 40000 >/dev/null && "
                         "MTOOLS_SKIP_CHECK=1 mmd -i m.img '::/Some Directory' && "
                         "MTOOLS_SKIP_CHECK=1 mcopy -i m.img m1.txt '::/Some Directory/A Long Name.txt' && "
                         "MTOOLS_SKIP_CHECK=1 mcopy -i m.img m1.txt ::/SHORT.TXT", tmpdir), 0);
    assert_int_equal(md_image_open(ctx, tpath("m.img"), MD_IMAGE_RDONLY, &img), 0);
    assert_int_equal(md_fat_open(img, 0, MD_FAT_RDONLY, &f), 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(md_fat_list(f, "/Some Directory", list_cb, &l), 0);
    assert_non_null(strstr(l.text, "A Long Name.txt|ALONGN~1.TXT|f|4|"));
    assert_int_equal(md_fat_read_file(f, "some directory/a long name.txt", &data, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(data, "one\n", 4);
    free(data);
    assert_int_equal(md_fat_read_file(f, "SHORT.TXT", &data, &n), 0);
    free(data);
    md_fat_close(f);
    md_image_free(img);
    md_ctx_free(ctx);
}

/* Populating a filesystem this handle did not make: mkfs.fat's, with a label
 * (kept); then refused once it holds something. */
static void test_populate_opened(void **state)
{
    static const char *const types[] = { "12", "16", "32" };
    size_t i;

    (void)state;
    need_judges();
    md_test_need_tool("mkfs.fat", "dosfstools");
    for (i = 0; i < 3; i++) {
        md_ctx *ctx = new_ctx();
        md_tree *t = sample_tree(ctx);
        md_image *img;
        md_fat *f;
        char *out;

        assert_int_equal(md_test_run("cd '%s' && rm -f o.img && mkfs.fat -C -F %s -n MKFS o.img 40960 "
                                     ">/dev/null", tmpdir, types[i]), 0);
        assert_int_equal(md_image_open(ctx, tpath("o.img"), 0, &img), 0);
        assert_int_equal(md_fat_open(img, 0, 0, &f), 0);
        assert_int_equal(md_fat_populate(f, t, NULL), 0);
        md_fat_close(f);
        assert_int_equal(fsck_ok(tpath("o.img")), 0);
        out = md_test_capture("MTOOLS_SKIP_CHECK=1 mdir -i '%s' ::/dir/sub", tpath("o.img"));
        assert_non_null(strstr(out, "Volume in drive : is MKFS"));
        assert_non_null(strstr(out, "big      bin   3145728"));
        free(out);
        assert_int_equal(md_fat_open(img, 0, 0, &f), 0);
        assert_int_equal(md_fat_populate(f, t, NULL), -ENOTEMPTY);
        md_fat_close(f);
        md_image_free(img);
        md_tree_free(t);
        md_ctx_free(ctx);
    }
}

/* Patch @n bytes at @off of the image file. */
static void patch(const char *path, uint64_t off, const void *bytes, size_t n)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(md_pwrite_full(fd, bytes, n, off), 0);
    close(fd);
}

static void test_corrupt_bpb(void **state)
{
    static const struct { uint32_t off; uint8_t len; uint32_t val; const char *msg; } cases[] = {
        { 510, 2, 0x0000, "signature" },
        { 0, 1, 0x00, "jump" },
        { 11, 2, 0, "bytes per sector" },
        { 11, 2, 8192, "bytes per sector" },
        { 13, 1, 3, "sectors per cluster" },
        { 13, 1, 0, "sectors per cluster" },
        { 14, 2, 0, "reserved" },
        { 16, 1, 0, "0 FATs" },
        { 17, 2, 17, "root directory entries" },
        { 19, 2, 0xffff, "do not fit" },          /* more sectors than the partition */
        { 21, 1, 0x12, "media" },
        { 22, 2, 0, "fixed root entries" },       /* no 16-bit FAT size: FAT32, which has none */
        { 22, 2, 1, "cannot map" },               /* a FAT too short for the clusters */
        { 22, 2, 0x8000, "leave no room" },
    };
    md_ctx *ctx = new_ctx();
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        md_image *img = new_image(ctx, "bpb.img", 8 << 20);
        uint8_t b[4];
        md_fat *f = NULL;

        assert_int_equal(md_fat_format(img, 0, NULL, NULL), 0);
        md_put_le32(b, cases[i].val);
        patch(md_image_path(img), cases[i].off, b, cases[i].len);
        assert_int_equal(md_fat_open(img, 0, MD_FAT_RDONLY, &f), -EINVAL);
        assert_null(f);
        if (!strstr(md_ctx_errmsg(ctx), cases[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, md_ctx_errmsg(ctx), cases[i].msg);
        md_image_free(img);
    }
    /* FAT32: a root cluster outside the filesystem */
    {
        md_fat_format_opts fo = MD_FAT_FORMAT_OPTS_INIT;
        md_image *img = new_image(ctx, "bpb32.img", 40 << 20);
        uint8_t b[4];
        md_fat *f = NULL;

        fo.fat_type = MD_FAT32;
        assert_int_equal(md_fat_format(img, 0, &fo, NULL), 0);
        md_put_le32(b, 0x0fffffff);
        patch(md_image_path(img), 44, b, 4);
        assert_int_equal(md_fat_open(img, 0, 0, &f), -EINVAL);
        assert_non_null(strstr(md_ctx_errmsg(ctx), "root directory at cluster"));
        md_put_le32(b, 0);
        patch(md_image_path(img), 36, b, 4);
        assert_int_equal(md_fat_open(img, 0, 0, &f), -EINVAL);
        assert_non_null(strstr(md_ctx_errmsg(ctx), "FATs of 0 sectors"));
        md_image_free(img);
    }
    /* an image smaller than a boot sector */
    {
        md_image *img = NULL;
        md_fat *f = NULL;
        put_file("tiny.img", "tiny", 4);
        assert_int_equal(md_test_run("truncate -s 512 '%s'", tpath("tiny.img")), 0);
        assert_int_equal(md_image_open(ctx, tpath("tiny.img"), MD_IMAGE_RDONLY, &img), 0);
        assert_int_equal(md_fat_open(img, 0, 0, &f), -EINVAL);
        md_image_free(img);
    }
    md_ctx_free(ctx);
}

static void test_corrupt_chains(void **state)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "loop.img", 16 << 20); /* FAT16, 2 KiB clusters */
    md_fat_stat st = MD_FAT_STAT_INIT;
    struct listing *l = calloc(1, sizeof(*l));
    char *blob = malloc(3 * 2048), name[64];
    uint64_t fat0;
    uint32_t file_c, dir_c;
    uint8_t b[2];
    md_tree *t;
    md_fat *f;
    void *data;
    size_t n;
    int i;

    (void)state;
    assert_non_null(l);
    assert_non_null(blob);
    memset(blob, 'z', 3 * 2048);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "file", blob, 3 * 2048, NULL), 0);
    for (i = 0; i < 100; i++) { /* 102 entries: two clusters of directory */
        snprintf(name, sizeof(name), "many/F%d", i);
        assert_int_equal(md_tree_add_data(t, name, "", 0, NULL), 0);
    }
    free(blob);
    assert_int_equal(md_fat_format(img, 0, NULL, &f), 0);
    assert_int_equal(md_fat_populate(f, t, NULL), 0);
    assert_int_equal(md_fat_stat_path(f, "file", &st), 0);
    file_c = st.cluster;
    assert_int_equal(md_fat_stat_path(f, "many", &st), 0);
    dir_c = st.cluster;
    fat0 = (uint64_t)f->g.reserved * 512;
    md_fat_close(f);

    /* the file's last cluster points back to its first: read refuses, no hang */
    md_put_le16(b, (uint16_t)file_c);
    patch(md_image_path(img), fat0 + 2 * (file_c + 2), b, 2);
    assert_int_equal(md_fat_open(img, 0, MD_FAT_RDONLY, &f), 0);
    assert_int_equal(md_fat_read_file(f, "file", &data, &n), -EIO);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "goes on past"));
    md_fat_close(f);
    /* the chain runs into a free cluster */
    md_put_le16(b, 0);
    patch(md_image_path(img), fat0 + 2 * (file_c + 1), b, 2);
    assert_int_equal(md_fat_open(img, 0, MD_FAT_RDONLY, &f), 0);
    assert_int_equal(md_fat_read_file(f, "file", &data, &n), -EIO);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "free cluster"));
    md_fat_close(f);
    /* a directory whose second cluster points to its first: listing stops with an error */
    md_put_le16(b, (uint16_t)dir_c);
    patch(md_image_path(img), fat0 + 2 * (dir_c + 1), b, 2);
    assert_int_equal(md_fat_open(img, 0, MD_FAT_RDONLY, &f), 0);
    assert_int_equal(md_fat_list(f, "many", list_cb, l), -EIO);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "loops"));
    assert_int_equal(md_fat_stat_path(f, "many/F1", &st), -EIO);
    /* a cluster number beyond the filesystem */
    md_fat_close(f);
    md_put_le16(b, 0xfff0);
    patch(md_image_path(img), fat0 + 2 * dir_c, b, 2);
    assert_int_equal(md_fat_open(img, 0, MD_FAT_RDONLY, &f), 0);
    assert_int_equal(md_fat_list(f, "many", list_cb, l), -EIO);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "invalid cluster"));
    md_fat_close(f);
    /* a long name whose checksum does not match: the short name is shown */
    {
        md_image *img2 = new_image(ctx, "sum.img", 4 << 20);
        md_tree *t2;
        uint8_t x = 0x55;

        assert_int_equal(md_tree_new(ctx, &t2), 0);
        assert_int_equal(md_tree_add_data(t2, "A Long Name", "", 0, NULL), 0);
        assert_int_equal(md_fat_format(img2, 0, NULL, &f), 0);
        assert_int_equal(md_fat_populate(f, t2, NULL), 0);
        md_fat_close(f);
        patch(md_image_path(img2), 13 * 512 + 13, &x, 1); /* the root (sector 13), slot 1's checksum */
        assert_int_equal(md_fat_open(img2, 0, MD_FAT_RDONLY, &f), 0);
        memset(l, 0, sizeof(*l));
        assert_int_equal(md_fat_list(f, "/", list_cb, l), 0);
        assert_string_equal(l->text, "ALONGN~1|ALONGN~1|f|0|1700000000\n");
        md_fat_close(f);
        md_image_free(img2);
        md_tree_free(t2);
    }
    free(l);
    md_image_free(img);
    md_tree_free(t);
    md_ctx_free(ctx);
}

/* Found by fuzz-fat: a directory entry whose size is near 4 GiB made
 * md_fat_read_file() allocate that size before following the chain (an
 * out-of-memory crash under libFuzzer), and a looping chain be read round
 * until the size.  A size larger than the data area is refused first. */
static void test_corrupt_size(void **state)
{
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "size.img", 4 << 20); /* FAT12 */
    md_fat_stat st = MD_FAT_STAT_INIT;
    uint8_t *root, b[4];
    uint64_t root_off, ent = 0;
    size_t root_len, i, n = 0;
    md_tree *t;
    md_fat *f;
    void *data = NULL;
    int fd;

    (void)state;
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "big.bin", "0123456789", 10, NULL), 0);
    assert_int_equal(md_fat_format(img, 0, NULL, &f), 0);
    assert_int_equal(md_fat_populate(f, t, NULL), 0);
    root_off = (uint64_t)(f->g.reserved + (uint64_t)f->g.nfats * f->g.fat_sectors) * f->g.sector_size;
    root_len = (size_t)f->g.root_entries * 32;
    md_fat_close(f);
    root = malloc(root_len);
    assert_non_null(root);
    fd = open(md_image_path(img), O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(md_pread_full(fd, root, root_len, root_off), 0);
    close(fd);
    for (i = 0; i < root_len; i += 32)
        if (!memcmp(root + i, "BIG     BIN", 11)) {
            ent = root_off + i;
            n++;
        }
    free(root);
    assert_int_equal(n, 1);

    md_put_le32(b, 0xfffffff0u);
    patch(md_image_path(img), ent + 28, b, 4);
    assert_int_equal(md_fat_open(img, 0, MD_FAT_RDONLY, &f), 0);
    /* listed and stat'ed with the size it says */
    assert_int_equal(md_fat_stat_path(f, "big.bin", &st), 0);
    assert_int_equal(st.size, 0xfffffff0u);
    assert_int_equal(md_fat_read_file(f, "big.bin", &data, &n), -EIO);
    assert_null(data);
    if (!strstr(md_ctx_errmsg(ctx), "big.bin: its size, 4294967280 bytes, is larger than"))
        fail_msg("md_fat_read_file: '%s'", md_ctx_errmsg(ctx));
    assert_int_equal(md_fat_extract_file(f, "big.bin", tpath("size.out")), -EIO);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "is larger than"));
    assert_int_equal(access(tpath("size.out"), F_OK), -1);
    fd = open(tpath("size.fd"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(md_fat_extract_fd(f, "big.bin", fd), -EIO);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "is larger than"));
    close(fd);
    md_fat_close(f);
    md_image_free(img);
    md_tree_free(t);
    md_ctx_free(ctx);
}

/* Found by fuzz-fat: md_fat_list() gave an empty name for a short entry of
 * blanks, and would give a long name holding '/' or a short name with a
 * '/' byte as they were: a caller joining them to the directory's path gets
 * the directory itself or another path.  Now every name is one component:
 * such a long name gives way to the short name, '/' in a short name reads
 * as '?', a blank one is left out with a warning; lookups agree. */
static void test_unusable_names(void **state)
{
    static const char want[] = "A?.TXT|A/.TXT|f|1|1700000000\n"
                               "ALONGN~1.TXT|ALONGN~1.TXT|f|1|1700000000\n"
                               "Other long one.txt|OTHERL~1.TXT|f|1|1700000000\n"
                               "keep.txt|KEEP.TXT|f|1|1700000000\n";
    md_ctx *ctx = new_ctx();
    md_image *img = new_image(ctx, "names.img", 4 << 20);
    struct listing *l = calloc(1, sizeof(*l));
    md_fat_stat st = MD_FAT_STAT_INIT;
    struct logbuf log;
    uint8_t *root;
    uint64_t root_off, ab = 0, cd = 0, lfn = 0;
    size_t root_len, i;
    md_tree *t;
    md_fat *f;
    int fd;

    (void)state;
    assert_non_null(l);
    memset(&log, 0, sizeof(log));
    md_ctx_set_log_fn(ctx, log_cb, &log, MD_LOG_WARNING);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_data(t, "AB.TXT", "1", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "CD.TXT", "2", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "A long name.txt", "3", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "Other long one.txt", "4", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "keep.txt", "5", 1, NULL), 0);
    assert_int_equal(md_fat_format(img, 0, NULL, &f), 0);
    assert_int_equal(md_fat_populate(f, t, NULL), 0);
    root_off = (uint64_t)(f->g.reserved + (uint64_t)f->g.nfats * f->g.fat_sectors) * f->g.sector_size;
    root_len = (size_t)f->g.root_entries * 32;
    md_fat_close(f);
    root = malloc(root_len);
    assert_non_null(root);
    fd = open(md_image_path(img), O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(md_pread_full(fd, root, root_len, root_off), 0);
    close(fd);
    for (i = 32; i < root_len; i += 32) {
        if (!memcmp(root + i, "AB      TXT", 11))
            ab = root_off + i;
        if (!memcmp(root + i, "CD      TXT", 11))
            cd = root_off + i;
        if (!memcmp(root + i, "ALONGN~1TXT", 11))
            lfn = root_off + i - 32; /* its first slot: "A long name.t" */
    }
    free(root);
    assert_true(ab && cd && lfn);
    patch(md_image_path(img), ab + 1, "/", 1);              /* "A/      TXT" */
    patch(md_image_path(img), cd, "           ", 11);       /* a blank short name */
    patch(md_image_path(img), lfn + 3, "/\0", 2);           /* "A/long name.txt" */

    assert_int_equal(md_fat_open(img, 0, MD_FAT_RDONLY, &f), 0);
    assert_int_equal(md_fat_list(f, "/", list_cb, l), 0);
    assert_string_equal(l->text, want);
    assert_int_equal(log.n, 1);
    assert_non_null(strstr(log.text, "/: 1 directory entry without a name"));
    /* the names listed are the names looked up */
    assert_int_equal(md_fat_stat_path(f, "/A?.TXT", &st), 0);
    assert_int_equal(st.size, 1);
    assert_int_equal(md_fat_stat_path(f, "/ALONGN~1.TXT", &st), 0);
    assert_int_equal(md_fat_stat_path(f, "/A long name.txt", &st), -ENOENT);
    assert_int_equal(md_fat_stat_path(f, "/keep.txt", &st), 0);
    md_fat_close(f);
    free(l);
    md_image_free(img);
    md_tree_free(t);
    md_ctx_free(ctx);
}

/* ---- the pipeline ------------------------------------------------------------------------ */

static void test_disk_pipeline(void **state)
{
    md_ctx *ctx = new_ctx();
    md_fat_format_opts fo = MD_FAT_FORMAT_OPTS_INIT;
    md_extlinux_opts xo = MD_EXTLINUX_OPTS_INIT;
    md_fat_info info = MD_FAT_INFO_INIT;
    md_image *img;
    md_disk *d;
    md_tree *esp, *root;
    md_fat *f;
    int32_t type;
    void *data;
    size_t n;
    int idx;

    (void)state;
    need_judges();
    assert_int_equal(md_fs_type_from_name(ctx, "vfat", &type), 0);
    assert_int_equal(type, MD_VFAT);
    assert_int_equal(md_fs_type_from_name(ctx, "fat", &type), 0);
    assert_int_equal(type, MD_VFAT);
    assert_int_equal(md_fs_type_from_name(ctx, "fat32", &type), 0);
    assert_int_equal(type, MD_FAT32);
    assert_string_equal(md_fs_type_name(MD_FAT12), "fat12");
    assert_int_equal(md_fs_type_from_name(ctx, "ntfs", &type), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "vfat"));

    /* ESP first, root second, both placed by default; sizes computed */
    assert_int_equal(md_disk_new(ctx, &d), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "64M:efi"), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "rest:linux:bootable"), 0);
    fo.label = "ESP";
    idx = md_disk_add_fat(d, MD_DISK_PART_AUTO, &fo, &esp);
    assert_int_equal(idx, 0);
    assert_int_equal(md_tree_add_data(esp, "EFI/BOOT/BOOTX64.EFI", "MZ", 2, NULL), 0);
    assert_int_equal(md_disk_add_ext(d, MD_DISK_PART_AUTO, NULL, &root), 1);
    assert_int_equal(md_tree_add_data(root, "etc/hostname", "h\n", 2, NULL), 0);
    assert_int_equal(md_disk_set_extlinux(d, 0, &xo), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "FAT"));
    assert_int_equal(md_disk_write(d, tpath("disk.img"), NULL), 0);
    assert_int_equal(md_disk_fs_partition(d, 0), 1);
    assert_int_equal(md_disk_fs_partition(d, 1), 2);
    md_disk_free(d);
    assert_int_equal(md_image_open(ctx, tpath("disk.img"), MD_IMAGE_RDONLY, &img), 0);
    {
        uint32_t p = 0;
        assert_int_equal(md_image_default_fat_partition(img, &p), 0);
        assert_int_equal(p, 1);
    }
    assert_int_equal(md_fat_open(img, 1, MD_FAT_RDONLY, &f), 0);
    assert_int_equal(md_fat_get_info(f, &info), 0);
    assert_int_equal(info.fat_type, MD_FAT16);   /* 64 MiB: FAT16, as mkfs.fat makes it */
    assert_string_equal(info.label, "ESP");
    assert_int_equal(md_fat_read_file(f, "EFI/BOOT/BOOTX64.EFI", &data, &n), 0);
    assert_int_equal(n, 2);
    free(data);
    md_fat_close(f);
    md_image_free(img);

    /* FAT32 asked for with a computed size: at least 36 MiB */
    assert_int_equal(md_disk_new(ctx, &d), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "rest:efi"), 0);
    fo.fat_type = MD_FAT32;
    assert_int_equal(md_disk_add_fat(d, MD_DISK_PART_AUTO, &fo, &esp), 0);
    assert_int_equal(md_tree_add_data(esp, "x", "x", 1, NULL), 0);
    assert_int_equal(md_disk_write(d, tpath("disk32.img"), NULL), 0);
    assert_true(md_disk_size(d) >= (38u << 20)); /* 36 MiB, the table, the alignment */
    md_disk_free(d);
    /* a symlink: refused before the image exists */
    assert_int_equal(md_disk_new(ctx, &d), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "rest:efi"), 0);
    assert_int_equal(md_disk_add_fat(d, MD_DISK_PART_AUTO, NULL, &esp), 0);
    assert_int_equal(md_tree_add_symlink(esp, "EFI/link", "x", NULL), 0);
    assert_int_equal(md_disk_write(d, tpath("bad.img"), NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "'EFI/link' is a symlink"));
    assert_int_equal(access(tpath("bad.img"), F_OK), -1);
    md_disk_free(d);
    /* a given size too small: the message says what is needed */
    assert_int_equal(md_disk_new(ctx, &d), 0);
    assert_int_equal(md_disk_set_size(d, 8 << 20), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "rest:efi"), 0);
    assert_int_equal(md_disk_add_fat(d, MD_DISK_PART_AUTO, NULL, &esp), 0);
    {
        char *blob = calloc(1, 10 << 20);
        assert_non_null(blob);
        assert_int_equal(md_tree_add_data(esp, "big", blob, 10 << 20, NULL), 0);
        free(blob);
    }
    assert_int_equal(md_disk_write(d, tpath("toosmall.img"), NULL), -ENOSPC);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "too small"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), "MiB"));
    assert_int_equal(access(tpath("toosmall.img"), F_OK), -1);
    md_disk_free(d);
    /* two EFI System partitions: FAT needs to be told which */
    assert_int_equal(md_disk_new(ctx, &d), 0);
    assert_int_equal(md_disk_set_size(d, 80 << 20), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "20M:efi"), 0);
    assert_int_equal(md_disk_add_partition_spec(d, "20M:efi"), 0);
    assert_int_equal(md_disk_add_fat(d, MD_DISK_PART_AUTO, NULL, &esp), 0);
    assert_int_equal(md_disk_write(d, tpath("two.img"), NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "EFI System partitions 1, 2"));
    md_disk_free(d);
    md_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_types),
        cmocka_unit_test(test_format_like_mkfs),
        cmocka_unit_test(test_format_errors),
        cmocka_unit_test(test_short_names),
        cmocka_unit_test(test_name_tails),
        cmocka_unit_test(test_name_refusals),
        cmocka_unit_test(test_lfn_checksum),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_populate_fat12),
        cmocka_unit_test(test_populate_fat16),
        cmocka_unit_test(test_populate_fat32),
        cmocka_unit_test(test_populate_raw),
        cmocka_unit_test(test_populate_refusals),
        cmocka_unit_test(test_populate_big_dirs),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_read_mtools_image),
        cmocka_unit_test(test_populate_opened),
        cmocka_unit_test(test_corrupt_bpb),
        cmocka_unit_test(test_corrupt_chains),
        cmocka_unit_test(test_corrupt_size),
        cmocka_unit_test(test_unusable_names),
        cmocka_unit_test(test_disk_pipeline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
