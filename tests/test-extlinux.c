/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the extlinux module: blob extraction, patching, ADV, config
 * rendering and parsing, and install errors that must leave the image as it
 * was.  Filesystems are made with the real mke2fs and read back with
 * libext2fs. */
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

#include <ext2fs/ext2fs.h>

#include "md-extlinux-internal.h"
#include "md-internal.h"
#include "test-util.h"

#define EXTLINUX_BIN "/usr/bin/extlinux"

/* The fixture's mke2fs and the real installer's blobs: skip without them
 * (fail in CI, where scripts/setup installs both). */
static void need_mkfs_extlinux(void)
{
    md_test_need_tool("mkfs.ext4", "e2fsprogs");
    md_test_need_file(EXTLINUX_BIN, R_OK, "extlinux");
}

/* ---- a synthetic installer binary --------------------------------------- */

#define FAKE_LDLEN 4096
#define FAKE_HEXDATE 0x12345678u
#define FAKE_EPA 0x400
#define FAKE_ADVPTR 0x500
#define FAKE_DIR 0x600
#define FAKE_DIRLEN 64
#define FAKE_SECPTR 0x700
#define FAKE_SECPTRCNT 8

/* Layout as bin2c leaves it: [junk][vbr][elf c32][junk][len,date,...][ldlinux] */
static uint8_t *make_fake(size_t *n, uint32_t vbr_instance, int two_ldlinux)
{
    size_t size = 16384 + FAKE_LDLEN * 2, off;
    uint8_t *b = calloc(1, size), *v, *e, *l, *pa, *epa;
    uint32_t instance = LDLINUX_MAGIC ^ FAKE_HEXDATE;

    /* boot sector at 0x200 */
    v = b + 0x200;
    v[0] = 0xeb; v[1] = 0x58; v[2] = 0x90;
    memcpy(v + 3, "SYSLINUX", 8);
    md_put_le32(v + 0x12f, vbr_instance);
    md_put_le32(v + 0x1f8, LDLINUX_MAGIC);
    v[0x1fe] = 0x55; v[0x1ff] = 0xaa;
    /* a 300-byte ELF32 after it: section headers at 200, 2 x 50 */
    e = v + 512;
    memcpy(e, "\177ELF\1\1\1", 7);
    md_put_le32(e + 32, 200);
    md_put_le16(e + 46, 50);
    md_put_le16(e + 48, 2);
    /* bin2c lengths: mtime,len pairs */
    off = 0x1000;
    md_put_le32(b + off, FAKE_HEXDATE); md_put_le32(b + off + 4, 512);
    md_put_le32(b + off + 8, FAKE_HEXDATE); md_put_le32(b + off + 12, 300);
    md_put_le32(b + off + 16, FAKE_HEXDATE); md_put_le32(b + off + 20, FAKE_LDLEN);
    /* ldlinux at 0x2000 */
    l = b + 0x2000;
    memcpy(l, "\r\nSYSLINUX 9.99 \0\r\n\x1a", 20);
    pa = l + 0x18;
    md_put_le32(pa, LDLINUX_MAGIC);
    md_put_le32(pa + 4, instance);
    md_put_le16(pa + 20, 127);
    md_put_le16(pa + 22, FAKE_EPA);
    epa = l + FAKE_EPA;
    md_put_le16(epa + 0, FAKE_ADVPTR);
    md_put_le16(epa + 2, FAKE_DIR);
    md_put_le16(epa + 4, FAKE_DIRLEN);
    md_put_le16(epa + 6, FAKE_DIR + FAKE_DIRLEN);
    md_put_le16(epa + 8, 16);
    md_put_le16(epa + 10, FAKE_SECPTR);
    md_put_le16(epa + 12, FAKE_SECPTRCNT);
    md_put_le16(epa + 14, 0x11a);
    md_put_le16(epa + 16, 0x120);
    md_put_le16(epa + 18, 0x1ca);
    for (off = 0x800; off < FAKE_LDLEN; off++)
        l[off] = (uint8_t)(off * 7);
    if (two_ldlinux)
        memcpy(b + 0x2000 + FAKE_LDLEN, l, 64);
    *n = size;
    return b;
}

static void test_blobs_synthetic(void **state)
{
    struct md_sl_blobs b;
    md_ctx *ctx;
    uint8_t *buf;
    size_t n;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    buf = make_fake(&n, LDLINUX_MAGIC ^ FAKE_HEXDATE, 0);
    assert_int_equal(md_extlinux_blobs_parse(ctx, buf, n, "fake", &b), 0);
    assert_int_equal(b.ldlen, FAKE_LDLEN);
    assert_int_equal(b.c32len, 300);
    assert_memory_equal(b.c32, "\177ELF", 4);
    assert_int_equal(b.vbr[0], 0xeb);
    assert_int_equal(md_get_le16(b.vbr + 0x1fe), 0xaa55);
    assert_int_equal(b.pa, 0x18);
    assert_int_equal(b.epa[5], FAKE_SECPTR);
    assert_int_equal(b.instance, LDLINUX_MAGIC ^ FAKE_HEXDATE);
    md_extlinux_blobs_free(&b);
    free(buf);

    /* boot sector of another build: instance check */
    buf = make_fake(&n, 0xdeadbeef, 0);
    assert_int_equal(md_extlinux_blobs_parse(ctx, buf, n, "fake", &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "different syslinux builds"));
    free(buf);

    /* two ldlinux images: ambiguous */
    buf = make_fake(&n, LDLINUX_MAGIC ^ FAKE_HEXDATE, 1);
    assert_int_equal(md_extlinux_blobs_parse(ctx, buf, n, "fake", &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "more than one ldlinux.sys"));
    free(buf);

    /* not an installer at all */
    buf = calloc(1, 8192);
    assert_int_equal(md_extlinux_blobs_parse(ctx, buf, 8192, "/bin/true", &b), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "/bin/true: no embedded syslinux"));
    free(buf);

    /* missing file names the Debian package */
    assert_int_equal(md_extlinux_blobs_load(ctx, "/nonexistent/extlinux", "/usr/lib/syslinux", &b),
                     -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "/nonexistent/extlinux"));
    md_ctx_free(ctx);
}

static void test_blobs_real(void **state)
{
    struct md_sl_blobs b;
    md_ctx *ctx;
    char *c32 = NULL;
    size_t c32len, i;
    bool found = false;
    (void)state;

    md_test_need_file(EXTLINUX_BIN, R_OK, "extlinux");
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_extlinux_blobs_load(ctx, EXTLINUX_BIN, "/usr/lib/syslinux", &b), 0);
    assert_int_equal(b.ldlen % 512, 0);
    assert_true(b.ldlen > 16384 && b.ldlen < 256 * 1024);
    assert_memory_equal(b.ldlinux, "\r\nSYSLINUX ", 11);
    assert_int_equal(md_get_le32(b.ldlinux + b.pa), LDLINUX_MAGIC);
    /* unpatched: counts and checksum are zero */
    assert_int_equal(md_get_le16(b.ldlinux + b.pa + 8), 0);
    assert_int_equal(md_get_le32(b.ldlinux + b.pa + 16), 0);
    assert_int_equal(md_get_le16(b.vbr + 0x1fe), 0xaa55);
    assert_int_equal(md_get_le32(b.vbr + 0x1f8), LDLINUX_MAGIC);
    assert_memory_equal(b.vbr + 3, "SYSLINUX", 8);
    for (i = 0; i + 4 <= 512; i++)
        if (md_get_le32(b.vbr + i) == b.instance)
            found = true;
    assert_true(found);
    /* placeholders of the first-sector pointer */
    assert_int_equal(md_get_le32(b.vbr + b.epa[7]), 0xdeadbeef);
    assert_int_equal(md_get_le32(b.vbr + b.epa[8]), 0xfeedface);
    assert_memory_equal(b.c32, "\177ELF", 4);
    /* the embedded ldlinux.c32 has the same code as the packaged one; at
     * least its ELF header and first 4 KiB agree */
    if (md_read_file(ctx, "/usr/lib/syslinux/modules/bios/ldlinux.c32", &c32, &c32len) == 0) {
        assert_true(c32len > 4096);
        assert_memory_equal(b.c32 + 64, c32 + 64, 4096 - 64);
        free(c32);
    }
    md_extlinux_blobs_free(&b);
    md_extlinux_blobs_free(NULL);
    md_ctx_free(ctx);
}

static uint32_t dword_sum(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    size_t i;
    for (i = 0; i < len; i += 4)
        s += md_get_le32(p + i);
    return s;
}

static void check_patched(const struct md_sl_blobs *b, const uint8_t *vbr, const uint8_t *ldl,
                          const uint64_t *sect, size_t nsect, const char *dir)
{
    const uint8_t *pa = ldl + b->pa, *ex = ldl + b->epa[5];
    size_t covered = 0, k;

    assert_int_equal(dword_sum(ldl, b->ldlen), LDLINUX_MAGIC);
    assert_int_equal(md_get_le16(pa + 8), nsect - 2);
    assert_int_equal(md_get_le16(pa + 10), 2);
    assert_int_equal(md_get_le32(pa + 12), b->ldlen / 4);
    assert_int_equal(md_get_le32(vbr + b->epa[7]), (uint32_t)sect[0]);
    assert_int_equal(md_get_le32(vbr + b->epa[8]), (uint32_t)(sect[0] >> 32));
    assert_int_equal(md_get_le64(ldl + b->epa[0]), sect[nsect - 2]);
    assert_int_equal(md_get_le64(ldl + b->epa[0] + 8), sect[nsect - 1]);
    assert_string_equal((const char *)ldl + b->epa[1], dir);
    /* the extents cover sectors 1 .. nsect-3 in order */
    for (k = 0; k < b->epa[6]; k++) {
        uint64_t lba = md_get_le64(ex + 10 * k);
        uint16_t len = md_get_le16(ex + 10 * k + 8), j;
        if (!len)
            break;
        assert_true(len < 128);
        for (j = 0; j < len; j++)
            assert_int_equal(lba + j, sect[1 + covered + j]);
        covered += len;
    }
    assert_int_equal(covered, nsect - 3);
}

static void test_patch(void **state)
{
    struct md_sl_blobs b;
    md_ctx *ctx;
    uint8_t *buf, vbr[512], *ldl;
    uint64_t sect[64];
    size_t n, nsect = FAKE_LDLEN / 512 + 2, i;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    buf = make_fake(&n, LDLINUX_MAGIC ^ FAKE_HEXDATE, 0);
    assert_int_equal(md_extlinux_blobs_parse(ctx, buf, n, "fake", &b), 0);
    ldl = malloc(b.ldlen);

    /* contiguous, high LBA (64-bit pointers) */
    for (i = 0; i < nsect; i++)
        sect[i] = 0x100000000ULL + 1000 + i;
    assert_int_equal(md_extlinux_patch(ctx, &b, sect, nsect, "/boot/syslinux", 0, 2048, 131072,
                                       vbr, ldl), 1);
    check_patched(&b, vbr, ldl, sect, nsect, "/boot/syslinux");
    assert_int_equal(md_get_le16(vbr + 0x0b), 512);
    assert_int_equal(md_get_le16(vbr + 0x13), 0);          /* >= 65536 sectors */
    assert_int_equal(md_get_le32(vbr + 0x20), 131072);
    assert_int_equal(md_get_le32(vbr + 0x1c), 2048);       /* hidden = partition start */
    assert_int_equal(md_get_le16(vbr + 0x18), 32);
    assert_int_equal(md_get_le16(vbr + 0x1a), 64);
    assert_int_equal(md_get_le16(ldl + b.pa + 20), 127);   /* maxtransfer untouched */
    assert_int_equal(md_get_le16(vbr + 0x1ca), md_get_le16(b.vbr + 0x1ca));

    /* fragmented: every other sector, plus raid and stupid modes */
    for (i = 0; i < nsect; i++)
        sect[i] = 10 + 2 * i;
    assert_int_equal(md_extlinux_patch(ctx, &b, sect, nsect, "/", MD_EXTLINUX_RAID | MD_EXTLINUX_STUPID,
                                       0, 1000, vbr, ldl), 7);
    check_patched(&b, vbr, ldl, sect, nsect, "/");
    assert_int_equal(md_get_le16(vbr + 0x13), 1000);
    assert_int_equal(md_get_le16(vbr + 0x1ca), 0x18cd);
    assert_int_equal(md_get_le16(ldl + b.pa + 20), 1);

    /* too fragmented for the extent table (8 entries): 3 runs of 1 ... */
    for (i = 0; i < nsect; i++)
        sect[i] = 10 + 2 * i;
    {
        struct md_sl_blobs small = b;
        small.epa[6] = 3;
        assert_int_equal(md_extlinux_patch(ctx, &small, sect, nsect, "/", 0, 0, 1000, vbr, ldl),
                         -EINVAL);
        assert_non_null(strstr(md_ctx_errmsg(ctx), "pieces"));
    }
    /* too few sectors, too long a directory */
    assert_int_equal(md_extlinux_patch(ctx, &b, sect, nsect - 1, "/", 0, 0, 1000, vbr, ldl), -EINVAL);
    {
        char longdir[100];
        memset(longdir, 'a', sizeof(longdir) - 1);
        longdir[0] = '/';
        longdir[sizeof(longdir) - 1] = '\0';
        assert_int_equal(md_extlinux_patch(ctx, &b, sect, nsect, longdir, 0, 0, 1000, vbr, ldl),
                         -ENAMETOOLONG);
    }
    free(ldl);
    md_extlinux_blobs_free(&b);
    free(buf);
    md_ctx_free(ctx);
}

static void test_adv(void **state)
{
    uint8_t adv[1024];
    (void)state;
    md_extlinux_adv_init(adv);
    assert_int_equal(md_get_le32(adv), 0x5a2d2fa5);
    assert_int_equal(md_get_le32(adv + 508), 0xdd28bf64);
    assert_int_equal(md_extlinux_adv_valid(adv), 0);
    adv[8] = 1; /* a record without a checksum update: copy 0 invalid */
    assert_int_equal(md_extlinux_adv_valid(adv), 1);
    adv[512 + 8] = 1;
    assert_int_equal(md_extlinux_adv_valid(adv), -1);
}

static void test_config(void **state)
{
    md_extlinux_config *cfg;
    md_ctx *ctx;
    const char *text;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_extlinux_config_new(ctx, &cfg), 0);
    assert_int_equal(md_extlinux_config_render(cfg, &text), -EINVAL);
    assert_int_equal(md_extlinux_config_set_serial(cfg, 0, 115200), 0);
    assert_int_equal(md_extlinux_config_set_serial(cfg, 4, 115200), -EINVAL);
    assert_int_equal(md_extlinux_config_set_serial(cfg, 0, 1000), -EINVAL);
    assert_int_equal(md_extlinux_config_set_timeout(cfg, 50), 0);
    assert_int_equal(md_extlinux_config_set_timeout(cfg, 36000), -EINVAL);
    assert_int_equal(md_extlinux_config_add_entry(cfg, "linux", "/boot/vmlinuz",
                                                  "/boot/a.gz,/boot/b.gz", "console=ttyS0 quiet"), 0);
    assert_int_equal(md_extlinux_config_add_entry(cfg, "rescue", "/boot/vmlinuz", NULL, NULL), 0);
    assert_int_equal(md_extlinux_config_add_entry(cfg, "linux", "/boot/x", NULL, NULL), -EINVAL);
    assert_int_equal(md_extlinux_config_add_entry(cfg, "two words", "/boot/x", NULL, NULL), -EINVAL);
    assert_int_equal(md_extlinux_config_add_entry(cfg, "x", "/boot/x", "a b", NULL), -EINVAL);
    assert_int_equal(md_extlinux_config_add_entry(cfg, "y", "/boot/x", NULL, "a\nb"), -EINVAL);
    assert_int_equal(md_extlinux_config_add_entry(cfg, "z", NULL, NULL, NULL), -EINVAL);
    assert_int_equal(md_extlinux_config_set_default(cfg, "nope"), 0);
    assert_int_equal(md_extlinux_config_render(cfg, &text), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "'nope'"));
    assert_int_equal(md_extlinux_config_set_default(cfg, "rescue"), 0);
    assert_int_equal(md_extlinux_config_set_prompt(cfg, 1), 0);
    assert_int_equal(md_extlinux_config_render(cfg, &text), 0);
    assert_string_equal(text,
                        "SERIAL 0 115200\n"
                        "DEFAULT rescue\n"
                        "PROMPT 1\n"
                        "TIMEOUT 50\n"
                        "\n"
                        "LABEL linux\n"
                        "  LINUX /boot/vmlinuz\n"
                        "  INITRD /boot/a.gz,/boot/b.gz\n"
                        "  APPEND console=ttyS0 quiet\n"
                        "\n"
                        "LABEL rescue\n"
                        "  LINUX /boot/vmlinuz\n");
    md_extlinux_config_free(cfg);
    md_extlinux_config_free(NULL);
    md_ctx_free(ctx);
}

static void test_config_refs(void **state)
{
    static const char text[] =
        "# comment KERNEL /not/this\n"
        "default linux\n"
        "label linux\n"
        "  kernel /boot/vmlinuz\n"
        "  initrd /boot/a.gz,/boot/b.gz\n"
        "label menu\n"
        "  KERNEL menu.c32\n"
        "LABEL other\n"
        "\tLINUX vmlinuz-rel\n"
        "\tAPPEND root=/dev/sda1 initrd=/boot/c.gz,d.gz quiet\n";
    struct md_sl_ref *refs;
    md_ctx *ctx;
    size_t n;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_extlinux_config_refs(ctx, text, &refs, &n), 0);
    assert_int_equal(n, 6);
    assert_string_equal(refs[0].path, "/boot/vmlinuz");
    assert_string_equal(refs[0].what, "kernel");
    assert_int_equal(refs[0].line, 4);
    assert_string_equal(refs[1].path, "/boot/a.gz");
    assert_string_equal(refs[2].path, "/boot/b.gz");
    assert_string_equal(refs[2].what, "initrd");
    assert_string_equal(refs[3].path, "vmlinuz-rel");
    assert_int_equal(refs[3].line, 9);
    assert_string_equal(refs[4].path, "/boot/c.gz");
    assert_string_equal(refs[5].path, "d.gz");
    assert_int_equal(refs[5].line, 10);
    md_extlinux_refs_free(refs, n);
    md_ctx_free(ctx);
}

/* ---- install into real images ------------------------------------------- */

struct fixture {
    char dir[64];
    char img[128];
};

/* A 16 MiB ext4 image with /boot/vmlinuz and /boot/initrd.gz made by mke2fs -d. */
static int setup_img(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/md-test-extlinux.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->img, sizeof(f->img), "%s/a.img", f->dir);
    *state = f;
    if (!md_test_have_tool("mkfs.ext4") || access(EXTLINUX_BIN, R_OK) < 0)
        return 0; /* no image: the test itself skips (fails in CI) */
    /* kernel with zero blocks, which mke2fs -d stores as holes */
    assert_int_equal(md_test_run("mkdir -p %s/root/boot && head -c 200000 /dev/urandom > %s/root/boot/vmlinuz"
                         " && head -c 8192 /dev/zero >> %s/root/boot/vmlinuz"
                         " && head -c 3000 /dev/urandom >> %s/root/boot/vmlinuz"
                         " && echo initrd > %s/root/boot/initrd.gz"
                         " && mkfs.ext4 -q -F -d %s/root %s 16M >/dev/null 2>&1",
                         f->dir, f->dir, f->dir, f->dir, f->dir, f->dir, f->img), 0);
    return 0;
}

static int teardown_img(void **state)
{
    struct fixture *f = *state;
    md_test_run("rm -rf %s", f->dir);
    free(f);
    return 0;
}

static char *file_digest(const char *path)
{
    char cmd[300], *out = calloc(1, 100);
    FILE *p;
    snprintf(cmd, sizeof(cmd), "sha256sum < %s", path);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, 100, p));
    pclose(p);
    return out;
}

static int install(md_ctx *ctx, const char *img, uint32_t partno, const md_extlinux_opts *o)
{
    md_image *im;
    int r = md_image_open(ctx, img, 0, &im);
    if (r < 0)
        return r;
    r = md_extlinux_install(im, partno, o);
    md_image_free(im);
    return r;
}

/* Each call must fail with @err, a message containing @msg, image unchanged. */
static void expect_fail(md_ctx *ctx, const char *img, uint32_t partno, const md_extlinux_opts *o,
                        int err, const char *msg)
{
    char *before = file_digest(img), *after;
    int r = install(ctx, img, partno, o);
    if (r != err || !strstr(md_ctx_errmsg(ctx), msg))
        fail_msg("expected %d '%s', got %d '%s'", err, msg, r, md_ctx_errmsg(ctx));
    after = file_digest(img);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static const char good_conf[] = "SERIAL 0 115200\nDEFAULT l\nLABEL l\n LINUX /boot/vmlinuz\n"
                                " INITRD /boot/initrd.gz\n";

static void test_install_errors(void **state)
{
    struct fixture *f = *state;
    md_extlinux_opts o = MD_EXTLINUX_OPTS_INIT;
    const char *mods[] = { "nosuch.c32", NULL };
    const char *badmods[] = { "../x.c32", NULL };
    char zero[160];
    md_ctx *ctx;

    need_mkfs_extlinux();
    assert_int_equal(md_ctx_new(&ctx), 0);
    o.config_text = "DEFAULT l\nLABEL l\n  KERNEL /boot/missing\n";
    expect_fail(ctx, f->img, 0, &o, -ENOENT, "line 3: kernel '/boot/missing' not found");
    o.config_text = "LABEL l\n  KERNEL /boot/vmlinuz\n  APPEND initrd=/boot/initrd.gz,/boot/x.gz\n";
    expect_fail(ctx, f->img, 0, &o, -ENOENT, "initrd '/boot/x.gz' not found");
    o.config_text = good_conf;
    o.modules = mods;
    expect_fail(ctx, f->img, 0, &o, -ENOENT, "nosuch.c32: not found (Debian package syslinux-common");
    o.modules = badmods;
    expect_fail(ctx, f->img, 0, &o, -EINVAL, "module '../x.c32'");
    o.modules = NULL;
    o.extlinux_bin = "/bin/sh";
    expect_fail(ctx, f->img, 0, &o, -ENOENT, "/bin/sh: no embedded syslinux");
    o.extlinux_bin = NULL;
    o.syslinux_dir = "/nonexistent";
    o.modules = (const char *[]){ "menu.c32", NULL };
    expect_fail(ctx, f->img, 0, &o, -ENOENT, "/nonexistent/modules/bios/menu.c32: not found");
    o.syslinux_dir = NULL;
    o.modules = NULL;
    o.dir = "/boot/vmlinuz/x";
    expect_fail(ctx, f->img, 0, &o, -ENOTDIR, "'/boot/vmlinuz' exists and is not a directory");
    o.dir = "boot";
    expect_fail(ctx, f->img, 0, &o, -EINVAL, "must be an absolute path");
    o.dir = NULL;
    o.version = 99;
    expect_fail(ctx, f->img, 0, &o, -EINVAL, "unsupported options version");
    o.version = MD_EXTLINUX_OPTS_VERSION;
    /* no partition table: partition 1 does not exist */
    assert_true(install(ctx, f->img, 1, &o) < 0);

    /* not an ext filesystem */
    snprintf(zero, sizeof(zero), "%s/zero.img", f->dir);
    assert_int_equal(md_test_run("truncate -s 8M %s", zero), 0);
    expect_fail(ctx, zero, 0, &o, -EINVAL, "no ext2/3/4 filesystem");
    /* inline_data */
    assert_int_equal(md_test_run("mkfs.ext4 -q -F -O inline_data %s 8M >/dev/null 2>&1", zero), 0);
    expect_fail(ctx, zero, 0, NULL, -ENOTSUP, "inline_data");
    /* no room for ldlinux.sys in one run: a 2 MiB ext2 filled up */
    assert_int_equal(md_test_run("rm -f %s && mkdir -p %s/full && head -c 1990000 /dev/urandom > %s/full/big"
                         " && mkfs.ext2 -q -F -N 64 -m 0 -d %s/full %s 2M >/dev/null 2>&1",
                         zero, f->dir, f->dir, f->dir, zero), 0);
    expect_fail(ctx, zero, 0, NULL, -ENOSPC, "ldlinux.sys");
    md_ctx_free(ctx);
}

/* Read a file of the filesystem in @img. */
static void read_back(const char *img, const char *path, uint8_t **data, size_t *size,
                      struct ext2_inode *inode)
{
    ext2_filsys fs;
    ext2_ino_t ino;
    ext2_file_t file;
    unsigned int got;

    assert_int_equal(ext2fs_open(img, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs), 0);
    assert_int_equal(ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino), 0);
    assert_int_equal(ext2fs_read_inode(fs, ino, inode), 0);
    *size = EXT2_I_SIZE(inode);
    *data = malloc(*size + 1);
    assert_int_equal(ext2fs_file_open(fs, ino, 0, &file), 0);
    assert_int_equal(ext2fs_file_read(file, *data, (unsigned int)*size, &got), 0);
    assert_int_equal(got, *size);
    ext2fs_file_close(file);
    ext2fs_close_free(&fs);
}

/* @a and @b (contents of one whole-image filesystem) differ at most in the
 * primary superblock's lifetime write counter, which libext2fs bumps on
 * every read-write close, and in the superblock checksum that covers it. */
static void assert_same_but_write_counter(const char *a, size_t alen, const char *b, size_t blen)
{
    static const struct { size_t off, len; } skip[] = {
        { 1024 + offsetof(struct ext2_super_block, s_kbytes_written), 8 },
        { 1024 + offsetof(struct ext2_super_block, s_checksum), 4 },
    };
    size_t i, k;

    assert_int_equal(alen, blen);
    for (i = 0; i < alen; i++) {
        if (a[i] == b[i])
            continue;
        for (k = 0; k < sizeof(skip) / sizeof(skip[0]); k++)
            if (i >= skip[k].off && i < skip[k].off + skip[k].len)
                break;
        if (k == sizeof(skip) / sizeof(skip[0]))
            fail_msg("the images differ at byte %zu (0x%zx), outside the write counter", i, i);
    }
}

static void test_install_ok(void **state)
{
    struct fixture *f = *state;
    md_extlinux_opts o = MD_EXTLINUX_OPTS_INIT;
    const char *mods[] = { "menu.c32", "libutil.c32", NULL };
    struct md_sl_blobs b;
    struct ext2_inode inode;
    uint8_t *data, vbr[512];
    size_t size;
    md_ctx *ctx;
    int fd;

    need_mkfs_extlinux();
    if (md_test_want_file("/usr/lib/syslinux/modules/bios/menu.c32", R_OK, "syslinux-common"))
        o.modules = mods;
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_set_epoch(ctx, 1700000000), 0);
    o.config_text = good_conf;
    assert_int_equal(install(ctx, f->img, 0, &o), 0);
    assert_int_equal(md_test_run("e2fsck -fn %s >/dev/null 2>&1", f->img), 0);

    assert_int_equal(md_extlinux_blobs_load(ctx, EXTLINUX_BIN, "/usr/lib/syslinux", &b), 0);
    read_back(f->img, "/boot/syslinux/ldlinux.sys", &data, &size, &inode);
    assert_int_equal(size, b.ldlen + 1024);
    assert_int_equal(inode.i_mode, 0100444);
    assert_true(inode.i_flags & EXT2_IMMUTABLE_FL);
    assert_int_equal(inode.i_mtime, 1700000000);
    assert_int_equal(dword_sum(data, b.ldlen), LDLINUX_MAGIC);
    assert_int_equal(md_extlinux_adv_valid(data + b.ldlen), 0);
    assert_string_equal((char *)data + b.epa[1], "/boot/syslinux");
    /* the boot sector points at the file's first sector */
    fd = open(f->img, O_RDONLY);
    assert_int_equal(md_pread_full(fd, vbr, 512, 0), 0);
    close(fd);
    assert_int_equal(md_get_le16(vbr + 0x1fe), 0xaa55);
    {
        uint64_t first = md_get_le32(vbr + b.epa[7]) | (uint64_t)md_get_le32(vbr + b.epa[8]) << 32;
        uint64_t adv0 = md_get_le64(data + b.epa[0]);
        uint8_t sec[512];
        fd = open(f->img, O_RDONLY);
        assert_int_equal(md_pread_full(fd, sec, 512, first * 512), 0);
        assert_memory_equal(sec, data, 512);
        assert_int_equal(md_pread_full(fd, sec, 512, adv0 * 512), 0);
        assert_memory_equal(sec, data + b.ldlen, 512);
        close(fd);
    }
    free(data);
    read_back(f->img, "/boot/syslinux/ldlinux.c32", &data, &size, &inode);
    assert_int_equal(size, b.c32len);
    assert_memory_equal(data, b.c32, size);
    free(data);
    read_back(f->img, "/boot/syslinux/extlinux.conf", &data, &size, &inode);
    assert_int_equal(size, strlen(good_conf));
    assert_memory_equal(data, good_conf, size);
    free(data);
    /* the kernel's holes were filled, contents unchanged */
    assert_int_equal(md_test_run("test $(debugfs -R 'blocks /boot/vmlinuz' %s 2>/dev/null | wc -w) = 207",
                         f->img), 0);
    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "debugfs -R 'cat /boot/vmlinuz' %s 2>/dev/null | cmp -s - %s/root/boot/vmlinuz",
                 f->img, f->dir);
        assert_int_equal(system(cmd), 0);
    }

    /* update: same place, an ADV record survives, fsck clean */
    {
        ext2_filsys fs;
        ext2_ino_t ino;
        blk64_t blk;
        uint8_t adv[1024];
        char *img2, *img3;
        size_t len2, len3;
        assert_int_equal(ext2fs_open(f->img, EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs), 0);
        assert_int_equal(ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, "/boot/syslinux/ldlinux.sys", &ino), 0);
        assert_int_equal(ext2fs_bmap2(fs, ino, NULL, NULL, 0, (b.ldlen) / fs->blocksize, NULL, &blk), 0);
        /* put a record (tag 1 = "boot once", "x") into both ADV copies */
        md_extlinux_adv_init(adv);
        adv[8] = 1; adv[9] = 1; adv[10] = 'x';
        {
            uint32_t csum = 0xa3041767u;
            size_t i;
            for (i = 8; i < 508; i += 4)
                csum -= md_get_le32(adv + i);
            md_put_le32(adv + 4, csum);
        }
        memcpy(adv + 512, adv, 512);
        assert_int_equal(md_extlinux_adv_valid(adv), 0);
        fd = open(f->img, O_RDWR);
        assert_int_equal(md_pwrite_full(fd, adv, 1024,
                                        blk * fs->blocksize + (b.ldlen % fs->blocksize)), 0);
        close(fd);
        ext2fs_close_free(&fs);
        assert_int_equal(install(ctx, f->img, 0, &o), 0);
        assert_int_equal(md_test_run("e2fsck -fn %s >/dev/null 2>&1", f->img), 0);
        read_back(f->img, "/boot/syslinux/ldlinux.sys", &data, &size, &inode);
        assert_int_equal(data[b.ldlen + 10], 'x');
        assert_int_equal(md_extlinux_adv_valid(data + b.ldlen), 0);
        free(data);
        /* a third run changes nothing but the superblock's write counter */
        assert_int_equal(md_read_file(ctx, f->img, &img2, &len2), 0);
        assert_int_equal(install(ctx, f->img, 0, &o), 0);
        assert_int_equal(md_read_file(ctx, f->img, &img3, &len3), 0);
        assert_same_but_write_counter(img2, len2, img3, len3);
        free(img2);
        free(img3);
        assert_int_equal(md_test_run("e2fsck -fn %s >/dev/null 2>&1", f->img), 0);
    }
    md_extlinux_blobs_free(&b);
    md_ctx_free(ctx);
}

/* Everything through the library: table, ext4, files, install; then the
 * boot flag, the MBR boot code and the VBR's hidden sectors are checked. */
static void install_partitioned(const char *label, const char *mbrbin)
{
    char dir[] = "/tmp/md-test-extlinux-p.XXXXXX", path[128], code[440], disk[512];
    md_table_opts t = MD_TABLE_OPTS_INIT;
    md_part_opts po = MD_PART_OPTS_INIT;
    md_extlinux_opts o = MD_EXTLINUX_OPTS_INIT;
    md_image *img;
    md_ext *fs;
    md_probe *probe;
    md_ctx *ctx;
    uint8_t vbr[512];
    uint64_t off, size;
    char *bin;
    size_t binlen;
    int fd;

    md_test_need_file(EXTLINUX_BIN, R_OK, "extlinux");
    md_test_need_file(mbrbin, R_OK, "syslinux-common");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/p.img", dir);
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_set_epoch(ctx, 1700000000), 0);
    assert_int_equal(md_image_create(ctx, path, 40 << 20, NULL, &img), 0);
    po.size = 4 << 20;
    assert_int_equal(md_image_add_partition(img, &po), 0);
    po.size = 0;
    assert_int_equal(md_image_add_partition(img, &po), 0);
    assert_int_equal(md_table_from_name(NULL, label, &t.type), 0);
    assert_int_equal(md_image_write_table(img, &t), 0);
    assert_int_equal(md_ext_format(img, 2, NULL, &fs), 0);
    assert_int_equal(md_ext_mkdir(fs, "/boot", NULL), 0);
    memset(disk, 0, sizeof(disk));
    memcpy(disk, "kernel", 6);
    assert_int_equal(md_ext_write_file(fs, "/boot/vmlinuz", disk, sizeof(disk), NULL), 0);
    assert_int_equal(md_ext_close(fs), 0);
    assert_int_equal(md_image_commit(img), 0);
    o.config_text = "DEFAULT l\nLABEL l\n  LINUX /boot/vmlinuz\n";
    /* partition 3 does not exist: error, image unchanged */
    expect_fail(ctx, path, 3, &o, -ENOENT, "3");
    /* partition 1 has no filesystem */
    expect_fail(ctx, path, 1, &o, -EINVAL, "no ext2/3/4 filesystem");
    assert_int_equal(install(ctx, path, 2, &o), 0);
    assert_int_equal(md_test_run("e2fsck -fn '%s?offset=%d' >/dev/null 2>&1", path, 5 << 20), 0);

    assert_int_equal(md_image_partition_range(img, 2, &off, &size), 0);
    assert_int_equal(md_image_probe(img, &probe), 0);
    assert_string_equal(md_probe_table(probe), !strcmp(label, "dos") ? "dos" : "gpt");
    assert_int_equal(md_probe_flags(probe, 2) & MD_PART_BOOTABLE, MD_PART_BOOTABLE);
    assert_int_equal(md_probe_flags(probe, 1) & MD_PART_BOOTABLE, 0);
    md_probe_free(probe);
    fd = open(path, O_RDONLY);
    assert_int_equal(md_pread_full(fd, code, sizeof(code), 0), 0);
    assert_int_equal(md_pread_full(fd, vbr, sizeof(vbr), off), 0);
    close(fd);
    assert_int_equal(md_read_file(ctx, mbrbin, &bin, &binlen), 0);
    assert_memory_equal(code, bin, binlen);
    free(bin);
    assert_int_equal(md_get_le32(vbr + 0x1c), off / 512);
    assert_int_equal(md_get_le32(vbr + 0x20), size / 512);
    assert_int_equal(md_get_le16(vbr + 0x1fe), 0xaa55);
    md_image_free(img);
    md_ctx_free(ctx);
    md_test_run("rm -rf %s", dir);
}

static void test_install_mbr(void **state)
{
    (void)state;
    install_partitioned("dos", "/usr/lib/syslinux/mbr/mbr.bin");
}

static void test_install_gpt(void **state)
{
    (void)state;
    install_partitioned("gpt", "/usr/lib/syslinux/mbr/gptmbr.bin");
}

/* Same inputs, same epoch: the same bytes, whatever the cwd or umask. */
static void test_deterministic(void **state)
{
    struct fixture *f = *state;
    md_extlinux_opts o = MD_EXTLINUX_OPTS_INIT;
    char copy[160], *d1, *d2;
    md_ctx *ctx;

    need_mkfs_extlinux();
    snprintf(copy, sizeof(copy), "%s/b.img", f->dir);
    assert_int_equal(md_test_run("cp %s %s", f->img, copy), 0);
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_set_epoch(ctx, 1234567890), 0);
    o.config_text = good_conf;
    assert_int_equal(install(ctx, f->img, 0, &o), 0);
    umask(077);
    assert_int_equal(chdir("/"), 0);
    assert_int_equal(install(ctx, copy, 0, &o), 0);
    umask(022);
    d1 = file_digest(f->img);
    d2 = file_digest(copy);
    assert_string_equal(d1, d2);
    free(d1);
    free(d2);
    md_ctx_free(ctx);
}

/* ldlinux.sys gets its timestamps like every file the ext module writes:
 * past 2038 through the extra epoch bits, crtime included (it used to be a
 * 32-bit i_mtime only, which ext4 reads as a date in 1901). */
static void test_install_epoch_2038(void **state)
{
    struct fixture *f = *state;
    md_extlinux_opts o = MD_EXTLINUX_OPTS_INIT;
    const int64_t t = 2147483653; /* 2^31 + 5 */
    struct ext2_inode_large inode;
    ext2_filsys fs;
    ext2_ino_t ino;
    md_ctx *ctx;

    need_mkfs_extlinux();
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_set_epoch(ctx, t), 0);
    o.config_text = good_conf;
    assert_int_equal(install(ctx, f->img, 0, &o), 0);
    assert_int_equal(md_test_run("e2fsck -fn %s >/dev/null 2>&1", f->img), 0);
    assert_int_equal(ext2fs_open(f->img, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs), 0);
    assert_int_equal(ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, "/boot/syslinux/ldlinux.sys",
                                  &ino), 0);
    assert_true(EXT2_INODE_SIZE(fs->super) >= 256);
    memset(&inode, 0, sizeof(inode));
    assert_int_equal(ext2fs_read_inode_full(fs, ino, (struct ext2_inode *)&inode, sizeof(inode)), 0);
    assert_int_equal(inode.i_mtime, (uint32_t)t);
    assert_int_equal(inode.i_mtime_extra & EXT4_EPOCH_MASK, 1);
    assert_int_equal(inode.i_crtime, (uint32_t)t);
    assert_int_equal(inode.i_crtime_extra & EXT4_EPOCH_MASK, 1);
    ext2fs_close_free(&fs);
    md_ctx_free(ctx);
}

/* No config given: an existing extlinux.conf is kept, and the kernel it
 * names gets its holes filled too. */
static void test_keep_config(void **state)
{
    struct fixture *f = *state;
    char img[160];
    md_ctx *ctx;
    uint8_t *data;
    size_t size;
    struct ext2_inode inode;

    need_mkfs_extlinux();
    snprintf(img, sizeof(img), "%s/k.img", f->dir);
    assert_int_equal(md_test_run("mkdir -p %s/root/boot/syslinux && printf '%%s' '%s' > %s/root/boot/syslinux/extlinux.conf"
                         " && mkfs.ext4 -q -F -d %s/root %s 16M >/dev/null 2>&1",
                         f->dir, "LABEL x\n LINUX /boot/vmlinuz\n", f->dir, f->dir, img), 0);
    assert_int_equal(md_test_run("test $(debugfs -R 'blocks /boot/vmlinuz' %s 2>/dev/null | wc -w) -lt 207", img), 0);
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(install(ctx, img, 0, NULL), 0);
    assert_int_equal(md_test_run("e2fsck -fn %s >/dev/null 2>&1", img), 0);
    assert_int_equal(md_test_run("test $(debugfs -R 'blocks /boot/vmlinuz' %s 2>/dev/null | wc -w) = 207", img), 0);
    read_back(img, "/boot/syslinux/extlinux.conf", &data, &size, &inode);
    assert_int_equal(size, strlen("LABEL x\n LINUX /boot/vmlinuz\n"));
    free(data);
    md_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blobs_synthetic),
        cmocka_unit_test(test_blobs_real),
        cmocka_unit_test(test_patch),
        cmocka_unit_test(test_adv),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_refs),
        cmocka_unit_test_setup_teardown(test_install_errors, setup_img, teardown_img),
        cmocka_unit_test_setup_teardown(test_install_ok, setup_img, teardown_img),
        cmocka_unit_test_setup_teardown(test_deterministic, setup_img, teardown_img),
        cmocka_unit_test_setup_teardown(test_install_epoch_2038, setup_img, teardown_img),
        cmocka_unit_test(test_install_mbr),
        cmocka_unit_test_setup_teardown(test_keep_config, setup_img, teardown_img),
        cmocka_unit_test(test_install_gpt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
