/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading images made by others: the input is written as an image file and
 * opened read-only; md_image_probe() (libblkid), md_probe_to_json(),
 * md_image_partition_range() for every partition and md_ext_open() on the
 * whole image and partition 1, then md_ext_list("/") and, for the first
 * entries listed, md_ext_stat_path(), md_ext_read_file() and
 * md_ext_readlink().  Only failing cleanly is asked of it; the image file
 * must come out unchanged (it is opened read-only). */
#include <sys/stat.h>

#include "fuzz-util.h"

#define FUZZ_MAX_READS 4

struct listing {
    md_ext *fs;
    int reads;
};

static int count_cb(void *userdata, const char *name, const md_ext_stat *st)
{
    (void)name;
    (void)st;
    ++*(int *)userdata;
    return 0;
}

static int list_cb(void *userdata, const char *name, const md_ext_stat *st)
{
    struct listing *l = userdata;
    md_ext_stat st2 = MD_EXT_STAT_INIT;
    char path[4096 + 2];
    void *buf = NULL;
    char *target = NULL;
    size_t len = 0;

    if (l->reads >= FUZZ_MAX_READS)
        return 0;
    l->reads++;
    snprintf(path, sizeof(path), "/%s", name);
    (void)md_ext_stat_path(l->fs, path, &st2);
    (void)md_ext_exists(l->fs, path);
    if (S_ISREG(st->mode) && st->size <= (64u << 20)) {
        if (md_ext_read_file(l->fs, path, &buf, &len) == 0)
            fuzz_assert(((char *)buf)[len] == '\0', "md_ext_read_file: no terminator");
        free(buf);
    } else if (S_ISLNK(st->mode)) {
        if (md_ext_readlink(l->fs, path, &target) == 0)
            fuzz_assert(target, "md_ext_readlink: 0 and no target");
        free(target);
    } else if (S_ISDIR(st->mode)) {
        int n = 0;
        (void)md_ext_list(l->fs, path, count_cb, &n);
    }
    return 0;
}

/* The file must hold the input still: everything above was read-only. */
static void check_unchanged(const char *path, const uint8_t *data, size_t size)
{
    uint8_t *back = malloc(size + 1);
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (!back || fd < 0)
        abort();
    n = read(fd, back, size + 1);
    fuzz_assert(n == (ssize_t)size && memcmp(back, data, size) == 0,
                "the image opened read-only changed (%zd bytes now, %zu before)", n, size);
    close(fd);
    free(back);
}

static void read_ext(md_image *img, uint32_t partno)
{
    struct listing l = { NULL, 0 };
    int n = 0;

    if (md_ext_open(img, partno, MD_EXT_RDONLY, &l.fs) < 0)
        return;
    (void)md_ext_list(l.fs, "/", list_cb, &l);
    (void)md_ext_list(l.fs, "/lost+found", count_cb, &n);
    (void)md_ext_close(l.fs); /* read-only: writes nothing */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(0, "in.img");
    md_ctx *ctx = fuzz_ctx();
    md_image *img = NULL;
    md_probe *probe = NULL;
    char *json = NULL;
    uint64_t off, len;
    uint32_t i;

    fuzz_write_file(path, data, size);
    if (md_image_open(ctx, path, MD_IMAGE_RDONLY, &img) < 0)
        goto out;
    if (md_image_probe(img, &probe) == 0) {
        if (md_probe_to_json(probe, &json) == 0)
            free(json);
        for (i = 0; i <= md_probe_count(probe) && i < 130; i++) {
            if (md_image_partition_range(img, i, &off, &len) == 0)
                fuzz_assert(off + len >= off, "partition %u: range wraps", i);
            (void)md_probe_fs_type(probe, i);
        }
        md_probe_free(probe);
    }
    read_ext(img, 0);
    read_ext(img, 1);
out:
    md_image_free(img);
    md_ctx_free(ctx);
    check_unchanged(path, data, size);
    return 0;
}
