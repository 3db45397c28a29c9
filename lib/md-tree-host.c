/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Source: a directory tree on the host.
 *
 * Every directory below DIR is opened relative to its parent's descriptor
 * with O_NOFOLLOW and must be the directory its parent listed (device and
 * inode), and every entry is examined relative to its directory without
 * following it: a directory swapped for a symlink (to /etc, say) while the
 * walk runs is never followed out of DIR.  Only DIR itself, which the
 * caller named, may be reached through a symlink.  The files found are
 * opened again, below DIR and following no symlink, when a sink reads them
 * (md_data_open()).
 *
 * The walk is iterative: a stack holds the directories whose children are
 * still being visited (in the order of the recursive walk it replaced:
 * each directory's children sorted by name, a directory before what is in
 * it), so any depth a path allows works.  At most WALK_FDS of their
 * descriptors are kept open; a closed one is opened again from DIR along
 * its path, no symlink followed, and checked again. */
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

#define WALK_FDS 64

/* One directory entry, examined while its directory is open. */
struct child {
    char *name;
    struct stat st;
    char *link;    /* symlink target */
    int err;       /* > 0: errno of the stat/readlink/access check */
};

/* A directory whose children are being visited. */
struct level {
    struct child *kids;
    size_t n, next;     /* its children, sorted; the next one to visit */
    size_t rel_len;     /* its path below DIR: w->rel[0 .. rel_len) */
    dev_t dev;          /* as its parent listed it */
    ino_t ino;
    int fd;             /* -1: closed, opened again when needed */
    bool own_fd;        /* false for DIR's, which md_tree_add_host() owns */
};

struct walk {
    md_tree *tree;
    md_ctx *ctx;
    const md_host_opts *opts;
    struct inode_map imap;
    const char *root;         /* DIR as the caller named it */
    int root_fd;
    uint32_t root_idx;        /* 1 + its index in tree->host_roots */
    const char *prefix;       /* normalised; "" for none */
    struct level *stack;
    size_t depth, cap;
    size_t open_fds;          /* descriptors the levels own */
    size_t files;             /* regular files added: they need root_fd later */
    bool proc_fd;             /* /proc/self/fd works: xattrs are read through it */
    uid_t euid;
    char rel[MD_PATH_MAX + 1]; /* the path below DIR of the entry being visited */
};

static int changed(struct walk *w, const char *host)
{
    return md_error(w->ctx, -ESTALE, "%s: changed while the directory was being read "
                    "(replaced, moved or swapped for a symlink)", host);
}

/* Extended attributes of descriptor @fd itself (@name NULL), or of @name in
 * directory @fd, not followed if it is a symlink: through /proc/self/fd, as
 * there is no listxattrat(); without /proc, by its path @host. */
static ssize_t x_list(const char *path, int fd, char *buf, size_t n)
{
    return path ? llistxattr(path, buf, n) : flistxattr(fd, buf, n);
}

static ssize_t x_get(const char *path, int fd, const char *name, void *buf, size_t n)
{
    return path ? lgetxattr(path, name, buf, n) : fgetxattr(fd, name, buf, n);
}

static int read_xattrs(struct walk *w, int fd, const char *name, const char *host, const char *dest)
{
    char proc[sizeof("/proc/self/fd//") + 3 * sizeof(int) + MD_NAME_MAX];
    const char *path = NULL;
    ssize_t len, vlen;
    char *names, *n;
    int r = 0;

    if (name && w->proc_fd) {
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", fd, name);
        path = proc;
    } else if (name) {
        path = host;
    }
    len = x_list(path, fd, NULL, 0);
    if (len <= 0)
        return 0; /* none, or not supported here */
    names = malloc((size_t)len);
    if (!names)
        return md_error(w->ctx, -ENOMEM, "out of memory");
    len = x_list(path, fd, names, (size_t)len);
    for (n = names; len > 0 && n < names + len; n += strlen(n) + 1) {
        char *val;
        if (!md_xattr_name_ok(n))
            continue;
        vlen = x_get(path, fd, n, NULL, 0);
        if (vlen < 0)
            continue; /* e.g. trusted.* as a normal user */
        val = malloc((size_t)vlen + 1);
        if (!val) {
            r = md_error(w->ctx, -ENOMEM, "out of memory");
            break;
        }
        vlen = x_get(path, fd, n, val, (size_t)vlen);
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

static int cmp_child(const void *a, const void *b)
{
    return strcmp(((const struct child *)a)->name, ((const struct child *)b)->name);
}

static void kids_free(struct child *kids, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(kids[i].name);
        free(kids[i].link);
    }
    free(kids);
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

static bool evict_one(struct walk *w);

/* The names in directory @fd (@host in messages); the descriptor stays open. */
static int read_names(struct walk *w, int fd, const char *host, struct child **ret, size_t *ret_n)
{
    struct child *kids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int r = 0, dfd;
    DIR *d;

    /* a duplicate for the DIR stream: closedir() closes it, not @fd */
    while ((dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0 && errno == EMFILE && evict_one(w))
        ;
    if (dfd < 0)
        return md_error_errno(w->ctx, -errno, "%s", host);
    d = fdopendir(dfd);
    if (!d) {
        r = md_error_errno(w->ctx, -errno, "%s", host);
        close(dfd);
        return r;
    }
    errno = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            struct child *nk = realloc(kids, (cap = cap ? cap * 2 : 32) * sizeof(*nk));
            if (!nk) {
                r = md_error(w->ctx, -ENOMEM, "out of memory");
                break;
            }
            kids = nk;
        }
        memset(&kids[n], 0, sizeof(kids[n]));
        kids[n].name = strdup(de->d_name);
        if (!kids[n].name) {
            r = md_error(w->ctx, -ENOMEM, "out of memory");
            break;
        }
        n++;
        errno = 0;
    }
    if (r == 0 && errno)
        r = md_error_errno(w->ctx, -errno, "%s: readdir", host);
    closedir(d);
    if (r < 0) {
        kids_free(kids, n);
        return r;
    }
    *ret = kids;
    *ret_n = n;
    return 0;
}

/* The children of directory @fd, examined relative to it (no path walk per
 * file, no symlink followed) and sorted: a fixed order makes hard-link
 * masters and error reports deterministic. */
static int list_dir(struct walk *w, int fd, const char *host, struct child **ret, size_t *ret_n)
{
    struct child *kids = NULL;
    size_t n = 0, i;
    int r;

    r = read_names(w, fd, host, &kids, &n);
    if (r < 0)
        return r;
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
                /* EINVAL: no longer a symlink */
                k->err = len >= 0 ? ENAMETOOLONG : errno == EINVAL ? ESTALE : errno;
                continue;
            }
            k->link = strndup(target, (size_t)len);
            if (!k->link) {
                kids_free(kids, n);
                return md_error(w->ctx, -ENOMEM, "out of memory");
            }
        } else if (S_ISREG(k->st.st_mode) || S_ISDIR(k->st.st_mode)) {
            k->err = check_access(fd, k->name, &k->st, w->euid);
        }
    }
    if (n)
        qsort(kids, n, sizeof(*kids), cmp_child);
    *ret = kids;
    *ret_n = n;
    return 0;
}

/* ---- the stack of directories -------------------------------------------------- */

static void pop(struct walk *w)
{
    struct level *lv = &w->stack[--w->depth];

    if (lv->own_fd && lv->fd >= 0) {
        close(lv->fd);
        w->open_fds--;
    }
    kids_free(lv->kids, lv->n);
}

/* Close the shallowest level's descriptor (never the top's, which is in
 * use); false if there is none to close. */
static bool evict_one(struct walk *w)
{
    size_t i;

    for (i = 0; i + 1 < w->depth; i++) {
        struct level *lv = &w->stack[i];
        if (lv->own_fd && lv->fd >= 0) {
            close(lv->fd);
            lv->fd = -1;
            w->open_fds--;
            return true;
        }
    }
    return false;
}

/* Keep at most WALK_FDS descriptors. */
static void evict(struct walk *w)
{
    while (w->open_fds > WALK_FDS && evict_one(w))
        ;
}

/* openat() of @path in @dfd, or md_openat_beneath() with @beneath: a
 * descriptor or -errno.  Out of descriptors (a low RLIMIT_NOFILE), it
 * closes levels' descriptors and tries again: the walk needs only the top
 * level's. */
static int walk_open(struct walk *w, int dfd, const char *path, int flags, bool beneath)
{
    for (;;) {
        int fd = beneath ? md_openat_beneath(dfd, path, flags) : openat(dfd, path, flags);
        if (!beneath && fd < 0)
            fd = -errno;
        if (fd != -EMFILE || !evict_one(w))
            return fd;
    }
}

/* Takes @kids and @fd, even on failure. */
static int push(struct walk *w, struct child *kids, size_t n, size_t rel_len,
                const struct stat *st, int fd)
{
    struct level *lv;

    if (w->depth == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 16;
        struct level *ns = realloc(w->stack, ncap * sizeof(*ns));
        if (!ns) {
            kids_free(kids, n);
            if (fd != w->root_fd)
                close(fd);
            return md_error(w->ctx, -ENOMEM, "out of memory");
        }
        w->stack = ns;
        w->cap = ncap;
    }
    lv = &w->stack[w->depth++];
    lv->kids = kids;
    lv->n = n;
    lv->next = 0;
    lv->rel_len = rel_len;
    lv->dev = st->st_dev;
    lv->ino = st->st_ino;
    lv->fd = fd;
    lv->own_fd = fd != w->root_fd;
    if (lv->own_fd) {
        w->open_fds++;
        evict(w);
    }
    return 0;
}

/* The descriptor of level @idx, opened again from DIR if it was closed: by
 * its path below DIR, no symlink followed, and only if it is still the
 * directory that was listed. */
static int level_fd(struct walk *w, size_t idx, int *ret)
{
    struct level *lv = &w->stack[idx];
    struct stat st;
    char save;
    int fd, r;

    if (lv->fd >= 0) {
        *ret = lv->fd;
        return 0;
    }
    /* w->rel holds a path below this level's: its first rel_len bytes */
    save = w->rel[lv->rel_len];
    w->rel[lv->rel_len] = '\0';
    fd = walk_open(w, w->root_fd, w->rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY, true);
    if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != lv->dev || st.st_ino != lv->ino)) {
        close(fd);
        fd = -ESTALE;
    }
    if (fd < 0) {
        char *host = md_asprintf("%s/%s", w->root, w->rel);
        r = !host ? md_error(w->ctx, -ENOMEM, "out of memory")
            : fd == -ELOOP || fd == -ENOTDIR || fd == -ESTALE ? changed(w, host)
            : md_error_errno(w->ctx, fd, "%s", host);
        free(host);
        w->rel[lv->rel_len] = save;
        return r;
    }
    w->rel[lv->rel_len] = save;
    lv->fd = fd;
    w->open_fds++;
    evict(w);
    *ret = fd;
    return 0;
}

/* ---- entries ------------------------------------------------------------------- */

/* The tree entry of a directory (DIR itself: "" without a prefix), its
 * xattrs read from its descriptor @fd. */
static int add_dir_entry(struct walk *w, const char *dest, const struct stat *st, int fd)
{
    struct md_entry *e;
    md_attr a;
    int r;

    attr_from_stat(w, st, &a);
    r = md_tree_add_entry(w->tree, *dest ? dest : "/", S_IFDIR, &a, &e);
    if (r < 0)
        return r;
    /* mode 0 means "default" in md_attr; keep a real 0000 */
    e->mode = S_IFDIR | (st->st_mode & 07777);
    if (w->opts->flags & MD_HOST_XATTRS)
        r = read_xattrs(w, fd, NULL, NULL, *dest ? dest : "/");
    return r;
}

/* Child directory @k of level @idx: open it below its parent without
 * following it, check it is what was listed, list it and go down into it. */
static int enter_dir(struct walk *w, size_t idx, const struct child *k, const char *host,
                     const char *dest)
{
    struct child *kids = NULL;
    struct stat st;
    size_t n = 0, rel_len = strlen(w->rel);
    int pfd, fd, r;

    r = level_fd(w, idx, &pfd);
    if (r < 0)
        return r;
    fd = walk_open(w, pfd, k->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, false);
    if (fd < 0)
        return fd == -ELOOP || fd == -ENOTDIR ? changed(w, host) : md_error_errno(w->ctx, fd, "%s", host);
    if (fstat(fd, &st) < 0 || st.st_dev != k->st.st_dev || st.st_ino != k->st.st_ino) {
        close(fd);
        return changed(w, host);
    }
    r = add_dir_entry(w, dest, &k->st, fd);
    if (r == 0)
        r = list_dir(w, fd, host, &kids, &n);
    if (r < 0) {
        close(fd);
        return r;
    }
    /* a level with nothing left to visit is done: it need not wait for this
     * subtree (a chain of single directories keeps the stack short); @k
     * belongs to it and is not used after this */
    if (idx + 1 == w->depth && w->stack[idx].next == w->stack[idx].n)
        pop(w);
    return push(w, kids, n, rel_len, &st, fd);
}

/* A regular file: its contents are opened again at write time (host_root). */
static int add_file(struct walk *w, const struct stat *st, const char *host, const char *dest)
{
    struct md_entry *e;
    char *hp;
    md_attr a;
    int r;

    if (st->st_nlink > 1 && !(w->opts->flags & MD_HOST_NO_HARDLINKS)) {
        struct inode_slot *s = imap_find(&w->imap, st->st_dev, st->st_ino, false);
        if (s)
            return md_tree_add_hardlink(w->tree, dest, s->path);
        s = imap_find(&w->imap, st->st_dev, st->st_ino, true);
        if (!s || !(s->path = strdup(dest)))
            return md_error(w->ctx, -ENOMEM, "out of memory");
        s->dev = st->st_dev;
        s->ino = st->st_ino;
        w->imap.n++;
    }
    hp = strdup(host);
    if (!hp)
        return md_error(w->ctx, -ENOMEM, "out of memory");
    attr_from_stat(w, st, &a);
    r = md_tree_add_entry(w->tree, dest, S_IFREG, &a, &e);
    if (r < 0) {
        free(hp);
        return r;
    }
    e->mode = S_IFREG | (st->st_mode & 07777);
    e->src = MD_SRC_HOST;
    e->host_path = hp;
    e->host_root = w->root_idx;
    e->host_rel = strlen(w->root) + 1;
    e->host_dev = (uint64_t)st->st_dev;
    e->host_ino = (uint64_t)st->st_ino;
    e->host_sparse = md_stat_sparse(st);
    e->size = (uint64_t)st->st_size;
    w->files++;
    return 1; /* added (not as a hard link): its xattrs are wanted */
}

/* Anything but a directory or a regular file. */
static int add_other(struct walk *w, const struct child *k, const char *host, const char *dest)
{
    const struct stat *st = &k->st;
    struct md_entry *e;
    md_attr a;
    int r;

    attr_from_stat(w, st, &a);
    if (S_ISLNK(st->st_mode)) {
        a.mode = 0777;
        return md_tree_add_symlink(w->tree, dest, k->link, &a);
    }
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
        r = md_tree_add_node(w->tree, dest, S_ISCHR(st->st_mode) ? MD_NODE_CHR : MD_NODE_BLK,
                             major(st->st_rdev), minor(st->st_rdev), &a);
    else if (S_ISFIFO(st->st_mode))
        r = md_tree_add_node(w->tree, dest, MD_NODE_FIFO, 0, 0, &a);
    else if (S_ISSOCK(st->st_mode))
        r = md_tree_add_node(w->tree, dest, MD_NODE_SOCK, 0, 0, &a);
    else
        return md_error(w->ctx, -EINVAL, "%s: unsupported file type", host);
    if (r < 0)
        return r;
    /* md_attr's mode 0 means "default": keep a real 0000 on nodes too */
    if ((e = md_tree_lookup(w->tree, dest)))
        e->mode = (e->mode & S_IFMT) | (st->st_mode & 07777);
    return 1;
}

/* Visit the next child of the top level. */
static int visit(struct walk *w)
{
    size_t idx = w->depth - 1, len = w->stack[idx].rel_len, nl;
    const struct child *k = &w->stack[idx].kids[w->stack[idx].next++];
    /* xattrs of a file or node, read relative to the directory that listed
     * it (a directory's are read from its own descriptor; a symlink has
     * none a user can set) */
    bool xattrs = (w->opts->flags & MD_HOST_XATTRS) && !S_ISLNK(k->st.st_mode) &&
                  !S_ISDIR(k->st.st_mode);
    char *host = NULL, *dest = NULL;
    int r, fd;

    nl = strlen(k->name);
    if (len + 1 + nl > MD_PATH_MAX) {
        w->rel[len] = '\0';
        return md_error(w->ctx, -EINVAL, "%s/%s/%.40s...: path name longer than %d bytes",
                        w->root, w->rel, k->name, MD_PATH_MAX);
    }
    if (len)
        w->rel[len++] = '/';
    memcpy(w->rel + len, k->name, nl + 1);
    host = md_asprintf("%s/%s", w->root, w->rel);
    dest = *w->prefix ? md_asprintf("%s/%s", w->prefix, w->rel) : strdup(w->rel);
    if (!host || !dest)
        r = md_error(w->ctx, -ENOMEM, "out of memory");
    else if (k->err == ESTALE)
        r = changed(w, host);
    else if (k->err)
        r = md_error_errno(w->ctx, -k->err, "%s", host);
    else if (S_ISDIR(k->st.st_mode))
        r = enter_dir(w, idx, k, host, dest); /* @k may be freed */
    else if (S_ISREG(k->st.st_mode))
        r = add_file(w, &k->st, host, dest);
    else
        r = add_other(w, k, host, dest);
    if (r > 0 && xattrs) {
        r = level_fd(w, idx, &fd);
        if (r == 0)
            r = read_xattrs(w, fd, k->name, host, dest);
    }
    free(host);
    free(dest);
    return r < 0 ? r : 0;
}

/* DIR's descriptor, kept by the tree: the files found below it are opened
 * relative to it when the tree is written. */
static int keep_root(md_tree *tree, int fd, uint32_t *idx)
{
    int *nr = realloc(tree->host_roots, (tree->n_host_roots + 1) * sizeof(*nr));

    if (!nr)
        return md_error(tree->ctx, -ENOMEM, "out of memory");
    tree->host_roots = nr;
    nr[tree->n_host_roots++] = fd;
    *idx = (uint32_t)tree->n_host_roots;
    return 0;
}

static int walk(struct walk *w, const struct stat *st)
{
    struct child *kids = NULL;
    size_t n = 0;
    int r;

    /* DIR describes the root ("" without a prefix), unless only its
     * contents are wanted */
    if (*w->prefix || !(w->opts->flags & MD_HOST_NO_ROOT)) {
        r = add_dir_entry(w, w->prefix, st, w->root_fd);
        if (r < 0)
            return r;
    }
    r = list_dir(w, w->root_fd, w->root, &kids, &n);
    if (r == 0)
        r = push(w, kids, n, 0, st, w->root_fd);
    while (r == 0 && w->depth) {
        struct level *top = &w->stack[w->depth - 1];
        if (top->next == top->n)
            pop(w);
        else
            r = visit(w);
    }
    return r;
}

MD_API int md_tree_add_host(md_tree *tree, const char *dir, const md_host_opts *opts)
{
    static const md_host_opts defaults = MD_HOST_OPTS_INIT;
    struct walk *w;
    struct stat st;
    char *prefix = NULL;
    int r, fd;

    if (!tree || !dir)
        return -EINVAL;
    if (!opts)
        opts = &defaults;
    r = md_check_version(tree->ctx, "md_host_opts", opts->version, MD_HOST_OPTS_VERSION);
    if (r < 0)
        return r;
    if (opts->prefix && *opts->prefix) {
        r = md_path_normalize(tree->ctx, opts->prefix, &prefix);
        if (r < 0)
            return r;
    }
    /* DIR was named by the caller: it may be a symlink */
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        r = errno == ENOTDIR ? md_error(tree->ctx, -ENOTDIR, "%s: not a directory", dir)
                             : md_error_errno(tree->ctx, -errno, "%s", dir);
        free(prefix);
        return r;
    }
    if (fstat(fd, &st) < 0)
        r = md_error_errno(tree->ctx, -errno, "%s", dir);
    else if ((r = check_access(AT_FDCWD, dir, &st, geteuid())) > 0)
        r = md_error_errno(tree->ctx, -r, "%s", dir);
    w = r < 0 ? NULL : calloc(1, sizeof(*w));
    if (!w) {
        close(fd);
        free(prefix);
        return r < 0 ? r : md_error(tree->ctx, -ENOMEM, "out of memory");
    }
    w->tree = tree;
    w->ctx = tree->ctx;
    w->opts = opts;
    w->root = dir;
    w->root_fd = fd;
    w->prefix = prefix ? prefix : "";
    w->euid = geteuid();
    w->proc_fd = access("/proc/self/fd", X_OK) == 0;
    r = keep_root(tree, fd, &w->root_idx);
    if (r == 0)
        r = walk(w, &st);
    while (w->depth)
        pop(w);
    free(w->stack);
    imap_free(&w->imap);
    /* no entry reads below DIR: the tree need not keep it open */
    if (w->files == 0) {
        if (w->root_idx && w->root_idx == tree->n_host_roots)
            tree->n_host_roots--;
        close(fd);
    }
    free(w);
    free(prefix);
    return r;
}
