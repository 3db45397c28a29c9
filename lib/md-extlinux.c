/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * EXTLINUX installation into an ext2/3/4 filesystem inside an image file,
 * with libext2fs only: no mount, no root.
 *
 * What `extlinux --install DIR` does, and what we reproduce (the layouts come
 * from syslinux's libinstaller/syslxint.h; all offsets are read from the
 * blobs themselves, none is hard-coded):
 *  - ldlinux.sys = the core image (a multiple of 512 bytes) followed by two
 *    512-byte ADV copies.  Its "patch area" (found by the LDLINUX_MAGIC dword)
 *    gets the sector counts and a negative checksum; the "extended patch area"
 *    it points to receives the list of the file's sectors (as extents), the
 *    two ADV sector numbers and the install directory.  The sector numbers
 *    are relative to the start of the filesystem.
 *  - The boot sector (VBR) is written over bytes 0..511 of the filesystem
 *    (unused by ext2/3/4: the superblock starts at 1024) with the first
 *    sector of ldlinux.sys patched in and a fake FAT BPB (sizes, geometry,
 *    hidden sectors = partition start).
 *  - ldlinux.c32 (the same build) goes next to ldlinux.sys.
 * We place ldlinux.sys in one contiguous free run and mark it immutable so
 * nothing moves it later (the sector list is baked into the boot code).
 *
 * Debian ships neither ldlinux.sys nor the boot sector as files: they are
 * compiled into /usr/bin/extlinux (bin2c arrays in .data).  They are found
 * there by their signatures; see md_extlinux_blobs_parse().
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <et/com_err.h>

#include "md-ext-internal.h"
#include "md-extlinux-internal.h"
#include "md-internal.h"

#define DEFAULT_DIR "/boot/syslinux"
#define DEFAULT_SYSLINUX_DIR "/usr/lib/syslinux"
#define DEFAULT_EXTLINUX_BIN "/usr/bin/extlinux"

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
    size_t i, vbr = SIZE_MAX, ldl = SIZE_MAX, ldlen = 0;
    uint32_t hexdate;
    int r;

    memset(b, 0, sizeof(*b));
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
    hexdate = LDLINUX_MAGIC ^ md_get_le32(buf + ldl + 0x1c);
    for (i = 0; i + 8 <= n; i += 4) {
        uint32_t cand[2];
        int k;
        if (md_get_le32(buf + i) != hexdate)
            continue;
        cand[0] = i >= 4 ? md_get_le32(buf + i - 4) : 0;
        cand[1] = md_get_le32(buf + i + 4);
        for (k = 0; k < 2; k++) {
            if (cand[k] > SECTOR && cand[k] % SECTOR == 0 && ldl + cand[k] <= n) {
                if (ldlen && ldlen != cand[k])
                    return md_error(ctx, -EINVAL, "%s: ambiguous ldlinux.sys length (%zu or %u)",
                                    name, ldlen, cand[k]);
                ldlen = cand[k];
            }
        }
    }
    if (!ldlen)
        return md_error(ctx, -EINVAL, "%s: cannot determine the length of the embedded "
                        "ldlinux.sys (build date 0x%08x not found next to it)", name, hexdate);
    memcpy(b->vbr, buf + vbr, SECTOR);
    b->ldlen = ldlen;
    b->ldlinux = malloc(ldlen);
    b->c32len = elf32_size(buf + vbr + SECTOR, n - vbr - SECTOR);
    b->c32 = b->c32len ? malloc(b->c32len) : NULL;
    b->source = md_strdup(name);
    if (!b->ldlinux || (b->c32len && !b->c32) || !b->source) {
        md_extlinux_blobs_free(b);
        return md_error(ctx, -ENOMEM, "out of memory");
    }
    memcpy(b->ldlinux, buf + ldl, ldlen);
    if (b->c32len)
        memcpy(b->c32, buf + vbr + SECTOR, b->c32len);
    r = parse_patch_area(ctx, b, name);
    if (r >= 0)
        r = check_instance(ctx, b, name);
    if (r >= 0 && !b->c32len)
        r = md_error(ctx, -ENOENT, "%s: no embedded ldlinux.c32 after the boot sector", name);
    if (r < 0)
        md_extlinux_blobs_free(b);
    else
        md_dbg(ctx, "%s: boot sector @0x%zx, ldlinux.sys @0x%zx (%zu B), ldlinux.c32 %zu B, "
               "build 0x%08x", name, vbr, ldl, ldlen, b->c32len, hexdate);
    return r;
}

/* A syslinux build tree's core/ldlinux.bss + core/ldlinux.sys (+ ldlinux.c32). */
static int blobs_load_dir(md_ctx *ctx, const char *dir, const char *syslinux_dir,
                          struct md_sl_blobs *b)
{
    char *p = NULL, *data = NULL;
    size_t size;
    int r;

    memset(b, 0, sizeof(*b));
    b->source = md_strdup(dir);
    p = md_asprintf("%s/ldlinux.bss", dir);
    if (!p || !b->source) {
        r = md_error(ctx, -ENOMEM, "out of memory");
        goto out;
    }
    r = md_read_file(ctx, p, &data, &size);
    if (r < 0)
        goto out;
    if (size < SECTOR || md_get_le16((uint8_t *)data + 0x1fe) != 0xaa55) {
        r = md_error(ctx, -EINVAL, "%s: not a syslinux boot sector", p);
        goto out;
    }
    memcpy(b->vbr, data, SECTOR);
    free(data);
    data = NULL;
    free(p);
    p = md_asprintf("%s/ldlinux.sys", dir);
    if (!p) {
        r = md_error(ctx, -ENOMEM, "out of memory");
        goto out;
    }
    r = md_read_file(ctx, p, &data, &size);
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
    free(data);
    data = NULL;
    if (b->ldlen < SECTOR || !is_ldlinux_at(b->ldlinux, 0x18)) {
        r = md_error(ctx, -EINVAL, "%s: not a syslinux ldlinux.sys", p);
        goto out;
    }
    r = parse_patch_area(ctx, b, p);
    if (r < 0)
        goto out;
    r = check_instance(ctx, b, dir);
    if (r < 0)
        goto out;
    free(p);
    /* ldlinux.c32 next to them, else the one in the syslinux dir */
    p = md_asprintf("%s/ldlinux.c32", dir);
    if (!p) {
        r = md_error(ctx, -ENOMEM, "out of memory");
        goto out;
    }
    if (access(p, F_OK) < 0) {
        free(p);
        p = md_asprintf("%s/modules/bios/ldlinux.c32", syslinux_dir);
        if (!p) {
            r = md_error(ctx, -ENOMEM, "out of memory");
            goto out;
        }
    }
    r = md_read_file(ctx, p, &data, &size);
    if (r < 0) {
        md_error_prefix(ctx, "ldlinux.c32 of the build in %s", dir);
        goto out;
    }
    b->c32 = (uint8_t *)data;
    b->c32len = size;
    data = NULL;
out:
    free(p);
    free(data);
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

/*
 * Fill the boot sector and the ldlinux.sys core (copies of the pristine
 * blobs) for a file whose 512-byte sectors are at @sect[0 .. @nsect)
 * (filesystem-relative LBAs; the last two are the ADV copies).
 */
int md_extlinux_patch(md_ctx *ctx, const struct md_sl_blobs *b, const uint64_t *sect,
                      size_t nsect, const char *dir, uint32_t flags, uint64_t hidden,
                      uint64_t total_sectors, uint8_t *vbr, uint8_t *ldl)
{
    size_t need = b->ldlen / SECTOR + 2, nptrs, i, nex = 0, dw, dirlen;
    uint8_t *pa = ldl + b->pa, *ex;
    uint64_t lba = 0;
    uint32_t addr = 0x8000, base = 0x8000, len = 0, csum;

    if (nsect < need)
        return md_error(ctx, -EINVAL, "ldlinux.sys: %zu sectors mapped, %zu needed", nsect, need);
    dirlen = strlen(dir) + 1;
    if (dirlen > b->epa[EPA_DIRLEN / 2])
        return md_error(ctx, -ENAMETOOLONG, "install directory '%s' is too long "
                        "(syslinux allows %u bytes)", dir, b->epa[EPA_DIRLEN / 2] - 1u);
    memcpy(vbr, b->vbr, SECTOR);
    memcpy(ldl, b->ldlinux, b->ldlen);

    /* fake FAT BPB, as extlinux's patch_file_and_bootblock() */
    md_put_le16(vbr + BS_BYTES_PER_SEC, SECTOR);
    md_put_le16(vbr + BS_SECTORS, total_sectors < 65536 ? (uint16_t)total_sectors : 0);
    md_put_le32(vbr + BS_HUGE_SECTORS, total_sectors > UINT32_MAX ? UINT32_MAX : (uint32_t)total_sectors);
    md_put_le16(vbr + BS_SEC_PER_TRACK, FALLBACK_SECTORS);
    md_put_le16(vbr + BS_HEADS, FALLBACK_HEADS);
    md_put_le32(vbr + BS_HIDDEN_SECS, hidden > UINT32_MAX ? UINT32_MAX : (uint32_t)hidden);
    md_put_le32(vbr + b->epa[EPA_SECT1PTR0 / 2], (uint32_t)sect[0]);
    md_put_le32(vbr + b->epa[EPA_SECT1PTR1 / 2], (uint32_t)(sect[0] >> 32));
    if (flags & MD_EXTLINUX_RAID)
        md_put_le16(vbr + b->epa[EPA_RAIDPATCH / 2], 0x18cd); /* INT 18h */

    md_put_le16(pa + PA_DATA_SECTORS, (uint16_t)(need - 2));
    md_put_le16(pa + PA_ADV_SECTORS, 2);
    dw = b->ldlen / 4;
    md_put_le32(pa + PA_DWORDS, (uint32_t)dw);
    if (flags & MD_EXTLINUX_STUPID)
        md_put_le16(pa + PA_MAXTRANSFER, 1);

    /* Sectors 1 .. need-3 as extents {u64 lba, u16 len}, loaded from 0x8000
     * on: a run grows while the sectors are consecutive, stays under 64 KiB
     * and each sector stays within one 64 KiB segment of the load address. */
    nptrs = b->epa[EPA_SECPTRCNT / 2];
    ex = ldl + b->epa[EPA_SECPTROFFSET / 2];
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
            md_put_le64(ex + nex * EXTENT_SIZE, lba);
            md_put_le16(ex + nex * EXTENT_SIZE + 8, (uint16_t)len);
            nex++;
        }
        base = addr;
        lba = s;
        len = 1;
        addr += SECTOR;
    }
    if (len) {
        if (nex >= nptrs)
            goto fragmented;
        md_put_le64(ex + nex * EXTENT_SIZE, lba);
        md_put_le16(ex + nex * EXTENT_SIZE + 8, (uint16_t)len);
        nex++;
    }
    md_put_le64(ldl + b->epa[EPA_ADVPTROFFSET / 2], sect[need - 2]);
    md_put_le64(ldl + b->epa[EPA_ADVPTROFFSET / 2] + 8, sect[need - 1]);
    memcpy(ldl + b->epa[EPA_DIROFFSET / 2], dir, dirlen);

    md_put_le32(pa + PA_CHECKSUM, 0);
    csum = LDLINUX_MAGIC;
    for (i = 0; i < dw; i++)
        csum -= md_get_le32(ldl + 4 * i);
    md_put_le32(pa + PA_CHECKSUM, csum);
    return (int)nex;

fragmented:
    return md_error(ctx, -EINVAL, "ldlinux.sys is in more than %zu pieces", nptrs);
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

/* ---- config files -------------------------------------------------------- */

void md_extlinux_refs_free(struct md_sl_ref *refs, size_t n)
{
    size_t i;
    for (i = 0; refs && i < n; i++)
        free(refs[i].path);
    free(refs);
}

static int add_ref(struct md_sl_ref **refs, size_t *n, const char *s, size_t len, unsigned line,
                   const char *what)
{
    struct md_sl_ref *v;
    if (!len)
        return 0;
    v = realloc(*refs, (*n + 1) * sizeof(**refs));
    if (!v)
        return -ENOMEM;
    *refs = v;
    v[*n].path = strndup(s, len);
    if (!v[*n].path)
        return -ENOMEM;
    v[*n].line = line;
    v[*n].what = what;
    (*n)++;
    return 0;
}

/* Add each element of a comma separated list ending at whitespace/end. */
static int add_ref_list(struct md_sl_ref **refs, size_t *n, const char *s, unsigned line,
                        const char *what)
{
    for (;;) {
        size_t len = strcspn(s, ", \t\r\n");
        int r = add_ref(refs, n, s, len, line, what);
        if (r < 0)
            return r;
        s += len;
        if (*s != ',')
            return 0;
        s++;
    }
}

/*
 * The files a config refers to: KERNEL/LINUX (skipping com32 modules and
 * other boot types), INITRD and APPEND's initrd= lists.  Keywords are case
 * insensitive as in syslinux's parser.
 */
int md_extlinux_config_refs(md_ctx *ctx, const char *text, struct md_sl_ref **refs, size_t *n)
{
    const char *line = text;
    unsigned lineno = 0;
    int r = 0;

    *refs = NULL;
    *n = 0;
    while (line && *line && r >= 0) {
        const char *end = strchr(line, '\n'), *p = line, *kw;
        size_t kwlen;

        lineno++;
        while (*p == ' ' || *p == '\t')
            p++;
        kw = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        kwlen = (size_t)(p - kw);
        while (*p == ' ' || *p == '\t')
            p++;
        if ((kwlen == 6 && !strncasecmp(kw, "kernel", 6)) || (kwlen == 5 && !strncasecmp(kw, "linux", 5))) {
            size_t len = strcspn(p, " \t\r\n");
            /* a .c32 module is looked up along the module path, not checked here */
            if (!(len > 4 && !strncasecmp(p + len - 4, ".c32", 4)))
                r = add_ref(refs, n, p, len, lineno, "kernel");
        } else if (kwlen == 6 && !strncasecmp(kw, "initrd", 6)) {
            r = add_ref_list(refs, n, p, lineno, "initrd");
        } else if (kwlen == 6 && !strncasecmp(kw, "append", 6)) {
            while (*p && *p != '\n' && r >= 0) {
                size_t len;
                if (!strncmp(p, "initrd=", 7))
                    r = add_ref_list(refs, n, p + 7, lineno, "initrd");
                len = strcspn(p, " \t\r\n");
                p += len;
                while (*p == ' ' || *p == '\t' || *p == '\r')
                    p++;
            }
        }
        line = end ? end + 1 : NULL;
    }
    if (r < 0) {
        md_extlinux_refs_free(*refs, *n);
        *refs = NULL;
        *n = 0;
        return md_error(ctx, -ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- structured config --------------------------------------------------- */

struct sl_entry {
    char *label, *kernel, *initrd, *append;
};

struct md_extlinux_config {
    md_ctx *ctx;
    char *deflabel;
    uint32_t timeout;
    int32_t prompt;
    uint32_t serial_port, serial_baud;
    struct sl_entry *entries;
    size_t n;
    char *text;
};

MD_API void md_extlinux_opts_init(md_extlinux_opts *opts)
{
    static const md_extlinux_opts init = MD_EXTLINUX_OPTS_INIT;
    if (opts)
        *opts = init;
}

MD_API int md_extlinux_config_new(md_ctx *ctx, md_extlinux_config **ret)
{
    md_extlinux_config *cfg;

    if (!ctx || !ret)
        return -EINVAL;
    cfg = md_calloc(1, sizeof(*cfg));
    if (!cfg)
        return md_error(ctx, -ENOMEM, "out of memory");
    cfg->ctx = md_ctx_ref(ctx);
    *ret = cfg;
    return 0;
}

MD_API void md_extlinux_config_free(md_extlinux_config *cfg)
{
    size_t i;
    if (!cfg)
        return;
    for (i = 0; i < cfg->n; i++) {
        free(cfg->entries[i].label);
        free(cfg->entries[i].kernel);
        free(cfg->entries[i].initrd);
        free(cfg->entries[i].append);
    }
    free(cfg->entries);
    free(cfg->deflabel);
    free(cfg->text);
    md_ctx_unref(cfg->ctx);
    free(cfg);
}

static bool has_space(const char *s) { return s && strpbrk(s, " \t\r\n") != NULL; }
static bool has_newline(const char *s) { return s && strpbrk(s, "\r\n") != NULL; }

MD_API int md_extlinux_config_set_default(md_extlinux_config *cfg, const char *label)
{
    char *d = NULL;
    if (!cfg)
        return -EINVAL;
    if (has_space(label) || (label && !*label))
        return md_error(cfg->ctx, -EINVAL, "extlinux default label '%s': must be one word",
                        label);
    if (label && !(d = strdup(label)))
        return md_error(cfg->ctx, -ENOMEM, "out of memory");
    free(cfg->deflabel);
    cfg->deflabel = d;
    return 0;
}

MD_API int md_extlinux_config_set_timeout(md_extlinux_config *cfg, uint32_t deciseconds)
{
    if (!cfg)
        return -EINVAL;
    if (deciseconds > 35999) /* syslinux's limit: one hour */
        return md_error(cfg->ctx, -EINVAL, "extlinux timeout %u: at most 35999 (tenths of a second)",
                        deciseconds);
    cfg->timeout = deciseconds;
    return 0;
}

MD_API int md_extlinux_config_set_prompt(md_extlinux_config *cfg, int32_t prompt)
{
    if (!cfg)
        return -EINVAL;
    cfg->prompt = prompt ? 1 : 0;
    return 0;
}

MD_API int md_extlinux_config_set_serial(md_extlinux_config *cfg, uint32_t port, uint32_t baud)
{
    if (!cfg)
        return -EINVAL;
    if (port > 3)
        return md_error(cfg->ctx, -EINVAL, "serial port %u: must be 0..3 (COM1..COM4)", port);
    if (baud && (baud < 75 || baud > 115200 || 115200 % baud))
        return md_error(cfg->ctx, -EINVAL, "serial speed %u: must divide 115200", baud);
    cfg->serial_port = port;
    cfg->serial_baud = baud;
    return 0;
}

MD_API int md_extlinux_config_add_entry(md_extlinux_config *cfg, const char *label,
                                        const char *kernel, const char *initrd,
                                        const char *append)
{
    struct sl_entry *v, e;
    size_t i;

    if (!cfg)
        return -EINVAL;
    if (!label || !*label || has_space(label))
        return md_error(cfg->ctx, -EINVAL, "extlinux entry label '%s': must be one word",
                        label ? label : "");
    if (!kernel || !*kernel || has_space(kernel))
        return md_error(cfg->ctx, -EINVAL, "extlinux entry '%s': kernel path '%s' must be "
                        "one word", label, kernel ? kernel : "");
    if (has_space(initrd))
        return md_error(cfg->ctx, -EINVAL, "extlinux entry '%s': initrd '%s' must not contain "
                        "spaces (separate several with commas)", label, initrd);
    if (has_newline(append))
        return md_error(cfg->ctx, -EINVAL, "extlinux entry '%s': newline in the command line",
                        label);
    for (i = 0; i < cfg->n; i++)
        if (!strcmp(cfg->entries[i].label, label))
            return md_error(cfg->ctx, -EINVAL, "extlinux entry '%s' defined twice", label);
    e.label = strdup(label);
    e.kernel = strdup(kernel);
    e.initrd = initrd && *initrd ? strdup(initrd) : NULL;
    e.append = append && *append ? strdup(append) : NULL;
    v = realloc(cfg->entries, (cfg->n + 1) * sizeof(*v));
    if (!v || !e.label || !e.kernel || (initrd && *initrd && !e.initrd) ||
        (append && *append && !e.append)) {
        free(e.label);
        free(e.kernel);
        free(e.initrd);
        free(e.append);
        if (v)
            cfg->entries = v;
        return md_error(cfg->ctx, -ENOMEM, "out of memory");
    }
    cfg->entries = v;
    v[cfg->n++] = e;
    return 0;
}

MD_API int md_extlinux_config_render(md_extlinux_config *cfg, const char **text)
{
    char *buf = NULL;
    size_t size = 0, i;
    FILE *f;

    if (!cfg || !text)
        return -EINVAL;
    if (!cfg->n)
        return md_error(cfg->ctx, -EINVAL, "extlinux config has no entry");
    if (cfg->deflabel) {
        for (i = 0; i < cfg->n; i++)
            if (!strcmp(cfg->entries[i].label, cfg->deflabel))
                break;
        if (i == cfg->n)
            return md_error(cfg->ctx, -EINVAL, "extlinux default label '%s' has no entry",
                            cfg->deflabel);
    }
    f = open_memstream(&buf, &size);
    if (!f)
        return md_error(cfg->ctx, -ENOMEM, "out of memory");
    /* SERIAL must come first to see everything on the serial console */
    if (cfg->serial_baud)
        fprintf(f, "SERIAL %u %u\n", cfg->serial_port, cfg->serial_baud);
    fprintf(f, "DEFAULT %s\nPROMPT %d\nTIMEOUT %u\n",
            cfg->deflabel ? cfg->deflabel : cfg->entries[0].label, cfg->prompt, cfg->timeout);
    for (i = 0; i < cfg->n; i++) {
        const struct sl_entry *e = &cfg->entries[i];
        fprintf(f, "\nLABEL %s\n  LINUX %s\n", e->label, e->kernel);
        if (e->initrd)
            fprintf(f, "  INITRD %s\n", e->initrd);
        if (e->append)
            fprintf(f, "  APPEND %s\n", e->append);
    }
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return md_error(cfg->ctx, -ENOMEM, "out of memory");
    }
    free(cfg->text);
    cfg->text = buf;
    *text = buf;
    return 0;
}

/* ---- installation -------------------------------------------------------- */

/* libext2fs errors become -errno + message through the ext module */
#define ext_err md_ext_error

struct inst {
    md_ctx *ctx;
    const char *img;      /* image path for messages */
    char where[64];       /* "partition 2" / "whole image" */
    md_ext *ext;          /* the ext module's handle: one open path */
    ext2_filsys fs;       /* its libext2fs handle */
    int64_t epoch;
};

/* Normalise an install dir: absolute, no ".", "..", "//", no trailing '/'. */
static int norm_dir(md_ctx *ctx, const char *in, char **out)
{
    char *s, *w;
    const char *p = in;

    if (!in || in[0] != '/')
        return md_error(ctx, -EINVAL, "install directory '%s': must be an absolute path",
                        in ? in : "");
    s = malloc(strlen(in) + 2);
    if (!s)
        return md_error(ctx, -ENOMEM, "out of memory");
    w = s;
    while (*p) {
        const char *c;
        size_t len;
        while (*p == '/')
            p++;
        if (!*p)
            break;
        c = p;
        len = strcspn(p, "/");
        p += len;
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) {
            free(s);
            return md_error(ctx, -EINVAL, "install directory '%s': '.' and '..' not allowed", in);
        }
        *w++ = '/';
        memcpy(w, c, len);
        w += len;
    }
    if (w == s)
        *w++ = '/';
    *w = '\0';
    *out = s;
    return 0;
}

/* Create the missing directories of @dir (0755 root, the context epoch);
 * returns the inode of @dir. */
static int make_dirs(struct inst *in, const char *dir, ext2_ino_t *ret)
{
    int r = md_ext_mkdir_p(in->ext, dir, NULL, ret);
    if (r < 0)
        md_error_prefix(in->ctx, "%s: %s", in->img, in->where);
    return r;
}

/* Look up @dir without creating anything: inode or 0 when (partly) missing.
 * Fails if a component exists but is not a directory. */
static int find_dir(struct inst *in, const char *dir, ext2_ino_t *ret)
{
    ext2_ino_t ino;
    struct ext2_inode inode;
    errcode_t err;

    *ret = 0;
    err = ext2fs_namei(in->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, dir, &ino);
    if (err == EXT2_ET_FILE_NOT_FOUND || err == EXT2_ET_NO_DIRECTORY) {
        /* is some existing component not a directory? walk the prefixes */
        char *tmp = strdup(dir), *slash;
        if (!tmp)
            return md_error(in->ctx, -ENOMEM, "out of memory");
        for (slash = strchr(tmp + 1, '/');; slash = strchr(slash + 1, '/')) {
            if (slash)
                *slash = '\0';
            if (ext2fs_namei(in->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, tmp, &ino) == 0 &&
                ext2fs_read_inode(in->fs, ino, &inode) == 0 && !LINUX_S_ISDIR(inode.i_mode)) {
                int r = md_error(in->ctx, -ENOTDIR, "%s: %s: '%s' exists and is not a directory",
                                 in->img, in->where, tmp);
                free(tmp);
                return r;
            }
            if (!slash)
                break;
            *slash = '/';
        }
        free(tmp);
        return 0;
    }
    if (err)
        return ext_err(in->ctx, err, "%s: %s: lookup '%s'", in->img, in->where, dir);
    err = ext2fs_read_inode(in->fs, ino, &inode);
    if (err)
        return ext_err(in->ctx, err, "%s: %s: read inode of '%s'", in->img, in->where, dir);
    if (!LINUX_S_ISDIR(inode.i_mode))
        return md_error(in->ctx, -ENOTDIR, "%s: %s: '%s' exists and is not a directory",
                        in->img, in->where, dir);
    *ret = ino;
    return 0;
}

/* Existing regular file @name in @dir_ino: its inode, 0 if none. */
static int find_file(struct inst *in, ext2_ino_t dir_ino, const char *dir, const char *name,
                     ext2_ino_t *ret, struct ext2_inode *inode)
{
    errcode_t err;

    *ret = 0;
    if (!dir_ino)
        return 0;
    err = ext2fs_lookup(in->fs, dir_ino, name, (int)strlen(name), NULL, ret);
    if (err == EXT2_ET_FILE_NOT_FOUND) {
        *ret = 0;
        return 0;
    }
    if (!err)
        err = ext2fs_read_inode(in->fs, *ret, inode);
    if (err)
        return ext_err(in->ctx, err, "%s: %s: %s/%s", in->img, in->where, dir, name);
    if (!LINUX_S_ISREG(inode->i_mode))
        return md_error(in->ctx, -EEXIST, "%s: %s: %s%s%s exists and is not a regular file",
                        in->img, in->where, dir, strcmp(dir, "/") ? "/" : "", name);
    return 0;
}

static int count_holes(struct inst *in, ext2_ino_t ino, const struct ext2_inode *inode,
                       uint64_t *holes);

/* Allocate zeroed, initialised blocks for the holes of @ino. */
static int fill_holes(struct inst *in, ext2_ino_t ino, const char *path, uint64_t holes)
{
    struct ext2_inode inode;
    uint64_t nb;
    errcode_t err = ext2fs_read_inode(in->fs, ino, &inode);

    if (!err) {
        nb = (EXT2_I_SIZE(&inode) + in->fs->blocksize - 1) / in->fs->blocksize;
        err = ext2fs_fallocate(in->fs, EXT2_FALLOCATE_ZERO_BLOCKS | EXT2_FALLOCATE_FORCE_INIT,
                               ino, NULL, ~0ULL, 0, nb);
    }
    if (err)
        return ext_err(in->ctx, err, "%s: %s: fill the holes of %s", in->img, in->where, path);
    md_info(in->ctx, "%s: filled %llu hole block(s) with zeros: EXTLINUX cannot read "
            "sparse files", path, (unsigned long long)holes);
    return 0;
}

/* Write a file EXTLINUX reads with the ext module, then make sure it has
 * no holes (the ext module leaves all-zero blocks unallocated). */
static int write_file(struct inst *in, ext2_ino_t dir_ino, const char *dir, const char *name,
                      const void *data, size_t len, uint32_t mode)
{
    md_attr attr = MD_ATTR_INIT;
    struct ext2_inode inode;
    ext2_ino_t ino;
    uint64_t holes = 0;
    errcode_t err;
    char *p;
    int r;

    p = md_asprintf("%s/%s", strcmp(dir, "/") ? dir : "", name);
    if (!p)
        return md_error(in->ctx, -ENOMEM, "out of memory");
    attr.mode = mode;
    r = md_ext_write_file(in->ext, p, data, len, &attr);
    if (r < 0) {
        md_error_prefix(in->ctx, "%s: %s", in->img, in->where);
        goto out;
    }
    err = ext2fs_lookup(in->fs, dir_ino, name, (int)strlen(name), NULL, &ino);
    if (!err)
        err = ext2fs_read_inode(in->fs, ino, &inode);
    if (err) {
        r = ext_err(in->ctx, err, "%s: %s: %s", in->img, in->where, p);
        goto out;
    }
    r = count_holes(in, ino, &inode, &holes);
    if (r >= 0 && holes)
        r = fill_holes(in, ino, p, holes);
out:
    free(p);
    return r;
}

/* Read the ADV copies at the end of an existing ldlinux.sys. */
static void read_old_adv(struct inst *in, ext2_ino_t ino, const struct ext2_inode *inode,
                         uint8_t *adv)
{
    uint64_t size = EXT2_I_SIZE(inode);
    ext2_file_t f;
    unsigned int got = 0;
    uint8_t tmp[2 * ADV_SIZE];

    if (size < 2 * ADV_SIZE || ext2fs_file_open(in->fs, ino, 0, &f))
        return;
    if (!ext2fs_file_llseek(f, size - 2 * ADV_SIZE, EXT2_SEEK_SET, NULL) &&
        !ext2fs_file_read(f, tmp, sizeof(tmp), &got) && got == sizeof(tmp)) {
        int k = md_extlinux_adv_valid(tmp);
        if (k >= 0) {
            /* both copies get the valid one, as syslinux_validate_adv */
            memcpy(adv, tmp + (size_t)k * ADV_SIZE, ADV_SIZE);
            memcpy(adv + ADV_SIZE, tmp + (size_t)k * ADV_SIZE, ADV_SIZE);
            md_dbg(in->ctx, "kept the ADV of the existing ldlinux.sys");
        }
    }
    ext2fs_file_close(f);
}

/* Mark (@mark true) or unmark the data blocks of @ino in the in-memory
 * block bitmap: lets the free-run search consider the old ldlinux.sys space
 * free before anything is written. */
static int toggle_blocks(struct inst *in, ext2_ino_t ino, uint64_t size, bool mark)
{
    uint64_t nb = (size + in->fs->blocksize - 1) / in->fs->blocksize, j;
    for (j = 0; j < nb; j++) {
        blk64_t pblk = 0;
        errcode_t err = ext2fs_bmap2(in->fs, ino, NULL, NULL, 0, j, NULL, &pblk);
        if (err)
            return ext_err(in->ctx, err, "%s: map ldlinux.sys", in->img);
        if (!pblk)
            continue;
        if (mark)
            ext2fs_mark_block_bitmap2(in->fs->block_map, pblk);
        else
            ext2fs_unmark_block_bitmap2(in->fs->block_map, pblk);
    }
    return 0;
}

static int read_small_file(md_ctx *ctx, const char *path, const char *pkg, char **data,
                           size_t *size)
{
    int r;
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return md_error(ctx, -ENOENT, "%s: not found (Debian package %s; or name another "
                        "syslinux directory with --syslinux-dir)", path, pkg);
    r = md_read_file(ctx, path, data, size);
    return r;
}

struct sl_file {
    char *name;
    char *data;
    size_t size;
};

/* A file EXTLINUX will read, whose holes must be filled first. */
struct sparse_file {
    ext2_ino_t ino;
    uint64_t holes;       /* blocks */
    char *path;
};

/* Blocks of @ino that are holes or unwritten extents: the ext2 driver of
 * syslinux (core/fs/ext2/bmap.c) maps neither, it would read garbage or fail
 * with an I/O error.  Writers that skip all-zero blocks (mke2fs -d, our own
 * ext module) produce such files. */
static int count_holes(struct inst *in, ext2_ino_t ino, const struct ext2_inode *inode,
                       uint64_t *holes)
{
    uint64_t nb = (EXT2_I_SIZE(inode) + in->fs->blocksize - 1) / in->fs->blocksize, j;
    struct ext2_inode copy = *inode;

    *holes = 0;
    for (j = 0; j < nb; j++) {
        blk64_t pblk = 0;
        int flags = 0;
        errcode_t err = ext2fs_bmap2(in->fs, ino, &copy, NULL, 0, j, &flags, &pblk);
        if (err)
            return ext_err(in->ctx, err, "%s: map inode %u", in->img, ino);
        if (!pblk || (flags & BMAP_RET_UNINIT))
            (*holes)++;
    }
    return 0;
}

static int check_refs(struct inst *in, const char *text, const char *dir, ext2_ino_t dir_ino,
                      const struct sl_file *files, size_t nfiles, struct sparse_file **sparse,
                      size_t *nsparse, bool strict)
{
    struct md_sl_ref *refs;
    size_t n, i, k;
    int r;

    r = md_extlinux_config_refs(in->ctx, text, &refs, &n);
    if (r < 0)
        return r;
    for (i = 0; i < n && r >= 0; i++) {
        const char *p = refs[i].path;
        struct ext2_inode inode;
        ext2_ino_t ino;
        errcode_t err;

        /* files this install writes into the install dir count as present */
        for (k = 0; k < nfiles; k++)
            if (!strcmp(p, files[k].name))
                break;
        if (k < nfiles)
            continue;
        if (p[0] != '/' && !dir_ino)
            err = EXT2_ET_FILE_NOT_FOUND;
        else
            err = ext2fs_namei_follow(in->fs, EXT2_ROOT_INO, p[0] == '/' ? EXT2_ROOT_INO : dir_ino,
                                      p, &ino);
        if ((err == EXT2_ET_FILE_NOT_FOUND || err == EXT2_ET_NO_DIRECTORY) && !strict) {
            md_warn(in->ctx, "existing extlinux.conf line %u: %s '%s' not found", refs[i].line,
                    refs[i].what, p);
        } else if (err == EXT2_ET_FILE_NOT_FOUND || err == EXT2_ET_NO_DIRECTORY) {
            r = md_error(in->ctx, -ENOENT, "extlinux.conf line %u: %s '%s' not found in %s (%s)%s%s",
                         refs[i].line, refs[i].what, p, in->img, in->where,
                         p[0] == '/' ? "" : "; relative to ", p[0] == '/' ? "" : dir);
        } else if (err) {
            r = ext_err(in->ctx, err, "extlinux.conf line %u: %s '%s'", refs[i].line,
                        refs[i].what, p);
        } else if ((err = ext2fs_read_inode(in->fs, ino, &inode)) != 0) {
            r = ext_err(in->ctx, err, "extlinux.conf line %u: %s '%s'", refs[i].line,
                        refs[i].what, p);
        } else if (!LINUX_S_ISREG(inode.i_mode)) {
            r = md_error(in->ctx, -EINVAL, "extlinux.conf line %u: %s '%s' is not a regular file",
                         refs[i].line, refs[i].what, p);
        } else if (inode.i_flags & EXT4_INLINE_DATA_FL) {
            r = md_error(in->ctx, -ENOTSUP, "extlinux.conf line %u: %s '%s' is stored as "
                         "inline data, which EXTLINUX cannot read", refs[i].line,
                         refs[i].what, p);
        } else {
            uint64_t holes = 0;
            size_t k2;
            r = count_holes(in, ino, &inode, &holes);
            for (k2 = 0; r >= 0 && holes && k2 < *nsparse; k2++)
                if ((*sparse)[k2].ino == ino)
                    holes = 0; /* already listed */
            if (r >= 0 && holes) {
                struct sparse_file *v = realloc(*sparse, (*nsparse + 1) * sizeof(*v));
                char *cp = strdup(p);
                if (v)
                    *sparse = v;
                if (!v || !cp) {
                    free(cp);
                    r = md_error(in->ctx, -ENOMEM, "out of memory");
                } else {
                    v[*nsparse].ino = ino;
                    v[*nsparse].holes = holes;
                    v[*nsparse].path = cp;
                    (*nsparse)++;
                }
            }
        }
    }
    md_extlinux_refs_free(refs, n);
    return r;
}

/* Boot flag and boot code for a partitioned image. */
struct pt_plan {
    int type;             /* 0 none, 1 dos, 2 gpt */
    uint8_t code[440];
    size_t code_len;
};

static int pt_prepare(md_ctx *ctx, md_image *img, const char *path, uint32_t partno,
                      const char *sdir, struct pt_plan *plan)
{
    md_probe *probe = NULL;
    const char *table;
    char *bin = NULL, *data = NULL;
    size_t size;
    int r;

    r = md_image_probe(img, &probe);
    if (r < 0)
        return r;
    table = md_probe_table(probe);
    if (table && !strcmp(table, "dos")) {
        plan->type = 1;
        if (partno > 4)
            r = md_error(ctx, -EINVAL, "%s: partition %u is a logical partition; the MBR boot "
                         "code (mbr.bin) boots primary partitions 1-4 only", path, partno);
    } else if (table && !strcmp(table, "gpt")) {
        plan->type = 2;
    } else {
        r = md_error(ctx, -EINVAL, "%s: partition %u: no MBR or GPT partition table", path,
                     partno);
    }
    md_probe_free(probe);
    if (r < 0)
        return r;
    bin = md_asprintf("%s/mbr/%s", sdir, plan->type == 1 ? "mbr.bin" : "gptmbr.bin");
    if (!bin)
        return md_error(ctx, -ENOMEM, "out of memory");
    r = read_small_file(ctx, bin, "syslinux-common", &data, &size);
    if (r >= 0 && (size < 64 || size > sizeof(plan->code)))
        r = md_error(ctx, -EINVAL, "%s: %zu bytes, not MBR boot code (at most 440)", bin, size);
    if (r >= 0) {
        memcpy(plan->code, data, size);
        plan->code_len = size;
    }
    free(bin);
    free(data);
    return r;
}

static int pt_apply(md_ctx *ctx, md_image *img, const char *path, uint32_t partno,
                    const struct pt_plan *plan, int fd)
{
    /* MBR: ours becomes the only active partition (mbr.bin boots the first
     * active one); GPT: attribute bit 2, which gptmbr.bin looks for */
    int r = md_image_set_bootable(img, partno);
    if (r < 0)
        return r;
    /* after libfdisk, which writes back the sector it read: boot code only,
     * the disk signature and the table stay */
    r = md_pwrite_full(fd, plan->code, plan->code_len, 0);
    if (r < 0)
        return md_error_errno(ctx, r, "%s: write MBR boot code", path);
    return 0;
}

static int check_features(struct inst *in, uint64_t part_size)
{
    struct ext2_super_block *sb = in->fs->super;

    if (ext2fs_has_feature_inline_data(sb))
        return md_error(in->ctx, -ENOTSUP, "%s: %s: the filesystem has the inline_data feature, "
                        "which EXTLINUX cannot read (make it with -O ^inline_data)",
                        in->img, in->where);
    if (ext2fs_has_feature_bigalloc(sb))
        return md_error(in->ctx, -ENOTSUP, "%s: %s: the filesystem has the bigalloc feature, "
                        "which EXTLINUX cannot boot from", in->img, in->where);
    if (in->fs->blocksize > 32768)
        return md_error(in->ctx, -ENOTSUP, "%s: %s: block size %u: EXTLINUX boots from block "
                        "sizes up to 32 KiB", in->img, in->where, in->fs->blocksize);
    if (ext2fs_blocks_count(sb) >= (1ULL << 32))
        return md_error(in->ctx, -ENOTSUP, "%s: %s: more than 2^32 blocks: EXTLINUX reads only "
                        "the low 32 bits of the block count", in->img, in->where);
    if (ext2fs_has_feature_journal_needs_recovery(sb))
        return md_error(in->ctx, -EINVAL, "%s: %s: the journal needs recovery (run e2fsck first)",
                        in->img, in->where);
    if (ext2fs_has_feature_encrypt(sb) || ext2fs_has_feature_casefold(sb))
        md_warn(in->ctx, "%s: encrypted/casefolded directories cannot be read by EXTLINUX",
                in->img);
    if (ext2fs_blocks_count(sb) * in->fs->blocksize > part_size)
        return md_error(in->ctx, -EINVAL, "%s: %s: the filesystem (%llu bytes) is larger than "
                        "its partition (%llu bytes)", in->img, in->where,
                        (unsigned long long)(ext2fs_blocks_count(sb) * in->fs->blocksize),
                        (unsigned long long)part_size);
    return 0;
}

static int check_module_name(md_ctx *ctx, const char *m)
{
    size_t len = m ? strlen(m) : 0;
    if (!len || strchr(m, '/') || len < 5 || strcmp(m + len - 4, ".c32") || !strcmp(m, "ldlinux.c32"))
        return md_error(ctx, -EINVAL, "module '%s': expected a file name like menu.c32",
                        m ? m : "");
    return 0;
}

MD_API int md_extlinux_install(md_image *img, uint32_t partno, const md_extlinux_opts *opts)
{
    md_extlinux_opts o = MD_EXTLINUX_OPTS_INIT;
    struct md_sl_blobs blobs;
    struct inst in;
    struct pt_plan plan;
    struct sl_file *files = NULL;
    struct sparse_file *sparse = NULL;
    size_t nsparse = 0;
    size_t nfiles = 0, i, nsect = 0;
    const char *path, *sdir;
    char *dir = NULL;
    uint64_t part_off = 0, part_size = 0, *sect = NULL, ldl_size, nblocks = 0, spb;
    uint8_t *ldl = NULL, vbr[SECTOR], adv[2 * ADV_SIZE], magic[2];
    ext2_ino_t dir_ino = 0, old_ino = 0, legacy_ino = 0;
    struct ext2_inode old_inode;
    blk64_t run = 0;
    errcode_t err;
    int fd = -1, r;
    bool reserved = false, writing = false;

    memset(&blobs, 0, sizeof(blobs));
    memset(&in, 0, sizeof(in));
    memset(&plan, 0, sizeof(plan));
    if (!img)
        return -EINVAL;
    in.ctx = md_image_ctx(img);
    path = md_image_path(img);
    in.img = md_image_name(img);
    in.epoch = md_ctx_get_epoch(in.ctx);
    if (opts) {
        r = md_check_version(in.ctx, "md_extlinux_opts", opts->version, MD_EXTLINUX_OPTS_VERSION);
        if (r < 0)
            return r;
        o = *opts;
    }
    if (o.flags & ~(MD_EXTLINUX_NO_MBR | MD_EXTLINUX_RAID | MD_EXTLINUX_STUPID))
        return md_error(in.ctx, -EINVAL, "md_extlinux_install: unknown flags 0x%x", o.flags);
    sdir = o.syslinux_dir ? o.syslinux_dir : DEFAULT_SYSLINUX_DIR;
    if (partno)
        snprintf(in.where, sizeof(in.where), "partition %u", partno);
    else
        snprintf(in.where, sizeof(in.where), "whole image");

    /* 1. everything from the host: blobs, modules, boot code */
    r = norm_dir(in.ctx, o.dir ? o.dir : DEFAULT_DIR, &dir);
    if (r < 0)
        goto out;
    r = md_extlinux_blobs_load(in.ctx, o.extlinux_bin ? o.extlinux_bin : DEFAULT_EXTLINUX_BIN,
                               sdir, &blobs);
    if (r < 0)
        goto out;
    if (blobs.ldlen % SECTOR) {
        r = md_error(in.ctx, -EINVAL, "%s: ldlinux.sys length %zu is not whole sectors",
                     blobs.source, blobs.ldlen);
        goto out;
    }
    for (i = 0; o.modules && o.modules[i]; i++)
        ;
    files = md_calloc(i + 2, sizeof(*files));
    if (!files) {
        r = md_error(in.ctx, -ENOMEM, "out of memory");
        goto out;
    }
    /* ldlinux.c32 is written from the blob itself (taken over, not copied) */
    files[0].data = (char *)blobs.c32;
    files[0].size = blobs.c32len;
    blobs.c32 = NULL;
    files[0].name = strdup("ldlinux.c32");
    nfiles = 1;
    if (!files[0].name) {
        r = md_error(in.ctx, -ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; o.modules && o.modules[i]; i++) {
        char *mp;
        size_t k;
        r = check_module_name(in.ctx, o.modules[i]);
        if (r < 0)
            goto out;
        for (k = 0; k < nfiles; k++)
            if (!strcmp(files[k].name, o.modules[i]))
                break;
        if (k < nfiles)
            continue;
        mp = md_asprintf("%s/modules/bios/%s", sdir, o.modules[i]);
        if (!mp) {
            r = md_error(in.ctx, -ENOMEM, "out of memory");
            goto out;
        }
        r = read_small_file(in.ctx, mp, "syslinux-common", &files[nfiles].data, &files[nfiles].size);
        free(mp);
        if (r < 0)
            goto out;
        files[nfiles].name = strdup(o.modules[i]);
        nfiles++;
        if (!files[nfiles - 1].name) {
            r = md_error(in.ctx, -ENOMEM, "out of memory");
            goto out;
        }
    }

    /* 2. the image: partition, table type, filesystem */
    r = md_image_partition_range(img, partno, &part_off, &part_size);
    if (r < 0)
        goto out;
    if (partno && !(o.flags & MD_EXTLINUX_NO_MBR)) {
        r = pt_prepare(in.ctx, img, in.img, partno, sdir, &plan);
        if (r < 0)
            goto out;
    }
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        r = md_error_errno(in.ctx, -errno, "%s", in.img);
        goto out;
    }
    if (part_size < 2048 || md_pread_full(fd, magic, 2, part_off + 1024 + 0x38) < 0 ||
        md_get_le16(magic) != EXT2_SUPER_MAGIC) {
        r = md_error(in.ctx, -EINVAL, "%s: %s: no ext2/3/4 filesystem there%s", in.img, in.where,
                     partno ? "" : " (for a partitioned image name the partition)");
        goto out;
    }
    r = md_ext_open(img, partno, 0, &in.ext);
    if (r < 0)
        goto out;
    in.fs = md_ext_fs(in.ext);
    r = check_features(&in, part_size);
    if (r < 0)
        goto out;

    /* 3. the install dir, an existing ldlinux.sys, the config references */
    r = find_dir(&in, dir, &dir_ino);
    if (r < 0)
        goto out;
    r = find_file(&in, dir_ino, dir, "ldlinux.sys", &old_ino, &old_inode);
    if (r < 0)
        goto out;
    md_extlinux_adv_init(adv);
    if (old_ino)
        read_old_adv(&in, old_ino, &old_inode, adv);
    /* the pre-4.0 name: extlinux removes it, so does an update here */
    {
        struct ext2_inode inode;
        r = find_file(&in, dir_ino, dir, "extlinux.sys", &legacy_ino, &inode);
        if (r < 0)
            goto out;
        if (legacy_ino && !old_ino)
            read_old_adv(&in, legacy_ino, &inode, adv);
    }
    for (i = 0; i < nfiles; i++) {
        ext2_ino_t ino;
        struct ext2_inode inode;
        r = find_file(&in, dir_ino, dir, files[i].name, &ino, &inode);
        if (r < 0)
            goto out;
    }
    if (o.config_text) {
        ext2_ino_t ino;
        struct ext2_inode inode;
        r = find_file(&in, dir_ino, dir, "extlinux.conf", &ino, &inode);
        if (r < 0)
            goto out;
        r = check_refs(&in, o.config_text, dir, dir_ino, files, nfiles, &sparse, &nsparse, true);
        if (r < 0)
            goto out;
    } else if (dir_ino) {
        /* keeping an existing config: its kernel and initrds must not be
         * sparse either; missing ones are only logged (it may use syntax
         * we do not follow, e.g. INCLUDE or a different working dir) */
        ext2_ino_t ino;
        struct ext2_inode inode;
        void *text = NULL;
        size_t len;
        char *cp = md_asprintf("%s/extlinux.conf", strcmp(dir, "/") ? dir : "");
        if (!cp) {
            r = md_error(in.ctx, -ENOMEM, "out of memory");
            goto out;
        }
        r = find_file(&in, dir_ino, dir, "extlinux.conf", &ino, &inode);
        if (r >= 0 && ino)
            r = md_ext_read_file(in.ext, cp, &text, &len);
        free(cp);
        if (r >= 0 && text)
            r = check_refs(&in, text, dir, dir_ino, files, nfiles, &sparse, &nsparse, false);
        free(text);
        if (r < 0)
            goto out;
    }

    /* 4. one contiguous run for ldlinux.sys (old blocks count as free) */
    ldl_size = blobs.ldlen + 2 * ADV_SIZE;
    nblocks = (ldl_size + in.fs->blocksize - 1) / in.fs->blocksize;
    spb = in.fs->blocksize / SECTOR;
    if (old_ino && (r = toggle_blocks(&in, old_ino, EXT2_I_SIZE(&old_inode), false)) < 0)
        goto out;
    {
        blk64_t goal = 0, got_len = 0;
        if (old_ino)
            ext2fs_bmap2(in.fs, old_ino, NULL, NULL, 0, 0, NULL, &goal);
        err = ext2fs_new_range(in.fs, EXT2_NEWRANGE_MIN_LENGTH,
                               goal ? goal : in.fs->super->s_first_data_block, nblocks, NULL,
                               &run, &got_len);
    }
    if (old_ino && (r = toggle_blocks(&in, old_ino, EXT2_I_SIZE(&old_inode), true)) < 0)
        goto out;
    if (!err) {
        /* reserve the run in memory only (no counts): the directories made
         * below must not take blocks from it */
        ext2fs_mark_block_bitmap_range2(in.fs->block_map, run, (unsigned int)nblocks);
        reserved = true;
    }
    if (err == EXT2_ET_BLOCK_ALLOC_FAIL) {
        r = md_error(in.ctx, -ENOSPC, "%s: %s: no free run of %llu contiguous blocks for "
                     "ldlinux.sys (%llu bytes)", in.img, in.where, (unsigned long long)nblocks,
                     (unsigned long long)ldl_size);
        goto out;
    } else if (err) {
        r = ext_err(in.ctx, err, "%s: %s: find room for ldlinux.sys", in.img, in.where);
        goto out;
    }
    {
        /* rough space check for the other files: data + a few map blocks each */
        uint64_t need = 8 + nblocks;
        for (i = 0; i < nfiles; i++)
            need += files[i].size / in.fs->blocksize + 2;
        if (o.config_text)
            need += strlen(o.config_text) / in.fs->blocksize + 2;
        for (i = 0; i < nsparse; i++)
            need += sparse[i].holes + sparse[i].holes / 256 + 2;
        if (ext2fs_free_blocks_count(in.fs->super) < need) {
            r = md_error(in.ctx, -ENOSPC, "%s: %s: not enough free space for the boot loader "
                         "files (%llu blocks needed)", in.img, in.where, (unsigned long long)need);
            goto out;
        }
    }

    /* 5. patch in memory: the file will be at blocks run .. run+nblocks-1 */
    nsect = ldl_size / SECTOR;
    sect = md_calloc(nsect, sizeof(*sect));
    ldl = md_calloc(nblocks, in.fs->blocksize);
    if (!sect || !ldl) {
        r = md_error(in.ctx, -ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < nsect; i++)
        sect[i] = (run + i / spb) * spb + i % spb;
    r = md_extlinux_patch(in.ctx, &blobs, sect, nsect, dir, o.flags, part_off / SECTOR,
                          part_size / SECTOR, vbr, ldl);
    if (r < 0)
        goto out;
    memcpy(ldl + blobs.ldlen, adv, sizeof(adv));
    md_dbg(in.ctx, "ldlinux.sys: blocks %llu..%llu, first sector %llu, %d extent(s)",
           (unsigned long long)run, (unsigned long long)(run + nblocks - 1),
           (unsigned long long)sect[0], r);

    /* ---- validated: from here on we write ---- */
    writing = true;
    r = make_dirs(&in, dir, &dir_ino);
    if (r < 0)
        goto out;
    {
        struct ext2_inode inode;
        struct ext2_inode_large big;
        unsigned isize = EXT2_INODE_SIZE(in.fs->super);
        ext2_ino_t ino = old_ino;
        blk64_t j;

        if (ino) {
            err = ext2fs_read_inode(in.fs, ino, &inode);
            if (!err)
                err = ext2fs_punch(in.fs, ino, &inode, NULL, 0, ~0ULL);
        } else {
            err = ext2fs_new_inode(in.fs, dir_ino, LINUX_S_IFREG | 0444, NULL, &ino);
            if (!err) {
                r = md_ext_link(in.ext, dir_ino, "ldlinux.sys", ino, S_IFREG);
                if (r < 0) {
                    md_error_prefix(in.ctx, "%s: %s: create %s/ldlinux.sys", in.img, in.where,
                                    dir);
                    goto out;
                }
                ext2fs_inode_alloc_stats2(in.fs, ino, +1, 0);
                memset(&inode, 0, sizeof(inode));
                inode.i_mode = LINUX_S_IFREG | 0444;
                inode.i_links_count = 1;
                if (ext2fs_has_feature_extents(in.fs->super))
                    inode.i_flags |= EXT4_EXTENTS_FL;
                err = ext2fs_write_new_inode(in.fs, ino, &inode);
            }
            if (!err && (inode.i_flags & EXT4_EXTENTS_FL)) {
                ext2_extent_handle_t h;
                err = ext2fs_extent_open2(in.fs, ino, &inode, &h);
                if (!err) {
                    ext2fs_extent_free(h);
                    err = ext2fs_write_inode(in.fs, ino, &inode);
                }
            }
        }
        if (err) {
            r = ext_err(in.ctx, err, "%s: %s: create %s/ldlinux.sys", in.img, in.where, dir);
            goto out;
        }
        ext2fs_unmark_block_bitmap_range2(in.fs->block_map, run, (unsigned int)nblocks);
        reserved = false;
        ext2fs_block_alloc_stats_range(in.fs, run, (blk_t)nblocks, +1);
        for (j = 0; j < nblocks && !err; j++) {
            blk64_t pblk = run + j;
            err = ext2fs_bmap2(in.fs, ino, NULL, NULL,
                               BMAP_SET | ((inode.i_flags & EXT4_EXTENTS_FL) ? 0 : BMAP_ALLOC),
                               j, NULL, &pblk);
        }
        for (j = 0; j < nblocks && !err; j++) {
            blk64_t pblk = 0;
            err = ext2fs_bmap2(in.fs, ino, NULL, NULL, 0, j, NULL, &pblk);
            if (!err && pblk != run + j)
                err = EXT2_ET_BAD_BLOCK_NUM;
        }
        /* the whole inode (extra timestamps, crtime) as the ext module reads it */
        memset(&big, 0, sizeof(big));
        if (!err)
            err = ext2fs_read_inode_full(in.fs, ino, (struct ext2_inode *)&big,
                                         (int)(isize < sizeof(big) ? isize : sizeof(big)));
        if (!err)
            err = ext2fs_iblk_add_blocks(in.fs, (struct ext2_inode *)&big, nblocks);
        if (!err)
            err = ext2fs_inode_size_set(in.fs, (struct ext2_inode *)&big, ldl_size);
        if (!err) {
            big.i_mode = LINUX_S_IFREG | 0444;
            big.i_uid = big.i_gid = 0;
            ext2fs_set_i_uid_high(big, 0);
            ext2fs_set_i_gid_high(big, 0);
            /* immutable: keeps the blocks whose numbers the boot code holds */
            big.i_flags |= EXT2_IMMUTABLE_FL;
            r = md_ext_write_inode(in.ext, ino, &big, in.epoch, 0);
            if (r < 0) {
                md_error_prefix(in.ctx, "%s: %s: write %s/ldlinux.sys", in.img, in.where, dir);
                goto out;
            }
            err = io_channel_write_blk64(in.fs->io, run, (int)nblocks, ldl);
        }
        if (err) {
            r = ext_err(in.ctx, err, "%s: %s: write %s/ldlinux.sys", in.img, in.where, dir);
            goto out;
        }
    }
    if (legacy_ino) {
        r = md_ext_unlink(in.ext, dir_ino, "extlinux.sys");
        if (r < 0)
            goto out;
    }
    for (i = 0; i < nsparse; i++) {
        r = fill_holes(&in, sparse[i].ino, sparse[i].path, sparse[i].holes);
        if (r < 0)
            goto out;
    }
    for (i = 0; i < nfiles; i++) {
        r = write_file(&in, dir_ino, dir, files[i].name, files[i].data, files[i].size, 0444);
        if (r < 0)
            goto out;
    }
    if (o.config_text) {
        r = write_file(&in, dir_ino, dir, "extlinux.conf", o.config_text, strlen(o.config_text),
                       0644);
        if (r < 0)
            goto out;
    }
    r = md_ext_close(in.ext);
    in.ext = NULL;
    in.fs = NULL;
    if (r < 0)
        goto out;
    r = md_pwrite_full(fd, vbr, SECTOR, part_off);
    if (r < 0) {
        r = md_error_errno(in.ctx, r, "%s: write the boot sector", in.img);
        goto out;
    }
    if (plan.type) {
        r = pt_apply(in.ctx, img, in.img, partno, &plan, fd);
        if (r < 0)
            goto out;
    }
    r = 0;
out:
    if (in.fs && reserved)
        ext2fs_unmark_block_bitmap_range2(in.fs->block_map, run, (unsigned int)nblocks);
    if (in.ext && writing)
        md_ext_close(in.ext); /* keep what was written consistent */
    else
        md_ext_free(in.ext); /* not flushed: nothing reaches the image on error */
    if (fd >= 0)
        close(fd);
    for (i = 0; files && i < nfiles; i++) {
        free(files[i].name);
        free(files[i].data);
    }
    free(files);
    for (i = 0; i < nsparse; i++)
        free(sparse[i].path);
    free(sparse);
    free(sect);
    free(ldl);
    free(dir);
    md_extlinux_blobs_free(&blobs);
    return r;
}
