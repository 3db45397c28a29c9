/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the BusyBox source (md-tree-busybox.c). */
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
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

/* internal, in md-tree-busybox.c */
int md_busybox_list(md_ctx *ctx, const char *path, int timeout_ms, char **out, size_t *out_size);

#define BUSYBOX "/bin/busybox"

struct fx {
    md_ctx *ctx;
    md_tree *tree;
    char *dir;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(md_ctx_new(&f->ctx), 0);
    assert_int_equal(md_ctx_set_epoch(f->ctx, 1234567890), 0);
    assert_int_equal(md_tree_new(f->ctx, &f->tree), 0);
    f->dir = strdup("/tmp/md-test-busybox.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(chmod(f->dir, 0755), 0);
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

/* A fake "busybox": a shell script (returns its path, malloc'ed). */
static char *script(struct fx *f, const char *name, const char *body, mode_t mode)
{
    char *p = md_asprintf("%s/%s", f->dir, name);
    char *text = md_asprintf("#!/bin/sh\n%s", body);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(md_write_full(fd, text, strlen(text)), 0);
    close(fd);
    assert_int_equal(chmod(p, mode), 0);
    free(text);
    return p;
}

static struct md_entry *get(struct fx *f, const char *path)
{
    return md_tree_lookup(f->tree, path);
}

static void assert_errmsg_contains(struct fx *f, const char *needle)
{
    const char *msg = md_ctx_errmsg(f->ctx);
    if (!strstr(msg, needle))
        fail_msg("error message '%s' does not contain '%s'", msg, needle);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)))
        n++;
    closedir(d);
    return n;
}

static void test_real_busybox(void **state)
{
    struct fx *f = *state;
    struct md_entry *e;
    size_t n_applets = 0, n_links = 0, i;
    char line[4096];
    FILE *p;
    int fds;

    md_test_need_file(BUSYBOX, X_OK, "busybox-static");
    fds = count_fds();
    if (md_tree_add_busybox(f->tree, BUSYBOX, NULL) < 0)
        fail_msg("%s", md_ctx_errmsg(f->ctx));
    assert_int_equal(count_fds(), fds); /* no descriptor leaked */
    assert_int_equal(md_tree_finalize(f->tree), 0);

    /* every applet the binary lists (asked independently here) is a link */
    p = popen(BUSYBOX " --list-full", "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = '\0';
        n_applets++;
        e = get(f, line);
        if (!e)
            fail_msg("applet '%s' missing", line);
        if (!strcmp(line, "bin/busybox"))
            continue;
        assert_int_equal(e->mode, S_IFLNK | 0777);
        assert_string_equal(e->link, "/bin/busybox");
        assert_int_equal(e->uid, 0);
    }
    assert_int_equal(pclose(p), 0);
    assert_true(n_applets > 50);
    for (i = 0; i < f->tree->n; i++)
        if (S_ISLNK(f->tree->v[i]->mode))
            n_links++;
    assert_int_equal(n_links, n_applets - 1);  /* bin/busybox itself is the file */

    e = get(f, "bin/busybox");
    assert_int_equal(e->mode, S_IFREG | 0755);
    assert_int_equal(e->uid, 0);
    assert_int_equal(e->gid, 0);
    assert_int_equal(e->src, MD_SRC_HOST);
    assert_string_equal(e->host_path, BUSYBOX);
    assert_string_equal(get(f, "bin/sh")->link, "/bin/busybox");
    assert_int_equal(get(f, "tmp")->mode, S_IFDIR | 01777);
    assert_int_equal(get(f, "root")->mode, S_IFDIR | 0700);
    assert_int_equal(get(f, "etc")->mode, S_IFDIR | 0755);
    assert_int_equal(get(f, "proc")->mode & S_IFMT, S_IFDIR);
    assert_int_equal(get(f, "sys")->mode & S_IFMT, S_IFDIR);
    assert_int_equal(get(f, "usr/sbin")->mode, S_IFDIR | 0755);
    e = get(f, "dev/console");
    assert_int_equal(e->mode, S_IFCHR | 0600);
    assert_int_equal(e->rmajor, 5);
    assert_int_equal(e->rminor, 1);
    e = get(f, "dev/null");
    assert_int_equal(e->mode, S_IFCHR | 0666);
    assert_int_equal(e->rmajor, 1);
    assert_int_equal(e->rminor, 3);
    e = get(f, "etc/passwd");
    assert_int_equal(e->mode, S_IFREG | 0644);
    assert_memory_equal(e->buf, "root:x:0:0:", 11);
    assert_non_null(get(f, "etc/group"));
    e = get(f, "init");
    assert_int_equal(e->mode, S_IFREG | 0755);
    assert_int_equal(e->src, MD_SRC_BUF);
    assert_memory_equal(e->buf, "#!/bin/sh\n", 10);
    {
        char *text = strndup(e->buf, e->size);
        assert_non_null(strstr(text, "mount -t devtmpfs"));
        assert_non_null(strstr(text, "libminidistro: booted"));
        assert_non_null(strstr(text, "setsid cttyhack sh"));
        free(text);
    }
    assert_int_equal(e->mtime, 1234567890);
}

static void test_real_busybox_is_deterministic(void **state)
{
    struct fx *f = *state;
    md_tree *t2;
    size_t i;

    md_test_need_file(BUSYBOX, X_OK, "busybox-static");
    assert_int_equal(md_tree_add_busybox(f->tree, BUSYBOX, NULL), 0);
    assert_int_equal(md_tree_new(f->ctx, &t2), 0);
    assert_int_equal(md_tree_add_busybox(t2, BUSYBOX, NULL), 0);
    assert_int_equal(md_tree_finalize(f->tree), 0);
    assert_int_equal(md_tree_finalize(t2), 0);
    assert_int_equal(f->tree->n, t2->n);
    for (i = 0; i < t2->n; i++) {
        assert_string_equal(f->tree->v[i]->path, t2->v[i]->path);
        assert_int_equal(f->tree->v[i]->mode, t2->v[i]->mode);
        assert_int_equal(f->tree->v[i]->ino, t2->v[i]->ino);
    }
    md_tree_free(t2);
}

static void test_options(void **state)
{
    struct fx *f = *state;
    md_busybox_opts o;
    char *init, *missing;
    md_attr a = MD_ATTR_INIT;

    md_test_need_file(BUSYBOX, X_OK, "busybox-static");
    md_busybox_opts_init(&o);
    assert_int_equal(o.version, MD_BUSYBOX_OPTS_VERSION);
    assert_int_equal(o.flags, 0);
    assert_null(o.init_path);

    /* existing dirs and files are kept */
    a.mode = 0750;
    assert_int_equal(md_tree_add_dir(f->tree, "tmp", &a), 0);
    assert_int_equal(md_tree_add_data(f->tree, "etc/passwd", "me:x:1:1::/:/bin/sh\n", 20, NULL), 0);

    o.flags = MD_BUSYBOX_NO_INIT;
    assert_int_equal(md_tree_add_busybox(f->tree, BUSYBOX, &o), 0);
    assert_int_equal(md_tree_contains(f->tree, "init"), 0);
    assert_int_equal(get(f, "tmp")->mode, S_IFDIR | 0750);
    assert_int_equal(get(f, "etc/passwd")->size, 20);

    init = script(f, "my-init", "echo custom\n", 0644);
    o.flags = 0;
    o.init_path = init;
    assert_int_equal(md_tree_add_busybox(f->tree, BUSYBOX, &o), 0);
    assert_int_equal(get(f, "init")->mode, S_IFREG | 0755);
    assert_int_equal(get(f, "init")->src, MD_SRC_HOST);
    assert_string_equal(get(f, "init")->host_path, init);

    /* a missing init is reported before anything is added */
    md_tree_free(f->tree);
    assert_int_equal(md_tree_new(f->ctx, &f->tree), 0);
    missing = md_asprintf("%s/no-init", f->dir);
    o.init_path = missing;
    assert_int_equal(md_tree_add_busybox(f->tree, BUSYBOX, &o), -ENOENT);
    assert_errmsg_contains(f, missing);
    assert_int_equal(md_tree_count(f->tree), 0);
    free(missing);
    free(init);

    o.version = 7;
    assert_int_equal(md_tree_add_busybox(f->tree, BUSYBOX, &o), -EINVAL);
    md_busybox_opts_init(&o);
    o.flags = 0x80;
    assert_int_equal(md_tree_add_busybox(f->tree, BUSYBOX, &o), -EINVAL);
    assert_errmsg_contains(f, "flags");
    assert_int_equal(md_tree_count(f->tree), 0);
}

static void expect_not_busybox(struct fx *f, const char *path, int err, const char *msg)
{
    char *want = md_asprintf("%s: %s", path, msg);
    int r = md_tree_add_busybox(f->tree, path, NULL);

    if (r != err)
        fail_msg("%s: got %d (%s), want %d", path, r, md_ctx_errmsg(f->ctx), err);
    if (!strstr(md_ctx_errmsg(f->ctx), want))
        fail_msg("%s: message '%s' lacks '%s'", path, md_ctx_errmsg(f->ctx), want);
    assert_int_equal(md_tree_count(f->tree), 0);
    free(want);
}

static void test_errors(void **state)
{
    struct fx *f = *state;
    char *p;
    int fds = count_fds();

    p = md_asprintf("%s/nothere", f->dir);
    expect_not_busybox(f, p, -ENOENT, "No such file or directory");
    free(p);
    expect_not_busybox(f, f->dir, -ENOEXEC, "not a BusyBox binary (not a regular file)");
    p = script(f, "noexec", "exit 0\n", 0644);
    expect_not_busybox(f, p, -ENOEXEC, "not a BusyBox binary (not executable)");
    free(p);
    expect_not_busybox(f, "/bin/true", -ENOEXEC, "not a BusyBox binary ('--list-full' listed no applets)");
    expect_not_busybox(f, "/bin/false", -ENOEXEC, "not a BusyBox binary ('--list-full' failed)");
    p = script(f, "usage", "echo 'usage: foo [options]'\n", 0755);
    expect_not_busybox(f, p, -ENOEXEC, "not a BusyBox binary (unexpected '--list-full' output on line 1)");
    free(p);
    p = script(f, "escape", "echo bin/sh; echo ../../etc/x\n", 0755);
    expect_not_busybox(f, p, -ENOEXEC, "not a BusyBox binary (bad applet path '../../etc/x'");
    free(p);
    p = script(f, "chatty", "exec yes usr/bin/x\n", 0755);
    expect_not_busybox(f, p, -ENOEXEC, "not a BusyBox binary ('--list-full' printed over");
    free(p);
    /* a file that is executable but not a program the kernel can run */
    p = md_asprintf("%s/garbage", f->dir);
    {
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0755);
        assert_int_equal(md_write_full(fd, "\x7f" "ELF garbage", 12), 0);
        close(fd);
    }
    expect_not_busybox(f, p, -ENOEXEC, "not a BusyBox binary (cannot be executed here)");
    free(p);
    /* a BusyBox without sh cannot run the built-in /init */
    p = script(f, "nosh", "printf 'bin/busybox\\nusr/bin/foo\\nlinuxrc\\n'\n", 0755);
    expect_not_busybox(f, p, -EINVAL, "BusyBox has no 'sh' applet");
    {
        md_busybox_opts o = MD_BUSYBOX_OPTS_INIT;
        o.flags = MD_BUSYBOX_NO_INIT;
        assert_int_equal(md_tree_add_busybox(f->tree, p, &o), 0);
        assert_string_equal(get(f, "usr/bin/foo")->link, "/bin/busybox");
        assert_string_equal(get(f, "linuxrc")->link, "/bin/busybox");
        assert_int_equal(get(f, "bin/busybox")->mode, S_IFREG | 0755);
        assert_string_equal(get(f, "bin/busybox")->host_path, p);
    }
    free(p);
    assert_int_equal(count_fds(), fds);
}

static void test_list_timeout(void **state)
{
    struct fx *f = *state;
    char *p = script(f, "hang", "exec sleep 30\n", 0755), *out = NULL;
    struct timespec t0, t1;
    size_t size;
    double secs;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(md_busybox_list(f->ctx, p, 300, &out, &size), -ENOEXEC);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs < 10.0);
    assert_null(out);
    assert_errmsg_contains(f, "did not finish");
    free(p);

    /* the output is returned as printed; stderr and stdin are not ours */
    p = script(f, "ok", "echo bin/sh; echo noise >&2; cat; echo usr/bin/[\n", 0755);
    assert_int_equal(md_busybox_list(f->ctx, p, 10000, &out, &size), 0);
    assert_string_equal(out, "bin/sh\nusr/bin/[\n");
    assert_int_equal(size, 17);
    free(out);
    free(p);
}

/* Whether process @pid still runs (a zombie no longer does). */
static bool running(pid_t pid)
{
    char path[64], buf[256], *rp;
    FILE *fp;
    bool r = false;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fp = fopen(path, "r");
    if (!fp)
        return false;
    if (fgets(buf, sizeof(buf), fp) && (rp = strrchr(buf, ')')) && rp[1] == ' ')
        r = rp[2] != 'Z' && rp[2] != 'X';
    fclose(fp);
    return r;
}

/* The pid a script wrote to @file, once it is there (0 if never). */
static pid_t read_pid(const char *file)
{
    int i;

    for (i = 0; i < 100; i++) {
        FILE *fp = fopen(file, "r");
        int v = 0;
        if (fp) {
            if (fscanf(fp, "%d", &v) != 1)
                v = 0;
            fclose(fp);
        }
        if (v > 0)
            return (pid_t)v;
        usleep(20000);
    }
    return 0;
}

static bool gone_soon(pid_t pid)
{
    int i;

    for (i = 0; i < 200 && running(pid); i++)
        usleep(10000);
    return !running(pid);
}

/* Issue 11 item 14: the probe's whole process group is killed, on a timeout
 * and after it exits, so a script's `sleep` does not outlive it. */
static void test_list_kills_group(void **state)
{
    struct fx *f = *state;
    char *pidfile = md_asprintf("%s/pid", f->dir), *body, *p, *out = NULL;
    size_t size;
    pid_t pid;

    body = md_asprintf("sleep 30 & echo $! >%s\nwait\n", pidfile);
    p = script(f, "hang-child", body, 0755);
    assert_int_equal(md_busybox_list(f->ctx, p, 300, &out, &size), -ENOEXEC);
    assert_errmsg_contains(f, "did not finish");
    pid = read_pid(pidfile);
    assert_true(pid > 0);
    if (!gone_soon(pid)) {
        kill(pid, SIGKILL);
        fail_msg("the probe's child %d outlived the timeout", (int)pid);
    }
    free(body);
    free(p);

    /* exits at once, with a child that closed its stdout and sleeps on */
    unlink(pidfile);
    body = md_asprintf("sleep 30 >/dev/null & echo $! >%s\necho bin/sh\n", pidfile);
    p = script(f, "leaves-child", body, 0755);
    assert_int_equal(md_busybox_list(f->ctx, p, 10000, &out, &size), 0);
    assert_string_equal(out, "bin/sh\n");
    free(out);
    pid = read_pid(pidfile);
    assert_true(pid > 0);
    if (!gone_soon(pid)) {
        kill(pid, SIGKILL);
        fail_msg("the probe's child %d outlived the probe", (int)pid);
    }
    free(body);
    free(p);
    free(pidfile);
}

/* Issue 11 item 16: a copy of busybox under another name is run as "busybox". */
static void test_renamed_busybox(void **state)
{
    struct fx *f = *state;
    char *bb;

    md_test_need_file(BUSYBOX, X_OK, "busybox-static");
    bb = md_asprintf("%s/bb", f->dir);
    assert_int_equal(md_test_run("cp -L %s '%s'", BUSYBOX, bb), 0);
    if (md_tree_add_busybox(f->tree, bb, NULL) < 0)
        fail_msg("%s", md_ctx_errmsg(f->ctx));
    assert_string_equal(get(f, "bin/busybox")->host_path, bb);
    assert_string_equal(get(f, "bin/sh")->link, "/bin/busybox");
    free(bb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_real_busybox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_busybox_is_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renamed_busybox, setup, teardown),
    };
    unsetenv("MD_DEBUG");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
