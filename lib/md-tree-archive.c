/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Source: an existing archive (cpio newc/odc/bin, tar/pax/ustar, zip, ...,
 * with any compression filter libarchive knows, including the legacy lz4
 * frame the kernel uses), read with libarchive into the entry model.
 * Contents go to the tree's spool file (md_tree_spool_write), not memory.
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

/* The archive file being read (md_tree_add_archive()). */
struct arc {
    int fd;
    const char *path;
    off_t seg_off;           /* where the archive being read starts in it */
    const struct stat *st;
    uint32_t ref;            /* its tree->archives index + 1, once it has one */
};

/* libarchive failed reading entry @ae's data. */
static int data_error(md_ctx *ctx, struct archive *a, struct archive_entry *ae, const char *apath)
{
    return md_error(ctx, -EINVAL, "%s: entry '%s': %s", apath, archive_entry_pathname(ae),
                    archive_error_string(a) ? archive_error_string(a) : "read error");
}

/* Stream the current entry's data to the tree's spool file, after the @head_n
 * bytes at @head (read from it already): memory stays bounded whatever the
 * archive holds.  *@off and *@size: where it went. */
static int spool_data(md_tree *tree, struct archive *a, struct archive_entry *ae, const char *apath,
                      const void *head, size_t head_n, uint64_t *off, uint64_t *size)
{
    md_ctx *ctx = tree->ctx;
    char *buf;
    uint64_t o;
    int r = 0;

    *off = 0;
    *size = 0;
    if (head_n) {
        r = md_tree_spool_write(tree, head, head_n, off);
        if (r < 0)
            return r;
        *size = head_n;
    }
    buf = malloc(READ_BLOCK);
    if (!buf)
        return md_error(ctx, -ENOMEM, "%s: entry '%s': out of memory", apath, archive_entry_pathname(ae));
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, READ_BLOCK);

        if (n < 0) {
            r = data_error(ctx, a, ae, apath);
            break;
        }
        if (n == 0)
            break;
        r = md_tree_spool_write(tree, buf, (size_t)n, &o);
        if (r < 0)
            break;
        if (*size == 0)
            *off = o;
        *size += (uint64_t)n;
    }
    free(buf);
    return r;
}

/* The tree's reference to the archive file (made once, on the first member
 * read where it lies): a descriptor of its own and the file's state. */
static int arc_ref(md_tree *tree, struct arc *arc)
{
    struct md_archive_ref *v;
    int fd;

    if (arc->ref)
        return 0;
    v = realloc(tree->archives, (tree->n_archives + 1) * sizeof(*v));
    if (!v)
        return md_error(tree->ctx, -ENOMEM, "out of memory");
    tree->archives = v;
    fd = fcntl(arc->fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return md_error_errno(tree->ctx, -errno, "%s", arc->path);
    v[tree->n_archives].fd = fd;
    v[tree->n_archives].st = *arc->st;
    v[tree->n_archives].path = strdup(arc->path);
    if (!v[tree->n_archives].path) {
        close(fd);
        return md_error(tree->ctx, -ENOMEM, "out of memory");
    }
    arc->ref = (uint32_t)++tree->n_archives;
    return 0;
}

/*
 * The current entry's data.  In an uncompressed tar or cpio archive a
 * member's bytes lie contiguously right after its header, where libarchive
 * has read up to (archive_filter_bytes()): they are read from there at
 * write time, nothing copied (a 400 MB rootfs tarball is not written again
 * into the spool).  The first 4 KiB are compared with what libarchive
 * reads, the rest skipped (a seek); anything else (compressed, sparse
 * members, other formats, a mismatch) is spooled.  *@off, *@size, *@src:
 * where the data is (set_data()).
 */
static int take_data(md_tree *tree, struct archive *a, struct archive_entry *ae, const char *apath,
                     struct arc *arc, uint64_t *off, uint64_t *size, uint32_t *src)
{
    int fmt = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
    la_int64_t n = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : -1;
    char x[4096], y[4096];
    la_ssize_t got;
    uint64_t at;
    size_t k;
    int r;

    *src = 0;
    if (n <= 0 || (fmt != ARCHIVE_FORMAT_TAR && fmt != ARCHIVE_FORMAT_CPIO) ||
        archive_filter_count(a) != 1 || archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE ||
        archive_entry_sparse_count(ae) > 0)
        return spool_data(tree, a, ae, apath, NULL, 0, off, size);
    at = (uint64_t)arc->seg_off + (uint64_t)archive_filter_bytes(a, 0);
    if (at + (uint64_t)n > (uint64_t)arc->st->st_size)
        return spool_data(tree, a, ae, apath, NULL, 0, off, size);
    k = n < (la_int64_t)sizeof(x) ? (size_t)n : sizeof(x);
    got = archive_read_data(a, x, k);
    if (got < 0)
        return data_error(tree->ctx, a, ae, apath);
    if ((size_t)got != k || md_pread_full(arc->fd, y, k, at) < 0 || memcmp(x, y, k))
        return spool_data(tree, a, ae, apath, x, (size_t)got, off, size);
    if ((r = arc_ref(tree, arc)) < 0)
        return r;
    if (archive_read_data_skip(a) != ARCHIVE_OK)
        return data_error(tree->ctx, a, ae, apath);
    *off = at;
    *size = (uint64_t)n;
    *src = arc->ref;
    return 0;
}

/* Give regular entry @e the contents at @off of the spool (@src 0) or of
 * archive @src. */
static void set_data(struct md_entry *e, uint64_t off, uint64_t size, uint32_t src)
{
    free(e->host_path);
    e->host_path = NULL;
    free(e->buf);
    e->buf = NULL;
    e->spool_off = off;
    e->spool_src = size ? src : 0;
    e->size = size;
    e->src = size ? MD_SRC_SPOOL : MD_SRC_NONE;
}

/* ---- POSIX ACLs: libarchive's entries -> the Linux xattr format ------------- */

/* linux/posix_acl_xattr.h: a version word, then {tag, perm, id} entries in
 * the order the kernel checks (posix_acl_valid): owner, named users by id,
 * owning group, named groups by id, mask, other. */
#define ACL_XATTR_VERSION 2u
#define ACL_UNDEFINED_ID 0xffffffffu
enum { ACL_USER_OBJ = 0x01, ACL_USER = 0x02, ACL_GROUP_OBJ = 0x04, ACL_GROUP = 0x08,
       ACL_MASK = 0x10, ACL_OTHER = 0x20 };

struct acl_ent {
    uint16_t tag, perm;
    uint32_t id;
};

static int cmp_acl(const void *a, const void *b)
{
    const struct acl_ent *x = a, *y = b;
    if (x->tag != y->tag)
        return x->tag < y->tag ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int acl_tag(int t)
{
    switch (t) {
    case ARCHIVE_ENTRY_ACL_USER_OBJ: return ACL_USER_OBJ;
    case ARCHIVE_ENTRY_ACL_USER: return ACL_USER;
    case ARCHIVE_ENTRY_ACL_GROUP_OBJ: return ACL_GROUP_OBJ;
    case ARCHIVE_ENTRY_ACL_GROUP: return ACL_GROUP;
    case ARCHIVE_ENTRY_ACL_MASK: return ACL_MASK;
    case ARCHIVE_ENTRY_ACL_OTHER: return ACL_OTHER;
    default: return 0; /* NFSv4 "everyone@" and the like: not POSIX */
    }
}

/* One ACL (access or default) of @ae as a system.posix_acl_* xattr. */
static int copy_acl(md_tree *tree, struct archive_entry *ae, const char *path, int type,
                    const char *xname, const char *apath)
{
    struct acl_ent *v;
    unsigned char *x;
    int n, i = 0, atype, perm, tag, id, seen = 0, r;
    const char *qname;
    uint32_t mode = archive_entry_perm(ae);

    n = archive_entry_acl_reset(ae, type);
    if (n <= 0)
        return 0;
    v = calloc((size_t)n + 3, sizeof(*v));
    if (!v)
        return md_error(tree->ctx, -ENOMEM, "out of memory");
    while (i < n && archive_entry_acl_next(ae, type, &atype, &perm, &tag, &id, &qname) == ARCHIVE_OK) {
        int t = acl_tag(tag);
        if (!t)
            continue;
        if ((t == ACL_USER || t == ACL_GROUP) && id < 0) {
            /* a name without its number means nothing on another system:
             * leave the whole ACL out rather than grant the wrong user */
            char *end = NULL;
            long num = qname ? strtol(qname, &end, 10) : -1;
            if (!qname || !*qname || *end || num < 0 || num > 0x7fffffffL) {
                md_warn(tree->ctx, "%s: entry '%s': ACL names %s '%s' without a numeric id; ACL left out",
                        apath, path, t == ACL_USER ? "user" : "group", qname ? qname : "");
                free(v);
                return 0;
            }
            id = (int)num;
        }
        v[i].tag = (uint16_t)t;
        v[i].perm = (uint16_t)(perm & 07);
        v[i].id = (t == ACL_USER || t == ACL_GROUP) ? (uint32_t)id : ACL_UNDEFINED_ID;
        seen |= t;
        i++;
    }
    /* an access ACL's base entries mirror the mode when the archive leaves
     * them out (without a mask the group bits are the owning group's) */
    if (type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS) {
        if (!(seen & ACL_USER_OBJ))
            v[i++] = (struct acl_ent){ ACL_USER_OBJ, (uint16_t)((mode >> 6) & 7), ACL_UNDEFINED_ID };
        if (!(seen & ACL_GROUP_OBJ))
            v[i++] = (struct acl_ent){ ACL_GROUP_OBJ, (uint16_t)((mode >> 3) & 7), ACL_UNDEFINED_ID };
        if (!(seen & ACL_OTHER))
            v[i++] = (struct acl_ent){ ACL_OTHER, (uint16_t)(mode & 7), ACL_UNDEFINED_ID };
    }
    if (i == 0) {
        free(v);
        return 0;
    }
    qsort(v, (size_t)i, sizeof(*v), cmp_acl);
    x = malloc(4 + (size_t)i * 8);
    if (!x) {
        free(v);
        return md_error(tree->ctx, -ENOMEM, "out of memory");
    }
    md_put_le32(x, ACL_XATTR_VERSION);
    for (n = 0; n < i; n++) {
        md_put_le16(x + 4 + n * 8, v[n].tag);
        md_put_le16(x + 6 + n * 8, v[n].perm);
        md_put_le32(x + 8 + n * 8, v[n].id);
    }
    r = md_tree_set_xattr(tree, path, xname, x, 4 + (size_t)i * 8);
    if (r < 0)
        md_error_prefix(tree->ctx, "%s: entry '%s': ACL", apath, path);
    free(x);
    free(v);
    return r;
}

static bool has_xattr(md_tree *tree, const char *path, const char *name)
{
    char *norm = NULL;
    const struct md_entry *e;
    size_t i;
    bool found = false;

    if (md_path_normalize(tree->ctx, path, &norm) < 0)
        return false;
    e = md_tree_lookup(tree, norm);
    free(norm);
    for (i = 0; e && i < e->n_xattrs; i++)
        found = found || !strcmp(e->xattrs[i].name, name);
    return found;
}

static int copy_xattrs(md_tree *tree, struct archive_entry *ae, const char *path, const char *apath)
{
    const char *name;
    const void *value;
    size_t size;
    int r;

    if (archive_entry_xattr_reset(ae) > 0) {
        while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
            if (!name || !md_xattr_name_ok(name))
                continue; /* e.g. another system.* attribute: not representable */
            if (!strncmp(name, "system.", 7) && md_acl_xattr_check(value, size) < 0) {
                md_warn(tree->ctx, "%s: entry '%s': %s is not a POSIX ACL; skipped", apath, path, name);
                continue;
            }
            r = md_tree_set_xattr(tree, path, name, value, size);
            if (r < 0)
                return r;
        }
    }
    /* pax/star ACL records (tar --acls), which libarchive keeps as ACLs;
     * an ACL also stored as its xattr (GNU tar --xattrs --acls writes both)
     * is taken from the xattr, which has the numeric ids */
    r = 0;
    if (!has_xattr(tree, path, MD_XATTR_ACL_ACCESS))
        r = copy_acl(tree, ae, path, ARCHIVE_ENTRY_ACL_TYPE_ACCESS, MD_XATTR_ACL_ACCESS, apath);
    if (r >= 0 && !has_xattr(tree, path, MD_XATTR_ACL_DEFAULT))
        r = copy_acl(tree, ae, path, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, MD_XATTR_ACL_DEFAULT, apath);
    return r;
}

static int add_one(md_tree *tree, struct archive *a, struct archive_entry *ae, struct arc *arc)
{
    const char *apath = arc->path;
    uint32_t src = 0;
    md_ctx *ctx = tree->ctx;
    const char *name = archive_entry_pathname(ae);
    const char *hl = archive_entry_hardlink(ae);
    unsigned type = archive_entry_filetype(ae);
    struct md_entry *e;
    uint32_t fmt = 0, perm = archive_entry_perm(ae) & 07777;
    char *path = NULL;
    uint64_t off = 0, size = 0;
    md_attr at;
    la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
    int r;

    if (!name || !*name)
        return md_error(ctx, -EINVAL, "%s: an entry has an empty name", apath);
    /* names are relative to the archive's root: an absolute one (tar -P,
     * find / | cpio) was made against some other machine's / */
    if (name[0] == '/' || (hl && hl[0] == '/'))
        return md_error(ctx, -EINVAL, "%s: entry '%s' has an absolute %s: the names in an archive "
                        "must be relative to its root (make it with tar -C DIR . or find . | cpio)",
                        apath, name[0] == '/' ? name : hl, name[0] == '/' ? "path" : "hard link target");
    r = md_path_normalize(ctx, name, &path);
    if (r < 0) {
        md_error_prefix(ctx, "%s: entry '%s'", apath, name);
        return r;
    }
    if (!*path) {
        char *root = strdup("/"); /* the archive's "./": the root */
        free(path);
        if (hl || type != AE_IFDIR || !root) {
            free(root);
            return root ? md_error(ctx, -EINVAL, "%s: entry '%s' names the root but is not a directory",
                                   apath, name)
                        : md_error(ctx, -ENOMEM, "out of memory");
        }
        path = root;
    }

    if (hl) {
        struct md_entry *target;

        r = md_tree_add_hardlink(tree, path, hl);
        if (r < 0)
            goto fail;
        /* A link that carries data supplies the group's contents (newc). */
        if (archive_entry_size_is_set(ae) && archive_entry_size(ae) > 0) {
            r = take_data(tree, a, ae, apath, arc, &off, &size, &src);
            if (r < 0)
                goto out;
            e = md_tree_lookup(tree, path);
            target = e ? (struct md_entry *)md_entry_data(e) : NULL;
            if (target)
                set_data(target, off, size, src);
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
        r = take_data(tree, a, ae, apath, arc, &off, &size, &src);
        if (r < 0)
            goto out;
        r = md_tree_add_entry(tree, path, S_IFREG, &at, &e);
        if (r >= 0)
            set_data(e, off, size, src);
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
    /* md_attr's mode 0 means "default"; keep the archive's real bits (the
     * archive's "./" is the root: "/" given, "" to look up) */
    e = md_tree_lookup(tree, strcmp(path, "/") ? path : "");
    if (e)
        e->mode = fmt | perm;
    r = copy_xattrs(tree, ae, path, apath);
    if (r < 0)
        goto fail;
    goto out;
fail:
    md_error_prefix(ctx, "%s", apath);
out:
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
static int read_segment(md_tree *tree, struct arc *arc, off_t off, off_t *next, bool guessed)
{
    int fd = arc->fd;
    const char *apath = arc->path;
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
        arc->seg_off = off;
        r = add_one(tree, a, ae, arc);
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
    /* a FIFO or a device is refused before it could block: the archive is
     * read more than once (concatenated archives), so it must be a file */
    fd = md_open_regular(ctx, archive_path, "an archive", &st);
    if (fd < 0)
        return fd;
    {
        struct arc arc = { fd, archive_path, 0, &st, 0 };
        while (r >= 0 && off >= 0)
            r = read_segment(tree, &arc, off, &off, guessed);
    }
    close(fd);
    return r;
}

MD_API int md_tree_add_archive(md_tree *tree, const char *archive_path)
{
    return md_tree_add_archive_guessed(tree, archive_path, false);
}
