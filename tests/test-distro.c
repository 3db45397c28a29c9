/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the distro module: bzImage release probing, kernel module
 * resolution against a synthetic /lib/modules/RELEASE (and the host's real
 * one when present), the system files. */
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "md-internal.h"
#include "test-util.h"

static char tmpdir[256];

static void write_file(const char *rel, const void *data, size_t size)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *rel, const char *text)
{
    write_file(rel, text, strlen(text));
}

static void mkdirs(const char *rel)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s/%s'", tmpdir, rel);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-distro.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fake bzImage: just enough of the setup header. */
static void make_fake_bzimage(const char *rel, const char *version, int valid)
{
    unsigned char img[4096];

    memset(img, 0, sizeof(img));
    img[0x1fe] = 0x55;
    img[0x1ff] = 0xaa;
    if (valid)
        memcpy(img + 0x202, "HdrS", 4);
    img[0x206] = 0x0f; /* protocol 2.15 */
    img[0x207] = 0x02;
    img[0x211] = 0x01; /* LOADED_HIGH */
    img[0x20e] = 0x00; /* version string at 0x200 + 0x600 = 0x800 */
    img[0x20f] = 0x06;
    memcpy(img + 0x800, version, strlen(version));
    write_file(rel, img, sizeof(img));
}

static void test_kernel_release(void **state)
{
    md_ctx *ctx;
    char buf[128], path[512];
    glob_t g;
    int r;

    (void)state;
    assert_int_equal(md_ctx_new(&ctx), 0);

    make_fake_bzimage("bz-good", "6.1.99-test (me@host) #1 SMP", 1);
    snprintf(path, sizeof(path), "%s/bz-good", tmpdir);
    r = md_kernel_release(ctx, path, buf, sizeof(buf));
    assert_int_equal(r, (int)strlen("6.1.99-test"));
    assert_string_equal(buf, "6.1.99-test");

    /* truncation keeps a NUL */
    r = md_kernel_release(ctx, path, buf, 4);
    assert_int_equal(r, 3);
    assert_string_equal(buf, "6.1");

    make_fake_bzimage("bz-bad", "6.1.99-test", 0);
    snprintf(path, sizeof(path), "%s/bz-bad", tmpdir);
    assert_int_equal(md_kernel_release(ctx, path, buf, sizeof(buf)), -ENOEXEC);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "not an x86 bzImage"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), "bz-bad"));

    write_text("small", "#!/bin/sh\necho hi\n");
    snprintf(path, sizeof(path), "%s/small", tmpdir);
    assert_int_equal(md_kernel_release(ctx, path, buf, sizeof(buf)), -ENOEXEC);

    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    assert_int_equal(md_kernel_release(ctx, path, buf, sizeof(buf)), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "missing"));

    assert_int_equal(md_kernel_release(ctx, tmpdir, buf, sizeof(buf)), -ENOEXEC);

    /* A real kernel, when readable: the release matches its file name
     * (scripts/setup installs one: in CI it must be there). */
    path[0] = '\0';
    if (glob("/boot/vmlinuz-*", 0, NULL, &g) == 0) {
        snprintf(path, sizeof(path), "%s", g.gl_pathv[0]);
        globfree(&g);
    }
    if (md_test_want_file(path[0] ? path : "/boot/vmlinuz-*", R_OK, "linux-image-cloud-amd64")) {
        r = md_kernel_release(ctx, path, buf, sizeof(buf));
        assert_true(r > 0);
        assert_string_equal(buf, path + strlen("/boot/vmlinuz-"));
    }
    md_ctx_free(ctx);
}

/* modules dir "mods/9.9.9-fake":
 *   a.ko needs b.ko (which needs c.ko), c.ko.xz compressed, d-dash.ko alone,
 *   builtin: ext4; alias "alias pci:v00001AF4d00001001* a" and "alias foo-bar d_dash". */
static void make_fake_modules(void)
{
    char cmd[600];

    mkdirs("mods/9.9.9-fake/kernel/drivers/x");
    write_text("mods/9.9.9-fake/modules.dep",
               "kernel/drivers/x/a.ko: kernel/drivers/x/b.ko kernel/drivers/x/c.ko.xz\n"
               "kernel/drivers/x/b.ko: kernel/drivers/x/c.ko.xz\n"
               "kernel/drivers/x/c.ko.xz:\n"
               "kernel/drivers/x/d-dash.ko:\n"
               "kernel/drivers/x/broken.ko: kernel/drivers/x/nowhere.ko\n");
    write_text("mods/9.9.9-fake/modules.builtin", "kernel/fs/ext4/ext4.ko\n");
    write_text("mods/9.9.9-fake/modules.alias",
               "# Aliases extracted from modules themselves.\n"
               "alias pci:v00001AF4d00001001sv*sd*bc*sc*i* a\n"
               "alias foo-bar d_dash\n");
    write_text("mods/9.9.9-fake/kernel/drivers/x/a.ko", "module a\n");
    write_text("mods/9.9.9-fake/kernel/drivers/x/b.ko", "module b\n");
    write_text("mods/9.9.9-fake/kernel/drivers/x/c.ko", "module c, once compressed\n");
    write_text("mods/9.9.9-fake/kernel/drivers/x/d-dash.ko", "module d\n");
    snprintf(cmd, sizeof(cmd), "xz -f '%s/mods/9.9.9-fake/kernel/drivers/x/c.ko'", tmpdir);
    assert_int_equal(system(cmd), 0);
}

static const char *list_text(md_tree *tree, size_t *size)
{
    struct md_entry *e = md_tree_lookup(tree, MD_KMODS_LOAD_LIST);
    assert_non_null(e);
    assert_int_equal(e->src, MD_SRC_BUF);
    *size = e->size;
    return e->buf;
}

static void check_text(const char *got, size_t size, const char *want)
{
    if (size != strlen(want) || memcmp(got, want, size) != 0)
        fail_msg("got:\n%.*s\nwant:\n%s", (int)size, got, want);
}

static void test_kmods_fake(void **state)
{
    md_ctx *ctx;
    md_tree *tree;
    char dir[512];
    const char *text;
    size_t size;
    struct md_entry *e;
    const char *names1[] = { "a", "ext4", NULL };
    const char *names2[] = { "foo-bar", "c", NULL };
    const char *names_missing[] = { "virtio_blk", NULL };
    const char *names_broken[] = { "broken", NULL };
    const char *names_alias[] = { "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", NULL };
    md_kmods_opts o = MD_KMODS_OPTS_INIT;
    int r;

    (void)state;
    make_fake_modules();
    snprintf(dir, sizeof(dir), "%s/mods/9.9.9-fake/", tmpdir);
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_tree_new(ctx, &tree), 0);

    r = md_tree_add_kmods(tree, dir, names1, NULL);
    assert_int_equal(r, 3); /* c, b, a; ext4 is built in */
    text = list_text(tree, &size);
    check_text(text, size, "/lib/modules/9.9.9-fake/kernel/drivers/x/c.ko\n"
                              "/lib/modules/9.9.9-fake/kernel/drivers/x/b.ko\n"
                              "/lib/modules/9.9.9-fake/kernel/drivers/x/a.ko\n");
    /* the compressed module was stored decompressed */
    e = md_tree_lookup(tree, "lib/modules/9.9.9-fake/kernel/drivers/x/c.ko");
    assert_non_null(e);
    assert_int_equal(e->src, MD_SRC_BUF);
    assert_int_equal(e->size, strlen("module c, once compressed\n"));
    assert_memory_equal(e->buf, "module c, once compressed\n", e->size);
    assert_int_equal(md_tree_contains(tree, "lib/modules/9.9.9-fake/kernel/drivers/x/c.ko.xz"), 0);
    assert_int_equal(md_tree_contains(tree, "lib/modules/9.9.9-fake/kernel/drivers/x/a.ko"), 1);

    /* a second call appends without duplicates; '-' == '_' and aliases resolve */
    r = md_tree_add_kmods(tree, dir, names2, NULL);
    assert_int_equal(r, 1);
    text = list_text(tree, &size);
    check_text(text, size, "/lib/modules/9.9.9-fake/kernel/drivers/x/c.ko\n"
                              "/lib/modules/9.9.9-fake/kernel/drivers/x/b.ko\n"
                              "/lib/modules/9.9.9-fake/kernel/drivers/x/a.ko\n"
                              "/lib/modules/9.9.9-fake/kernel/drivers/x/d-dash.ko\n");

    /* glob alias */
    assert_int_equal(md_tree_add_kmods(tree, dir, names_alias, NULL), 0); /* a already there */

    /* missing driver: named */
    r = md_tree_add_kmods(tree, dir, names_missing, NULL);
    assert_int_equal(r, -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "'virtio_blk'"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), "9.9.9-fake"));
    /* ... unless optional */
    o.flags = MD_KMODS_OPTIONAL;
    assert_int_equal(md_tree_add_kmods(tree, dir, names_missing, &o), 0);

    /* broken modules.dep reference */
    r = md_tree_add_kmods(tree, dir, names_broken, NULL);
    assert_int_equal(r, -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "nowhere.ko"));

    /* no such modules dir */
    snprintf(dir, sizeof(dir), "%s/mods/nope", tmpdir);
    assert_int_equal(md_tree_add_kmods(tree, dir, names1, NULL), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "mods/nope"));

    md_tree_free(tree);
    md_ctx_free(ctx);
}

static void test_kmods_config(void **state)
{
    md_ctx *ctx;
    md_tree *tree;
    char cfg[512];
    const char *builtin[] = { "virtio_blk", "virtio-pci", "ext4", "sd_mod", NULL };
    const char *modular[] = { "ata_piix", NULL };
    const char *absent[] = { "e1000", NULL };
    md_kmods_opts o = MD_KMODS_OPTS_INIT;

    (void)state;
    write_text("tiny.config", "CONFIG_VIRTIO_BLK=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_EXT4_FS=y\n"
                              "CONFIG_BLK_DEV_SD=y\nCONFIG_ATA_PIIX=m\n# CONFIG_E1000 is not set\n");
    snprintf(cfg, sizeof(cfg), "%s/tiny.config", tmpdir);
    o.kernel_config = cfg;
    o.release = "6.1.0-tiny";
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_tree_new(ctx, &tree), 0);

    assert_int_equal(md_tree_add_kmods(tree, NULL, builtin, &o), 0);
    assert_int_equal(md_tree_contains(tree, MD_KMODS_LOAD_LIST), 0);

    assert_int_equal(md_tree_add_kmods(tree, NULL, modular, &o), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "'ata_piix'"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), "=m"));

    assert_int_equal(md_tree_add_kmods(tree, NULL, absent, &o), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "'e1000'"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), "neither built into kernel 6.1.0-tiny"));

    /* neither a modules dir nor a config: cannot tell */
    assert_int_equal(md_tree_add_kmods(tree, NULL, builtin, NULL), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "cannot tell"));

    md_tree_free(tree);
    md_ctx_free(ctx);
}

/* The host's distribution kernel modules, when installed. */
static void test_kmods_host(void **state)
{
    md_ctx *ctx;
    md_tree *tree;
    glob_t g;
    const char *names[] = { "virtio_blk", "virtio_pci", "ext4", NULL };
    const char *text;
    size_t size;
    int r;

    (void)state;
    if (glob("/lib/modules/*/modules.dep", 0, NULL, &g) != 0) {
        md_test_missing("/lib/modules/*/modules.dep", "linux-image-cloud-amd64");
        return;
    }
    {
        char dir[512];
        snprintf(dir, sizeof(dir), "%.*s", (int)(strlen(g.gl_pathv[0]) - strlen("/modules.dep")),
                 g.gl_pathv[0]);
        globfree(&g);
        assert_int_equal(md_ctx_new(&ctx), 0);
        assert_int_equal(md_tree_new(ctx, &tree), 0);
        r = md_tree_add_kmods(tree, dir, names, NULL);
        if (r == -ENOENT && strstr(md_ctx_errmsg(ctx), "neither")) {
            /* a kernel with these built in or without them: nothing to check */
            md_tree_free(tree);
            md_ctx_free(ctx);
            md_test_skip_env("the installed kernel has virtio_blk, virtio_pci, ext4 built in");
            return;
        }
        assert_true(r >= 2);
        if (md_tree_contains(tree, MD_KMODS_LOAD_LIST) == 1) {
            const char *vb, *v;
            char *t;
            text = list_text(tree, &size);
            t = strndup(text, size);
            assert_non_null(t);
            vb = strstr(t, "/virtio_blk.ko\n");
            v = strstr(t, "/virtio.ko\n");
            assert_non_null(vb);
            /* virtio core (a dependency) is loaded before virtio_blk */
            if (v)
                assert_true(v < vb);
            free(t);
        }
        md_tree_free(tree);
        md_ctx_free(ctx);
    }
}

static void test_distro_files(void **state)
{
    md_ctx *ctx;
    md_tree *tree;
    struct md_entry *e;

    (void)state;
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_tree_new(ctx, &tree), 0);
    assert_int_equal(md_tree_add_distro_files(tree, "bad host"), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "bad host"));
    assert_int_equal(md_tree_add_distro_files(tree, NULL), 0);
    e = md_tree_lookup(tree, "init");
    assert_non_null(e);
    assert_int_equal(e->mode & 07777, 0755);
    assert_non_null(memmem(e->buf, e->size, "minidistro: Linux $(uname -r)", 29));
    assert_non_null(memmem(e->buf, e->size, "switch_root", 11));
    e = md_tree_lookup(tree, "etc/hostname");
    assert_non_null(e);
    assert_memory_equal(e->buf, "minidistro\n", e->size);
    e = md_tree_lookup(tree, "tmp");
    assert_non_null(e);
    assert_int_equal(e->mode & 07777, 01777);
    assert_int_equal(md_tree_contains(tree, "etc/inittab"), 1);
    assert_int_equal(md_tree_contains(tree, "sbin/init"), 1);
    assert_int_equal(md_tree_add_distro_files(tree, "box-1.example"), 0);
    e = md_tree_lookup(tree, "etc/hostname");
    assert_memory_equal(e->buf, "box-1.example\n", e->size);
    md_tree_free(tree);
    md_ctx_free(ctx);
}


static int count_progress(void *userdata, uint64_t done, uint64_t total)
{
    int *n = userdata;
    assert_true(done >= 1 && done <= total);
    (*n)++;
    return 0;
}

static int cancel_progress(void *userdata, uint64_t done, uint64_t total)
{
    (void)userdata;
    (void)total;
    return done >= 2; /* cancel after the second phase */
}

/* md_distro_build with a fake bzImage (enough to build, not to boot): option
 * checks, -EEXIST, a complete image read back through the public API, and no
 * file left behind on failure or cancel. */
static void test_distro_build(void **state)
{
    md_ctx *ctx;
    md_distro_opts o = MD_DISTRO_OPTS_INIT;
    char kernel[512], out[512], cfg[512], initrd[512];
    const char *mods[] = { "no_such_driver", NULL };
    md_image *img;
    md_ext *fs;
    md_probe *probe;
    void *data;
    size_t size;
    int n = 0, r;

    (void)state;
    md_test_need_file("/bin/busybox", X_OK, "busybox-static");
    assert_int_equal(md_ctx_new(&ctx), 0);
    make_fake_bzimage("fake-bz", "6.1.0-fake #1", 1);
    write_text("fake-config", "CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_BLK=y\nCONFIG_EXT4_FS=y\n");
    snprintf(kernel, sizeof(kernel), "%s/fake-bz", tmpdir);
    snprintf(cfg, sizeof(cfg), "%s/fake-config", tmpdir);
    snprintf(out, sizeof(out), "%s/distro.img", tmpdir);
    snprintf(initrd, sizeof(initrd), "%s/initrd.img", tmpdir);

    assert_int_equal(md_distro_build(ctx, NULL), -EINVAL);
    assert_int_equal(md_distro_build(ctx, &o), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "output"));
    o.output = out;
    assert_int_equal(md_distro_build(ctx, &o), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "kernel"));
    o.kernel = kernel;
    o.root = 7;
    assert_int_equal(md_distro_build(ctx, &o), -EINVAL);
    o.root = MD_DISTRO_ROOT_DISK;
    o.version = 99;
    assert_int_equal(md_distro_build(ctx, &o), -EINVAL);
    o.version = MD_DISTRO_OPTS_VERSION;

    /* no config, no modules for "6.1.0-fake": cannot tell about the drivers */
    o.modules_dir = NULL;
    r = md_distro_build(ctx, &o);
    assert_int_equal(r, -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "virtio_pci"));
    assert_int_equal(access(out, F_OK), -1);

    /* a module nobody has */
    o.kernel_config = cfg;
    o.modules = mods;
    assert_int_equal(md_distro_build(ctx, &o), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "'no_such_driver'"));
    assert_int_equal(access(out, F_OK), -1);
    o.modules = NULL;

    /* too small */
    o.size = 4ull << 20;
    assert_int_equal(md_distro_build(ctx, &o), -ENOSPC);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "too small"));
    assert_int_equal(access(out, F_OK), -1);
    o.size = 0;

    /* cancelled by the progress callback */
    o.progress = cancel_progress;
    assert_int_equal(md_distro_build(ctx, &o), -ECANCELED);
    assert_int_equal(access(out, F_OK), -1);

    /* the real thing */
    o.progress = count_progress;
    o.userdata = &n;
    o.table = MD_TABLE_GPT;
    o.hostname = "unit";
    o.initramfs_output = initrd;
    r = md_distro_build(ctx, &o);
    if (r < 0)
        fail_msg("md_distro_build: %s", md_ctx_errmsg(ctx));
    assert_int_equal(n, 6);
    assert_int_equal(access(initrd, R_OK), 0);

    /* exists now */
    assert_int_equal(md_distro_build(ctx, &o), -EEXIST);

    /* read it back */
    assert_int_equal(md_image_open(ctx, out, MD_IMAGE_RDONLY, &img), 0);
    assert_int_equal(md_image_size(img), 64ull << 20);
    assert_int_equal(md_image_probe(img, &probe), 0);
    assert_string_equal(md_probe_table(probe), "gpt");
    assert_int_equal(md_probe_count(probe), 1);
    assert_true(md_probe_flags(probe, 1) & MD_PART_BOOTABLE);
    assert_string_equal(md_probe_fs_type(probe, 1), "ext4");
    assert_string_equal(md_probe_fs_label(probe, 1), MD_DISTRO_ROOT_LABEL);
    md_probe_free(probe);
    assert_int_equal(md_ext_open(img, 1, MD_EXT_RDONLY, &fs), 0);
    assert_int_equal(md_ext_read_file(fs, "/boot/syslinux/extlinux.conf", &data, &size), 0);
    assert_non_null(strstr(data, "root=LABEL=minidistro"));
    assert_non_null(strstr(data, "console=ttyS0"));
    free(data);
    assert_int_equal(md_ext_read_file(fs, "/etc/hostname", &data, &size), 0);
    assert_string_equal(data, "unit\n");
    free(data);
    assert_int_equal(md_ext_read_file(fs, "/boot/vmlinuz", &data, &size), 0);
    assert_int_equal(size, 4096);
    free(data);
    assert_int_equal(md_ext_exists(fs, "/bin/busybox"), 1);
    assert_int_equal(md_ext_exists(fs, "/init"), 1);
    md_ext_free(fs);
    md_image_free(img);

    /* the private initramfs next to the output is gone */
    {
        DIR *d = opendir(tmpdir);
        struct dirent *de;
        assert_non_null(d);
        while ((de = readdir(d)))
            assert_null(strstr(de->d_name, "distro.img."));
        closedir(d);
    }
    md_ctx_free(ctx);
}

static int read_all(const char *path, char **buf, size_t *size)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n);
    if (!*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return -1;
    }
    fclose(f);
    *size = (size_t)n;
    return 0;
}

/* Same inputs and epoch -> the same bytes, whatever the umask. */
static void test_distro_reproducible(void **state)
{
    md_distro_opts o = MD_DISTRO_OPTS_INIT;
    char kernel[512], cfg[512], out[2][512];
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int i;

    (void)state;
    md_test_need_file("/bin/busybox", X_OK, "busybox-static");
    make_fake_bzimage("repro-bz", "6.1.0-repro #1", 1);
    write_text("repro-config", "CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_BLK=y\nCONFIG_EXT4_FS=y\n");
    snprintf(kernel, sizeof(kernel), "%s/repro-bz", tmpdir);
    snprintf(cfg, sizeof(cfg), "%s/repro-config", tmpdir);
    for (i = 0; i < 2; i++) {
        md_ctx *ctx;
        mode_t um = umask(i ? 077 : 022);
        snprintf(out[i], sizeof(out[i]), "%s/repro%d.img", tmpdir, i);
        assert_int_equal(md_ctx_new(&ctx), 0);
        assert_int_equal(md_ctx_set_epoch(ctx, 1700000000), 0);
        o.output = out[i];
        o.kernel = kernel;
        o.kernel_config = cfg;
        o.root = MD_DISTRO_ROOT_DISK;
        o.size = 16ull << 20;
        if (md_distro_build(ctx, &o) < 0)
            fail_msg("md_distro_build: %s", md_ctx_errmsg(ctx));
        md_ctx_free(ctx);
        umask(um);
    }
    assert_int_equal(read_all(out[0], &a, &na), 0);
    assert_int_equal(read_all(out[1], &b, &nb), 0);
    assert_int_equal(na, nb);
    assert_true(memcmp(a, b, na) == 0);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_release),
        cmocka_unit_test(test_kmods_fake),
        cmocka_unit_test(test_kmods_config),
        cmocka_unit_test(test_kmods_host),
        cmocka_unit_test(test_distro_files),
        cmocka_unit_test(test_distro_build),
        cmocka_unit_test(test_distro_reproducible),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
