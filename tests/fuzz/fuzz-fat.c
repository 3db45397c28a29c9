/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* FAT read-back on image bytes, the way `mdimg disk ls` and `disk cp
 * IMG:/f HOST` reach it: the input is written as an image file and opened
 * read-only; md_image_probe() and md_image_default_fat_partition(), then
 * md_fat_open(MD_FAT_RDONLY) on the whole image, partitions 1 and 2 and the
 * default FAT partition, md_fat_get_info(), and a bounded walk: md_fat_list()
 * of every directory (to depth 8), md_fat_stat_path() of every entry listed,
 * and for the first files md_fat_read_file(), md_fat_extract_file() and
 * md_fat_extract_fd().
 *
 * The input is the image's first bytes: the file is extended with a hole to
 * FUZZ_FAT_IMAGE (64 MiB), so that a seed need not hold the zeros at the end
 * of an image (a FAT32 filesystem is 33 MiB at least, of which a few hundred
 * KiB are not zeros).
 *
 * Checked beyond "no crash, no leak, no UB": every error leaves a message on
 * the context; every name listed is one path component (not empty, "." or
 * "..", no '/'); md_fat_get_info() agrees with itself (cluster size, free
 * clusters, the size inside the partition); a file read has the size its
 * entry says, and md_fat_extract_file() / md_fat_extract_fd() write the same
 * bytes as md_fat_read_file() returns; a failed md_fat_extract_file() leaves
 * no file (nor a temporary one) behind; the image file is unchanged. */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz-util.h"

#define FUZZ_FAT_IMAGE (64u << 20)
#define FUZZ_MAX_DEPTH 8
#define FUZZ_MAX_ENTRIES 512 /* stat'ed per input */
#define FUZZ_MAX_READS 6     /* files read per input */

struct walk {
    md_fat *fat;
    md_ctx *ctx;
    const char *dir;     /* the directory being listed ("" for the root) */
    int depth;
    int *entries, *reads;
};

/* r < 0 must come with a message: clear it before each call. */
static void want_msg(md_ctx *ctx, int r, const char *what)
{
    if (r < 0)
        fuzz_assert(*md_ctx_errmsg(ctx), "%s: error %d without a message", what, r);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    struct stat st;
    uint8_t *b;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) < 0)
        abort();
    b = malloc((size_t)st.st_size + 1);
    if (!b)
        abort();
    n = read(fd, b, (size_t)st.st_size + 1);
    fuzz_assert(n == st.st_size, "%s: read %zd of %lld bytes", path, n, (long long)st.st_size);
    close(fd);
    *len = (size_t)n;
    return b;
}

/* Nothing in the fuzz directory but the image: no output or temporary file
 * left by an extraction. */
static void check_dir_clean(void)
{
    DIR *d = opendir(fuzz_path(2, "."));
    struct dirent *e;

    if (!d)
        abort();
    while ((e = readdir(d)))
        fuzz_assert(!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
                        !strcmp(e->d_name, "in.img"),
                    "left behind in the output directory: %s", e->d_name);
    closedir(d);
}

static void read_one(struct walk *w, const char *path, const md_fat_stat *st)
{
    const char *out = fuzz_path(1, "out");
    void *buf = NULL;
    size_t len = 0, len2;
    uint8_t *back;
    int r, fd;

    md_ctx_clear_error(w->ctx);
    r = md_fat_read_file(w->fat, path, &buf, &len);
    want_msg(w->ctx, r, "md_fat_read_file");
    if (r == 0) {
        /* @st is md_fat_stat_path() of the same path (one of two entries
         * whose names differ only in case is the one both find) */
        fuzz_assert(((char *)buf)[len] == '\0', "md_fat_read_file: no terminator");
        fuzz_assert(st && len == st->size, "%s: md_fat_read_file read %zu bytes, "
                    "md_fat_stat_path says %llu", path, len,
                    st ? (unsigned long long)st->size : 0ULL);
    }

    md_ctx_clear_error(w->ctx);
    r = md_fat_extract_file(w->fat, path, out);
    want_msg(w->ctx, r, "md_fat_extract_file");
    if (r == 0) {
        back = slurp(out, &len2);
        fuzz_assert(buf && len2 == len && memcmp(back, buf, len) == 0,
                    "md_fat_extract_file wrote %zu bytes, md_fat_read_file read %zu (or others)",
                    len2, len);
        free(back);
        unlink(out);
    } else {
        fuzz_assert(access(out, F_OK) != 0, "md_fat_extract_file failed (%d) and left %s", r, out);
    }
    check_dir_clean();

    fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    md_ctx_clear_error(w->ctx);
    r = md_fat_extract_fd(w->fat, path, fd);
    want_msg(w->ctx, r, "md_fat_extract_fd");
    close(fd);
    if (r == 0) {
        back = slurp(out, &len2);
        fuzz_assert(buf && len2 == len && memcmp(back, buf, len) == 0,
                    "md_fat_extract_fd wrote %zu bytes, md_fat_read_file read %zu (or others)",
                    len2, len);
        free(back);
    }
    unlink(out);
    free(buf);
}

static int walk_cb(void *userdata, const char *name, const md_fat_stat *st);

static void walk_dir(md_fat *fat, md_ctx *ctx, const char *dir, int depth, int *entries, int *reads)
{
    struct walk w = { fat, ctx, dir, depth, entries, reads };
    int r;

    md_ctx_clear_error(ctx);
    r = md_fat_list(fat, *dir ? dir : "/", walk_cb, &w);
    want_msg(ctx, r, "md_fat_list");
}

static int walk_cb(void *userdata, const char *name, const md_fat_stat *st)
{
    struct walk *w = userdata;
    md_fat_stat st2 = MD_FAT_STAT_INIT;
    char path[4096];
    int r;

    /* one path component: joined to the directory it names the entry */
    fuzz_assert(*name && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/'),
                "md_fat_list: the name '%s' in %s is not one path component", name,
                *w->dir ? w->dir : "/");
    fuzz_assert(st->version == MD_FAT_STAT_VERSION, "md_fat_list: stat version %u", st->version);
    fuzz_assert(S_ISDIR(st->mode) || S_ISREG(st->mode), "md_fat_list: mode 0%o", st->mode);
    if (++*w->entries > FUZZ_MAX_ENTRIES)
        return 1;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", w->dir, name) >= sizeof(path))
        return 0;
    md_ctx_clear_error(w->ctx);
    r = md_fat_stat_path(w->fat, path, &st2);
    want_msg(w->ctx, r, "md_fat_stat_path");
    if (S_ISDIR(st->mode)) {
        if (w->depth < FUZZ_MAX_DEPTH)
            walk_dir(w->fat, w->ctx, path, w->depth + 1, w->entries, w->reads);
    } else if (*w->reads < FUZZ_MAX_READS) {
        ++*w->reads;
        read_one(w, path, r == 0 ? &st2 : NULL);
    }
    return 0;
}

static void read_fat(md_image *img, md_ctx *ctx, uint32_t partno, uint64_t file_size)
{
    md_fat_info info = MD_FAT_INFO_INIT;
    md_fat_stat st = MD_FAT_STAT_INIT;
    md_fat *fat = NULL;
    void *buf = NULL;
    size_t len;
    int r, entries = 0, reads = 0;

    md_ctx_clear_error(ctx);
    r = md_fat_open(img, partno, MD_FAT_RDONLY, &fat);
    want_msg(ctx, r, "md_fat_open");
    if (r < 0) {
        fuzz_assert(!fat, "md_fat_open failed (%d) and returned a handle", r);
        return;
    }
    md_ctx_clear_error(ctx);
    r = md_fat_get_info(fat, &info);
    want_msg(ctx, r, "md_fat_get_info");
    if (r == 0) {
        fuzz_assert(info.fat_type == 12 || info.fat_type == 16 || info.fat_type == 32,
                    "md_fat_get_info: type %d", info.fat_type);
        fuzz_assert(info.cluster_size % info.sector_size == 0 && info.cluster_size >= 512,
                    "md_fat_get_info: clusters of %u bytes, sectors of %u", info.cluster_size,
                    info.sector_size);
        fuzz_assert(info.free_clusters <= info.clusters && info.clusters > 0,
                    "md_fat_get_info: %u free of %u clusters", info.free_clusters, info.clusters);
        fuzz_assert(info.size <= file_size && (uint64_t)info.clusters * info.cluster_size <= info.size,
                    "md_fat_get_info: %llu bytes of %u clusters of %u in a %llu-byte file",
                    (unsigned long long)info.size, info.clusters, info.cluster_size,
                    (unsigned long long)file_size);
        fuzz_assert(strlen(info.label) <= 11 && strlen(info.oem_name) <= 8, "md_fat_get_info: label");
    }
    md_ctx_clear_error(ctx);
    r = md_fat_stat_path(fat, "/", &st);
    want_msg(ctx, r, "md_fat_stat_path(/)");
    fuzz_assert(r < 0 || S_ISDIR(st.mode), "md_fat_stat_path(/): mode 0%o", st.mode);
    walk_dir(fat, ctx, "", 0, &entries, &reads);
    /* what `disk cp` and `disk ls` are asked for by name, wherever it is */
    md_ctx_clear_error(ctx);
    r = md_fat_read_file(fat, "/EFI/BOOT/BOOTX64.EFI", &buf, &len);
    want_msg(ctx, r, "md_fat_read_file(BOOTX64.EFI)");
    free(buf);
    md_ctx_clear_error(ctx);
    r = md_fat_close(fat);
    fuzz_assert(r == 0, "md_fat_close on a read-only filesystem: %d", r);
}

/* The file must hold the input still, and zeros (a hole) after it. */
static void check_unchanged(const char *path, const uint8_t *data, size_t size)
{
    uint8_t *back = malloc(size + 1);
    struct stat st;
    off_t hole;
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (!back || fd < 0 || fstat(fd, &st) < 0)
        abort();
    fuzz_assert(st.st_size == (off_t)(size > FUZZ_FAT_IMAGE ? size : FUZZ_FAT_IMAGE),
                "the image opened read-only is %lld bytes now", (long long)st.st_size);
    n = pread(fd, back, size, 0);
    fuzz_assert(n == (ssize_t)size && memcmp(back, data, size) == 0,
                "the image opened read-only changed (%zd bytes read back of %zu)", n, size);
    /* past the input's last page, nothing but the hole ftruncate() made */
    hole = (off_t)((size + 4095) / 4096 * 4096);
    if (hole < st.st_size) {
        off_t d = lseek(fd, hole, SEEK_DATA);
        fuzz_assert(d < 0 || d >= st.st_size, "the image opened read-only gained data at %lld",
                    (long long)d);
    }
    close(fd);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(0, "in.img");
    md_ctx *ctx = fuzz_ctx();
    md_image *img = NULL;
    md_probe *probe = NULL;
    uint64_t file_size = size > FUZZ_FAT_IMAGE ? size : FUZZ_FAT_IMAGE;
    uint32_t part = 0;
    int r;

    fuzz_write_file(path, data, size);
    if (size < FUZZ_FAT_IMAGE && truncate(path, FUZZ_FAT_IMAGE) < 0) {
        perror(path);
        abort();
    }
    r = md_image_open(ctx, path, MD_IMAGE_RDONLY, &img);
    want_msg(ctx, r, "md_image_open");
    if (r < 0)
        goto out;
    md_ctx_clear_error(ctx);
    r = md_image_probe(img, &probe);
    want_msg(ctx, r, "md_image_probe");
    md_probe_free(probe);
    read_fat(img, ctx, 0, file_size);
    read_fat(img, ctx, 1, file_size);
    read_fat(img, ctx, 2, file_size);
    md_ctx_clear_error(ctx);
    r = md_image_default_fat_partition(img, &part);
    want_msg(ctx, r, "md_image_default_fat_partition");
    if (r == 0 && part > 2)
        read_fat(img, ctx, part, file_size);
out:
    md_image_free(img);
    md_ctx_free(ctx);
    check_unchanged(path, data, size);
    return 0;
}
