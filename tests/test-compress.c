/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The multi-threaded compressors (lib/md-compress.c): the same bytes for any
 * thread count and any split of the input into writes, checked back with
 * independent readers (libarchive's read side; zlib for the one-member gzip
 * rule; the system's gzip/xz/zstd/lz4 -t), and the container details the
 * kernel needs (xz: CRC32, several blocks; zstd: one frame, window limit;
 * lz4: legacy 8 MiB blocks).  Also the cpio options' threads field.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <lzma.h>
#include <sys/mman.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "md-compress.h"
#include "md-internal.h"
#include "test-util.h"

#define BIG (40u << 20)

static char tmpdir[64];

struct buf {
    unsigned char *p;
    size_t n, cap;
    int fail_after; /* >0: fail with -ENOSPC on this call */
    int calls;
};

static int buf_out(void *userdata, const void *data, size_t n)
{
    struct buf *b = userdata;

    if (b->fail_after && ++b->calls >= b->fail_after)
        return -ENOSPC;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    return 0;
}

static uint64_t rng_state;

static uint32_t rng(void)
{
    /* xorshift64*: fixed seed, the same data every run */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

/* Text-like data: lines drawn from a set of 4096, a third of them with a
 * random number in them, and now and then a run of random bytes.  It
 * compresses about 4x with gzip, like an initramfs, with no long repeats. */
static unsigned char *make_data(size_t n, uint64_t seed)
{
    static char words[512][12], lines[4096][96];
    unsigned char *d = malloc(n);
    size_t i = 0, w;

    assert_non_null(d);
    rng_state = seed;
    for (w = 0; w < 512; w++) {
        size_t len = 2 + rng() % 9, k;
        for (k = 0; k < len; k++)
            words[w][k] = (char)('a' + rng() % 26);
        words[w][len] = 0;
    }
    for (w = 0; w < 4096; w++) {
        size_t len = 0, want = 10 + rng() % 70;
        while (len < want) {
            const char *s = words[rng() % 512];
            len += (size_t)snprintf(lines[w] + len, sizeof(lines[w]) - len, "%s ", s);
        }
        lines[w][len - 1] = '\n';
    }
    while (i < n) {
        uint32_t r = rng();
        char num[16];
        const char *s = lines[r % 4096];
        if (r >> 22 == 0) {
            size_t run = 64 + rng() % 4096;
            while (run-- && i < n)
                d[i++] = (unsigned char)rng();
            continue;
        }
        if ((r >> 12) % 3 == 0) {
            snprintf(num, sizeof(num), "%u ", rng() % 100000);
            for (w = 0; num[w] && i < n; w++)
                d[i++] = (unsigned char)num[w];
        }
        while (*s && i < n)
            d[i++] = (unsigned char)*s++;
    }
    return d;
}

/* How the input is handed over: fixed 128 KiB writes (as libarchive does),
 * odd sizes from 1 byte to 300 KB, or all at once. */
enum split { SPLIT_128K, SPLIT_ODD, SPLIT_ONE };

static void run_compress(int32_t codec, int32_t level, uint32_t threads, const unsigned char *in,
                     size_t n, enum split split, struct buf *out)
{
    md_ctx *ctx;
    md_compressor *c;
    size_t off = 0;

    memset(out, 0, sizeof(*out));
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_compressor_new(ctx, codec, level, threads, buf_out, out, &c), 0);
    rng_state = 42;
    while (off < n) {
        size_t k = split == SPLIT_ONE ? n - off : split == SPLIT_128K ? 128 * 1024 : 1 + rng() % 300000;
        if (k > n - off)
            k = n - off;
        assert_int_equal(md_compressor_write(c, in + off, k), 0);
        off += k;
    }
    assert_int_equal(md_compressor_finish(c), 0);
    md_compressor_free(c);
    md_ctx_free(ctx);
}

/* Decompress @z with libarchive (raw format: the filters alone). */
static void check_roundtrip(const struct buf *z, const unsigned char *in, size_t n)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    unsigned char *chunk = malloc(1 << 20);
    size_t off = 0;
    la_ssize_t k;

    assert_non_null(a);
    assert_non_null(chunk);
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    assert_int_equal(archive_read_open_memory(a, z->p, z->n), ARCHIVE_OK);
    if (archive_read_next_header(a, &ae) != ARCHIVE_OK)
        fail_msg("libarchive: %zu bytes in, %zu compressed: %s", n, z->n, archive_error_string(a));
    while ((k = archive_read_data(a, chunk, 1 << 20)) > 0) {
        if (off + (size_t)k > n)
            fail_msg("libarchive read %zu bytes from %zu compressed, expected %zu", off + (size_t)k,
                     z->n, n);
        assert_memory_equal(chunk, in + off, (size_t)k);
        off += (size_t)k;
    }
    assert_int_equal(k, 0);
    assert_int_equal(off, n);
    archive_read_free(a);
    free(chunk);
}

/* The system tool's integrity test of @z (gzip -t, xz -t, ...). */
static void check_tool(const char *tool, const char *package, const struct buf *z)
{
    char path[128], cmd[256];
    int fd;

    if (!md_test_have_tool(tool)) {
        if (md_test_in_ci())
            fail_msg("FAIL (CI): %s is required but missing (install %s)", tool, package);
        print_message("note: %s is missing (install %s): its -t check is skipped\n", tool, package);
        return;
    }
    snprintf(path, sizeof(path), "%s/z", tmpdir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(md_write_full(fd, z->p, z->n), 0);
    close(fd);
    snprintf(cmd, sizeof(cmd), "%s -t %s%s", tool, strcmp(tool, "zstd") && strcmp(tool, "lz4") ? "" : "-q ", path);
    if (system(cmd) != 0)
        fail_msg("'%s' failed", cmd);
    unlink(path);
}

/* One gzip member: zlib's gzip decoder ends exactly at the end of @z. */
static void check_gzip(const struct buf *z, size_t n, int level)
{
    z_stream zs;
    unsigned char *out = malloc(1 << 20);
    size_t total = 0;
    int zr;

    assert_int_equal(z->p[0], 0x1f);
    assert_int_equal(z->p[1], 0x8b);
    assert_int_equal(z->p[2], 8);
    assert_int_equal(z->p[3], 0);                  /* no FNAME/FEXTRA/FCOMMENT/FHCRC */
    assert_memory_equal(z->p + 4, "\0\0\0\0", 4);  /* mtime 0 */
    assert_int_equal(z->p[8], level == 9 ? 2 : level == 1 ? 4 : 0);
    assert_int_equal(z->p[9], 3);
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 16 + 15), Z_OK);
    zs.next_in = z->p;
    zs.avail_in = (uInt)z->n;
    do {
        zs.next_out = out;
        zs.avail_out = 1 << 20;
        zr = inflate(&zs, Z_NO_FLUSH);
        assert_true(zr == Z_OK || zr == Z_STREAM_END);
        total += (1 << 20) - zs.avail_out;
    } while (zr != Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0);  /* nothing after the first member */
    assert_int_equal(total, n);
    inflateEnd(&zs);
    free(out);
}

static uint64_t vli(const unsigned char **p)
{
    uint64_t v = 0;
    int shift = 0;

    do {
        v |= (uint64_t)(**p & 0x7f) << shift;
        shift += 7;
    } while (*(*p)++ & 0x80);
    return v;
}

/* One .xz stream with CRC32 and LZMA2 blocks; returns the number of blocks. */
static uint64_t check_xz(const struct buf *z)
{
    const unsigned char *foot = z->p + z->n - 12, *idx;
    uint32_t backward;

    assert_memory_equal(z->p, "\xfd" "7zXZ\0", 6);
    assert_int_equal(z->p[6], 0);
    assert_int_equal(z->p[7], 1);                  /* check = CRC32 */
    assert_memory_equal(foot + 10, "YZ", 2);
    assert_int_equal(foot[9], 1);
    backward = (md_get_le32(foot + 4) + 1) * 4;
    idx = foot - backward;
    assert_int_equal(idx[0], 0);                   /* index indicator */
    idx++;
    /* the first block: its header has one filter, LZMA2 (0x21) */
    assert_int_equal(z->p[12 + 1] & 3, 0);         /* one filter: no BCJ */
    return vli(&idx);
}

/* One zstd frame with a checksum and a window the kernel accepts. */
static void check_zstd(const struct buf *z, size_t n, int max_wlog)
{
    unsigned fhd = z->p[4], wd;

    assert_memory_equal(z->p, "\x28\xb5\x2f\xfd", 4);
    assert_int_equal(ZSTD_findFrameCompressedSize(z->p, z->n), z->n);
    assert_true(fhd & 4);                          /* content checksum */
    if (n == 0) {                                  /* known size 0: single segment */
        assert_true(fhd & 0x20);
        return;
    }
    assert_int_equal(fhd & 0x20, 0);               /* not single-segment: window given */
    wd = z->p[5];
    assert_true(10 + (wd >> 3) <= (unsigned)max_wlog);
}

/* Legacy lz4: 8 MiB blocks, each a LE32 size and data, decoded with liblz4
 * (libarchive does not recognise a frame of a few bytes). */
static void check_lz4(const struct buf *z, const unsigned char *in, size_t n)
{
    size_t off = 4, blocks = 0, done = 0;
    char *out = malloc(8u << 20);

    assert_non_null(out);
    assert_int_equal(md_get_le32(z->p), 0x184C2102u);
    while (off < z->n) {
        uint32_t k = md_get_le32(z->p + off);
        int d;
        assert_true(off + 4 + k <= z->n);
        d = LZ4_decompress_safe((const char *)z->p + off + 4, out, (int)k, 8 << 20);
        assert_true(d > 0 && done + (size_t)d <= n);
        /* every block but the last holds exactly 8 MiB */
        assert_true((size_t)d == 8u << 20 || off + 4 + k == z->n);
        assert_memory_equal(out, in + done, (size_t)d);
        done += (size_t)d;
        off += 4 + k;
        blocks++;
    }
    assert_int_equal(off, z->n);
    assert_int_equal(done, n);
    assert_int_equal(blocks, (n + (8u << 20) - 1) / (8u << 20));
    free(out);
}

static void same_bytes(const struct buf *a, const struct buf *b, const char *what)
{
    size_t i;

    if (a->n == b->n && memcmp(a->p, b->p, a->n) == 0)
        return;
    for (i = 0; i < a->n && i < b->n && a->p[i] == b->p[i]; i++)
        ;
    fail_msg("%s: %zu vs %zu bytes, first difference at %zu", what, a->n, b->n, i);
}

static const struct {
    int32_t codec;
    const char *tool, *package;
} codecs[] = {
    { MD_COMPRESS_NONE, NULL, NULL },
    { MD_COMPRESS_GZIP, "gzip", "gzip" },
    { MD_COMPRESS_XZ, "xz", "xz-utils" },
    { MD_COMPRESS_ZSTD, "zstd", "zstd" },
    { MD_COMPRESS_LZ4, "lz4", "lz4" },
};

/* Check @z (compressed @in) fully. */
static void check_all(int32_t codec, int32_t level, const struct buf *z, const unsigned char *in,
                      size_t n, size_t ci)
{
    switch (codec) {
    case MD_COMPRESS_NONE:
        assert_int_equal(z->n, n);
        assert_memory_equal(z->p, in, n);
        return;
    case MD_COMPRESS_GZIP:
        check_gzip(z, n, level);
        break;
    case MD_COMPRESS_XZ: {
        /* blocks of 1.5 dictionaries, at least 1 MiB: 12 MiB at preset 6 */
        lzma_options_lzma lz;
        uint64_t bs;
        assert_false(lzma_lzma_preset(&lz, (uint32_t)level));
        bs = (uint64_t)lz.dict_size * 3 / 2;
        if (bs < (1u << 20))
            bs = 1u << 20;
        assert_int_equal(check_xz(z), (n + bs - 1) / bs);
        break;
    }
    case MD_COMPRESS_ZSTD:
        check_zstd(z, n, 27);
        break;
    case MD_COMPRESS_LZ4:
        check_lz4(z, in, n);
        break;
    }
    /* libarchive's raw reader refuses empty data; the tools check it */
    if (n > 0 && codec != MD_COMPRESS_LZ4)
        check_roundtrip(z, in, n);
    check_tool(codecs[ci].tool, codecs[ci].package, z);
}

/* Every codec: threads 1, 2 and 8, three ways of splitting the input; the
 * same bytes, and they decompress to the input.  Default levels, but xz -6
 * takes minutes for 3 x 40 MB on a busy 2-core machine: xz runs at preset 0
 * here (1 MiB blocks), and at its default preset 6 (12 MiB blocks) on the
 * first 13 MiB (two blocks) with 1 and 8 threads. */
static void test_threads_same_bytes(void **state)
{
    unsigned char *in = make_data(BIG, 1);
    size_t ci;
    (void)state;

    for (ci = 0; ci <= sizeof(codecs) / sizeof(codecs[0]); ci++) {
        bool xz6 = ci == sizeof(codecs) / sizeof(codecs[0]);
        int32_t codec = xz6 ? MD_COMPRESS_XZ : codecs[ci].codec, level;
        size_t n = xz6 ? 13u << 20 : BIG;
        struct buf z1, z2, z8;
        time_t t0 = time(NULL);

        assert_int_equal(md_compress_levels(codec, NULL, NULL, &level), 0);
        if (codec == MD_COMPRESS_XZ && !xz6)
            level = 0;
        run_compress(codec, level, 1, in, n, SPLIT_128K, &z1);
        if (!xz6)
            run_compress(codec, level, 2, in, n, SPLIT_ODD, &z2);
        run_compress(codec, level, 8, in, n, xz6 ? SPLIT_ODD : SPLIT_ONE, &z8);
        if (!xz6)
            same_bytes(&z1, &z2, "threads 1 vs 2");
        same_bytes(&z1, &z8, "threads 1 vs 8");
        check_all(codec, level, &z1, in, n, xz6 ? 2 : ci);
        print_message("%-5s level %d: %zu -> %zu bytes, the same for 1%s and 8 threads (%lds)\n",
                      md_compress_name(codec), level, n, z1.n, xz6 ? "" : ", 2",
                      (long)(time(NULL) - t0));
        free(z1.p);
        if (!xz6)
            free(z2.p);
        free(z8.p);
    }
    free(in);
}

/* Other levels, smaller inputs (incl. empty, and exactly one chunk or block). */
static void test_levels_and_sizes(void **state)
{
    static const struct {
        int32_t codec, level;
    } cases[] = {
        { MD_COMPRESS_GZIP, 1 }, { MD_COMPRESS_GZIP, 9 }, { MD_COMPRESS_XZ, 0 },
        { MD_COMPRESS_XZ, 9 }, { MD_COMPRESS_ZSTD, 1 }, { MD_COMPRESS_ZSTD, 19 },
        { MD_COMPRESS_LZ4, 1 }, { MD_COMPRESS_LZ4, 12 },
    };
    static const size_t sizes[] = { 0, 1, 128 * 1024, 128 * 1024 + 1, 8u << 20, 9u << 20 };
    unsigned char *in = make_data(9u << 20, 2);
    size_t i, k, ci;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (ci = 0; codecs[ci].codec != cases[i].codec; ci++)
            ;
        for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            struct buf a, b;
            /* xz -9 and zstd -19 are slow: small sizes only */
            if (sizes[k] >= (8u << 20) && cases[i].codec != MD_COMPRESS_GZIP &&
                cases[i].codec != MD_COMPRESS_LZ4 && cases[i].level > 1)
                continue;
            print_message("%s level %d, %zu bytes\n", md_compress_name(cases[i].codec), cases[i].level,
                          sizes[k]);
            run_compress(cases[i].codec, cases[i].level, 1, in, sizes[k], SPLIT_ODD, &a);
            run_compress(cases[i].codec, cases[i].level, 3, in, sizes[k], SPLIT_128K, &b);
            same_bytes(&a, &b, md_compress_name(cases[i].codec));
            check_all(cases[i].codec, cases[i].level, &a, in, sizes[k], ci);
            free(a.p);
            free(b.p);
        }
    }
    free(in);
}

/* An output error stops everything and sticks; freeing mid-stream (jobs
 * queued and running) neither hangs nor leaks; bad arguments. */
static void test_errors(void **state)
{
    unsigned char *in = make_data(4u << 20, 3);
    md_ctx *ctx;
    size_t ci;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    for (ci = 1; ci < sizeof(codecs) / sizeof(codecs[0]); ci++) {
        md_compressor *c;
        struct buf b;
        int32_t level;
        size_t off;
        int r = 0;

        assert_int_equal(md_compress_levels(codecs[ci].codec, NULL, NULL, &level), 0);
        if (codecs[ci].codec == MD_COMPRESS_XZ)
            level = 0; /* fast, and 1 MiB blocks: output before the end */
        memset(&b, 0, sizeof(b));
        b.fail_after = 2;
        assert_int_equal(md_compressor_new(ctx, codecs[ci].codec, level, 2, buf_out, &b, &c), 0);
        for (off = 0; off < (4u << 20) && r == 0; off += 65536)
            r = md_compressor_write(c, in + off, 65536);
        if (r == 0)
            r = md_compressor_finish(c);
        assert_int_equal(r, -ENOSPC);
        assert_int_equal(md_compressor_write(c, in, 10), -ENOSPC);
        assert_int_equal(md_compressor_finish(c), -ENOSPC);
        md_compressor_free(c);
        free(b.p);

        /* free with work in flight */
        memset(&b, 0, sizeof(b));
        assert_int_equal(md_compressor_new(ctx, codecs[ci].codec, level, 4, buf_out, &b, &c), 0);
        assert_int_equal(md_compressor_write(c, in, 4u << 20), 0);
        md_compressor_free(c);
        free(b.p);
    }
    {
        md_compressor *c = (md_compressor *)1;
        struct buf b;
        memset(&b, 0, sizeof(b));
        assert_int_equal(md_compressor_new(ctx, 7, 1, 1, buf_out, &b, &c), -EINVAL);
        assert_null(c);
        assert_non_null(strstr(md_ctx_errmsg(ctx), "unknown compression 7"));
        assert_int_equal(md_compressor_new(ctx, MD_COMPRESS_GZIP, 6, 1, buf_out, &b, &c), 0);
        assert_int_equal(md_compressor_finish(c), 0);
        assert_int_equal(md_compressor_finish(c), -EINVAL);
        assert_int_equal(md_compressor_write(c, in, 1), -EINVAL);
        md_compressor_free(c);
        free(b.p);
    }
    md_compressor_free(NULL);
    assert_true(md_compress_threads(0) >= 1);
    assert_int_equal(md_compress_threads(3), 3);
    assert_int_equal(md_compress_threads(100000), MD_COMPRESS_THREADS_MAX);
    md_ctx_free(ctx);
    free(in);
}

/* md_cpio_opts.threads through the cpio sink: the same archive for 1 and 8
 * threads; a version-1 struct (no threads field) is still accepted.  A
 * 10 MB file: more than one lz4 block, several gzip chunks and zstd jobs. */
struct opts_v1 {
    uint32_t version, flags;
    int32_t compression, level;
    md_progress_fn progress;
    void *userdata;
};

static void test_cpio_threads(void **state)
{
    unsigned char *data = make_data(10u << 20, 4);
    md_ctx *ctx;
    md_tree *t;
    size_t ci;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_tree_new(ctx, &t), 0);
    assert_int_equal(md_tree_add_dir(t, "d", NULL), 0);
    assert_int_equal(md_tree_add_data(t, "d/big", data, 10u << 20, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "d/small", "hello\n", 6, NULL), 0);
    for (ci = 0; ci < sizeof(codecs) / sizeof(codecs[0]); ci++) {
        md_cpio_opts o = MD_CPIO_OPTS_INIT;
        struct opts_v1 *v1 = malloc(sizeof(*v1)); /* heap: ASan sees a read past its end */
        int fd[3];
        size_t len[3], k;
        char *p[3];

        o.compression = codecs[ci].codec;
        if (o.compression == MD_COMPRESS_XZ)
            o.level = 0; /* 1 MiB blocks; and -6 would take long */
        for (k = 0; k < 3; k++) {
            fd[k] = memfd_create("cpio", 0);
            assert_true(fd[k] >= 0);
        }
        o.threads = 1;
        assert_int_equal(md_cpio_write_fd(t, fd[0], &o), 0);
        o.threads = 8;
        assert_int_equal(md_cpio_write_fd(t, fd[1], &o), 0);
        v1->version = 1;
        v1->flags = 0;
        v1->compression = codecs[ci].codec;
        v1->level = o.level;
        v1->progress = NULL;
        v1->userdata = NULL;
        assert_int_equal(md_cpio_write_fd(t, fd[2], (const md_cpio_opts *)(void *)v1), 0);
        free(v1);
        for (k = 0; k < 3; k++) {
            len[k] = (size_t)lseek(fd[k], 0, SEEK_END);
            p[k] = malloc(len[k]);
            assert_int_equal(md_pread_full(fd[k], p[k], len[k], 0), 0);
            close(fd[k]);
        }
        assert_int_equal(len[0], len[1]);
        assert_memory_equal(p[0], p[1], len[0]);
        assert_int_equal(len[0], len[2]);
        assert_memory_equal(p[0], p[2], len[0]);
        for (k = 0; k < 3; k++)
            free(p[k]);
    }
    md_tree_free(t);
    md_ctx_free(ctx);
    free(data);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/md-test-compress.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    md_test_rmtree(tmpdir);
    return 0;
}

int main(void)
{
    const char *only = getenv("MD_TEST_ONLY"); /* for debugging: one test by name */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_same_bytes),
        cmocka_unit_test(test_levels_and_sizes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cpio_threads),
    };
    if (only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, setup, teardown);
}
