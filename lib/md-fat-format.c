/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * md_fat_format(): the geometry mkfs.fat would choose (type and cluster
 * size by size, tables aligned to clusters, the sector count a multiple of
 * the sectors per track), the boot sector, FSInfo, FATs and the root
 * directory; and the size a tree needs (md_fat_plan_size()).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "md-fat-internal.h"

#define SECTOR 512u
#define MIB (UINT64_C(1) << 20)

/* ---- geometry ------------------------------------------------------------------- */

static uint32_t align_up(uint32_t v, uint32_t a)
{
    return (v + a - 1) / a * a;
}

/* CHS numbers for the BPB, as mkfs.fat picks them when the device has none:
 * the SD card specification's table below 256 MiB, LBA-assist above. */
static void chs_for(uint32_t sectors, uint16_t *spt, uint16_t *heads)
{
    if (sectors <= 524288) {
        *heads = sectors <= 32768 ? 2 : sectors <= 65536 ? 4 : sectors <= 262144 ? 8 : 16;
        *spt = sectors <= 4096 ? 16 : 32;
    } else {
        *heads = sectors <= 16 * 63 * 1024 ? 16 : sectors <= 32 * 63 * 1024 ? 32 :
                 sectors <= 64 * 63 * 1024 ? 64 : sectors <= 128 * 63 * 1024 ? 128 : 255;
        *spt = 63;
    }
}

/* Lay out a filesystem of @total sectors as @type with @spc sectors per
 * cluster: reserved sectors, two FATs and the fixed root (FAT12/16) each
 * rounded up to whole clusters (unless the filesystem is floppy-sized, as
 * mkfs.fat does), the rest clusters.  False when the cluster count is
 * outside what the type allows. */
static bool layout(uint32_t total, uint32_t type, uint32_t spc, struct md_fat_geom *g)
{
    bool align = total > 8192;
    uint32_t a = align ? spc : 1, fatdata, bits = type;
    uint64_t est, fat_bytes, entries;

    g->type = type;
    g->sector_size = SECTOR;
    g->spc = spc;
    g->nfats = 2;
    g->total = total;
    g->reserved = align_up(type == 32 ? 32 : 1, a);
    g->root_sectors = type == 32 ? 0 : align_up(512 * FAT_DIRENT / SECTOR, a);
    g->root_entries = g->root_sectors * (SECTOR / FAT_DIRENT);
    g->clusters = 0;
    if ((uint64_t)g->reserved + g->root_sectors + 2 * a >= total)
        return false;
    fatdata = total - g->reserved - g->root_sectors;
    /* an estimate that is never below the real count: ignores the two
     * reserved entries and the rounding of the FAT */
    est = (uint64_t)fatdata * SECTOR * 8 / ((uint64_t)spc * SECTOR * 8 + g->nfats * bits);
    fat_bytes = ((est + 2) * bits + 7) / 8;
    if (fat_bytes > UINT32_MAX) {
        g->clusters = UINT32_MAX;
        return false;
    }
    g->fat_sectors = align_up((uint32_t)((fat_bytes + SECTOR - 1) / SECTOR), a);
    if ((uint64_t)g->nfats * g->fat_sectors >= fatdata)
        return false;
    g->clusters = (fatdata - g->nfats * g->fat_sectors) / spc;
    entries = (uint64_t)g->fat_sectors * SECTOR * 8 / bits;
    if (g->clusters + (uint64_t)2 > entries)
        g->clusters = (uint32_t)(entries - 2);
    g->data_start = g->reserved + g->nfats * g->fat_sectors + g->root_sectors;
    g->root_cluster = type == 32 ? 2 : 0;
    g->fsinfo = type == 32 ? 1 : 0;
    g->backup = type == 32 ? 6 : 0;
    g->active_fat = 0;
    switch (type) {
    case 12: return g->clusters >= 1 && g->clusters <= FAT12_MAX_CLUSTERS;
    case 16: return g->clusters >= FAT16_MIN_CLUSTERS && g->clusters <= FAT16_MAX_CLUSTERS;
    default: return g->clusters >= FAT32_MIN_CLUSTERS && g->clusters <= FAT32_MAX_CLUSTERS;
    }
}

/* FAT32's cluster size by size (mkfs.fat's table, after Microsoft's format). */
static uint32_t fat32_spc(uint64_t bytes)
{
    uint64_t s = bytes / SECTOR;
    return s > 32 * 1024 * 1024 * UINT64_C(2) ? 64 : s > 16 * 1024 * 1024 * UINT64_C(2) ? 32 :
           s > 8 * 1024 * 1024 * UINT64_C(2) ? 16 : s > 260 * 1024 * UINT64_C(2) ? 8 : 1;
}

static const char *type_name(uint32_t t)
{
    return t == 12 ? "FAT12" : t == 16 ? "FAT16" : "FAT32";
}

static uint32_t min_clusters(uint32_t type)
{
    return type == 12 ? 1 : type == 16 ? FAT16_MIN_CLUSTERS : FAT32_MIN_CLUSTERS;
}

/* The smallest filesystem (bytes) @type holds with @spc sectors per
 * cluster: for the messages. */
static uint64_t min_bytes(uint32_t type, uint32_t spc)
{
    uint32_t lo = 1, hi = UINT32_MAX;
    struct md_fat_geom g;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (layout(mid, type, spc, &g) || g.clusters > min_clusters(type))
            hi = mid;
        else
            lo = mid + 1;
    }
    return (uint64_t)lo * SECTOR;
}

/* The first cluster size from @lo to @hi sectors (doubling) that makes
 * @total sectors a valid @type: 0, -ENOSPC (too few clusters even with the
 * smallest), -EFBIG (too many even with the largest). */
static int pick_spc(uint32_t total, uint32_t type, uint32_t lo, uint32_t hi, struct md_fat_geom *g)
{
    uint32_t spc;

    for (spc = lo; spc <= hi; spc <<= 1) {
        if (layout(total, type, spc, g))
            return 0;
        if (g->clusters < min_clusters(type))
            return -ENOSPC; /* larger clusters only make fewer */
    }
    return -EFBIG;
}

static int too_small(md_ctx *ctx, const char *where, uint64_t bytes, uint32_t type, uint32_t spc)
{
    uint64_t m = min_bytes(type, spc);
    return md_error(ctx, -ENOSPC, "%s: %llu KiB are too small for %s (at least %u clusters: "
                    "%llu KiB with %u-byte clusters)", where, (unsigned long long)(bytes / 1024),
                    type_name(type), min_clusters(type), (unsigned long long)((m + 1023) / 1024),
                    spc * SECTOR);
}

int md_fat_plan_geom(md_ctx *ctx, const char *where, uint64_t bytes, const md_fat_format_opts *o,
                     struct md_fat_geom *g)
{
    int32_t want = o->fat_type == MD_VFAT ? 0 : o->fat_type;
    uint32_t total, lo, hi, type;
    uint16_t spt, heads;
    int r;

    if (bytes / SECTOR > UINT32_MAX)
        return md_error(ctx, -EINVAL, "%s: %llu bytes: FAT with 512-byte sectors covers at most 2 TiB",
                        where, (unsigned long long)bytes);
    total = (uint32_t)(bytes / SECTOR);
    chs_for(total, &spt, &heads);
    /* a whole number of tracks, as mkfs.fat makes it (mtools checks this) */
    total = total / spt * spt;
    hi = o->cluster_size ? o->cluster_size / SECTOR : 128;
    if (want == 32 || (want == 0 && bytes >= 512 * MIB)) {
        type = 32;
        lo = o->cluster_size ? hi : fat32_spc(bytes);
        r = pick_spc(total, 32, lo, hi, g);
    } else if (want) {
        type = (uint32_t)want;
        lo = o->cluster_size ? hi : 4; /* 2 KiB: mkfs.fat's first try for FAT12/16 */
        r = pick_spc(total, type, lo, hi, g);
    } else {
        /* FAT16 where the cluster count allows it, else FAT12, with the
         * smallest cluster from 2 KiB on that makes either valid */
        struct md_fat_geom g12;
        uint32_t spc;

        lo = o->cluster_size ? hi : 4;
        type = 12;
        r = -EFBIG;
        for (spc = lo; spc <= hi; spc <<= 1) {
            if (layout(total, 16, spc, g)) {
                type = 16;
                r = 0;
                break;
            }
            if (layout(total, 12, spc, &g12)) {
                *g = g12;
                r = 0;
                break;
            }
            if (g12.clusters < 1) {
                r = -ENOSPC;
                break;
            }
        }
    }
    if (r == -ENOSPC)
        return too_small(ctx, where, bytes, type, lo);
    if (r == -EFBIG)
        return md_error(ctx, -EINVAL, "%s: %llu MiB are too large for %s with clusters of at most "
                        "%u bytes: use %s", where, (unsigned long long)(bytes / MIB),
                        want ? type_name(type) : "FAT12/16", hi * SECTOR,
                        type == 32 || hi < 128 ? "larger clusters" : type == 12 ? "FAT16 or FAT32" : "FAT32");
    g->type = type;
    g->spt = spt;
    g->heads = heads;
    return 0;
}

/* ---- options ------------------------------------------------------------------------ */

struct fmt {
    md_ctx *ctx;
    md_fat_format_opts o;
    char label[12];      /* 11 bytes, space padded; "" for none */
    char oem[9];
    bool have_id;
    uint32_t volume_id;
};

static int check_label(struct fmt *s, const char *where)
{
    const char *l = s->o.label;
    size_t i, n;

    s->label[0] = '\0';
    if (!l || !*l)
        return 0;
    n = strlen(l);
    if (n > 11)
        return md_error(s->ctx, -EINVAL, "%s: FAT label '%s' is longer than 11 characters", where, l);
    if (l[0] == ' ')
        return md_error(s->ctx, -EINVAL, "%s: FAT label '%s' starts with a space", where, l);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)l[i];
        if (c < 0x20 || c >= 0x7f)
            return md_error(s->ctx, -EINVAL, "%s: FAT label '%s': only printable ASCII characters "
                            "are portable", where, l);
        if (strchr("\"*+,./:;<=>?[\\]|", c))
            return md_error(s->ctx, -EINVAL, "%s: FAT label '%s' holds '%c', which labels cannot hold",
                            where, l, c);
        s->label[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
    }
    for (; i < 11; i++)
        s->label[i] = ' ';
    s->label[11] = '\0';
    return 0;
}

static int check_id(struct fmt *s, const char *where)
{
    const char *p = s->o.volume_id;
    uint32_t v = 0;
    int digits = 0;

    s->have_id = false;
    if (!p)
        return 0;
    for (; *p; p++) {
        int h = md_hexval((unsigned char)*p);
        if (*p == '-' && digits == 4 && p[1])
            continue;
        if (h < 0 || digits == 8)
            break;
        v = v << 4 | (uint32_t)h;
        digits++;
    }
    if (*p || digits != 8)
        return md_error(s->ctx, -EINVAL, "%s: FAT volume id '%s' is not XXXX-XXXX or 8 hex digits",
                        where, s->o.volume_id);
    s->volume_id = v;
    s->have_id = true;
    return 0;
}

static int check_opts(struct fmt *s, const md_fat_format_opts *opts, const char *where)
{
    const char *oem;
    size_t i, n;
    int r;

    md_fat_format_opts_init(&s->o);
    if (opts) {
        r = md_check_version(s->ctx, "md_fat_format_opts", opts->version, MD_FAT_FORMAT_OPTS_VERSION);
        if (r < 0)
            return r;
        s->o = *opts;
    }
    if (s->o.fat_type == 0)
        s->o.fat_type = MD_VFAT;
    if (s->o.fat_type != MD_VFAT && s->o.fat_type != MD_FAT12 && s->o.fat_type != MD_FAT16 &&
        s->o.fat_type != MD_FAT32)
        return md_error(s->ctx, -EINVAL, "%s: unknown FAT type %d (MD_VFAT, MD_FAT12, MD_FAT16 or "
                        "MD_FAT32)", where, s->o.fat_type);
    if (s->o.cluster_size &&
        (s->o.cluster_size < SECTOR || s->o.cluster_size > 65536 ||
         (s->o.cluster_size & (s->o.cluster_size - 1))))
        return md_error(s->ctx, -EINVAL, "%s: FAT cluster size %u is not a power of two from 512 to "
                        "65536 bytes", where, s->o.cluster_size);
    if (s->o.flags)
        return md_error(s->ctx, -EINVAL, "%s: md_fat_format_opts: unknown flags 0x%x", where,
                        s->o.flags);
    oem = s->o.oem_name ? s->o.oem_name : "MSWIN4.1";
    n = strlen(oem);
    if (n > 8)
        return md_error(s->ctx, -EINVAL, "%s: OEM name '%s' is longer than 8 characters", where, oem);
    for (i = 0; i < 8; i++) {
        unsigned char c = i < n ? (unsigned char)oem[i] : ' ';
        if (c < 0x20 || c >= 0x7f)
            return md_error(s->ctx, -EINVAL, "%s: OEM name '%s': printable ASCII only", where, oem);
        s->oem[i] = (char)c;
    }
    s->oem[8] = '\0';
    if ((r = check_label(s, where)) < 0 || (r = check_id(s, where)) < 0)
        return r;
    return 0;
}

/* ---- the boot sector -------------------------------------------------------------------- */

/* A real-mode stub that prints the message after it, waits for a key and
 * asks the BIOS for the next boot device (int 19h).  Written for this
 * module; the message's address is patched in at bytes 3..4. */
static const uint8_t boot_stub[] = {
    0x0e,             /* push cs */
    0x1f,             /* pop ds */
    0xbe, 0x00, 0x00, /* mov si, message */
    0xac,             /* next: lodsb */
    0x84, 0xc0,       /* test al, al */
    0x74, 0x09,       /* jz wait */
    0xb4, 0x0e,       /* mov ah, 0eh (teletype output) */
    0xbb, 0x07, 0x00, /* mov bx, 0007h */
    0xcd, 0x10,       /* int 10h */
    0xeb, 0xf2,       /* jmp next */
    0x31, 0xc0,       /* wait: xor ax, ax */
    0xcd, 0x16,       /* int 16h (read a key) */
    0xcd, 0x19,       /* int 19h (next boot device) */
    0xeb, 0xfe,       /* jmp $ */
};
static const char boot_msg[] = "This is not a bootable disk: it holds a FAT filesystem.\r\n"
                               "Press a key to try the next boot device.\r\n";

static void boot_sector(const struct md_fat_geom *g, const struct fmt *s, uint32_t hidden,
                        uint8_t *bs)
{
    uint32_t code = g->type == 32 ? 90 : 62;
    uint32_t msg = code + (uint32_t)sizeof(boot_stub);
    uint8_t *vi = bs + (g->type == 32 ? 64 : 36);

    memset(bs, 0, SECTOR);
    bs[0] = 0xeb;
    bs[1] = (uint8_t)(code - 2);
    bs[2] = 0x90;
    memcpy(bs + 3, s->oem, 8);
    md_put_le16(bs + 11, (uint16_t)g->sector_size);
    bs[13] = (uint8_t)g->spc;
    md_put_le16(bs + 14, (uint16_t)g->reserved);
    bs[16] = (uint8_t)g->nfats;
    md_put_le16(bs + 17, (uint16_t)g->root_entries);
    if (g->total < 65536)
        md_put_le16(bs + 19, (uint16_t)g->total);
    else
        md_put_le32(bs + 32, g->total);
    bs[21] = 0xf8;
    if (g->type != 32)
        md_put_le16(bs + 22, (uint16_t)g->fat_sectors);
    md_put_le16(bs + 24, g->spt);
    md_put_le16(bs + 26, g->heads);
    md_put_le32(bs + 28, hidden);
    if (g->type == 32) {
        md_put_le32(bs + 36, g->fat_sectors);
        md_put_le16(bs + 40, 0);          /* both FATs active, mirrored */
        md_put_le16(bs + 42, 0);          /* version 0.0 */
        md_put_le32(bs + 44, g->root_cluster);
        md_put_le16(bs + 48, (uint16_t)g->fsinfo);
        md_put_le16(bs + 50, (uint16_t)g->backup);
    }
    vi[0] = 0x80;                         /* drive number: a hard disk */
    vi[2] = 0x29;                         /* extended boot signature */
    md_put_le32(vi + 3, s->volume_id);
    memcpy(vi + 7, s->label[0] ? s->label : "NO NAME    ", 11);
    memcpy(vi + 18, g->type == 12 ? "FAT12   " : g->type == 16 ? "FAT16   " : "FAT32   ", 8);
    memcpy(bs + code, boot_stub, sizeof(boot_stub));
    md_put_le16(bs + code + 3, (uint16_t)(0x7c00 + msg));
    memcpy(bs + msg, boot_msg, sizeof(boot_msg)); /* with its NUL */
    bs[510] = 0x55;
    bs[511] = 0xaa;
}

static void fsinfo_sector(uint32_t free_clusters, uint32_t next, uint8_t *b)
{
    memset(b, 0, SECTOR);
    md_put_le32(b, 0x41615252);           /* "RRaA" */
    md_put_le32(b + 484, 0x61417272);     /* "rrAa" */
    md_put_le32(b + 488, free_clusters);
    md_put_le32(b + 492, next);
    md_put_le32(b + 508, 0xaa550000);
}

/* ---- writing ---------------------------------------------------------------------------- */

/* Make the range read back as zeros: holes where the filesystem allows. */
static int clear_range(md_fat *f)
{
    static const char zeros[1 << 16];
    uint64_t done = 0;
    char where[512];
    int r = 0;

    if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)f->off, (off_t)f->size) == 0)
        return 0;
    while (done < f->size && r == 0) {
        size_t n = f->size - done < sizeof(zeros) ? (size_t)(f->size - done) : sizeof(zeros);
        r = md_pwrite_full(f->fd, zeros, n, f->off + done);
        done += n;
    }
    if (r < 0)
        return md_error_errno(f->ctx, r, "%s: clearing the filesystem area",
                              md_fat_where(f, where, sizeof(where)));
    return 0;
}

/* The first sector of each FAT: entries 0 and 1 (the media byte, all ones)
 * and, on FAT32, the root directory's single cluster. */
static int write_fats(md_fat *f)
{
    uint8_t s[SECTOR];
    uint32_t i;
    int r;

    memset(s, 0, sizeof(s));
    switch (f->g.type) {
    case 12:
        s[0] = 0xf8, s[1] = 0xff, s[2] = 0xff;
        break;
    case 16:
        s[0] = 0xf8, s[1] = 0xff, s[2] = 0xff, s[3] = 0xff;
        break;
    default:
        md_put_le32(s, 0x0ffffff8);
        md_put_le32(s + 4, 0x0fffffff);
        md_put_le32(s + 8, 0x0fffffff);
        break;
    }
    for (i = 0; i < f->g.nfats; i++) {
        r = md_fat_pwrite(f, s, sizeof(s), (uint64_t)(f->g.reserved + i * f->g.fat_sectors) * SECTOR);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The label as the root directory's first entry (blkid and Windows read it there). */
static int write_label_entry(md_fat *f, const struct fmt *s, int64_t t)
{
    uint8_t e[FAT_DIRENT];
    uint64_t at = f->g.type == 32 ? md_fat_cluster_off(f, f->g.root_cluster)
                                  : (uint64_t)(f->g.reserved + f->g.nfats * f->g.fat_sectors) * SECTOR;

    if (!s->label[0])
        return 0;
    md_fat_dirent(f->g.type, e, (const uint8_t *)s->label, FAT_ATTR_VOLUME, 0, 0, 0, t);
    return md_fat_pwrite(f, e, sizeof(e), at);
}

static int write_tables(md_fat *f, const struct fmt *s, uint32_t hidden)
{
    uint8_t bs[SECTOR], info[SECTOR];
    int64_t t = md_ctx_has_epoch(f->ctx) ? md_ctx_get_epoch(f->ctx) : (int64_t)time(NULL);
    int r;

    boot_sector(&f->g, s, hidden, bs);
    r = md_fat_pwrite(f, bs, sizeof(bs), 0);
    if (r == 0 && f->g.type == 32) {
        fsinfo_sector(f->g.clusters - 1, 2, info);
        r = md_fat_pwrite(f, info, sizeof(info), (uint64_t)f->g.fsinfo * SECTOR);
        if (r == 0)
            r = md_fat_pwrite(f, bs, sizeof(bs), (uint64_t)f->g.backup * SECTOR);
        if (r == 0)
            r = md_fat_pwrite(f, info, sizeof(info), (uint64_t)(f->g.backup + f->g.fsinfo) * SECTOR);
    }
    if (r == 0)
        r = write_fats(f);
    if (r == 0)
        r = write_label_entry(f, s, t);
    return r;
}

static uint32_t derive_id(const md_fat *f, const struct fmt *s)
{
    int64_t epoch = md_ctx_get_epoch(f->ctx);
    uint64_t h = md_fat_fnv64(1469598103934665603ULL, "fat", 3);

    h = md_fat_fnv64(h, &epoch, sizeof(epoch));
    h = md_fat_fnv64(h, &f->off, sizeof(f->off));
    h = md_fat_fnv64(h, &f->size, sizeof(f->size));
    h = md_fat_fnv64(h, s->label, strlen(s->label));
    return (uint32_t)(h ^ (h >> 32));
}

MD_API int md_fat_format(md_image *img, uint32_t partno, const md_fat_format_opts *opts,
                         md_fat **ret)
{
    struct fmt s;
    char where[512];
    uint64_t start;
    md_fat *f;
    int r;

    if (ret)
        *ret = NULL;
    if (!img)
        return -EINVAL;
    r = md_fat_handle_new(img, partno, &f);
    if (r < 0)
        return r;
    memset(&s, 0, sizeof(s));
    s.ctx = f->ctx;
    md_fat_where(f, where, sizeof(where));
    r = check_opts(&s, opts, where);
    if (r == 0 && f->rdonly)
        r = md_error(f->ctx, -EROFS, "%s: image opened read-only", where);
    if (r == 0)
        r = md_fat_plan_geom(f->ctx, where, f->size, &s.o, &f->g);
    if (r < 0)
        goto fail;
    if (!s.have_id) {
        if (md_ctx_has_epoch(f->ctx))
            s.volume_id = derive_id(f, &s);
        else if (getrandom(&s.volume_id, sizeof(s.volume_id), 0) != (ssize_t)sizeof(s.volume_id)) {
            r = md_error_errno(f->ctx, -errno, "getrandom");
            goto fail;
        }
    }
    f->cluster_bytes = f->g.sector_size * f->g.spc;
    f->volume_id = s.volume_id;
    f->media = 0xf8;
    memcpy(f->oem, s.oem, sizeof(f->oem));
    memcpy(f->label, s.label, sizeof(f->label));
    for (r = 10; r >= 0 && f->label[r] == ' '; r--)
        f->label[r] = '\0';
    start = f->off / SECTOR;
    r = clear_range(f);
    if (r == 0)
        r = write_tables(f, &s, start > UINT32_MAX ? UINT32_MAX : (uint32_t)start);
    if (r < 0)
        goto fail;
    f->fresh = true;
    if (ret) {
        *ret = f;
        return 0;
    }
    return md_fat_close(f);
fail:
    md_fat_free(f);
    return r;
}

/* ---- planning a size -------------------------------------------------------------------- */

int md_fat_plan_size(md_ctx *ctx, md_tree *tree, const md_fat_format_opts *opts, uint64_t headroom,
                     uint64_t *size)
{
    struct fmt s;
    uint64_t guess, data = 0, need;
    size_t k;
    int r, i;

    memset(&s, 0, sizeof(s));
    s.ctx = ctx;
    if ((r = check_opts(&s, opts, "FAT")) < 0 || (r = md_tree_finalize(tree)) < 0)
        return r;
    for (k = 0; k < tree->n; k++)
        if (S_ISREG(tree->v[k]->mode))
            data += tree->v[k]->size; /* hard links are copies on FAT */
    guess = data + data / 16 + headroom + MIB;
    if (s.o.fat_type == MD_FAT32 && guess < 36 * MIB)
        guess = 36 * MIB; /* OVMF (and Windows) refuse FAT32 with too few clusters */
    for (i = 0; i < 64; i++) {
        struct md_fat_geom g;
        uint64_t have;

        guess = (guess + MIB - 1) / MIB * MIB;
        r = md_fat_plan_geom(ctx, "FAT", guess, &s.o, &g);
        if (r == -ENOSPC) {
            md_ctx_clear_error(ctx);
            guess += guess / 4 + MIB;
            continue;
        }
        if (r < 0)
            return r;
        r = md_fat_tree_clusters(ctx, tree, &g, &need);
        if (r < 0)
            return r;
        have = (uint64_t)g.clusters * g.spc * g.sector_size;
        need = need * g.spc * g.sector_size + headroom;
        if (need <= have) {
            *size = guess;
            return 0;
        }
        guess += need - have + (need - have) / 16 + MIB;
    }
    return md_error(ctx, -EFBIG, "cannot find a FAT size that holds the tree");
}
