/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The entry model: a set of file entries keyed by normalised path. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "md-internal.h"

MD_API void md_attr_init(md_attr *attr)
{
    static const md_attr def = MD_ATTR_INIT;
    if (attr)
        *attr = def;
}

MD_API void md_host_opts_init(md_host_opts *opts)
{
    static const md_host_opts def = MD_HOST_OPTS_INIT;
    if (opts)
        *opts = def;
}

MD_API void md_busybox_opts_init(md_busybox_opts *opts)
{
    static const md_busybox_opts def = MD_BUSYBOX_OPTS_INIT;
    if (opts)
        *opts = def;
}

int md_path_normalize(md_ctx *ctx, const char *in, char **out)
{
    size_t len, o = 0;
    const char *p;
    char *res;

    if (!in)
        return md_error(ctx, -EINVAL, "missing path");
    len = strlen(in);
    if (len == 0)
        return md_error(ctx, -EINVAL, "empty path name");
    res = malloc(len + 1);
    if (!res)
        return md_error(ctx, -ENOMEM, "out of memory");
    p = in;
    while (*p) {
        const char *s;
        size_t n;

        while (*p == '/')
            p++;
        s = p;
        while (*p && *p != '/')
            p++;
        n = (size_t)(p - s);
        if (n == 0 || (n == 1 && s[0] == '.'))
            continue;
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            free(res);
            return md_error(ctx, -EINVAL, "'%s': path escapes the root with '..'", in);
        }
        if (n > MD_NAME_MAX) {
            free(res);
            return md_error(ctx, -EINVAL, "'%.60s...': a path component is longer than %d bytes",
                            in, MD_NAME_MAX);
        }
        if (o)
            res[o++] = '/';
        memcpy(res + o, s, n);
        o += n;
    }
    res[o] = '\0';
    /* checked after normalisation: "./" and "//" do not count */
    if (o > MD_PATH_MAX) {
        free(res);
        return md_error(ctx, -EINVAL, "'%.40s...': path name longer than %d bytes", in, MD_PATH_MAX);
    }
    *out = res;
    return 0;
}

/* ---- hash table ------------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ULL;
    }
    return h;
}

static void hash_insert_raw(struct md_hslot *tab, size_t cap, struct md_entry *e)
{
    size_t i = (size_t)e->hash & (cap - 1);
    while (tab[i].e)
        i = (i + 1) & (cap - 1);
    tab[i].h = e->hash;
    tab[i].e = e;
}

static int hash_grow(md_tree *t)
{
    size_t ncap = t->hash_cap ? t->hash_cap * 2 : 256;
    struct md_hslot *ntab = calloc(ncap, sizeof(*ntab));
    size_t i;

    if (!ntab)
        return -ENOMEM;
    for (i = 0; i < t->n; i++)
        hash_insert_raw(ntab, ncap, t->v[i]);
    free(t->hash);
    t->hash = ntab;
    t->hash_cap = ncap;
    return 0;
}

/* Finds live entries and tombstones alike; @h is hash_str(@path). */
static struct md_entry *lookup_any(const md_tree *t, const char *path, uint64_t h)
{
    size_t i;

    if (!t->hash_cap)
        return NULL;
    i = (size_t)h & (t->hash_cap - 1);
    while (t->hash[i].e) {
        if (t->hash[i].h == h && strcmp(t->hash[i].e->path, path) == 0)
            return t->hash[i].e;
        i = (i + 1) & (t->hash_cap - 1);
    }
    return NULL;
}

static struct md_entry *lookup_live(const md_tree *t, const char *path, uint64_t h)
{
    struct md_entry *e = lookup_any(t, path, h);
    return e && !e->removed ? e : NULL;
}

struct md_entry *md_tree_lookup(const md_tree *t, const char *path)
{
    if (!*path)
        return (struct md_entry *)&t->root;
    return lookup_live(t, path, hash_str(path));
}

/* ---- entries ---------------------------------------------------------------- */

static void entry_clear(struct md_entry *e)
{
    size_t i;

    free(e->link);
    free(e->host_path);
    free(e->buf);
    for (i = 0; i < e->n_xattrs; i++) {
        free(e->xattrs[i].name);
        free(e->xattrs[i].value);
    }
    free(e->xattrs);
    e->link = e->host_path = NULL;
    e->buf = NULL;
    e->xattrs = NULL;
    e->n_xattrs = 0;
    e->master = NULL;
    /* every source field: a revived tombstone is as clean as a new entry
     * (a walked file replaced by a named one kept the walk's host_root and
     * host_rel, and was opened as a wrong suffix of the new path) */
    e->src = MD_SRC_NONE;
    e->host_dev = e->host_ino = 0;
    e->host_sparse = false;
    e->host_root = 0;
    e->host_rel = 0;
    e->spool_off = 0;
    e->spool_src = 0;
    e->size = 0;
    e->rmajor = e->rminor = 0;
}

static void entry_free(struct md_entry *e)
{
    if (!e)
        return;
    entry_clear(e);
    free(e->path);
    free(e);
}

MD_API int md_tree_new(md_ctx *ctx, md_tree **ret)
{
    md_tree *t;

    if (!ctx || !ret)
        return -EINVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return md_error(ctx, -ENOMEM, "out of memory");
    t->ctx = md_ctx_ref(ctx);
    t->root.path = (char *)"";
    t->root.mode = S_IFDIR | 0755;
    t->root.mtime = MD_MTIME_DEFAULT; /* the epoch when finalised: it may be set later */
    t->spool_fd = -1;
    *ret = t;
    return 0;
}

MD_API void md_tree_free(md_tree *t)
{
    size_t i;

    if (!t)
        return;
    for (i = 0; i < t->n; i++)
        entry_free(t->v[i]);
    entry_clear(&t->root);
    free(t->v);
    free(t->hash);
    if (t->spool_fd >= 0)
        close(t->spool_fd);
    free(t->spool_buf);
    for (i = 0; i < t->n_host_roots; i++)
        close(t->host_roots[i]);
    free(t->host_roots);
    for (i = 0; i < t->n_archives; i++) {
        close(t->archives[i].fd);
        free(t->archives[i].path);
    }
    free(t->archives);
    md_ctx_unref(t->ctx);
    free(t);
}

MD_API size_t md_tree_count(const md_tree *t)
{
    return t ? t->live : 0;
}

MD_API md_ctx *md_tree_ctx(const md_tree *t)
{
    return t ? t->ctx : NULL;
}

/* Generated entries (MD_MTIME_DEFAULT) get the epoch, 0 when none is set;
 * given mtimes are kept, clamped to the epoch only when one is set. */
static int64_t clamp_mtime(md_ctx *ctx, int64_t mtime)
{
    int64_t epoch = md_ctx_get_epoch(ctx);

    if (mtime < 0 || (md_ctx_has_epoch(ctx) && mtime > epoch))
        return epoch;
    return mtime;
}

static uint32_t default_perm(uint32_t type)
{
    switch (type) {
    case S_IFDIR: return 0755;
    case S_IFLNK: return 0777;
    case S_IFREG: return 0644;
    default: return 0600;
    }
}

static void set_attr(md_tree *t, struct md_entry *e, uint32_t type, const md_attr *attr)
{
    /* any bit set (MD_ATTR_MODE_SET with 0) means the bits as given */
    e->mode = type | ((attr && attr->mode) ? (attr->mode & 07777) : default_perm(type));
    e->uid = attr ? attr->uid : 0;
    e->gid = attr ? attr->gid : 0;
    e->mtime = clamp_mtime(t->ctx, attr ? attr->mtime : MD_MTIME_DEFAULT);
}

/* Make a new live entry at normalised path @path (hash @h), which must not be live. */
static int new_entry(md_tree *t, char *path, uint64_t h, uint32_t mode, const md_attr *attr,
                     struct md_entry **ret)
{
    struct md_entry *e = lookup_any(t, path, h);
    uint32_t type = mode & S_IFMT;

    if (e) {
        /* revive a tombstone */
        free(path);
        entry_clear(e);
        e->removed = false;
    } else {
        if (t->n == t->cap) {
            size_t ncap = t->cap ? t->cap * 2 : 256;
            struct md_entry **nv = realloc(t->v, ncap * sizeof(*nv));
            if (!nv) {
                free(path);
                return md_error(t->ctx, -ENOMEM, "out of memory");
            }
            t->v = nv;
            t->cap = ncap;
        }
        if ((t->n + 1) * 2 > t->hash_cap && hash_grow(t) < 0) {
            free(path);
            return md_error(t->ctx, -ENOMEM, "out of memory");
        }
        e = calloc(1, sizeof(*e));
        if (!e) {
            free(path);
            return md_error(t->ctx, -ENOMEM, "out of memory");
        }
        e->path = path;
        e->hash = h;
        t->v[t->n++] = e;
        hash_insert_raw(t->hash, t->hash_cap, e);
    }
    set_attr(t, e, type, attr);
    t->live++;
    t->sorted = false;
    *ret = e;
    return 0;
}

/* Paths are at most MD_PATH_MAX bytes (md_path_normalize), so the parent's
 * name fits a stack buffer: no allocation per directory, and so no
 * out-of-memory case that would silently miscount link counts. */
static struct md_entry *parent_of(md_tree *t, const char *path)
{
    const char *slash = strrchr(path, '/');
    char buf[MD_PATH_MAX + 1];

    if (!slash)
        return NULL;
    memcpy(buf, path, (size_t)(slash - path));
    buf[slash - path] = '\0';
    return md_tree_lookup(t, buf);
}

/* Make sure every ancestor of @path exists as a directory. */
static int ensure_parents(md_tree *t, const char *path)
{
    const char *p = path, *slash = strrchr(path, '/');
    struct md_entry *parent;
    char *buf;
    int r = 0;

    if (!slash)
        return 0;
    /* The ancestors of a live entry are live directories (a directory is
     * never replaced by anything else, and removing one removes what is
     * below it): the parent alone decides, without a lookup per level that
     * would make a deep tree quadratic. */
    parent = parent_of(t, path);
    if (parent && S_ISDIR(parent->mode))
        return 0;
    buf = strdup(path);
    if (!buf)
        return md_error(t->ctx, -ENOMEM, "out of memory");
    while ((p = strchr(p, '/'))) {
        struct md_entry *e;
        size_t n = (size_t)(p - path);

        memcpy(buf, path, n);
        buf[n] = '\0';
        e = md_tree_lookup(t, buf);
        if (e) {
            if (!S_ISDIR(e->mode)) {
                r = md_error(t->ctx, -ENOTDIR, "'%s': parent '%s' is not a directory in the tree",
                             path, buf);
                break;
            }
        } else {
            char *copy = strdup(buf);
            if (!copy) {
                r = md_error(t->ctx, -ENOMEM, "out of memory");
                break;
            }
            r = new_entry(t, copy, hash_str(copy), S_IFDIR, NULL, &e);
            if (r < 0)
                break;
        }
        p++;
    }
    free(buf);
    return r;
}

/* Take @e out of its hard-link group before it is replaced or removed, as
 * unpacking an archive over a tree would (unlink, then create): a link just
 * leaves its group; a master hands its contents and attributes to its first
 * remaining link, which becomes the group's master. */
static void detach_links(md_tree *t, struct md_entry *e)
{
    struct md_entry *heir = NULL;
    size_t i;

    if (e->master) {
        e->master->links_in--;
        e->master = NULL;
        return;
    }
    for (i = 0; i < t->n && e->links_in; i++) {
        struct md_entry *x = t->v[i];

        if (x->removed || x->master != e)
            continue;
        e->links_in--;
        if (heir) {
            x->master = heir;
            heir->links_in++;
            continue;
        }
        heir = x;
        heir->master = NULL;
        heir->mode = e->mode;
        heir->uid = e->uid;
        heir->gid = e->gid;
        heir->mtime = e->mtime;
        heir->src = e->src;
        heir->host_path = e->host_path;
        heir->host_dev = e->host_dev;
        heir->host_ino = e->host_ino;
        heir->host_sparse = e->host_sparse;
        heir->host_root = e->host_root;
        heir->host_rel = e->host_rel;
        heir->buf = e->buf;
        heir->spool_off = e->spool_off;
        heir->spool_src = e->spool_src;
        heir->size = e->size;
        heir->xattrs = e->xattrs;
        heir->n_xattrs = e->n_xattrs;
        e->src = MD_SRC_NONE;
        e->host_path = NULL;
        e->buf = NULL;
        e->xattrs = NULL;
        e->n_xattrs = 0;
    }
    e->links_in = 0;
}

static void kill_entry(md_tree *t, struct md_entry *e)
{
    detach_links(t, e);
    entry_clear(e);
    e->removed = true;
    t->live--;
    t->sorted = false;
}

int md_tree_add_entry(md_tree *t, const char *in_path, uint32_t mode, const md_attr *attr,
                      struct md_entry **ret)
{
    struct md_entry *e;
    uint64_t h;
    char *path;
    int r;

    if (!t)
        return -EINVAL;
    if (attr && attr->version != MD_ATTR_VERSION)
        return md_check_version(t->ctx, "md_attr", attr->version, MD_ATTR_VERSION);
    r = md_path_normalize(t->ctx, in_path, &path);
    if (r < 0)
        return r;
    if (!*path) {
        free(path);
        if ((mode & S_IFMT) != S_IFDIR)
            return md_error(t->ctx, -EINVAL, "'%s': names the root directory", in_path);
        /* the root directory itself: its attributes */
        set_attr(t, &t->root, S_IFDIR, attr);
        t->root_set = true;
        *ret = &t->root;
        return 0;
    }
    h = hash_str(path);
    e = lookup_live(t, path, h);
    if (e) {
        if (S_ISDIR(e->mode) && (mode & S_IFMT) == S_IFDIR) {
            /* a directory over a directory: new attributes, same children */
            set_attr(t, e, S_IFDIR, attr);
            free(path);
            *ret = e;
            return 0;
        }
        if (S_ISDIR(e->mode)) {
            r = md_error(t->ctx, -EEXIST, "'%s': is a directory in the tree; cannot replace it", path);
            free(path);
            return r;
        }
        /* replace: keep the slot as a tombstone; new_entry() revives it and
         * cannot fail.  Other names of the old file keep the old file. */
        kill_entry(t, e);
        return new_entry(t, path, h, mode, attr, ret);
    }
    r = ensure_parents(t, path);
    if (r < 0) {
        free(path);
        return r;
    }
    return new_entry(t, path, h, mode, attr, ret);
}

MD_API int md_tree_add_dir(md_tree *t, const char *path, const md_attr *attr)
{
    struct md_entry *e;

    if (!t)
        return -EINVAL;
    /* "/" or "." gives the root directory its attributes */
    return md_tree_add_entry(t, path, S_IFDIR, attr, &e);
}

MD_API int md_tree_add_file(md_tree *t, const char *path, const char *host_path, const md_attr *attr)
{
    struct md_entry *e;
    struct stat st;
    char *hp;
    int r;

    if (!t || !host_path)
        return -EINVAL;
    if (stat(host_path, &st) < 0)
        return md_error_errno(t->ctx, -errno, "%s", host_path);
    if (S_ISDIR(st.st_mode))
        return md_error(t->ctx, -EISDIR, "%s: is a directory, not a file", host_path);
    if (!S_ISREG(st.st_mode))
        return md_error(t->ctx, -EINVAL, "%s: not a regular file", host_path);
    if (access(host_path, R_OK) < 0)
        return md_error_errno(t->ctx, -errno, "%s", host_path);
    hp = strdup(host_path);
    if (!hp)
        return md_error(t->ctx, -ENOMEM, "out of memory");
    r = md_tree_add_entry(t, path, S_IFREG, attr, &e);
    if (r < 0) {
        free(hp);
        return r;
    }
    e->src = MD_SRC_HOST;
    e->host_path = hp;
    e->host_root = 0; /* named by the caller: opened by its path */
    e->host_rel = 0;
    e->host_dev = (uint64_t)st.st_dev;
    e->host_ino = (uint64_t)st.st_ino;
    e->host_sparse = md_stat_sparse(&st);
    e->size = (uint64_t)st.st_size;
    return 0;
}

MD_API int md_tree_add_data(md_tree *t, const char *path, const void *data, size_t size,
                            const md_attr *attr)
{
    struct md_entry *e;
    void *buf = NULL;
    int r;

    if (!t || (size && !data))
        return -EINVAL;
    if (size) {
        buf = malloc(size);
        if (!buf)
            return md_error(t->ctx, -ENOMEM, "out of memory");
        memcpy(buf, data, size);
    }
    r = md_tree_add_entry(t, path, S_IFREG, attr, &e);
    if (r < 0) {
        free(buf);
        return r;
    }
    e->src = size ? MD_SRC_BUF : MD_SRC_NONE;
    e->buf = buf;
    e->size = size;
    return 0;
}

MD_API int md_tree_add_symlink(md_tree *t, const char *path, const char *target, const md_attr *attr)
{
    struct md_entry *e;
    size_t len;
    char *copy;
    int r;

    if (!t || !path || !target)
        return -EINVAL;
    len = strlen(target);
    if (len == 0 || len > MD_PATH_MAX)
        return md_error(t->ctx, -EINVAL, "'%s': symlink target must be 1..%d bytes", path, MD_PATH_MAX);
    copy = strdup(target);
    if (!copy)
        return md_error(t->ctx, -ENOMEM, "out of memory");
    r = md_tree_add_entry(t, path, S_IFLNK, attr, &e);
    if (r < 0) {
        free(copy);
        return r;
    }
    e->link = copy;
    e->size = len;
    return 0;
}

MD_API int md_tree_add_hardlink(md_tree *t, const char *path, const char *target_path)
{
    struct md_entry *e, *target;
    char *norm;
    int r;

    if (!t)
        return -EINVAL;
    r = md_path_normalize(t->ctx, target_path, &norm);
    if (r < 0)
        return r;
    target = md_tree_lookup(t, norm);
    if (!target) {
        r = md_error(t->ctx, -ENOENT, "'%s': hard link target '%s' is not in the tree", path, norm);
        free(norm);
        return r;
    }
    free(norm);
    if (!S_ISREG(target->mode))
        return md_error(t->ctx, -EPERM, "'%s': hard link target '%s' is not a regular file",
                        path, target->path);
    if (target->master)
        target = target->master;
    /* linking a file to itself (or to a member of its own group that is its
     * master): nothing to do; md_tree_add_entry() would wipe it */
    r = md_path_normalize(t->ctx, path, &norm);
    if (r < 0)
        return r;
    e = md_tree_lookup(t, norm);
    free(norm);
    if (e == target)
        return 0;
    r = md_tree_add_entry(t, path, S_IFREG, NULL, &e);
    if (r < 0)
        return r;
    e->master = target;
    target->links_in++;
    return 0;
}

MD_API int md_tree_add_node(md_tree *t, const char *path, uint32_t type, uint32_t major,
                            uint32_t minor, const md_attr *attr)
{
    struct md_entry *e;
    uint32_t fmt;
    int r;

    if (!t)
        return -EINVAL;
    switch (type) {
    case MD_NODE_CHR: fmt = S_IFCHR; break;
    case MD_NODE_BLK: fmt = S_IFBLK; break;
    case MD_NODE_FIFO: fmt = S_IFIFO; break;
    case MD_NODE_SOCK: fmt = S_IFSOCK; break;
    default:
        return md_error(t->ctx, -EINVAL, "'%s': unknown node type %u", path, type);
    }
    if (major > 0xfff || minor > 0xfffff)
        return md_error(t->ctx, -EINVAL, "'%s': device number %u:%u out of range", path, major, minor);
    r = md_tree_add_entry(t, path, fmt, attr, &e);
    if (r < 0)
        return r;
    if (fmt == S_IFCHR || fmt == S_IFBLK) {
        e->rmajor = major;
        e->rminor = minor;
    }
    return 0;
}

int md_acl_xattr_check(const void *value, size_t size)
{
    const unsigned char *p = value;

    size_t i;

    /* the Linux xattr form: version 2, then 8-byte {tag, perm, id} entries
     * with the tags of POSIX ACLs (what libext2fs converts to the disk form) */
    if (size < 4 || (size - 4) % 8 || md_get_le32(p) != 2)
        return -EINVAL;
    for (i = 4; i < size; i += 8) {
        uint16_t tag = md_get_le16(p + i), perm = md_get_le16(p + i + 2);
        if ((tag != 0x01 && tag != 0x02 && tag != 0x04 && tag != 0x08 && tag != 0x10 && tag != 0x20) ||
            perm > 7)
            return -EINVAL;
    }
    return 0;
}

bool md_xattr_name_ok(const char *name)
{
    return !strncmp(name, "user.", 5) || !strncmp(name, "security.", 9) ||
           !strncmp(name, "trusted.", 8) || !strcmp(name, MD_XATTR_ACL_ACCESS) ||
           !strcmp(name, MD_XATTR_ACL_DEFAULT);
}

MD_API int md_tree_set_xattr(md_tree *t, const char *path, const char *name, const void *value,
                             size_t size)
{
    struct md_entry *e;
    struct md_xattr *nx;
    char *norm;
    void *copy;
    size_t i;
    int r;

    if (!t || !name || (size && !value))
        return -EINVAL;
    if (!md_xattr_name_ok(name))
        return md_error(t->ctx, -EINVAL, "'%s': unsupported xattr namespace in '%s'", path, name);
    if (!strncmp(name, "system.", 7) && md_acl_xattr_check(value, size) < 0)
        return md_error(t->ctx, -EINVAL, "'%s': %s is not a POSIX ACL in the Linux xattr format",
                        path, name);
    r = md_path_normalize(t->ctx, path, &norm);
    if (r < 0)
        return r;
    e = md_tree_lookup(t, norm);
    free(norm);
    if (!e)
        return md_error(t->ctx, -ENOENT, "'%s': not in the tree", path);
    if (e->master)
        e = e->master;
    for (i = 0; i < e->n_xattrs; i++)
        if (strcmp(e->xattrs[i].name, name) == 0)
            break;
    /* allocate everything first: on failure the entry keeps its old xattrs */
    copy = malloc(size ? size : 1);
    if (!copy)
        return md_error(t->ctx, -ENOMEM, "out of memory");
    if (size)
        memcpy(copy, value, size);
    if (i == e->n_xattrs) {
        char *nname = strdup(name);

        nx = nname ? realloc(e->xattrs, (e->n_xattrs + 1) * sizeof(*nx)) : NULL;
        if (!nx) {
            free(nname);
            free(copy);
            return md_error(t->ctx, -ENOMEM, "out of memory");
        }
        e->xattrs = nx;
        nx[i].name = nname;
        nx[i].value = NULL;
        e->n_xattrs++;
    }
    free(e->xattrs[i].value);
    e->xattrs[i].value = copy;
    e->xattrs[i].size = size;
    return 0;
}

MD_API int md_tree_remove(md_tree *t, const char *path)
{
    struct md_entry *e;
    char *norm;
    size_t i, len;
    int r;

    if (!t)
        return -EINVAL;
    r = md_path_normalize(t->ctx, path, &norm);
    if (r < 0)
        return r;
    if (!*norm) {
        free(norm);
        return md_error(t->ctx, -EINVAL, "'%s': the root directory cannot be removed", path);
    }
    e = md_tree_lookup(t, norm);
    if (!e) {
        r = md_error(t->ctx, -ENOENT, "'%s': not in the tree", path);
        free(norm);
        return r;
    }
    len = strlen(norm);
    for (i = 0; i < t->n; i++) {
        struct md_entry *x = t->v[i];
        if (x->removed)
            continue;
        if (x == e || (strncmp(x->path, norm, len) == 0 && x->path[len] == '/'))
            continue;
        /* hard links to a removed file lose their data source: refuse */
        if (x->master && (x->master == e ||
                          (strncmp(x->master->path, norm, len) == 0 && x->master->path[len] == '/'))) {
            r = md_error(t->ctx, -EBUSY, "'%s': hard link '%s' refers to it", path, x->path);
            free(norm);
            return r;
        }
    }
    for (i = 0; i < t->n; i++) {
        struct md_entry *x = t->v[i];
        if (!x->removed && (x == e || (strncmp(x->path, norm, len) == 0 && x->path[len] == '/')))
            kill_entry(t, x);
    }
    free(norm);
    return 0;
}

MD_API int md_tree_contains(const md_tree *t, const char *path)
{
    char *norm;
    int r;

    if (!t)
        return -EINVAL;
    r = md_path_normalize(t->ctx, path, &norm);
    if (r < 0)
        return r;
    r = !*norm || md_tree_lookup(t, norm) != NULL;
    free(norm);
    return r;
}

/* ---- finalisation -------------------------------------------------------------- */

static int cmp_entry(const void *a, const void *b)
{
    const struct md_entry *x = *(const struct md_entry *const *)a;
    const struct md_entry *y = *(const struct md_entry *const *)b;
    return strcmp(x->path, y->path);
}

/* ---- the spool: archive contents on disk, not in memory --------------------- */

#define SPOOL_BUF (1u << 20)

static int spool_flush(md_tree *t)
{
    int r;

    if (!t->spool_buf_len)
        return 0;
    r = md_pwrite_full(t->spool_fd, t->spool_buf, t->spool_buf_len, t->spool_size - t->spool_buf_len);
    if (r < 0)
        return md_error_errno(t->ctx, r, "writing the spool file for archive contents");
    t->spool_buf_len = 0;
    return 0;
}

/* An unlinked file: nothing is left behind whatever happens to the process. */
static int spool_open(md_tree *t)
{
    const char *dir = getenv("TMPDIR");
    char *path;
    int fd;

    if (!dir || !*dir)
        dir = "/var/tmp"; /* on disk, unlike a tmpfs /tmp */
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        path = md_asprintf("%s/.libminidistro-spool.XXXXXX", dir);
        if (!path)
            return md_error(t->ctx, -ENOMEM, "out of memory");
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0)
            unlink(path);
        free(path);
    }
    if (fd < 0)
        return md_error_errno(t->ctx, -errno, "%s: cannot create a spool file for archive contents "
                              "(set TMPDIR to a writable directory)", dir);
    t->spool_buf = malloc(SPOOL_BUF);
    if (!t->spool_buf) {
        close(fd);
        return md_error(t->ctx, -ENOMEM, "out of memory");
    }
    t->spool_fd = fd;
    return 0;
}

int md_tree_spool_write(md_tree *t, const void *buf, size_t n, uint64_t *off)
{
    const char *p = buf;
    int r;

    if (t->spool_fd < 0 && (r = spool_open(t)) < 0)
        return r;
    *off = t->spool_size;
    while (n) {
        size_t k = SPOOL_BUF - t->spool_buf_len;
        if (k > n)
            k = n;
        memcpy(t->spool_buf + t->spool_buf_len, p, k);
        t->spool_buf_len += k;
        t->spool_size += k;
        p += k;
        n -= k;
        if (t->spool_buf_len == SPOOL_BUF && (r = spool_flush(t)) < 0)
            return r;
    }
    t->sorted = false; /* finalize flushes */
    return 0;
}

int md_tree_finalize(md_tree *t)
{
    size_t i, o = 0;
    uint32_t ino = 0;
    unsigned char *seen;
    int r;

    if (t->sorted)
        return 0;
    /* drop tombstones */
    for (i = 0; i < t->n; i++) {
        if (t->v[i]->removed)
            entry_free(t->v[i]);
        else
            t->v[o++] = t->v[i];
    }
    t->n = o;
    if (t->hash_cap)
        memset(t->hash, 0, t->hash_cap * sizeof(*t->hash));
    for (i = 0; i < t->n; i++)
        hash_insert_raw(t->hash, t->hash_cap, t->v[i]);
    if (t->n)
        qsort(t->v, t->n, sizeof(*t->v), cmp_entry);

    /* A master replaced by another hard link leaves a chain; a master
     * replaced by a non-file leaves links without data. */
    for (i = 0; i < t->n; i++) {
        struct md_entry *e = t->v[i];
        size_t hops = 0;
        while (e->master && e->master->master && hops++ < t->n)
            e->master = e->master->master;
        if (e->master && (e->master == e || !S_ISREG(e->master->mode)))
            return md_error(t->ctx, -EINVAL, "'%s': hard link to '%s', which is no longer a regular file",
                            e->path, e->master->path);
    }
    r = spool_flush(t);
    if (r < 0)
        return r;
    /* the root: its own attributes when a source gave them, else the defaults */
    if (!t->root_set)
        t->root.mtime = clamp_mtime(t->ctx, MD_MTIME_DEFAULT);
    t->root.nlink = 2;
    t->root.ino = ++ino;
    for (i = 0; i < t->n; i++) {
        struct md_entry *e = t->v[i];
        e->nlink = S_ISDIR(e->mode) ? 2 : 1;
        e->last_link = true;
        if (!e->master)
            e->ino = ++ino;
    }
    for (i = 0; i < t->n; i++) {
        struct md_entry *e = t->v[i];
        if (S_ISDIR(e->mode)) {
            struct md_entry *p = parent_of(t, e->path);
            (p ? p : &t->root)->nlink++;
        }
        if (e->master) {
            struct md_entry *m = e->master;
            e->ino = m->ino;
            m->nlink++;
            /* hard links share the master's attributes */
            e->mode = m->mode;
            e->uid = m->uid;
            e->gid = m->gid;
            e->mtime = m->mtime;
            e->size = m->size;
        }
    }
    /* Propagate group link counts and mark the last member of each group in
     * sorted order: newc stores the data once, with the last link. */
    seen = calloc((size_t)ino + 1, 1);
    if (!seen)
        return md_error(t->ctx, -ENOMEM, "out of memory");
    for (i = t->n; i-- > 0;) {
        struct md_entry *e = t->v[i];
        if (!S_ISREG(e->mode))
            continue;
        if (e->master)
            e->nlink = e->master->nlink;
        e->last_link = !seen[e->ino];
        seen[e->ino] = 1;
    }
    free(seen);
    t->sorted = true;
    return 0;
}

const struct md_entry *md_entry_data(const struct md_entry *e)
{
    return e->master ? e->master : e;
}

const char *md_data_file(const md_tree *t, const struct md_entry *e)
{
    const struct md_entry *m = md_entry_data(e);

    if (m->src == MD_SRC_HOST)
        return m->host_path;
    if (m->src == MD_SRC_SPOOL && m->spool_src)
        return t->archives[m->spool_src - 1].path;
    return NULL;
}

int md_data_archive_changed(md_ctx *ctx, const md_tree *t, const struct md_entry *e)
{
    return md_error(ctx, -ESTALE, "%s: %s: the archive changed while the image was being built",
                    e->path, md_data_file(t, e));
}

/* Archive @ar is as it was when its members were listed. */
static bool archive_unchanged(const struct md_archive_ref *ar)
{
    struct stat st;

    return fstat(ar->fd, &st) == 0 && st.st_size == ar->st.st_size &&
           st.st_mtim.tv_sec == ar->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == ar->st.st_mtim.tv_nsec &&
           st.st_ctim.tv_sec == ar->st.st_ctim.tv_sec && st.st_ctim.tv_nsec == ar->st.st_ctim.tv_nsec;
}

int md_data_open(md_tree *t, md_ctx *ctx, const struct md_entry *e, struct md_data *d)
{
    const struct md_entry *m = md_entry_data(e);
    struct stat st;
    int f, err;

    memset(d, 0, sizeof(*d));
    d->fd = -1;
    d->size = m->src == MD_SRC_NONE ? 0 : m->size;
    d->name = m->src == MD_SRC_HOST ? m->host_path : e->path;
    switch (m->src) {
    case MD_SRC_NONE:
        return 0;
    case MD_SRC_BUF:
        d->buf = m->buf;
        return 0;
    case MD_SRC_SPOOL:
        d->fd = t->spool_fd;
        d->off = m->spool_off;
        if (m->spool_src) {
            const struct md_archive_ref *ar = &t->archives[m->spool_src - 1];
            if (!archive_unchanged(ar)) {
                d->fd = -1;
                return ctx ? md_data_archive_changed(ctx, t, e) : -ESTALE;
            }
            d->fd = ar->fd;
        }
        return 0;
    case MD_SRC_HOST:
        break;
    }
    /* O_NONBLOCK: a file swapped for a FIFO does not block the open.  A
     * walked file is opened below the directory walked, no symlink
     * followed at any level (one swapped in for a directory or for the file
     * reads as ELOOP or ENOTDIR); a file the caller named may be one. */
    if (m->host_root) {
        f = md_openat_beneath(t->host_roots[m->host_root - 1], m->host_path + m->host_rel,
                              O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (f < 0)
            errno = -f;
    } else {
        f = open(m->host_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    }
    if (f < 0) {
        err = errno == ELOOP || errno == ENOTDIR || errno == EXDEV ? ESTALE : errno;
        goto fail;
    }
    if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != m->size ||
        (m->host_ino && ((uint64_t)st.st_dev != m->host_dev || (uint64_t)st.st_ino != m->host_ino))) {
        close(f);
        err = ESTALE;
        goto fail;
    }
    d->fd = f;
    d->own_fd = true;
    d->sparse = md_stat_sparse(&st);
    return 0;
fail:
    if (err == ESTALE)
        return md_error(ctx, -ESTALE, "%s: file changed or vanished while the image was being built",
                        m->host_path);
    return md_error_errno(ctx, -err, "%s", m->host_path);
}

int md_data_read(const struct md_data *d, void *buf, size_t n, uint64_t pos)
{
    if (pos > d->size || n > d->size - pos)
        return -EIO;
    if (d->fd < 0) {
        if (n)
            memcpy(buf, (const char *)d->buf + pos, n);
        return 0;
    }
    return md_pread_full(d->fd, buf, n, d->off + pos);
}

bool md_data_resized(const struct md_data *d, uint64_t *now)
{
    struct stat st;

    if (d->fd < 0 || !d->own_fd || d->off || fstat(d->fd, &st) < 0)
        return false;
    *now = (uint64_t)st.st_size;
    return *now != d->size;
}

int md_data_resized_error(md_ctx *ctx, const char *entry, const char *file, uint64_t now,
                          uint64_t listed)
{
    return md_error(ctx, -ESTALE,
                    "%s%s%s: file changed while the image was being built (%llu bytes now, %llu "
                    "when it was listed)",
                    entry ? entry : "", entry ? ": " : "", file, (unsigned long long)now,
                    (unsigned long long)listed);
}

void md_data_close(struct md_data *d)
{
    if (d->own_fd && d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    d->own_fd = false;
}

MD_API int md_tree_add_source(md_tree *t, uint32_t kind, const char *path, const md_host_opts *opts)
{
    struct stat st;

    if (!t || !path)
        return -EINVAL;
    switch (kind) {
    case MD_SOURCE_HOST:
        return md_tree_add_host(t, path, opts);
    case MD_SOURCE_ARCHIVE:
        return md_tree_add_archive(t, path);
    case MD_SOURCE_SPEC:
        return md_tree_add_spec(t, path, NULL);
    case MD_SOURCE_BUSYBOX:
        return md_tree_add_busybox(t, path, NULL);
    case MD_SOURCE_AUTO:
        if (stat(path, &st) < 0)
            return md_error_errno(t->ctx, -errno, "%s", path);
        if (S_ISDIR(st.st_mode))
            return md_tree_add_host(t, path, opts);
        if (!S_ISREG(st.st_mode))
            return md_error(t->ctx, -EINVAL, "%s: neither a directory nor an archive file", path);
        return md_tree_add_archive_guessed(t, path, true);
    default:
        return md_error(t->ctx, -EINVAL, "%s: unknown source kind %u", path, kind);
    }
}
