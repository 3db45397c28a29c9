/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The syslinux blobs of the EXTLINUX installer (see md-extlinux.c): finding
 * the boot sector, ldlinux.sys and ldlinux.c32 in an installer binary or a
 * build directory, patching copies of them for one placement of ldlinux.sys,
 * and the ADV.  Pure byte work: no filesystem, no image.
 *
 * Debian ships neither ldlinux.sys nor the boot sector as files: they are
 * compiled into /usr/bin/extlinux (bin2c arrays in .data).  They are found
 * there by their signatures; see md_extlinux_blobs_parse().  The layouts come
 * from syslinux's libinstaller/syslxint.h; all offsets are read from the
 * blobs themselves, none is hard-coded.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "md-extlinux-internal.h"
#include "md-internal.h"

/* Fake FAT BPB fields of the boot sector (struct fat_boot_sector) */
#define BS_BYTES_PER_SEC 0x0b
#define BS_SECTORS 0x13
#define BS_SEC_PER_TRACK 0x18
#define BS_HEADS 0x1a
#define BS_HIDDEN_SECS 0x1c
#define BS_HUGE_SECTORS 0x20
/* What extlinux uses when the device has no geometry (loop devices, images) */
#define FALLBACK_HEADS 64
#define FALLBACK_SECTORS 32

/* ---- blobs -------------------------------------------------------------- */

void md_extlinux_blobs_free(struct md_sl_blobs *b)
{
    if (!b)
        return;
    free(b->ldlinux);
    free(b->c32);
    free(b->source);
    memset(b, 0, sizeof(*b));
}

/* Check the patch area of ldlinux and copy the extended patch area fields;
 * every offset must lie inside the image. */
static int parse_patch_area(md_ctx *ctx, struct md_sl_blobs *b, const char *name)
{
    size_t i, epa;

    for (i = 0; i + 4 <= b->ldlen; i += 4)
        if (md_get_le32(b->ldlinux + i) == LDLINUX_MAGIC)
            break;
    if (i + 24 > b->ldlen)
        return md_error(ctx, -EINVAL, "%s: ldlinux.sys has no patch area", name);
    b->pa = i;
    b->instance = md_get_le32(b->ldlinux + i + PA_INSTANCE);
    epa = md_get_le16(b->ldlinux + i + PA_EPAOFFSET);
    if (epa + EPA_SIZE > b->ldlen)
        return md_error(ctx, -EINVAL, "%s: ldlinux.sys: extended patch area out of range", name);
    for (i = 0; i < EPA_SIZE / 2; i++)
        b->epa[i] = md_get_le16(b->ldlinux + epa + 2 * i);
    if ((size_t)b->epa[EPA_ADVPTROFFSET / 2] + 16 > b->ldlen ||
        (size_t)b->epa[EPA_DIROFFSET / 2] + b->epa[EPA_DIRLEN / 2] > b->ldlen ||
        (size_t)b->epa[EPA_SECPTROFFSET / 2] + (size_t)b->epa[EPA_SECPTRCNT / 2] * EXTENT_SIZE > b->ldlen ||
        b->epa[EPA_DIRLEN / 2] < 2 || b->epa[EPA_SECPTRCNT / 2] < 1 ||
        b->epa[EPA_SECT1PTR0 / 2] + 4u > SECTOR || b->epa[EPA_SECT1PTR1 / 2] + 4u > SECTOR ||
        b->epa[EPA_RAIDPATCH / 2] + 2u > SECTOR)
        return md_error(ctx, -EINVAL, "%s: ldlinux.sys: patch area offsets out of range "
                        "(not a syslinux 4+ core?)", name);
    return 0;
}

/* Same build: the boot sector compares the instance dword of the first
 * sector it loads with the value compiled into it (core/diskboot.inc). */
static int check_instance(md_ctx *ctx, const struct md_sl_blobs *b, const char *name)
{
    uint8_t pat[4];
    size_t i;

    md_put_le32(pat, b->instance);
    for (i = 0; i + 4 <= SECTOR; i++)
        if (!memcmp(b->vbr + i, pat, 4))
            return 0;
    return md_error(ctx, -EINVAL, "%s: the boot sector and ldlinux.sys come from different "
                    "syslinux builds (instance 0x%08x not found in the boot sector)",
                    name, b->instance);
}

static bool is_vbr_at(const uint8_t *buf, size_t n, size_t hit)
{
    /* LDLINUX_MAGIC is bsMagic at 0x1f8 of the boot sector, which ends in
     * 55 AA and starts with a short jump (EB xx 90). */
    return hit >= 0x1f8 && hit + 8 <= n && buf[hit + 6] == 0x55 && buf[hit + 7] == 0xaa &&
           buf[hit - 0x1f8] == 0xeb;
}

static bool is_ldlinux_at(const uint8_t *buf, size_t hit)
{
    static const char sig[] = "\r\nSYSLINUX ";
    return hit >= 0x18 && !memcmp(buf + hit - 0x18, sig, sizeof(sig) - 1);
}

/* Size of an ELF32 file from its header: the section headers come last. */
static size_t elf32_size(const uint8_t *p, size_t avail)
{
    uint32_t shoff;
    size_t end;

    if (avail < 52 || memcmp(p, "\177ELF", 4) || p[4] != 1 /* ELFCLASS32 */ || p[5] != 1)
        return 0;
    shoff = md_get_le32(p + 32);
    end = (size_t)shoff + (size_t)md_get_le16(p + 48) * md_get_le16(p + 46);
    return end <= avail ? end : 0;
}

/* Where the blobs lie in an installer binary. */
struct blob_pos {
    size_t vbr, ldl;      /* offsets of the boot sector and of ldlinux.sys */
    size_t ldlen;         /* length of ldlinux.sys */
    uint32_t hexdate;     /* the build date, the bin2c _mtime of the arrays */
};

/* (a) of md_extlinux_blobs_parse(): the boot sector and ldlinux.sys. */
static int find_blobs(md_ctx *ctx, const uint8_t *buf, size_t n, const char *name,
                      struct blob_pos *pos)
{
    size_t i, vbr = SIZE_MAX, ldl = SIZE_MAX;

    for (i = 0; i + 4 <= n; i++) {
        if (md_get_le32(buf + i) != LDLINUX_MAGIC)
            continue;
        if (is_vbr_at(buf, n, i)) {
            if (vbr != SIZE_MAX)
                return md_error(ctx, -EINVAL, "%s: more than one syslinux boot sector found", name);
            vbr = i - 0x1f8;
        } else if (is_ldlinux_at(buf, i)) {
            if (ldl != SIZE_MAX)
                return md_error(ctx, -EINVAL, "%s: more than one ldlinux.sys image found", name);
            ldl = i - 0x18;
        }
    }
    if (vbr == SIZE_MAX || ldl == SIZE_MAX)
        return md_error(ctx, -ENOENT, "%s: no embedded syslinux %s found (is this the extlinux "
                        "binary of the Debian package extlinux?)", name,
                        vbr == SIZE_MAX ? "boot sector" : "ldlinux.sys");
    if (vbr + SECTOR > n)
        return md_error(ctx, -EINVAL, "%s: truncated boot sector", name);
    pos->vbr = vbr;
    pos->ldl = ldl;
    return 0;
}

/* (b) of md_extlinux_blobs_parse(): the build date and the ldlinux.sys length. */
static int find_ldlinux_len(md_ctx *ctx, const uint8_t *buf, size_t n, const char *name,
                            struct blob_pos *pos)
{
    size_t i, ldlen = 0;

    pos->hexdate = LDLINUX_MAGIC ^ md_get_le32(buf + pos->ldl + 0x1c);
    for (i = 0; i + 8 <= n; i += 4) {
        uint32_t cand[2];
        int k;
        if (md_get_le32(buf + i) != pos->hexdate)
            continue;
        cand[0] = i >= 4 ? md_get_le32(buf + i - 4) : 0;
        cand[1] = md_get_le32(buf + i + 4);
        for (k = 0; k < 2; k++) {
            if (cand[k] > SECTOR && cand[k] % SECTOR == 0 && pos->ldl + cand[k] <= n) {
                if (ldlen && ldlen != cand[k])
                    return md_error(ctx, -EINVAL, "%s: ambiguous ldlinux.sys length (%zu or %u)",
                                    name, ldlen, cand[k]);
                ldlen = cand[k];
            }
        }
    }
    if (!ldlen)
        return md_error(ctx, -EINVAL, "%s: cannot determine the length of the embedded "
                        "ldlinux.sys (build date 0x%08x not found next to it)", name,
                        pos->hexdate);
    pos->ldlen = ldlen;
    return 0;
}

/* Copy the blobs at @pos into @b; (c): ldlinux.c32 is sized from its ELF
 * header (0 when there is none). */
static int copy_blobs(md_ctx *ctx, const uint8_t *buf, size_t n, const char *name,
                      const struct blob_pos *pos, struct md_sl_blobs *b)
{
    memcpy(b->vbr, buf + pos->vbr, SECTOR);
    b->ldlen = pos->ldlen;
    b->ldlinux = malloc(pos->ldlen);
    b->c32len = elf32_size(buf + pos->vbr + SECTOR, n - pos->vbr - SECTOR);
    b->c32 = b->c32len ? malloc(b->c32len) : NULL;
    b->source = md_strdup(name);
    if (!b->ldlinux || (b->c32len && !b->c32) || !b->source) {
        md_extlinux_blobs_free(b);
        return md_error(ctx, -ENOMEM, "out of memory");
    }
    memcpy(b->ldlinux, buf + pos->ldl, pos->ldlen);
    if (b->c32len)
        memcpy(b->c32, buf + pos->vbr + SECTOR, b->c32len);
    return 0;
}

/*
 * Find the boot sector, ldlinux.sys and ldlinux.c32 inside an installer
 * binary (/usr/bin/extlinux; /usr/bin/syslinux has the first two too).
 * syslinux's libinstaller compiles them in with bin2c.pl, which emits for
 * each array `const unsigned int X_len; const int X_mtime;`, so
 * (a) the boot sector is the LDLINUX_MAGIC hit that is a boot sector
 *     (magic at 0x1f8, 55 AA after it, jump at 0), ldlinux.sys the hit
 *     preceded by its "\r\nSYSLINUX " banner at -0x18; each must be unique;
 * (b) the build date HEXDATE = magic ^ instance is the _mtime of all three
 *     arrays, and the ldlinux.sys length is the dword next to a HEXDATE
 *     dword that is a multiple of 512 (> 512) and fits in the file;
 * (c) ldlinux.c32 is the ELF32 file following the boot sector, sized from
 *     its ELF header.
 */
int md_extlinux_blobs_parse(md_ctx *ctx, const uint8_t *buf, size_t n, const char *name,
                            struct md_sl_blobs *b)
{
    struct blob_pos pos = { 0 };
    int r;

    memset(b, 0, sizeof(*b));
    r = find_blobs(ctx, buf, n, name, &pos);
    if (r >= 0)
        r = find_ldlinux_len(ctx, buf, n, name, &pos);
    if (r >= 0)
        r = copy_blobs(ctx, buf, n, name, &pos, b);
    if (r < 0)
        return r;
    r = parse_patch_area(ctx, b, name);
    if (r >= 0)
        r = check_instance(ctx, b, name);
    if (r >= 0 && !b->c32len)
        r = md_error(ctx, -ENOENT, "%s: no embedded ldlinux.c32 after the boot sector", name);
    if (r < 0)
        md_extlinux_blobs_free(b);
    else
        md_dbg(ctx, "%s: boot sector @0x%zx, ldlinux.sys @0x%zx (%zu B), ldlinux.c32 %zu B, "
               "build 0x%08x", name, pos.vbr, pos.ldl, pos.ldlen, b->c32len, pos.hexdate);
    return r;
}

/* Read @dir/@name; *@path names it for messages (the caller frees it). */
static int read_dir_file(md_ctx *ctx, const char *dir, const char *name, char **path,
                         char **data, size_t *size)
{
    *path = md_asprintf("%s/%s", dir, name);
    if (!*path)
        return md_error(ctx, -ENOMEM, "out of memory");
    return md_read_file(ctx, *path, data, size);
}

/* @dir/ldlinux.bss: the boot sector. */
static int read_dir_bss(md_ctx *ctx, const char *dir, struct md_sl_blobs *b)
{
    char *p, *data = NULL;
    size_t size;
    int r = read_dir_file(ctx, dir, "ldlinux.bss", &p, &data, &size);

    if (r >= 0 && (size < SECTOR || md_get_le16((uint8_t *)data + 0x1fe) != 0xaa55))
        r = md_error(ctx, -EINVAL, "%s: not a syslinux boot sector", p);
    if (r >= 0)
        memcpy(b->vbr, data, SECTOR);
    free(data);
    free(p);
    return r;
}

/* @dir/ldlinux.sys: the core and its patch area. */
static int read_dir_core(md_ctx *ctx, const char *dir, struct md_sl_blobs *b)
{
    char *p, *data = NULL;
    size_t size;
    int r = read_dir_file(ctx, dir, "ldlinux.sys", &p, &data, &size);

    if (r < 0)
        goto out;
    /* the installer pads the core to whole sectors */
    b->ldlen = (size + SECTOR - 1) / SECTOR * SECTOR;
    b->ldlinux = md_calloc(b->ldlen, 1);
    if (!b->ldlinux) {
        r = md_error(ctx, -ENOMEM, "out of memory");
        goto out;
    }
    memcpy(b->ldlinux, data, size);
    if (b->ldlen < SECTOR || !is_ldlinux_at(b->ldlinux, 0x18))
        r = md_error(ctx, -EINVAL, "%s: not a syslinux ldlinux.sys", p);
    else
        r = parse_patch_area(ctx, b, p);
out:
    free(data);
    free(p);
    return r;
}

/* ldlinux.c32 next to them, else the one in the syslinux dir. */
static int read_dir_c32(md_ctx *ctx, const char *dir, const char *syslinux_dir,
                        struct md_sl_blobs *b)
{
    char *p = md_asprintf("%s/ldlinux.c32", dir), *data = NULL;
    size_t size;
    int r;

    if (p && access(p, F_OK) < 0) {
        free(p);
        p = md_asprintf("%s/modules/bios/ldlinux.c32", syslinux_dir);
    }
    if (!p)
        return md_error(ctx, -ENOMEM, "out of memory");
    r = md_read_file(ctx, p, &data, &size);
    free(p);
    if (r < 0) {
        md_error_prefix(ctx, "ldlinux.c32 of the build in %s", dir);
        return r;
    }
    b->c32 = (uint8_t *)data;
    b->c32len = size;
    return 0;
}

/* A syslinux build tree's core/ldlinux.bss + core/ldlinux.sys (+ ldlinux.c32). */
static int blobs_load_dir(md_ctx *ctx, const char *dir, const char *syslinux_dir,
                          struct md_sl_blobs *b)
{
    int r;

    memset(b, 0, sizeof(*b));
    b->source = md_strdup(dir);
    r = b->source ? read_dir_bss(ctx, dir, b) : md_error(ctx, -ENOMEM, "out of memory");
    if (r >= 0)
        r = read_dir_core(ctx, dir, b);
    if (r >= 0)
        r = check_instance(ctx, b, dir);
    if (r >= 0)
        r = read_dir_c32(ctx, dir, syslinux_dir, b);
    if (r < 0)
        md_extlinux_blobs_free(b);
    return r;
}

int md_extlinux_blobs_load(md_ctx *ctx, const char *path, const char *syslinux_dir,
                           struct md_sl_blobs *b)
{
    struct stat st;
    char *data = NULL;
    size_t size;
    int r;

    if (stat(path, &st) < 0) {
        r = -errno;
        if (r == -ENOENT && !strcmp(path, DEFAULT_EXTLINUX_BIN))
            return md_error(ctx, r, "%s: not found: install the Debian package extlinux "
                            "(it holds the boot sector and ldlinux.sys), or name another "
                            "copy with --extlinux-bin", path);
        return md_error_errno(ctx, r, "%s", path);
    }
    if (S_ISDIR(st.st_mode))
        return blobs_load_dir(ctx, path, syslinux_dir, b);
    r = md_read_file(ctx, path, &data, &size);
    if (r < 0)
        return r;
    r = md_extlinux_blobs_parse(ctx, (const uint8_t *)data, size, path, b);
    free(data);
    return r;
}

/* ---- patching ----------------------------------------------------------- */

/* The fake FAT BPB and the pointer to the first sector of ldlinux.sys (at
 * LBA @sect0), as extlinux's patch_file_and_bootblock(). */
static void patch_vbr(const struct md_sl_blobs *b, uint64_t sect0, uint32_t flags,
                      uint64_t hidden, uint64_t total_sectors, uint8_t *vbr)
{
    md_put_le16(vbr + BS_BYTES_PER_SEC, SECTOR);
    md_put_le16(vbr + BS_SECTORS, total_sectors < 65536 ? (uint16_t)total_sectors : 0);
    md_put_le32(vbr + BS_HUGE_SECTORS, total_sectors > UINT32_MAX ? UINT32_MAX : (uint32_t)total_sectors);
    md_put_le16(vbr + BS_SEC_PER_TRACK, FALLBACK_SECTORS);
    md_put_le16(vbr + BS_HEADS, FALLBACK_HEADS);
    md_put_le32(vbr + BS_HIDDEN_SECS, hidden > UINT32_MAX ? UINT32_MAX : (uint32_t)hidden);
    md_put_le32(vbr + b->epa[EPA_SECT1PTR0 / 2], (uint32_t)sect0);
    md_put_le32(vbr + b->epa[EPA_SECT1PTR1 / 2], (uint32_t)(sect0 >> 32));
    if (flags & MD_EXTLINUX_RAID)
        md_put_le16(vbr + b->epa[EPA_RAIDPATCH / 2], 0x18cd); /* INT 18h */
}

static void put_extent(uint8_t *ex, size_t k, uint64_t lba, uint32_t len)
{
    md_put_le64(ex + k * EXTENT_SIZE, lba);
    md_put_le16(ex + k * EXTENT_SIZE + 8, (uint16_t)len);
}

/* Sectors 1 .. need-3 as extents {u64 lba, u16 len}, loaded from 0x8000
 * on: a run grows while the sectors are consecutive, stays under 64 KiB
 * and each sector stays within one 64 KiB segment of the load address.
 * Returns the number of extents. */
static int put_extents(md_ctx *ctx, const struct md_sl_blobs *b, const uint64_t *sect,
                       size_t need, uint8_t *ldl)
{
    size_t nptrs = b->epa[EPA_SECPTRCNT / 2], i, nex = 0;
    uint8_t *ex = ldl + b->epa[EPA_SECPTROFFSET / 2];
    uint64_t lba = 0;
    uint32_t addr = 0x8000, base = 0x8000, len = 0;

    memset(ex, 0, nptrs * EXTENT_SIZE);
    for (i = 1; i < need - 2; i++) {
        uint64_t s = sect[i];
        if (len) {
            uint32_t xbytes = (len + 1) * SECTOR;
            if (s == lba + len && xbytes < 65536 && ((addr ^ (base + xbytes - 1)) & 0xffff0000u) == 0) {
                len++;
                addr += SECTOR;
                continue;
            }
            if (nex >= nptrs)
                goto fragmented;
            put_extent(ex, nex++, lba, len);
        }
        base = addr;
        lba = s;
        len = 1;
        addr += SECTOR;
    }
    if (len) {
        if (nex >= nptrs)
            goto fragmented;
        put_extent(ex, nex++, lba, len);
    }
    return (int)nex;

fragmented:
    return md_error(ctx, -EINVAL, "ldlinux.sys is in more than %zu pieces", nptrs);
}

/* The patch area's checksum: the dwords of the core then sum to LDLINUX_MAGIC. */
static void put_checksum(const struct md_sl_blobs *b, uint8_t *ldl)
{
    uint8_t *pa = ldl + b->pa;
    uint32_t csum = LDLINUX_MAGIC;
    size_t i;

    md_put_le32(pa + PA_CHECKSUM, 0);
    for (i = 0; i < b->ldlen / 4; i++)
        csum -= md_get_le32(ldl + 4 * i);
    md_put_le32(pa + PA_CHECKSUM, csum);
}

/*
 * Fill the boot sector and the ldlinux.sys core (copies of the pristine
 * blobs) for a file whose 512-byte sectors are at @sect[0 .. @nsect)
 * (filesystem-relative LBAs; the last two are the ADV copies).
 */
int md_extlinux_patch(md_ctx *ctx, const struct md_sl_blobs *b, const uint64_t *sect,
                      size_t nsect, const char *dir, uint32_t flags, uint64_t hidden,
                      uint64_t total_sectors, uint8_t *vbr, uint8_t *ldl)
{
    size_t need = b->ldlen / SECTOR + 2, dirlen;
    uint8_t *pa = ldl + b->pa;
    int nex;

    if (nsect < need)
        return md_error(ctx, -EINVAL, "ldlinux.sys: %zu sectors mapped, %zu needed", nsect, need);
    dirlen = strlen(dir) + 1;
    if (dirlen > b->epa[EPA_DIRLEN / 2])
        return md_error(ctx, -ENAMETOOLONG, "install directory '%s' is too long "
                        "(syslinux allows %u bytes)", dir, b->epa[EPA_DIRLEN / 2] - 1u);
    memcpy(vbr, b->vbr, SECTOR);
    memcpy(ldl, b->ldlinux, b->ldlen);
    patch_vbr(b, sect[0], flags, hidden, total_sectors, vbr);

    md_put_le16(pa + PA_DATA_SECTORS, (uint16_t)(need - 2));
    md_put_le16(pa + PA_ADV_SECTORS, 2);
    md_put_le32(pa + PA_DWORDS, (uint32_t)(b->ldlen / 4));
    if (flags & MD_EXTLINUX_STUPID)
        md_put_le16(pa + PA_MAXTRANSFER, 1);
    nex = put_extents(ctx, b, sect, need, ldl);
    if (nex < 0)
        return nex;
    md_put_le64(ldl + b->epa[EPA_ADVPTROFFSET / 2], sect[need - 2]);
    md_put_le64(ldl + b->epa[EPA_ADVPTROFFSET / 2] + 8, sect[need - 1]);
    memcpy(ldl + b->epa[EPA_DIROFFSET / 2], dir, dirlen);
    put_checksum(b, ldl);
    return nex;
}

/* ---- ADV (auxiliary data vector: `extlinux --once`, menu save) ---------- */

/* The checksum a copy's dword 1 holds: ADV_MAGIC2 minus its payload dwords. */
static uint32_t adv_csum(const uint8_t *p)
{
    uint32_t csum = ADV_MAGIC2;
    size_t i;
    for (i = 8; i < ADV_SIZE - 4; i += 4)
        csum -= md_get_le32(p + i);
    return csum;
}

void md_extlinux_adv_init(uint8_t *adv)
{
    size_t k;
    memset(adv, 0, 2 * ADV_SIZE);
    for (k = 0; k < 2; k++) {
        uint8_t *p = adv + k * ADV_SIZE;
        md_put_le32(p, ADV_MAGIC1);
        md_put_le32(p + ADV_SIZE - 4, ADV_MAGIC3);
        md_put_le32(p + 4, adv_csum(p));
    }
}

/* Returns the index (0/1) of a valid copy, -1 if none. */
int md_extlinux_adv_valid(const uint8_t *adv)
{
    int k;
    for (k = 0; k < 2; k++) {
        const uint8_t *p = adv + (size_t)k * ADV_SIZE;
        if (md_get_le32(p) == ADV_MAGIC1 && md_get_le32(p + ADV_SIZE - 4) == ADV_MAGIC3 &&
            adv_csum(p) == md_get_le32(p + 4))
            return k;
    }
    return -1;
}
