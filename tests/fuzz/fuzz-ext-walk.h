/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The independent reader of the archive targets: libext2fs itself opens a
 * filesystem md_disk_write() made and walks it, and, with MD_FUZZ_E2FSCK=1
 * in the environment (slow; for local runs), e2fsck -fn checks it. */
#ifndef MD_FUZZ_EXT_WALK_H
#define MD_FUZZ_EXT_WALK_H

#include <ext2fs/ext2fs.h>
#include <sys/wait.h>

#include "fuzz-util.h"

struct fuzz_walk {
    ext2_filsys fs;
    size_t entries;
    int depth;
    errcode_t err;
};

static int fuzz_walk_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset,
                        int blocksize, char *buf, void *priv);

static errcode_t fuzz_walk_dir(struct fuzz_walk *w, ext2_ino_t ino)
{
    errcode_t err;

    if (++w->depth > 64) /* deeper than any seed: a directory loop */
        return EXT2_ET_DIR_CORRUPTED;
    err = ext2fs_dir_iterate2(w->fs, ino, 0, NULL, fuzz_walk_cb, w);
    w->depth--;
    return err ? err : w->err;
}

static int fuzz_walk_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset,
                        int blocksize, char *buf, void *priv)
{
    struct fuzz_walk *w = priv;
    int len = ext2fs_dirent_name_len(de);
    struct ext2_inode inode;
    errcode_t err;

    (void)dir;
    (void)entry;
    (void)offset;
    (void)blocksize;
    (void)buf;
    if ((len == 1 && de->name[0] == '.') || (len == 2 && de->name[0] == '.' && de->name[1] == '.'))
        return 0;
    w->entries++;
    err = ext2fs_read_inode(w->fs, de->inode, &inode);
    if (!err && LINUX_S_ISDIR(inode.i_mode))
        err = fuzz_walk_dir(w, de->inode);
    if (err) {
        w->err = err;
        return DIRENT_ABORT;
    }
    return 0;
}

/* Open the filesystem at byte @offset of image @path with libext2fs, read
 * its bitmaps and count the entries below the root (without "." and "..").
 * Aborts with a message when libext2fs cannot. */
static inline size_t fuzz_ext_walk(const char *path, uint64_t offset)
{
    char name[4096 + 64];
    struct fuzz_walk w = { 0 };
    errcode_t err;

    snprintf(name, sizeof(name), "%s?offset=%llu", path, (unsigned long long)offset);
    err = ext2fs_open2(name, NULL, 0, 0, 0, unix_io_manager, &w.fs);
    fuzz_assert(!err, "libext2fs cannot open what md_disk_write made: %s", error_message(err));
    err = ext2fs_read_bitmaps(w.fs);
    fuzz_assert(!err, "libext2fs cannot read the bitmaps: %s", error_message(err));
    err = fuzz_walk_dir(&w, EXT2_ROOT_INO);
    fuzz_assert(!err, "libext2fs cannot list the filesystem: %s", error_message(err));
    ext2fs_close_free(&w.fs);
    return w.entries;
}

/* With MD_FUZZ_E2FSCK=1: e2fsck -fn must find the filesystem clean. */
static inline void fuzz_e2fsck(const char *path, uint64_t offset)
{
    const char *e = getenv("MD_FUZZ_E2FSCK");
    char cmd[8192];
    int st;

    if (!e || strcmp(e, "1") != 0)
        return;
    snprintf(cmd, sizeof(cmd), "e2fsck -fn '%s?offset=%llu' >/dev/null 2>&1", path,
             (unsigned long long)offset);
    st = system(cmd);
    fuzz_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "e2fsck -fn %s?offset=%llu: status %d", path, (unsigned long long)offset, st);
}

#endif
