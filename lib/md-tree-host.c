/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Source: a directory tree on the host. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "md-internal.h"

/* (dev, ino) -> tree path of the first copy, for hard-link detection */
struct inode_map {
    struct inode_slot {
        dev_t dev;
        ino_t ino;
        char *path;
    } *slots;
    size_t n, cap;
};

static size_t imap_hash(dev_t dev, ino_t ino, size_t cap)
{
    return (size_t)((ino * 0x9E3779B97F4A7C15ULL) ^ dev) & (cap - 1);
}

static struct inode_slot *imap_find(struct inode_map *m, dev_t dev, ino_t ino, bool insert)
{
    size_t i;

    if (insert && (m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64, j;
        struct inode_slot *ns = calloc(ncap, sizeof(*ns));
        if (!ns)
            return NULL;
        for (j = 0; j < m->cap; j++) {
            if (m->slots[j].path) {
                size_t k = imap_hash(m->slots[j].dev, m->slots[j].ino, ncap);
                while (ns[k].path)
                    k = (k + 1) & (ncap - 1);
                ns[k] = m->slots[j];
            }
        }
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    if (!m->cap)
        return NULL;
    i = imap_hash(dev, ino, m->cap);
    while (m->slots[i].path) {
        if (m->slots[i].dev == dev && m->slots[i].ino == ino)
            return &m->slots[i];
        i = (i + 1) & (m->cap - 1);
    }
    return insert ? &m->slots[i] : NULL;
}

static void imap_free(struct inode_map *m)
{
    size_t i;
    for (i = 0; i < m->cap; i++)
        free(m->slots[i].path);
    free(m->slots);
}

struct walk {
    md_tree *tree;
    const md_host_opts *opts;
    struct inode_map imap;
};

static int read_xattrs(struct walk *w, const char *host, const char *dest)
{
    ssize_t len = llistxattr(host, NULL, 0), vlen;
    char *names, *n;
    int r = 0;

    if (len <= 0)
        return 0; /* none, or not supported here */
    names = malloc((size_t)len);
    if (!names)
        return md_error(w->tree->ctx, -ENOMEM, "out of memory");
    len = llistxattr(host, names, (size_t)len);
    for (n = names; len > 0 && n < names + len; n += strlen(n) + 1) {
        char *val;
        if (!md_xattr_name_ok(n))
            continue;
        vlen = lgetxattr(host, n, NULL, 0);
        if (vlen < 0)
            continue; /* e.g. trusted.* as a normal user */
        val = malloc((size_t)vlen + 1);
        if (!val) {
            r = md_error(w->tree->ctx, -ENOMEM, "out of memory");
            break;
        }
        vlen = lgetxattr(host, n, val, (size_t)vlen);
        if (vlen >= 0)
            r = md_tree_set_xattr(w->tree, dest, n, val, (size_t)vlen);
        free(val);
        if (r < 0)
            break;
    }
    free(names);
    return r;
}

static void attr_from_stat(const struct walk *w, const struct stat *st, md_attr *a)
{
    md_attr_init(a);
    a->mode = st->st_mode & 07777; /* 0 is fixed up by the caller */
    if (w->opts->flags & MD_HOST_KEEP_OWNER) {
        a->uid = (uint32_t)st->st_uid;
        a->gid = (uint32_t)st->st_gid;
    }
    if (w->opts->flags & MD_HOST_KEEP_MTIME)
        a->mtime = st->st_mtime;
}

/* One directory entry, examined while its directory is open. */
struct child {
    char *name;
    struct stat st;
    char *link;    /* symlink target */
    int err;       /* > 0: errno of the stat/readlink/access check */
};

static int cmp_child(const void *a, const void *b)
{
    return strcmp(((const struct child *)a)->name, ((const struct child *)b)->name);
}

/* Can we read (and for directories, search) it?  The common cases — our own
 * file, or root — are decided from the mode bits without a system call. */
static int check_access(int dfd, const char *name, const struct stat *st, uid_t euid)
{
    bool dir = S_ISDIR(st->st_mode);

    if (euid == 0 || (st->st_uid == euid && (st->st_mode & S_IRUSR) &&
                      (!dir || (st->st_mode & S_IXUSR))))
        return 0;
    if (faccessat(dfd, name, dir ? R_OK | X_OK : R_OK, AT_EACCESS) < 0)
        return errno;
    return 0;
}

static int walk_one(struct walk *w, const char *host, const char *dest, const struct stat *st,
                    const char *link);

static int walk_dir(struct walk *w, const char *host, const char *dest)
{
    md_ctx *ctx = w->tree->ctx;
    struct child *kids = NULL;
    size_t n = 0, cap = 0, i;
    struct dirent *de;
    DIR *d = NULL;
    uid_t euid = geteuid();
    int r = 0, fd;

    fd = open(host, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return md_error_errno(ctx, -errno, "%s", host);
    d = fdopendir(fd);
    if (!d) {
        r = md_error_errno(ctx, -errno, "%s", host);
        close(fd);
        return r;
    }
    errno = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            struct child *nk = realloc(kids, (cap = cap ? cap * 2 : 32) * sizeof(*nk));
            if (!nk) {
                r = md_error(ctx, -ENOMEM, "out of memory");
                goto out;
            }
            kids = nk;
        }
        memset(&kids[n], 0, sizeof(kids[n]));
        kids[n].name = strdup(de->d_name);
        if (!kids[n].name) {
            r = md_error(ctx, -ENOMEM, "out of memory");
            goto out;
        }
        n++;
        errno = 0;
    }
    if (errno) {
        r = md_error_errno(ctx, -errno, "%s: readdir", host);
        goto out;
    }
    /* Examine the children relative to the open directory (no path walk
     * per file), then close it before recursing, so that deep trees do not
     * use one descriptor per level. */
    for (i = 0; i < n; i++) {
        struct child *k = &kids[i];
        if (fstatat(fd, k->name, &k->st, AT_SYMLINK_NOFOLLOW) < 0) {
            k->err = errno;
            continue;
        }
        if (S_ISLNK(k->st.st_mode)) {
            char target[PATH_MAX];
            ssize_t len = readlinkat(fd, k->name, target, sizeof(target));
            if (len < 0 || (size_t)len >= sizeof(target)) {
                k->err = len < 0 ? errno : ENAMETOOLONG;
                continue;
            }
            k->link = strndup(target, (size_t)len);
            if (!k->link) {
                r = md_error(ctx, -ENOMEM, "out of memory");
                goto out;
            }
        } else if (S_ISREG(k->st.st_mode) || S_ISDIR(k->st.st_mode)) {
            k->err = check_access(fd, k->name, &k->st, euid);
        }
    }
    closedir(d);
    d = NULL;
    /* a fixed order makes hard-link masters and error reports deterministic */
    if (n)
        qsort(kids, n, sizeof(*kids), cmp_child);
    for (i = 0; i < n && r >= 0; i++) {
        char *hp = md_asprintf("%s/%s", host, kids[i].name);
        char *dp = *dest ? md_asprintf("%s/%s", dest, kids[i].name) : strdup(kids[i].name);

        if (!hp || !dp)
            r = md_error(ctx, -ENOMEM, "out of memory");
        else if (kids[i].err)
            r = md_error_errno(ctx, -kids[i].err, "%s", hp);
        else
            r = walk_one(w, hp, dp, &kids[i].st, kids[i].link);
        free(hp);
        free(dp);
    }
out:
    if (d)
        closedir(d);
    for (i = 0; i < n; i++) {
        free(kids[i].name);
        free(kids[i].link);
    }
    free(kids);
    return r;
}

/* @st is the lstat() of @host, already checked for access (files and
 * directories); @link its target for a symlink. */
static int walk_one(struct walk *w, const char *host, const char *dest, const struct stat *st,
                    const char *link)
{
    md_ctx *ctx = w->tree->ctx;
    struct md_entry *e;
    md_attr a;
    int r;

    attr_from_stat(w, st, &a);
    if (S_ISDIR(st->st_mode)) {
        /* the DIR itself ("" without a prefix) describes the root, unless
         * only its contents are wanted */
        if (*dest || !(w->opts->flags & MD_HOST_NO_ROOT)) {
            r = md_tree_add_entry(w->tree, *dest ? dest : "/", S_IFDIR, &a, &e);
            if (r < 0)
                return r;
            /* mode 0 means "default" in md_attr; keep a real 0000 */
            e->mode = S_IFDIR | (st->st_mode & 07777);
            if ((w->opts->flags & MD_HOST_XATTRS) && (r = read_xattrs(w, host, *dest ? dest : "/")) < 0)
                return r;
        }
        return walk_dir(w, host, dest);
    }
    if (S_ISREG(st->st_mode)) {
        char *hp;

        if (st->st_nlink > 1 && !(w->opts->flags & MD_HOST_NO_HARDLINKS)) {
            struct inode_slot *s = imap_find(&w->imap, st->st_dev, st->st_ino, false);
            if (s)
                return md_tree_add_hardlink(w->tree, dest, s->path);
            s = imap_find(&w->imap, st->st_dev, st->st_ino, true);
            if (!s || !(s->path = strdup(dest)))
                return md_error(ctx, -ENOMEM, "out of memory");
            s->dev = st->st_dev;
            s->ino = st->st_ino;
            w->imap.n++;
        }
        /* as md_tree_add_file(), without stat()ing the file a second time */
        hp = strdup(host);
        if (!hp)
            return md_error(ctx, -ENOMEM, "out of memory");
        r = md_tree_add_entry(w->tree, dest, S_IFREG, &a, &e);
        if (r < 0) {
            free(hp);
            return r;
        }
        e->mode = S_IFREG | (st->st_mode & 07777);
        e->src = MD_SRC_HOST;
        e->host_path = hp;
        e->host_dev = (uint64_t)st->st_dev;
        e->host_ino = (uint64_t)st->st_ino;
        e->size = (uint64_t)st->st_size;
    } else if (S_ISLNK(st->st_mode)) {
        a.mode = 0777;
        r = md_tree_add_symlink(w->tree, dest, link, &a);
    } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        r = md_tree_add_node(w->tree, dest, S_ISCHR(st->st_mode) ? MD_NODE_CHR : MD_NODE_BLK,
                             major(st->st_rdev), minor(st->st_rdev), &a);
    } else if (S_ISFIFO(st->st_mode)) {
        r = md_tree_add_node(w->tree, dest, MD_NODE_FIFO, 0, 0, &a);
    } else if (S_ISSOCK(st->st_mode)) {
        r = md_tree_add_node(w->tree, dest, MD_NODE_SOCK, 0, 0, &a);
    } else {
        return md_error(ctx, -EINVAL, "%s: unsupported file type", host);
    }
    if (r < 0)
        return r;
    /* md_attr's mode 0 means "default": keep a real 0000 on nodes too */
    if (!S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode) && (e = md_tree_lookup(w->tree, dest)))
        e->mode = (e->mode & S_IFMT) | (st->st_mode & 07777);
    if ((w->opts->flags & MD_HOST_XATTRS) && !S_ISLNK(st->st_mode))
        r = read_xattrs(w, host, dest);
    return r;
}

MD_API int md_tree_add_host(md_tree *tree, const char *dir, const md_host_opts *opts)
{
    static const md_host_opts defaults = MD_HOST_OPTS_INIT;
    struct walk w;
    struct stat st;
    char *prefix = NULL;
    int r;

    if (!tree || !dir)
        return -EINVAL;
    if (!opts)
        opts = &defaults;
    r = md_check_version(tree->ctx, "md_host_opts", opts->version, MD_HOST_OPTS_VERSION);
    if (r < 0)
        return r;
    if (stat(dir, &st) < 0)
        return md_error_errno(tree->ctx, -errno, "%s", dir);
    if (!S_ISDIR(st.st_mode))
        return md_error(tree->ctx, -ENOTDIR, "%s: not a directory", dir);
    if (opts->prefix && *opts->prefix) {
        r = md_path_normalize(tree->ctx, opts->prefix, &prefix);
        if (r < 0)
            return r;
    }
    if ((r = check_access(AT_FDCWD, dir, &st, geteuid())) > 0) {
        free(prefix);
        return md_error_errno(tree->ctx, -r, "%s", dir);
    }
    memset(&w, 0, sizeof(w));
    w.tree = tree;
    w.opts = opts;
    r = walk_one(&w, dir, prefix ? prefix : "", &st, NULL);
    imap_free(&w.imap);
    free(prefix);
    return r;
}
