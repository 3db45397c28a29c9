/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the entry model (md-tree.c) and the host source (md-tree-host.c). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>

#include "md-internal.h"
#include "test-util.h"

#define EPOCH 1700000000

static md_ctx *new_ctx(void)
{
    md_ctx *ctx = NULL;
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_set_epoch(ctx, EPOCH), 0);
    return ctx;
}

static md_tree *new_tree(md_ctx *ctx)
{
    md_tree *t = NULL;
    assert_int_equal(md_tree_new(ctx, &t), 0);
    return t;
}

static struct md_entry *get(md_tree *t, const char *path)
{
    return md_tree_lookup(t, path);
}

/* The contents of regular entry @e, as a sink reads them (the tree is
 * finalised first: the spool is flushed then).  Freed by the caller. */
static char *data_of(md_tree *t, const struct md_entry *e)
{
    struct md_data d;
    char *buf;

    assert_int_equal(md_tree_finalize(t), 0);
    assert_int_equal(md_data_open(t, t->ctx, e, &d), 0);
    buf = malloc(d.size + 1);
    assert_non_null(buf);
    assert_int_equal(md_data_read(&d, buf, d.size, 0), 0);
    buf[d.size] = '\0';
    md_data_close(&d);
    return buf;
}

static void assert_data(md_tree *t, const struct md_entry *e, const char *want, size_t n)
{
    char *got = data_of(t, e);
    assert_memory_equal(got, want, n);
    free(got);
}

static void assert_errmsg_contains(md_ctx *ctx, const char *needle)
{
    const char *msg = md_ctx_errmsg(ctx);
    if (!strstr(msg, needle))
        fail_msg("error message '%s' does not contain '%s'", msg, needle);
}

static md_attr mkattr(uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime)
{
    md_attr a = MD_ATTR_INIT;
    a.mode = mode;
    a.uid = uid;
    a.gid = gid;
    a.mtime = mtime;
    return a;
}

/* ---- temporary directories ----------------------------------------------- */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    (void)flag;
    return remove(path);
}

static char *mktmp(void)
{
    char *d = strdup("/tmp/md-test-tree.XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static void rmtree(char *d)
{
    nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(d);
}

static void write_file(const char *dir, const char *name, const char *content, mode_t mode)
{
    char *p = md_asprintf("%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(md_write_full(fd, content, strlen(content)), 0);
    close(fd);
    assert_int_equal(chmod(p, mode), 0);
    free(p);
}

/* ---- path normalisation ----------------------------------------------------- */

static void norm_ok(md_ctx *ctx, const char *in, const char *want)
{
    char *out = NULL;
    int r = md_path_normalize(ctx, in, &out);
    if (r < 0)
        fail_msg("normalising '%s' failed: %s", in, md_ctx_errmsg(ctx));
    assert_string_equal(out, want);
    free(out);
}

static void norm_bad(md_ctx *ctx, const char *in)
{
    char *out = NULL;
    assert_int_equal(md_path_normalize(ctx, in, &out), -EINVAL);
    assert_null(out);
}

static void test_normalize(void **state)
{
    md_ctx *ctx = new_ctx();
    char comp[300], path[5000];
    size_t i;
    (void)state;

    norm_ok(ctx, "/bin//sh/", "bin/sh");
    norm_ok(ctx, "./a/./b/.", "a/b");
    norm_ok(ctx, "////a", "a");
    norm_ok(ctx, "a/b", "a/b");
    norm_ok(ctx, "/", "");
    norm_ok(ctx, ".", "");
    norm_ok(ctx, "...", "...");
    norm_ok(ctx, "a/..b/c..", "a/..b/c..");
    norm_bad(ctx, "");
    assert_errmsg_contains(ctx, "empty");
    norm_bad(ctx, "..");
    assert_errmsg_contains(ctx, "'..'");
    norm_bad(ctx, "a/../b");
    assert_errmsg_contains(ctx, "a/../b");
    norm_bad(ctx, "/a/b/..");
    assert_int_equal(md_path_normalize(ctx, NULL, (char **)path), -EINVAL);

    /* 255-byte components are fine, 256 are not */
    memset(comp, 'x', 255);
    comp[255] = '\0';
    norm_ok(ctx, comp, comp);
    memset(comp, 'x', 256);
    comp[256] = '\0';
    norm_bad(ctx, comp);
    assert_errmsg_contains(ctx, "255");

    /* 4095-byte paths are fine, 4096 are not */
    memset(path, 'p', sizeof(path));
    for (i = 200; i < 4095; i += 201)
        path[i] = '/';
    path[4095] = '\0';
    norm_ok(ctx, path, path);
    path[4095] = 'q';
    path[4096] = '\0';
    norm_bad(ctx, path);
    assert_errmsg_contains(ctx, "4095");
    /* the limit applies to the normalised name: "./" prefixes do not count */
    {
        char *longer = md_asprintf("././././%.*s", 4095, path);
        char *out = NULL;
        assert_int_equal(md_path_normalize(ctx, longer, &out), 0);
        assert_int_equal(strlen(out), 4095);
        free(out);
        free(longer);
    }
    md_ctx_free(ctx);
}

static void test_add_paths(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    (void)state;

    /* the root always exists; "/" and "." give it attributes (not an entry) */
    assert_int_equal(t->root_set, 0);
    assert_int_equal(t->root.mode, S_IFDIR | 0755);
    assert_int_equal(md_tree_add_dir(t, "/", NULL), 0);
    {
        md_attr a = MD_ATTR_INIT;
        a.mode = 0750;
        a.uid = 3;
        assert_int_equal(md_tree_add_dir(t, ".", &a), 0);
        assert_int_equal(t->root.mode, S_IFDIR | 0750);
        assert_int_equal(t->root.uid, 3);
        assert_int_equal(t->root_set, 1);
        assert_int_equal(md_tree_set_xattr(t, "/", "user.r", "v", 1), 0);
        assert_int_equal(t->root.n_xattrs, 1);
        assert_int_equal(md_tree_remove(t, "/"), -EINVAL);
    }
    assert_int_equal(md_tree_count(t), 0);
    assert_int_equal(md_tree_contains(t, "/"), 1);
    /* but not for other types */
    assert_int_equal(md_tree_add_data(t, "/", "x", 1, NULL), -EINVAL);
    assert_errmsg_contains(ctx, "root");
    assert_int_equal(md_tree_add_data(t, "", "x", 1, NULL), -EINVAL);
    assert_int_equal(md_tree_add_symlink(t, "../evil", "x", NULL), -EINVAL);
    assert_errmsg_contains(ctx, "../evil");
    assert_int_equal(md_tree_count(t), 0);

    assert_int_equal(md_tree_add_data(t, "//etc///hostname/", "h\n", 2, NULL), 0);
    assert_int_equal(md_tree_contains(t, "etc/hostname"), 1);
    assert_int_equal(md_tree_contains(t, "/etc/./hostname"), 1);
    assert_int_equal(md_tree_contains(t, "etc/nope"), 0);
    assert_int_equal(md_tree_contains(t, "../etc"), -EINVAL);
    assert_int_equal(md_tree_count(t), 2);
    md_tree_free(t);
    md_tree_free(NULL);
    md_ctx_free(ctx);
}

/* ---- replace / overlay semantics ------------------------------------------------ */

static void test_replace(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    md_attr a = mkattr(0700, 5, 6, 100);
    struct md_entry *e;
    (void)state;

    assert_int_equal(md_tree_add_data(t, "a", "one", 3, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "a", "second", 6, &a), 0);
    assert_int_equal(md_tree_count(t), 1);
    e = get(t, "a");
    assert_non_null(e);
    assert_int_equal(e->size, 6);
    assert_memory_equal(e->buf, "second", 6);
    assert_int_equal(e->mode, S_IFREG | 0700);
    assert_int_equal(e->uid, 5);
    assert_int_equal(e->gid, 6);
    /* a file replaced by a symlink changes type */
    assert_int_equal(md_tree_add_symlink(t, "a", "target", NULL), 0);
    e = get(t, "a");
    assert_int_equal(e->mode, S_IFLNK | 0777);
    assert_string_equal(e->link, "target");
    assert_int_equal(e->size, 6);
    assert_null(e->buf);
    assert_int_equal(md_tree_count(t), 1);

    /* a directory over a directory keeps the children, takes the attributes */
    assert_int_equal(md_tree_add_dir(t, "d", NULL), 0);
    assert_int_equal(md_tree_add_data(t, "d/f", "x", 1, NULL), 0);
    assert_int_equal(md_tree_add_dir(t, "d", &a), 0);
    e = get(t, "d");
    assert_int_equal(e->mode, S_IFDIR | 0700);
    assert_int_equal(e->uid, 5);
    assert_int_equal(md_tree_contains(t, "d/f"), 1);
    assert_int_equal(md_tree_count(t), 3);

    /* a file over a directory is refused, and the directory stays */
    assert_int_equal(md_tree_add_data(t, "d", "x", 1, NULL), -EEXIST);
    assert_errmsg_contains(ctx, "'d'");
    assert_int_equal(md_tree_add_symlink(t, "/d/", "x", NULL), -EEXIST);
    assert_true(S_ISDIR(get(t, "d")->mode));
    assert_int_equal(md_tree_contains(t, "d/f"), 1);

    /* a directory over a file replaces it */
    assert_int_equal(md_tree_add_dir(t, "a", NULL), 0);
    assert_true(S_ISDIR(get(t, "a")->mode));
    assert_int_equal(md_tree_count(t), 3);
    md_tree_free(t);
    md_ctx_free(ctx);
}

static void test_implicit_parents(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    md_attr a = mkattr(0600, 7, 8, 12345);
    struct md_entry *e;
    (void)state;

    assert_int_equal(md_tree_add_data(t, "a/b/c/f", "x", 1, &a), 0);
    assert_int_equal(md_tree_count(t), 4);
    e = get(t, "a/b");
    assert_non_null(e);
    assert_int_equal(e->mode, S_IFDIR | 0755);
    assert_int_equal(e->uid, 0);
    assert_int_equal(e->gid, 0);
    assert_int_equal(e->mtime, EPOCH);
    e = get(t, "a/b/c/f");
    assert_int_equal(e->mtime, 12345);
    assert_int_equal(e->uid, 7);

    /* a parent that is not a directory */
    assert_int_equal(md_tree_add_data(t, "x", "x", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "x/y", "y", 1, NULL), -ENOTDIR);
    assert_errmsg_contains(ctx, "'x'");
    assert_int_equal(md_tree_contains(t, "x/y"), 0);
    assert_true(S_ISREG(get(t, "x")->mode));
    md_tree_free(t);
    md_ctx_free(ctx);
}

static void test_defaults(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    md_attr a;
    (void)state;

    md_attr_init(&a);
    assert_int_equal(a.version, MD_ATTR_VERSION);
    assert_int_equal(a.mtime, MD_MTIME_DEFAULT);
    assert_int_equal(md_tree_add_dir(t, "d", NULL), 0);
    assert_int_equal(md_tree_add_data(t, "f", NULL, 0, NULL), 0);
    assert_int_equal(md_tree_add_symlink(t, "l", "f", NULL), 0);
    assert_int_equal(md_tree_add_node(t, "n", MD_NODE_CHR, 1, 3, NULL), 0);
    assert_int_equal(md_tree_add_node(t, "b", MD_NODE_BLK, 8, 1, NULL), 0);
    assert_int_equal(md_tree_add_node(t, "p", MD_NODE_FIFO, 0, 0, NULL), 0);
    assert_int_equal(md_tree_add_node(t, "s", MD_NODE_SOCK, 0, 0, NULL), 0);
    assert_int_equal(get(t, "d")->mode, S_IFDIR | 0755);
    assert_int_equal(get(t, "f")->mode, S_IFREG | 0644);
    assert_int_equal(get(t, "f")->size, 0);
    assert_int_equal(get(t, "f")->src, MD_SRC_NONE);
    assert_int_equal(get(t, "l")->mode, S_IFLNK | 0777);
    assert_int_equal(get(t, "n")->mode, S_IFCHR | 0600);
    assert_int_equal(get(t, "n")->rmajor, 1);
    assert_int_equal(get(t, "n")->rminor, 3);
    assert_int_equal(get(t, "b")->mode, S_IFBLK | 0600);
    assert_int_equal(get(t, "p")->mode, S_IFIFO | 0600);
    assert_int_equal(get(t, "s")->mode, S_IFSOCK | 0600);
    /* bad arguments */
    assert_int_equal(md_tree_add_node(t, "z", 99, 0, 0, NULL), -EINVAL);
    assert_int_equal(md_tree_add_node(t, "z", MD_NODE_CHR, 0x1000, 0, NULL), -EINVAL);
    assert_int_equal(md_tree_add_symlink(t, "z", "", NULL), -EINVAL);
    a.version = 99;
    assert_int_equal(md_tree_add_dir(t, "z", &a), -EINVAL);
    assert_errmsg_contains(ctx, "version");
    assert_int_equal(md_tree_contains(t, "z"), 0);
    md_tree_free(t);
    md_ctx_free(ctx);
}

/* ---- remove --------------------------------------------------------------------------- */

static void test_remove(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    (void)state;

    assert_int_equal(md_tree_add_data(t, "a/b/c/f", "x", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "a/b2", "x", 1, NULL), 0);
    assert_int_equal(md_tree_add_data(t, "a/bb", "x", 1, NULL), 0);
    assert_int_equal(md_tree_count(t), 6);
    assert_int_equal(md_tree_remove(t, "/a/b/"), 0);
    assert_int_equal(md_tree_count(t), 3);
    assert_int_equal(md_tree_contains(t, "a/b"), 0);
    assert_int_equal(md_tree_contains(t, "a/b/c/f"), 0);
    /* siblings sharing the prefix stay */
    assert_int_equal(md_tree_contains(t, "a/b2"), 1);
    assert_int_equal(md_tree_contains(t, "a/bb"), 1);
    assert_int_equal(md_tree_remove(t, "a/b"), -ENOENT);
    assert_errmsg_contains(ctx, "a/b");
    /* re-adding a removed path works, with fresh attributes */
    assert_int_equal(md_tree_add_symlink(t, "a/b", "b2", NULL), 0);
    assert_true(S_ISLNK(get(t, "a/b")->mode));
    assert_int_equal(md_tree_count(t), 4);

    /* a file with hard links elsewhere cannot be removed */
    assert_int_equal(md_tree_add_hardlink(t, "hl", "a/bb"), 0);
    assert_int_equal(md_tree_remove(t, "a"), -EBUSY);
    assert_errmsg_contains(ctx, "hl");
    assert_int_equal(md_tree_count(t), 5);
    assert_int_equal(md_tree_remove(t, "hl"), 0);
    assert_int_equal(md_tree_remove(t, "a"), 0);
    assert_int_equal(md_tree_count(t), 0);
    assert_int_equal(md_tree_finalize(t), 0);
    assert_int_equal(t->n, 0);
    md_tree_free(t);
    md_ctx_free(ctx);
}

/* ---- hard links ------------------------------------------------------------------------- */

static void test_hardlinks(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    md_attr a = mkattr(0640, 3, 4, 1000);
    struct md_entry *f, *g, *h;
    (void)state;

    assert_int_equal(md_tree_add_data(t, "f", "data", 4, &a), 0);
    assert_int_equal(md_tree_add_hardlink(t, "g", "f"), 0);
    assert_int_equal(md_tree_add_hardlink(t, "a/h", "/g"), 0);  /* link to a link */
    assert_int_equal(md_tree_add_data(t, "other", "o", 1, NULL), 0);
    /* linking a file to itself or within its group changes nothing */
    assert_int_equal(md_tree_add_hardlink(t, "f", "f"), 0);
    assert_int_equal(md_tree_add_hardlink(t, "f", "g"), 0);
    assert_int_equal(get(t, "f")->size, 4);
    assert_memory_equal(get(t, "f")->buf, "data", 4);
    /* errors */
    assert_int_equal(md_tree_add_hardlink(t, "x", "missing"), -ENOENT);
    assert_errmsg_contains(ctx, "missing");
    assert_int_equal(md_tree_add_hardlink(t, "x", "a"), -EPERM);
    assert_int_equal(md_tree_contains(t, "x"), 0);

    assert_int_equal(md_tree_finalize(t), 0);
    f = get(t, "f");
    g = get(t, "g");
    h = get(t, "a/h");
    assert_ptr_equal(g->master, f);
    assert_ptr_equal(h->master, f);
    assert_ptr_equal(md_entry_data(h), f);
    assert_int_equal(f->nlink, 3);
    assert_int_equal(g->nlink, 3);
    assert_int_equal(h->nlink, 3);
    assert_int_equal(f->ino, g->ino);
    assert_int_equal(f->ino, h->ino);
    assert_int_not_equal(get(t, "other")->ino, f->ino);
    assert_int_equal(get(t, "other")->nlink, 1);
    /* attributes come from the master */
    assert_int_equal(g->mode, S_IFREG | 0640);
    assert_int_equal(h->uid, 3);
    assert_int_equal(h->gid, 4);
    assert_int_equal(h->mtime, 1000);
    assert_int_equal(h->size, 4);
    /* sorted order a/h < f < g: the data goes with the last one, g */
    assert_false(h->last_link);
    assert_false(f->last_link);
    assert_true(g->last_link);
    assert_true(get(t, "other")->last_link);

    /* replacing a link with a plain file takes it out of the group */
    assert_int_equal(md_tree_add_data(t, "g", "new", 3, NULL), 0);
    assert_int_equal(md_tree_finalize(t), 0);
    assert_null(get(t, "g")->master);
    assert_int_equal(f->nlink, 2);
    assert_true(f->last_link);
    assert_false(h->last_link);

    /* replacing the master with a new file (unlink + create, as tar does):
     * the other name keeps the old contents and attributes */
    assert_int_equal(md_tree_add_data(t, "f", "fresh", 5, NULL), 0);
    assert_int_equal(md_tree_finalize(t), 0);
    h = get(t, "a/h");
    f = get(t, "f");
    assert_null(f->master);
    assert_null(h->master);
    assert_int_equal(f->size, 5);
    assert_int_equal(f->nlink, 1);
    assert_int_equal(h->size, 4);
    assert_int_equal(h->nlink, 1);
    assert_int_equal(h->mode, S_IFREG | 0640);
    assert_int_equal(h->uid, 3);
    assert_memory_equal(md_entry_data(h)->buf, "data", 4);
    assert_memory_equal(md_entry_data(f)->buf, "fresh", 5);
    /* a group of three: the first remaining link inherits, the third follows it */
    assert_int_equal(md_tree_add_hardlink(t, "k1", "f"), 0);
    assert_int_equal(md_tree_add_hardlink(t, "k2", "k1"), 0);
    assert_int_equal(md_tree_add_symlink(t, "f", "x", NULL), 0);
    assert_int_equal(md_tree_finalize(t), 0);
    assert_null(get(t, "k1")->master);
    assert_ptr_equal(get(t, "k2")->master, get(t, "k1"));
    assert_int_equal(get(t, "k2")->nlink, 2);
    assert_int_equal(get(t, "k1")->ino, get(t, "k2")->ino);
    assert_memory_equal(md_entry_data(get(t, "k2"))->buf, "fresh", 5);
    md_tree_free(t);
    md_ctx_free(ctx);
}

/* ---- finalize: order, inodes, link counts --------------------------------------------- */

static const char *const order_paths[] = {
    "b/z", "a-b", "a/b", "a0", "B", "a", "b/a/x", "\xc3\xa9", "a/b/c",
};

static md_tree *build_order(md_ctx *ctx, bool reverse)
{
    md_tree *t = new_tree(ctx);
    size_t n = sizeof(order_paths) / sizeof(order_paths[0]), i;

    for (i = 0; i < n; i++) {
        const char *p = order_paths[reverse ? n - 1 - i : i];
        if (!strcmp(p, "a") || !strcmp(p, "a/b") || !strcmp(p, "b/a"))
            assert_int_equal(md_tree_add_dir(t, p, NULL), 0);
        else if (!strcmp(p, "a/b/c"))
            assert_int_equal(md_tree_add_dir(t, p, NULL), 0);
        else
            assert_int_equal(md_tree_add_data(t, p, p, strlen(p), NULL), 0);
    }
    assert_int_equal(md_tree_finalize(t), 0);
    assert_int_equal(md_tree_finalize(t), 0); /* idempotent */
    return t;
}

static void test_finalize_order(void **state)
{
    static const char *const want[] = {
        "B", "a", "a-b", "a/b", "a/b/c", "a0", "b", "b/a", "b/a/x", "b/z", "\xc3\xa9",
    };
    md_ctx *ctx = new_ctx();
    md_tree *t1 = build_order(ctx, false), *t2 = build_order(ctx, true);
    size_t i;
    (void)state;

    assert_int_equal(t1->n, sizeof(want) / sizeof(want[0]));
    assert_int_equal(t2->n, t1->n);
    for (i = 0; i < t1->n; i++) {
        assert_string_equal(t1->v[i]->path, want[i]);
        assert_string_equal(t2->v[i]->path, want[i]);
        /* inode numbers follow the sorted order, whatever the insertion order
         * (the root is 1) */
        assert_int_equal(t1->v[i]->ino, i + 2);
        assert_int_equal(t2->v[i]->ino, i + 2);
    }
    assert_int_equal(t1->root.ino, 1);
    /* directory link counts: 2 + subdirectories */
    assert_int_equal(get(t1, "a")->nlink, 3);
    assert_int_equal(get(t1, "a/b")->nlink, 3);
    assert_int_equal(get(t1, "a/b/c")->nlink, 2);
    assert_int_equal(get(t1, "b")->nlink, 3);
    /* a later change re-sorts */
    assert_int_equal(md_tree_add_data(t1, "A", "", 0, NULL), 0);
    assert_int_equal(md_tree_finalize(t1), 0);
    assert_string_equal(t1->v[0]->path, "A");
    assert_int_equal(get(t1, "B")->ino, 3);
    /* the root: 2 + its subdirectories a and b */
    assert_int_equal(t1->root.nlink, 4);
    md_tree_free(t1);
    md_tree_free(t2);
    md_ctx_free(ctx);
}

static void test_mtime_clamp(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t;
    md_attr a = MD_ATTR_INIT;
    (void)state;

    assert_int_equal(md_ctx_set_epoch(ctx, 1000), 0);
    t = new_tree(ctx);
    a.mtime = 500;
    assert_int_equal(md_tree_add_data(t, "old", "", 0, &a), 0);
    a.mtime = 2000;
    assert_int_equal(md_tree_add_data(t, "future", "", 0, &a), 0);
    a.mtime = 0;
    assert_int_equal(md_tree_add_data(t, "zero", "", 0, &a), 0);
    assert_int_equal(md_tree_add_data(t, "d/default", "", 0, NULL), 0);
    assert_int_equal(get(t, "old")->mtime, 500);
    assert_int_equal(get(t, "future")->mtime, 1000);
    assert_int_equal(get(t, "zero")->mtime, 0);
    assert_int_equal(get(t, "d/default")->mtime, 1000);
    assert_int_equal(get(t, "d")->mtime, 1000);
    md_tree_free(t);
    md_ctx_free(ctx);
}

static void test_xattr(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    struct md_entry *e;
    (void)state;

    assert_int_equal(md_tree_add_data(t, "f", "x", 1, NULL), 0);
    assert_int_equal(md_tree_add_hardlink(t, "g", "f"), 0);
    assert_int_equal(md_tree_set_xattr(t, "f", "user.a", "1", 1), 0);
    assert_int_equal(md_tree_set_xattr(t, "g", "security.b", "22", 2), 0); /* goes to f */
    assert_int_equal(md_tree_set_xattr(t, "f", "user.a", "333", 3), 0);   /* replaces */
    assert_int_equal(md_tree_set_xattr(t, "f", "system.x", "1", 1), -EINVAL);
    assert_int_equal(md_tree_set_xattr(t, "nope", "user.a", "1", 1), -ENOENT);
    e = get(t, "f");
    assert_int_equal(e->n_xattrs, 2);
    assert_string_equal(e->xattrs[0].name, "user.a");
    assert_int_equal(e->xattrs[0].size, 3);
    assert_memory_equal(e->xattrs[0].value, "333", 3);
    assert_string_equal(e->xattrs[1].name, "security.b");
    assert_int_equal(get(t, "g")->n_xattrs, 0);
    md_tree_free(t);
    md_ctx_free(ctx);
}

/* ---- host source ------------------------------------------------------------------------- */

static char *make_host_tree(void)
{
    char *d = mktmp(), *p;
    struct timespec ts[2] = { { 100000, 0 }, { 100000, 0 } };

    write_file(d, "f", "hello\n", 0640);
    write_file(d, "x", "#!/bin/sh\n", 04755);
    p = md_asprintf("%s/sub", d);
    assert_int_equal(mkdir(p, 0700), 0);
    free(p);
    write_file(d, "sub/inner", "inner\n", 0604);
    p = md_asprintf("%s/f", d);
    {
        char *l = md_asprintf("%s/sub/f-link", d);
        assert_int_equal(link(p, l), 0);
        free(l);
    }
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    free(p);
    p = md_asprintf("%s/l", d);
    assert_int_equal(symlink("f", p), 0);
    free(p);
    p = md_asprintf("%s/dangling", d);
    assert_int_equal(symlink("/nonexistent/target", p), 0);
    free(p);
    p = md_asprintf("%s/dirlink", d);
    assert_int_equal(symlink("sub", p), 0);
    free(p);
    p = md_asprintf("%s/fifo", d);
    assert_int_equal(mkfifo(p, 0620), 0);
    assert_int_equal(chmod(p, 0620), 0);
    free(p);
    p = md_asprintf("%s/zero", d);
    assert_int_equal(mkfifo(p, 0), 0);
    free(p);
    return d;
}

static void test_host_basic(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = make_host_tree();
    struct md_entry *e;
    (void)state;

    if (md_tree_add_host(t, d, NULL) < 0)
        fail_msg("md_tree_add_host: %s", md_ctx_errmsg(ctx));
    assert_int_equal(md_tree_count(t), 10);
    assert_int_equal(md_tree_finalize(t), 0);
    /* permission bits from the host, owners squashed, mtime = epoch */
    e = get(t, "f");
    assert_int_equal(e->mode, S_IFREG | 0640);
    assert_int_equal(e->uid, 0);
    assert_int_equal(e->gid, 0);
    assert_int_equal(e->mtime, EPOCH);
    assert_int_equal(e->size, 6);
    assert_int_equal(e->src, MD_SRC_HOST);
    assert_int_equal(get(t, "x")->mode, S_IFREG | 04755);
    assert_int_equal(get(t, "zero")->mode, S_IFIFO | 0000);
    assert_int_equal(get(t, "sub")->mode, S_IFDIR | 0700);
    assert_int_equal(get(t, "sub/inner")->mode, S_IFREG | 0604);
    assert_int_equal(get(t, "fifo")->mode, S_IFIFO | 0620);
    /* symlinks are stored, not followed */
    e = get(t, "l");
    assert_int_equal(e->mode, S_IFLNK | 0777);
    assert_string_equal(e->link, "f");
    assert_string_equal(get(t, "dangling")->link, "/nonexistent/target");
    assert_true(S_ISLNK(get(t, "dirlink")->mode));
    assert_int_equal(md_tree_contains(t, "dirlink/inner"), 0);
    /* hard links inside the tree become a group; sorted walk: f is first */
    e = get(t, "sub/f-link");
    assert_ptr_equal(e->master, get(t, "f"));
    assert_int_equal(e->nlink, 2);
    assert_int_equal(e->ino, get(t, "f")->ino);
    /* the root directory itself is not an entry */
    assert_int_equal(md_tree_contains(t, "sub"), 1);
    md_tree_free(t);
    rmtree(d);
    md_ctx_free(ctx);
}

static void test_host_options(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = make_host_tree();
    md_host_opts o;
    struct md_entry *e;
    (void)state;

    md_host_opts_init(&o);
    assert_int_equal(o.version, MD_HOST_OPTS_VERSION);
    o.flags = MD_HOST_KEEP_OWNER | MD_HOST_KEEP_MTIME | MD_HOST_NO_HARDLINKS;
    o.prefix = "/opt//app/";
    assert_int_equal(chmod(d, 0750), 0);
    if (md_tree_add_host(t, d, &o) < 0)
        fail_msg("md_tree_add_host: %s", md_ctx_errmsg(ctx));
    /* the directory's own mode goes to the prefix; parents are created */
    assert_int_equal(get(t, "opt/app")->mode, S_IFDIR | 0750);
    assert_int_equal(get(t, "opt")->mode, S_IFDIR | 0755);
    e = get(t, "opt/app/f");
    assert_non_null(e);
    assert_int_equal(e->uid, getuid());
    assert_int_equal(e->gid, getgid());
    assert_int_equal(e->mtime, 100000);  /* kept: older than the epoch */
    /* a new file's mtime (now) is later than the epoch: clamped */
    assert_int_equal(get(t, "opt/app/x")->mtime, EPOCH);
    assert_null(get(t, "opt/app/sub/f-link")->master);
    assert_int_equal(get(t, "opt/app/sub/f-link")->src, MD_SRC_HOST);
    md_tree_free(t);

    /* the same tree twice: the second replaces the first, no duplicates */
    t = new_tree(ctx);
    assert_int_equal(md_tree_add_host(t, d, NULL), 0);
    assert_int_equal(md_tree_add_host(t, d, NULL), 0);
    assert_int_equal(md_tree_count(t), 10);
    assert_int_equal(md_tree_finalize(t), 0);
    assert_int_equal(get(t, "f")->nlink, 2);
    /* bad options version */
    o.version = 0;
    assert_int_equal(md_tree_add_host(t, d, &o), -EINVAL);
    md_tree_free(t);
    rmtree(d);
    md_ctx_free(ctx);
}

static void test_host_xattrs(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp(), *p;
    md_host_opts o = MD_HOST_OPTS_INIT;
    struct md_entry *e;
    (void)state;

    write_file(d, "f", "x", 0644);
    p = md_asprintf("%s/f", d);
    if (setxattr(p, "user.md-test", "value", 5, 0) < 0) {
        free(p);
        md_tree_free(t);
        rmtree(d);
        md_ctx_free(ctx);
        md_test_skip_env("no user xattrs on this /tmp (tmpfs without user_xattr, ...)");
    }
    free(p);
    assert_int_equal(md_tree_add_host(t, d, &o), 0);
    assert_int_equal(get(t, "f")->n_xattrs, 0); /* off by default */
    o.flags = MD_HOST_XATTRS;
    assert_int_equal(md_tree_add_host(t, d, &o), 0);
    e = get(t, "f");
    assert_int_equal(e->n_xattrs, 1);
    assert_string_equal(e->xattrs[0].name, "user.md-test");
    assert_int_equal(e->xattrs[0].size, 5);
    assert_memory_equal(e->xattrs[0].value, "value", 5);
    md_tree_free(t);
    rmtree(d);
    md_ctx_free(ctx);
}

static void test_host_socket(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp();
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    (void)state;

    assert_true(fd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", d);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(md_tree_add_host(t, d, NULL), 0);
    assert_true(S_ISSOCK(get(t, "sock")->mode));
    close(fd);
    md_tree_free(t);
    rmtree(d);
    md_ctx_free(ctx);
}

static void test_host_errors(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp(), *p;
    (void)state;

    p = md_asprintf("%s/missing", d);
    assert_int_equal(md_tree_add_host(t, p, NULL), -ENOENT);
    assert_errmsg_contains(ctx, p);
    free(p);
    write_file(d, "file", "x", 0644);
    p = md_asprintf("%s/file", d);
    assert_int_equal(md_tree_add_host(t, p, NULL), -ENOTDIR);
    assert_errmsg_contains(ctx, p);
    assert_int_equal(md_tree_add_file(t, "x", d, NULL), -EISDIR);
    assert_errmsg_contains(ctx, d);
    free(p);
    p = md_asprintf("%s/nope", d);
    assert_int_equal(md_tree_add_file(t, "x", p, NULL), -ENOENT);
    assert_errmsg_contains(ctx, p);
    free(p);
    assert_int_equal(md_tree_count(t), 0);

    if (geteuid() != 0) {
        /* unreadable directory and file (root reads everything) */
        p = md_asprintf("%s/closed", d);
        assert_int_equal(mkdir(p, 0700), 0);
        assert_int_equal(chmod(p, 0), 0);
        assert_int_equal(md_tree_add_host(t, d, NULL), -EACCES);
        assert_errmsg_contains(ctx, p);
        assert_int_equal(chmod(p, 0700), 0);
        free(p);
        write_file(d, "secret", "x", 0000);
        p = md_asprintf("%s/secret", d);
        assert_int_equal(md_tree_add_file(t, "s", p, NULL), -EACCES);
        assert_errmsg_contains(ctx, p);
        /* found while walking a tree, too */
        assert_int_equal(md_tree_add_host(t, d, NULL), -EACCES);
        assert_errmsg_contains(ctx, p);
        free(p);
    }
    md_tree_free(t);
    rmtree(d);
    md_ctx_free(ctx);
}

/* Nothing below the walked directory is followed: openat2's RESOLVE_* rules
 * and the per-component fallback refuse a symlink at any level (and ".."),
 * a walked file is read below the directory walked (a directory swapped for
 * a symlink to a hard link of the same file is refused, though the file is
 * the one the walk saw), the named directory itself may be a symlink, a
 * tree deeper than the walk keeps descriptors for is walked whole, and a
 * FIFO named as an archive or a spec is refused, not opened. */
static void test_host_no_follow(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp(), *p, *q, *deep;
    int dfd, fd, i, k;
    size_t len;
    (void)state;

    p = md_asprintf("%s/tree/a/b", d);
    assert_int_equal(system((q = md_asprintf("mkdir -p '%s'", p))), 0);
    free(q);
    free(p);
    write_file(d, "tree/a/b/f", "data\n", 0644);
    p = md_asprintf("%s/tree/a/lnk", d);
    assert_int_equal(symlink("b", p), 0);
    free(p);
    p = md_asprintf("%s/tree/a/b/flink", d);
    assert_int_equal(symlink("f", p), 0);
    free(p);
    p = md_asprintf("%s/tree", d);
    dfd = open(p, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    free(p);
    for (k = 0; k < 2; k++) {
        int (*op)(int, const char *, int) = k ? md_openat_components : md_openat_beneath;
        fd = op(dfd, "a/b/f", O_RDONLY);
        assert_true(fd >= 0);
        close(fd);
        fd = op(dfd, "a/b", O_RDONLY | O_DIRECTORY);
        assert_true(fd >= 0);
        close(fd);
        fd = op(dfd, "a/lnk/f", O_RDONLY);
        assert_true(fd == -ELOOP || fd == -ENOTDIR);
        assert_int_equal(op(dfd, "a/b/flink", O_RDONLY), -ELOOP);
        assert_int_equal(op(dfd, "../tree/a/b/f", O_RDONLY), -EXDEV);
        assert_int_equal(op(dfd, "a/b/none", O_RDONLY), -ENOENT);
    }
    close(dfd);

    /* the named directory may be a symlink; what is below it is read below it */
    p = md_asprintf("%s/tree-link", d);
    assert_int_equal(symlink("tree", p), 0);
    assert_int_equal(md_tree_add_host(t, p, NULL), 0);
    free(p);
    assert_data(t, get(t, "a/b/f"), "data\n", 5);
    /* a/b swapped for a symlink to a directory holding a hard link of f */
    p = md_asprintf("%s/other", d);
    assert_int_equal(mkdir(p, 0755), 0);
    q = md_asprintf("%s/other/f", d);
    free(p);
    p = md_asprintf("%s/tree/a/b/f", d);
    assert_int_equal(link(p, q), 0);
    free(p);
    free(q);
    p = md_asprintf("%s/tree/a/b", d);
    q = md_asprintf("%s/tree/a/b.away", d);
    assert_int_equal(rename(p, q), 0);
    free(q);
    q = md_asprintf("%s/other", d);
    assert_int_equal(symlink(q, p), 0);
    free(q);
    {
        struct md_data dd;
        assert_int_equal(md_tree_finalize(t), 0);
        assert_int_equal(md_data_open(t, t->ctx, get(t, "a/b/f"), &dd), -ESTALE);
        assert_errmsg_contains(ctx, "tree-link/a/b/f");
    }
    free(p);
    md_tree_free(t);

    /* 300 levels, each with a directory and then a file: more directories
     * with something left to visit than the walk keeps open */
    deep = md_asprintf("%s/deep", d);
    assert_int_equal(mkdir(deep, 0755), 0);
    dfd = open(deep, O_RDONLY | O_DIRECTORY);
    for (i = 0; i < 300; i++) {
        assert_int_equal(mkdirat(dfd, "d", 0755), 0);
        fd = openat(dfd, "z", O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        assert_int_equal(dprintf(fd, "%d\n", i), i < 10 ? 2 : i < 100 ? 3 : 4);
        close(fd);
        fd = openat(dfd, "d", O_RDONLY | O_DIRECTORY);
        close(dfd);
        dfd = fd;
    }
    close(dfd);
    t = new_tree(ctx);
    if (md_tree_add_host(t, deep, NULL) < 0)
        fail_msg("md_tree_add_host: %s", md_ctx_errmsg(ctx));
    assert_int_equal(md_tree_count(t), 600);
    p = malloc(300 * 2 + 2);
    assert_non_null(p);
    for (len = 0, i = 0; i < 299; i++, len += 2)
        memcpy(p + len, "d/", 2);
    memcpy(p + len, "z", 2);
    assert_data(t, get(t, p), "299\n", 4);
    assert_data(t, get(t, "d/z"), "1\n", 2);
    free(p);
    md_tree_free(t);
    free(deep);

    /* a FIFO as an archive or a spec: refused at once, not opened blocking */
    t = new_tree(ctx);
    p = md_asprintf("%s/fifo", d);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(md_tree_add_archive(t, p), -EINVAL);
    assert_errmsg_contains(ctx, "fifo: is a FIFO, not an archive");
    assert_int_equal(md_tree_add_spec(t, p, NULL), -EINVAL);
    assert_errmsg_contains(ctx, "fifo: is a FIFO, not a regular file");
    free(p);
    md_tree_free(t);
    rmtree(d);
    md_ctx_free(ctx);
}

/* ---- archive source ----------------------------------------------------------------------- */

/* A hand-written newc archive: independent of libarchive's and our writers. */
struct newc {
    char *buf;
    size_t len, cap;
};

static void newc_put(struct newc *n, const void *data, size_t size)
{
    if (n->len + size + 4 > n->cap) {
        n->cap = (n->len + size + 4) * 2;
        n->buf = realloc(n->buf, n->cap);
        assert_non_null(n->buf);
    }
    memcpy(n->buf + n->len, data, size);
    n->len += size;
    while (n->len % 4)
        n->buf[n->len++] = 0;
}

static void newc_add(struct newc *n, const char *name, unsigned mode, unsigned uid, unsigned gid,
                     unsigned nlink, unsigned mtime, unsigned ino, const char *data, unsigned size,
                     unsigned rmaj, unsigned rmin)
{
    char hdr[111];
    size_t nlen = strlen(name) + 1;
    char *nm = malloc(110 + nlen);

    snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino, mode,
             uid, gid, nlink, mtime, size, 3, 1, rmaj, rmin, (unsigned)nlen, 0);
    memcpy(nm, hdr, 110);
    memcpy(nm + 110, name, nlen);
    newc_put(n, nm, 110 + nlen);
    free(nm);
    if (size)
        newc_put(n, data, size);
}

static char *newc_finish(struct newc *n, const char *dir, const char *name)
{
    char *p = md_asprintf("%s/%s", dir, name);
    int fd;

    newc_add(n, "TRAILER!!!", 0, 0, 0, 1, 0, 0, NULL, 0, 0, 0);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(md_write_full(fd, n->buf, n->len), 0);
    close(fd);
    free(n->buf);
    memset(n, 0, sizeof(*n));
    return p;
}

/* Archive member names are relative to its root: an absolute one (made
 * against another machine's /) is refused, naming it; so is an absolute
 * hard-link target. */
static void test_archive_absolute(void **state)
{
    static const char *names[] = { "/etc/abs", "//twice" };
    md_ctx *ctx = new_ctx();
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        md_tree *t = new_tree(ctx);
        char *d = mktmp(), *a;
        struct newc n = { 0 };

        newc_add(&n, "ok", S_IFREG | 0644, 0, 0, 1, 10, 1, "x", 1, 0, 0);
        newc_add(&n, names[i], S_IFREG | 0644, 0, 0, 1, 10, 2, "y", 1, 0, 0);
        a = newc_finish(&n, d, "abs.cpio");
        assert_int_equal(md_tree_add_archive(t, a), -EINVAL);
        if (!strstr(md_ctx_errmsg(ctx), names[i]) || !strstr(md_ctx_errmsg(ctx), "absolute path"))
            fail_msg("the message does not name '%s' as absolute: %s", names[i], md_ctx_errmsg(ctx));
        md_tree_free(t);
        free(a);
        rmtree(d);
    }
    md_ctx_free(ctx);
}

static void test_archive_newc(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp(), *a;
    struct newc n = { 0 };
    struct md_entry *e;
    (void)state;

    newc_add(&n, ".", S_IFDIR | 0755, 0, 0, 2, 10, 1, NULL, 0, 0, 0);
    newc_add(&n, "d", S_IFDIR | 0750, 1, 2, 2, 20, 2, NULL, 0, 0, 0);
    /* a newc hard-link group: same ino, nlink 3, data on the last link */
    newc_add(&n, "d/a", S_IFREG | 0640, 5, 6, 3, 30, 3, NULL, 0, 0, 0);
    newc_add(&n, "d/b", S_IFREG | 0640, 5, 6, 3, 30, 3, NULL, 0, 0, 0);
    newc_add(&n, "abs/c", S_IFREG | 0640, 5, 6, 3, 30, 3, "linked", 6, 0, 0);
    newc_add(&n, "./plain", S_IFREG | 04711, 0, 0, 1, 2000000000, 4, "plain data", 10, 0, 0);
    newc_add(&n, "empty", S_IFREG | 0000, 0, 0, 1, 40, 5, NULL, 0, 0, 0);
    newc_add(&n, "sl", S_IFLNK | 0777, 0, 0, 1, 50, 6, "d/a", 3, 0, 0);
    newc_add(&n, "dev/console", S_IFCHR | 0600, 0, 0, 1, 60, 7, NULL, 0, 5, 1);
    newc_add(&n, "dev/sda1", S_IFBLK | 0660, 0, 6, 1, 60, 8, NULL, 0, 8, 1);
    newc_add(&n, "fifo", S_IFIFO | 0644, 0, 0, 1, 60, 9, NULL, 0, 0, 0);
    newc_add(&n, "sock", S_IFSOCK | 0755, 0, 0, 1, 60, 10, NULL, 0, 0, 0);
    a = newc_finish(&n, d, "a.cpio");

    if (md_tree_add_archive(t, a) < 0)
        fail_msg("%s", md_ctx_errmsg(ctx));
    assert_int_equal(md_tree_finalize(t), 0);
    assert_int_equal(md_tree_count(t), 13);   /* + implicit "abs" and "dev" */
    e = get(t, "d");
    assert_int_equal(e->mode, S_IFDIR | 0750);
    assert_int_equal(e->uid, 1);
    assert_int_equal(e->gid, 2);
    assert_int_equal(e->mtime, 20);
    e = get(t, "d/a");
    assert_int_equal(e->mode, S_IFREG | 0640);
    assert_int_equal(e->uid, 5);
    assert_int_equal(e->size, 6);
    assert_int_equal(e->nlink, 3);
    assert_int_equal(e->src, MD_SRC_SPOOL); /* not in memory */
    assert_data(t, e, "linked", 6);
    assert_ptr_equal(get(t, "d/b")->master, e);
    assert_ptr_equal(get(t, "abs/c")->master, e);
    assert_int_equal(get(t, "abs/c")->ino, e->ino);
    assert_int_equal(get(t, "abs")->mode, S_IFDIR | 0755);
    e = get(t, "plain");
    assert_int_equal(e->mode, S_IFREG | 04711);
    assert_int_equal(e->mtime, EPOCH); /* clamped */
    assert_data(t, e, "plain data", 10);
    e = get(t, "empty");
    assert_int_equal(e->mode, S_IFREG | 0000);
    assert_int_equal(e->size, 0);
    assert_int_equal(e->src, MD_SRC_NONE);
    assert_string_equal(get(t, "sl")->link, "d/a");
    e = get(t, "dev/console");
    assert_int_equal(e->mode, S_IFCHR | 0600);
    assert_int_equal(e->rmajor, 5);
    assert_int_equal(e->rminor, 1);
    e = get(t, "dev/sda1");
    assert_int_equal(e->mode, S_IFBLK | 0660);
    assert_int_equal(e->rmajor, 8);
    assert_int_equal(e->gid, 6);
    assert_int_equal(get(t, "fifo")->mode, S_IFIFO | 0644);
    assert_int_equal(get(t, "sock")->mode, S_IFSOCK | 0755);
    free(a);

    /* a name escaping with ".." is refused, naming the archive and entry */
    newc_add(&n, "ok", S_IFREG | 0644, 0, 0, 1, 0, 1, "x", 1, 0, 0);
    newc_add(&n, "a/../../evil", S_IFREG | 0644, 0, 0, 1, 0, 2, "x", 1, 0, 0);
    a = newc_finish(&n, d, "evil.cpio");
    assert_int_equal(md_tree_add_archive(t, a), -EINVAL);
    assert_errmsg_contains(ctx, a);
    assert_errmsg_contains(ctx, "a/../../evil");
    assert_errmsg_contains(ctx, "'..'");
    assert_int_equal(md_tree_contains(t, "evil"), 0);
    free(a);
    /* a non-directory named "." */
    newc_add(&n, ".", S_IFREG | 0644, 0, 0, 1, 0, 1, "x", 1, 0, 0);
    a = newc_finish(&n, d, "root.cpio");
    assert_int_equal(md_tree_add_archive(t, a), -EINVAL);
    assert_errmsg_contains(ctx, "names the root");
    free(a);

    md_tree_free(t);
    rmtree(d);
    md_ctx_free(ctx);
}

/* tar with the hard-link and xattr conventions of tar, written by libarchive,
 * compressed with xz; and the standard tools' lz4-legacy and gzip output. */
static void test_archive_tar_and_filters(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp(), *a = md_asprintf("%s/a.tar.xz", d);
    struct archive *w = archive_write_new();
    struct archive_entry *ae = archive_entry_new();
    struct md_entry *e;
    (void)state;

    assert_int_equal(archive_write_set_format_pax_restricted(w), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter_xz(w), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(w, a), ARCHIVE_OK);
    archive_entry_set_pathname(ae, "etc/motd");
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_uid(ae, 42);
    archive_entry_set_gid(ae, 43);
    archive_entry_set_mtime(ae, 77, 0);
    archive_entry_set_size(ae, 6);
    archive_entry_xattr_add_entry(ae, "user.note", "hi", 2);
    archive_entry_xattr_add_entry(ae, "system.posix_acl_access", "zz", 2);
    assert_int_equal(archive_write_header(w, ae), ARCHIVE_OK);
    assert_int_equal(archive_write_data(w, "hello\n", 6), 6);
    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, "etc/motd.hard");
    archive_entry_set_hardlink(ae, "etc/motd");
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_size(ae, 0);
    assert_int_equal(archive_write_header(w, ae), ARCHIVE_OK);
    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, "bin/sh");
    archive_entry_set_filetype(ae, AE_IFLNK);
    archive_entry_set_perm(ae, 0777);
    archive_entry_set_symlink(ae, "busybox");
    assert_int_equal(archive_write_header(w, ae), ARCHIVE_OK);
    archive_entry_free(ae);
    assert_int_equal(archive_write_close(w), ARCHIVE_OK);
    archive_write_free(w);

    if (md_tree_add_archive(t, a) < 0)
        fail_msg("%s", md_ctx_errmsg(ctx));
    assert_int_equal(md_tree_finalize(t), 0);
    e = get(t, "etc/motd");
    assert_int_equal(e->uid, 42);
    assert_int_equal(e->gid, 43);
    assert_int_equal(e->mtime, 77);
    assert_int_equal(e->nlink, 2);
    assert_data(t, e, "hello\n", 6);
    assert_int_equal(e->n_xattrs, 1); /* "zz" is not an ACL: skipped */
    assert_string_equal(e->xattrs[0].name, "user.note");
    assert_ptr_equal(get(t, "etc/motd.hard")->master, e);
    assert_string_equal(get(t, "bin/sh")->link, "busybox");
    md_tree_free(t);

    /* the same tree through the standard tools: lz4 legacy frames (what the
     * kernel reads), gzip, zstd */
    {
        static const char *const cmds[] = {
            "printf 'etc/motd\\n' | cpio --quiet -o -H newc | lz4 -l -q - t.lz4",
            "printf 'etc/motd\\n' | cpio --quiet -o -H newc | gzip -n > t.gz",
            "printf 'etc/motd\\n' | cpio --quiet -o -H newc | zstd -q > t.zst",
        };
        static const char *const outs[] = { "t.lz4", "t.gz", "t.zst" };
        size_t i;
        char *motd = md_asprintf("%s/etc", d);

        assert_int_equal(mkdir(motd, 0755), 0);
        free(motd);
        write_file(d, "etc/motd", "from the host\n", 0644);
        for (i = 0; i < 3; i++) {
            char *cmd = md_asprintf("cd '%s' && %s", d, cmds[i]), *out = md_asprintf("%s/%s", d, outs[i]);
            if (system(cmd) != 0) {
                print_message("'%s' failed (tool missing?): not checked\n", cmd);
            } else {
                t = new_tree(ctx);
                if (md_tree_add_archive(t, out) < 0)
                    fail_msg("%s: %s", out, md_ctx_errmsg(ctx));
                e = get(t, "etc/motd");
                assert_non_null(e);
                assert_int_equal(e->size, 14);
                assert_data(t, e, "from the host\n", 14);
                md_tree_free(t);
            }
            free(cmd);
            free(out);
        }
    }
    free(a);

    /* errors: missing, a directory, not an archive */
    t = new_tree(ctx);
    a = md_asprintf("%s/none.cpio", d);
    assert_int_equal(md_tree_add_archive(t, a), -ENOENT);
    assert_errmsg_contains(ctx, a);
    free(a);
    assert_int_equal(md_tree_add_archive(t, d), -EISDIR);
    write_file(d, "text", "this is not an archive, just some text that is long enough\n", 0644);
    a = md_asprintf("%s/text", d);
    assert_int_equal(md_tree_add_archive(t, a), -EINVAL);
    assert_errmsg_contains(ctx, a);
    free(a);
    /* a truncated archive */
    {
        struct newc n = { 0 };
        char big[4000];
        int fd;
        memset(big, 'z', sizeof(big));
        newc_add(&n, "big", S_IFREG | 0644, 0, 0, 1, 0, 1, big, sizeof(big), 0, 0);
        a = newc_finish(&n, d, "trunc.cpio");
        fd = open(a, O_WRONLY);
        assert_int_equal(ftruncate(fd, 1000), 0);
        close(fd);
        assert_int_equal(md_tree_add_archive(t, a), -EINVAL);
        assert_errmsg_contains(ctx, a);
        free(a);
    }
    /* an mtree manifest (a text file parses as one) would make libarchive
     * read host files: not accepted */
    write_file(d, "manifest", "#mtree\netc/passwd type=file\n", 0644);
    a = md_asprintf("%s/manifest", d);
    assert_int_equal(md_tree_add_archive(t, a), -EINVAL);
    free(a);
    /* an empty file is an empty archive */
    write_file(d, "empty", "", 0644);
    a = md_asprintf("%s/empty", d);
    assert_int_equal(md_tree_add_archive(t, a), 0);
    free(a);
    assert_int_equal(md_tree_count(t), 0);
    md_tree_free(t);
    rmtree(d);
    md_ctx_free(ctx);
}

/* Concatenated archives, as the kernel reads them: an uncompressed cpio
 * (early microcode style), NUL padding, then more archives. */
/* A member of write_tar(): a regular file (data, size), a directory
 * (AE_IFDIR) or a hard link to @link. */
struct member {
    const char *name;
    unsigned type;
    unsigned perm;
    const char *data;
    size_t size;
    const char *link;
};

/* Write @n members to @path with libarchive: pax (GNU with @gnu: long names
 * in extra header blocks), gzip-compressed with @gz. */
static void write_tar(const char *path, bool gnu, bool gz, const struct member *m, size_t n)
{
    struct archive *w = archive_write_new();
    struct archive_entry *ae = archive_entry_new();
    size_t i;

    assert_int_equal(gnu ? archive_write_set_format_gnutar(w) : archive_write_set_format_pax_restricted(w),
                     ARCHIVE_OK);
    if (gz)
        assert_int_equal(archive_write_add_filter_gzip(w), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(w, path), ARCHIVE_OK);
    for (i = 0; i < n; i++) {
        archive_entry_clear(ae);
        archive_entry_set_pathname(ae, m[i].name);
        archive_entry_set_filetype(ae, m[i].type ? m[i].type : AE_IFREG);
        archive_entry_set_perm(ae, m[i].perm);
        if (m[i].link)
            archive_entry_set_hardlink(ae, m[i].link);
        archive_entry_set_size(ae, (la_int64_t)m[i].size);
        assert_int_equal(archive_write_header(w, ae), ARCHIVE_OK);
        if (m[i].size)
            assert_int_equal(archive_write_data(w, m[i].data, m[i].size), (la_ssize_t)m[i].size);
    }
    archive_entry_free(ae);
    assert_int_equal(archive_write_close(w), ARCHIVE_OK);
    archive_write_free(w);
}

/* An archived file replaced by a later source while a hard link names it:
 * the link keeps the archived contents (it once took its size in bytes from
 * the start of the spool, another file's). */
static void test_archive_link_heir(void **state)
{
    static const char first[] = "FIRST-FILE-CONTENT\n", real[] = "the real a content\n";
    static const struct member m[] = {
        { "first", 0, 0644, first, sizeof(first) - 1, NULL },
        { "a", 0, 0644, real, sizeof(real) - 1, NULL },
        { "b", 0, 0644, NULL, 0, "a" },
    };
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp(), *a = md_asprintf("%s/l.tar", d);
    struct md_entry *e;
    (void)state;

    write_tar(a, false, false, m, 3);
    if (md_tree_add_archive(t, a) < 0)
        fail_msg("%s", md_ctx_errmsg(ctx));
    assert_int_equal(md_tree_add_data(t, "a", "over\n", 5, NULL), 0);
    assert_int_equal(md_tree_finalize(t), 0);
    assert_data(t, get(t, "a"), "over\n", 5);
    e = get(t, "b");
    assert_null(e->master);
    assert_int_equal(e->size, sizeof(real) - 1);
    assert_data(t, e, real, sizeof(real) - 1);
    md_tree_free(t);
    free(a);
    rmtree(d);
    md_ctx_free(ctx);
}

/* An uncompressed tar's members are read where they lie (no spool), a
 * compressed one's spooled, both giving the same bytes; a member over 4 KiB
 * (compared in part, then skipped) too.  The archive changed afterwards:
 * refused at write time (-ESTALE naming it), no output. */
static void test_archive_in_place(void **state)
{
    static const char *const long_name = "dir/a-name-longer-than-the-hundred-bytes-a-tar-header-"
                                         "holds-so-that-it-takes-an-extra-header-block.bin";
    md_ctx *ctx = new_ctx();
    char *d = mktmp(), *plain = md_asprintf("%s/p.tar", d), *gz = md_asprintf("%s/p.tar.gz", d);
    char *out = md_asprintf("%s/out.cpio", d), *big = malloc(100000);
    struct md_data md;
    size_t i;
    int k;
    (void)state;

    assert_non_null(big);
    for (i = 0; i < 100000; i++)
        big[i] = (char)('a' + i % 23);
    {
        /* a name over 100 bytes: GNU tar gives it a long-name header */
        const struct member m[] = {
            { "small", 0, 0644, "small\n", 6, NULL },
            { long_name, 0, 0644, big, 100000, NULL },
        };
        write_tar(plain, true, false, m, 2);
        write_tar(gz, true, true, m, 2);
    }
    for (k = 0; k < 2; k++) {
        md_tree *t = new_tree(ctx);
        struct md_entry *e;

        if (md_tree_add_archive(t, k ? gz : plain) < 0)
            fail_msg("%s", md_ctx_errmsg(ctx));
        assert_int_equal(md_tree_finalize(t), 0);
        /* in place: one archive referenced, nothing spooled */
        assert_int_equal(t->n_archives, k ? 0 : 1);
        assert_true(k ? t->spool_size == 100006 : t->spool_size == 0);
        assert_data(t, get(t, "small"), "small\n", 6);
        e = get(t, long_name);
        assert_int_equal(e->spool_src, k ? 0 : 1);
        assert_data(t, e, big, 100000);
        md_tree_free(t);
    }
    /* changed after it was read: refused when the contents are wanted */
    {
        md_tree *t = new_tree(ctx);
        int fd;

        assert_int_equal(md_tree_add_archive(t, plain), 0);
        assert_int_equal(md_tree_finalize(t), 0);
        fd = open(plain, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "x", 1), 1);
        close(fd);
        assert_int_equal(md_data_open(t, ctx, get(t, "small"), &md), -ESTALE);
        assert_errmsg_contains(ctx, "the archive changed while the image was being built");
        assert_errmsg_contains(ctx, plain);
        assert_int_equal(md_cpio_write(t, out, NULL), -ESTALE);
        /* the first member written (sorted), then the archive */
        assert_errmsg_contains(ctx, "extra-header-block.bin: ");
        assert_errmsg_contains(ctx, "p.tar: the archive changed while the image was being built");
        assert_int_equal(access(out, F_OK), -1);
        md_tree_free(t);
    }
    free(big);
    free(out);
    free(gz);
    free(plain);
    rmtree(d);
    md_ctx_free(ctx);
}

/* A walked file replaced by a file the caller names (mdimg --init, a spec's
 * "file", build --initrd over the rootfs's own): the new one is read, by its
 * own path (the replaced entry kept the walk's directory and offset into
 * the path, and opened a wrong suffix of the new path, or read past its end
 * when it was shorter than the walked directory's). */
static void test_walked_file_replaced(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp(), *walked = md_asprintf("%s/a-rather-long-directory-name-for-the-walk", d);
    char *other = md_asprintf("%s/o", d);
    (void)state;

    assert_int_equal(mkdir(walked, 0755), 0);
    write_file(walked, "init", "old\n", 0755);
    write_file(d, "o", "NEW\n", 0755);
    assert_int_equal(md_tree_add_host(t, walked, NULL), 0);
    if (md_tree_add_file(t, "init", other, NULL) < 0)
        fail_msg("%s", md_ctx_errmsg(ctx));
    assert_data(t, get(t, "init"), "NEW\n", 4);
    md_tree_free(t);
    free(other);
    free(walked);
    rmtree(d);
    md_ctx_free(ctx);
}

/* An archive's "./" of mode 0000 keeps it, as a spec's "dir / 0 0 0" and a
 * host DIR do (md_attr's mode 0 means "the default"). */
static void test_archive_root_mode_zero(void **state)
{
    static const struct member root = { "./", AE_IFDIR, 0, NULL, 0, NULL };
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp(), *a = md_asprintf("%s/r.tar", d);
    (void)state;

    write_tar(a, false, false, &root, 1);
    assert_int_equal(md_tree_add_archive(t, a), 0);
    assert_int_equal(md_tree_finalize(t), 0);
    assert_int_equal(t->root.mode, S_IFDIR | 0);
    md_tree_free(t);
    free(a);
    rmtree(d);
    md_ctx_free(ctx);
}

static void test_archive_concatenated(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp(), *a1, *a2, *a3, *cmd, *all;
    struct newc n = { 0 };
    (void)state;

    newc_add(&n, "kernel/x86/microcode/GenuineIntel.bin", S_IFREG | 0644, 0, 0, 1, 0, 1, "ucode", 5,
             0, 0);
    a1 = newc_finish(&n, d, "1.cpio");
    newc_add(&n, "second", S_IFREG | 0644, 0, 0, 1, 0, 1, "two", 3, 0, 0);
    a2 = newc_finish(&n, d, "2.cpio");
    newc_add(&n, "init", S_IFREG | 0755, 0, 0, 1, 0, 1, "#!/bin/sh\n", 10, 0, 0);
    newc_add(&n, "second", S_IFREG | 0600, 0, 0, 1, 0, 2, "2", 1, 0, 0);
    a3 = newc_finish(&n, d, "3.cpio");
    all = md_asprintf("%s/all", d);
    cmd = md_asprintf("cat '%s' '%s' > '%s' && head -c 1000 /dev/zero >> '%s' && gzip -nc '%s' >> '%s'",
                      a1, a2, all, all, a3, all);
    assert_int_equal(system(cmd), 0);
    if (md_tree_add_archive(t, all) < 0)
        fail_msg("%s", md_ctx_errmsg(ctx));
    assert_int_equal(md_tree_contains(t, "kernel/x86/microcode/GenuineIntel.bin"), 1);
    assert_int_equal(md_tree_contains(t, "init"), 1);
    /* later archives overlay earlier ones, as in the kernel */
    assert_int_equal(get(t, "second")->mode, S_IFREG | 0600);
    assert_int_equal(get(t, "second")->size, 1);
    free(cmd);
    /* garbage after the first archive is an error naming the offset */
    cmd = md_asprintf("cat '%s' > '%s' && echo garbage >> '%s'", a1, all, all);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(md_tree_add_archive(t, all), -EINVAL);
    {
        struct stat st;
        char *want;
        assert_int_equal(stat(a1, &st), 0);
        want = md_asprintf("at offset %lld: ", (long long)st.st_size);
        assert_errmsg_contains(ctx, want);
        free(want);
    }
    free(cmd);
    free(all);
    free(a1);
    free(a2);
    free(a3);
    md_tree_free(t);
    rmtree(d);
    md_ctx_free(ctx);
}

/* Damaged archives (bit flips, truncation, in a newc with every entry
 * type): an error with a message or a consistent tree, never a crash. */
static void test_archive_damaged(void **state)
{
    md_ctx *ctx = new_ctx();
    char *d = mktmp(), *a, *orig;
    struct newc n = { 0 };
    unsigned seed = 4242;
    size_t size;
    int i;
    (void)state;

    newc_add(&n, "d", S_IFDIR | 0755, 0, 0, 2, 20, 2, NULL, 0, 0, 0);
    newc_add(&n, "d/a", S_IFREG | 0640, 5, 6, 2, 30, 3, NULL, 0, 0, 0);
    newc_add(&n, "d/b", S_IFREG | 0640, 5, 6, 2, 30, 3, "linked", 6, 0, 0);
    newc_add(&n, "sl", S_IFLNK | 0777, 0, 0, 1, 50, 6, "d/a", 3, 0, 0);
    newc_add(&n, "dev/console", S_IFCHR | 0600, 0, 0, 1, 60, 7, NULL, 0, 5, 1);
    newc_add(&n, "fifo", S_IFIFO | 0644, 0, 0, 1, 60, 9, NULL, 0, 0, 0);
    a = newc_finish(&n, d, "good.cpio");
    assert_int_equal(md_read_file(ctx, a, &orig, &size), 0);
    for (i = 0; i < 400; i++) {
        char *copy = malloc(size);
        md_tree *t = new_tree(ctx);
        size_t len = size;
        int fd, k, r;

        memcpy(copy, orig, size);
        for (k = 0; k < 1 + i % 4; k++) {
            seed = seed * 1103515245 + 12345;
            copy[(seed >> 8) % size] ^= (char)(1u << ((seed >> 4) % 8));
        }
        if (i % 5 == 0) {
            seed = seed * 1103515245 + 12345;
            len = (seed >> 8) % size;
        }
        fd = open(a, O_WRONLY | O_TRUNC);
        assert_true(fd >= 0);
        assert_int_equal(md_write_full(fd, copy, len), 0);
        close(fd);
        md_ctx_clear_error(ctx);
        r = md_tree_add_archive(t, a);
        if (r < 0)
            assert_true(strlen(md_ctx_errmsg(ctx)) > 0);
        else
            (void)md_tree_finalize(t);
        md_tree_free(t);
        free(copy);
    }
    free(orig);
    free(a);
    rmtree(d);
    md_ctx_free(ctx);
}

/* Our writer -> our reader: every type and a hard-link group survive. */
static void test_archive_roundtrip(void **state)
{
    static const int32_t codecs[] = { MD_COMPRESS_NONE, MD_COMPRESS_GZIP, MD_COMPRESS_XZ,
                                      MD_COMPRESS_ZSTD, MD_COMPRESS_LZ4 };
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx), *back;
    char *d = mktmp(), *out = md_asprintf("%s/rt.cpio", d);
    md_attr a = mkattr(0640, 7, 8, 99);
    size_t i, k;
    (void)state;

    assert_int_equal(md_tree_add_data(t, "a/f", "contents", 8, &a), 0);
    assert_int_equal(md_tree_add_hardlink(t, "b/g", "a/f"), 0);
    assert_int_equal(md_tree_add_hardlink(t, "z", "a/f"), 0);
    assert_int_equal(md_tree_add_data(t, "e", NULL, 0, NULL), 0);
    assert_int_equal(md_tree_add_symlink(t, "l", "/a/f", NULL), 0);
    assert_int_equal(md_tree_add_node(t, "dev/null", MD_NODE_CHR, 1, 3, &a), 0);
    assert_int_equal(md_tree_add_node(t, "dev/loop0", MD_NODE_BLK, 7, 0, NULL), 0);
    assert_int_equal(md_tree_add_node(t, "p", MD_NODE_FIFO, 0, 0, NULL), 0);
    assert_int_equal(md_tree_add_node(t, "s", MD_NODE_SOCK, 0, 0, NULL), 0);
    a.mode = 01777;
    assert_int_equal(md_tree_add_dir(t, "tmp", &a), 0);
    assert_int_equal(md_tree_finalize(t), 0);

    for (k = 0; k < sizeof(codecs) / sizeof(codecs[0]); k++) {
        md_cpio_opts o = MD_CPIO_OPTS_INIT;
        o.compression = codecs[k];
        if (md_cpio_write(t, out, &o) < 0)
            fail_msg("write %s: %s", md_compress_name(codecs[k]), md_ctx_errmsg(ctx));
        back = new_tree(ctx);
        if (md_tree_add_archive(back, out) < 0)
            fail_msg("read %s: %s", md_compress_name(codecs[k]), md_ctx_errmsg(ctx));
        assert_int_equal(md_tree_finalize(back), 0);
        assert_int_equal(back->n, t->n);
        for (i = 0; i < t->n; i++) {
            const struct md_entry *x = t->v[i], *y = back->v[i];
            assert_string_equal(x->path, y->path);
            assert_int_equal(x->mode, y->mode);
            assert_int_equal(x->uid, y->uid);
            assert_int_equal(x->gid, y->gid);
            assert_int_equal(x->mtime, y->mtime);
            assert_int_equal(x->size, y->size);
            assert_int_equal(x->nlink, y->nlink);
            assert_int_equal(x->ino, y->ino);
            assert_int_equal(x->rmajor, y->rmajor);
            assert_int_equal(x->rminor, y->rminor);
            assert_int_equal(x->master != NULL, y->master != NULL);
            if (x->link)
                assert_string_equal(x->link, y->link);
            if (S_ISREG(x->mode) && x->size) {
                char *dx = data_of(t, x), *dy = data_of(back, y);
                assert_memory_equal(dx, dy, x->size);
                free(dx);
                free(dy);
            }
        }
        md_tree_free(back);
    }
    free(out);
    md_tree_free(t);
    rmtree(d);
    md_ctx_free(ctx);
}

/* md_tree_add_source(): a DIR or an archive by what the path is, the other
 * kinds by name; a FIFO is refused without being opened (it would block). */
static void test_add_source(void **state)
{
    md_ctx *ctx = new_ctx();
    md_tree *t = new_tree(ctx);
    char *d = mktmp(), *tree_dir = md_asprintf("%s/tree", d), *tar = md_asprintf("%s/t.tar", d);
    char *cmd, *fifo = md_asprintf("%s/fifo", d), *txt = md_asprintf("%s/notes.txt", d);
    (void)state;

    assert_int_equal(mkdir(tree_dir, 0755), 0);
    write_file(tree_dir, "from-dir", "d\n", 0644);
    cmd = md_asprintf("cd '%s' && mkdir a && echo t > a/from-tar && tar cf '%s' a && rm -r a", d, tar);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    write_file(d, "notes.txt", "just text\n", 0644);

    assert_int_equal(md_tree_add_source(t, MD_SOURCE_AUTO, tree_dir, NULL), 0);
    assert_int_equal(md_tree_add_source(t, MD_SOURCE_AUTO, tar, NULL), 0);
    assert_int_equal(md_tree_contains(t, "from-dir"), 1);
    assert_int_equal(md_tree_contains(t, "a/from-tar"), 1);
    assert_int_equal(md_tree_add_source(t, MD_SOURCE_AUTO, fifo, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "neither a directory nor an archive"));
    assert_int_equal(md_tree_add_source(t, MD_SOURCE_AUTO, txt, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "notes.txt: not a directory, and not an archive"));
    assert_int_equal(md_tree_add_source(t, MD_SOURCE_ARCHIVE, txt, NULL), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "not a readable archive"));
    assert_int_equal(md_tree_add_source(t, MD_SOURCE_HOST, tar, NULL), -ENOTDIR);
    assert_int_equal(md_tree_add_source(t, MD_SOURCE_AUTO, "/nonexistent/x", NULL), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "/nonexistent/x"));
    assert_int_equal(md_tree_add_source(t, 99, tar, NULL), -EINVAL);
    assert_int_equal(md_tree_add_source(t, MD_SOURCE_SPEC, txt, NULL), -EINVAL);

    md_tree_free(t);
    md_ctx_free(ctx);
    free(tree_dir);
    free(tar);
    free(fifo);
    free(txt);
    rmtree(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_add_paths),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_implicit_parents),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_hardlinks),
        cmocka_unit_test(test_finalize_order),
        cmocka_unit_test(test_mtime_clamp),
        cmocka_unit_test(test_xattr),
        cmocka_unit_test(test_host_basic),
        cmocka_unit_test(test_host_options),
        cmocka_unit_test(test_host_xattrs),
        cmocka_unit_test(test_host_socket),
        cmocka_unit_test(test_host_errors),
        cmocka_unit_test(test_host_no_follow),
        cmocka_unit_test(test_archive_newc),
        cmocka_unit_test(test_archive_absolute),
        cmocka_unit_test(test_archive_tar_and_filters),
        cmocka_unit_test(test_archive_link_heir),
        cmocka_unit_test(test_archive_in_place),
        cmocka_unit_test(test_walked_file_replaced),
        cmocka_unit_test(test_archive_root_mode_zero),
        cmocka_unit_test(test_archive_concatenated),
        cmocka_unit_test(test_archive_damaged),
        cmocka_unit_test(test_archive_roundtrip),
        cmocka_unit_test(test_add_source),
    };
    unsetenv("MD_DEBUG");
    umask(022);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
