/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Raw disk images: sparse files published atomically, partition tables
 * written with libfdisk, probing with libblkid.
 *
 * libfdisk and libblkid are used on the image's file descriptor; their
 * error codes (negative errno values, mostly) are turned into -errno plus a
 * message naming the image at this boundary.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blkid/blkid.h>
#include <libfdisk/libfdisk.h>
#include <lzma.h>

#include "md-image-internal.h"

/* ---- basics ---------------------------------------------------------------- */

MD_API void md_image_create_opts_init(md_image_create_opts *opts)
{
    md_image_create_opts d = MD_IMAGE_CREATE_OPTS_INIT;
    if (opts)
        *opts = d;
}

MD_API void md_part_opts_init(md_part_opts *opts)
{
    md_part_opts d = MD_PART_OPTS_INIT;
    if (opts)
        *opts = d;
}

MD_API void md_table_opts_init(md_table_opts *opts)
{
    md_table_opts d = MD_TABLE_OPTS_INIT;
    if (opts)
        *opts = d;
}

static const struct {
    const char *name;
    uint32_t type;
} table_names[] = {
    { "gpt", MD_TABLE_GPT }, { "mbr", MD_TABLE_MBR }, { "dos", MD_TABLE_MBR }, { "none", MD_TABLE_NONE },
};

MD_API int md_table_from_name(md_ctx *ctx, const char *name, uint32_t *ret)
{
    size_t i;

    if (!ret)
        return -EINVAL;
    for (i = 0; name && i < sizeof(table_names) / sizeof(table_names[0]); i++) {
        if (!strcasecmp(name, table_names[i].name)) {
            *ret = table_names[i].type;
            return 0;
        }
    }
    return md_error(ctx, -EINVAL, "unknown partition table type '%s' (use gpt, mbr or none)",
                    name ? name : "");
}

MD_API const char *md_table_name(uint32_t type)
{
    size_t i;

    for (i = 0; i < sizeof(table_names) / sizeof(table_names[0]); i++)
        if (table_names[i].type == type)
            return table_names[i].name;
    return NULL;
}

void md_image_fmt_size(char *buf, size_t n, uint64_t v)
{
    if (v >= (1ULL << 40))
        snprintf(buf, n, v % (1ULL << 40) ? "%.1f TiB" : "%.0f TiB", (double)v / (double)(1ULL << 40));
    else if (v >= (1ULL << 30) && v % (1ULL << 20) == 0 && v % (1ULL << 30) != 0)
        snprintf(buf, n, "%" PRIu64 " MiB", v >> 20);
    else if (v >= (1ULL << 30))
        snprintf(buf, n, "%.1f GiB", (double)v / (double)(1ULL << 30));
    else if (v >= (1ULL << 20))
        snprintf(buf, n, v % (1ULL << 20) ? "%.1f MiB" : "%.0f MiB", (double)v / (double)(1ULL << 20));
    else if (v >= 1024)
        snprintf(buf, n, v % 1024 ? "%.1f KiB" : "%.0f KiB", (double)v / 1024.0);
    else
        snprintf(buf, n, "%" PRIu64 " bytes", v);
}

static md_image *image_alloc(md_ctx *ctx)
{
    md_image *img = calloc(1, sizeof(*img));
    if (!img)
        return NULL;
    img->ctx = md_ctx_ref(ctx);
    img->fd = -1;
    img->lock_fd = -1;
    img->tmp.fd = -1;
    return img;
}

static void clear_pending(md_image *img)
{
    size_t i;
    for (i = 0; i < img->n_parts; i++) {
        free(img->parts[i].type);
        free(img->parts[i].name);
        free(img->parts[i].uuid);
    }
    free(img->parts);
    img->parts = NULL;
    img->n_parts = 0;
}

MD_API void md_image_free(md_image *img)
{
    if (!img)
        return;
    if (img->created && !img->committed) {
        md_tmpfile_discard(&img->tmp); /* closes img->fd too */
        img->fd = -1;
    } else if (img->fd >= 0 && img->fd != img->lock_fd) {
        close(img->fd);
    }
    if (img->lock_fd >= 0)
        close(img->lock_fd); /* and the lock goes with it */
    clear_pending(img);
    free(img->path);
    md_ctx_unref(img->ctx);
    free(img);
}

MD_API int md_image_create(md_ctx *ctx, const char *path, uint64_t size,
                           const md_image_create_opts *opts, md_image **ret)
{
    md_image_create_opts o = MD_IMAGE_CREATE_OPTS_INIT;
    md_image *img;
    int r;

    if (!ctx || !ret)
        return -EINVAL;
    *ret = NULL;
    if (!path || !*path)
        return md_error(ctx, -EINVAL, "image: empty path");
    if (opts) {
        r = md_check_version(ctx, "md_image_create_opts", opts->version, MD_IMAGE_CREATE_OPTS_VERSION);
        if (r < 0)
            return r;
        o = *opts;
    }
    if (size == 0 || size % SECTOR)
        return md_error(ctx, -EINVAL, "%s: image size %" PRIu64 " is not a positive multiple of 512 bytes",
                        path, size);
    if (size > (uint64_t)INT64_MAX)
        return md_error(ctx, -EINVAL, "%s: image size %" PRIu64 " is too large", path, size);
    img = image_alloc(ctx);
    if (!img)
        return md_error(ctx, -ENOMEM, "out of memory");
    img->path = strdup(path);
    if (!img->path) {
        md_image_free(img);
        return md_error(ctx, -ENOMEM, "out of memory");
    }
    r = md_tmpfile_open(ctx, &img->tmp, path, o.flags & MD_IMAGE_FORCE);
    if (r < 0) {
        md_image_free(img);
        return r;
    }
    img->created = true;
    img->fd = img->tmp.fd;
    /* Sparse: only set the length, never write zeros. */
    if (ftruncate(img->fd, (off_t)size) < 0) {
        r = md_error_errno(ctx, -errno, "%s: cannot set the size to %" PRIu64, path, size);
        md_image_free(img);
        return r;
    }
    img->size = size;
    md_dbg(ctx, "image %s: created %" PRIu64 " bytes (sparse) as %s", path, size, img->tmp.tmp_path);
    *ret = img;
    return 0;
}

/* The whole file, locked with an OFD lock: shared for readers, exclusive
 * for writers.  QEMU locks its images the same way (on some bytes), so an
 * image a guest runs from is "in use" too, and QEMU refuses one we change. */
static int lock_image(md_ctx *ctx, int fd, const char *path, bool rdonly, bool wait)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = rdonly ? F_RDLCK : F_WRLCK;
    fl.l_whence = SEEK_SET;
    while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
        if (errno == EINTR && wait)
            continue;
        if (errno == EAGAIN || errno == EACCES)
            return md_error(ctx, -EBUSY, "%s: in use by another program (another mdimg, or QEMU "
                            "running from it)%s", path, wait ? "" : "; --wait waits for it");
        if (errno == EINVAL || errno == ENOLCK || errno == EOPNOTSUPP)
            return 0; /* a filesystem without locks: go on unlocked */
        return md_error_errno(ctx, -errno, "%s: lock", path);
    }
    return 0;
}

/* Open @path and lock it; a file replaced while we waited for the lock (by
 * an atomic change of another run) is opened again. */
static int open_locked(md_image *img, const char *path, uint32_t flags, struct stat *st)
{
    bool wait = flags & MD_IMAGE_WAIT;
    struct stat now;
    int tries, r;

    for (tries = 0; tries < 100; tries++) {
        /* O_NONBLOCK: a FIFO at the path does not block the open */
        img->fd = open(path, (img->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (img->fd < 0 && errno == EISDIR)
            return md_error(img->ctx, -EINVAL, "%s: not a regular file (a directory)", path);
        if (img->fd < 0)
            return md_error_errno(img->ctx, -errno, "%s", path);
        if (fstat(img->fd, st) < 0)
            return md_error_errno(img->ctx, -errno, "%s", path);
        if (!S_ISREG(st->st_mode))
            return md_error(img->ctx, -EINVAL, "%s: not a regular file", path);
        (void)fcntl(img->fd, F_SETFL, fcntl(img->fd, F_GETFL) & ~O_NONBLOCK);
        r = lock_image(img->ctx, img->fd, path, img->rdonly, wait);
        if (r < 0)
            return r;
        if (stat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino)
            return 0;
        close(img->fd);
        img->fd = -1;
    }
    return md_error(img->ctx, -EBUSY, "%s: keeps being replaced while it is opened", path);
}

/* Data of @from into @to (the same size), holes kept: copy_file_range()
 * shares or copies in the kernel where it can. */
static int copy_sparse(md_ctx *ctx, int from, int to, uint64_t size, const char *path)
{
    off_t pos = 0;

    if (ftruncate(to, (off_t)size) < 0)
        return md_error_errno(ctx, -errno, "%s: sizing the copy", path);
    while ((uint64_t)pos < size) {
        off_t data = lseek(from, pos, SEEK_DATA), hole;
        if (data < 0) {
            if (errno == ENXIO)
                break; /* only a hole is left */
            data = pos;
            hole = (off_t)size; /* no SEEK_DATA: all of it */
        } else {
            hole = lseek(from, data, SEEK_HOLE);
            if (hole < 0)
                hole = (off_t)size;
        }
        while (data < hole) {
            off_t in = data, out = data;
            ssize_t n = copy_file_range(from, &in, to, &out, (size_t)(hole - data), 0);
            if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
                char buf[1 << 16];
                size_t k = (size_t)(hole - data) < sizeof(buf) ? (size_t)(hole - data) : sizeof(buf);
                int r = md_pread_full(from, buf, k, (uint64_t)data);
                if (r == 0)
                    r = md_pwrite_full(to, buf, k, (uint64_t)data);
                if (r < 0)
                    return md_error_errno(ctx, r, "%s: copying", path);
                n = (ssize_t)k;
            } else if (n < 0) {
                int e = errno;
                if (e == ENOSPC)
                    return md_error(ctx, -ENOSPC, "%s: no room for the copy that makes the change "
                                    "atomic (%llu MiB of data): free some space, or change it in place",
                                    path, (unsigned long long)(size >> 20));
                return md_error_errno(ctx, -e, "%s: copying", path);
            } else if (n == 0) {
                break;
            }
            data += n;
        }
        pos = hole;
    }
    return 0;
}

/* MD_IMAGE_ATOMIC: the changes go to a copy next to the image, which
 * md_image_commit() renames over it. */
static int open_copy(md_image *img, const struct stat *st)
{
    int r = md_tmpfile_open(img->ctx, &img->tmp, img->path, true);

    if (r == -EACCES || r == -EROFS || r == -EPERM) {
        md_warn(img->ctx, "%s: its directory is not writable: changing it in place (a failure "
                "could leave it half-changed)", img->path);
        md_ctx_clear_error(img->ctx);
        return 0;
    }
    if (r < 0)
        return r;
    r = copy_sparse(img->ctx, img->fd, img->tmp.fd, (uint64_t)st->st_size, img->path);
    if (r < 0) {
        md_tmpfile_discard(&img->tmp);
        return r;
    }
    (void)fchmod(img->tmp.fd, st->st_mode & 07777);
    img->lock_fd = img->fd;
    img->fd = img->tmp.fd;
    img->created = true;   /* published (or dropped) like a created image */
    img->atomic = true;
    return 0;
}

MD_API int md_image_open(md_ctx *ctx, const char *path, uint32_t flags, md_image **ret)
{
    struct stat st;
    md_image *img;
    int r;

    if (!ctx || !ret)
        return -EINVAL;
    *ret = NULL;
    if (!path || !*path)
        return md_error(ctx, -EINVAL, "image: empty path");
    if (flags & ~(MD_IMAGE_RDONLY | MD_IMAGE_WAIT | MD_IMAGE_ATOMIC))
        return md_error(ctx, -EINVAL, "%s: unknown open flags 0x%x", path, flags);
    img = image_alloc(ctx);
    if (!img)
        return md_error(ctx, -ENOMEM, "out of memory");
    img->path = strdup(path);
    img->rdonly = flags & MD_IMAGE_RDONLY;
    if (!img->path) {
        md_image_free(img);
        return md_error(ctx, -ENOMEM, "out of memory");
    }
    r = open_locked(img, path, flags, &st);
    if (r == 0 && (flags & MD_IMAGE_ATOMIC) && !img->rdonly)
        r = open_copy(img, &st);
    if (r < 0) {
        md_image_free(img);
        return r;
    }
    if (img->lock_fd < 0)
        img->lock_fd = img->fd;
    img->size = (uint64_t)st.st_size;
    *ret = img;
    return 0;
}

MD_API int md_image_commit(md_image *img)
{
    int fd, r;

    if (!img)
        return -EINVAL;
    if (!img->created || img->committed)
        return 0;
    /* Keep a descriptor: the image stays usable after publication. */
    fd = fcntl(img->tmp.fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return md_error_errno(img->ctx, -errno, "%s: dup", img->path);
    r = md_tmpfile_publish(img->ctx, &img->tmp);
    if (r < 0) {
        close(fd);
        img->fd = -1;
        img->committed = true; /* the tmpfile is gone either way */
        return r;
    }
    img->fd = fd;
    img->committed = true;
    return 0;
}

MD_API const char *md_image_name(const md_image *img)
{
    return img ? img->path : NULL;
}

int md_image_fd(const md_image *img)
{
    return img ? img->fd : -1;
}

MD_API int md_image_is_rdonly(const md_image *img)
{
    return img && img->rdonly ? 1 : 0;
}

MD_API const char *md_image_path(const md_image *img)
{
    if (!img)
        return NULL;
    if (img->created && !img->committed && img->tmp.tmp_path)
        return img->tmp.tmp_path;
    return img->path;
}

MD_API uint64_t md_image_size(const md_image *img)
{
    return img ? img->size : 0;
}

MD_API md_ctx *md_image_ctx(const md_image *img)
{
    return img ? img->ctx : NULL;
}

MD_API int md_image_usage(md_image *img, uint64_t *apparent, uint64_t *allocated)
{
    struct stat st;

    if (!img)
        return -EINVAL;
    if (fstat(img->fd, &st) < 0)
        return md_error_errno(img->ctx, -errno, "%s", img->path);
    if (apparent)
        *apparent = (uint64_t)st.st_size;
    if (allocated)
        *allocated = (uint64_t)st.st_blocks * 512u;
    return 0;
}

/* ---- libblkid: reading the table ----------------------------------------- */

static uint32_t le32_at(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Whether the first two sectors plainly hold a partition table: an MBR
 * signature with well-formed entries (boot flag 0x00 or 0x80, and one in
 * use), not a FAT or NTFS boot sector, or a GPT header.  libblkid reports
 * some of its own failures (an allocation inside a prober) as "nothing
 * found"; this tells such a miss from an image without a table. */
static bool raw_table_present(md_image *img)
{
    unsigned char s[1024];
    bool used = false;
    int i;

    if (md_pread_full(img->fd, s, sizeof(s), 0) < 0)
        return false;
    if (!memcmp(s + 512, "EFI PART", 8))
        return true;
    if (s[510] != 0x55 || s[511] != 0xaa)
        return false;
    if ((s[0] == 0xeb || s[0] == 0xe9) &&
        (!memcmp(s + 0x36, "FAT", 3) || !memcmp(s + 0x52, "FAT", 3) || !memcmp(s + 3, "NTFS", 4)))
        return false;
    for (i = 0; i < 4; i++) {
        const unsigned char *e = s + 446 + 16 * i;

        if (e[0] != 0 && e[0] != 0x80)
            return false;
        if (e[4] && le32_at(e + 8) && le32_at(e + 12))
            used = true;
    }
    return used;
}

bool md_image_gpt_header(md_image *img, uint64_t lba, struct md_gpt_header *g)
{
    unsigned char h[SECTOR];
    uint32_t hsize, crc;

    if (md_pread_full(img->fd, h, sizeof(h), lba * SECTOR) < 0 || memcmp(h, "EFI PART", 8))
        return false;
    hsize = md_get_le32(h + 12);
    if (hsize < 92 || hsize > sizeof(h) || md_get_le64(h + 24) != lba)
        return false;
    crc = md_get_le32(h + 16);
    memset(h + 16, 0, 4);
    if ((uint32_t)lzma_crc32(h, hsize, 0) != crc) /* the CRC-32 of the UEFI spec */
        return false;
    g->alt = md_get_le64(h + 32);
    g->first = md_get_le64(h + 40);
    g->last = md_get_le64(h + 48);
    g->entries = md_get_le64(h + 72);
    g->n_entries = md_get_le32(h + 80);
    g->entry_size = md_get_le32(h + 84);
    return g->first <= g->last && g->entry_size >= 128 && g->entry_size % 8 == 0 &&
           g->entry_size <= 4096 && g->n_entries <= 65536;
}

bool md_image_gpt_entry(md_image *img, const struct md_gpt_header *g, uint32_t i, uint64_t *first,
                        uint64_t *last)
{
    static const unsigned char unused[16];
    unsigned char e[48];

    if (i >= g->n_entries || g->entries > UINT64_MAX / SECTOR / 2 ||
        md_pread_full(img->fd, e, sizeof(e), g->entries * SECTOR + (uint64_t)i * g->entry_size) < 0 ||
        !memcmp(e, unused, sizeof(unused)))
        return false;
    *first = md_get_le64(e + 32);
    *last = md_get_le64(e + 40);
    return true;
}

int md_image_gpt_truncated(md_image *img, const struct md_gpt_header *g)
{
    uint64_t sectors = img->size / SECTOR, end = g->alt > g->last ? g->alt : g->last;
    char a[32], b[32];

    if (end < sectors)
        return 0;
    md_image_fmt_size(a, sizeof(a), (end + 1) * SECTOR);
    md_image_fmt_size(b, sizeof(b), img->size);
    return md_error(img->ctx, -EINVAL, "%s: the GPT describes a disk of %s, the image is %s: "
                    "truncated image?", img->path, a, b);
}

int md_image_blkid_parts(md_image *img, blkid_probe *ret_pr, blkid_partlist *ret_ls)
{
    struct md_gpt_header g;
    blkid_probe pr = blkid_new_probe();
    blkid_partlist ls;
    int rc;

    if (!pr)
        return md_error(img->ctx, -ENOMEM, "out of memory");
    if (blkid_probe_set_device(pr, img->fd, 0, 0) != 0) {
        blkid_free_probe(pr);
        return md_error(img->ctx, -EIO, "%s: libblkid cannot read the image", img->path);
    }
    blkid_probe_enable_superblocks(pr, 0);
    blkid_probe_enable_partitions(pr, 1);
    blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
    /* told apart: no table (1), a table (0), or a failure (< 0, out of
     * memory say), which must not read as "no table" (whole-image
     * defaults would then overwrite the table) */
    rc = blkid_do_fullprobe(pr);
    if (rc < 0) {
        blkid_free_probe(pr);
        return md_error(img->ctx, -EIO, "%s: libblkid cannot read the partition table", img->path);
    }
    ls = rc == 0 ? blkid_probe_get_partitions(pr) : NULL;
    if (ls && !blkid_partlist_get_table(ls))
        ls = NULL;
    if (!ls && ((rc == 0 && blkid_probe_has_value(pr, "PTTYPE")) || raw_table_present(img))) {
        blkid_free_probe(pr);
        /* libblkid ignores a GPT that reaches past the end of the device */
        if (md_image_gpt_header(img, 1, &g) && md_image_gpt_truncated(img, &g) < 0)
            return -EINVAL;
        return md_error(img->ctx, -EIO, "%s: libblkid cannot read the partition table that the first "
                        "sectors hold (out of memory?)", img->path);
    }
    *ret_pr = pr;
    *ret_ls = ls;
    return 0;
}

MD_API int md_image_partition_range(md_image *img, uint32_t partno, uint64_t *offset,
                                    uint64_t *size)
{
    blkid_probe pr;
    blkid_partlist ls;
    blkid_partition par;
    int r, n;

    if (!img)
        return -EINVAL;
    if (partno == 0) {
        if (offset)
            *offset = 0;
        if (size)
            *size = img->size;
        return 0;
    }
    r = md_image_blkid_parts(img, &pr, &ls);
    if (r < 0)
        return r;
    if (!ls) {
        blkid_free_probe(pr);
        return md_error(img->ctx, -EINVAL,
                        "%s: no partition table, so no partition %u (use partition 0 for the whole image)",
                        img->path, partno);
    }
    n = blkid_partlist_numof_partitions(ls);
    par = partno > INT32_MAX ? NULL : blkid_partlist_get_partition_by_partno(ls, (int)partno);
    if (!par) {
        bool gpt = !strcmp(blkid_parttable_get_type(blkid_partlist_get_table(ls)), "gpt");

        blkid_free_probe(pr);
        /* libblkid leaves out a GPT entry outside the usable sectors */
        if (gpt && (r = md_image_check_gpt_entries(img, partno, !img->rdonly)) < 0)
            return r;
        return md_error(img->ctx, -ENOENT, "%s: no partition %u (the table has %d partition%s)",
                        img->path, partno, n < 0 ? 0 : n, n == 1 ? "" : "s");
    }
    /* nothing is read or written past the end of the file, or through
     * another partition or the table (md-image-probe.c) */
    r = md_image_check_table(img, ls, partno, !img->rdonly);
    if (r == 0 && offset)
        *offset = (uint64_t)blkid_partition_get_start(par) * SECTOR;
    if (r == 0 && size)
        *size = (uint64_t)blkid_partition_get_size(par) * SECTOR;
    blkid_free_probe(pr);
    return r;
}

/* ---- libfdisk ------------------------------------------------------------ */

static int fdisk_err(int r)
{
    return r < 0 && r > -4096 ? r : -EIO;
}

static int ask_cb(struct fdisk_context *cxt, struct fdisk_ask *ask, void *data)
{
    md_image *img = data;
    const char *m;

    (void)cxt;
    switch (fdisk_ask_get_type(ask)) {
    case FDISK_ASKTYPE_INFO:
    case FDISK_ASKTYPE_WARN:
    case FDISK_ASKTYPE_WARNX:
        m = fdisk_ask_print_get_mesg(ask);
        if (m) {
            snprintf(img->fdisk_msg, sizeof(img->fdisk_msg), "%s", m);
            md_dbg(img->ctx, "libfdisk: %s", m);
        }
        return 0;
    case FDISK_ASKTYPE_YESNO:
        /* Never let libfdisk take a decision on its own. */
        fdisk_ask_yesno_set_result(ask, 0);
        return 0;
    default:
        return -EINVAL;
    }
}

static int fdisk_open(md_image *img, struct fdisk_context **ret)
{
    struct fdisk_context *cxt;
    int r;

    if (img->rdonly)
        return md_error(img->ctx, -EROFS, "%s: image opened read-only", img->path);
    cxt = fdisk_new_context();
    if (!cxt)
        return md_error(img->ctx, -ENOMEM, "out of memory");
    fdisk_set_ask(cxt, ask_cb, img);
    img->fdisk_msg[0] = '\0';
    r = fdisk_assign_device_by_fd(cxt, img->fd, md_image_path(img), 0);
    if (r < 0) {
        fdisk_unref_context(cxt);
        return md_error_errno(img->ctx, fdisk_err(r), "%s: libfdisk cannot open the image", img->path);
    }
    fdisk_disable_dialogs(cxt, 1);
    *ret = cxt;
    return 0;
}

static void fdisk_close(struct fdisk_context *cxt)
{
    if (!cxt)
        return;
    /* The descriptor is ours (assigned by fd); nosync: build products. */
    fdisk_deassign_device(cxt, 1);
    fdisk_unref_context(cxt);
}

/* ---- deterministic ids ---------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    /* splitmix64 finaliser: a bijective 64-bit mixer */
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* 16 bytes from (seed, purpose, index). */
static void derive_bytes(uint64_t seed, uint32_t purpose, uint32_t index, uint8_t out[16])
{
    uint64_t a = mix64(seed ^ mix64(((uint64_t)purpose << 32) | index));
    uint64_t b = mix64(a ^ mix64(seed + UINT64_C(0x2545f4914f6cdd1d)));
    int i;

    for (i = 0; i < 8; i++) {
        out[i] = (uint8_t)(a >> (56 - 8 * i));
        out[8 + i] = (uint8_t)(b >> (56 - 8 * i));
    }
}

static void derive_guid(uint64_t seed, uint32_t purpose, uint32_t index, char buf[37])
{
    uint8_t u[16];

    derive_bytes(seed, purpose, index, u);
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 */
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(buf, 37,
             "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
             u[13], u[14], u[15]);
}

static bool is_guid(const char *s)
{
    size_t i;

    if (!s || strlen(s) != 36)
        return false;
    for (i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                                   (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    }
    return true;
}

static bool parse_dos_id(const char *s, uint32_t *id)
{
    unsigned long long v;
    char *end;

    if (!s || !*s)
        return false;
    errno = 0;
    v = strtoull(s, &end, 16);
    if (errno || *end || v > UINT32_MAX || *s == '-')
        return false;
    *id = (uint32_t)v;
    return true;
}

/* ---- partition tables --------------------------------------------------------- */

int md_part_opts_check(md_ctx *ctx, size_t n, const md_part_opts *opts)
{
    int r = md_check_version(ctx, "md_part_opts", opts->version, MD_PART_OPTS_VERSION);

    if (r < 0)
        return r;
    if (opts->flags & ~MD_PART_BOOTABLE)
        return md_error(ctx, -EINVAL, "partition %zu: unknown flags 0x%x", n, opts->flags);
    if (opts->percent > 100)
        return md_error(ctx, -EINVAL, "partition %zu: %u%% is more than 100%%", n, opts->percent);
    if (opts->uuid && !is_guid(opts->uuid))
        return md_error(ctx, -EINVAL, "partition %zu: '%s' is not a GUID", n, opts->uuid);
    if (opts->name && strlen(opts->name) > 36)
        return md_error(ctx, -EINVAL, "partition %zu: name '%s' is longer than 36 characters", n,
                        opts->name);
    return 0;
}

#define GPT_MAX_PARTS 128u /* the entries a GPT made by libfdisk (and most tools) holds */

int md_part_list_check(md_ctx *ctx, const char *where, bool gpt, size_t n, const char *disk_id,
                       const char *(*uuid_at)(const void *v, size_t i), const void *v)
{
    size_t i, j;

    if (!gpt && n > 4)
        return md_error(ctx, -EINVAL, "%s: %zu partitions: an MBR table holds at most 4 primary "
                        "partitions (use gpt)", where, n);
    if (gpt && n > GPT_MAX_PARTS)
        return md_error(ctx, -EINVAL, "%s: %zu partitions: a GPT holds at most %u partitions",
                        where, n, GPT_MAX_PARTS);
    if (!gpt)
        return 0; /* GUIDs are refused on MBR, one by one */
    for (i = 0; i < n; i++) {
        const char *u = uuid_at(v, i);

        if (!u)
            continue;
        if (disk_id && !strcasecmp(u, disk_id))
            return md_error(ctx, -EINVAL, "%s: partition %zu has the disk's GUID %s: every GUID of "
                            "a GPT must be unique", where, i + 1, u);
        for (j = 0; j < i; j++)
            if (uuid_at(v, j) && !strcasecmp(u, uuid_at(v, j)))
                return md_error(ctx, -EINVAL, "%s: partitions %zu and %zu have the same GUID %s: "
                                "a partition's GUID (its PARTUUID) must be unique", where, j + 1,
                                i + 1, u);
    }
    return 0;
}

static const char *pending_uuid(const void *v, size_t i)
{
    return ((const struct pending_part *)v)[i].uuid;
}

MD_API int md_image_add_partition(md_image *img, const md_part_opts *opts)
{
    struct pending_part *p, *v;
    int r;

    if (!img || !opts)
        return -EINVAL;
    r = md_part_opts_check(img->ctx, img->n_parts + 1, opts);
    if (r < 0)
        return r;
    v = realloc(img->parts, (img->n_parts + 1) * sizeof(*v));
    if (!v)
        return md_error(img->ctx, -ENOMEM, "out of memory");
    img->parts = v;
    p = &v[img->n_parts];
    memset(p, 0, sizeof(*p));
    p->flags = opts->flags;
    p->size = opts->size;
    p->percent = opts->percent;
    p->type = md_strdup(opts->type);
    p->name = md_strdup(opts->name);
    p->uuid = md_strdup(opts->uuid);
    if ((opts->type && !p->type) || (opts->name && !p->name) || (opts->uuid && !p->uuid)) {
        /* not added: a later md_image_write_table() must not see it half-copied */
        free(p->type);
        free(p->name);
        free(p->uuid);
        return md_error(img->ctx, -ENOMEM, "out of memory");
    }
    img->n_parts++;
    return 0;
}

int md_part_spec_parse(md_ctx *ctx, size_t n, const char *spec, md_part_opts *out, char **buf)
{
    static const md_part_opts def = MD_PART_OPTS_INIT;
    md_part_opts p = def;
    char *copy, *size_s, *type_s, *flags_s, *f, *save = NULL;

    *buf = NULL;
    if (!spec || !*spec)
        return md_error(ctx, -EINVAL, "partition %zu: empty description", n);
    copy = strdup(spec);
    if (!copy)
        return md_error(ctx, -ENOMEM, "out of memory");
    size_s = copy;
    type_s = strchr(size_s, ':');
    flags_s = NULL;
    if (type_s) {
        *type_s++ = '\0';
        flags_s = strchr(type_s, ':');
        if (flags_s)
            *flags_s++ = '\0';
    }
    if (!strcmp(size_s, "rest") || !strcmp(size_s, "+") || !strcmp(size_s, "-")) {
        p.size = 0;
    } else if (*size_s && size_s[strlen(size_s) - 1] == '%') {
        char *end;
        unsigned long v;
        errno = 0;
        v = strtoul(size_s, &end, 10);
        if (errno || end == size_s || *end != '%' || end[1] || v == 0 || v > 100 || *size_s == '-') {
            md_error(ctx, -EINVAL, "partition %zu '%s': '%s' is not a percentage from 1%% to 100%%",
                     n, spec, size_s);
            goto bad;
        }
        p.percent = (uint32_t)v;
    } else {
        uint64_t v;
        if (md_parse_size(size_s, &v) < 0 || v == 0) {
            md_error(ctx, -EINVAL, "partition %zu '%s': '%s' is not a size (examples: 100M, 50%%, rest)",
                     n, spec, size_s);
            goto bad;
        }
        p.size = v;
    }
    if (type_s && *type_s)
        p.type = type_s;
    for (f = flags_s ? strtok_r(flags_s, ",:", &save) : NULL; f; f = strtok_r(NULL, ",:", &save)) {
        if (!strcmp(f, "bootable") || !strcmp(f, "boot") || !strcmp(f, "*"))
            p.flags |= MD_PART_BOOTABLE;
        else if (!strncmp(f, "name=", 5))
            p.name = f + 5;
        else if (!strncmp(f, "uuid=", 5))
            p.uuid = f + 5;
        else {
            md_error(ctx, -EINVAL, "partition %zu '%s': unknown flag '%s' (use bootable, name=NAME, uuid=GUID)",
                     n, spec, f);
            goto bad;
        }
    }
    *out = p;
    *buf = copy;
    return 0;
bad:
    free(copy);
    return -EINVAL;
}

MD_API int md_image_add_partition_spec(md_image *img, const char *spec)
{
    md_part_opts p;
    char *buf = NULL;
    int r;

    if (!img)
        return -EINVAL;
    r = md_part_spec_parse(img->ctx, img->n_parts + 1, spec, &p, &buf);
    if (r < 0)
        return r;
    r = md_image_add_partition(img, &p);
    if (r < 0)
        md_error_prefix(img->ctx, "'%s'", spec);
    free(buf);
    return r;
}

const struct md_known_type md_known_types[] = {
    { "linux", "L", NULL, 0x83, "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem" },
    { "efi", "esp", "uefi", 0xef, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System" },
    { "bios-boot", "bios", NULL, 0, "21686148-6449-6E6F-744E-656564454649", "BIOS boot" },
    { "swap", "S", NULL, 0x82, "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap" },
    { NULL, NULL, NULL, 0, NULL, NULL },
};

static int parse_type(md_image *img, struct fdisk_label *lb, bool gpt, const char *t,
                      size_t partno, struct fdisk_parttype **ret)
{
    struct fdisk_parttype *pt = NULL;
    size_t i;

    if (!t || !*t)
        t = MD_PART_LINUX;
    for (i = 0; md_known_types[i].alias1; i++) {
        const struct md_known_type *k = &md_known_types[i];
        if (strcasecmp(t, k->alias1) && (!k->alias2 || strcasecmp(t, k->alias2)) &&
            (!k->alias3 || strcasecmp(t, k->alias3)))
            continue;
        if (gpt)
            pt = fdisk_label_get_parttype_from_string(lb, k->gpt);
        else if (k->dos)
            pt = fdisk_label_get_parttype_from_code(lb, k->dos);
        else
            return md_error(img->ctx, -EINVAL, "partition %zu: type '%s' exists only in GPT tables",
                            partno, t);
        if (!pt)
            return md_error(img->ctx, -EINVAL, "partition %zu: libfdisk does not know type '%s'",
                            partno, t);
        *ret = pt;
        return 0;
    }
    if (gpt && is_guid(t)) {
        pt = fdisk_label_get_parttype_from_string(lb, t);
        if (!pt)
            pt = fdisk_new_unknown_parttype(0, t);
    } else if (!gpt) {
        uint32_t code;
        const char *h = strncasecmp(t, "0x", 2) == 0 ? t + 2 : t;
        if (strlen(h) <= 2 && parse_dos_id(h, &code) && code == 0xee)
            return md_error(img->ctx, -EINVAL, "partition %zu: type 0xee marks a GPT's protective MBR: "
                            "every reader would then look for a GPT (use a GPT table instead)", partno);
        if (strlen(h) <= 2 && parse_dos_id(h, &code) && (code == 0x05 || code == 0x0f || code == 0x85))
            return md_error(img->ctx, -EINVAL, "partition %zu: type 0x%02x is an extended partition, "
                            "which needs logical partitions inside; not supported (use a GPT table "
                            "for more than 4 partitions)", partno, code);
        if (strlen(h) <= 2 && parse_dos_id(h, &code) && code > 0) {
            pt = fdisk_label_get_parttype_from_code(lb, code);
            if (!pt)
                pt = fdisk_new_unknown_parttype(code, NULL);
        }
    }
    if (!pt)
        return md_error(img->ctx, -EINVAL,
                        "partition %zu: unknown %s partition type '%s' (use linux, efi, %sswap, %s)",
                        partno, gpt ? "GPT" : "MBR", t, gpt ? "bios-boot, " : "",
                        gpt ? "or a type GUID" : "or a hex type code such as 0x83");
    *ret = pt;
    return 0;
}

struct layout {
    uint64_t start, nsec; /* sectors */
};

static uint64_t part_sectors(const struct pending_part *p, uint64_t usable)
{
    if (p->size)
        return (p->size + SECTOR - 1) / SECTOR;
    if (p->percent && p->percent < 100)
        return usable * p->percent / 100 / GRAIN_SECTORS * GRAIN_SECTORS;
    return 0; /* the rest */
}

/* Size of partition @i, the one that takes the rest: what the @avail
 * sectors leave after aligned room for the partitions that follow. */
static int rest_sectors(md_image *img, size_t i, uint64_t avail, uint64_t usable, uint64_t *ret)
{
    uint64_t later = 0, nsec;
    char a[32], b[32];
    size_t j;

    for (j = i + 1; j < img->n_parts; j++) {
        uint64_t s = part_sectors(&img->parts[j], usable);
        later += j + 1 < img->n_parts ? (s + GRAIN_SECTORS - 1) / GRAIN_SECTORS * GRAIN_SECTORS : s;
    }
    if (later == 0)
        nsec = avail;
    else if (avail > later)
        nsec = (avail - later) / GRAIN_SECTORS * GRAIN_SECTORS;
    else
        nsec = 0;
    if (later && nsec == 0) {
        md_image_fmt_size(b, sizeof(b), avail * SECTOR);
        md_image_fmt_size(a, sizeof(a), later * SECTOR);
        return md_error(img->ctx, -ENOSPC,
                        "partition %zu (rest of the disk) would be empty: the partitions after it "
                        "need %s of the %s left",
                        i + 1, a, b);
    }
    *ret = nsec;
    return 0;
}

static int compute_layout(md_image *img, bool gpt, uint64_t first, uint64_t last, struct layout *lay)
{
    uint64_t cur = first, usable;
    size_t i, n_rest = 0;
    char a[32], b[32];
    int r;

    usable = last >= first ? last - first + 1 : 0;
    for (i = 0; i < img->n_parts; i++)
        if (!img->parts[i].size && !(img->parts[i].percent && img->parts[i].percent < 100))
            n_rest++;
    if (n_rest > 1)
        return md_error(img->ctx, -EINVAL, "%zu partitions ask for the rest of the disk; only one can", n_rest);
    for (i = 0; i < img->n_parts; i++) {
        const struct pending_part *p = &img->parts[i];
        uint64_t start = (cur + GRAIN_SECTORS - 1) / GRAIN_SECTORS * GRAIN_SECTORS;
        uint64_t avail = start <= last ? last - start + 1 : 0;
        uint64_t nsec = part_sectors(p, usable);

        if (p->size) {
            md_image_fmt_size(a, sizeof(a), p->size);
        } else if (p->percent && p->percent < 100) {
            snprintf(a, sizeof(a), "%u%%", p->percent);
            if (!nsec)
                return md_error(img->ctx, -ENOSPC,
                                "partition %zu: %u%% of the usable space is less than 1 MiB", i + 1,
                                p->percent);
        } else {
            /* The rest: leave room for the partitions that follow, each
             * starting on a 1 MiB boundary. */
            snprintf(a, sizeof(a), "rest of the disk");
            r = rest_sectors(img, i, avail, usable, &nsec);
            if (r < 0)
                return r;
        }
        md_image_fmt_size(b, sizeof(b), avail * SECTOR);
        if (nsec == 0 || nsec > avail) {
            if (i == 0)
                return md_error(img->ctx, -ENOSPC,
                                "partition 1 (%s) does not fit: %s free after the partition table "
                                "(image %" PRIu64 " bytes)",
                                a, b, img->size);
            return md_error(img->ctx, -ENOSPC, "partition %zu (%s) does not fit: %s free after partition %zu",
                            i + 1, a, b, i);
        }
        if (!gpt && start + nsec > (UINT64_C(1) << 32))
            return md_error(img->ctx, -EINVAL,
                            "partition %zu ends beyond 2 TiB, which an MBR table cannot address (use gpt)",
                            i + 1);
        lay[i].start = start;
        lay[i].nsec = nsec;
        cur = start + nsec;
    }
    return 0;
}

static int ids_seed(md_image *img, const md_table_opts *o, uint64_t *seed)
{
    if (o->flags & MD_TABLE_SEED) {
        *seed = o->seed;
        return 1;
    }
    if (md_ctx_has_epoch(img->ctx)) {
        *seed = (uint64_t)md_ctx_get_epoch(img->ctx);
        return 1;
    }
    /* Random ids, but made the same way: libfdisk's own random GPT GUIDs
     * are not RFC 4122 v4-shaped once stored mixed-endian. */
    if (getrandom(seed, sizeof(*seed), 0) == (ssize_t)sizeof(*seed))
        return 1;
    return 0;
}

/* One md_image_write_table() call: what each phase finds, for the next. */
struct table_job {
    md_image *img;
    md_table_opts o;      /* the caller's options, or the defaults */
    bool gpt;
    bool seeded;          /* derive the ids from seed (else libfdisk's random ones) */
    uint64_t seed;
    struct fdisk_context *cxt;
    struct fdisk_label *lb;
    uint64_t first, last; /* usable sectors */
    struct layout *lay;   /* where each queued partition goes */
    char disk_id[40];     /* the disk id to set; "" leaves libfdisk's */
};

/* The options and the label type; the image must hold the table. */
static int table_check(struct table_job *t, md_image *img, const md_table_opts *opts)
{
    static const md_table_opts defaults = MD_TABLE_OPTS_INIT;
    uint64_t sectors;
    int r;

    t->img = img;
    t->o = defaults;
    if (opts) {
        r = md_check_version(img->ctx, "md_table_opts", opts->version, MD_TABLE_OPTS_VERSION);
        if (r < 0)
            return r;
        t->o = *opts;
    }
    if (t->o.flags & ~MD_TABLE_SEED)
        return md_error(img->ctx, -EINVAL, "partition table: unknown flags 0x%x", t->o.flags);
    if (t->o.type != MD_TABLE_GPT && t->o.type != MD_TABLE_MBR)
        return md_error(img->ctx, -EINVAL, "%s: partition table type %u is not MD_TABLE_GPT or MD_TABLE_MBR",
                        img->path, t->o.type);
    t->gpt = t->o.type == MD_TABLE_GPT;
    r = md_part_list_check(img->ctx, img->path, t->gpt, img->n_parts, t->o.disk_id, pending_uuid,
                           img->parts);
    if (r < 0)
        return r;
    t->seeded = ids_seed(img, &t->o, &t->seed);

    /* Up-front checks that give clear messages; libfdisk's own checks follow. */
    sectors = img->size / SECTOR;
    if (sectors < GRAIN_SECTORS + (t->gpt ? 34 : 1))
        return md_error(img->ctx, -ENOSPC,
                        "%s: image of %" PRIu64 " bytes is too small for a%s partition table "
                        "(partitions start at 1 MiB; minimum %u bytes)",
                        img->path, img->size, t->gpt ? " GPT" : "n MBR",
                        (GRAIN_SECTORS + (t->gpt ? 34u : 1u) + 1u) * SECTOR);
    return 0;
}

/* A new empty label in libfdisk's memory, and the sectors it leaves usable. */
static int table_create(struct table_job *t)
{
    md_image *img = t->img;
    int r = fdisk_create_disklabel(t->cxt, t->gpt ? "gpt" : "dos");

    if (r < 0)
        return md_error(img->ctx, fdisk_err(r), "%s: libfdisk cannot create a %s table%s%s", img->path,
                        t->gpt ? "GPT" : "MBR", img->fdisk_msg[0] ? ": " : "", img->fdisk_msg);
    t->lb = fdisk_get_label(t->cxt, NULL);
    t->first = fdisk_get_first_lba(t->cxt);
    t->last = fdisk_get_last_lba(t->cxt);
    if (t->first < GRAIN_SECTORS)
        t->first = GRAIN_SECTORS;
    md_dbg(img->ctx, "%s: %s table, usable sectors %" PRIu64 "..%" PRIu64, img->path,
           t->gpt ? "GPT" : "MBR", t->first, t->last);
    return 0;
}

static int table_layout(struct table_job *t)
{
    t->lay = md_calloc(t->img->n_parts, sizeof(*t->lay));
    if (!t->lay)
        return md_error(t->img->ctx, -ENOMEM, "out of memory");
    return compute_layout(t->img, t->gpt, t->first, t->last, t->lay);
}

/* The disk identifier: the given one, one derived from the seed, or none. */
static int table_disk_id(struct table_job *t)
{
    md_image *img = t->img;
    uint32_t id;
    int r;

    if (t->o.disk_id) {
        if (t->gpt ? !is_guid(t->o.disk_id) : !parse_dos_id(t->o.disk_id, &id))
            return md_error(img->ctx, -EINVAL, "disk id '%s' is not %s", t->o.disk_id,
                            t->gpt ? "a GUID" : "a 32-bit hex number such as 0x1234abcd");
        if (t->gpt)
            snprintf(t->disk_id, sizeof(t->disk_id), "%s", t->o.disk_id);
        else
            snprintf(t->disk_id, sizeof(t->disk_id), "0x%08x", id);
    } else if (t->seeded) {
        if (t->gpt) {
            derive_guid(t->seed, 1, 0, t->disk_id);
        } else {
            uint8_t u[16];
            derive_bytes(t->seed, 2, 0, u);
            id = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
            if (id == 0)
                id = 1;
            snprintf(t->disk_id, sizeof(t->disk_id), "0x%08x", id);
        }
    }
    if (!t->disk_id[0])
        return 0;
    r = fdisk_set_disklabel_id_from_string(t->cxt, t->disk_id);
    if (r < 0)
        return md_error(img->ctx, fdisk_err(r), "%s: cannot set disk id %s", img->path, t->disk_id);
    return 0;
}

/* libfdisk's description of queued partition @i (takes @pt); NULL: no memory. */
static struct fdisk_partition *table_partition(struct table_job *t, size_t i,
                                               struct fdisk_parttype *pt)
{
    const struct pending_part *p = &t->img->parts[i];
    struct fdisk_partition *pa = fdisk_new_partition();
    char guid[40];

    if (!pa) {
        fdisk_unref_parttype(pt);
        return NULL;
    }
    fdisk_partition_set_partno(pa, i);
    fdisk_partition_set_start(pa, t->lay[i].start);
    fdisk_partition_set_size(pa, t->lay[i].nsec);
    fdisk_partition_size_explicit(pa, 1);
    fdisk_partition_set_type(pa, pt);
    fdisk_unref_parttype(pt);
    if (t->gpt) {
        if (p->name)
            fdisk_partition_set_name(pa, p->name);
        if (p->uuid) {
            fdisk_partition_set_uuid(pa, p->uuid);
        } else if (t->seeded) {
            derive_guid(t->seed, 3, (uint32_t)i, guid);
            fdisk_partition_set_uuid(pa, guid);
        }
    }
    return pa;
}

/* Queued partition @i into the label, with its boot flag. */
static int table_add_partition(struct table_job *t, size_t i)
{
    md_image *img = t->img;
    const struct pending_part *p = &img->parts[i];
    struct fdisk_parttype *pt = NULL;
    struct fdisk_partition *pa;
    int r;

    r = parse_type(img, t->lb, t->gpt, p->type, i + 1, &pt);
    if (r < 0)
        return r;
    if (!t->gpt && (p->name || p->uuid)) {
        fdisk_unref_parttype(pt);
        return md_error(img->ctx, -EINVAL, "partition %zu: partition %s need a GPT table", i + 1,
                        p->name ? "names" : "GUIDs");
    }
    pa = table_partition(t, i, pt);
    if (!pa)
        return md_error(img->ctx, -ENOMEM, "out of memory");
    r = fdisk_add_partition(t->cxt, pa, NULL);
    fdisk_unref_partition(pa);
    if (r < 0)
        return md_error(img->ctx, fdisk_err(r), "%s: libfdisk refused partition %zu%s%s", img->path,
                        i + 1, img->fdisk_msg[0] ? ": " : "", img->fdisk_msg);
    if (p->flags & MD_PART_BOOTABLE) {
        if (t->gpt)
            r = fdisk_gpt_set_partition_attrs(t->cxt, i, GPT_ATTR_LEGACY_BOOT);
        else
            r = fdisk_toggle_partition_flag(t->cxt, i, DOS_FLAG_ACTIVE);
        if (r < 0)
            return md_error(img->ctx, fdisk_err(r), "%s: cannot mark partition %zu bootable",
                            img->path, i + 1);
    }
    return 0;
}

static int table_add_partitions(struct table_job *t)
{
    size_t i;
    int r;

    for (i = 0; i < t->img->n_parts; i++) {
        r = table_add_partition(t, i);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Check libfdisk placed everything where we computed it. */
static int table_verify(struct table_job *t)
{
    size_t i;

    for (i = 0; i < t->img->n_parts; i++) {
        struct fdisk_partition *pa = NULL;
        if (fdisk_get_partition(t->cxt, i, &pa) < 0 || fdisk_partition_get_start(pa) != t->lay[i].start ||
            fdisk_partition_get_size(pa) != t->lay[i].nsec) {
            fdisk_unref_partition(pa);
            return md_error(t->img->ctx, -EIO, "%s: libfdisk moved partition %zu", t->img->path, i + 1);
        }
        fdisk_unref_partition(pa);
    }
    return 0;
}

static int table_write(struct table_job *t)
{
    md_image *img = t->img;
    int r = fdisk_write_disklabel(t->cxt);

    if (r < 0)
        return md_error_errno(img->ctx, fdisk_err(r), "%s: writing the partition table", img->path);
    md_dbg(img->ctx, "%s: wrote %s table with %zu partitions", img->path, t->gpt ? "GPT" : "MBR",
           img->n_parts);
    return 0;
}

MD_API int md_image_write_table(md_image *img, const md_table_opts *opts)
{
    struct table_job t;
    int r;

    if (!img)
        return -EINVAL;
    memset(&t, 0, sizeof(t));
    r = table_check(&t, img, opts);
    if (r >= 0)
        r = fdisk_open(img, &t.cxt);
    if (r < 0)
        return r; /* the partitions stay queued */
    r = table_create(&t);
    if (r >= 0)
        r = table_layout(&t);
    if (r >= 0)
        r = table_disk_id(&t);
    if (r >= 0)
        r = table_add_partitions(&t);
    if (r >= 0)
        r = table_verify(&t);
    if (r >= 0)
        r = table_write(&t);
    free(t.lay);
    fdisk_close(t.cxt);
    clear_pending(img);
    return r;
}

/* Before the table is changed in place: the table as md_image_check_table()
 * wants it for writing (a read-only image is refused later, by fdisk_open()). */
static int check_whole_table(md_image *img)
{
    blkid_probe pr;
    blkid_partlist ls;
    int r;

    if (img->rdonly)
        return 0;
    r = md_image_blkid_parts(img, &pr, &ls);
    if (r < 0)
        return r;
    r = ls ? md_image_check_table(img, ls, 0, true) : 0;
    blkid_free_probe(pr);
    return r;
}

MD_API int md_image_set_bootable(md_image *img, uint32_t partno)
{
    struct fdisk_context *cxt = NULL;
    size_t i, n;
    int r;

    if (!img)
        return -EINVAL;
    r = check_whole_table(img);
    if (r < 0)
        return r;
    r = fdisk_open(img, &cxt);
    if (r < 0)
        return r;
    if (!fdisk_has_label(cxt) || !(fdisk_is_label(cxt, DOS) || fdisk_is_label(cxt, GPT))) {
        r = md_error(img->ctx, -EINVAL, "%s: no MBR or GPT partition table", img->path);
        goto out;
    }
    if (partno == 0 || !fdisk_is_partition_used(cxt, partno - 1)) {
        r = md_error(img->ctx, -ENOENT, "%s: no partition %u", img->path, partno);
        goto out;
    }
    if (fdisk_is_label(cxt, GPT)) {
        uint64_t attrs = 0;
        r = fdisk_gpt_get_partition_attrs(cxt, partno - 1, &attrs);
        if (r == 0 && !(attrs & GPT_ATTR_LEGACY_BOOT))
            r = fdisk_gpt_set_partition_attrs(cxt, partno - 1, attrs | GPT_ATTR_LEGACY_BOOT);
    } else {
        n = fdisk_get_npartitions(cxt);
        for (i = 0; i < n && i < 4 && r >= 0; i++) {
            struct fdisk_partition *pa = NULL;
            int boot;
            if (!fdisk_is_partition_used(cxt, i))
                continue;
            r = fdisk_get_partition(cxt, i, &pa);
            if (r < 0)
                break;
            boot = fdisk_partition_is_bootable(pa);
            fdisk_unref_partition(pa);
            if ((i == partno - 1) != (boot != 0))
                r = fdisk_toggle_partition_flag(cxt, i, DOS_FLAG_ACTIVE);
        }
    }
    if (r < 0) {
        r = md_error(img->ctx, fdisk_err(r), "%s: cannot mark partition %u bootable", img->path, partno);
        goto out;
    }
    r = fdisk_write_disklabel(cxt);
    if (r < 0)
        r = md_error_errno(img->ctx, fdisk_err(r), "%s: writing the partition table", img->path);
out:
    fdisk_close(cxt);
    return r < 0 ? r : 0;
}

MD_API int md_image_resize(md_image *img, uint64_t new_size)
{
    struct fdisk_context *cxt = NULL;
    blkid_probe pr;
    blkid_partlist ls;
    bool is_gpt;
    int r;

    if (!img)
        return -EINVAL;
    if (img->rdonly)
        return md_error(img->ctx, -EROFS, "%s: image opened read-only", img->path);
    if (new_size % SECTOR || new_size > (uint64_t)INT64_MAX)
        return md_error(img->ctx, -EINVAL, "%s: new size %" PRIu64 " is not a multiple of 512 bytes",
                        img->path, new_size);
    if (new_size < img->size)
        return md_error(img->ctx, -EINVAL, "%s: cannot shrink the image from %" PRIu64 " to %" PRIu64 " bytes",
                        img->path, img->size, new_size);
    if (new_size == img->size)
        return 0;
    r = md_image_blkid_parts(img, &pr, &ls);
    if (r < 0)
        return r;
    is_gpt = ls && !strcmp(blkid_parttable_get_type(blkid_partlist_get_table(ls)), "gpt");
    blkid_free_probe(pr);
    if (ftruncate(img->fd, (off_t)new_size) < 0)
        return md_error_errno(img->ctx, -errno, "%s: cannot grow to %" PRIu64 " bytes", img->path, new_size);
    img->size = new_size;
    if (!is_gpt)
        return 0;
    /* libfdisk notices the backup header is not at the end, moves it (and
     * the last usable LBA) when it writes the table. */
    r = fdisk_open(img, &cxt);
    if (r < 0)
        return r;
    if (!fdisk_is_label(cxt, GPT)) {
        fdisk_close(cxt);
        return md_error(img->ctx, -EIO, "%s: libfdisk does not see the GPT after growing", img->path);
    }
    fdisk_label_set_changed(fdisk_get_label(cxt, NULL), 1);
    r = fdisk_write_disklabel(cxt);
    fdisk_close(cxt);
    if (r < 0)
        return md_error_errno(img->ctx, fdisk_err(r), "%s: rewriting the GPT after growing", img->path);
    return 0;
}

