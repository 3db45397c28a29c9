/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unified kernel images: systemd's EFI stub plus .osrel/.cmdline/.initrd/
 * .linux sections, laid out as ukify does (see md-uki.h for the rules).
 *
 * Plan: read the stub into memory (it is small) and check its headers; open
 * the kernel and the initrds and check them; compute every new section's
 * place; patch the headers in the stub's buffer; then stream stub, padding
 * and section data to a temporary file, summing 16-bit words on the way for
 * the PE checksum, which is written last.  Only then is the file renamed
 * into place.
 *
 * PE/COFF offsets are from the Microsoft PE format specification.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "md-internal.h"

#define STUB_MAX (64u << 20)        /* a stub is ~80 KiB; anything this big is not one */
#define KERNEL_HEAD 0x1000u         /* the bzImage's MZ and PE headers are in its setup sector */
#define COPY_CHUNK (256u * 1024u)

/* DOS header */
#define DOS_LFANEW 0x3c
/* COFF file header, after "PE\0\0" */
#define COFF_MACHINE 0
#define COFF_NSECTIONS 2
#define COFF_SYMTAB 8
#define COFF_NSYMS 12
#define COFF_OPT_SIZE 16
#define COFF_CHARACTERISTICS 18
#define COFF_SIZE 20
#define COFF_SYMBOL_SIZE 18
#define FILE_LOCAL_SYMS_STRIPPED 0x0008u
/* PE32+ optional header */
#define OPT_MAGIC 0
#define OPT_SIZE_OF_CODE 4
#define OPT_SIZE_OF_INIT_DATA 8
#define OPT_SECTION_ALIGN 32
#define OPT_FILE_ALIGN 36
#define OPT_SIZE_OF_IMAGE 56
#define OPT_SIZE_OF_HEADERS 60
#define OPT_CHECKSUM 64
#define OPT_SUBSYSTEM 68
#define OPT_N_DIRS 108
#define OPT_DIRS 112
#define OPT_MIN_SIZE OPT_DIRS
#define DIR_SECURITY 4              /* the certificate table: set when signed */
#define PE32PLUS_MAGIC 0x20bu
#define SUBSYSTEM_EFI_APPLICATION 10u
/* section header */
#define SEC_VSIZE 8
#define SEC_VADDR 12
#define SEC_RAW_SIZE 16
#define SEC_RAW_PTR 20
#define SEC_CHARACTERISTICS 36
#define SEC_SIZE 40
#define SCN_CNT_CODE 0x00000020u
#define SCN_CNT_INITIALIZED_DATA 0x00000040u
#define SCN_MEM_READ 0x40000000u

/* The machines we build for: the kernel must match the stub's.  The bzImage
 * check ("HdrS") is what is x86 about it; arm64's Image would go here. */
static const struct arch {
    uint16_t machine;
    const char *name;
} arches[] = {
    { 0x8664, "x86-64" },
};

/* A piece of a new section's contents: a buffer, or a file streamed at write time. */
struct piece {
    const char *path;        /* NULL: @buf */
    int fd;
    const void *buf;
    uint64_t size;
    uint32_t pad;            /* zeros after it */
};

struct section {
    char name[8];
    uint32_t flags;
    struct piece *pieces;
    size_t n_pieces;
    uint64_t vsize;          /* sum of pieces and their padding */
    uint32_t vaddr, raw_ptr, raw_size;
};

struct uki {
    md_ctx *ctx;
    const char *stub_path;
    uint8_t *stub;
    size_t stub_len;         /* bytes of the stub written (a trailing symbol table dropped) */
    uint32_t pe_off, opt_off, sec_off, opt_size;
    uint16_t n_sections, machine;
    uint32_t sect_align, file_align;
    uint32_t first_raw;      /* where the first section's data starts */
    uint64_t va_end;         /* end of the highest section in memory */
    const struct arch *arch;
    char *osrel;             /* os-release text read from a file */
    size_t osrel_len;
    struct piece *initrd_pieces;
    size_t n_initrds;
    struct piece linux_piece;
    struct piece text_pieces[2]; /* .osrel, .cmdline */
    struct section secs[4];
    size_t n_secs;
    uint64_t file_len;       /* the output's length */
};

MD_API void md_uki_opts_init(md_uki_opts *opts)
{
    static const md_uki_opts def = MD_UKI_OPTS_INIT;
    if (opts)
        *opts = def;
}

static uint64_t round_up(uint64_t v, uint32_t align)
{
    return (v + align - 1) / align * align;
}

static bool is_pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

/* ---- inputs ----------------------------------------------------------------- */

/* Open @path (a regular file) for reading; *size receives its size. */
static int open_input(md_ctx *ctx, const char *what, const char *path, int *fd, uint64_t *size)
{
    struct stat st;
    int r;

    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return md_error_errno(ctx, -errno, "%s %s", what, path);
    if (fstat(*fd, &st) < 0) {
        r = -errno;
        close(*fd);
        *fd = -1;
        return md_error_errno(ctx, r, "%s %s", what, path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return md_error(ctx, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, "%s %s: not a regular file",
                        what, path);
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static const char *sec_name(const uint8_t *sh, char buf[9])
{
    memcpy(buf, sh, 8);
    buf[8] = '\0';
    return buf;
}

/* Read the stub and check what we rely on; fills the header fields of @u. */
static int load_stub(struct uki *u)
{
    md_ctx *ctx = u->ctx;
    const char *p = u->stub_path;
    uint64_t size, symtab, syms_end, raw_end = 0;
    uint32_t n_dirs, i;
    uint16_t magic;
    int fd, r;

    r = open_input(ctx, "stub", p, &fd, &size);
    if (r == -ENOENT)
        return md_error(ctx, r, "stub %s: No such file or directory (the systemd EFI stub: "
                        "install systemd-boot-efi)", p);
    if (r < 0)
        return r;
    if (size > STUB_MAX) {
        close(fd);
        return md_error(ctx, -EINVAL, "stub %s: %llu bytes: too large for an EFI stub", p,
                        (unsigned long long)size);
    }
    u->stub = malloc(size ? (size_t)size : 1);
    if (!u->stub) {
        close(fd);
        return md_error(ctx, -ENOMEM, "stub %s: out of memory", p);
    }
    r = md_read_full(fd, u->stub, (size_t)size);
    close(fd);
    if (r == -EIO)
        return md_error(ctx, -ESTALE, "stub %s: changed size while being read", p);
    if (r < 0)
        return md_error_errno(ctx, r, "stub %s: read", p);
    u->stub_len = (size_t)size;

    if (size < 0x40 || memcmp(u->stub, "MZ", 2) != 0)
        return md_error(ctx, -EINVAL, "stub %s: not a PE/COFF image (no \"MZ\" at offset 0)", p);
    u->pe_off = md_get_le32(u->stub + DOS_LFANEW);
    if ((uint64_t)u->pe_off + 4 + COFF_SIZE > size || memcmp(u->stub + u->pe_off, "PE\0\0", 4))
        return md_error(ctx, -EINVAL, "stub %s: not a PE/COFF image (no \"PE\\0\\0\" signature "
                        "at offset 0x%x)", p, u->pe_off);
    {
        const uint8_t *coff = u->stub + u->pe_off + 4;
        size_t a;
        u->machine = md_get_le16(coff + COFF_MACHINE);
        u->n_sections = md_get_le16(coff + COFF_NSECTIONS);
        u->opt_size = md_get_le16(coff + COFF_OPT_SIZE);
        for (a = 0; a < sizeof(arches) / sizeof(arches[0]); a++)
            if (arches[a].machine == u->machine)
                u->arch = &arches[a];
        if (!u->arch)
            return md_error(ctx, -EINVAL, "stub %s: machine 0x%04x is not x86-64 (0x8664)", p,
                            u->machine);
        symtab = md_get_le32(coff + COFF_SYMTAB);
        syms_end = symtab + (uint64_t)md_get_le32(coff + COFF_NSYMS) * COFF_SYMBOL_SIZE;
    }
    u->opt_off = u->pe_off + 4 + COFF_SIZE;
    u->sec_off = u->opt_off + u->opt_size;
    if (u->opt_size < OPT_MIN_SIZE || (uint64_t)u->sec_off > size)
        return md_error(ctx, -EINVAL, "stub %s: optional header of %u bytes: not a PE32+ image",
                        p, u->opt_size);
    magic = md_get_le16(u->stub + u->opt_off + OPT_MAGIC);
    if (magic != PE32PLUS_MAGIC)
        return md_error(ctx, -EINVAL, "stub %s: optional header magic 0x%x is not PE32+ (0x20b)",
                        p, magic);
    if (md_get_le16(u->stub + u->opt_off + OPT_SUBSYSTEM) != SUBSYSTEM_EFI_APPLICATION)
        return md_error(ctx, -EINVAL, "stub %s: subsystem %u is not an EFI application (10)", p,
                        md_get_le16(u->stub + u->opt_off + OPT_SUBSYSTEM));
    u->sect_align = md_get_le32(u->stub + u->opt_off + OPT_SECTION_ALIGN);
    u->file_align = md_get_le32(u->stub + u->opt_off + OPT_FILE_ALIGN);
    if (!is_pow2(u->sect_align) || !is_pow2(u->file_align))
        return md_error(ctx, -EINVAL, "stub %s: section/file alignment 0x%x/0x%x: not powers of 2",
                        p, u->sect_align, u->file_align);
    n_dirs = md_get_le32(u->stub + u->opt_off + OPT_N_DIRS);
    if (n_dirs > DIR_SECURITY && OPT_DIRS + 8 * (DIR_SECURITY + 1) <= u->opt_size &&
        md_get_le32(u->stub + u->opt_off + OPT_DIRS + 8 * DIR_SECURITY + 4) != 0)
        return md_error(ctx, -EINVAL, "stub %s: signed (it has a certificate table): appending "
                        "sections would break the signature; use an unsigned stub", p);
    if ((uint64_t)u->sec_off + (uint64_t)u->n_sections * SEC_SIZE > size)
        return md_error(ctx, -EINVAL, "stub %s: section table runs past the end of the file", p);

    u->first_raw = UINT32_MAX;
    u->va_end = 0;
    for (i = 0; i < u->n_sections; i++) {
        const uint8_t *sh = u->stub + u->sec_off + i * SEC_SIZE;
        uint64_t va_end = (uint64_t)md_get_le32(sh + SEC_VADDR) + md_get_le32(sh + SEC_VSIZE);
        uint32_t raw_ptr = md_get_le32(sh + SEC_RAW_PTR), raw_size = md_get_le32(sh + SEC_RAW_SIZE);
        char name[9];
        size_t k;

        sec_name(sh, name);
        for (k = 0; k < 4; k++) {
            static const char *const ours[] = { ".osrel", ".cmdline", ".initrd", ".linux" };
            if (!strcmp(name, ours[k]))
                return md_error(ctx, -EINVAL, "stub %s: already has a %s section (a unified "
                                "kernel image, not a stub?)", p, name);
        }
        if (raw_size && (uint64_t)raw_ptr + raw_size > size)
            return md_error(ctx, -EINVAL, "stub %s: section %s runs past the end of the file", p,
                            name);
        if (raw_size && raw_ptr < u->first_raw)
            u->first_raw = raw_ptr;
        if (raw_size && (uint64_t)raw_ptr + raw_size > raw_end)
            raw_end = (uint64_t)raw_ptr + raw_size;
        if (va_end > u->va_end)
            u->va_end = va_end;
    }
    if (u->first_raw == UINT32_MAX)
        u->first_raw = (uint32_t)round_up(md_get_le32(u->stub + u->opt_off + OPT_SIZE_OF_HEADERS),
                                          u->file_align);

    /* A COFF symbol table has no place in an image; old stubs carry one at
     * the end.  Drop it there, as ukify does; elsewhere it stays. */
    if (symtab && syms_end + 4 <= size) {
        uint64_t end = syms_end + md_get_le32(u->stub + syms_end);
        if (end == size && symtab >= raw_end) {
            uint8_t *coff = u->stub + u->pe_off + 4;
            u->stub_len = (size_t)symtab;
            md_put_le32(coff + COFF_SYMTAB, 0);
            md_put_le32(coff + COFF_NSYMS, 0);
            md_put_le16(coff + COFF_CHARACTERISTICS,
                        (uint16_t)(md_get_le16(coff + COFF_CHARACTERISTICS) | FILE_LOCAL_SYMS_STRIPPED));
            md_dbg(ctx, "uki: dropping the stub's symbol table (%llu bytes)",
                   (unsigned long long)(size - symtab));
        }
    }
    return 0;
}

/* The kernel: an x86 bzImage whose EFI stub makes it a PE image for the
 * stub's machine. */
static int open_kernel(struct uki *u, const char *path)
{
    md_ctx *ctx = u->ctx;
    uint8_t head[KERNEL_HEAD];
    struct piece *k = &u->linux_piece;
    uint32_t pe;
    size_t n;
    int r;

    k->path = path;
    r = open_input(ctx, "kernel", path, &k->fd, &k->size);
    if (r < 0)
        return r;
    n = k->size < sizeof(head) ? (size_t)k->size : sizeof(head);
    r = md_pread_full(k->fd, head, n, 0);
    if (r < 0)
        return md_error_errno(ctx, r, "kernel %s: read", path);
    if (n < 0x206 || memcmp(head + 0x202, "HdrS", 4) != 0)
        return md_error(ctx, -EINVAL, "kernel %s: not an x86 Linux bzImage (no \"HdrS\" magic at "
                        "offset 0x202)", path);
    pe = md_get_le32(head + DOS_LFANEW);
    if (memcmp(head, "MZ", 2) != 0 || (uint64_t)pe + 6 > n || memcmp(head + pe, "PE\0\0", 4) != 0)
        return md_error(ctx, -EINVAL, "kernel %s: a bzImage without the EFI stub (no PE header; "
                        "build it with CONFIG_EFI_STUB=y)", path);
    if (md_get_le16(head + pe + 4 + COFF_MACHINE) != u->machine)
        return md_error(ctx, -EINVAL, "kernel %s: PE machine 0x%04x, but the stub is for %s "
                        "(0x%04x)", path, md_get_le16(head + pe + 4 + COFF_MACHINE),
                        u->arch->name, u->machine);
    return 0;
}

static int open_initrds(struct uki *u, const char *const *initrds)
{
    size_t n = 0, i;
    int r;

    while (initrds && initrds[n])
        n++;
    if (n == 0)
        return 0;
    u->initrd_pieces = calloc(n, sizeof(*u->initrd_pieces));
    if (!u->initrd_pieces)
        return md_error(u->ctx, -ENOMEM, "out of memory");
    for (i = 0; i < n; i++)
        u->initrd_pieces[i].fd = -1;
    u->n_initrds = n;
    for (i = 0; i < n; i++) {
        struct piece *pc = &u->initrd_pieces[i];
        pc->path = initrds[i];
        r = open_input(u->ctx, "initrd", pc->path, &pc->fd, &pc->size);
        if (r < 0)
            return r;
        /* ukify pads each of several initrds to 32 bits, a single one not at all */
        if (n > 1)
            pc->pad = (uint32_t)(round_up(pc->size, 4) - pc->size);
    }
    return 0;
}

/* ---- layout ------------------------------------------------------------------ */

static void add_section(struct uki *u, const char *name, uint32_t flags, struct piece *pieces,
                        size_t n)
{
    struct section *s = &u->secs[u->n_secs];
    size_t i;

    memset(s, 0, sizeof(*s));
    memcpy(s->name, name, strlen(name)); /* 8 bytes, NUL-padded, not terminated */
    s->flags = flags;
    s->pieces = pieces;
    s->n_pieces = n;
    for (i = 0; i < n; i++)
        s->vsize += pieces[i].size + pieces[i].pad;
    if (s->vsize > 0 || !strcmp(name, ".linux"))
        u->n_secs++;
}

/* Place the new sections and patch the stub's headers in memory. */
static int layout(struct uki *u)
{
    md_ctx *ctx = u->ctx;
    uint8_t *coff = u->stub + u->pe_off + 4, *opt = u->stub + u->opt_off;
    uint64_t table_end, headers, va = u->va_end, off = round_up(u->stub_len, u->file_align);
    uint64_t code = md_get_le32(opt + OPT_SIZE_OF_CODE), data = md_get_le32(opt + OPT_SIZE_OF_INIT_DATA);
    size_t i;

    table_end = u->sec_off + (uint64_t)(u->n_sections + u->n_secs) * SEC_SIZE;
    headers = round_up(md_get_le32(opt + OPT_SIZE_OF_HEADERS), u->file_align);
    if (table_end > headers)
        headers = round_up(table_end, u->file_align);
    if (headers > u->first_raw)
        return md_error(ctx, -ENOSPC, "stub %s: no room for %zu more section headers: the "
                        "section table would end at 0x%llx, the first section's data starts "
                        "at 0x%x", u->stub_path, u->n_secs, (unsigned long long)table_end,
                        u->first_raw);

    for (i = 0; i < u->n_secs; i++) {
        struct section *s = &u->secs[i];
        uint8_t *sh = u->stub + u->sec_off + (u->n_sections + i) * SEC_SIZE;
        uint64_t raw_size = round_up(s->vsize, u->file_align);

        va = round_up(va, u->sect_align);
        if (s->vsize > UINT32_MAX || va + s->vsize > UINT32_MAX || off + raw_size > UINT32_MAX)
            return md_error(ctx, -EFBIG, "unified kernel image: section %s would end beyond "
                            "4 GiB, the limit of PE images", s->name);
        s->vaddr = (uint32_t)va;
        s->raw_ptr = (uint32_t)off;
        s->raw_size = (uint32_t)raw_size;
        memset(sh, 0, SEC_SIZE);
        memcpy(sh, s->name, sizeof(s->name));
        md_put_le32(sh + SEC_VSIZE, (uint32_t)s->vsize);
        md_put_le32(sh + SEC_VADDR, s->vaddr);
        md_put_le32(sh + SEC_RAW_SIZE, s->raw_size);
        md_put_le32(sh + SEC_RAW_PTR, s->raw_ptr);
        md_put_le32(sh + SEC_CHARACTERISTICS, s->flags);
        if (s->flags & SCN_CNT_CODE)
            code += s->vsize;
        else
            data += s->vsize;
        va += s->vsize;
        off += raw_size;
    }
    /* ukify counts .linux in SizeOfInitializedData although it flags it as
     * code; we count it in SizeOfCode, so the sums agree with the flags
     * (firmware reads neither) */
    if (code > UINT32_MAX || data > UINT32_MAX || round_up(va, u->sect_align) > UINT32_MAX)
        return md_error(ctx, -EFBIG, "unified kernel image: more than 4 GiB, the limit of PE images");
    md_put_le16(coff + COFF_NSECTIONS, (uint16_t)(u->n_sections + u->n_secs));
    md_put_le32(opt + OPT_SIZE_OF_CODE, (uint32_t)code);
    md_put_le32(opt + OPT_SIZE_OF_INIT_DATA, (uint32_t)data);
    md_put_le32(opt + OPT_SIZE_OF_IMAGE, (uint32_t)round_up(va, u->sect_align));
    md_put_le32(opt + OPT_SIZE_OF_HEADERS, (uint32_t)headers);
    md_put_le32(opt + OPT_CHECKSUM, 0); /* summed as zero, filled in at the end */
    u->file_len = off;
    return 0;
}

/* ---- output ------------------------------------------------------------------ */

struct out {
    md_ctx *ctx;
    const char *path;
    int fd;
    uint64_t off;
    uint64_t sum;            /* 16-bit little-endian words, folded at the end */
};

static int out_write(struct out *o, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    size_t i;
    int r;

    for (i = 0; i < n; i++)
        o->sum += (uint64_t)p[i] << (((o->off + i) & 1) * 8);
    r = md_write_full(o->fd, buf, n);
    if (r < 0)
        return md_error_errno(o->ctx, r, "%s: write", o->path);
    o->off += n;
    return 0;
}

static int out_zeros(struct out *o, uint64_t n)
{
    static const uint8_t zeros[4096];
    int r;

    while (n > 0) {
        size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
        r = out_write(o, zeros, k);
        if (r < 0)
            return r;
        n -= k;
    }
    return 0;
}

static int copy_piece(struct out *o, const struct piece *pc, uint8_t *buf)
{
    uint64_t left = pc->size;
    ssize_t got;
    int r;

    if (!pc->path)
        return out_write(o, pc->buf, (size_t)pc->size);
    if (lseek(pc->fd, 0, SEEK_SET) < 0)
        return md_error_errno(o->ctx, -errno, "%s: seek", pc->path);
    while (left > 0) {
        size_t want = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;
        got = read(pc->fd, buf, want);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return md_error_errno(o->ctx, -errno, "%s: read", pc->path);
        if (got == 0)
            return md_error(o->ctx, -ESTALE, "%s: shrank while being copied", pc->path);
        r = out_write(o, buf, (size_t)got);
        if (r < 0)
            return r;
        left -= (uint64_t)got;
    }
    do
        got = read(pc->fd, buf, 1);
    while (got < 0 && errno == EINTR);
    if (got > 0)
        return md_error(o->ctx, -ESTALE, "%s: grew while being copied", pc->path);
    return 0;
}

static int write_image(struct uki *u, int fd, const char *path)
{
    struct out o = { u->ctx, path, fd, 0, 0 };
    uint8_t csum[4];
    uint8_t *buf;
    uint64_t s;
    size_t i, j;
    int r;

    buf = malloc(COPY_CHUNK);
    if (!buf)
        return md_error(u->ctx, -ENOMEM, "out of memory");
    r = out_write(&o, u->stub, u->stub_len);
    for (i = 0; r >= 0 && i < u->n_secs; i++) {
        const struct section *sc = &u->secs[i];
        r = out_zeros(&o, sc->raw_ptr - o.off);
        for (j = 0; r >= 0 && j < sc->n_pieces; j++) {
            r = copy_piece(&o, &sc->pieces[j], buf);
            if (r >= 0)
                r = out_zeros(&o, sc->pieces[j].pad);
        }
        if (r >= 0)
            r = out_zeros(&o, (uint64_t)sc->raw_ptr + sc->raw_size - o.off);
    }
    free(buf);
    if (r < 0)
        return r;
    /* CheckSumMappedFile: the ones'-complement-style sum of the words with
     * the checksum field as zero, folded to 16 bits, plus the file length */
    s = o.sum;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    md_put_le32(csum, (uint32_t)(s + o.off));
    r = md_pwrite_full(fd, csum, sizeof(csum), u->opt_off + OPT_CHECKSUM);
    if (r < 0)
        return md_error_errno(u->ctx, r, "%s: write", path);
    md_dbg(u->ctx, "uki: %s: %llu bytes, %zu sections added, checksum 0x%08x", path,
           (unsigned long long)o.off, u->n_secs, md_get_le32(csum));
    return 0;
}

/* ---- entry point ------------------------------------------------------------- */

static void uki_free(struct uki *u)
{
    size_t i;

    free(u->stub);
    free(u->osrel);
    if (u->linux_piece.fd >= 0)
        close(u->linux_piece.fd);
    for (i = 0; i < u->n_initrds; i++)
        if (u->initrd_pieces[i].fd >= 0)
            close(u->initrd_pieces[i].fd);
    free(u->initrd_pieces);
}

static int prepare(struct uki *u, const md_uki_opts *o)
{
    struct piece *osrel = &u->text_pieces[0], *cmdline = &u->text_pieces[1];
    int r;

    r = md_check_version(u->ctx, "UKI options", o->version, MD_UKI_OPTS_VERSION);
    if (r < 0)
        return r;
    if (o->flags)
        return md_error(u->ctx, -EINVAL, "UKI options: unknown flags 0x%x", o->flags);
    if (!o->kernel || !*o->kernel)
        return md_error(u->ctx, -EINVAL, "UKI options: a kernel is required");
    if (o->os_release && o->os_release_text)
        return md_error(u->ctx, -EINVAL, "UKI options: give os_release or os_release_text, not both");
    u->stub_path = o->stub ? o->stub : MD_UKI_DEFAULT_STUB;
    r = load_stub(u);
    if (r >= 0)
        r = open_kernel(u, o->kernel);
    if (r >= 0)
        r = open_initrds(u, o->initrds);
    if (r >= 0 && o->os_release) {
        r = md_read_file(u->ctx, o->os_release, &u->osrel, &u->osrel_len);
        if (r < 0)
            md_error_prefix(u->ctx, "os-release");
    }
    if (r < 0)
        return r;
    osrel->buf = o->os_release ? u->osrel : o->os_release_text;
    osrel->size = osrel->buf ? strlen(osrel->buf) : 0;
    if (o->os_release)
        osrel->size = u->osrel_len;
    cmdline->buf = o->cmdline;
    cmdline->size = o->cmdline ? strlen(o->cmdline) : 0;

    add_section(u, ".osrel", SCN_MEM_READ | SCN_CNT_INITIALIZED_DATA, osrel, 1);
    add_section(u, ".cmdline", SCN_MEM_READ | SCN_CNT_INITIALIZED_DATA, cmdline, 1);
    add_section(u, ".initrd", SCN_MEM_READ | SCN_CNT_INITIALIZED_DATA, u->initrd_pieces,
                u->n_initrds);
    /* code: a loader using the EFI handover protocol runs the kernel in place */
    add_section(u, ".linux", SCN_MEM_READ | SCN_CNT_CODE, &u->linux_piece, 1);
    return layout(u);
}

int md_uki_write_fd(md_ctx *ctx, int fd, const char *name, const md_uki_opts *opts)
{
    static const md_uki_opts def = MD_UKI_OPTS_INIT;
    struct uki u;
    int r;

    memset(&u, 0, sizeof(u));
    u.ctx = ctx;
    u.linux_piece.fd = -1;
    r = prepare(&u, opts ? opts : &def);
    if (r >= 0)
        r = write_image(&u, fd, name);
    uki_free(&u);
    return r;
}

MD_API int md_uki_write(md_ctx *ctx, const char *path, const md_uki_opts *opts)
{
    static const md_uki_opts def = MD_UKI_OPTS_INIT;
    struct uki u;
    md_tmpfile t;
    int r;

    if (!ctx)
        return -EINVAL;
    if (!path || !*path)
        return md_error(ctx, -EINVAL, "missing output path");
    if (!opts)
        opts = &def;
    memset(&u, 0, sizeof(u));
    u.ctx = ctx;
    u.linux_piece.fd = -1;
    r = prepare(&u, opts);
    if (r < 0)
        goto out;
    /* refuses to replace anything but a regular file */
    r = md_tmpfile_open(ctx, &t, path, true);
    if (r < 0)
        goto out;
    r = write_image(&u, t.fd, path);
    if (r < 0)
        md_tmpfile_discard(&t);
    else
        r = md_tmpfile_publish(ctx, &t);
out:
    uki_free(&u);
    return r;
}
