/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FAT filesystems inside images: the handle, boot sector validation, FAT
 * entries and cluster chains, FAT times.  Format, names, population and
 * reading are in md-fat-{format,name,populate,read}.c (docs/fat.md).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "md-fat-internal.h"
#include "md-image-internal.h"

#define FAT_WINDOW (64u * 1024u)

/* ---- handle ---------------------------------------------------------------- */

const char *md_fat_where(const md_fat *f, char *buf, size_t size)
{
    if (f->partno)
        snprintf(buf, size, "%s: partition %u", md_image_name(f->img), f->partno);
    else
        snprintf(buf, size, "%s", md_image_name(f->img));
    return buf;
}

int md_fat_handle_new(md_image *img, uint32_t partno, md_fat **ret)
{
    md_ctx *ctx = md_image_ctx(img);
    uint64_t off, size;
    md_fat *f;
    int r;

    r = md_image_partition_range(img, partno, &off, &size);
    if (r < 0)
        return r;
    f = calloc(1, sizeof(*f));
    if (!f)
        return md_error(ctx, -ENOMEM, "out of memory");
    f->ctx = md_ctx_ref(ctx);
    f->img = img;
    f->fd = img->fd;
    f->partno = partno;
    f->off = off;
    f->size = size;
    f->rdonly = md_image_is_rdonly(img);
    *ret = f;
    return 0;
}

MD_API void md_fat_free(md_fat *f)
{
    if (!f)
        return;
    free(f->win);
    md_ctx_unref(f->ctx);
    free(f);
}

MD_API int md_fat_close(md_fat *f)
{
    md_fat_free(f);
    return 0;
}

MD_API md_ctx *md_fat_ctx(const md_fat *f)
{
    return f ? f->ctx : NULL;
}

MD_API void md_fat_format_opts_init(md_fat_format_opts *opts)
{
    static const md_fat_format_opts def = MD_FAT_FORMAT_OPTS_INIT;
    if (opts)
        *opts = def;
}

MD_API void md_fat_populate_opts_init(md_fat_populate_opts *opts)
{
    static const md_fat_populate_opts def = MD_FAT_POPULATE_OPTS_INIT;
    if (opts)
        *opts = def;
}

uint64_t md_fat_fnv64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n--) {
        h ^= *c++;
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- bounded I/O --------------------------------------------------------------- */

int md_fat_pread(md_fat *f, void *buf, size_t n, uint64_t rel)
{
    char where[512];
    int r;

    if (rel > f->size || n > f->size - rel)
        return md_error(f->ctx, -EIO, "%s: read of %zu bytes at %llu is outside the partition "
                        "(%llu bytes): corrupt filesystem", md_fat_where(f, where, sizeof(where)), n,
                        (unsigned long long)rel, (unsigned long long)f->size);
    r = md_pread_full(f->fd, buf, n, f->off + rel);
    if (r < 0)
        return md_error_errno(f->ctx, r, "%s: reading", md_fat_where(f, where, sizeof(where)));
    return 0;
}

int md_fat_pwrite(md_fat *f, const void *buf, size_t n, uint64_t rel)
{
    char where[512];
    int r;

    if (f->rdonly)
        return md_error(f->ctx, -EROFS, "%s: opened read-only", md_fat_where(f, where, sizeof(where)));
    if (rel > f->size || n > f->size - rel)
        return md_error(f->ctx, -EIO, "%s: write of %zu bytes at %llu is outside the partition",
                        md_fat_where(f, where, sizeof(where)), n, (unsigned long long)rel);
    r = md_pwrite_full(f->fd, buf, n, f->off + rel);
    if (r < 0)
        return md_error_errno(f->ctx, r, "%s: writing", md_fat_where(f, where, sizeof(where)));
    return 0;
}

uint64_t md_fat_cluster_off(const md_fat *f, uint32_t c)
{
    return ((uint64_t)f->g.data_start + (uint64_t)(c - 2) * f->g.spc) * f->g.sector_size;
}

/* ---- FAT entries ------------------------------------------------------------------ */

uint32_t md_fat_eoc_min(uint32_t type)
{
    return type == 12 ? 0xff8u : type == 16 ? 0xfff8u : 0x0ffffff8u;
}

/* @n bytes of the active FAT at byte @pos through the window cache. */
static int fat_bytes(md_fat *f, uint64_t pos, uint8_t *out, size_t n)
{
    uint64_t fat_len = (uint64_t)f->g.fat_sectors * f->g.sector_size;
    uint64_t base = (uint64_t)(f->g.reserved + (uint64_t)f->g.active_fat * f->g.fat_sectors) *
                    f->g.sector_size;
    int r;

    if (pos + n > fat_len)
        return md_error(f->ctx, -EIO, "FAT entry beyond the FAT: corrupt filesystem");
    if (!f->win) {
        f->win = malloc(FAT_WINDOW);
        if (!f->win)
            return md_error(f->ctx, -ENOMEM, "out of memory");
        f->win_len = 0;
    }
    if (pos < f->win_start || pos + n > f->win_start + f->win_len) {
        uint64_t start = pos / FAT_WINDOW * FAT_WINDOW;
        size_t len = FAT_WINDOW;

        /* a FAT12 entry may straddle the window's end: start it a little earlier */
        if (pos + n > start + len)
            start = pos - 8;
        if (start + len > fat_len)
            len = (size_t)(fat_len - start);
        f->win_len = 0;
        r = md_fat_pread(f, f->win, len, base + start);
        if (r < 0)
            return r;
        f->win_start = start;
        f->win_len = len;
    }
    memcpy(out, f->win + (pos - f->win_start), n);
    return 0;
}

int md_fat_get_entry(md_fat *f, uint32_t c, uint32_t *val)
{
    uint8_t b[4];
    int r;

    switch (f->g.type) {
    case 12:
        r = fat_bytes(f, (uint64_t)c + c / 2, b, 2);
        if (r < 0)
            return r;
        *val = (c & 1) ? (uint32_t)(md_get_le16(b) >> 4) : (uint32_t)(md_get_le16(b) & 0xfff);
        return 0;
    case 16:
        r = fat_bytes(f, (uint64_t)c * 2, b, 2);
        if (r < 0)
            return r;
        *val = md_get_le16(b);
        return 0;
    default:
        r = fat_bytes(f, (uint64_t)c * 4, b, 4);
        if (r < 0)
            return r;
        *val = md_get_le32(b) & 0x0fffffffu;
        return 0;
    }
}

int md_fat_next(md_fat *f, uint32_t c, const char *what, uint32_t *next)
{
    uint32_t v;
    int r = md_fat_get_entry(f, c, &v);

    if (r < 0)
        return r;
    if (v >= md_fat_eoc_min(f->g.type)) {
        *next = 0;
        return 0;
    }
    if (v < 2 || v >= f->g.clusters + 2)
        return md_error(f->ctx, -EIO, "%s: cluster %u is followed by %s %u in the FAT: corrupt "
                        "filesystem", what, c, v == 0 ? "free cluster" : "invalid cluster", v);
    *next = v;
    return 0;
}

int md_fat_count_free(md_fat *f, uint32_t *free_clusters)
{
    uint32_t c, v, n = 0;
    int r;

    for (c = 2; c < f->g.clusters + 2; c++) {
        r = md_fat_get_entry(f, c, &v);
        if (r < 0)
            return r;
        n += v == 0;
    }
    *free_clusters = n;
    return 0;
}

/* ---- times ---------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's
 * algorithms): no gmtime(), no time zone, any 64-bit year. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void md_fat_time_to(int64_t t, uint16_t *date, uint16_t *time, uint8_t *cs)
{
    int64_t days, y;
    unsigned m, d, sod;

    if (t < FAT_TIME_MIN)
        t = FAT_TIME_MIN;
    if (t > FAT_TIME_MAX + 1)
        t = FAT_TIME_MAX + 1; /* 23:59:59: two-second units make it :58, hundredths the rest */
    days = t / 86400;
    sod = (unsigned)(t % 86400);
    civil_from_days(days, &y, &m, &d);
    *date = (uint16_t)(((y - 1980) << 9) | (m << 5) | d);
    *time = (uint16_t)(((sod / 3600) << 11) | (((sod / 60) % 60) << 5) | ((sod % 60) / 2));
    if (cs)
        *cs = (uint8_t)((sod % 2) * 100);
}

int64_t md_fat_time_from(uint16_t date, uint16_t time)
{
    unsigned y = 1980 + (date >> 9), m = (date >> 5) & 15, d = date & 31;
    unsigned h = time >> 11, mi = (time >> 5) & 63, s = (time & 31) * 2;

    if (m < 1)
        m = 1;
    if (m > 12)
        m = 12;
    if (d < 1)
        d = 1;
    if (h > 23)
        h = 23;
    if (mi > 59)
        mi = 59;
    if (s > 59)
        s = 59;
    return days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s;
}

void md_fat_dirent(uint32_t type, uint8_t *e, const uint8_t name[11], uint8_t attr, uint8_t lcase,
                   uint32_t cluster, uint32_t size, int64_t t)
{
    uint16_t date, tm;
    uint8_t cs;

    memset(e, 0, FAT_DIRENT);
    memcpy(e, name, 11);
    e[11] = attr;
    e[12] = lcase;
    md_fat_time_to(t, &date, &tm, &cs);
    e[13] = cs;
    md_put_le16(e + 14, tm);      /* created */
    md_put_le16(e + 16, date);
    md_put_le16(e + 18, date);    /* accessed */
    if (type == 32)
        md_put_le16(e + 20, (uint16_t)(cluster >> 16));
    md_put_le16(e + 22, tm);      /* modified */
    md_put_le16(e + 24, date);
    md_put_le16(e + 26, (uint16_t)cluster);
    md_put_le32(e + 28, size);
}

/* ---- boot sector --------------------------------------------------------------------- */

static bool pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

int md_fat_parse_bpb(md_ctx *ctx, const char *where, const uint8_t *bs, uint64_t part_size,
                     struct md_fat_geom *g)
{
    uint32_t ss = md_get_le16(bs + 11), spc = bs[13], res = md_get_le16(bs + 14), nfats = bs[16];
    uint32_t rootent = md_get_le16(bs + 17), tot16 = md_get_le16(bs + 19), media = bs[21];
    uint32_t fat16 = md_get_le16(bs + 22), tot32 = md_get_le32(bs + 32), total, fatlen, bits;
    uint64_t meta, entries;

    memset(g, 0, sizeof(*g));
    if (bs[510] != 0x55 || bs[511] != 0xaa)
        return md_error(ctx, -EINVAL, "%s: no FAT filesystem (no boot sector signature)", where);
    if (bs[0] != 0xeb && bs[0] != 0xe9)
        return md_error(ctx, -EINVAL, "%s: no FAT filesystem (the boot sector starts with 0x%02x, "
                        "not a jump)", where, bs[0]);
    if (ss < 512 || ss > 4096 || !pow2(ss))
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: %u bytes per sector", where, ss);
    if (!pow2(spc))
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: %u sectors per cluster", where, spc);
    if (!res)
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: no reserved sector", where);
    if (nfats < 1 || nfats > 4)
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: %u FATs", where, nfats);
    if (media != 0xf0 && media < 0xf8)
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: media byte 0x%02x", where, media);
    total = tot16 ? tot16 : tot32;
    if (!total)
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: no sector count", where);
    if ((uint64_t)total * ss > part_size)
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: %u sectors of %u bytes do not fit "
                        "the partition's %llu bytes", where, total, ss, (unsigned long long)part_size);
    fatlen = fat16 ? fat16 : md_get_le32(bs + 36);
    if (!fatlen)
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: FATs of 0 sectors", where);
    g->sector_size = ss;
    g->spc = spc;
    g->reserved = res;
    g->nfats = nfats;
    g->fat_sectors = fatlen;
    g->total = total;
    g->spt = md_get_le16(bs + 24);
    g->heads = md_get_le16(bs + 26);
    if (!fat16) {
        /* FAT32 is told by the 16-bit FAT size being 0, as Linux and Windows tell it */
        if (rootent)
            return md_error(ctx, -EINVAL, "%s: corrupt FAT32 boot sector: %u fixed root entries",
                            where, rootent);
        if (md_get_le16(bs + 42))
            return md_error(ctx, -EINVAL, "%s: FAT32 version %u.%u is not supported", where, bs[43],
                            bs[42]);
    } else {
        if (!rootent || (rootent * FAT_DIRENT) % ss)
            return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: %u root directory entries",
                            where, rootent);
        g->root_entries = rootent;
        g->root_sectors = rootent * FAT_DIRENT / ss;
    }
    meta = (uint64_t)res + (uint64_t)nfats * fatlen + g->root_sectors;
    if (meta >= total)
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: the tables (%llu sectors) leave "
                        "no room for data in %u sectors", where, (unsigned long long)meta, total);
    g->data_start = (uint32_t)meta;
    g->clusters = (total - g->data_start) / spc;
    if (!g->clusters)
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: no data cluster", where);
    if (!fat16) {
        g->type = 32;
        if (g->clusters > FAT32_MAX_CLUSTERS)
            g->clusters = FAT32_MAX_CLUSTERS;
    } else {
        g->type = g->clusters < 4085 ? 12 : 16;
        if (g->clusters > FAT16_MAX_CLUSTERS)
            return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: %u clusters are too many "
                            "for FAT16", where, g->clusters);
    }
    bits = g->type;
    entries = (uint64_t)fatlen * ss * 8 / bits;
    if (entries < (uint64_t)g->clusters + 2)
        return md_error(ctx, -EINVAL, "%s: corrupt FAT boot sector: a FAT of %u sectors cannot map "
                        "%u clusters", where, fatlen, g->clusters);
    if (g->type == 32) {
        uint32_t flags = md_get_le16(bs + 40);

        g->root_cluster = md_get_le32(bs + 44);
        if (g->root_cluster < 2 || g->root_cluster >= g->clusters + 2)
            return md_error(ctx, -EINVAL, "%s: corrupt FAT32 boot sector: root directory at cluster %u "
                            "of %u", where, g->root_cluster, g->clusters);
        g->fsinfo = md_get_le16(bs + 48);
        if (g->fsinfo == 0xffff || g->fsinfo >= res)
            g->fsinfo = 0;
        g->backup = md_get_le16(bs + 50);
        if (g->backup == 0xffff || g->backup >= res)
            g->backup = 0;
        if (flags & 0x80) {
            g->active_fat = flags & 0xf;
            if (g->active_fat >= nfats)
                return md_error(ctx, -EINVAL, "%s: corrupt FAT32 boot sector: active FAT %u of %u",
                                where, g->active_fat, nfats);
        }
    }
    return 0;
}

MD_API int md_fat_open(md_image *img, uint32_t partno, uint32_t flags, md_fat **ret)
{
    uint8_t bs[512];
    char where[512];
    md_fat *f;
    int r;

    if (ret)
        *ret = NULL;
    if (!img || !ret)
        return -EINVAL;
    if (flags & ~MD_FAT_RDONLY)
        return md_error(md_image_ctx(img), -EINVAL, "md_fat_open: unknown flags 0x%x", flags);
    r = md_fat_handle_new(img, partno, &f);
    if (r < 0)
        return r;
    if (flags & MD_FAT_RDONLY)
        f->rdonly = true;
    md_fat_where(f, where, sizeof(where));
    if (f->size < sizeof(bs)) {
        r = md_error(f->ctx, -EINVAL, "%s: no FAT filesystem (%llu bytes)", where,
                     (unsigned long long)f->size);
        goto fail;
    }
    r = md_fat_pread(f, bs, sizeof(bs), 0);
    if (r >= 0)
        r = md_fat_parse_bpb(f->ctx, where, bs, f->size, &f->g);
    if (r < 0)
        goto fail;
    f->cluster_bytes = f->g.sector_size * f->g.spc;
    f->media = bs[21];
    memcpy(f->oem, bs + 3, 8);
    f->oem[8] = '\0';
    if (f->g.type == 32) {
        f->fat32_flags = md_get_le16(bs + 40);
        f->volume_id = md_get_le32(bs + 67);
        memcpy(f->label, bs + 71, 11);
    } else {
        f->volume_id = md_get_le32(bs + 39);
        memcpy(f->label, bs + 43, 11);
    }
    f->label[11] = '\0';
    if (bs[f->g.type == 32 ? 66 : 38] != 0x29 && bs[f->g.type == 32 ? 66 : 38] != 0x28) {
        /* no extended BPB: no id, no label */
        f->volume_id = 0;
        memset(f->label, 0, sizeof(f->label));
    }
    for (r = 10; r >= 0 && (f->label[r] == ' ' || f->label[r] == '\0'); r--)
        f->label[r] = '\0';
    if (!strcmp(f->label, "NO NAME"))
        f->label[0] = '\0';
    *ret = f;
    return 0;
fail:
    md_fat_free(f);
    return r;
}

MD_API int md_fat_get_info(md_fat *f, md_fat_info *info)
{
    uint32_t nfree;
    int r;

    if (!f || !info)
        return -EINVAL;
    r = md_check_version(f->ctx, "md_fat_info", info->version, MD_FAT_INFO_VERSION);
    if (r < 0)
        return r;
    r = md_fat_count_free(f, &nfree);
    if (r < 0)
        return r;
    memset(info, 0, sizeof(*info));
    info->version = MD_FAT_INFO_VERSION;
    info->fat_type = (int32_t)f->g.type;
    info->sector_size = f->g.sector_size;
    info->cluster_size = f->cluster_bytes;
    info->clusters = f->g.clusters;
    info->free_clusters = nfree;
    info->root_entries = f->g.root_entries;
    info->volume_id = f->volume_id;
    info->size = (uint64_t)f->g.total * f->g.sector_size;
    memcpy(info->label, f->label, sizeof(info->label));
    memcpy(info->oem_name, f->oem, sizeof(info->oem_name));
    return 0;
}
