/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the image module: sparse files, tables, probing. */
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

#include "md-internal.h"

#define MiB (1024ULL * 1024ULL)
#define GiB (1024ULL * MiB)

struct fixture {
    md_ctx *ctx;
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    unsetenv("SOURCE_DATE_EPOCH");
    assert_int_equal(md_ctx_new(&f->ctx), 0);
    strcpy(f->dir, "/tmp/md-test-image.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/disk.img", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    md_ctx_free(f->ctx);
    free(f);
    return 0;
}

static size_t count_files(const char *dir)
{
    char cmd[160];
    FILE *p;
    size_t n = 0;
    int c;
    snprintf(cmd, sizeof(cmd), "ls -A '%s'", dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    while ((c = fgetc(p)) != EOF)
        if (c == '\n')
            n++;
    pclose(p);
    return n;
}

static void test_sparse_commit(void **state)
{
    struct fixture *f = *state;
    md_image *img = NULL;
    uint64_t app = 0, alloc = 1;
    struct stat st;

    assert_int_equal(md_image_create(f->ctx, f->path, 4 * GiB, NULL, &img), 0);
    /* data lives in a temporary file next to the target until commit */
    assert_string_not_equal(md_image_path(img), f->path);
    assert_int_equal(stat(f->path, &st), -1);
    assert_int_equal(md_image_size(img), 4 * GiB);
    assert_ptr_equal(md_image_ctx(img), f->ctx);
    assert_int_equal(md_image_usage(img, &app, &alloc), 0);
    assert_int_equal(app, 4 * GiB);
    assert_true(alloc < 64 * 1024);
    assert_int_equal(md_image_commit(img), 0);
    assert_string_equal(md_image_path(img), f->path);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, 4 * GiB);
    assert_true((uint64_t)st.st_blocks * 512 < 64 * 1024);
    /* still usable after commit */
    assert_int_equal(md_image_usage(img, &app, NULL), 0);
    md_image_free(img);
    assert_int_equal(count_files(f->dir), 1);

    /* exists: EEXIST without force, message says how to override */
    assert_int_equal(md_image_create(f->ctx, f->path, MiB, NULL, &img), -EEXIST);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "--force"));
    {
        md_image_create_opts o = MD_IMAGE_CREATE_OPTS_INIT;
        o.flags = MD_IMAGE_FORCE;
        assert_int_equal(md_image_create(f->ctx, f->path, 2 * MiB, &o, &img), 0);
        md_image_free(img); /* not committed: the old file stays as it was */
        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal((uint64_t)st.st_size, 4 * GiB);
        assert_int_equal(count_files(f->dir), 1);
    }
    md_image_free(NULL);
}

static void test_bad_create(void **state)
{
    struct fixture *f = *state;
    md_image *img = (md_image *)1;
    md_image_create_opts o = MD_IMAGE_CREATE_OPTS_INIT;

    assert_int_equal(md_image_create(f->ctx, f->path, 1000, NULL, &img), -EINVAL);
    assert_null(img);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "512"));
    assert_int_equal(md_image_create(f->ctx, f->path, 0, NULL, &img), -EINVAL);
    o.version = 99;
    assert_int_equal(md_image_create(f->ctx, f->path, MiB, &o, &img), -EINVAL);
    assert_int_equal(md_image_open(f->ctx, f->path, 0, &img), -ENOENT);
    assert_int_equal(md_image_open(f->ctx, f->dir, 0, &img), -EINVAL);
    assert_int_equal(count_files(f->dir), 0);
}

static void add_part(md_image *img, uint64_t size, uint32_t percent, const char *type, uint32_t flags,
                     const char *name)
{
    md_part_opts p;
    md_part_opts_init(&p);
    p.size = size;
    p.percent = percent;
    p.type = type;
    p.flags = flags;
    p.name = name;
    assert_int_equal(md_image_add_partition(img, &p), 0);
}

static void test_gpt(void **state)
{
    struct fixture *f = *state;
    md_table_opts t = MD_TABLE_OPTS_INIT;
    md_image *img;
    md_probe *pr;
    uint64_t off, size;
    char *json;

    assert_int_equal(md_image_create(f->ctx, f->path, 64 * MiB, NULL, &img), 0);
    add_part(img, MiB, 0, MD_PART_BIOS_BOOT, 0, "bios");
    add_part(img, 16 * MiB, 0, MD_PART_EFI, 0, "esp");
    add_part(img, 0, 0, MD_PART_LINUX, MD_PART_BOOTABLE, "root");
    t.type = MD_TABLE_GPT;
    t.flags = MD_TABLE_SEED;
    t.seed = 42;
    assert_int_equal(md_image_write_table(img, &t), 0);

    assert_int_equal(md_image_partition_range(img, 1, &off, &size), 0);
    assert_int_equal(off, 2048 * 512);
    assert_int_equal(size, MiB);
    assert_int_equal(md_image_partition_range(img, 2, &off, &size), 0);
    assert_int_equal(off, 2 * MiB);
    assert_int_equal(size, 16 * MiB);
    assert_int_equal(md_image_partition_range(img, 3, &off, &size), 0);
    assert_int_equal(off, 18 * MiB);
    /* rest of the disk: up to the last usable LBA, before the 33-sector backup */
    assert_int_equal(off + size, 64 * MiB - 34 * 512 + 512);
    assert_int_equal(md_image_partition_range(img, 0, &off, &size), 0);
    assert_int_equal(off, 0);
    assert_int_equal(size, 64 * MiB);
    assert_int_equal(md_image_partition_range(img, 4, &off, &size), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "3 partitions"));

    assert_int_equal(md_image_probe(img, &pr), 0);
    assert_string_equal(md_probe_table(pr), "gpt");
    assert_non_null(md_probe_table_id(pr));
    assert_int_equal(md_probe_count(pr), 3);
    assert_int_equal(md_probe_number(pr, 3), 3);
    assert_int_equal(md_probe_start(pr, 2), 2 * MiB);
    assert_string_equal(md_probe_type(pr, 1), "21686148-6449-6e6f-744e-656564454649");
    assert_string_equal(md_probe_type_name(pr, 2), "EFI System");
    assert_string_equal(md_probe_type(pr, 3), "0fc63daf-8483-4772-8e79-3d69d8477de4");
    assert_string_equal(md_probe_name(pr, 2), "esp");
    assert_int_equal(md_probe_flags(pr, 3), MD_PART_BOOTABLE);
    assert_int_equal(md_probe_flags(pr, 1), 0);
    assert_int_equal(md_probe_attrs(pr, 3), 4);
    assert_non_null(md_probe_uuid(pr, 3));
    assert_string_not_equal(md_probe_uuid(pr, 3), md_probe_uuid(pr, 2));
    assert_null(md_probe_fs_type(pr, 3));
    assert_null(md_probe_type(pr, 4)); /* out of range */
    assert_int_equal(md_probe_to_json(pr, &json), 0);
    assert_non_null(strstr(json, "\"table\": \"gpt\""));
    assert_non_null(strstr(json, "\"name\": \"root\""));
    free(json);
    md_probe_free(pr);
    md_probe_free(NULL);

    /* GPT: set_bootable sets attribute bit 2 and leaves the other entries
     * and the boot code (e.g. syslinux's gptmbr.bin) alone */
    {
        uint8_t code[440];
        int fd = open(md_image_path(img), O_RDWR);
        assert_true(fd >= 0);
        memset(code, 0xcd, sizeof(code));
        assert_int_equal(pwrite(fd, code, sizeof(code), 0), (ssize_t)sizeof(code));
        close(fd);
    }
    assert_int_equal(md_image_set_bootable(img, 1), 0);
    {
        uint8_t sec[512];
        int fd = open(md_image_path(img), O_RDONLY);
        assert_int_equal(pread(fd, sec, sizeof(sec), 0), (ssize_t)sizeof(sec));
        close(fd);
        assert_int_equal(sec[0], 0xcd);
        assert_int_equal(sec[439], 0xcd);
        assert_int_equal(sec[450], 0xee); /* protective MBR entry kept */
    }
    assert_int_equal(md_image_set_bootable(img, 4), -ENOENT);
    assert_int_equal(md_image_probe(img, &pr), 0);
    assert_int_equal(md_probe_attrs(pr, 1), 4);
    assert_int_equal(md_probe_attrs(pr, 3), 4);
    assert_string_equal(md_probe_name(pr, 3), "root");
    md_probe_free(pr);
    md_image_free(img);
}

static void test_mbr(void **state)
{
    struct fixture *f = *state;
    md_table_opts t = MD_TABLE_OPTS_INIT;
    md_image *img;
    md_probe *pr;
    uint64_t off, size;
    uint8_t mbr[512];
    int fd;

    assert_int_equal(md_image_create(f->ctx, f->path, 100 * MiB, NULL, &img), 0);
    add_part(img, 0, 25, MD_PART_EFI, 0, NULL);
    add_part(img, 10 * MiB + 1, 0, "0x82", 0, NULL);
    add_part(img, 0, 100, NULL, MD_PART_BOOTABLE, NULL);
    t.type = MD_TABLE_MBR;
    t.disk_id = "0xdeadbeef";
    assert_int_equal(md_image_write_table(img, &t), 0);
    assert_int_equal(md_image_commit(img), 0);
    md_image_free(img);

    assert_int_equal(md_image_open(f->ctx, f->path, MD_IMAGE_RDONLY, &img), 0);
    /* 25 % of the usable 99 MiB, rounded down to whole MiB */
    assert_int_equal(md_image_partition_range(img, 1, &off, &size), 0);
    assert_int_equal(off, MiB);
    assert_int_equal(size, 24 * MiB);
    assert_int_equal(md_image_partition_range(img, 2, &off, &size), 0);
    assert_int_equal(off, 25 * MiB);
    assert_int_equal(size, 10 * MiB + 512);
    assert_int_equal(md_image_partition_range(img, 3, &off, &size), 0);
    assert_int_equal(off, 36 * MiB);
    assert_int_equal(off + size, 100 * MiB);
    assert_int_equal(md_image_probe(img, &pr), 0);
    assert_string_equal(md_probe_table(pr), "dos");
    assert_string_equal(md_probe_table_id(pr), "0xdeadbeef");
    assert_string_equal(md_probe_type(pr, 1), "0xef");
    assert_string_equal(md_probe_type(pr, 2), "0x82");
    assert_string_equal(md_probe_type(pr, 3), "0x83");
    assert_string_equal(md_probe_uuid(pr, 3), "deadbeef-03");
    assert_int_equal(md_probe_flags(pr, 3), MD_PART_BOOTABLE);
    assert_int_equal(md_probe_flags(pr, 1), 0);
    md_probe_free(pr);
    /* read-only: no table writes */
    assert_int_equal(md_image_set_bootable(img, 1), -EROFS);
    md_image_free(img);

    /* set_bootable moves the active flag and keeps the boot code */
    fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    memset(mbr, 0xab, 440);
    assert_int_equal(pwrite(fd, mbr, 440, 0), 440);
    close(fd);
    assert_int_equal(md_image_open(f->ctx, f->path, 0, &img), 0);
    assert_int_equal(md_image_set_bootable(img, 1), 0);
    assert_int_equal(md_image_set_bootable(img, 5), -ENOENT);
    assert_int_equal(md_image_probe(img, &pr), 0);
    assert_int_equal(md_probe_flags(pr, 1), MD_PART_BOOTABLE);
    assert_int_equal(md_probe_flags(pr, 3), 0);
    assert_string_equal(md_probe_table_id(pr), "0xdeadbeef");
    md_probe_free(pr);
    md_image_free(img);
    fd = open(f->path, O_RDONLY);
    assert_int_equal(pread(fd, mbr, 512, 0), 512);
    close(fd);
    assert_int_equal(mbr[0], 0xab);
    assert_int_equal(mbr[439], 0xab);
    assert_int_equal(mbr[510], 0x55);
    assert_int_equal(mbr[511], 0xaa);
}

static void test_errors(void **state)
{
    struct fixture *f = *state;
    md_table_opts t = MD_TABLE_OPTS_INIT;
    md_image *img;
    uint64_t off, size;
    uint8_t buf[4096];
    size_t i;
    int fd;

    assert_int_equal(md_image_create(f->ctx, f->path, 64 * MiB, NULL, &img), 0);
    /* no table yet */
    assert_int_equal(md_image_partition_range(img, 1, &off, &size), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "no partition table"));

    add_part(img, 40 * MiB, 0, NULL, 0, NULL);
    add_part(img, 100 * MiB, 0, NULL, 0, NULL);
    assert_int_equal(md_image_write_table(img, &t), -ENOSPC);
    assert_string_equal(strstr(md_ctx_errmsg(f->ctx), "partition 2"),
                        "partition 2 (100 MiB) does not fit: 23.0 MiB free after partition 1");

    add_part(img, 0, 0, NULL, 0, NULL);
    add_part(img, MiB, 0, NULL, 0, NULL);
    add_part(img, 0, 100, NULL, 0, NULL);
    assert_int_equal(md_image_write_table(img, &t), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "only one"));

    add_part(img, 0, 0, NULL, 0, NULL);
    add_part(img, 70 * MiB, 0, NULL, 0, NULL);
    assert_int_equal(md_image_write_table(img, &t), -ENOSPC);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "would be empty"));

    add_part(img, MiB, 0, "no-such-type", 0, NULL);
    assert_int_equal(md_image_write_table(img, &t), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "no-such-type"));

    add_part(img, MiB, 0, MD_PART_BIOS_BOOT, 0, NULL);
    t.type = MD_TABLE_MBR;
    assert_int_equal(md_image_write_table(img, &t), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "only in GPT"));

    for (i = 0; i < 5; i++)
        add_part(img, MiB, 0, NULL, 0, NULL);
    assert_int_equal(md_image_write_table(img, &t), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "at most 4"));

    t.type = 99;
    assert_int_equal(md_image_write_table(img, &t), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "type 99"));
    t.type = MD_TABLE_NONE;
    assert_int_equal(md_image_write_table(img, &t), -EINVAL);
    {
        uint32_t type = 0;
        assert_int_equal(md_table_from_name(f->ctx, "sun", &type), -EINVAL);
        assert_non_null(strstr(md_ctx_errmsg(f->ctx), "'sun'"));
        assert_int_equal(md_table_from_name(NULL, "DOS", &type), 0);
        assert_int_equal(type, MD_TABLE_MBR);
        assert_int_equal(md_table_from_name(NULL, "none", &type), 0);
        assert_int_equal(type, MD_TABLE_NONE);
        assert_string_equal(md_table_name(MD_TABLE_GPT), "gpt");
        assert_null(md_table_name(99));
    }

    {
        md_part_opts p = MD_PART_OPTS_INIT;
        p.percent = 101;
        assert_int_equal(md_image_add_partition(img, &p), -EINVAL);
        p.percent = 0;
        p.uuid = "not-a-guid";
        assert_int_equal(md_image_add_partition(img, &p), -EINVAL);
    }
    /* nothing was written by the failures */
    fd = open(md_image_path(img), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
    close(fd);
    for (i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    md_image_free(img);

    /* too small for a table */
    assert_int_equal(md_image_create(f->ctx, f->path, MiB, NULL, &img), 0);
    assert_int_equal(md_image_write_table(img, NULL), -ENOSPC);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "too small"));
    md_image_free(img);
    assert_int_equal(count_files(f->dir), 0);
}

static void sha_file(const char *path, char out[65])
{
    char cmd[256];
    FILE *p;
    snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, 65, p));
    pclose(p);
}

static void make_seeded(struct fixture *f, const char *path, const char *label, int use_epoch)
{
    md_table_opts t = MD_TABLE_OPTS_INIT;
    md_image_create_opts o = MD_IMAGE_CREATE_OPTS_INIT;
    md_image *img;

    o.flags = MD_IMAGE_FORCE;
    assert_int_equal(md_image_create(f->ctx, path, 32 * MiB, &o, &img), 0);
    add_part(img, 8 * MiB, 0, MD_PART_EFI, 0, strcmp(label, "gpt") ? NULL : "esp");
    add_part(img, 0, 0, NULL, MD_PART_BOOTABLE, strcmp(label, "gpt") ? NULL : "root");
    assert_int_equal(md_table_from_name(NULL, label, &t.type), 0);
    if (!use_epoch) {
        t.flags = MD_TABLE_SEED;
        t.seed = 7;
    }
    assert_int_equal(md_image_write_table(img, &t), 0);
    assert_int_equal(md_image_commit(img), 0);
    md_image_free(img);
}

static void test_rest_in_middle(void **state)
{
    struct fixture *f = *state;
    md_image *img;
    uint64_t off, size;

    assert_int_equal(md_image_create(f->ctx, f->path, 100 * MiB, NULL, &img), 0);
    add_part(img, MiB, 0, MD_PART_BIOS_BOOT, 0, NULL);
    add_part(img, 0, 0, NULL, 0, NULL);
    add_part(img, 10 * MiB + 512, 0, MD_PART_SWAP, 0, NULL);
    add_part(img, 0, 10, NULL, 0, NULL);
    assert_int_equal(md_image_write_table(img, NULL), 0);
    /* usable: LBA 2048..204766; 10 % of it rounded down to whole MiB is 9 MiB.
     * The rest (partition 2) leaves aligned room for 3 (11 MiB) and 4 (9 MiB). */
    assert_int_equal(md_image_partition_range(img, 2, &off, &size), 0);
    assert_int_equal(off, 2 * MiB);
    assert_int_equal(size, 77 * MiB);
    assert_int_equal(md_image_partition_range(img, 3, &off, &size), 0);
    assert_int_equal(off, 79 * MiB);
    assert_int_equal(size, 10 * MiB + 512);
    assert_int_equal(md_image_partition_range(img, 4, &off, &size), 0);
    assert_int_equal(off, 90 * MiB);
    assert_int_equal(size, 9 * MiB);
    md_image_free(img);
}

static void test_determinism(void **state)
{
    struct fixture *f = *state;
    char a[65], b[65], p2[160];
    md_image *img;
    md_probe *pr;
    char id1[64];
    const char *labels[] = { "gpt", "mbr" };
    size_t i;

    snprintf(p2, sizeof(p2), "%s/other.img", f->dir);
    for (i = 0; i < 2; i++) {
        make_seeded(f, f->path, labels[i], 0);
        make_seeded(f, p2, labels[i], 0);
        sha_file(f->path, a);
        sha_file(p2, b);
        assert_string_equal(a, b);
    }
    /* from the context epoch (SOURCE_DATE_EPOCH) */
    assert_int_equal(md_ctx_set_epoch(f->ctx, 1700000000), 0);
    make_seeded(f, f->path, "gpt", 1);
    make_seeded(f, p2, "gpt", 1);
    sha_file(f->path, a);
    sha_file(p2, b);
    assert_string_equal(a, b);
    assert_int_equal(md_image_open(f->ctx, f->path, MD_IMAGE_RDONLY, &img), 0);
    assert_int_equal(md_image_probe(img, &pr), 0);
    snprintf(id1, sizeof(id1), "%s", md_probe_table_id(pr));
    /* RFC 4122 version 4 shape */
    assert_int_equal(id1[14], '4');
    assert_non_null(strchr("89ab", id1[19]));
    md_probe_free(pr);
    md_image_free(img);
    /* another seed: other ids */
    make_seeded(f, p2, "gpt", 0);
    sha_file(p2, b);
    assert_string_not_equal(a, b);
    /* no seed, no epoch: random ids */
    md_ctx_free(f->ctx);
    assert_int_equal(md_ctx_new(&f->ctx), 0);
    assert_int_equal(md_ctx_has_epoch(f->ctx), 0);
    make_seeded(f, f->path, "gpt", 1);
    make_seeded(f, p2, "gpt", 1);
    sha_file(f->path, a);
    sha_file(p2, b);
    assert_string_not_equal(a, b);
    /* random ids are v4-shaped too */
    assert_int_equal(md_image_open(f->ctx, f->path, MD_IMAGE_RDONLY, &img), 0);
    assert_int_equal(md_image_probe(img, &pr), 0);
    assert_int_equal(md_probe_table_id(pr)[14], '4');
    assert_int_equal(md_probe_uuid(pr, 1)[14], '4');
    md_probe_free(pr);
    md_image_free(img);
}

static void test_resize(void **state)
{
    struct fixture *f = *state;
    md_image *img;
    md_probe *pr;
    uint64_t off, size, alloc;
    md_image_create_opts o = MD_IMAGE_CREATE_OPTS_INIT;

    o.flags = MD_IMAGE_FORCE;
    assert_int_equal(md_image_create(f->ctx, f->path, 8 * MiB, &o, &img), 0);
    add_part(img, 0, 0, NULL, 0, NULL);
    assert_int_equal(md_image_write_table(img, NULL), 0);
    assert_int_equal(md_image_resize(img, 4 * MiB), -EINVAL);
    assert_int_equal(md_image_resize(img, GiB), 0);
    assert_int_equal(md_image_size(img), GiB);
    assert_int_equal(md_image_usage(img, NULL, &alloc), 0);
    assert_true(alloc < 256 * 1024);
    /* the old partition is unchanged and the backup GPT moved: a new
     * partition can use the space */
    assert_int_equal(md_image_partition_range(img, 1, &off, &size), 0);
    assert_int_equal(off, MiB);
    assert_int_equal(md_image_probe(img, &pr), 0);
    assert_int_equal(md_probe_count(pr), 1);
    md_probe_free(pr);
    assert_int_equal(md_image_commit(img), 0);
    md_image_free(img);
    /* util-linux agrees: a valid GPT whose last usable LBA is at the new end */
    {
        char cmd[256], line[128];
        FILE *p;
        int found = 0;
        snprintf(cmd, sizeof(cmd), "sfdisk --verify '%s' >/dev/null 2>&1", f->path);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof(cmd), "sfdisk -d '%s' 2>/dev/null", f->path);
        p = popen(cmd, "r");
        assert_non_null(p);
        while (fgets(line, sizeof(line), p))
            if (!strcmp(line, "last-lba: 2097118\n"))
                found = 1;
        pclose(p);
        assert_true(found);
    }
}

/* Issue 11 item 5: a table that does not fit the file is refused before a
 * write (md_image_partition_range() on a writable image, set_bootable()),
 * and a partition past the end of the file for reading too. */
static void test_table_vs_file(void **state)
{
    struct fixture *f = *state;
    md_table_opts t = MD_TABLE_OPTS_INIT;
    md_image *img;
    uint64_t off, size;
    uint8_t before[512], after[512], e[16];
    int fd;

    assert_int_equal(md_image_create(f->ctx, f->path, 64 * MiB, NULL, &img), 0);
    add_part(img, 20 * MiB, 0, NULL, 0, NULL);
    add_part(img, 20 * MiB, 0, NULL, 0, NULL);
    t.type = MD_TABLE_MBR;
    assert_int_equal(md_image_write_table(img, &t), 0);
    assert_int_equal(md_image_commit(img), 0);
    md_image_free(img);

    /* entry 2 moved into partition 1 (sectors 2048-43007): LBA 30720 */
    fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, e, 16, 446 + 16), 16);
    md_put_le32(e + 8, 30720);
    assert_int_equal(pwrite(fd, e, 16, 446 + 16), 16);
    assert_int_equal(pread(fd, before, 512, 0), 512);
    close(fd);

    assert_int_equal(md_image_open(f->ctx, f->path, 0, &img), 0);
    assert_int_equal(md_image_partition_range(img, 1, &off, &size), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "partitions 1 and 2 overlap (sectors 30720-43007)"));
    assert_int_equal(md_image_set_bootable(img, 1), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "overlap"));
    assert_int_equal(md_image_partition_range(img, 0, &off, &size), 0); /* the file itself */
    md_image_free(img);
    fd = open(f->path, O_RDONLY);
    assert_int_equal(pread(fd, after, 512, 0), 512);
    close(fd);
    assert_memory_equal(before, after, 512);
    /* reading through an overlap hurts nothing */
    assert_int_equal(md_image_open(f->ctx, f->path, MD_IMAGE_RDONLY, &img), 0);
    assert_int_equal(md_image_partition_range(img, 2, &off, &size), 0);
    assert_int_equal(off, 30720 * 512ULL);
    md_image_free(img);

    /* cut short: partition 2 (to 35 MiB) past the end of a 30 MiB file */
    assert_int_equal(truncate(f->path, 30 * MiB), 0);
    assert_int_equal(md_image_open(f->ctx, f->path, MD_IMAGE_RDONLY, &img), 0);
    assert_int_equal(md_image_partition_range(img, 2, &off, &size), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(f->ctx), "partition 2 ends at 35 MiB, beyond the image's "
                                                  "30 MiB: truncated image?"));
    assert_int_equal(md_image_partition_range(img, 1, &off, &size), 0); /* inside: readable */
    md_image_free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sparse_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rest_in_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_vs_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
