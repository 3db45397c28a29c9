/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What is in an image, as libblkid sees it: the partition table, each
 * partition's filesystem, the JSON form of both, and the default partition
 * a command works on when the user names none; the table checked against
 * the file (md_image_check_table()).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "md-image-internal.h"

/* ---- probing ----------------------------------------------------------------- */

struct probe_entry {
    uint32_t number;
    uint64_t start, size;
    char *type, *name, *uuid;
    const char *type_name;
    uint32_t flags;
    uint64_t attrs;
    char *fs_type, *fs_label, *fs_uuid;
};

struct md_probe {
    uint64_t size;
    char *table, *id;
    uint32_t count;
    struct probe_entry *e; /* count + 1 */
};

static const char *type_name_of(bool gpt, const char *type)
{
    static const struct { const char *t; const char *n; } more[] = {
        { "0x05", "Extended" }, { "0x0f", "W95 Ext'd (LBA)" }, { "0x0c", "W95 FAT32 (LBA)" },
        { "0x0b", "W95 FAT32" }, { "0x06", "FAT16" }, { "0x8e", "Linux LVM" }, { "0xfd", "Linux raid autodetect" },
        { "0xee", "GPT" },
        { "933ac7e1-2eb4-4f13-b844-0e14e2aef915", "Linux home" },
        { "e6d6d379-f507-44c2-a23c-238f2a3df928", "Linux LVM" },
        { "a19d880f-05fc-4d3b-a006-743f0f84911e", "Linux RAID" },
        { "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "Linux root (x86-64)" },
    };
    char code[16];
    size_t i;

    if (!type)
        return NULL;
    for (i = 0; md_known_types[i].alias1; i++) {
        if (gpt && !strcasecmp(type, md_known_types[i].gpt))
            return md_known_types[i].name;
        if (!gpt && md_known_types[i].dos) {
            snprintf(code, sizeof(code), "0x%02x", md_known_types[i].dos);
            if (!strcasecmp(type, code))
                return md_known_types[i].dos == 0x83 ? "Linux" : md_known_types[i].name;
        }
    }
    for (i = 0; i < sizeof(more) / sizeof(more[0]); i++)
        if (!strcasecmp(type, more[i].t))
            return more[i].n;
    return NULL;
}

static char *lookup_dup(blkid_probe pr, const char *name)
{
    const char *v = NULL;
    if (blkid_probe_lookup_value(pr, name, &v, NULL) == 0 && v)
        return strdup(v);
    return NULL;
}

static int probe_fs(md_image *img, struct probe_entry *e)
{
    blkid_probe pr = blkid_new_probe();
    int r;

    if (!pr)
        return -ENOMEM;
    if (e->size == 0 || blkid_probe_set_device(pr, img->fd, (blkid_loff_t)e->start, (blkid_loff_t)e->size) != 0) {
        blkid_free_probe(pr);
        return 0;
    }
    blkid_probe_enable_partitions(pr, 0);
    blkid_probe_enable_superblocks(pr, 1);
    blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE);
    r = blkid_do_safeprobe(pr);
    if (r == 0) {
        e->fs_type = lookup_dup(pr, "TYPE");
        e->fs_label = lookup_dup(pr, "LABEL");
        e->fs_uuid = lookup_dup(pr, "UUID");
    } else if (r == -2) {
        md_dbg(img->ctx, "%s: ambivalent filesystem signatures at offset %" PRIu64, img->path, e->start);
    }
    blkid_free_probe(pr);
    return 0;
}

MD_API void md_probe_free(md_probe *p)
{
    uint32_t i;

    if (!p)
        return;
    for (i = 0; p->e && i <= p->count; i++) {
        free(p->e[i].type);
        free(p->e[i].name);
        free(p->e[i].uuid);
        free(p->e[i].fs_type);
        free(p->e[i].fs_label);
        free(p->e[i].fs_uuid);
    }
    free(p->e);
    free(p->table);
    free(p->id);
    free(p);
}

/* The table type and id of @ls into @p; *@gpt when it is a GPT.  Returns
 * the number of partitions. */
static int probe_table(md_probe *p, blkid_partlist ls, bool *gpt)
{
    blkid_parttable tab = blkid_partlist_get_table(ls);
    const char *t = blkid_parttable_get_type(tab), *id = blkid_parttable_get_id(tab);
    int n;

    *gpt = t && !strcmp(t, "gpt");
    p->table = md_strdup(t);
    if (id)
        p->id = *gpt ? strdup(id) : md_asprintf("0x%s", id);
    n = blkid_partlist_numof_partitions(ls);
    return n < 0 ? 0 : n;
}

/* Entry @e from libblkid's @par, and the filesystem in it. */
static void probe_partition(md_image *img, blkid_partition par, bool gpt, struct probe_entry *e)
{
    char code[16];

    e->number = (uint32_t)blkid_partition_get_partno(par);
    e->start = (uint64_t)blkid_partition_get_start(par) * SECTOR;
    e->size = (uint64_t)blkid_partition_get_size(par) * SECTOR;
    e->attrs = blkid_partition_get_flags(par);
    if (gpt) {
        e->type = md_strdup(blkid_partition_get_type_string(par));
        e->name = md_strdup(blkid_partition_get_name(par));
        if (e->name && !*e->name) {
            free(e->name);
            e->name = NULL;
        }
        if (e->attrs & GPT_ATTR_LEGACY_BOOT)
            e->flags |= MD_PART_BOOTABLE;
    } else {
        snprintf(code, sizeof(code), "0x%02x", (unsigned)blkid_partition_get_type(par) & 0xff);
        e->type = strdup(code);
        if (e->attrs & DOS_ACTIVE)
            e->flags |= MD_PART_BOOTABLE;
    }
    e->uuid = md_strdup(blkid_partition_get_uuid(par));
    e->type_name = type_name_of(gpt, e->type);
    if (!blkid_partition_is_extended(par))
        probe_fs(img, e);
}

MD_API int md_image_probe(md_image *img, md_probe **ret)
{
    blkid_probe pr = NULL;
    blkid_partlist ls;
    md_probe *p;
    int r, n = 0, i;
    bool gpt = false;

    if (!img || !ret)
        return -EINVAL;
    *ret = NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return md_error(img->ctx, -ENOMEM, "out of memory");
    p->size = img->size;
    r = md_image_blkid_parts(img, &pr, &ls);
    if (r < 0) {
        free(p);
        return r;
    }
    if (ls)
        n = probe_table(p, ls, &gpt);
    p->count = (uint32_t)n;
    p->e = calloc((size_t)n + 1, sizeof(*p->e));
    if (!p->e) {
        blkid_free_probe(pr);
        md_probe_free(p);
        return md_error(img->ctx, -ENOMEM, "out of memory");
    }
    p->e[0].size = img->size;
    for (i = 0; i < n; i++) {
        blkid_partition par = blkid_partlist_get_partition(ls, i);
        if (par)
            probe_partition(img, par, gpt, &p->e[i + 1]);
    }
    if (!ls)
        probe_fs(img, &p->e[0]);
    blkid_free_probe(pr);
    *ret = p;
    return 0;
}

static const struct probe_entry *entry(const md_probe *p, uint32_t idx)
{
    return p && p->e && idx <= p->count ? &p->e[idx] : NULL;
}

MD_API const char *md_probe_table(const md_probe *p) { return p ? p->table : NULL; }
MD_API const char *md_probe_table_id(const md_probe *p) { return p ? p->id : NULL; }
MD_API uint32_t md_probe_count(const md_probe *p) { return p ? p->count : 0; }

#define ACCESSOR(rtype, name, field, dflt)                              \
    MD_API rtype md_probe_##name(const md_probe *p, uint32_t idx)       \
    {                                                                   \
        const struct probe_entry *e = entry(p, idx);                    \
        return e ? e->field : dflt;                                     \
    }
ACCESSOR(uint32_t, number, number, 0)
ACCESSOR(uint64_t, start, start, 0)
ACCESSOR(uint64_t, size, size, 0)
ACCESSOR(const char *, type, type, NULL)
ACCESSOR(const char *, type_name, type_name, NULL)
ACCESSOR(uint32_t, flags, flags, 0)
ACCESSOR(uint64_t, attrs, attrs, 0)
ACCESSOR(const char *, name, name, NULL)
ACCESSOR(const char *, uuid, uuid, NULL)
ACCESSOR(const char *, fs_type, fs_type, NULL)
ACCESSOR(const char *, fs_label, fs_label, NULL)
ACCESSOR(const char *, fs_uuid, fs_uuid, NULL)
#undef ACCESSOR

static void json_fs(FILE *f, const struct probe_entry *e)
{
    if (!e->fs_type) {
        fputs("null", f);
        return;
    }
    fputs("{\"type\": ", f);
    md_json_put(f, e->fs_type);
    fputs(", \"label\": ", f);
    md_json_put(f, e->fs_label);
    fputs(", \"uuid\": ", f);
    md_json_put(f, e->fs_uuid);
    fputc('}', f);
}

MD_API int md_probe_to_json(const md_probe *p, char **json)
{
    char *buf = NULL;
    size_t len = 0;
    uint32_t i;
    FILE *f;

    if (!p || !json)
        return -EINVAL;
    f = open_memstream(&buf, &len);
    if (!f)
        return -ENOMEM;
    fprintf(f, "{\n  \"size\": %" PRIu64 ",\n  \"table\": ", p->size);
    md_json_put(f, p->table);
    fputs(",\n  \"id\": ", f);
    md_json_put(f, p->id);
    fputs(",\n  \"filesystem\": ", f);
    json_fs(f, &p->e[0]);
    fputs(",\n  \"partitions\": [", f);
    for (i = 1; i <= p->count; i++) {
        const struct probe_entry *e = &p->e[i];
        fprintf(f, "%s\n    {\"number\": %u, \"start\": %" PRIu64 ", \"size\": %" PRIu64 ", \"type\": ",
                i > 1 ? "," : "", e->number, e->start, e->size);
        md_json_put(f, e->type);
        fputs(", \"type_name\": ", f);
        md_json_put(f, e->type_name);
        fprintf(f, ", \"bootable\": %s, \"attrs\": %" PRIu64 ", \"name\": ",
                e->flags & MD_PART_BOOTABLE ? "true" : "false", e->attrs);
        md_json_put(f, e->name);
        fputs(", \"uuid\": ", f);
        md_json_put(f, e->uuid);
        fputs(", \"filesystem\": ", f);
        json_fs(f, e);
        fputc('}', f);
    }
    fputs(p->count ? "\n  ]\n}\n" : "]\n}\n", f);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return -ENOMEM;
    }
    *json = buf;
    return 0;
}

/* ---- the default partition ------------------------------------------------ */

static bool is_linux_type(const char *type)
{
    static const char *const linux_types[] = {
        "0x83",
        "0fc63daf-8483-4772-8e79-3d69d8477de4", /* Linux filesystem */
        "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", /* Linux root (x86-64) */
        "44479540-f297-41b2-9af7-d131d5f0458a", /* Linux root (x86) */
        "b921b045-1df0-41c3-af44-4c6f280d3fae", /* Linux root (ARM-64) */
    };
    size_t i;

    for (i = 0; type && i < sizeof(linux_types) / sizeof(linux_types[0]); i++)
        if (!strcasecmp(type, linux_types[i]))
            return true;
    return false;
}

static bool is_esp_type(const char *type)
{
    return type && (!strcasecmp(type, "0xef") ||
                    !strcasecmp(type, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"));
}

/* The rule both defaults follow: the whole image without a table; else
 * (@bootable_first) the first bootable partition; else the only partition
 * whose type @is_kind accepts (@kind names them in messages); else the
 * only partition. */
static int default_partition(md_image *img, bool bootable_first, bool (*is_kind)(const char *),
                             const char *kind, uint32_t *partno)
{
    md_probe *pr = NULL;
    uint32_t i, n, kind_n = 0, kind_first = 0;
    char list[128] = "";
    int r;

    if (!img || !partno)
        return -EINVAL;
    r = md_image_probe(img, &pr);
    if (r < 0)
        return r;
    n = md_probe_count(pr);
    if (!md_probe_table(pr)) {
        *partno = 0;
        goto out;
    }
    for (i = 1; i <= n; i++) {
        if (bootable_first && (md_probe_flags(pr, i) & MD_PART_BOOTABLE)) {
            *partno = md_probe_number(pr, i);
            goto out;
        }
        if (is_kind(md_probe_type(pr, i))) {
            size_t len = strlen(list);
            if (!kind_n++)
                kind_first = md_probe_number(pr, i);
            snprintf(list + len, sizeof(list) - len, "%s%u", len ? ", " : "", md_probe_number(pr, i));
        }
    }
    if (kind_n == 1) {
        *partno = kind_first;
    } else if (kind_n > 1) {
        r = md_error(img->ctx, -EINVAL, "%s: %s partitions %s%s: name the partition to use", img->path,
                     kind, list, bootable_first ? " and none is bootable" : "");
    } else if (n == 1) {
        *partno = md_probe_number(pr, 1);
    } else if (n) {
        r = md_error(img->ctx, -ENOENT, "%s: no %s partition among several, so no partition to use "
                     "by default: name one", img->path, kind);
    } else {
        r = md_error(img->ctx, -ENOENT, "%s: the partition table is empty, so no partition to use by "
                     "default: name one", img->path);
    }
out:
    md_probe_free(pr);
    return r;
}

MD_API int md_image_default_partition(md_image *img, uint32_t *partno)
{
    return default_partition(img, true, is_linux_type, "Linux", partno);
}

MD_API int md_image_default_fat_partition(md_image *img, uint32_t *partno)
{
    return default_partition(img, false, is_esp_type, "EFI System", partno);
}

/* ---- the table against the file ------------------------------------------------ */

/* One partition as the checks see it: sectors [start, end). */
struct span {
    uint32_t partno;
    uint64_t start, end;
    bool extended, logical;
};

/* The GPT's header: the primary, else the backup at the end of the file. */
static bool gpt_find_header(md_image *img, struct md_gpt_header *g, bool *primary)
{
    uint64_t sectors = img->size / SECTOR;

    *primary = md_image_gpt_header(img, 1, g);
    return *primary || (sectors > 1 && md_image_gpt_header(img, sectors - 1, g));
}

int md_image_check_gpt_entries(md_image *img, uint32_t partno, bool writing)
{
    struct md_gpt_header g;
    uint64_t first, last;
    uint32_t i;
    bool primary;

    if (!gpt_find_header(img, &g, &primary))
        return 0; /* libblkid found a table we cannot place: nothing to compare with */
    for (i = partno ? partno - 1 : 0; i < g.n_entries && (!partno || i == partno - 1); i++) {
        if (!md_image_gpt_entry(img, &g, i, &first, &last))
            continue;
        if (first < g.first || last > g.last || first > last)
            return md_error(img->ctx, -EINVAL, "%s: partition %u (sectors %" PRIu64 "-%" PRIu64 ") "
                            "is outside the GPT's usable sectors %" PRIu64 "-%" PRIu64 ": %s: fix "
                            "the partition table first", img->path, i + 1, first, last, g.first,
                            g.last, writing ? "it lies over the table's own sectors"
                                            : "libblkid does not read it");
    }
    return 0;
}

/* A GPT: where it says the disk ends (truncated?), and every entry inside
 * the usable sectors (not in the headers and entry arrays). */
static int check_gpt_areas(md_image *img)
{
    struct md_gpt_header g;
    bool primary;
    int r;

    if (gpt_find_header(img, &g, &primary) && primary) {
        r = md_image_gpt_truncated(img, &g);
        if (r < 0)
            return r;
    }
    return md_image_check_gpt_entries(img, 0, true);
}

/* Two partitions sharing sectors (an extended MBR partition and the logical
 * ones it holds excepted). */
static int check_overlaps(md_image *img, const struct span *s, size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        for (j = i + 1; j < n; j++) {
            const struct span *x = &s[i], *y = &s[j];
            uint64_t from = x->start > y->start ? x->start : y->start;
            uint64_t to = x->end < y->end ? x->end : y->end;

            if (from >= to || (x->extended && y->logical) || (y->extended && x->logical))
                continue;
            return md_error(img->ctx, -EINVAL, "%s: partitions %u and %u overlap (sectors %" PRIu64
                            "-%" PRIu64 "): writing one would destroy the other; fix the partition "
                            "table first", img->path, x->partno < y->partno ? x->partno : y->partno,
                            x->partno < y->partno ? y->partno : x->partno, from, to - 1);
        }
    }
    return 0;
}

/* Partition @s past the end of the file. */
static int check_inside(md_image *img, const struct span *s)
{
    char a[32], b[32];

    if (s->end <= img->size / SECTOR)
        return 0;
    md_image_fmt_size(a, sizeof(a), s->end * SECTOR);
    md_image_fmt_size(b, sizeof(b), img->size);
    return md_error(img->ctx, -EINVAL, "%s: partition %u ends at %s, beyond the image's %s: "
                    "truncated image?", img->path, s->partno, a, b);
}

int md_image_check_table(md_image *img, blkid_partlist ls, uint32_t partno, bool all)
{
    int i, n = blkid_partlist_numof_partitions(ls), r = 0;
    bool gpt = !strcmp(blkid_parttable_get_type(blkid_partlist_get_table(ls)), "gpt");
    struct span *s;
    size_t k = 0;

    if (n <= 0)
        return 0;
    s = md_calloc((size_t)n, sizeof(*s));
    if (!s)
        return md_error(img->ctx, -ENOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        blkid_partition par = blkid_partlist_get_partition(ls, i);
        blkid_loff_t start = par ? blkid_partition_get_start(par) : -1;
        blkid_loff_t size = par ? blkid_partition_get_size(par) : -1;

        if (start < 0 || size <= 0)
            continue;
        s[k].partno = (uint32_t)blkid_partition_get_partno(par);
        s[k].start = (uint64_t)start;
        s[k].end = (uint64_t)start + (uint64_t)size;
        s[k].extended = blkid_partition_is_extended(par);
        s[k].logical = blkid_partition_is_logical(par);
        if (all || s[k].partno == partno)
            r = check_inside(img, &s[k]);
        if (r == 0 && all && !gpt && s[k].start == 0)
            r = md_error(img->ctx, -EINVAL, "%s: partition %u starts at sector 0, on the MBR itself: "
                         "fix the partition table first", img->path, s[k].partno);
        if (r < 0)
            break;
        k++;
    }
    if (r == 0 && all && gpt)
        r = check_gpt_areas(img);
    if (r == 0 && all)
        r = check_overlaps(img, s, k);
    free(s);
    return r;
}
