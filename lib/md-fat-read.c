/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading FAT back: directories (long names reassembled and checked
 * against their short entry's checksum), path lookup as FAT compares names,
 * stat, and file contents streamed along their cluster chains.  Every
 * chain is followed with a bound, so a corrupt or hostile image gives an
 * error, never a loop or a read outside the partition.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "md-fat-internal.h"

#define NAME_MAX_UTF8 (FAT_LFN_MAX * 3 + 1)
#define READ_RUN (1u << 20)

struct dent {
    char name[NAME_MAX_UTF8];
    md_fat_stat st;
};

/* ---- directories ----------------------------------------------------------------------- */

/* The contents of the directory starting at @cluster (0: the root) into a
 * new buffer.  @what names it in messages. */
static int dir_load(md_fat *f, uint32_t cluster, const char *what, uint8_t **ret, size_t *len)
{
    uint32_t max = (FAT_DIR_MAX_SLOTS * FAT_DIRENT + f->cluster_bytes - 1) / f->cluster_bytes, n = 0;
    uint8_t *b = NULL;
    int r;

    *ret = NULL;
    *len = 0;
    if (!cluster && f->g.type != 32) {
        size_t sz = (size_t)f->g.root_entries * FAT_DIRENT;
        b = malloc(sz);
        if (!b)
            return md_error(f->ctx, -ENOMEM, "out of memory");
        r = md_fat_pread(f, b, sz, (uint64_t)(f->g.reserved + (uint64_t)f->g.nfats * f->g.fat_sectors) *
                                    f->g.sector_size);
        if (r < 0) {
            free(b);
            return r;
        }
        *ret = b;
        *len = sz;
        return 0;
    }
    if (!cluster)
        cluster = f->g.root_cluster;
    if (cluster < 2 || cluster >= f->g.clusters + 2)
        return md_error(f->ctx, -EIO, "%s: starts at cluster %u, outside the filesystem: corrupt", what,
                        cluster);
    while (cluster) {
        uint8_t *nb;

        if (n == max) {
            free(b);
            return md_error(f->ctx, -EIO, "%s: its cluster chain is longer than a FAT directory can be "
                            "(65536 entries): it loops, or the filesystem is corrupt", what);
        }
        nb = realloc(b, (size_t)(n + 1) * f->cluster_bytes);
        if (!nb) {
            free(b);
            return md_error(f->ctx, -ENOMEM, "out of memory");
        }
        b = nb;
        r = md_fat_pread(f, b + (size_t)n * f->cluster_bytes, f->cluster_bytes,
                         md_fat_cluster_off(f, cluster));
        if (r == 0)
            r = md_fat_next(f, cluster, what, &cluster);
        if (r < 0) {
            free(b);
            return r;
        }
        n++;
    }
    *ret = b;
    *len = (size_t)n * f->cluster_bytes;
    return 0;
}

static void fill_stat(const md_fat *f, const uint8_t *e, md_fat_stat *st)
{
    uint16_t cdate = md_get_le16(e + 16);

    memset(st, 0, sizeof(*st));
    st->version = MD_FAT_STAT_VERSION;
    st->attr = e[11];
    st->cluster = md_get_le16(e + 26) | (f->g.type == 32 ? (uint32_t)md_get_le16(e + 20) << 16 : 0);
    if (e[11] & FAT_ATTR_DIR) {
        st->mode = S_IFDIR | 0755;
    } else {
        st->mode = S_IFREG | ((e[11] & FAT_ATTR_RO) ? 0444 : 0644);
        st->size = md_get_le32(e + 28);
    }
    st->mtime = md_fat_time_from(md_get_le16(e + 24), md_get_le16(e + 22));
    if (cdate)
        st->ctime = md_fat_time_from(cdate, md_get_le16(e + 14)) + e[13] / 100;
    md_fat_sfn_plain(e, st->short_name);
}

/* Long-name slots being collected. */
struct lfn {
    uint16_t u[20 * FAT_LFN_CHARS];
    int expect;     /* the sequence number wanted next; 0: none pending */
    int total;
    uint8_t sum;
    bool active;
};

static void lfn_slot(struct lfn *l, const uint8_t *e)
{
    static const uint8_t pos[FAT_LFN_CHARS] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
    int seq = e[0] & 0x1f, j;

    if (e[0] & 0x40) {
        if (seq < 1 || seq > 20) {
            l->active = false;
            return;
        }
        l->active = true;
        l->total = seq;
        l->expect = seq;
        l->sum = e[13];
    }
    if (!l->active || seq != l->expect || e[13] != l->sum || md_get_le16(e + 26)) {
        l->active = false;
        return;
    }
    for (j = 0; j < (int)FAT_LFN_CHARS; j++)
        l->u[(seq - 1) * FAT_LFN_CHARS + j] = md_get_le16(e + pos[j]);
    l->expect--;
}

/* The long name that ends at short entry @e, if its slots are complete and
 * their checksum is the short name's. */
static bool lfn_take(struct lfn *l, const uint8_t *e, char *out)
{
    size_t n = 0, max;

    if (!l->active || l->expect != 0 || md_fat_lfn_checksum(e) != l->sum) {
        l->active = false;
        return false;
    }
    l->active = false;
    max = (size_t)l->total * FAT_LFN_CHARS;
    while (n < max && l->u[n] != 0x0000)
        n++;
    if (!n || n > FAT_LFN_MAX)
        return false;
    md_fat_utf16_to_utf8(l->u, n, out);
    return true;
}

/* A name md_fat_list() may give: one path component, so that a caller who
 * joins it to the directory's path reaches the entry and nothing else (an
 * empty name is the directory itself, ".." its parent, "a/b" another). */
static bool usable_name(const char *s)
{
    return *s && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/');
}

/* Call @fn for each entry of the directory in @b (@len bytes) but ".", ".."
 * and the volume label.  A long name that is not one path component gives
 * way to the short name, as one whose checksum is wrong does; an entry
 * whose short name is blank too is left out, counted in *@unnamed. */
static int dir_walk(md_fat *f, const uint8_t *b, size_t len, int (*fn)(void *ud, struct dent *d),
                    void *ud, size_t *unnamed)
{
    struct lfn *l = malloc(sizeof(*l));
    struct dent *d = malloc(sizeof(*d));
    size_t i;
    int r = 0;

    if (!l || !d) {
        free(l);
        free(d);
        return md_error(f->ctx, -ENOMEM, "out of memory");
    }
    l->active = false;
    for (i = 0; i + FAT_DIRENT <= len; i += FAT_DIRENT) {
        const uint8_t *e = b + i;

        if (e[0] == 0x00)
            break;
        if (e[0] == 0xe5) {
            l->active = false;
            continue;
        }
        if ((e[11] & 0x3f) == FAT_ATTR_LFN) {
            lfn_slot(l, e);
            continue;
        }
        if (e[11] & FAT_ATTR_VOLUME) {
            l->active = false;
            continue;
        }
        if (e[0] == '.' && (!memcmp(e, ".          ", 11) || !memcmp(e, "..         ", 11))) {
            l->active = false;
            continue;
        }
        if (!lfn_take(l, e, d->name) || !usable_name(d->name))
            md_fat_sfn_display(e, e[12], d->name);
        if (!usable_name(d->name)) {
            if (unnamed)
                ++*unnamed;
            continue;
        }
        fill_stat(f, e, &d->st);
        r = fn(ud, d);
        if (r)
            break;
    }
    free(l);
    free(d);
    return r;
}

/* ---- lookup ------------------------------------------------------------------------------- */

struct find {
    const char *want;
    struct dent *hit;
    bool found;
};

static int find_one(void *ud, struct dent *d)
{
    struct find *s = ud;

    if (md_fat_name_cmp_ci(s->want, d->name) && md_fat_name_cmp_ci(s->want, d->st.short_name))
        return 0;
    *s->hit = *d;
    s->found = true;
    return 1;
}

/* @path's entry into @out; *@dcl: for a directory, what dir_load() takes
 * (0 for the root). */
static int lookup(md_fat *f, const char *path, struct dent *out, uint32_t *dcl)
{
    char *copy = strdup(path ? path : ""), *save = NULL, *comp;
    char shown[600];
    size_t shown_len = 0;
    int r = 0;

    if (!copy)
        return md_error(f->ctx, -ENOMEM, "out of memory");
    memset(out, 0, sizeof(*out));
    out->st.version = MD_FAT_STAT_VERSION;
    out->st.mode = S_IFDIR | 0755;
    out->st.attr = FAT_ATTR_DIR;
    out->st.cluster = f->g.type == 32 ? f->g.root_cluster : 0;
    shown[0] = '\0';
    *dcl = 0;
    for (comp = strtok_r(copy, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        struct find s;
        uint8_t *b;
        size_t len;

        if (!strcmp(comp, "."))
            continue;
        if (!strcmp(comp, "..")) {
            r = md_error(f->ctx, -EINVAL, "%s: '..' in a path inside the filesystem", path);
            break;
        }
        if (!S_ISDIR(out->st.mode)) {
            r = md_error(f->ctx, -ENOTDIR, "%s: not a directory", shown[0] ? shown : "/");
            break;
        }
        if (shown_len < sizeof(shown) - 2)
            shown_len += (size_t)snprintf(shown + shown_len, sizeof(shown) - shown_len, "/%s", comp);
        r = dir_load(f, *dcl, shown, &b, &len);
        if (r < 0)
            break;
        s.want = comp;
        s.hit = out;
        s.found = false;
        r = dir_walk(f, b, len, find_one, &s, NULL);
        free(b);
        if (r < 0)
            break;
        r = 0;
        if (!s.found) {
            r = md_error(f->ctx, -ENOENT, "%s: no such file or directory", shown);
            break;
        }
        if (S_ISDIR(out->st.mode) && !out->st.cluster) {
            /* ".." style 0 is the root; a subdirectory at cluster 0 is corrupt */
            r = md_error(f->ctx, -EIO, "%s: a directory without clusters: corrupt filesystem", shown);
            break;
        }
        *dcl = out->st.cluster;
    }
    free(copy);
    return r;
}

MD_API int md_fat_stat_path(md_fat *f, const char *path, md_fat_stat *st)
{
    struct dent *d;
    uint32_t dcl;
    int r;

    if (!f || !st)
        return -EINVAL;
    r = md_check_version(f->ctx, "md_fat_stat", st->version, MD_FAT_STAT_VERSION);
    if (r < 0)
        return r;
    d = malloc(sizeof(*d));
    if (!d)
        return md_error(f->ctx, -ENOMEM, "out of memory");
    r = lookup(f, path, d, &dcl);
    if (r == 0)
        *st = d->st;
    free(d);
    return r;
}

/* ---- listing ---------------------------------------------------------------------------------- */

struct collect {
    md_fat *f;
    struct dent *v;
    size_t n, cap;
};

static int collect_one(void *ud, struct dent *d)
{
    struct collect *c = ud;

    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct dent *v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            return md_error(c->f->ctx, -ENOMEM, "out of memory");
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = *d;
    return 0;
}

static int cmp_dent(const void *a, const void *b)
{
    return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

MD_API int md_fat_list(md_fat *f, const char *path, md_fat_list_fn fn, void *userdata)
{
    struct collect c;
    struct dent *d;
    uint8_t *b = NULL;
    size_t len, i, unnamed = 0;
    uint32_t dcl = 0;
    int r;

    if (!f || !fn)
        return -EINVAL;
    d = malloc(sizeof(*d));
    if (!d)
        return md_error(f->ctx, -ENOMEM, "out of memory");
    r = lookup(f, path, d, &dcl);
    if (r == 0 && !S_ISDIR(d->st.mode))
        r = md_error(f->ctx, -ENOTDIR, "%s: not a directory", path);
    if (r == 0)
        r = dir_load(f, dcl, path && *path ? path : "/", &b, &len);
    free(d);
    if (r < 0)
        return r;
    memset(&c, 0, sizeof(c));
    c.f = f;
    r = dir_walk(f, b, len, collect_one, &c, &unnamed);
    free(b);
    if (r == 0 && unnamed)
        md_warn(f->ctx, "%s: %zu directory entr%s without a name (a blank short name) left out: "
                "corrupt filesystem?", path && *path ? path : "/", unnamed, unnamed == 1 ? "y" : "ies");
    if (r == 0 && c.n)
        qsort(c.v, c.n, sizeof(*c.v), cmp_dent);
    for (i = 0; r == 0 && i < c.n; i++) {
        r = fn(userdata, c.v[i].name, &c.v[i].st);
        if (r < 0)
            r = -ECANCELED;
    }
    free(c.v);
    return r;
}

/* ---- contents ------------------------------------------------------------------------------------ */

/* Stream regular file @path to @fn in runs of contiguous clusters. */
static int read_stream(md_fat *f, const char *path, int (*fn)(void *ud, const void *p, size_t n),
                       void *ud, uint64_t *size_ret)
{
    struct dent *d = malloc(sizeof(*d));
    uint64_t size, done = 0;
    uint32_t c, dcl;
    uint8_t *buf = NULL;
    int r;

    if (!d)
        return md_error(f->ctx, -ENOMEM, "out of memory");
    r = lookup(f, path, d, &dcl);
    if (r == 0 && S_ISDIR(d->st.mode))
        r = md_error(f->ctx, -EISDIR, "%s: is a directory", path);
    size = d->st.size;
    c = d->st.cluster;
    free(d);
    if (r < 0)
        return r;
    if (size_ret)
        *size_ret = size;
    /* a size no chain can hold is refused before anything is allocated for
     * it (md_fat_read_file() takes the size as its buffer's), and bounds the
     * reading of a chain that loops to the size of the data area */
    if (size > (uint64_t)f->g.clusters * f->cluster_bytes)
        return md_error(f->ctx, -EIO, "%s: its size, %llu bytes, is larger than the filesystem's "
                        "%llu bytes of data clusters: corrupt filesystem", path,
                        (unsigned long long)size,
                        (unsigned long long)f->g.clusters * f->cluster_bytes);
    if (size && (c < 2 || c >= f->g.clusters + 2))
        return md_error(f->ctx, -EIO, "%s: %llu bytes starting at cluster %u, outside the filesystem: "
                        "corrupt", path, (unsigned long long)size, c);
    if (size) {
        buf = malloc(READ_RUN > f->cluster_bytes ? READ_RUN : f->cluster_bytes);
        if (!buf)
            return md_error(f->ctx, -ENOMEM, "out of memory");
    }
    while (done < size) {
        uint32_t first = c, n = 0, next = c;
        size_t len;

        /* a run of consecutive clusters, at most READ_RUN bytes and no
         * further than the size: the chain is bounded by the size */
        while (next == first + n && (uint64_t)(n + 1) * f->cluster_bytes <= READ_RUN &&
               done + (uint64_t)n * f->cluster_bytes < size) {
            n++;
            r = md_fat_next(f, first + n - 1, path, &next);
            if (r < 0)
                goto out;
        }
        if (!n)
            n = 1;
        len = (size_t)n * f->cluster_bytes;
        if (len > size - done)
            len = (size_t)(size - done);
        r = md_fat_pread(f, buf, len, md_fat_cluster_off(f, first));
        if (r < 0)
            goto out;
        r = fn(ud, buf, len);
        if (r < 0)
            goto out;
        done += len;
        c = next;
        if (done < size && !c) {
            r = md_error(f->ctx, -EIO, "%s: its cluster chain ends after %llu of its %llu bytes: "
                         "corrupt filesystem", path, (unsigned long long)done, (unsigned long long)size);
            goto out;
        }
        if (done == size && c) {
            /* a chain that goes on past the size: a loop, or clusters lost to the file */
            r = md_error(f->ctx, -EIO, "%s: its cluster chain goes on past its %llu bytes (it loops, "
                         "or the filesystem is corrupt)", path, (unsigned long long)size);
            goto out;
        }
    }
out:
    free(buf);
    return r;
}

struct membuf {
    md_ctx *ctx;
    char *p;
    size_t n, cap;
};

static int to_mem(void *ud, const void *p, size_t n)
{
    struct membuf *m = ud;

    if (!m->p) {
        m->p = malloc(m->cap + 1);
        if (!m->p)
            return md_error(m->ctx, -ENOMEM, "out of memory");
    }
    if (n > m->cap - m->n)
        return md_error(m->ctx, -EIO, "file longer than its size");
    memcpy(m->p + m->n, p, n);
    m->n += n;
    return 0;
}

MD_API int md_fat_read_file(md_fat *f, const char *path, void **data, size_t *size)
{
    md_fat_stat st = MD_FAT_STAT_INIT;
    struct membuf m;
    int r;

    if (!f || !path || !data)
        return -EINVAL;
    r = md_fat_stat_path(f, path, &st);
    if (r < 0)
        return r;
    if (S_ISDIR(st.mode))
        return md_error(f->ctx, -EISDIR, "%s: is a directory", path);
    memset(&m, 0, sizeof(m));
    m.ctx = f->ctx;
    m.cap = (size_t)st.size;
    r = read_stream(f, path, to_mem, &m, NULL);
    if (r == 0 && !m.p && !(m.p = malloc(1)))
        r = md_error(f->ctx, -ENOMEM, "out of memory");
    if (r < 0) {
        free(m.p);
        return r;
    }
    m.p[m.n] = '\0';
    *data = m.p;
    if (size)
        *size = m.n;
    return 0;
}

struct fdout {
    md_ctx *ctx;
    const char *name;
    int fd;
};

static int to_fd(void *ud, const void *p, size_t n)
{
    struct fdout *o = ud;
    int r = md_write_full(o->fd, p, n);
    if (r < 0)
        return md_error_errno(o->ctx, r, "%s: writing", o->name);
    return 0;
}

MD_API int md_fat_extract_file(md_fat *f, const char *path, const char *host_path)
{
    md_fat_stat st = MD_FAT_STAT_INIT;
    struct fdout o;
    md_tmpfile t;
    int r;

    if (!f || !path || !host_path)
        return -EINVAL;
    /* look before creating anything: a missing file leaves no output */
    r = md_fat_stat_path(f, path, &st);
    if (r == 0 && S_ISDIR(st.mode))
        r = md_error(f->ctx, -EISDIR, "%s: is a directory", path);
    if (r < 0)
        return r;
    r = md_tmpfile_open(f->ctx, &t, host_path, true);
    if (r < 0)
        return r;
    o.ctx = f->ctx;
    o.name = host_path;
    o.fd = t.fd;
    r = read_stream(f, path, to_fd, &o, NULL);
    if (r < 0) {
        md_tmpfile_discard(&t);
        return r;
    }
    return md_tmpfile_publish(f->ctx, &t);
}

MD_API int md_fat_extract_fd(md_fat *f, const char *path, int fd)
{
    struct fdout o;

    if (!f || !path)
        return -EINVAL;
    if (fd < 0)
        return md_error(f->ctx, -EBADF, "invalid output file descriptor %d", fd);
    o.ctx = f->ctx;
    o.name = "output";
    o.fd = fd;
    return read_stream(f, path, to_fd, &o, NULL);
}
