/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * UEFI boot for md_distro_build(): the unified kernel image of the
 * system's kernel, initramfs and command line, and the EFI System
 * partition that holds it as \EFI\BOOT\BOOTX64.EFI.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "md-internal.h"
#include "md-distro-internal.h"
#include "md-fat-internal.h"

#define MIB (1024ull * 1024ull)
#define COPY_CHUNK (1u << 20)

/* The removable-media boot path of x86-64 firmware (UEFI spec, 3.5.1.1):
 * booted without a boot entry in the variable store. */
#define ESP_BOOT_PATH "EFI/BOOT/BOOTX64.EFI"

void md_esp_init(struct md_esp *e)
{
    memset(e, 0, sizeof(*e));
    e->uki.fd = e->kernel.fd = e->initrd.fd = e->osrel.fd = -1;
}

void md_esp_free(struct md_esp *e)
{
    md_tmpfile_discard(&e->uki);
    md_tmpfile_discard(&e->kernel);
    md_tmpfile_discard(&e->initrd);
    md_tmpfile_discard(&e->osrel);
}

/* An unnamed temporary file next to @output (never published), for a file
 * the UKI is made of or the UKI itself. */
static int scratch(md_ctx *ctx, const char *output, const char *what, md_tmpfile *t)
{
    char *p = md_asprintf("%s.%s", output, what);
    int r;

    if (!p)
        return md_error(ctx, -ENOMEM, "out of memory");
    r = md_tmpfile_open(ctx, t, p, true);
    free(p);
    return r;
}

int md_esp_copy_out(md_tree *tree, const char *path, const char *output, const char *what,
                    md_tmpfile *t)
{
    md_ctx *ctx = tree->ctx;
    const struct md_entry *e = md_tree_lookup(tree, path);
    struct md_data d;
    uint64_t pos;
    char *buf;
    int r;

    if (!e || !S_ISREG(md_entry_data(e)->mode))
        return md_error(ctx, -ENOENT, "/%s: not a regular file in the root filesystem", path);
    r = md_data_open(tree, ctx, e, &d);
    if (r < 0)
        return r;
    buf = malloc(COPY_CHUNK);
    if (!buf) {
        md_data_close(&d);
        return md_error(ctx, -ENOMEM, "out of memory");
    }
    r = scratch(ctx, output, what, t);
    for (pos = 0; r >= 0 && pos < d.size; pos += COPY_CHUNK) {
        size_t n = d.size - pos < COPY_CHUNK ? (size_t)(d.size - pos) : COPY_CHUNK;

        r = md_data_read(&d, buf, n, pos);
        if (r < 0)
            r = md_error_errno(ctx, r, "/%s: read", path);
        else if ((r = md_write_full(t->fd, buf, n)) < 0)
            r = md_error_errno(ctx, r, "%s: write", t->tmp_path);
    }
    free(buf);
    md_data_close(&d);
    return r < 0 ? r : 0;
}

int md_esp_make_uki(md_ctx *ctx, struct md_esp *e, const struct md_esp_uki *u)
{
    md_uki_opts uo = MD_UKI_OPTS_INIT;
    const char *initrds[2] = { u->initrd, NULL };
    int r;

    uo.stub = u->stub;
    uo.kernel = u->kernel;
    uo.initrds = u->initrd ? initrds : NULL;
    uo.cmdline = u->cmdline;
    uo.os_release = u->os_release;
    uo.os_release_text = u->os_release ? NULL : u->os_release_text;
    r = scratch(ctx, u->output, "uki", &e->uki);
    if (r < 0)
        return r;
    r = md_uki_write_fd(ctx, e->uki.fd, e->uki.tmp_path, &uo);
    if (r < 0) {
        md_error_prefix(ctx, "the unified kernel image for UEFI");
        return r;
    }
    return 0;
}

/* The ESP's FAT: FAT16 unless a size was given (then the type its size
 * calls for, as mkfs.fat picks it): every UEFI firmware reads FAT16, and
 * FAT12 is for floppies. */
static void esp_format_opts(md_fat_format_opts *fo, uint64_t given)
{
    md_fat_format_opts_init(fo);
    fo->label = "ESP";
    fo->fat_type = given ? MD_VFAT : MD_FAT16;
}

int md_esp_add(md_disk *disk, struct md_esp *e, uint32_t partno, uint64_t given)
{
    md_ctx *ctx = md_disk_ctx(disk);
    md_fat_format_opts fo;
    md_tree *esp;
    md_attr a = MD_ATTR_INIT;
    struct stat st;
    uint64_t size = given, need;
    int r;

    if (given % MIB)
        return md_error(ctx, -EINVAL, "ESP size %llu bytes: not a multiple of 1 MiB",
                        (unsigned long long)given);
    esp_format_opts(&fo, given);
    r = md_disk_add_fat(disk, partno, &fo, &esp);
    if (r < 0)
        return r;
    a.mode = 0644;
    r = md_tree_add_file(esp, ESP_BOOT_PATH, e->uki.tmp_path, &a);
    if (r < 0)
        return r;
    /* the UKI and 1 MiB to spare (another UKI can be written next to it
     * only in an ESP given a size) */
    r = md_fat_plan_size(ctx, esp, &fo, MIB, &need);
    if (r < 0)
        return r;
    if (!given)
        size = need;
    else if (given < need) {
        if (fstat(e->uki.fd, &st) < 0)
            st.st_size = 0;
        return md_error(ctx, -ENOSPC, "an ESP of %llu MiB is too small for the unified kernel image "
                        "(%.1f MiB): it needs %llu MiB (give --esp-size %lluM, or none to have it "
                        "computed)", (unsigned long long)(given / MIB),
                        (double)st.st_size / (double)MIB, (unsigned long long)(need / MIB),
                        (unsigned long long)(need / MIB));
    }
    e->size = size;
    return 0;
}
