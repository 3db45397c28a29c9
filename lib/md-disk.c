/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The image pipeline: one description of a disk image (size, table,
 * partitions, filesystems with their trees, boot loaders) and one call that
 * builds it under a temporary name and publishes it.  `mdimg disk create`,
 * md_distro_build() and the examples all go through here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "md-internal.h"
#include "md-ext-internal.h"
#include "md-fat-internal.h"

/* One filesystem of the description, ext or FAT: the type says which of
 * the format options apply. */
struct disk_fs {
    int32_t type;               /* MD_EXT2..MD_EXT4, or MD_VFAT / MD_FAT12/16/32 */
    uint32_t partno;            /* as asked: N, or MD_DISK_PART_AUTO */
    uint32_t placed;            /* where the last md_disk_write() put it */
    char *label, *uuid, *extra; /* owned: the label, the UUID / volume id, and ext's
                                 * features or FAT's OEM name */
    md_tree *tree;
    md_ext_format_opts fo;      /* ext: its strings are the ones above */
    md_fat_format_opts fat;     /* FAT: its strings are the ones above */
    bool extlinux;
    md_extlinux_opts xo;        /* strings owned below */
    char *xl_dir, *xl_sdir, *xl_bin, *xl_config;
    char **xl_modules;
};

struct md_disk {
    md_ctx *ctx;
    uint64_t size;              /* 0: computed */
    uint64_t computed;          /* the size the last md_disk_write() computed */
    uint64_t headroom_bytes;    /* free space a computed size leaves: bytes, or */
    uint32_t headroom_pct;      /* this percentage of the contents (headroom_bytes 0) */
    bool headroom_set;
    bool table_set;
    md_table_opts table;        /* disk_id owned */
    md_part_opts *parts;        /* type, name, uuid owned */
    size_t n_parts;
    struct disk_fs *fs;
    size_t n_fs;
};

/* ---- names ------------------------------------------------------------------ */

static const struct {
    const char *name;
    int32_t type;
} fs_names[] = {
    { "ext2", MD_EXT2 }, { "ext3", MD_EXT3 }, { "ext4", MD_EXT4 },
    { "vfat", MD_VFAT }, { "fat", MD_VFAT }, { "fat12", MD_FAT12 }, { "fat16", MD_FAT16 },
    { "fat32", MD_FAT32 },
};

static bool is_fat(int32_t type)
{
    return type == MD_VFAT || type == MD_FAT12 || type == MD_FAT16 || type == MD_FAT32;
}

MD_API int md_fs_type_from_name(md_ctx *ctx, const char *name, int32_t *ret)
{
    size_t i;

    if (!ret)
        return -EINVAL;
    for (i = 0; name && i < sizeof(fs_names) / sizeof(fs_names[0]); i++) {
        if (!strcmp(name, fs_names[i].name)) {
            *ret = fs_names[i].type;
            return 0;
        }
    }
    return md_error(ctx, -EINVAL, "unknown filesystem type '%s' (use ext2, ext3, ext4, vfat, "
                    "fat12, fat16 or fat32)", name ? name : "");
}

MD_API const char *md_fs_type_name(int32_t type)
{
    size_t i;

    for (i = 0; i < sizeof(fs_names) / sizeof(fs_names[0]); i++)
        if (fs_names[i].type == type)
            return fs_names[i].name;
    return NULL;
}

/* ---- the description ------------------------------------------------------------ */

MD_API void md_disk_write_opts_init(md_disk_write_opts *opts)
{
    static const md_disk_write_opts def = MD_DISK_WRITE_OPTS_INIT;
    if (opts)
        *opts = def;
}

MD_API int md_disk_new(md_ctx *ctx, md_disk **ret)
{
    static const md_table_opts tdef = MD_TABLE_OPTS_INIT;
    md_disk *d;

    if (!ctx || !ret)
        return -EINVAL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return md_error(ctx, -ENOMEM, "out of memory");
    d->ctx = md_ctx_ref(ctx);
    d->table = tdef;
    *ret = d;
    return 0;
}

static void free_strv(char **v)
{
    size_t i;
    for (i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void fs_clear(struct disk_fs *f)
{
    free(f->label);
    free(f->uuid);
    free(f->extra);
    md_tree_free(f->tree);
    free(f->xl_dir);
    free(f->xl_sdir);
    free(f->xl_bin);
    free(f->xl_config);
    free_strv(f->xl_modules);
}

MD_API void md_disk_free(md_disk *d)
{
    size_t i;

    if (!d)
        return;
    for (i = 0; i < d->n_parts; i++) {
        free((char *)d->parts[i].type);
        free((char *)d->parts[i].name);
        free((char *)d->parts[i].uuid);
    }
    free(d->parts);
    for (i = 0; i < d->n_fs; i++)
        fs_clear(&d->fs[i]);
    free(d->fs);
    free((char *)d->table.disk_id);
    md_ctx_unref(d->ctx);
    free(d);
}

MD_API md_ctx *md_disk_ctx(const md_disk *d)
{
    return d ? d->ctx : NULL;
}

MD_API int md_disk_set_size(md_disk *d, uint64_t size)
{
    if (!d)
        return -EINVAL;
    if (size % 512 || size > (uint64_t)INT64_MAX)
        return md_error(d->ctx, -EINVAL, "image size %" PRIu64 " is not a positive multiple of 512 bytes "
                        "(or 0: computed)", size);
    d->size = size;
    return 0;
}

MD_API int md_disk_set_headroom(md_disk *d, uint64_t bytes, uint32_t percent)
{
    if (!d)
        return -EINVAL;
    if (percent > 1000)
        return md_error(d->ctx, -EINVAL, "headroom of %u%%: at most 1000%%", percent);
    d->headroom_bytes = bytes;
    d->headroom_pct = percent;
    d->headroom_set = true;
    return 0;
}

MD_API uint64_t md_disk_size(const md_disk *d)
{
    return d ? (d->size ? d->size : d->computed) : 0;
}

MD_API int md_disk_set_table(md_disk *d, const md_table_opts *opts)
{
    char *id = NULL;
    int r;

    if (!d || !opts)
        return -EINVAL;
    r = md_check_version(d->ctx, "md_table_opts", opts->version, MD_TABLE_OPTS_VERSION);
    if (r < 0)
        return r;
    if (!md_table_name(opts->type))
        return md_error(d->ctx, -EINVAL, "unknown partition table type %u", opts->type);
    if (opts->flags & ~MD_TABLE_SEED)
        return md_error(d->ctx, -EINVAL, "partition table: unknown flags 0x%x", opts->flags);
    if (opts->type == MD_TABLE_NONE && (opts->disk_id || (opts->flags & MD_TABLE_SEED)))
        return md_error(d->ctx, -EINVAL, "a seed or disk id needs a partition table");
    if (opts->disk_id && !(id = strdup(opts->disk_id)))
        return md_error(d->ctx, -ENOMEM, "out of memory");
    free((char *)d->table.disk_id);
    d->table = *opts;
    d->table.disk_id = id;
    d->table_set = true;
    return 0;
}

MD_API uint32_t md_disk_table(const md_disk *d)
{
    if (!d)
        return MD_TABLE_NONE;
    if (d->table_set)
        return d->table.type;
    return d->n_parts ? MD_TABLE_GPT : MD_TABLE_NONE;
}

MD_API int md_disk_add_partition(md_disk *d, const md_part_opts *opts)
{
    md_part_opts *v, *p;
    int r;

    if (!d || !opts)
        return -EINVAL;
    r = md_part_opts_check(d->ctx, d->n_parts + 1, opts);
    if (r < 0)
        return r;
    v = realloc(d->parts, (d->n_parts + 1) * sizeof(*v));
    if (!v)
        return md_error(d->ctx, -ENOMEM, "out of memory");
    d->parts = v;
    p = &v[d->n_parts];
    *p = *opts;
    p->type = md_strdup(opts->type);
    p->name = md_strdup(opts->name);
    p->uuid = md_strdup(opts->uuid);
    if ((opts->type && !p->type) || (opts->name && !p->name) || (opts->uuid && !p->uuid)) {
        free((char *)p->type);
        free((char *)p->name);
        free((char *)p->uuid);
        return md_error(d->ctx, -ENOMEM, "out of memory");
    }
    d->n_parts++;
    return 0;
}

MD_API int md_disk_add_partition_spec(md_disk *d, const char *spec)
{
    md_part_opts p;
    char *buf = NULL;
    int r;

    if (!d)
        return -EINVAL;
    r = md_part_spec_parse(d->ctx, d->n_parts + 1, spec, &p, &buf);
    if (r < 0)
        return r;
    r = md_disk_add_partition(d, &p);
    if (r < 0)
        md_error_prefix(d->ctx, "'%s'", spec);
    free(buf);
    return r;
}

MD_API uint32_t md_disk_partition_count(const md_disk *d)
{
    return d ? (uint32_t)d->n_parts : 0;
}

static int dup_opt(md_ctx *ctx, const char *s, char **out)
{
    *out = NULL;
    if (s && !(*out = strdup(s)))
        return md_error(ctx, -ENOMEM, "out of memory");
    return 0;
}

/* Append @f with copies of its options' strings and a new tree; on failure
 * @f is cleared. */
static int add_fs(md_disk *d, struct disk_fs *f, const char *label, const char *uuid,
                  const char *extra, md_tree **tree)
{
    struct disk_fs *v;
    size_t i;
    int r;

    if ((r = dup_opt(d->ctx, label, &f->label)) < 0 || (r = dup_opt(d->ctx, uuid, &f->uuid)) < 0 ||
        (r = dup_opt(d->ctx, extra, &f->extra)) < 0)
        goto fail;
    if (is_fat(f->type)) {
        f->fat.label = f->label;
        f->fat.volume_id = f->uuid;
        f->fat.oem_name = f->extra;
    } else {
        f->fo.label = f->label;
        f->fo.uuid = f->uuid;
        f->fo.features = f->extra;
    }
    for (i = 0; i < d->n_fs; i++)
        if (f->partno != MD_DISK_PART_AUTO && d->fs[i].partno == f->partno) {
            r = md_error(d->ctx, -EINVAL, "partition %u already has a filesystem", f->partno);
            goto fail;
        }
    r = md_tree_new(d->ctx, &f->tree);
    if (r < 0)
        goto fail;
    v = realloc(d->fs, (d->n_fs + 1) * sizeof(*v));
    if (!v) {
        r = md_error(d->ctx, -ENOMEM, "out of memory");
        goto fail;
    }
    d->fs = v;
    v[d->n_fs] = *f;
    *tree = f->tree;
    return (int)d->n_fs++;
fail:
    fs_clear(f);
    return r;
}

/* What md_disk_add_ext() and md_disk_add_fat() check first: the
 * arguments and the options' version (@version NULL: no options); @f
 * starts empty on @partno. */
static int add_begin(md_disk *d, md_tree **tree, const char *what, const uint32_t *version,
                     uint32_t max, uint32_t partno, struct disk_fs *f)
{
    int r;

    if (!d || !tree)
        return -EINVAL;
    *tree = NULL;
    if (version) {
        r = md_check_version(d->ctx, what, *version, max);
        if (r < 0)
            return r;
    }
    memset(f, 0, sizeof(*f));
    f->partno = f->placed = partno;
    return 0;
}

MD_API int md_disk_add_ext(md_disk *d, uint32_t partno, const md_ext_format_opts *opts,
                           md_tree **tree)
{
    static const md_ext_format_opts def = MD_EXT_FORMAT_OPTS_INIT;
    struct disk_fs f;
    int r;

    r = add_begin(d, tree, "md_ext_format_opts", opts ? &opts->version : NULL,
                  MD_EXT_FORMAT_OPTS_VERSION, partno, &f);
    if (r < 0)
        return r;
    f.fo = opts ? *opts : def;
    f.type = f.fo.fs_type;
    if (is_fat(f.type))
        return md_error(d->ctx, -EINVAL, "md_disk_add_ext: %s is FAT: use md_disk_add_fat",
                        md_fs_type_name(f.type));
    return add_fs(d, &f, f.fo.label, f.fo.uuid, f.fo.features, tree);
}

MD_API int md_disk_add_fat(md_disk *d, uint32_t partno, const md_fat_format_opts *opts,
                           md_tree **tree)
{
    static const md_fat_format_opts def = MD_FAT_FORMAT_OPTS_INIT;
    struct disk_fs f;
    int r;

    r = add_begin(d, tree, "md_fat_format_opts", opts ? &opts->version : NULL,
                  MD_FAT_FORMAT_OPTS_VERSION, partno, &f);
    if (r < 0)
        return r;
    f.fat = opts ? *opts : def;
    if (!f.fat.fat_type)
        f.fat.fat_type = MD_VFAT;
    if (!is_fat(f.fat.fat_type))
        return md_error(d->ctx, -EINVAL, "unknown FAT type %d (MD_VFAT, MD_FAT12, MD_FAT16 or MD_FAT32)",
                        f.fat.fat_type);
    f.type = f.fat.fat_type;
    return add_fs(d, &f, f.fat.label, f.fat.volume_id, f.fat.oem_name, tree);
}

MD_API uint32_t md_disk_fs_count(const md_disk *d)
{
    return d ? (uint32_t)d->n_fs : 0;
}

MD_API uint32_t md_disk_fs_partition(const md_disk *d, uint32_t index)
{
    return d && index < d->n_fs ? d->fs[index].placed : 0;
}

static int copy_modules(md_ctx *ctx, const char *const *mods, char ***out)
{
    size_t n = 0, i;
    char **v;

    *out = NULL;
    if (!mods)
        return 0;
    while (mods[n])
        n++;
    v = calloc(n + 1, sizeof(*v));
    if (!v)
        return md_error(ctx, -ENOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        v[i] = strdup(mods[i]);
        if (!v[i]) {
            free_strv(v);
            return md_error(ctx, -ENOMEM, "out of memory");
        }
    }
    *out = v;
    return 0;
}

MD_API int md_disk_set_extlinux(md_disk *d, uint32_t index, const md_extlinux_opts *opts)
{
    struct disk_fs *f, n;
    int r;

    if (!d || !opts)
        return -EINVAL;
    r = md_check_version(d->ctx, "md_extlinux_opts", opts->version, MD_EXTLINUX_OPTS_VERSION);
    if (r < 0)
        return r;
    if (index >= d->n_fs)
        return md_error(d->ctx, -EINVAL, "EXTLINUX: no filesystem %u in the image description", index);
    f = &d->fs[index];
    if (is_fat(f->type))
        return md_error(d->ctx, -EINVAL, "EXTLINUX: filesystem %u is FAT; EXTLINUX goes into ext2/3/4",
                        index);
    memset(&n, 0, sizeof(n));
    if ((r = dup_opt(d->ctx, opts->dir, &n.xl_dir)) < 0 ||
        (r = dup_opt(d->ctx, opts->syslinux_dir, &n.xl_sdir)) < 0 ||
        (r = dup_opt(d->ctx, opts->extlinux_bin, &n.xl_bin)) < 0 ||
        (r = dup_opt(d->ctx, opts->config_text, &n.xl_config)) < 0 ||
        (r = copy_modules(d->ctx, opts->modules, &n.xl_modules)) < 0) {
        free(n.xl_dir);
        free(n.xl_sdir);
        free(n.xl_bin);
        free(n.xl_config);
        return r;
    }
    free(f->xl_dir);
    free(f->xl_sdir);
    free(f->xl_bin);
    free(f->xl_config);
    free_strv(f->xl_modules);
    f->xl_dir = n.xl_dir;
    f->xl_sdir = n.xl_sdir;
    f->xl_bin = n.xl_bin;
    f->xl_config = n.xl_config;
    f->xl_modules = n.xl_modules;
    f->xo = *opts;
    f->xo.dir = f->xl_dir;
    f->xo.syslinux_dir = f->xl_sdir;
    f->xo.extlinux_bin = f->xl_bin;
    f->xo.config_text = f->xl_config;
    f->xo.modules = (const char *const *)f->xl_modules;
    f->extlinux = true;
    return 0;
}

/* ---- building -------------------------------------------------------------------- */

/* One md_disk_write() in progress. */
struct dw {
    md_disk *d;
    const md_disk_write_opts *o;
    const char *path;
    uint32_t table;
    uint64_t size;          /* of the image: given or computed */
    md_image *img;
    uint64_t done, total;   /* file data bytes, over all filesystems */
    uint64_t fs_base;       /* bytes done before the running filesystem */
};

static const char *part_uuid(const void *v, size_t i)
{
    return ((const md_part_opts *)v)[i].uuid;
}

/* Everything that can be told from the description alone, before the
 * image exists. */
static int dw_check(struct dw *w)
{
    md_disk *d = w->d;
    size_t i;

    int r;

    if (w->table == MD_TABLE_NONE && d->n_parts)
        return md_error(d->ctx, -EINVAL, "%s: partitions need a partition table (MBR or GPT)", w->path);
    if (w->table != MD_TABLE_NONE) {
        r = md_part_list_check(d->ctx, w->path, w->table == MD_TABLE_GPT, d->n_parts,
                               d->table.disk_id, part_uuid, d->parts);
        if (r < 0)
            return r;
    }
    for (i = 0; i < d->n_fs; i++) {
        uint32_t p = d->fs[i].partno;

        if (p == 0 && w->table != MD_TABLE_NONE)
            return md_error(d->ctx, -EINVAL,
                            "%s: a filesystem on the whole image (partition 0) and a partition table "
                            "exclude each other", w->path);
        if (p != 0 && p != MD_DISK_PART_AUTO && p > d->n_parts)
            return md_error(d->ctx, -EINVAL, "%s: filesystem on partition %u, but the image has %zu partition%s",
                            w->path, p, d->n_parts, d->n_parts == 1 ? "" : "s");
        if (p == MD_DISK_PART_AUTO && w->table != MD_TABLE_NONE && !d->n_parts)
            return md_error(d->ctx, -EINVAL, "%s: a filesystem with a partition table needs a partition to go on",
                            w->path);
    }
    return 0;
}

static uint64_t tree_data_bytes(const md_tree *t)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < t->n; i++) {
        const struct md_entry *e = t->v[i];
        if (!e->removed && S_ISREG(e->mode) && !e->master)
            n += e->size;
    }
    return n;
}

/* The file data a filesystem gets: FAT has no hard links, so each name is a copy. */
static uint64_t fs_data_bytes(const struct disk_fs *f)
{
    uint64_t n = 0;
    size_t i;

    if (!is_fat(f->type))
        return tree_data_bytes(f->tree);
    for (i = 0; i < f->tree->n; i++) {
        const struct md_entry *e = f->tree->v[i];
        if (!e->removed && S_ISREG(e->mode))
            n += e->size;
    }
    return n;
}

static int dw_finalize_trees(struct dw *w)
{
    size_t i;
    int r;

    for (i = 0; i < w->d->n_fs; i++) {
        r = md_tree_finalize(w->d->fs[i].tree);
        if (r < 0)
            return r;
        w->total += fs_data_bytes(&w->d->fs[i]);
    }
    return 0;
}

/* ---- computed sizes ------------------------------------------------------- */

#define MIB ((uint64_t)1 << 20)

static uint64_t align_mib(uint64_t v)
{
    return (v + MIB - 1) / MIB * MIB;
}

static uint64_t headroom_for(const md_disk *d, const md_tree *t)
{
    uint64_t data = tree_data_bytes(t), h;

    if (!d->headroom_set)
        return data / 5 > 16 * MIB ? data / 5 : 16 * MIB;
    if (d->headroom_bytes)
        return d->headroom_bytes;
    h = data / 100 * d->headroom_pct;
    return h;
}

static bool is_linux_spec(const char *type)
{
    static const char *const names[] = { "linux", "l", "0x83", "83",
                                         "0fc63daf-8483-4772-8e79-3d69d8477de4",
                                         "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", NULL };
    size_t i;

    if (!type || !*type)
        return true;
    for (i = 0; names[i]; i++)
        if (!strcasecmp(type, names[i]))
            return true;
    return false;
}

static bool is_esp_spec(const char *type)
{
    static const char *const names[] = { "efi", "esp", "uefi", "0xef", "ef",
                                         "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", NULL };
    size_t i;

    for (i = 0; type && names[i]; i++)
        if (!strcasecmp(type, names[i]))
            return true;
    return false;
}

/* The partition MD_DISK_PART_AUTO will resolve to, told from the
 * description (md_image_default_partition() or, for FAT,
 * md_image_default_fat_partition() decides for real once the table
 * exists, by the same rule); 0 when it cannot be told. */
static uint32_t planned_partition(const md_disk *d, const struct disk_fs *f)
{
    uint32_t i, linux_n = 0, linux_p = 0, esp_n = 0, esp_p = 0;

    if (f->partno != MD_DISK_PART_AUTO)
        return f->partno;
    if (!d->n_parts)
        return 0;
    if (is_fat(f->type)) {
        for (i = 0; i < d->n_parts; i++)
            if (is_esp_spec(d->parts[i].type) && !esp_n++)
                esp_p = i + 1;
        if (esp_n == 1)
            return esp_p;
        return d->n_parts == 1 ? 1 : 0;
    }
    for (i = 0; i < d->n_parts; i++)
        if (d->parts[i].flags & MD_PART_BOOTABLE)
            return i + 1;
    for (i = 0; i < d->n_parts; i++)
        if (is_linux_spec(d->parts[i].type) && !linux_n++)
            linux_p = i + 1;
    if (linux_n == 1)
        return linux_p;
    return d->n_parts == 1 ? 1 : 0;
}

/* What size the image needs: each filesystem's planned size (for a
 * partition without a size: that partition's size), the partitions in
 * 1 MiB steps from 1 MiB, and the GPT's backup at the end.  @part_size[i]
 * gets what partition i + 1 needs (0: no filesystem on it). */
static int dw_plan(struct dw *w, uint64_t *image, uint64_t *part_size)
{
    md_disk *d = w->d;
    uint64_t total = 0;
    size_t i;
    int r;

    for (i = 0; i < d->n_parts; i++)
        part_size[i] = 0;
    for (i = 0; i < d->n_fs; i++) {
        struct disk_fs *f = &d->fs[i];
        uint32_t p = planned_partition(d, f);
        uint64_t fs_size;

        if (w->table != MD_TABLE_NONE && p == 0)
            return md_error(d->ctx, -EINVAL, "%s: cannot tell which partition filesystem %zu goes on "
                            "to compute the image size: name it, or give the size", w->path, i + 1);
        if (is_fat(f->type))
            r = md_fat_plan_size(d->ctx, f->tree, &f->fat, headroom_for(d, f->tree), &fs_size);
        else
            r = md_ext_plan_size(d->ctx, f->tree, &f->fo, headroom_for(d, f->tree), &fs_size);
        if (r < 0)
            return r;
        if (w->table == MD_TABLE_NONE)
            total = align_mib(fs_size);
        else
            part_size[p - 1] = align_mib(fs_size);
    }
    if (w->table != MD_TABLE_NONE) {
        total = MIB; /* the table and the 1 MiB before the first partition */
        for (i = 0; i < d->n_parts; i++) {
            const md_part_opts *p = &d->parts[i];
            uint64_t sz = p->size ? p->size : part_size[i];

            if (!p->size && p->percent && p->percent < 100)
                return md_error(d->ctx, -EINVAL, "%s: partition %zu is %u%% of the disk: give the image "
                                "size, or the partition's", w->path, i + 1, p->percent);
            if (!sz)
                return md_error(d->ctx, -EINVAL, "%s: partition %zu has neither a size nor a filesystem "
                                "to size it by: give the image size, or the partition's", w->path, i + 1);
            total += align_mib(sz);
        }
        if (w->table == MD_TABLE_GPT)
            total += MIB; /* the backup table */
    }
    *image = total;
    return 0;
}

static int dw_size(struct dw *w)
{
    uint64_t *parts;
    int r;

    w->size = w->d->size;
    if (w->size)
        return 0;
    parts = md_calloc(w->d->n_parts, sizeof(*parts));
    if (!parts)
        return md_error(w->d->ctx, -ENOMEM, "out of memory");
    r = dw_plan(w, &w->size, parts);
    free(parts);
    if (r == 0)
        w->d->computed = w->size;
    return r;
}

/* @n bytes for a message: whole MiB, else KiB (an image under 1 MiB is not "0 MiB"). */
static const char *size_words(uint64_t n, char *buf, size_t len)
{
    if (n >= MIB)
        snprintf(buf, len, "%" PRIu64 " MiB", n / MIB);
    else
        snprintf(buf, len, "%" PRIu64 " KiB", (n + 1023) / 1024);
    return buf;
}

/* A given size too small: say what would do. */
static void dw_too_small(struct dw *w)
{
    uint64_t need = 0, *parts = md_calloc(w->d->n_parts, sizeof(*parts));
    char msg[MD_ERRMSG_MAX], have_s[32], need_s[32];

    if (!parts)
        return;
    snprintf(msg, sizeof(msg), "%s", md_ctx_errmsg(w->d->ctx));
    if (dw_plan(w, &need, parts) == 0 && need > w->size)
        md_error(w->d->ctx, -ENOSPC, "%s: an image of %s is too small: its contents need "
                 "about %s (give --size %" PRIu64 "M or more, or no size to have it "
                 "computed): %s", w->path, size_words(w->size, have_s, sizeof(have_s)),
                 size_words(need, need_s, sizeof(need_s)), (need + MIB - 1) / MIB, msg);
    else
        md_error(w->d->ctx, -ENOSPC, "%s", msg);
    free(parts);
}

static int dw_table(struct dw *w)
{
    md_disk *d = w->d;
    md_table_opts t = d->table;
    size_t i;
    int r;

    if (w->table == MD_TABLE_NONE)
        return 0;
    for (i = 0; i < d->n_parts; i++) {
        r = md_image_add_partition(w->img, &d->parts[i]);
        if (r < 0)
            return r;
    }
    t.type = w->table;
    return md_image_write_table(w->img, &t);
}

/* Resolve MD_DISK_PART_AUTO now that the table exists. */
static int dw_place(struct dw *w)
{
    md_disk *d = w->d;
    size_t i, j;
    int r;

    for (i = 0; i < d->n_fs; i++) {
        struct disk_fs *f = &d->fs[i];

        /* the table was just made from the description: the rule applied
         * to it needs no probe (which could fail) */
        f->placed = f->partno;
        if (f->partno == MD_DISK_PART_AUTO && w->table != MD_TABLE_NONE && planned_partition(d, f))
            f->placed = planned_partition(d, f);
        if (f->placed == MD_DISK_PART_AUTO) {
            r = is_fat(f->type) ? md_image_default_fat_partition(w->img, &f->placed)
                                : md_image_default_partition(w->img, &f->placed);
            if (r < 0)
                return r;
        }
        for (j = 0; j < i; j++)
            if (d->fs[j].placed == f->placed)
                return md_error(d->ctx, -EINVAL, "%s: two filesystems on partition %u", w->path,
                                f->placed);
    }
    return 0;
}

static int dw_progress(void *ud, uint64_t done, uint64_t total)
{
    struct dw *w = ud;

    (void)total;
    w->done = w->fs_base + done;
    return w->o->progress(w->o->userdata, w->done, w->total);
}

static int dw_fat(struct dw *w, struct disk_fs *f)
{
    md_fat_populate_opts po = MD_FAT_POPULATE_OPTS_INIT;
    md_fat *fs = NULL;
    int r;

    r = md_fat_format(w->img, f->placed, &f->fat, &fs);
    if (r < 0)
        return r;
    if (md_tree_count(f->tree)) {
        if (w->o->progress) {
            po.progress = dw_progress;
            po.userdata = w;
        }
        w->fs_base = w->done;
        r = md_fat_populate(fs, f->tree, &po);
        w->done = w->fs_base + fs_data_bytes(f);
    }
    md_fat_close(fs);
    return r;
}

static int dw_fs(struct dw *w, struct disk_fs *f)
{
    md_ext_populate_opts po = MD_EXT_POPULATE_OPTS_INIT;
    md_ext *fs = NULL;
    int r;

    if (is_fat(f->type))
        return dw_fat(w, f);

    r = md_ext_format(w->img, f->placed, &f->fo, &fs);
    if (r < 0)
        return r;
    fs->no_sync = !!(w->o->flags & MD_DISK_NO_SYNC);
    if (md_tree_count(f->tree)) {
        if (w->o->progress) {
            po.progress = dw_progress;
            po.userdata = w;
        }
        w->fs_base = w->done;
        r = md_ext_populate(fs, f->tree, &po);
        if (r < 0) {
            md_ext_free(fs);
            return r;
        }
        w->done = w->fs_base + tree_data_bytes(f->tree);
    }
    r = md_ext_close(fs);
    if (r < 0 || !f->extlinux)
        return r;
    return md_extlinux_install(w->img, f->placed, &f->xo);
}

MD_API int md_disk_write(md_disk *d, const char *path, const md_disk_write_opts *opts)
{
    static const md_disk_write_opts def = MD_DISK_WRITE_OPTS_INIT;
    md_image_create_opts co = MD_IMAGE_CREATE_OPTS_INIT;
    struct dw w;
    size_t i;
    int r;

    if (!d)
        return -EINVAL;
    if (!path || !*path)
        return md_error(d->ctx, -EINVAL, "no output image given");
    if (opts) {
        r = md_check_version(d->ctx, "md_disk_write_opts", opts->version, MD_DISK_WRITE_OPTS_VERSION);
        if (r < 0)
            return r;
        if (opts->flags & ~(MD_DISK_FORCE | MD_DISK_NO_SYNC))
            return md_error(d->ctx, -EINVAL, "%s: unknown flags 0x%x", path, opts->flags);
    }
    memset(&w, 0, sizeof(w));
    w.d = d;
    w.o = opts ? opts : &def;
    w.path = path;
    w.table = md_disk_table(d);
    if ((r = dw_check(&w)) < 0 || (r = dw_finalize_trees(&w)) < 0 || (r = dw_size(&w)) < 0)
        return r;
    if (w.o->flags & MD_DISK_FORCE)
        co.flags |= MD_IMAGE_FORCE;
    r = md_image_create(d->ctx, path, w.size, &co, &w.img);
    if (r < 0)
        return r;
    if ((r = dw_table(&w)) < 0 || (r = dw_place(&w)) < 0)
        goto out;
    for (i = 0; i < d->n_fs; i++) {
        r = dw_fs(&w, &d->fs[i]);
        if (r == -ENOSPC && d->size)
            dw_too_small(&w);
        if (r < 0)
            goto out;
    }
    r = md_image_commit(w.img);
out:
    md_image_free(w.img); /* removes the temporary image unless committed */
    return r < 0 ? r : 0;
}
