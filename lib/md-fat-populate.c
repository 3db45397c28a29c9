/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * md_fat_populate(): an md_tree into an empty FAT filesystem.  Everything
 * is planned in memory first — what each entry is, its names, each
 * directory's size, one contiguous run of clusters per directory and file
 * in the tree's order — so that every refusal comes before the first
 * write.  The FAT itself then follows from the list of runs.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "md-fat-internal.h"

#define CHUNK (1u << 20)

/* One directory or file of the tree (node 0 is the root, node i + 1 is
 * tree->v[i]). */
struct pnode {
    const struct md_entry *e;   /* NULL for the root */
    uint32_t parent;
    uint32_t first_child, last_child, next; /* children in tree order (0: none) */
    uint32_t nchildren;
    uint32_t slots;             /* directories: entries they hold */
    uint32_t cluster, nclusters;
    uint8_t sfn[11];
    uint8_t lcase;
    uint8_t lfn_slots;
    bool dir, skip;
    bool named;                 /* its short name is chosen */
};

struct plan {
    md_ctx *ctx;
    md_tree *tree;
    const struct md_fat_geom *g;
    uint32_t cb;                /* cluster bytes */
    bool skip_special;
    bool root_label;            /* the root's first entry is the volume label */
    struct pnode *n;
    size_t count;               /* nodes, the root included */
    uint64_t clusters;          /* needed */
    uint64_t data;              /* bytes of file data */
    /* what FAT cannot store */
    size_t n_special, n_owner, n_links, n_xattr;
    const char *first_special, *first_owner, *first_link, *first_xattr;
};

static void plan_free(struct plan *p)
{
    free(p->n);
    p->n = NULL;
}

static const char *kind_of(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFLNK: return "a symlink";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFIFO: return "a FIFO";
    default: return "a socket";
    }
}

/* The node of @path's parent directory: binary search in the sorted tree. */
static int parent_of(struct plan *p, const char *path, uint32_t *ret)
{
    const char *slash = strrchr(path, '/');
    size_t len, lo = 0, hi;

    if (!slash) {
        *ret = 0;
        return 0;
    }
    len = (size_t)(slash - path);
    hi = p->tree->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *q = p->tree->v[mid]->path;
        int c = strncmp(q, path, len);
        if (c == 0 && q[len])
            c = 1;
        if (c == 0) {
            *ret = (uint32_t)mid + 1;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return md_error(p->ctx, -EINVAL, "'%s': its directory is not in the tree", path);
}

static bool default_mode(const struct md_entry *e)
{
    uint32_t perm = e->mode & 07777;
    return S_ISDIR(e->mode) ? perm == 0755 : perm == 0644;
}

/* Entry kinds, sizes and the directory structure. */
static int plan_nodes(struct plan *p)
{
    size_t i;
    int r;

    p->count = p->tree->n + 1;
    p->n = md_calloc(p->count, sizeof(*p->n));
    if (!p->n)
        return md_error(p->ctx, -ENOMEM, "out of memory");
    p->n[0].dir = true;
    for (i = 0; i < p->tree->n; i++) {
        const struct md_entry *e = p->tree->v[i];
        struct pnode *n = &p->n[i + 1], *par;
        uint32_t pi = 0;

        n->e = e;
        if (!S_ISDIR(e->mode) && !S_ISREG(e->mode)) {
            if (!p->skip_special)
                return md_error(p->ctx, -EINVAL, "'%s' is %s, which FAT cannot hold (only directories and "
                                "regular files)", e->path, kind_of(e->mode));
            if (!p->n_special++)
                p->first_special = e->path;
            n->skip = true;
            continue;
        }
        n->dir = S_ISDIR(e->mode);
        if (!n->dir && e->size >= (UINT64_C(1) << 32))
            return md_error(p->ctx, -EFBIG, "'%s': %llu bytes: FAT files are smaller than 4 GiB",
                            e->path, (unsigned long long)e->size);
        if (e->uid || e->gid || !default_mode(e)) {
            if (!p->n_owner++)
                p->first_owner = e->path;
        }
        if (e->master || e->links_in) {
            if (!p->n_links++)
                p->first_link = e->path;
        }
        if (e->n_xattrs && !p->n_xattr++)
            p->first_xattr = e->path;
        r = parent_of(p, e->path, &pi);
        if (r < 0)
            return r;
        n->parent = pi;
        par = &p->n[pi];
        if (!par->dir || par->skip)
            return md_error(p->ctx, -EINVAL, "'%s': its parent is not a directory", e->path);
        if (par->last_child)
            p->n[par->last_child].next = (uint32_t)i + 1;
        else
            par->first_child = (uint32_t)i + 1;
        par->last_child = (uint32_t)i + 1;
        par->nchildren++;
        if (!n->dir)
            p->data += e->size;
    }
    return 0;
}

/* ---- names of one directory -------------------------------------------------------------- */

/* Open-addressing tables, sized for one directory at a time. */
struct names {
    uint32_t *fold;     /* node index by folded-name hash; 0 free */
    uint64_t *fold_h;
    uint32_t *sfn;      /* node index by short name; 0 free */
    struct tail { uint8_t basis[11]; uint32_t next; bool used; } *tails;
    size_t cap;
};

static void names_free(struct names *t)
{
    free(t->fold);
    free(t->fold_h);
    free(t->sfn);
    free(t->tails);
    memset(t, 0, sizeof(*t));
}

static int names_reset(struct plan *p, struct names *t, uint32_t n)
{
    size_t cap = 16;

    while (cap < (size_t)n * 2 + 2)
        cap *= 2;
    if (cap > t->cap) {
        names_free(t);
        t->fold = calloc(cap, sizeof(*t->fold));
        t->fold_h = calloc(cap, sizeof(*t->fold_h));
        t->sfn = calloc(cap, sizeof(*t->sfn));
        t->tails = calloc(cap, sizeof(*t->tails));
        if (!t->fold || !t->fold_h || !t->sfn || !t->tails) {
            names_free(t);
            return md_error(p->ctx, -ENOMEM, "out of memory");
        }
        t->cap = cap;
        return 0;
    }
    memset(t->fold, 0, t->cap * sizeof(*t->fold));
    memset(t->sfn, 0, t->cap * sizeof(*t->sfn));
    memset(t->tails, 0, t->cap * sizeof(*t->tails));
    return 0;
}

static const char *base_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int parse_name(struct plan *p, const struct md_entry *e, struct md_fat_name *nm)
{
    const char *b = base_of(e->path), *why = NULL;
    int r = md_fat_name_parse(b, strlen(b), nm, &why);

    if (r < 0)
        return md_error(p->ctx, r, "'%s': the name %s", e->path, why);
    return 0;
}

static uint64_t fold_hash(const struct md_fat_name *nm)
{
    uint64_t h = 1469598103934665603ULL;
    uint32_t i;

    for (i = 0; i < nm->n; i++) {
        uint16_t c = md_fat_upcase(nm->u[i]);
        h = md_fat_fnv64(h, &c, sizeof(c));
    }
    return h;
}

static bool same_folded(const struct md_fat_name *a, const struct md_fat_name *b)
{
    uint32_t i;

    if (a->n != b->n)
        return false;
    for (i = 0; i < a->n; i++)
        if (md_fat_upcase(a->u[i]) != md_fat_upcase(b->u[i]))
            return false;
    return true;
}

/* Refuse two names that FAT would take for one. */
static int check_case(struct plan *p, struct names *t, uint32_t idx, const struct md_fat_name *nm)
{
    uint64_t h = fold_hash(nm);
    size_t k = (size_t)h & (t->cap - 1);

    while (t->fold[k]) {
        if (t->fold_h[k] == h) {
            const struct md_entry *o = p->n[t->fold[k]].e;
            struct md_fat_name *other = malloc(sizeof(*other));
            const char *why;
            bool same;

            if (!other)
                return md_error(p->ctx, -ENOMEM, "out of memory");
            same = md_fat_name_parse(base_of(o->path), strlen(base_of(o->path)), other, &why) == 0 &&
                   same_folded(nm, other);
            free(other);
            if (same)
                return md_error(p->ctx, -EINVAL, "'%s' and '%s' differ only in case: FAT, which "
                                "ignores case, cannot hold both", o->path, p->n[idx].e->path);
        }
        k = (k + 1) & (t->cap - 1);
    }
    t->fold[k] = idx;
    t->fold_h[k] = h;
    return 0;
}

static size_t sfn_slot(const struct plan *p, const struct names *t, const uint8_t sfn[11], bool *found)
{
    uint64_t h = md_fat_fnv64(1469598103934665603ULL, sfn, 11);
    size_t k = (size_t)h & (t->cap - 1);

    *found = false;
    while (t->sfn[k]) {
        if (!memcmp(p->n[t->sfn[k]].sfn, sfn, 11)) {
            *found = true;
            break;
        }
        k = (k + 1) & (t->cap - 1);
    }
    return k;
}

/* The next ~N to try for a basis: the numbers below it are all taken. */
static struct tail *tail_of(struct names *t, const uint8_t basis[11])
{
    uint64_t h = md_fat_fnv64(1469598103934665603ULL, basis, 11);
    size_t k = (size_t)h & (t->cap - 1);

    while (t->tails[k].used && memcmp(t->tails[k].basis, basis, 11))
        k = (k + 1) & (t->cap - 1);
    if (!t->tails[k].used) {
        t->tails[k].used = true;
        memcpy(t->tails[k].basis, basis, 11);
        t->tails[k].next = 1;
    }
    return &t->tails[k];
}

static int dir_entries_error(struct plan *p, uint32_t d, uint64_t slots)
{
    const char *path = d ? p->n[d].e->path : "/";

    if (!d && p->g->type != 32)
        return md_error(p->ctx, -ENOSPC, "the root directory needs %llu entries (a long name takes one "
                        "per 13 characters and one more), but FAT%u's fixed root directory holds %u: "
                        "move entries into a subdirectory, or use FAT32", (unsigned long long)slots,
                        p->g->type, p->g->root_entries);
    return md_error(p->ctx, -ENOSPC, "directory '%s' needs %llu entries, more than the %u a FAT "
                    "directory holds", path, (unsigned long long)slots, FAT_DIR_MAX_SLOTS);
}

/* Short names for the children of directory @d: first the names that are
 * their own 8.3 form claim it, then the others get NAME~N.EXT, the
 * smallest N not taken, as Windows and Linux pick it (~1 .. ~9 on a
 * 6-character base; ~10 and on shorten the base further, where Linux
 * would use random digits). */
static int plan_dir(struct plan *p, struct names *t, uint32_t d, struct md_fat_name *nm)
{
    struct pnode *dn = &p->n[d];
    uint64_t slots = d ? 2 : p->root_label;
    uint32_t c;
    bool found;
    size_t k;
    int r;

    r = names_reset(p, t, dn->nchildren);
    if (r < 0)
        return r;
    for (c = dn->first_child; c; c = p->n[c].next) {
        struct pnode *cn = &p->n[c];

        if (cn->skip)
            continue;
        if ((r = parse_name(p, cn->e, nm)) < 0 || (r = check_case(p, t, c, nm)) < 0)
            return r;
        md_fat_name_basis(nm);
        if (!nm->exact)
            continue;
        memcpy(cn->sfn, nm->sfn, 11);
        k = sfn_slot(p, t, cn->sfn, &found);
        if (found)
            continue; /* only after a case collision, refused above: a ~N then */
        t->sfn[k] = c;
        cn->named = true;
        cn->lcase = nm->lcase;
        cn->lfn_slots = nm->lfn ? (uint8_t)md_fat_lfn_slots(nm->n) : 0;
    }
    for (c = dn->first_child; c; c = p->n[c].next) {
        struct pnode *cn = &p->n[c];
        struct tail *tl;

        if (cn->skip || cn->named)
            continue;
        if ((r = parse_name(p, cn->e, nm)) < 0)
            return r;
        md_fat_name_basis(nm);
        for (tl = tail_of(t, nm->sfn);; tl->next++) {
            if (tl->next > 999999)
                return md_error(p->ctx, -ENOSPC, "'%s': no short name left for it", cn->e->path);
            md_fat_name_tail(nm->sfn, tl->next, cn->sfn);
            k = sfn_slot(p, t, cn->sfn, &found);
            if (!found)
                break;
        }
        tl->next++;
        t->sfn[k] = c;
        cn->named = true;
        cn->lcase = 0;
        cn->lfn_slots = (uint8_t)md_fat_lfn_slots(nm->n);
    }
    for (c = dn->first_child; c; c = p->n[c].next)
        if (!p->n[c].skip)
            slots += 1 + p->n[c].lfn_slots;
    if ((!d && p->g->type != 32 && slots > p->g->root_entries) || slots > FAT_DIR_MAX_SLOTS)
        return dir_entries_error(p, d, slots);
    dn->slots = (uint32_t)slots;
    return 0;
}

/* Clusters in the tree's order: FAT32's root first, then each directory
 * and file where it comes. */
static void plan_clusters(struct plan *p)
{
    uint64_t next = 2;
    size_t i;

    for (i = 0; i < p->count; i++) {
        struct pnode *n = &p->n[i];
        uint64_t bytes;

        if (n->skip || (i == 0 && p->g->type != 32))
            continue;
        bytes = n->dir ? (uint64_t)n->slots * FAT_DIRENT : n->e->size;
        n->nclusters = (uint32_t)((bytes + p->cb - 1) / p->cb);
        if (n->dir && !n->nclusters)
            n->nclusters = 1;
        n->cluster = n->nclusters ? (uint32_t)next : 0;
        next += n->nclusters;
    }
    p->clusters = next - 2;
}

static int plan_run(struct plan *p)
{
    struct md_fat_name *nm;
    struct names t;
    size_t i;
    int r;

    r = md_tree_finalize(p->tree);
    if (r == 0)
        r = plan_nodes(p);
    if (r < 0)
        return r;
    nm = malloc(sizeof(*nm));
    if (!nm)
        return md_error(p->ctx, -ENOMEM, "out of memory");
    memset(&t, 0, sizeof(t));
    for (i = 0; i < p->count && r == 0; i++)
        if (p->n[i].dir && !p->n[i].skip)
            r = plan_dir(p, &t, (uint32_t)i, nm);
    names_free(&t);
    free(nm);
    if (r == 0)
        plan_clusters(p);
    return r;
}

int md_fat_tree_clusters(md_ctx *ctx, md_tree *tree, const struct md_fat_geom *g, uint64_t *clusters)
{
    struct plan p;
    int r;

    memset(&p, 0, sizeof(p));
    p.ctx = ctx;
    p.tree = tree;
    p.g = g;
    p.cb = g->spc * g->sector_size;
    p.root_label = true; /* room for a label, whether one is given or not */
    r = plan_run(&p);
    if (r == 0)
        *clusters = p.clusters;
    plan_free(&p);
    return r;
}

/* ---- writing ---------------------------------------------------------------------------------- */

struct pw {
    md_fat *f;
    struct plan *p;
    const md_fat_populate_opts *o;
    uint64_t done;
    uint8_t label[FAT_DIRENT];
    uint8_t *buf;               /* CHUNK */
};

static bool all_zero(const uint8_t *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static uint64_t cluster_rel(const md_fat *f, uint32_t c)
{
    return md_fat_cluster_off(f, c);
}

static int write_file(struct pw *w, const struct pnode *n)
{
    md_fat *f = w->f;
    uint64_t pos = 0, size = n->e->size, end = (uint64_t)n->nclusters * f->cluster_bytes;
    uint64_t at = cluster_rel(f, n->cluster);
    struct md_data d;
    int r;

    r = md_data_open(w->p->tree, f->ctx, n->e, &d);
    if (r < 0)
        return r;
    while (pos < end) {
        size_t len = end - pos < CHUNK ? (size_t)(end - pos) : CHUNK;
        size_t have = pos < size ? (size - pos < len ? (size_t)(size - pos) : len) : 0;

        if (have) {
            r = md_data_read(&d, w->buf, have, pos);
            if (r < 0) {
                r = r == -EIO ? md_error(f->ctx, -ESTALE, "%s: shorter than when it was listed",
                                         d.name)
                              : md_error_errno(f->ctx, r, "%s: reading", d.name);
                break;
            }
        }
        memset(w->buf + have, 0, len - have);
        /* a new filesystem reads as zeros already: keep it sparse */
        if (!f->fresh || !all_zero(w->buf, len)) {
            r = md_fat_pwrite(f, w->buf, len, at + pos);
            if (r < 0)
                break;
        }
        pos += len;
        if (have) {
            w->done += have;
            if (w->o->progress && w->o->progress(w->o->userdata, w->done, w->p->data)) {
                r = md_error(f->ctx, -ECANCELED, "cancelled");
                break;
            }
        }
    }
    md_data_close(&d);
    return r;
}

static int write_dir(struct pw *w, uint32_t d, struct md_fat_name *nm)
{
    static const uint8_t dot[11] = ".          ", dotdot[11] = "..         ";
    struct plan *p = w->p;
    md_fat *f = w->f;
    const struct pnode *dn = &p->n[d];
    bool fixed = !d && f->g.type != 32;
    size_t len = fixed ? (size_t)f->g.root_entries * FAT_DIRENT : (size_t)dn->nclusters * f->cluster_bytes;
    uint8_t *b = calloc(1, len), *e;
    int64_t t = d ? dn->e->mtime : 0;
    uint32_t c;
    int r;

    if (!b)
        return md_error(f->ctx, -ENOMEM, "out of memory");
    e = b;
    if (!d && p->root_label) {
        memcpy(e, w->label, FAT_DIRENT);
        e += FAT_DIRENT;
    }
    if (d) {
        uint32_t up = dn->parent ? p->n[dn->parent].cluster : 0; /* ".." of a child of the root is 0 */
        md_fat_dirent(f->g.type, e, dot, FAT_ATTR_DIR, 0, dn->cluster, 0, t);
        md_fat_dirent(f->g.type, e + FAT_DIRENT, dotdot, FAT_ATTR_DIR, 0, up, 0, t);
        e += 2 * FAT_DIRENT;
    }
    for (c = dn->first_child; c; c = p->n[c].next) {
        const struct pnode *cn = &p->n[c];
        const char *why;

        if (cn->skip)
            continue;
        if (cn->lfn_slots) {
            const char *b0 = base_of(cn->e->path);
            (void)md_fat_name_parse(b0, strlen(b0), nm, &why); /* checked when planned */
            memcpy(nm->sfn, cn->sfn, 11);
            md_fat_lfn_encode(nm, e);
            e += (size_t)cn->lfn_slots * FAT_DIRENT;
        }
        md_fat_dirent(f->g.type, e, cn->sfn, cn->dir ? FAT_ATTR_DIR : FAT_ATTR_ARCH, cn->lcase, cn->cluster,
                cn->dir ? 0 : (uint32_t)cn->e->size, cn->e->mtime);
        e += FAT_DIRENT;
    }
    if (fixed)
        r = md_fat_pwrite(f, b, len, (uint64_t)(f->g.reserved + f->g.nfats * f->g.fat_sectors) *
                                     f->g.sector_size);
    else
        r = md_fat_pwrite(f, b, len, cluster_rel(f, dn->cluster));
    free(b);
    return r;
}

/* The whole FAT from the runs: every run chains to its next cluster and
 * ends with an end mark; nothing else is in use. */
static int write_fat(struct pw *w)
{
    md_fat *f = w->f;
    struct plan *p = w->p;
    uint32_t bits = f->g.type, used_end = (uint32_t)(2 + p->clusters);
    uint32_t eoc = bits == 12 ? 0xfff : bits == 16 ? 0xffff : 0x0fffffff;
    uint64_t fat_len = (uint64_t)f->g.fat_sectors * f->g.sector_size, pos;
    const size_t per = 8192; /* entries per piece: even, so FAT12 pairs never split */
    size_t piece = per * bits / 8, ni = 0;
    uint32_t c = 0;
    int r;

    /* the runs' last clusters in order: allocation followed the nodes */
    while (ni < p->count && !p->n[ni].nclusters)
        ni++;
    for (pos = 0; pos < fat_len; pos += piece) {
        size_t len = fat_len - pos < piece ? (size_t)(fat_len - pos) : piece, k;
        uint32_t i;

        memset(w->buf, 0, piece);
        for (k = 0; k < per && c < f->g.clusters + 2; k++, c++) {
            uint32_t v;

            if (c == 0)
                v = (eoc & ~0xffu) | f->media;
            else if (c == 1)
                v = eoc;
            else if (c < used_end) {
                const struct pnode *n = &p->n[ni];
                if (c == n->cluster + n->nclusters - 1) {
                    v = eoc;
                    ni++;
                    while (ni < p->count && !p->n[ni].nclusters)
                        ni++;
                } else {
                    v = c + 1;
                }
            } else
                v = 0;
            if (bits == 32) {
                md_put_le32(w->buf + k * 4, v);
            } else if (bits == 16) {
                md_put_le16(w->buf + k * 2, (uint16_t)v);
            } else {
                uint8_t *q = w->buf + k / 2 * 3;
                if (k % 2 == 0) {
                    q[0] = (uint8_t)v;
                    q[1] = (uint8_t)((q[1] & 0xf0) | (v >> 8));
                } else {
                    q[1] = (uint8_t)((q[1] & 0x0f) | ((v & 0xf) << 4));
                    q[2] = (uint8_t)(v >> 4);
                }
            }
        }
        if (f->fresh && all_zero(w->buf, len))
            continue;
        f->win_len = 0; /* what md_fat_get_entry() cached is stale now */
        for (i = 0; i < f->g.nfats; i++) {
            uint64_t at = (uint64_t)(f->g.reserved + (uint64_t)i * f->g.fat_sectors) * f->g.sector_size;
            r = md_fat_pwrite(f, w->buf, len, at + pos);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int write_fsinfo(struct pw *w)
{
    md_fat *f = w->f;
    uint8_t s[512];
    uint32_t used = (uint32_t)w->p->clusters;
    int r;

    if (f->g.type != 32 || !f->g.fsinfo)
        return 0;
    r = md_fat_pread(f, s, sizeof(s), (uint64_t)f->g.fsinfo * f->g.sector_size);
    if (r < 0)
        return r;
    md_put_le32(s + 488, f->g.clusters - used);
    md_put_le32(s + 492, 2 + used - 1); /* the last cluster allocated */
    r = md_fat_pwrite(f, s, sizeof(s), (uint64_t)f->g.fsinfo * f->g.sector_size);
    if (r == 0 && f->g.backup && f->g.backup + f->g.fsinfo < f->g.reserved) {
        uint8_t b[512];
        /* the backup FSInfo only where one is (mkfs.fat writes it beside the backup boot sector) */
        if (md_fat_pread(f, b, sizeof(b), (uint64_t)(f->g.backup + f->g.fsinfo) * f->g.sector_size) == 0 &&
            md_get_le32(b) == 0x41615252)
            r = md_fat_pwrite(f, s, sizeof(s), (uint64_t)(f->g.backup + f->g.fsinfo) * f->g.sector_size);
    }
    return r;
}

/* The root's contents when the filesystem was not made by this handle: it
 * must be empty, the label aside, and no cluster in use but the root's. */
static int check_empty(md_fat *f, uint8_t label[FAT_DIRENT], bool *has_label)
{
    char where[512];
    uint32_t nfree, root_clusters = 0, c = f->g.root_cluster;
    size_t len = f->g.type == 32 ? f->cluster_bytes : (size_t)f->g.root_entries * FAT_DIRENT, i;
    uint64_t at = f->g.type == 32 ? cluster_rel(f, c)
                                  : (uint64_t)(f->g.reserved + f->g.nfats * f->g.fat_sectors) * f->g.sector_size;
    uint8_t *b;
    int r;

    md_fat_where(f, where, sizeof(where));
    *has_label = false;
    if (f->g.type == 32 && f->g.root_cluster != 2)
        return md_error(f->ctx, -ENOTSUP, "%s: the root directory starts at cluster %u: populating "
                        "needs it at cluster 2 (format the filesystem with md_fat_format)", where, c);
    b = malloc(len);
    if (!b)
        return md_error(f->ctx, -ENOMEM, "out of memory");
    r = md_fat_pread(f, b, len, at);
    for (i = 0; r == 0 && i < len && b[i] != 0; i += FAT_DIRENT) {
        uint8_t attr = b[i + 11];
        if (b[i] == 0xe5)
            continue;
        if ((attr & FAT_ATTR_VOLUME) && attr != FAT_ATTR_LFN && !*has_label) {
            memcpy(label, b + i, FAT_DIRENT);
            *has_label = true;
            continue;
        }
        r = md_error(f->ctx, -ENOTEMPTY, "%s: populating fills an empty FAT filesystem, and this one "
                     "has entries in its root directory", where);
    }
    free(b);
    if (r < 0)
        return r;
    for (; f->g.type == 32 && c; root_clusters++) {
        if (root_clusters > f->g.clusters)
            return md_error(f->ctx, -EIO, "%s: the root directory's cluster chain loops", where);
        r = md_fat_next(f, c, "root directory", &c);
        if (r < 0)
            return r;
    }
    r = md_fat_count_free(f, &nfree);
    if (r < 0)
        return r;
    if (nfree + root_clusters != f->g.clusters)
        return md_error(f->ctx, -ENOTEMPTY, "%s: populating fills an empty FAT filesystem, and %u "
                        "clusters of this one are in use", where, f->g.clusters - nfree - root_clusters);
    return 0;
}

static void report_dropped(struct plan *p)
{
    if (p->n_special)
        md_warn(p->ctx, "FAT cannot hold symlinks, device nodes, FIFOs or sockets: %zu left out ('%s'%s)",
                p->n_special, p->first_special, p->n_special > 1 ? " and others" : "");
    if (p->n_owner)
        md_warn(p->ctx, "FAT has no owners or modes: %zu entr%s with an owner other than 0:0 or a "
                "mode other than 0644/0755 ('%s'%s) stored without them", p->n_owner,
                p->n_owner > 1 ? "ies" : "y", p->first_owner, p->n_owner > 1 ? " and others" : "");
    if (p->n_links)
        md_warn(p->ctx, "FAT has no hard links: %zu hard-linked names ('%s'%s) stored as separate copies",
                p->n_links, p->first_link, p->n_links > 1 ? " and others" : "");
    if (p->n_xattr)
        md_warn(p->ctx, "FAT has no extended attributes: dropped those of %zu entr%s ('%s'%s)",
                p->n_xattr, p->n_xattr > 1 ? "ies" : "y", p->first_xattr,
                p->n_xattr > 1 ? " and others" : "");
}

static int populate_write(struct pw *w)
{
    struct plan *p = w->p;
    struct md_fat_name *nm = malloc(sizeof(*nm));
    size_t i;
    int r = 0;

    w->buf = malloc(CHUNK);
    if (!nm || !w->buf) {
        free(nm);
        return md_error(w->f->ctx, -ENOMEM, "out of memory");
    }
    for (i = 1; i < p->count && r == 0; i++)
        if (!p->n[i].skip && !p->n[i].dir && p->n[i].nclusters)
            r = write_file(w, &p->n[i]);
    for (i = 0; i < p->count && r == 0; i++)
        if (!p->n[i].skip && p->n[i].dir)
            r = write_dir(w, (uint32_t)i, nm);
    if (r == 0)
        r = write_fat(w);
    if (r == 0)
        r = write_fsinfo(w);
    free(nm);
    free(w->buf);
    return r;
}

MD_API int md_fat_populate(md_fat *f, md_tree *tree, const md_fat_populate_opts *opts)
{
    static const md_fat_populate_opts def = MD_FAT_POPULATE_OPTS_INIT;
    char where[512];
    struct plan p;
    struct pw w;
    bool has_label = false;
    int r;

    if (!f || !tree)
        return -EINVAL;
    md_fat_where(f, where, sizeof(where));
    if (opts) {
        r = md_check_version(f->ctx, "md_fat_populate_opts", opts->version, MD_FAT_POPULATE_OPTS_VERSION);
        if (r < 0)
            return r;
        if (opts->flags & ~MD_FAT_SKIP_SPECIAL)
            return md_error(f->ctx, -EINVAL, "md_fat_populate_opts: unknown flags 0x%x", opts->flags);
    }
    if (f->rdonly)
        return md_error(f->ctx, -EROFS, "%s: opened read-only", where);
    memset(&w, 0, sizeof(w));
    w.f = f;
    w.o = opts ? opts : &def;
    if (f->populated && f->fresh) {
        /* what this handle wrote is not empty any more */
        return md_error(f->ctx, -ENOTEMPTY, "%s: already populated: populating fills an empty FAT "
                        "filesystem", where);
    }
    if (f->fresh) {
        uint64_t at = f->g.type == 32 ? cluster_rel(f, f->g.root_cluster)
                                      : (uint64_t)(f->g.reserved + f->g.nfats * f->g.fat_sectors) * f->g.sector_size;
        r = md_fat_pread(f, w.label, FAT_DIRENT, at);
        if (r < 0)
            return r;
        has_label = w.label[0] && (w.label[11] & FAT_ATTR_VOLUME);
    } else {
        r = check_empty(f, w.label, &has_label);
        if (r < 0)
            return r;
    }
    memset(&p, 0, sizeof(p));
    p.ctx = f->ctx;
    p.tree = tree;
    p.g = &f->g;
    p.cb = f->cluster_bytes;
    p.skip_special = w.o->flags & MD_FAT_SKIP_SPECIAL;
    p.root_label = has_label;
    r = plan_run(&p);
    if (r == 0 && p.clusters > f->g.clusters)
        r = md_error(f->ctx, -ENOSPC, "%s: the files need %llu clusters of %u bytes (%llu KiB), the "
                     "filesystem has %u (%llu KiB)", where, (unsigned long long)p.clusters,
                     f->cluster_bytes, (unsigned long long)(p.clusters * f->cluster_bytes / 1024),
                     f->g.clusters, (unsigned long long)f->g.clusters * f->cluster_bytes / 1024);
    if (r < 0) {
        plan_free(&p);
        return r;
    }
    report_dropped(&p);
    w.p = &p;
    r = populate_write(&w);
    plan_free(&p);
    f->populated = true;
    return r;
}
