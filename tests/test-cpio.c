/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cpio sink, checked through libarchive's READ side (an independent reader). */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "md-internal.h"

#define EPOCH 1700000000
#define BIG_SIZE (9u << 20) /* > one lz4 legacy block */

static char tmpdir[64];

struct rec {
    char path[256];
    unsigned mode, uid, gid, nlink, rmaj, rmin;
    long long ino, mtime, size;
    char link[256];
    char *data;
    size_t data_len;
};

struct listing {
    struct rec *v;
    size_t n;
};

static void listing_free(struct listing *l)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        free(l->v[i].data);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Read an archive (any compression) from @fd with libarchive. */
static void read_archive_fd(int fd, struct listing *l)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    int r;

    memset(l, 0, sizeof(*l));
    assert_non_null(a);
    archive_read_support_format_cpio(a);
    archive_read_support_filter_all(a);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(archive_read_open_fd(a, fd, 65536), ARCHIVE_OK);
    while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
        struct rec *x;
        size_t cap = 0;
        char buf[65536];
        la_ssize_t k;

        l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
        assert_non_null(l->v);
        x = &l->v[l->n++];
        memset(x, 0, sizeof(*x));
        snprintf(x->path, sizeof(x->path), "%s", archive_entry_pathname(ae));
        x->mode = archive_entry_mode(ae);
        x->uid = (unsigned)archive_entry_uid(ae);
        x->gid = (unsigned)archive_entry_gid(ae);
        x->nlink = archive_entry_nlink(ae);
        x->rmaj = archive_entry_rdevmajor(ae);
        x->rmin = archive_entry_rdevminor(ae);
        x->ino = archive_entry_ino64(ae);
        x->mtime = archive_entry_mtime(ae);
        x->size = archive_entry_size(ae);
        if (archive_entry_symlink(ae))
            snprintf(x->link, sizeof(x->link), "%s", archive_entry_symlink(ae));
        while ((k = archive_read_data(a, buf, sizeof(buf))) > 0) {
            if (x->data_len + (size_t)k > cap) {
                cap = (x->data_len + (size_t)k) * 2;
                x->data = realloc(x->data, cap);
                assert_non_null(x->data);
            }
            memcpy(x->data + x->data_len, buf, (size_t)k);
            x->data_len += (size_t)k;
        }
        assert_int_equal(k, 0);
    }
    assert_int_equal(r, ARCHIVE_EOF);
    archive_read_free(a);
}

static void read_archive(const char *path, struct listing *l)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    read_archive_fd(fd, l);
    close(fd);
}

static const struct rec *find(const struct listing *l, const char *path)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].path, path))
            return &l->v[i];
    fail_msg("'%s' not in the archive", path);
    return NULL;
}

static char *path_in_tmp(const char *name)
{
    char *p = md_asprintf("%s/%s", tmpdir, name);
    assert_non_null(p);
    return p;
}

static void write_host_file(const char *path, size_t size)
{
    FILE *f = fopen(path, "w");
    size_t i;
    assert_non_null(f);
    for (i = 0; i < size; i++)
        fputc((int)((i * 7 + i / 1000) & 0xff), f);
    assert_int_equal(fclose(f), 0);
}

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static md_ctx *new_ctx(void)
{
    md_ctx *ctx;
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_set_epoch(ctx, EPOCH), 0);
    return ctx;
}

/* A tree with every entry type. */
static md_tree *full_tree(md_ctx *ctx, const char *host_file)
{
    md_tree *t;
    md_attr a = MD_ATTR_INIT;

    assert_int_equal(md_tree_new(ctx, &t), 0);
    a.mode = 0750; a.uid = 1; a.gid = 2; a.mtime = 500;
    assert_int_equal(md_tree_add_dir(t, "etc", &a), 0);
    a.mode = 0640; a.uid = 3; a.gid = 4; a.mtime = 600;
    assert_int_equal(md_tree_add_data(t, "etc/motd", "hello\n", 6, &a), 0);
    a.mode = 0755; a.uid = 0; a.gid = 0; a.mtime = MD_MTIME_DEFAULT;
    assert_int_equal(md_tree_add_file(t, "bin/tool", host_file, &a), 0);
    assert_int_equal(md_tree_add_symlink(t, "bin/sh", "tool", NULL), 0);
    a.mode = 0600; a.uid = 7; a.gid = 8; a.mtime = 700;
    assert_int_equal(md_tree_add_data(t, "h/a", "linked data", 11, &a), 0);
    assert_int_equal(md_tree_add_hardlink(t, "h/b", "h/a"), 0);
    assert_int_equal(md_tree_add_hardlink(t, "h/c", "/h/a"), 0);
    a.mode = 0600; a.uid = 0; a.gid = 5; a.mtime = MD_MTIME_DEFAULT;
    assert_int_equal(md_tree_add_node(t, "dev/console", MD_NODE_CHR, 5, 1, &a), 0);
    a.mode = 0660; a.gid = 6;
    assert_int_equal(md_tree_add_node(t, "dev/sda", MD_NODE_BLK, 8, 0, &a), 0);
    assert_int_equal(md_tree_add_node(t, "run/fifo", MD_NODE_FIFO, 0, 0, NULL), 0);
    assert_int_equal(md_tree_add_node(t, "run/sock", MD_NODE_SOCK, 0, 0, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "empty", "", 0, NULL), 0);
    return t;
}

/* @more_top: top-level directories the archive has beyond those in @l */
static void check_full_listing(const struct listing *l, const char *host_file, unsigned more_top)
{
    static const char *order[] = { ".", "bin", "bin/sh", "bin/tool", "dev", "dev/console", "dev/sda",
                                   "empty", "etc", "etc/motd", "h", "h/a", "h/b", "h/c",
                                   "run", "run/fifo", "run/sock" };
    const struct rec *x, *ha, *hb, *hc;
    size_t i, size;
    char *expect;
    int fd;

    assert_int_equal(l->n, sizeof(order) / sizeof(order[0]));
    for (i = 0; i < l->n; i++) {
        assert_string_equal(l->v[i].path, order[i]);
        if (i > 0) /* stable inode numbers, unique except for hard links */
            assert_true(l->v[i].ino > 0);
    }

    /* the root comes first: 0755 root:root at the epoch, inode 1, 2 links
     * plus one per top-level directory */
    x = find(l, ".");
    assert_ptr_equal(x, &l->v[0]);
    assert_int_equal(x->mode, 040755);
    assert_int_equal(x->uid, 0);
    assert_int_equal(x->gid, 0);
    assert_int_equal(x->mtime, EPOCH);
    assert_int_equal(x->ino, 1);
    {
        unsigned top = 0;
        for (i = 1; i < l->n; i++)
            top += (l->v[i].mode & 0170000) == 040000 && !strchr(l->v[i].path, '/');
        assert_int_equal(top, 5);
        assert_int_equal(x->nlink, 2 + top + more_top);
    }

    x = find(l, "etc");
    assert_int_equal(x->mode, 040750);
    assert_int_equal(x->uid, 1);
    assert_int_equal(x->gid, 2);
    assert_int_equal(x->mtime, 500);
    assert_int_equal(x->nlink, 2);
    x = find(l, "bin");
    assert_int_equal(x->mode, 040755);
    assert_int_equal(x->mtime, EPOCH);

    x = find(l, "etc/motd");
    assert_int_equal(x->mode, 0100640);
    assert_int_equal(x->uid, 3);
    assert_int_equal(x->gid, 4);
    assert_int_equal(x->mtime, 600);
    assert_int_equal(x->size, 6);
    assert_int_equal(x->nlink, 1);
    assert_memory_equal(x->data, "hello\n", 6);

    /* the host file, larger than one read chunk */
    fd = open(host_file, O_RDONLY);
    assert_true(fd >= 0);
    size = (size_t)lseek(fd, 0, SEEK_END);
    expect = malloc(size);
    assert_int_equal(md_pread_full(fd, expect, size, 0), 0);
    close(fd);
    x = find(l, "bin/tool");
    assert_int_equal(x->mode, 0100755);
    assert_int_equal(x->size, (long long)size);
    assert_int_equal(x->data_len, size);
    assert_memory_equal(x->data, expect, size);
    free(expect);

    x = find(l, "bin/sh");
    assert_int_equal(x->mode, 0120777);
    assert_string_equal(x->link, "tool");
    assert_int_equal(x->size, 4);

    /* hard links: one inode, nlink 3, the data only with the last one */
    ha = find(l, "h/a");
    hb = find(l, "h/b");
    hc = find(l, "h/c");
    assert_int_equal(ha->ino, hb->ino);
    assert_int_equal(ha->ino, hc->ino);
    assert_int_equal(ha->nlink, 3);
    assert_int_equal(hb->nlink, 3);
    assert_int_equal(hc->nlink, 3);
    assert_int_equal(ha->size, 0);
    assert_int_equal(hb->size, 0);
    assert_int_equal(hc->size, 11);
    assert_int_equal(hc->data_len, 11);
    assert_memory_equal(hc->data, "linked data", 11);
    assert_int_equal(ha->mode, 0100600);
    assert_int_equal(hb->mode, 0100600);
    assert_int_equal(hc->uid, 7);
    assert_int_equal(hb->gid, 8);
    assert_int_equal(hc->mtime, 700);
    assert_true(find(l, "etc/motd")->ino != ha->ino);

    x = find(l, "dev/console");
    assert_int_equal(x->mode, 020600);
    assert_int_equal(x->rmaj, 5);
    assert_int_equal(x->rmin, 1);
    assert_int_equal(x->gid, 5);
    assert_int_equal(x->size, 0);
    x = find(l, "dev/sda");
    assert_int_equal(x->mode, 060660);
    assert_int_equal(x->rmaj, 8);
    assert_int_equal(x->rmin, 0);
    x = find(l, "run/fifo");
    assert_int_equal(x->mode, 010600);
    x = find(l, "run/sock");
    assert_int_equal(x->mode, 0140600);
    x = find(l, "empty");
    assert_int_equal(x->mode, 0100644);
    assert_int_equal(x->size, 0);
    assert_int_equal(find(l, "dev")->nlink, 2);
}

static void test_opts_and_names(void **state)
{
    md_cpio_opts o;
    md_ctx *ctx = new_ctx();
    int32_t c, min, max, def;
    (void)state;

    memset(&o, 0xff, sizeof(o));
    md_cpio_opts_init(&o);
    assert_int_equal(o.version, MD_CPIO_OPTS_VERSION);
    assert_int_equal(o.compression, MD_COMPRESS_NONE);
    assert_int_equal(o.level, MD_COMPRESS_LEVEL_DEFAULT);
    assert_null(o.progress);
    md_cpio_opts_init(NULL);

    assert_int_equal(md_compress_from_name(ctx, "gzip", &c), 0);
    assert_int_equal(c, MD_COMPRESS_GZIP);
    assert_int_equal(md_compress_from_name(ctx, "xz", &c), 0);
    assert_int_equal(c, MD_COMPRESS_XZ);
    assert_int_equal(md_compress_from_name(ctx, "zst", &c), 0);
    assert_int_equal(c, MD_COMPRESS_ZSTD);
    assert_int_equal(md_compress_from_name(ctx, "lz4", &c), 0);
    assert_int_equal(c, MD_COMPRESS_LZ4);
    assert_int_equal(md_compress_from_name(ctx, "none", &c), 0);
    assert_int_equal(c, MD_COMPRESS_NONE);
    assert_int_equal(md_compress_from_name(ctx, "bzip2", &c), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "'bzip2'"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), "zstd"));
    assert_int_equal(md_compress_from_name(NULL, "bzip2", &c), -EINVAL);

    assert_string_equal(md_compress_name(MD_COMPRESS_LZ4), "lz4");
    assert_null(md_compress_name(17));
    assert_int_equal(md_compress_levels(MD_COMPRESS_GZIP, &min, &max, &def), 0);
    assert_int_equal(min, 1);
    assert_int_equal(max, 9);
    assert_int_equal(def, 6);
    assert_int_equal(md_compress_levels(-1, NULL, NULL, NULL), -EINVAL);
    md_ctx_free(ctx);
}

static void test_all_types(void **state)
{
    md_ctx *ctx = new_ctx();
    char *host = path_in_tmp("tool.bin"), *out = path_in_tmp("all.cpio");
    struct listing l;
    struct stat st;
    md_tree *t;
    (void)state;

    write_host_file(host, 300000);
    t = full_tree(ctx, host);
    assert_int_equal(md_cpio_write(t, out, NULL), 0);
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_size % 512, 0); /* padded like cpio(1) */
    read_archive(out, &l);
    check_full_listing(&l, host, 0);
    listing_free(&l);

    /* to an fd, same bytes; the tree can be written again */
    {
        int fd = memfd_create("cpio", 0);
        char *a, *b;
        assert_true(fd >= 0);
        assert_int_equal(md_cpio_write_fd(t, fd, NULL), 0);
        assert_int_equal(lseek(fd, 0, SEEK_END), st.st_size);
        a = malloc((size_t)st.st_size);
        b = malloc((size_t)st.st_size);
        assert_int_equal(md_pread_full(fd, a, (size_t)st.st_size, 0), 0);
        {
            int f2 = open(out, O_RDONLY);
            assert_int_equal(md_pread_full(f2, b, (size_t)st.st_size, 0), 0);
            close(f2);
        }
        assert_memory_equal(a, b, (size_t)st.st_size);
        /* raw newc: the first header is "bin", inode 1, devmajor/minor 0 */
        assert_memory_equal(a, "070701" "00000001" "000041ed", 22);
        assert_memory_equal(a + 6 + 8 * 7, "00000000" "00000000", 16);
        free(a);
        free(b);
        close(fd);
    }
    md_tree_free(t);
    unlink(out);
    unlink(host);
    free(out);
    free(host);
    md_ctx_free(ctx);
}

static char *slurp(const char *path, size_t *len)
{
    char *d;
    md_ctx *ctx = new_ctx();
    assert_int_equal(md_read_file(ctx, path, &d, len), 0);
    md_ctx_free(ctx);
    return d;
}

static void test_compression(void **state)
{
    static const int32_t methods[] = { MD_COMPRESS_GZIP, MD_COMPRESS_XZ, MD_COMPRESS_ZSTD,
                                       MD_COMPRESS_LZ4 };
    md_ctx *ctx = new_ctx();
    char *host = path_in_tmp("tool.bin"), *out = path_in_tmp("c.cpio"), *out2 = path_in_tmp("c2.cpio");
    char *big;
    size_t i, len, len2;
    md_tree *t;
    (void)state;

    write_host_file(host, 200000);
    t = full_tree(ctx, host);
    big = malloc(BIG_SIZE);
    for (i = 0; i < BIG_SIZE; i++)
        big[i] = (char)((i % 251) ^ (i >> 13));
    assert_int_equal(md_tree_add_data(t, "zz/big", big, BIG_SIZE, NULL), 0);

    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        md_cpio_opts o = MD_CPIO_OPTS_INIT;
        struct listing l;
        const struct rec *x;
        unsigned char *d, *d2;
        int fd;

        o.compression = methods[i];
        if (methods[i] == MD_COMPRESS_LZ4)
            o.level = 1; /* fast path; the default (HC) is exercised by the CLI test */
        assert_int_equal(md_cpio_write(t, out, &o), 0);
        fd = open(out, O_RDONLY);
        read_archive_fd(fd, &l);
        close(fd);
        /* everything but the big file is as in the plain archive */
        assert_string_equal(l.v[l.n - 1].path, "zz/big");
        x = &l.v[l.n - 1];
        assert_int_equal(x->data_len, BIG_SIZE);
        assert_memory_equal(x->data, big, BIG_SIZE);
        free(l.v[l.n - 1].data);
        l.n -= 2; /* zz/big and zz */
        check_full_listing(&l, host, 1);
        l.n += 2;
        l.v[l.n - 1].data = NULL;
        listing_free(&l);

        d = (unsigned char *)slurp(out, &len);
        switch (methods[i]) {
        case MD_COMPRESS_GZIP:
            assert_int_equal(d[0], 0x1f);
            assert_int_equal(d[1], 0x8b);
            assert_int_equal(d[3], 0);                      /* no name */
            assert_memory_equal(d + 4, "\0\0\0\0", 4);      /* no timestamp */
            break;
        case MD_COMPRESS_XZ:
            assert_memory_equal(d, "\xfd" "7zXZ\0", 6);
            assert_int_equal(d[6], 0);
            assert_int_equal(d[7], 1);                      /* check = CRC32 */
            break;
        case MD_COMPRESS_ZSTD:
            assert_memory_equal(d, "\x28\xb5\x2f\xfd", 4);
            break;
        case MD_COMPRESS_LZ4:
            assert_memory_equal(d, "\x02\x21\x4c\x18", 4);  /* legacy frame */
            /* the first block holds exactly 8 MiB: its size field is < bound */
            assert_true((d[4] | d[5] << 8 | d[6] << 16 | (unsigned)d[7] << 24) <
                        (unsigned)LZ4_compressBound(8 << 20));
            break;
        }
        /* deterministic: a second run gives the same bytes */
        assert_int_equal(md_cpio_write(t, out2, &o), 0);
        d2 = (unsigned char *)slurp(out2, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(d, d2, len);
        free(d);
        free(d2);

        /* levels are validated */
        o.level = 99;
        assert_int_equal(md_cpio_write(t, out2, &o), -EINVAL);
        assert_non_null(strstr(md_ctx_errmsg(ctx), md_compress_name(methods[i])));
        assert_non_null(strstr(md_ctx_errmsg(ctx), "level must be"));
    }
    {
        md_cpio_opts o = MD_CPIO_OPTS_INIT;
        o.compression = MD_COMPRESS_GZIP;
        o.level = 10;
        assert_int_equal(md_cpio_write(t, out2, &o), -EINVAL);
        assert_string_equal(md_ctx_errmsg(ctx), "gzip level must be 1..9, not 10");
        o.level = 9;
        assert_int_equal(md_cpio_write(t, out2, &o), 0);
    }
    md_tree_free(t);
    free(big);
    unlink(out);
    unlink(out2);
    unlink(host);
    free(out);
    free(out2);
    free(host);
    md_ctx_free(ctx);
}

struct prog {
    uint64_t last_done, total;
    int calls, cancel_at;
};

static int progress_cb(void *ud, uint64_t done, uint64_t total)
{
    struct prog *p = ud;
    assert_true(done >= p->last_done);
    p->last_done = done;
    p->total = total;
    p->calls++;
    return p->cancel_at && p->calls >= p->cancel_at;
}

static void test_errors_no_output(void **state)
{
    md_ctx *ctx = new_ctx();
    char *host = path_in_tmp("vanish.bin"), *sub = path_in_tmp("out"), *out;
    md_cpio_opts o = MD_CPIO_OPTS_INIT;
    struct prog p;
    md_tree *t;
    (void)state;

    assert_int_equal(mkdir(sub, 0755), 0);
    out = md_asprintf("%s/x.cpio", sub);
    write_host_file(host, 1000);
    t = full_tree(ctx, host);

    /* bad options */
    o.compression = 9;
    assert_int_equal(md_cpio_write(t, out, &o), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "unknown compression 9"));
    o.compression = MD_COMPRESS_NONE;
    o.level = 3;
    assert_int_equal(md_cpio_write(t, out, &o), -EINVAL);
    o.level = MD_COMPRESS_LEVEL_DEFAULT;
    o.flags = 0x80;
    assert_int_equal(md_cpio_write(t, out, &o), -EINVAL);
    o.flags = 0;
    o.version = 99;
    assert_int_equal(md_cpio_write(t, out, &o), -EINVAL);
    o.version = MD_CPIO_OPTS_VERSION;
    assert_int_equal(md_cpio_write(t, sub, &o), -EISDIR);
    assert_int_equal(md_cpio_write_fd(t, -1, &o), -EBADF);
    assert_int_equal(count_dir_entries(sub), 0);

    /* output directory missing */
    {
        char *nodir = path_in_tmp("nope/x.cpio");
        assert_int_equal(md_cpio_write(t, nodir, NULL), -ENOENT);
        assert_non_null(strstr(md_ctx_errmsg(ctx), nodir));
        free(nodir);
    }
    /* output directory not writable (root writes anyway) */
    if (geteuid() != 0) {
        assert_int_equal(chmod(sub, 0555), 0);
        assert_int_equal(md_cpio_write(t, out, NULL), -EACCES);
        assert_non_null(strstr(md_ctx_errmsg(ctx), out));
        assert_int_equal(chmod(sub, 0755), 0);
        assert_int_equal(count_dir_entries(sub), 0);
    }

    /* progress: counts file bytes; cancel leaves nothing */
    memset(&p, 0, sizeof(p));
    o.progress = progress_cb;
    o.userdata = &p;
    assert_int_equal(md_cpio_write(t, out, &o), 0);
    assert_int_equal(p.total, 1000 + 6 + 11);
    assert_int_equal(p.last_done, p.total);
    assert_true(p.calls >= 4);
    memset(&p, 0, sizeof(p));
    p.cancel_at = 2;
    assert_int_equal(unlink(out), 0);
    assert_int_equal(md_cpio_write(t, out, &o), -ECANCELED);
    assert_int_equal(count_dir_entries(sub), 0);
    o.progress = NULL;

    /* a host file that changed size */
    write_host_file(host, 1001);
    assert_int_equal(md_cpio_write(t, out, NULL), -ESTALE);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "bin/tool"));
    assert_int_equal(count_dir_entries(sub), 0);
    /* ... or vanished: an existing output stays untouched */
    {
        int fd = open(out, O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "old", 3), 3);
        close(fd);
    }
    assert_int_equal(unlink(host), 0);
    assert_int_equal(md_cpio_write(t, out, NULL), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "bin/tool"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), host));
    assert_int_equal(count_dir_entries(sub), 1);
    {
        size_t len;
        char *d = slurp(out, &len);
        assert_int_equal(len, 3);
        free(d);
    }
    unlink(out);
    md_tree_free(t);
    rmdir(sub);
    free(out);
    free(sub);
    free(host);
    md_ctx_free(ctx);
}

/* A host file resized while the archive is written (from the progress
 * callback, once the first chunk is in: the read-ahead ring holds 4 MiB, so
 * the 16 MiB file is read on after it): -ESTALE with both sizes, nothing
 * left.  Shrinking shows as a short read, growing only by its size after the
 * last read. */
struct resize {
    const char *path;
    off_t to;
    bool done;
};

static int resize_cb(void *ud, uint64_t done, uint64_t total)
{
    struct resize *rz = ud;

    (void)total;
    if (!rz->done && done > 0) {
        assert_int_equal(truncate(rz->path, rz->to), 0);
        rz->done = true;
    }
    return 0;
}

static void test_resized_while_read(void **state)
{
    static const off_t to[] = { 100, (off_t)20 << 20 };
    md_ctx *ctx = new_ctx();
    char *host = path_in_tmp("resized.bin"), *sub = path_in_tmp("rout"), *out;
    size_t i;
    (void)state;

    assert_int_equal(mkdir(sub, 0755), 0);
    out = md_asprintf("%s/x.cpio", sub);
    for (i = 0; i < sizeof(to) / sizeof(to[0]); i++) {
        md_cpio_opts o = MD_CPIO_OPTS_INIT;
        struct resize rz = { host, to[i], false };
        char want[64];
        md_tree *t;

        write_host_file(host, 16u << 20);
        t = full_tree(ctx, host);
        o.progress = resize_cb;
        o.userdata = &rz;
        assert_int_equal(md_cpio_write(t, out, &o), -ESTALE);
        assert_true(rz.done);
        snprintf(want, sizeof(want), "(%lld bytes now, %u when it was listed)", (long long)to[i],
                 16u << 20);
        assert_non_null(strstr(md_ctx_errmsg(ctx), "file changed while the image was being built"));
        assert_non_null(strstr(md_ctx_errmsg(ctx), want));
        assert_non_null(strstr(md_ctx_errmsg(ctx), host));
        assert_int_equal(count_dir_entries(sub), 0);
        md_tree_free(t);
    }
    unlink(host);
    rmdir(sub);
    free(out);
    free(sub);
    free(host);
    md_ctx_free(ctx);
}

static void test_empty_and_pipe(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t;
    int pfd[2];
    char buf[1024];
    ssize_t n;
    (void)state;

    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(pipe(pfd), 0);
    /* an empty tree is the root "." and the trailer, padded to 512 bytes;
     * fits the pipe */
    assert_int_equal(md_cpio_write_fd(t, pfd[1], NULL), 0);
    close(pfd[1]);
    n = read(pfd[0], buf, sizeof(buf));
    assert_int_equal(n, 512);
    assert_memory_equal(buf, "070701", 6);
    assert_memory_equal(buf + 110, ".", 2);
    assert_memory_equal(buf + 112, "070701", 6);
    assert_memory_equal(buf + 112 + 110, "TRAILER!!!", 11);
    close(pfd[0]);
    md_tree_free(t);
    md_ctx_free(ctx);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-cpio.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_and_names),
        cmocka_unit_test(test_all_types),
        cmocka_unit_test(test_compression),
        cmocka_unit_test(test_errors_no_output),
        cmocka_unit_test(test_resized_while_read),
        cmocka_unit_test(test_empty_and_pipe),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
