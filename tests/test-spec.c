/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the gen_init_cpio spec source (md-tree-spec.c). */
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
#include "test-util.h"

#define EPOCH 1600000000

struct fx {
    md_ctx *ctx;
    md_tree *tree;
    char *dir;      /* temporary directory with host files */
};

static void write_file(const char *dir, const char *name, const char *content)
{
    char *p = md_asprintf("%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(md_write_full(fd, content, strlen(content)), 0);
    close(fd);
    free(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char *p;

    assert_non_null(f);
    assert_int_equal(md_ctx_new(&f->ctx), 0);
    assert_int_equal(md_ctx_set_epoch(f->ctx, EPOCH), 0);
    assert_int_equal(md_tree_new(f->ctx, &f->tree), 0);
    f->dir = strdup("/tmp/md-test-spec.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    write_file(f->dir, "hello.txt", "hello\n");
    write_file(f->dir, "init.sh", "#!/bin/sh\n");
    p = md_asprintf("%s/sub", f->dir);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    write_file(f->dir, "sub/data", "0123456789");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    md_tree_free(f->tree);
    md_ctx_free(f->ctx);
    md_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static int spec(struct fx *f, const char *text)
{
    return md_tree_add_spec_buf(f->tree, text, strlen(text), "test.spec", f->dir);
}

static struct md_entry *get(struct fx *f, const char *path)
{
    return md_tree_lookup(f->tree, path);
}

#define assert_errmsg(f, want) assert_string_equal(md_ctx_errmsg((f)->ctx), (want))

static void assert_errmsg_contains(struct fx *f, const char *needle)
{
    const char *msg = md_ctx_errmsg(f->ctx);
    if (!strstr(msg, needle))
        fail_msg("error message '%s' does not contain '%s'", msg, needle);
}

/* ---- good input -------------------------------------------------------------------- */

static void test_all_types(void **state)
{
    struct fx *f = *state;
    struct md_entry *e;
    int r;

    r = spec(f,
             "# A simple initramfs\n"
             "dir /dev 0755 0 0\n"
             "nod /dev/console 0600 0 0 c 5 1\n"
             "nod /dev/sda 0660 0 6 b 8 0\n"
             "dir /root 0700 0 0\n"
             "dir /sbin 0755 0 0\n"
             "file /sbin/init init.sh 0755 0 0\n"
             "file /etc/hello hello.txt 0640 1000 100 /etc/hello2 /hello3\n"
             "slink /bin/sh busybox 0777 0 0\n"
             "pipe /run/initctl 0600 0 0\n"
             "sock /run/sock 0755 12 34\n");
    if (r < 0)
        fail_msg("%s", md_ctx_errmsg(f->ctx));
    assert_int_equal(md_tree_finalize(f->tree), 0);

    e = get(f, "dev");
    assert_int_equal(e->mode, S_IFDIR | 0755);
    e = get(f, "dev/console");
    assert_int_equal(e->mode, S_IFCHR | 0600);
    assert_int_equal(e->rmajor, 5);
    assert_int_equal(e->rminor, 1);
    e = get(f, "dev/sda");
    assert_int_equal(e->mode, S_IFBLK | 0660);
    assert_int_equal(e->gid, 6);
    assert_int_equal(e->rmajor, 8);
    assert_int_equal(e->rminor, 0);
    assert_int_equal(get(f, "root")->mode, S_IFDIR | 0700);
    e = get(f, "sbin/init");
    assert_int_equal(e->mode, S_IFREG | 0755);
    assert_int_equal(e->src, MD_SRC_HOST);
    assert_int_equal(e->size, 10);
    assert_non_null(strstr(e->host_path, "init.sh"));
    assert_int_equal(e->mtime, EPOCH);
    e = get(f, "etc/hello");
    assert_int_equal(e->mode, S_IFREG | 0640);
    assert_int_equal(e->uid, 1000);
    assert_int_equal(e->gid, 100);
    assert_int_equal(e->nlink, 3);
    assert_ptr_equal(get(f, "etc/hello2")->master, e);
    assert_ptr_equal(get(f, "hello3")->master, e);
    assert_int_equal(get(f, "hello3")->ino, e->ino);
    assert_int_equal(get(f, "hello3")->uid, 1000);
    /* implicit parent of /etc/hello */
    assert_int_equal(get(f, "etc")->mode, S_IFDIR | 0755);
    e = get(f, "bin/sh");
    assert_int_equal(e->mode, S_IFLNK | 0777);
    assert_string_equal(e->link, "busybox");
    assert_int_equal(get(f, "run/initctl")->mode, S_IFIFO | 0600);
    e = get(f, "run/sock");
    assert_int_equal(e->mode, S_IFSOCK | 0755);
    assert_int_equal(e->uid, 12);
    assert_int_equal(e->gid, 34);
    assert_int_equal(md_tree_count(f->tree), 15);
}

static void test_syntax(void **state)
{
    struct fx *f = *state;
    int r;

    r = spec(f,
             "\n"
             "   \n"
             "#file /x nothere 0644 0 0\n"
             "   # an indented comment\n"
             "\tdir\t/a\t0711  0\t0  \n"
             "dir /b 0000 0 0\r\n"           /* CRLF, and a real mode 0000 */
             "file /c sub/data 644 0 0\n"    /* octal without the leading 0 */
             "file /d hello.txt 0100600 0 0\n" /* a full mode with the right type */
             "dir / 0755 0 0\n"              /* the root: ignored */
             "slink /e a 0777 0 0");         /* no final newline */
    if (r < 0)
        fail_msg("%s", md_ctx_errmsg(f->ctx));
    assert_int_equal(get(f, "a")->mode, S_IFDIR | 0711);
    assert_int_equal(get(f, "b")->mode, S_IFDIR | 0000);
    assert_int_equal(get(f, "c")->mode, S_IFREG | 0644);
    assert_int_equal(get(f, "c")->size, 10);
    assert_int_equal(get(f, "d")->mode, S_IFREG | 0600);
    assert_string_equal(get(f, "e")->link, "a");
    assert_int_equal(md_tree_contains(f->tree, "x"), 0);
    assert_int_equal(md_tree_count(f->tree), 5);
    /* an empty spec is fine */
    assert_int_equal(md_tree_add_spec_buf(f->tree, "", 0, "empty", NULL), 0);
    /* later lines override earlier ones, as later sources do */
    assert_int_equal(spec(f, "file /c hello.txt 0600 0 0\n"), 0);
    assert_int_equal(get(f, "c")->size, 6);
}

static void test_env(void **state)
{
    struct fx *f = *state;
    char *text;

    setenv("MD_TEST_DIR", f->dir, 1);
    setenv("MD_TEST_NAME", "hello", 1);
    text = md_asprintf("file /a ${MD_TEST_DIR}/${MD_TEST_NAME}.txt 0644 0 0\n"
                       "file /b sub/${MD_TEST_EMPTY}data 0644 0 0\n"
                       "slink /${MD_TEST_NAME} ${MD_TEST_NAME} 0777 0 0\n");
    setenv("MD_TEST_EMPTY", "", 1);
    if (spec(f, text) < 0)
        fail_msg("%s", md_ctx_errmsg(f->ctx));
    free(text);
    assert_int_equal(get(f, "a")->size, 6);
    assert_int_equal(get(f, "b")->size, 10);
    /* the kernel expands only the file location: names and targets are literal */
    assert_string_equal(get(f, "${MD_TEST_NAME}")->link, "${MD_TEST_NAME}");

    /* an unset variable expands to "" (as the kernel does); if the location
     * then does not exist, the error says which variable was unset */
    unsetenv("MD_TEST_UNSET");
    assert_int_equal(spec(f, "file /c sub/${MD_TEST_UNSET}data 0644 0 0\n"), 0);
    assert_int_equal(get(f, "c")->size, 10);
    assert_int_equal(spec(f, "\nfile /d ${MD_TEST_UNSET}/nothere 0644 0 0\n"), -ENOENT);
    assert_errmsg_contains(f, "test.spec:2: file location '/nothere': No such file or directory");
    assert_errmsg_contains(f, "${MD_TEST_UNSET} not set");
    assert_int_equal(spec(f, "file /d ${MD_TEST_UNSET} 0644 0 0\n"), -EINVAL);
    assert_errmsg_contains(f, "test.spec:1: empty file location");
    /* an unterminated ${ stays literal */
    assert_int_equal(spec(f, "file /d ${MD_TEST_NAME 0644 0 0\n"), -ENOENT);
    assert_errmsg_contains(f, "${MD_TEST_NAME'");
    /* values are not expanded again */
    setenv("MD_TEST_LOOP", "${MD_TEST_LOOP}", 1);
    assert_int_equal(spec(f, "file /d ${MD_TEST_LOOP} 0644 0 0\n"), -ENOENT);
    assert_errmsg_contains(f, "${MD_TEST_LOOP}");
    unsetenv("MD_TEST_DIR");
    unsetenv("MD_TEST_NAME");
    unsetenv("MD_TEST_EMPTY");
    unsetenv("MD_TEST_LOOP");
}

static void test_spec_file(void **state)
{
    struct fx *f = *state;
    char *specpath = md_asprintf("%s/sub/list.spec", f->dir), *abs;
    char cwd[4096];
    int fd;

    /* relative locations resolve against the spec's directory, not the cwd */
    write_file(f->dir, "sub/list.spec", "file /x data 0644 0 0\nfile /y ../hello.txt 0644 0 0\n");
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir("/"), 0);
    if (md_tree_add_spec(f->tree, specpath, NULL) < 0)
        fail_msg("%s", md_ctx_errmsg(f->ctx));
    assert_int_equal(get(f, "x")->size, 10);
    assert_int_equal(get(f, "y")->size, 6);
    /* ... or against base_dir when given */
    assert_int_equal(md_tree_add_spec(f->tree, specpath, "/nonexistent-base"), -ENOENT);
    assert_errmsg_contains(f, "list.spec:1: file location '/nonexistent-base/data'");
    /* a spec named relative to the cwd */
    assert_int_equal(chdir(f->dir), 0);
    assert_int_equal(md_tree_add_spec(f->tree, "sub/list.spec", NULL), 0);
    assert_non_null(strstr(get(f, "x")->host_path, "sub/data"));
    assert_int_equal(chdir(cwd), 0);
    /* absolute locations are used as they are */
    abs = md_asprintf("file /z %s/hello.txt 0644 0 0\n", f->dir);
    assert_int_equal(md_tree_add_spec_buf(f->tree, abs, strlen(abs), "mem", NULL), 0);
    free(abs);
    /* without any base, a relative location is an error (no cwd dependence) */
    assert_int_equal(md_tree_add_spec_buf(f->tree, "file /z hello.txt 0644 0 0", 26, "mem", NULL),
                     -EINVAL);
    assert_errmsg(f, "mem:1: relative file location 'hello.txt' needs a base directory");
    /* a missing spec */
    free(specpath);
    specpath = md_asprintf("%s/none.spec", f->dir);
    assert_int_equal(md_tree_add_spec(f->tree, specpath, NULL), -ENOENT);
    assert_errmsg_contains(f, "none.spec");
    free(specpath);
    /* a binary file is not a spec */
    specpath = md_asprintf("%s/bin.spec", f->dir);
    fd = open(specpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(md_write_full(fd, "dir /a 0755 0 0\n\0\1\2", 19), 0);
    close(fd);
    assert_int_equal(md_tree_add_spec(f->tree, specpath, NULL), -EINVAL);
    assert_errmsg_contains(f, "bin.spec:2: NUL byte");
    free(specpath);
}

static void test_kernel_default_list(void **state)
{
    struct fx *f = *state;
    /* usr/default_cpio_list of linux 6.1 */
    const char *text = "# SPDX-License-Identifier: GPL-2.0-only\n"
                       "# This is a very simple, default initramfs\n"
                       "\n"
                       "dir /dev 0755 0 0\n"
                       "nod /dev/console 0600 0 0 c 5 1\n"
                       "dir /root 0700 0 0\n";
    assert_int_equal(spec(f, text), 0);
    assert_int_equal(md_tree_count(f->tree), 3);
    assert_int_equal(get(f, "dev/console")->mode, S_IFCHR | 0600);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void expect_error(struct fx *f, const char *text, int err, const char *msg)
{
    size_t before = md_tree_count(f->tree);
    int r = spec(f, text);

    if (r != err)
        fail_msg("'%s': got %d (%s), want %d", text, r, md_ctx_errmsg(f->ctx), err);
    if (strcmp(md_ctx_errmsg(f->ctx), msg))
        fail_msg("'%s': message '%s', want '%s'", text, md_ctx_errmsg(f->ctx), msg);
    (void)before;
}

static void test_errors(void **state)
{
    struct fx *f = *state;
    char *msg;

    expect_error(f, "dir /a 0755 0 0\n\nfiel /x hello.txt 0644 0 0\n", -EINVAL,
                 "test.spec:3: unknown type 'fiel' (expected file, dir, nod, slink, pipe or sock)");
    /* the lines before the bad one were added */
    assert_int_equal(md_tree_contains(f->tree, "a"), 1);
    expect_error(f, "dir /a 9x9 0 0", -EINVAL,
                 "test.spec:1: bad mode '9x9' (expected octal, e.g. 0755)");
    expect_error(f, "dir /a 0758 0 0", -EINVAL,
                 "test.spec:1: bad mode '0758' (expected octal, e.g. 0755)");
    expect_error(f, "dir /a 017777 0 0", -EINVAL,
                 "test.spec:1: bad mode '017777' (permission bits 0..07777 expected)");
    expect_error(f, "file /a hello.txt 040755 0 0", -EINVAL,
                 "test.spec:1: bad mode '040755' (permission bits 0..07777 expected)");
    expect_error(f, "dir /a 0755 0", -EINVAL,
                 "test.spec:1: missing field: 'dir <name> <mode> <uid> <gid>' needs 4 fields, got 3");
    expect_error(f, "file /a hello.txt 0644 0", -EINVAL,
                 "test.spec:1: missing field: 'file <name> <location> <mode> <uid> <gid> "
                 "[<hard links>...]' needs at least 5 fields, got 4");
    expect_error(f, "nod /dev/x 0600 0 0 c 5", -EINVAL,
                 "test.spec:1: missing field: 'nod <name> <mode> <uid> <gid> <dev_type> <maj> <min>' "
                 "needs 7 fields, got 6");
    expect_error(f, "slink /l", -EINVAL,
                 "test.spec:1: missing field: 'slink <name> <target> <mode> <uid> <gid>' needs 5 "
                 "fields, got 1");
    expect_error(f, "pipe /p 0600 0 0 extra", -EINVAL,
                 "test.spec:1: unexpected extra field 'extra': 'pipe <name> <mode> <uid> <gid>' "
                 "takes 4 fields");
    expect_error(f, "dir /a 0755 abc 0", -EINVAL,
                 "test.spec:1: bad uid 'abc' (expected a decimal number 0..4294967295)");
    expect_error(f, "dir /a 0755 0 -1", -EINVAL,
                 "test.spec:1: bad gid '-1' (expected a decimal number 0..4294967295)");
    expect_error(f, "dir /a 0755 4294967296 0", -EINVAL,
                 "test.spec:1: bad uid '4294967296' (expected a decimal number 0..4294967295)");
    expect_error(f, "nod /dev/x 0600 0 0 x 5 1", -EINVAL,
                 "test.spec:1: bad device type 'x' (expected b or c)");
    expect_error(f, "nod /dev/x 0600 0 0 c five 1", -EINVAL,
                 "test.spec:1: bad major number 'five' (expected a decimal number 0..4294967295)");
    expect_error(f, "nod /dev/x 0600 0 0 c 4096 1", -EINVAL,
                 "test.spec:1: '/dev/x': device number 4096:1 out of range");
    expect_error(f, "\n\ndir /a/../../etc 0755 0 0", -EINVAL,
                 "test.spec:3: '/a/../../etc': path escapes the root with '..'");
    expect_error(f, "file /x hello.txt 0644 0 0 ../../escape", -EINVAL,
                 "test.spec:1: '../../escape': path escapes the root with '..'");
    msg = md_asprintf("test.spec:1: file location '%s/missing.bin': No such file or directory",
                      f->dir);
    expect_error(f, "file /x missing.bin 0644 0 0", -ENOENT, msg);
    free(msg);
    msg = md_asprintf("test.spec:1: file location '%s/sub': not a regular file", f->dir);
    expect_error(f, "file /x sub 0644 0 0", -EISDIR, msg);
    free(msg);
    /* conflicts with the tree model carry the line too */
    expect_error(f, "dir /q 0755 0 0\nfile /q/f hello.txt 0644 0 0\nfile /q hello.txt 0644 0 0",
                 -EEXIST, "test.spec:3: 'q': is a directory in the tree; cannot replace it");
    expect_error(f, "slink /sl x 0777 0 0\ndir /sl/d 0755 0 0", -ENOTDIR,
                 "test.spec:2: 'sl/d': parent 'sl' is not a directory in the tree");
}

/* Pseudo-random lines from templates whose fields are mostly valid: never a
 * crash, every failure has a message with the spec name and line number. */
static unsigned rnd(unsigned *seed, unsigned n)
{
    *seed = *seed * 1103515245 + 12345;
    return (*seed >> 16) % n;
}

static void test_random_lines(void **state)
{
    static const char *const tmpl[] = {
        "dir N M I I", "file N L M I I", "file N L M I I N N", "nod N M I I D U U",
        "slink N T M I I", "pipe N M I I", "sock N M I I", "# comment", "fiel N M I I",
    };
    static const char *const names[] = {
        "/a", "/a/b", "/a/b/c", "b", "/c/d", "/dev/x", "/", "a/../b", "..", "/a//b/", "/a/./c",
    };
    static const char *const locs[] = {
        "hello.txt", "sub/data", "${MD_RANDOM}/data", "nothere", "sub", "${MD_UNSET_X}", "/dev/null",
    };
    static const char *const modes[] = { "0755", "644", "0", "1777", "07777", "9x9", "0100644", "" };
    static const char *const ids[] = { "0", "1000", "4294967295", "-1", "x", "4294967296" };
    static const char *const dts[] = { "c", "b", "x" };
    static const char *const nums[] = { "1", "5", "4095", "4096", "abc" };
    static const char *const targets[] = { "busybox", "/bin/sh", "../x", "a" };
    struct fx *f = *state;
    unsigned seed = 12345;
    int i, ok = 0;

    setenv("MD_RANDOM", "sub", 1);
    unsetenv("MD_UNSET_X");
    for (i = 0; i < 3000; i++) {
        const char *t = tmpl[rnd(&seed, sizeof(tmpl) / sizeof(tmpl[0]))];
        char line[1024] = "";
        const char *p;
        int r;

        for (p = t; *p; p++) {
            const char *v = NULL;
            char c[2] = { *p, 0 };
#define PICK(a) a[rnd(&seed, sizeof(a) / sizeof(a[0]))]
            switch (*p) {
            case 'N': v = PICK(names); break;
            case 'L': v = PICK(locs); break;
            case 'M': v = rnd(&seed, 4) ? "0755" : PICK(modes); break;
            case 'I': v = rnd(&seed, 4) ? "0" : PICK(ids); break;
            case 'D': v = PICK(dts); break;
            case 'U': v = PICK(nums); break;
            case 'T': v = PICK(targets); break;
            case ' ': v = rnd(&seed, 2) ? " " : "\t"; break;
            default: v = c; break;
            }
#undef PICK
            if (strlen(line) + strlen(v) < sizeof(line) - 8)
                strcat(line, v);
        }
        if (rnd(&seed, 10) == 0)
            strcat(line, " extra");
        strcat(line, "\n");
        md_ctx_clear_error(f->ctx);
        r = spec(f, line);
        if (r < 0 && !strstr(md_ctx_errmsg(f->ctx), "test.spec:1: "))
            fail_msg("'%s' -> %d without a line number: '%s'", line, r, md_ctx_errmsg(f->ctx));
        assert_true(r <= 0);
        ok += r == 0;
    }
    /* a mix of accepted and refused lines, and a tree that can be written */
    if (ok < 300 || ok > 2700)
        fail_msg("%d of 3000 random lines accepted", ok);
    assert_true(md_tree_count(f->tree) > 3);
    assert_int_equal(md_tree_finalize(f->tree), 0);
    unsetenv("MD_RANDOM");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_all_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kernel_default_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_lines, setup, teardown),
    };
    unsetenv("MD_DEBUG");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
