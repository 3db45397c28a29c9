/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unified kernel images.  The output is read back by a PE/COFF reader of
 * this file's own (headers, section table, section contents, checksum).
 * Stubs and kernels are made here: a synthetic PE32+ stub whose shape each
 * test chooses (alignments, section count, symbol table, machine...), a fake
 * bzImage with an EFI stub's PE header; systemd's real stub is used too when
 * installed.  tests/t-uki.sh judges the result with objdump and sbverify,
 * tests/e2e-uefi-uki.sh boots it.
 */
#include <dirent.h>
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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "md-internal.h"
#include "test-util.h"

static char dir[] = "/tmp/md-test-uki.XXXXXX";
static char stub[300], kernel[300], kernel_nostub[300], textfile[300], initrd1[300],
    initrd2[300], initrd_empty[300], osrel[300];

/* ---- fixtures ----------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { md_put_le16(p, v); }
static void put32(uint8_t *p, uint32_t v) { md_put_le32(p, v); }

static void write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(md_write_full(fd, data, n), 0);
    close(fd);
}

static void path_in(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

struct stub_shape {
    uint16_t machine, magic, subsystem;
    uint32_t sect_align, file_align;
    uint16_t n_sections;     /* filler sections after .text and .data */
    uint32_t first_raw;      /* file offset of the first section's data */
    int symtab;              /* append a COFF symbol + string table */
    int signed_;             /* a certificate table entry */
    const char *extra_name;  /* name of the last section (default ".data") */
};

static const struct stub_shape default_shape = {
    0x8664, 0x20b, 10, 0x1000, 0x200, 2, 0x400, 0, 0, NULL,
};

/* A small PE32+ EFI application: .text, .data (or more), nothing else. */
static size_t make_stub(const struct stub_shape *sh, uint8_t **ret)
{
    const uint32_t pe = 0x80, opt = pe + 24, opt_size = 240, secs = opt + opt_size;
    size_t len, i, raw;
    uint8_t *b;
    uint32_t va;

    raw = sh->first_raw;
    len = raw + (size_t)sh->n_sections * sh->file_align;
    if (sh->symtab)
        len += 2 * 18 + 4 + 7; /* two symbols, a string table of 4 + 7 bytes (unaligned end) */
    b = calloc(1, len);
    assert_non_null(b);
    b[0] = 'M';
    b[1] = 'Z';
    put32(b + 0x3c, pe);
    memcpy(b + pe, "PE\0\0", 4);
    put16(b + pe + 4, sh->machine);
    put16(b + pe + 6, sh->n_sections);
    put32(b + pe + 8, 0x5eed1e55);           /* TimeDateStamp: must survive */
    put16(b + pe + 20, (uint16_t)opt_size);
    put16(b + pe + 22, 0x206);
    put16(b + opt, sh->magic);
    put32(b + opt + 4, sh->file_align);       /* SizeOfCode */
    put32(b + opt + 8, (uint32_t)(sh->n_sections - 1) * sh->file_align);
    put32(b + opt + 16, 0x1000);              /* entry */
    put32(b + opt + 20, 0x1000);
    put32(b + opt + 32, sh->sect_align);
    put32(b + opt + 36, sh->file_align);
    put32(b + opt + 60, 0x3c0);               /* SizeOfHeaders: unaligned on purpose */
    put32(b + opt + 64, 0xdeadbeef);          /* a stale checksum */
    put16(b + opt + 68, sh->subsystem);
    put32(b + opt + 108, 16);
    if (sh->signed_) {
        put32(b + opt + 112 + 4 * 8, (uint32_t)len);
        put32(b + opt + 112 + 4 * 8 + 4, 0x100);
    }
    va = (0x1000 + sh->sect_align - 1) / sh->sect_align * sh->sect_align; /* past the headers */
    for (i = 0; i < sh->n_sections; i++) {
        uint8_t *s = b + secs + i * 40;
        const char *name = i == 0 ? ".text" : i + 1 == sh->n_sections && sh->extra_name ?
                           sh->extra_name : i == 1 ? ".data" : ".fill";
        memcpy(s, name, strlen(name));
        put32(s + 8, 0x123 + (uint32_t)i);    /* VirtualSize */
        put32(s + 12, va);
        put32(s + 16, sh->file_align);
        put32(s + 20, (uint32_t)raw);
        put32(s + 36, i == 0 ? 0x60000020u : 0xc0000040u);
        memset(b + raw, 0xa0 + (int)i, 0x123 + i);
        va += sh->sect_align;
        raw += sh->file_align;
    }
    put32(b + opt + 56, va);                  /* SizeOfImage */
    if (sh->symtab) {
        put32(b + pe + 12, (uint32_t)raw);
        put32(b + pe + 16, 2);
        memset(b + raw, 's', 36);
        put32(b + raw + 36, 11);
        memcpy(b + raw + 40, "sym_one", 7);
    }
    *ret = b;
    return len;
}

static void write_stub(const char *path, const struct stub_shape *sh)
{
    uint8_t *b;
    size_t n = make_stub(sh, &b);
    write_file(path, b, n);
    free(b);
}

/* A fake bzImage: "MZ", a PE header (x86-64) and "HdrS", then payload. */
static void write_kernel(const char *path, size_t size, int with_pe, uint16_t machine)
{
    uint8_t *b = malloc(size);
    size_t i;

    assert_non_null(b);
    for (i = 0; i < size; i++)
        b[i] = (uint8_t)(i * 7 + 3);
    memset(b, 0, 0x300);
    if (with_pe) {
        b[0] = 'M';
        b[1] = 'Z';
        put32(b + 0x3c, 0x40);
        memcpy(b + 0x40, "PE\0\0", 4);
        put16(b + 0x44, machine);
    }
    memcpy(b + 0x202, "HdrS", 4);
    write_file(path, b, size);
    free(b);
}

static int setup(void **state)
{
    static const char osrel_text[] = "NAME=minidistro\nID=minidistro\nVERSION_ID=1\n";
    uint8_t data[3001];
    size_t i;
    (void)state;

    if (!mkdtemp(dir))
        return -1;
    path_in(stub, sizeof(stub), "stub.efi");
    path_in(kernel, sizeof(kernel), "bzImage");
    path_in(kernel_nostub, sizeof(kernel_nostub), "bzImage-nostub");
    path_in(textfile, sizeof(textfile), "text");
    path_in(initrd1, sizeof(initrd1), "initrd1");
    path_in(initrd2, sizeof(initrd2), "initrd2");
    path_in(initrd_empty, sizeof(initrd_empty), "initrd-empty");
    path_in(osrel, sizeof(osrel), "os-release");
    write_stub(stub, &default_shape);
    write_kernel(kernel, 100001, 1, 0x8664);
    write_kernel(kernel_nostub, 5000, 0, 0);
    write_file(textfile, "I am not a PE file, nor a kernel\n", 33);
    for (i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(255 - i % 251);
    write_file(initrd1, data, 1001);   /* odd sizes: padding shows */
    write_file(initrd2, data, 3001);
    write_file(initrd_empty, "", 0);
    write_file(osrel, osrel_text, strlen(osrel_text));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    md_test_rmtree(dir);
    return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    char *data;
    md_ctx *ctx;

    assert_int_equal(md_ctx_new(&ctx), 0);
    if (md_read_file(ctx, path, &data, len) < 0)
        fail_msg("%s: %s", path, md_ctx_errmsg(ctx));
    md_ctx_free(ctx);
    return (uint8_t *)data;
}

/* ---- an independent PE reader -------------------------------------------------- */

struct sec {
    char name[9];
    uint32_t vsize, va, raw_size, raw_ptr, flags;
};

struct pe {
    uint16_t machine, n_sections;
    uint32_t timestamp, symtab, nsyms;
    uint32_t size_of_code, size_of_data, sect_align, file_align, size_of_image, size_of_headers,
        checksum;
    uint32_t table_end;
    struct sec secs[32];
};

static void pe_read(const uint8_t *b, size_t len, struct pe *pe)
{
    uint32_t off, opt, secs, i;
    uint16_t opt_size;

    memset(pe, 0, sizeof(*pe));
    assert_true(len > 0x40);
    assert_memory_equal(b, "MZ", 2);
    off = md_get_le32(b + 0x3c);
    assert_memory_equal(b + off, "PE\0\0", 4);
    pe->machine = md_get_le16(b + off + 4);
    pe->n_sections = md_get_le16(b + off + 6);
    pe->timestamp = md_get_le32(b + off + 8);
    pe->symtab = md_get_le32(b + off + 12);
    pe->nsyms = md_get_le32(b + off + 16);
    opt_size = md_get_le16(b + off + 20);
    opt = off + 24;
    assert_int_equal(md_get_le16(b + opt), 0x20b);
    pe->size_of_code = md_get_le32(b + opt + 4);
    pe->size_of_data = md_get_le32(b + opt + 8);
    pe->sect_align = md_get_le32(b + opt + 32);
    pe->file_align = md_get_le32(b + opt + 36);
    pe->size_of_image = md_get_le32(b + opt + 56);
    pe->size_of_headers = md_get_le32(b + opt + 60);
    pe->checksum = md_get_le32(b + opt + 64);
    secs = opt + opt_size;
    assert_true(pe->n_sections <= 32);
    for (i = 0; i < pe->n_sections; i++) {
        const uint8_t *s = b + secs + i * 40;
        struct sec *x = &pe->secs[i];
        memcpy(x->name, s, 8);
        x->vsize = md_get_le32(s + 8);
        x->va = md_get_le32(s + 12);
        x->raw_size = md_get_le32(s + 16);
        x->raw_ptr = md_get_le32(s + 20);
        x->flags = md_get_le32(s + 36);
    }
    pe->table_end = secs + 40u * pe->n_sections;
}

static const struct sec *pe_find(const struct pe *pe, const char *name)
{
    uint16_t i;
    for (i = 0; i < pe->n_sections; i++)
        if (!strcmp(pe->secs[i].name, name))
            return &pe->secs[i];
    return NULL;
}

/* The Windows CheckSumMappedFile algorithm, folding after every word. */
static uint32_t pe_checksum(const uint8_t *b, size_t len, uint32_t field)
{
    uint32_t sum = 0;
    size_t i;

    for (i = 0; i < len; i += 2) {
        uint32_t w = b[i] | (i + 1 < len ? (uint32_t)b[i + 1] << 8 : 0);
        if (i >= field && i < field + 4)
            w = 0;
        sum += w;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    return sum + (uint32_t)len;
}

static uint32_t round_up(uint32_t v, uint32_t a)
{
    return (v + a - 1) / a * a;
}

/* Everything the layout rules promise about @b made from @stub_b. */
static void check_layout(const uint8_t *b, size_t len, const uint8_t *stub_b, size_t stub_len,
                         const char *const *names, size_t n_new)
{
    struct pe pe, st;
    uint32_t i, j, img_end = 0, field;
    uint64_t code = 0, data = 0;

    pe_read(stub_b, stub_len, &st);
    pe_read(b, len, &pe);
    assert_int_equal(pe.machine, st.machine);
    assert_int_equal(pe.timestamp, st.timestamp);
    assert_int_equal(pe.n_sections, st.n_sections + n_new);
    assert_int_equal(pe.sect_align, st.sect_align);
    assert_int_equal(pe.file_align, st.file_align);
    /* the stub's sections are untouched, byte for byte */
    for (i = 0; i < st.n_sections; i++) {
        assert_memory_equal(&pe.secs[i], &st.secs[i], sizeof(pe.secs[i]));
        assert_memory_equal(b + pe.secs[i].raw_ptr, stub_b + st.secs[i].raw_ptr,
                            st.secs[i].raw_size);
    }
    /* headers: the table fits before the first section's data */
    assert_true(pe.table_end <= pe.size_of_headers);
    assert_int_equal(pe.size_of_headers % pe.file_align, 0);
    for (i = 0; i < pe.n_sections; i++)
        assert_true(pe.secs[i].raw_ptr >= pe.size_of_headers);
    for (i = 0; i < n_new; i++) {
        const struct sec *s = &pe.secs[st.n_sections + i];
        const struct sec *prev = &pe.secs[st.n_sections + i - 1];
        assert_string_equal(s->name, names[i]);
        assert_int_equal(s->va % pe.sect_align, 0);
        assert_int_equal(s->raw_ptr % pe.file_align, 0);
        assert_int_equal(s->raw_size, round_up(s->vsize, pe.file_align));
        /* ukify: right after the previous section, rounded up */
        assert_int_equal(s->va, round_up(prev->va + prev->vsize, pe.sect_align));
        assert_true(s->raw_ptr >= prev->raw_ptr + prev->raw_size);
        if (!strcmp(s->name, ".linux")) {
            assert_int_equal(s->flags, 0x40000020u);
            code += s->vsize;
        } else {
            assert_int_equal(s->flags, 0x40000040u);
            data += s->vsize;
        }
        /* padding after the data is zeros */
        for (j = s->vsize; j < s->raw_size; j++)
            assert_int_equal(b[s->raw_ptr + j], 0);
    }
    assert_string_equal(pe.secs[pe.n_sections - 1].name, ".linux");
    /* nothing overlaps, in memory or in the file */
    for (i = 0; i < pe.n_sections; i++) {
        const struct sec *a = &pe.secs[i];
        if (a->va + a->vsize > img_end)
            img_end = a->va + a->vsize;
        for (j = i + 1; j < pe.n_sections; j++) {
            const struct sec *c = &pe.secs[j];
            assert_true(a->va + a->vsize <= c->va || c->va + c->vsize <= a->va);
            if (a->raw_size && c->raw_size)
                assert_true(a->raw_ptr + a->raw_size <= c->raw_ptr ||
                            c->raw_ptr + c->raw_size <= a->raw_ptr);
        }
        assert_true((uint64_t)a->raw_ptr + a->raw_size <= len);
    }
    assert_int_equal(pe.size_of_image, round_up(img_end, pe.sect_align));
    assert_int_equal(pe.size_of_code, st.size_of_code + code);
    assert_int_equal(pe.size_of_data, st.size_of_data + data);
    /* the file ends with the last section's data */
    assert_int_equal(len, pe.secs[pe.n_sections - 1].raw_ptr + pe.secs[pe.n_sections - 1].raw_size);
    field = md_get_le32(b + 0x3c) + 24 + 64;
    assert_int_equal(pe.checksum, pe_checksum(b, len, field));
}

/* Contents of section @name must be @want[0..n) */
static void check_contents(const uint8_t *b, size_t len, const char *name, const void *want,
                           size_t n)
{
    struct pe pe;
    const struct sec *s;

    pe_read(b, len, &pe);
    s = pe_find(&pe, name);
    assert_non_null(s);
    assert_int_equal(s->vsize, n);
    assert_memory_equal(b + s->raw_ptr, want, n);
}

/* Directory @dir has exactly @n entries besides . and .. (no temporary files left). */
static size_t count_entries(const char *d)
{
    DIR *dp = opendir(d);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(dp);
    while ((e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(dp);
    return n;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_opts(void **state)
{
    md_uki_opts o, d = MD_UKI_OPTS_INIT;
    (void)state;

    memset(&o, 0xff, sizeof(o));
    md_uki_opts_init(&o);
    assert_memory_equal(&o, &d, sizeof(o));
    assert_int_equal(o.version, MD_UKI_OPTS_VERSION);
    assert_null(o.stub);
    md_uki_opts_init(NULL);
    assert_int_equal(md_uki_write(NULL, "x", NULL), -EINVAL);
}

static void test_layout(void **state)
{
    static const char *const names[] = { ".osrel", ".cmdline", ".initrd", ".linux" };
    const char *initrds[] = { initrd1, initrd_empty, initrd2, NULL };
    const char *cmdline = "console=ttyS0 panic=-1";
    md_uki_opts o = MD_UKI_OPTS_INIT;
    uint8_t *b, *sb, *k, *i1, *i2, *os, *cat;
    size_t len, slen, klen, l1, l2, los;
    char out[300];
    struct pe pe;
    md_ctx *ctx;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    path_in(out, sizeof(out), "layout.efi");
    o.stub = stub;
    o.kernel = kernel;
    o.initrds = initrds;
    o.cmdline = cmdline;
    o.os_release = osrel;
    if (md_uki_write(ctx, out, &o) < 0)
        fail_msg("%s", md_ctx_errmsg(ctx));
    b = slurp(out, &len);
    sb = slurp(stub, &slen);
    check_layout(b, len, sb, slen, names, 4);

    k = slurp(kernel, &klen);
    i1 = slurp(initrd1, &l1);
    i2 = slurp(initrd2, &l2);
    os = slurp(osrel, &los);
    check_contents(b, len, ".linux", k, klen);
    check_contents(b, len, ".cmdline", cmdline, strlen(cmdline));  /* no NUL added */
    check_contents(b, len, ".osrel", os, los);
    /* several initrds: each padded to 4 bytes (the empty one adds nothing) */
    cat = calloc(1, 1004 + 3004);
    assert_non_null(cat);
    memcpy(cat, i1, l1);
    memcpy(cat + 1004, i2, l2);
    check_contents(b, len, ".initrd", cat, 1004 + 3004);
    /* SizeOfHeaders rounded up to FileAlignment, the rest of the stub kept */
    pe_read(b, len, &pe);
    assert_int_equal(pe.size_of_headers, 0x400);
    assert_int_equal(pe.secs[2].va, 0x3000); /* stub ends at 0x2124: next 0x1000 boundary */
    free(cat);
    free(b);

    /* one initrd: not padded (as ukify); text os-release; no cmdline */
    initrds[0] = initrd1;
    initrds[1] = NULL;
    o.cmdline = NULL;
    o.os_release = NULL;
    o.os_release_text = "ID=x\n";
    assert_int_equal(md_uki_write(ctx, out, &o), 0);
    b = slurp(out, &len);
    {
        static const char *const names2[] = { ".osrel", ".initrd", ".linux" };
        check_layout(b, len, sb, slen, names2, 3);
    }
    check_contents(b, len, ".initrd", i1, l1);
    check_contents(b, len, ".osrel", "ID=x\n", 5);
    free(b);

    /* kernel only; an empty command line adds no section */
    o.initrds = NULL;
    o.os_release_text = NULL;
    o.cmdline = "";
    assert_int_equal(md_uki_write(ctx, out, &o), 0);
    b = slurp(out, &len);
    {
        static const char *const names3[] = { ".linux" };
        check_layout(b, len, sb, slen, names3, 1);
    }
    free(b);
    free(sb);
    free(k);
    free(i1);
    free(i2);
    free(os);
    md_ctx_free(ctx);
}

/* Other stub shapes: equal alignments (as Debian's stub), a trailing symbol
 * table (dropped), a table with room for exactly the sections needed. */
static void test_shapes(void **state)
{
    static const char *const names[] = { ".cmdline", ".linux" };
    md_uki_opts o = MD_UKI_OPTS_INIT;
    struct stub_shape sh = default_shape;
    char sp[300], out[300];
    uint8_t *b, *sb;
    size_t len, slen;
    struct pe pe;
    md_ctx *ctx;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    path_in(sp, sizeof(sp), "shape.efi");
    path_in(out, sizeof(out), "shape-out.efi");
    o.stub = sp;
    o.kernel = kernel;
    o.cmdline = "quiet";

    sh.sect_align = 0x200;
    sh.symtab = 1;
    write_stub(sp, &sh);
    assert_int_equal(md_uki_write(ctx, out, &o), 0);
    b = slurp(out, &len);
    sb = slurp(sp, &slen);
    pe_read(b, len, &pe);
    assert_int_equal(pe.symtab, 0);
    assert_int_equal(pe.nsyms, 0);
    assert_null(memmem(b, len, "sym_one", 7));
    assert_int_equal(md_get_le16(b + 0x80 + 22) & 0x0008, 0x0008); /* LOCAL_SYMS_STRIPPED */
    /* the stub's data ended at 0x800: .cmdline follows there, its VA right after .data */
    assert_int_equal(pe.secs[2].raw_ptr, 0x800);
    assert_int_equal(pe.secs[2].va, round_up(0x1200 + 0x124, 0x200));
    check_layout(b, len, sb, slen, names, 2);
    free(b);
    free(sb);

    /* 13 sections: the table ends at 0x390, room for two more before 0x400 */
    sh = default_shape;
    sh.n_sections = 13;
    write_stub(sp, &sh);
    assert_int_equal(md_uki_write(ctx, out, &o), 0);
    b = slurp(out, &len);
    sb = slurp(sp, &slen);
    check_layout(b, len, sb, slen, names, 2);
    free(b);
    free(sb);
    md_ctx_free(ctx);
}

static void test_reproducible(void **state)
{
    const char *initrds[] = { initrd1, initrd2, NULL };
    md_uki_opts o = MD_UKI_OPTS_INIT;
    char out1[300], out2[300], out3[300];
    uint8_t *a, *b, *c;
    size_t la, lb, lc;
    char *old_tz;
    md_ctx *ctx;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    path_in(out1, sizeof(out1), "r1.efi");
    path_in(out2, sizeof(out2), "r2.efi");
    path_in(out3, sizeof(out3), "r3.efi");
    o.stub = stub;
    o.kernel = kernel;
    o.initrds = initrds;
    o.cmdline = "console=ttyS0";
    o.os_release = osrel;
    assert_int_equal(md_uki_write(ctx, out1, &o), 0);
    sleep(1); /* a timestamp taken from the clock would differ now */
    assert_int_equal(md_uki_write(ctx, out2, &o), 0);
    old_tz = getenv("TZ") ? md_strdup(getenv("TZ")) : NULL;
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    assert_int_equal(md_ctx_set_epoch(ctx, 1234567890), 0);
    assert_int_equal(md_uki_write(ctx, out3, &o), 0);
    if (old_tz)
        setenv("TZ", old_tz, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old_tz);
    a = slurp(out1, &la);
    b = slurp(out2, &lb);
    c = slurp(out3, &lc);
    assert_int_equal(la, lb);
    assert_int_equal(la, lc);
    assert_memory_equal(a, b, la);
    assert_memory_equal(a, c, la);
    free(a);
    free(b);
    free(c);
    unlink(out1);
    unlink(out2);
    unlink(out3);
    md_ctx_free(ctx);
}

/* Each bad input: the error, a message naming the problem, and no file. */
static void expect_error(md_ctx *ctx, const char *out, const md_uki_opts *o, int err,
                         const char *msg)
{
    char d[300], *slash;
    size_t before;

    snprintf(d, sizeof(d), "%s", out);
    slash = strrchr(d, '/');
    *slash = '\0';
    before = count_entries(d);
    assert_int_equal(md_uki_write(ctx, out, o), err);
    if (!strstr(md_ctx_errmsg(ctx), msg))
        fail_msg("message \"%s\" lacks \"%s\"", md_ctx_errmsg(ctx), msg);
    assert_int_equal(count_entries(d), before); /* no output, no temporary file */
}

/* A stub of the default shape but for one field set to @value. */
static void bad_stub(md_ctx *ctx, const char *out, md_uki_opts *o, const char *sp,
                     struct stub_shape *sh, const char *field, uint32_t value, int err,
                     const char *msg)
{
    *sh = default_shape;
    if (!strcmp(field, "machine"))
        sh->machine = (uint16_t)value;
    else if (!strcmp(field, "magic"))
        sh->magic = (uint16_t)value;
    else if (!strcmp(field, "subsystem"))
        sh->subsystem = (uint16_t)value;
    else if (!strcmp(field, "signed"))
        sh->signed_ = (int)value;
    else if (!strcmp(field, "sect_align"))
        sh->sect_align = value;
    else if (!strcmp(field, "n_sections"))
        sh->n_sections = (uint16_t)value;
    else
        fail_msg("unknown field %s", field);
    write_stub(sp, sh);
    o->stub = sp;
    expect_error(ctx, out, o, err, msg);
}

static void test_errors(void **state)
{
    const char *initrds[] = { initrd1, NULL, NULL };
    md_uki_opts o = MD_UKI_OPTS_INIT, good = MD_UKI_OPTS_INIT;
    struct stub_shape sh = default_shape;
    char errdir[200], out[300], sp[300], missing[300], uki[300], existing[300];
    uint8_t *b;
    size_t len;
    md_ctx *ctx;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    path_in(errdir, sizeof(errdir), "errors");
    assert_int_equal(mkdir(errdir, 0755), 0);
    snprintf(out, sizeof(out), "%s/out.efi", errdir);
    snprintf(sp, sizeof(sp), "%s/stub-variant", dir);
    path_in(missing, sizeof(missing), "missing");
    good.stub = stub;
    good.kernel = kernel;
    good.initrds = initrds;

    /* options */
    o = good;
    o.version = 0;
    expect_error(ctx, out, &o, -EINVAL, "options version");
    o = good;
    o.flags = 1;
    expect_error(ctx, out, &o, -EINVAL, "unknown flags");
    o = good;
    o.kernel = NULL;
    expect_error(ctx, out, &o, -EINVAL, "a kernel is required");
    o = good;
    o.os_release = osrel;
    o.os_release_text = "ID=x\n";
    expect_error(ctx, out, &o, -EINVAL, "not both");
    assert_int_equal(md_uki_write(ctx, NULL, &good), -EINVAL);
    assert_int_equal(md_uki_write(ctx, "", &good), -EINVAL);

    /* files that are not what they should be */
    {
        const struct {
            const char **field, *value;
            int err;
            const char *msg;
        } cases[] = {
            { &o.stub, missing, -ENOENT, "install systemd-boot-efi" },
            { &o.stub, textfile, -EINVAL, "not a PE/COFF image" },
            { &o.stub, dir, -EISDIR, "not a regular file" },
            { &o.kernel, missing, -ENOENT, "kernel" },
            { &o.kernel, textfile, -EINVAL, "not an x86 Linux bzImage" },
            { &o.kernel, kernel_nostub, -EINVAL, "without the EFI stub" },
            { &o.kernel, dir, -EISDIR, "kernel" },
            { &o.os_release, missing, -ENOENT, "os-release" },
        };
        size_t i;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            o = good;
            *cases[i].field = cases[i].value;
            expect_error(ctx, out, &o, cases[i].err, cases[i].msg);
        }
    }

    /* the stub's headers */
    o = good;
    bad_stub(ctx, out, &o, sp, &sh, "machine", 0xaa64, -EINVAL, "machine 0xaa64 is not x86-64");
    bad_stub(ctx, out, &o, sp, &sh, "magic", 0x10b, -EINVAL, "is not PE32+");
    bad_stub(ctx, out, &o, sp, &sh, "subsystem", 3, -EINVAL, "not an EFI application");
    bad_stub(ctx, out, &o, sp, &sh, "signed", 1, -EINVAL, "signed");
    bad_stub(ctx, out, &o, sp, &sh, "sect_align", 0x300, -EINVAL, "not powers of 2");
    /* 14 sections end the table at 0x3b8: no room for two more before 0x400 */
    bad_stub(ctx, out, &o, sp, &sh, "n_sections", 14, -ENOSPC, "no room for 2 more section headers");
    /* a UKI is not a stub */
    path_in(uki, sizeof(uki), "already.efi");
    assert_int_equal(md_uki_write(ctx, uki, &good), 0);
    o.stub = uki;
    expect_error(ctx, out, &o, -EINVAL, "already has a .initrd section");
    sh = default_shape;
    sh.extra_name = ".linux";
    write_stub(sp, &sh);
    o.stub = sp;
    expect_error(ctx, out, &o, -EINVAL, "already has a .linux section");

    /* a kernel for another machine */
    o = good;
    write_kernel(sp, 4096, 1, 0xaa64);
    o.kernel = sp;
    expect_error(ctx, out, &o, -EINVAL, "PE machine 0xaa64");

    /* the second of two initrds */
    o = good;
    initrds[1] = missing;
    expect_error(ctx, out, &o, -ENOENT, "initrd");
    initrds[1] = dir;
    expect_error(ctx, out, &o, -EISDIR, "initrd");
    initrds[1] = NULL;

    /* the output: a directory, a device, a missing directory */
    expect_error(ctx, errdir, &good, -EISDIR, "is a directory");
    assert_int_equal(md_uki_write(ctx, "/dev/null", &good), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "not a regular file"));
    {
        struct stat st;
        assert_int_equal(stat("/dev/null", &st), 0);
        assert_true(S_ISCHR(st.st_mode));
    }
    snprintf(existing, sizeof(existing), "%s/nodir/out.efi", errdir);
    assert_int_equal(md_uki_write(ctx, existing, &good), -ENOENT);

    /* an existing file survives a failure untouched */
    snprintf(existing, sizeof(existing), "%s/keep.efi", errdir);
    write_file(existing, "old contents", 12);
    o = good;
    o.kernel = kernel_nostub;
    expect_error(ctx, existing, &o, -EINVAL, "without the EFI stub");
    b = slurp(existing, &len);
    assert_int_equal(len, 12);
    assert_memory_equal(b, "old contents", 12);
    free(b);
    /* ... and is replaced on success */
    assert_int_equal(md_uki_write(ctx, existing, &good), 0);
    assert_int_equal(count_entries(errdir), 1);
    md_ctx_free(ctx);
}

/* systemd's stub, when installed: the same rules hold for the real thing. */
static void test_real_stub(void **state)
{
    static const char *const names[] = { ".osrel", ".cmdline", ".initrd", ".linux" };
    const char *initrds[] = { initrd1, initrd2, NULL };
    md_uki_opts o = MD_UKI_OPTS_INIT;
    uint8_t *b, *sb;
    size_t len, slen;
    char out[300];
    struct pe pe;
    md_ctx *ctx;
    (void)state;

    md_test_need_file(MD_UKI_DEFAULT_STUB, R_OK, "systemd-boot-efi");
    assert_int_equal(md_ctx_new(&ctx), 0);
    path_in(out, sizeof(out), "real.efi");
    o.kernel = kernel; /* stub NULL: the default */
    o.initrds = initrds;
    o.cmdline = "console=ttyS0 panic=-1";
    o.os_release = osrel;
    if (md_uki_write(ctx, out, &o) < 0)
        fail_msg("%s", md_ctx_errmsg(ctx));
    b = slurp(out, &len);
    sb = slurp(MD_UKI_DEFAULT_STUB, &slen);
    pe_read(sb, slen, &pe);
    if (pe.symtab) {
        /* Debian's v252 stub carries a symbol table at its end: check the
         * layout against the stub without it */
        uint32_t off = md_get_le32(sb + 0x3c);
        assert_true(pe.symtab < slen);
        slen = pe.symtab;
        md_put_le32(sb + off + 12, 0);
        md_put_le32(sb + off + 16, 0);
    }
    check_layout(b, len, sb, slen, names, 4);
    pe_read(b, len, &pe);
    assert_int_equal(pe.symtab, 0);
    free(b);
    free(sb);
    md_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_real_stub),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
