/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Source: an existing archive (cpio newc/odc/bin, tar/pax/ustar, zip, ...,
 * with any compression filter libarchive knows, including the legacy lz4
 * frame the kernel uses), read with libarchive into the entry model.
 * Contents are copied into memory.
 *
 * Hard links: libarchive reports every later name of a newc link group as a
 * hard link to the first name it saw; the entry that carries the data (the
 * last one in newc) is a hard link with a non-zero size.  So a hard link
 * entry with data replaces the data of its group.
 *
 * Concatenated archives (as the kernel reads them) are followed after an
 * uncompressed cpio archive; a compressed one is taken to be the last.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "md-internal.h"

#define READ_BLOCK (64 * 1024)

/* Read the current entry's data into a malloc'ed buffer. */
static int read_data(md_ctx *ctx, struct archive *a, struct archive_entry *ae, const char *apath,
                     void **ret, uint64_t *ret_size)
{
    size_t cap, len = 0;
    char *buf;

    *ret = NULL;
    *ret_size = 0;
    if (archive_entry_size_is_set(ae)) {
        la_int64_t s = archive_entry_size(ae);
        if (s < 0 || (uint64_t)s > SIZE_MAX - 1)
            return md_error(ctx, -EINVAL, "%s: entry '%s': bad size %lld", apath,
                            archive_entry_pathname(ae), (long long)s);
        cap = (size_t)s + 1;
    } else {
        cap = READ_BLOCK;
    }
    buf = malloc(cap);
    if (!buf)
        return md_error(ctx, -ENOMEM, "%s: entry '%s': out of memory", apath,
                        archive_entry_pathname(ae));
    for (;;) {
        la_ssize_t n;

        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return md_error(ctx, -ENOMEM, "%s: entry '%s': out of memory", apath,
                                archive_entry_pathname(ae));
            }
            buf = nb;
            cap *= 2;
        }
        n = archive_read_data(a, buf + len, cap - len);
        if (n < 0) {
            int r = md_error(ctx, -EINVAL, "%s: entry '%s': %s", apath, archive_entry_pathname(ae),
                             archive_error_string(a) ? archive_error_string(a) : "read error");
            free(buf);
            return r;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len == 0) {
        free(buf);
        buf = NULL;
    }
    *ret = buf;
    *ret_size = len;
    return 0;
}

/* Give regular entry @e the contents @buf (taken). */
static void set_data(struct md_entry *e, void *buf, uint64_t size)
{
    free(e->host_path);
    e->host_path = NULL;
    free(e->buf);
    e->buf = buf;
    e->size = size;
    e->src = size ? MD_SRC_BUF : MD_SRC_NONE;
}

static int copy_xattrs(md_tree *tree, struct archive_entry *ae, const char *path)
{
    const char *name;
    const void *value;
    size_t size;

    if (archive_entry_xattr_reset(ae) <= 0)
        return 0;
    while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
        int r;
        if (!name || (strncmp(name, "user.", 5) && strncmp(name, "security.", 9) &&
                      strncmp(name, "trusted.", 8)))
            continue; /* e.g. system.posix_acl_*: not representable */
        r = md_tree_set_xattr(tree, path, name, value, size);
        if (r < 0)
            return r;
    }
    return 0;
}

static int add_one(md_tree *tree, struct archive *a, struct archive_entry *ae, const char *apath)
{
    md_ctx *ctx = tree->ctx;
    const char *name = archive_entry_pathname(ae);
    const char *hl = archive_entry_hardlink(ae);
    unsigned type = archive_entry_filetype(ae);
    struct md_entry *e;
    uint32_t fmt = 0, perm = archive_entry_perm(ae) & 07777;
    char *path = NULL;
    void *data = NULL;
    uint64_t size = 0;
    md_attr at;
    la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
    int r;

    if (!name || !*name)
        return md_error(ctx, -EINVAL, "%s: an entry has an empty name", apath);
    r = md_path_normalize(ctx, name, &path);
    if (r < 0) {
        md_error_prefix(ctx, "%s: entry '%s'", apath, name);
        return r;
    }
    if (!*path) {
        /* the archive's root ("." or "/"): the tree's root always exists */
        free(path);
        if (!hl && type == AE_IFDIR)
            return 0;
        return md_error(ctx, -EINVAL, "%s: entry '%s' names the root but is not a directory",
                        apath, name);
    }

    if (hl) {
        struct md_entry *target;

        r = md_tree_add_hardlink(tree, path, hl);
        if (r < 0)
            goto fail;
        /* A link that carries data supplies the group's contents (newc). */
        if (archive_entry_size_is_set(ae) && archive_entry_size(ae) > 0) {
            r = read_data(ctx, a, ae, apath, &data, &size);
            if (r < 0)
                goto out;
            e = md_tree_lookup(tree, path);
            target = e ? (struct md_entry *)md_entry_data(e) : NULL;
            if (target) {
                set_data(target, data, size);
                data = NULL;
            }
        }
        goto out;
    }

    if (uid < 0 || uid > 0xffffffffLL || gid < 0 || gid > 0xffffffffLL) {
        r = md_error(ctx, -EINVAL, "%s: entry '%s': owner %lld:%lld out of range", apath, name,
                     (long long)uid, (long long)gid);
        goto out;
    }
    md_attr_init(&at);
    at.mode = perm;
    at.uid = (uint32_t)uid;
    at.gid = (uint32_t)gid;
    at.mtime = archive_entry_mtime_is_set(ae) ? (int64_t)archive_entry_mtime(ae) : MD_MTIME_DEFAULT;

    switch (type) {
    case AE_IFDIR:
        fmt = S_IFDIR;
        r = md_tree_add_dir(tree, path, &at);
        break;
    case AE_IFREG:
        fmt = S_IFREG;
        r = read_data(ctx, a, ae, apath, &data, &size);
        if (r < 0)
            goto out;
        r = md_tree_add_entry(tree, path, S_IFREG, &at, &e);
        if (r >= 0) {
            set_data(e, data, size);
            data = NULL;
        }
        break;
    case AE_IFLNK: {
        const char *target = archive_entry_symlink(ae);
        fmt = S_IFLNK;
        if (!target || !*target) {
            r = md_error(ctx, -EINVAL, "%s: entry '%s': symlink without a target", apath, name);
            goto out;
        }
        r = md_tree_add_symlink(tree, path, target, &at);
        break;
    }
    case AE_IFCHR:
    case AE_IFBLK:
        fmt = type == AE_IFCHR ? S_IFCHR : S_IFBLK;
        r = md_tree_add_node(tree, path, type == AE_IFCHR ? MD_NODE_CHR : MD_NODE_BLK,
                             (uint32_t)archive_entry_rdevmajor(ae),
                             (uint32_t)archive_entry_rdevminor(ae), &at);
        break;
    case AE_IFIFO:
        fmt = S_IFIFO;
        r = md_tree_add_node(tree, path, MD_NODE_FIFO, 0, 0, &at);
        break;
    case AE_IFSOCK:
        fmt = S_IFSOCK;
        r = md_tree_add_node(tree, path, MD_NODE_SOCK, 0, 0, &at);
        break;
    default:
        r = md_error(ctx, -EINVAL, "%s: entry '%s': unsupported file type 0%o", apath, name, type);
        goto out;
    }
    if (r < 0)
        goto fail;
    /* md_attr's mode 0 means "default"; keep the archive's real bits */
    e = md_tree_lookup(tree, path);
    if (e)
        e->mode = fmt | perm;
    r = copy_xattrs(tree, ae, path);
    if (r < 0)
        goto fail;
    goto out;
fail:
    md_error_prefix(ctx, "%s", apath);
out:
    free(data);
    free(path);
    return r;
}

/* @guessed: the path was given as "a directory or an archive" and nothing of
 * it could be read, so it may well be neither. */
static int bad_archive(md_ctx *ctx, struct archive *a, const char *apath, off_t off, bool guessed)
{
    const char *why = archive_error_string(a) ? archive_error_string(a) : "read error";

    if (guessed)
        return md_error(ctx, -EINVAL, "%s: not a directory, and not an archive libarchive can read: %s",
                        apath, why);
    if (off)
        return md_error(ctx, -EINVAL, "%s: not a readable archive at offset %lld: %s", apath,
                        (long long)off, why);
    return md_error(ctx, -EINVAL, "%s: not a readable archive: %s", apath, why);
}

/*
 * Read the archive that starts at @off in @fd.  Sets *@next to the offset of
 * a following archive when this one is an uncompressed cpio archive with
 * more (non-NUL) bytes after it, else to -1: the kernel accepts such
 * concatenations (e.g. an early-microcode archive in front of the
 * compressed main one), libarchive stops at the first trailer.
 */
static int read_segment(md_tree *tree, int fd, const char *apath, off_t off, off_t *next, bool guessed)
{
    size_t entries = 0;
    md_ctx *ctx = tree->ctx;
    struct archive_entry *ae;
    struct archive *a;
    int r = 0, fmt;

    *next = -1;
    if (lseek(fd, off, SEEK_SET) < 0)
        return md_error_errno(ctx, -errno, "%s: seek", apath);
    a = archive_read_new();
    if (!a)
        return md_error(ctx, -ENOMEM, "out of memory");
    /* Every format except mtree (a text manifest whose entries name host
     * files to read: a plain text file parses as one) and raw. */
    archive_read_support_format_7zip(a);
    archive_read_support_format_ar(a);
    archive_read_support_format_cab(a);
    archive_read_support_format_cpio(a);
    archive_read_support_format_empty(a);
    archive_read_support_format_iso9660(a);
    archive_read_support_format_lha(a);
    archive_read_support_format_rar(a);
    archive_read_support_format_rar5(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_warc(a);
    archive_read_support_format_xar(a);
    archive_read_support_format_zip(a);
    archive_read_support_filter_all(a);
    if (archive_read_open_fd(a, fd, READ_BLOCK) != ARCHIVE_OK) {
        r = bad_archive(ctx, a, apath, off, guessed && off == 0);
        goto out;
    }
    for (;;) {
        int ar = archive_read_next_header(a, &ae);

        if (ar == ARCHIVE_EOF)
            break;
        if (ar == ARCHIVE_WARN) {
            md_warn(ctx, "%s: %s", apath, archive_error_string(a));
        } else if (ar != ARCHIVE_OK) {
            r = bad_archive(ctx, a, apath, off, guessed && off == 0 && entries == 0);
            goto out;
        }
        entries++;
        r = add_one(tree, a, ae, apath);
        if (r < 0)
            goto out;
    }
    fmt = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
    if (fmt == ARCHIVE_FORMAT_CPIO && archive_filter_count(a) == 1 &&
        archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE) {
        /* uncompressed: what libarchive consumed ends at the trailer */
        off_t end = off + (off_t)archive_filter_bytes(a, 0);
        char buf[4096];
        ssize_t n;

        if (lseek(fd, end, SEEK_SET) < 0) {
            r = md_error_errno(ctx, -errno, "%s: seek", apath);
            goto out;
        }
        /* skip the NUL padding between archives, as the kernel does */
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
            ssize_t i;
            for (i = 0; i < n && !buf[i]; i++)
                ;
            end += i;
            if (i < n) {
                *next = end;
                break;
            }
        }
        if (n < 0)
            r = md_error_errno(ctx, -errno, "%s: read", apath);
    }
out:
    archive_read_free(a);
    return r;
}

int md_tree_add_archive_guessed(md_tree *tree, const char *archive_path, bool guessed)
{
    struct stat st;
    md_ctx *ctx;
    off_t off = 0;
    int r = 0, fd;

    if (!tree || !archive_path)
        return -EINVAL;
    ctx = tree->ctx;
    fd = open(archive_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return md_error_errno(ctx, -errno, "%s", archive_path);
    if (fstat(fd, &st) < 0) {
        r = md_error_errno(ctx, -errno, "%s", archive_path);
    } else if (S_ISDIR(st.st_mode)) {
        r = md_error(ctx, -EISDIR, "%s: is a directory, not an archive", archive_path);
    } else {
        while (r >= 0 && off >= 0)
            r = read_segment(tree, fd, archive_path, off, &off, guessed);
    }
    close(fd);
    return r;
}

MD_API int md_tree_add_archive(md_tree *tree, const char *archive_path)
{
    return md_tree_add_archive_guessed(tree, archive_path, false);
}
