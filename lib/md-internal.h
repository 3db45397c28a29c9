/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal helpers shared by the library's modules.  Not installed. */
#ifndef MD_INTERNAL_H
#define MD_INTERNAL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "libminidistro/minidistro.h"

#define MD_ERRMSG_MAX 1024

#define md_unused __attribute__((unused))
#define md_printf(a, b) __attribute__((format(printf, a, b)))
#define md_cleanup(fn) __attribute__((cleanup(fn)))

/* ---- context ------------------------------------------------------------- */

/* Store a message on @ctx and return @err (a negative errno) unchanged, so that
 * callers can write `return md_error(ctx, -EINVAL, "bad %s", x);`.  A message
 * longer than MD_ERRMSG_MAX - 1 bytes is shortened where it echoes long
 * values: the longest words (paths, labels) lose their middle to "...", so the
 * reason, wherever it is, survives (md-ctx.c, fit_message()). */
int md_error(md_ctx *ctx, int err, const char *fmt, ...) md_printf(3, 4);
/* Like md_error(), appending ": strerror(-err)". */
int md_error_errno(md_ctx *ctx, int err, const char *fmt, ...) md_printf(3, 4);
/* md_error() with a va_list, appending ": @suffix" when it is not NULL. */
int md_verror(md_ctx *ctx, int err, const char *suffix, const char *fmt, va_list ap) md_printf(4, 0);
/* Prefix the current message with "PREFIX: " (for adding context on the way up). */
void md_error_prefix(md_ctx *ctx, const char *fmt, ...) md_printf(2, 3);

void md_log(md_ctx *ctx, int priority, const char *fmt, ...) md_printf(3, 4);
#define md_dbg(ctx, ...) md_log((ctx), MD_LOG_DEBUG, __VA_ARGS__)
#define md_info(ctx, ...) md_log((ctx), MD_LOG_INFO, __VA_ARGS__)
#define md_warn(ctx, ...) md_log((ctx), MD_LOG_WARNING, __VA_ARGS__)

/* Options structs: accept a known version and fill @out with defaults first. */
int md_check_version(md_ctx *ctx, const char *what, uint32_t got, uint32_t max);

/* ---- small utilities (md-util.c) ---------------------------------------- */

void *md_calloc(size_t n, size_t size);
char *md_strdup(const char *s);
char *md_asprintf(const char *fmt, ...) md_printf(1, 2);
void md_freep(void *p);          /* for md_cleanup: frees *(void **)p */
void md_closep(int *fd);         /* for md_cleanup: closes *fd if >= 0 */

/* Full read/write loops; return 0 or -errno. */
int md_read_full(int fd, void *buf, size_t n);
int md_write_full(int fd, const void *buf, size_t n);
int md_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
int md_pread_full(int fd, void *buf, size_t n, uint64_t off);

/* The descriptor the image's bytes are written through (-1: none). */
int md_image_fd(const md_image *img);

/* May the regular file @st has holes?  Fewer 512-byte units allocated than
 * its size needs (a dense file needs no SEEK_DATA/SEEK_HOLE lookups; a file
 * with holes and preallocated blocks past its end reads as dense, which only
 * costs reading its holes' zeros). */
static inline bool md_stat_sparse(const struct stat *st)
{
    return (uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size;
}

/* The value of hex digit @c, -1 if it is none. */
int md_hexval(int c);

/* Read a whole file into memory (NUL-terminated for convenience).  Anything
 * but a regular file (a FIFO, a device) is refused without blocking:
 * -EINVAL, or -EISDIR for a directory. */
int md_read_file(md_ctx *ctx, const char *path, char **data, size_t *size);

/* Open @path (user-named: symlinks are followed) for reading without
 * blocking on a FIFO or a device, and only if it is a regular file; @what
 * names what it should be in messages ("an archive"); *@st gets its stat.
 * Returns the descriptor, or -EINVAL (not a regular file), -EISDIR, -errno;
 * message on @ctx. */
int md_open_regular(md_ctx *ctx, const char *path, const char *what, struct stat *st);
/* "a FIFO", "a directory", ... for messages. */
const char *md_file_kind(mode_t mode);

/* Paths in a tree: at most MD_PATH_MAX bytes, components MD_NAME_MAX. */
#define MD_PATH_MAX 4095
#define MD_NAME_MAX 255

/* Open @rel, a relative path of plain components (no "." or ".."), below the
 * directory @dirfd without following a symlink at any level:
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where the kernel has it
 * (5.6), else md_openat_components().  @flags are open(2)'s; O_NOFOLLOW is
 * added.  Returns the descriptor or -errno: -ELOOP or -ENOTDIR when a
 * component is a symlink (or not a directory), -EXDEV for a ".." that
 * leaves @dirfd (the fallback refuses any ".."). */
int md_openat_beneath(int dirfd, const char *rel, int flags);
/* The same with one openat(O_NOFOLLOW) per component (the fallback; tests
 * call it directly). */
int md_openat_components(int dirfd, const char *rel, int flags);

/* Little-endian loads and stores on byte buffers, whatever the host's byte
 * order or the pointer's alignment (on-disk formats: syslinux, lz4). */
static inline uint16_t md_get_le16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | b[1] << 8);
}
static inline uint32_t md_get_le32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t md_get_le64(const void *p)
{
    const uint8_t *b = p;
    return md_get_le32(b) | (uint64_t)md_get_le32(b + 4) << 32;
}
static inline void md_put_le16(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}
static inline void md_put_le32(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}
static inline void md_put_le64(void *p, uint64_t v)
{
    uint8_t *b = p;
    md_put_le32(b, (uint32_t)v);
    md_put_le32(b + 4, (uint32_t)(v >> 32));
}

/* Atomic publication: create a temporary file next to @path (unnamed with
 * O_TMPFILE where the filesystem allows, so that nothing is left behind
 * even after SIGKILL; else ".NAME.XXXXXX"; mode 0666 & ~umask like a plain
 * open), later give it @path or drop it.  md_tmpfile_open() fails with -EEXIST if @path
 * exists and @overwrite is false, and with -EINVAL/-EISDIR if @path is
 * anything but a regular file (a device, FIFO, symlink is never replaced);
 * md_tmpfile_publish() without @overwrite never replaces a file that
 * appeared meanwhile (RENAME_NOREPLACE). */
typedef struct md_tmpfile {
    char *path;      /* final path */
    char *tmp_path;  /* where the data is until published (a name to open: for an
                      * unnamed file "/proc/self/fd/N"), NULL once published/discarded */
    int fd;
    bool overwrite;  /* replace a regular file at path; never anything else */
    bool anon;       /* an O_TMPFILE file: nothing is left if the process dies */
} md_tmpfile;
int md_tmpfile_open(md_ctx *ctx, md_tmpfile *t, const char *path, bool overwrite);
/* fsync is skipped: images are build products, not databases. */
int md_tmpfile_publish(md_ctx *ctx, md_tmpfile *t);
void md_tmpfile_discard(md_tmpfile *t);

/* md_uki_write() into @fd (at its current offset, which should be 0: the
 * checksum is written at a fixed offset); @name for messages. */
int md_uki_write_fd(md_ctx *ctx, int fd, const char *name, const md_uki_opts *opts);


/* JSON string literal of @s ("null" for NULL) on @f: quotes, backslashes
 * and control characters (C0, DEL, C1) escaped, bytes that are not UTF-8
 * as U+FFFD (JSON text is UTF-8). */
#include <stdio.h>
void md_json_put(FILE *f, const char *s);

/* ---- partitions (md-image.c), shared with md-disk.c ------------------------ */

/* Check one partition description (the @n-th); message on @ctx. */
int md_part_opts_check(md_ctx *ctx, size_t n, const md_part_opts *opts);
/* What a table of @n partitions cannot hold (over 4 on MBR, 128 on GPT) and
 * GPT GUIDs given twice (@uuid_at(@v, i): partition i + 1's, or NULL; and the
 * disk's @disk_id); messages start with @where. */
int md_part_list_check(md_ctx *ctx, const char *where, bool gpt, size_t n, const char *disk_id,
                       const char *(*uuid_at)(const void *v, size_t i), const void *v);
/* Parse SIZE[:TYPE[:FLAGS]] (the @n-th partition) into @out, whose strings
 * point into *@buf (free it after use). */
int md_part_spec_parse(md_ctx *ctx, size_t n, const char *spec, md_part_opts *out, char **buf);

/* ---- kernels (md-kernel.c) ---------------------------------------------- */

/* md_kernel_release() on contents already open (a tree entry, say); @kernel
 * names it in messages. */
struct md_data;
int md_kernel_release_data(md_ctx *ctx, const char *kernel, const struct md_data *d, char *buf,
                           size_t size);
/* The value of @sym in the .config text @config: 'y', 'm' or 0 (unset). */
char md_kconfig_value(const char *config, const char *sym);

/* ---- the entry model (md-tree.c) ---------------------------------------- */

enum md_src {
    MD_SRC_NONE = 0,   /* no contents (dir, link, node, or empty file) */
    MD_SRC_HOST,       /* read from host_path at write time */
    MD_SRC_BUF,        /* owned buffer */
    MD_SRC_SPOOL,      /* archive contents at spool_off: in the tree's spool file, or
                        * (spool_src) where they lie in an uncompressed archive */
};

struct md_xattr {
    char *name;
    void *value;
    size_t size;
};

struct md_entry {
    char *path;              /* normalised, relative: "bin/sh" */
    uint64_t hash;           /* of path, as the tree's hash table keys it */
    uint32_t mode;           /* S_IFMT | permission bits */
    uint32_t uid, gid;
    int64_t mtime;
    uint32_t rmajor, rminor; /* device nodes */
    char *link;              /* symlink target */
    struct md_entry *master; /* hard link: the entry whose data this shares; NULL otherwise */
    uint32_t links_in;       /* number of entries whose master is this one */
    enum md_src src;
    char *host_path;         /* MD_SRC_HOST: the host file (the name in messages) */
    uint64_t host_dev, host_ino; /* MD_SRC_HOST: the file the source saw (0, 0: not known) */
    bool host_sparse;        /* MD_SRC_HOST: fewer blocks allocated than its size needs, so it
                              * may have holes (looked up with SEEK_DATA); a dense file is read
                              * straight through (its zero blocks become holes all the same) */
    uint32_t host_root;      /* 0: host_path was named by the caller (md_tree_add_file) and
                              * may be a symlink; else the file was found by walking
                              * tree->host_roots[host_root - 1]: it is opened below that
                              * directory, host_path + host_rel, following no symlink */
    size_t host_rel;
    void *buf;
    uint64_t spool_off;      /* MD_SRC_SPOOL */
    uint32_t spool_src;      /* MD_SRC_SPOOL: 0 the spool file, else the archive file
                              * tree->archives[spool_src - 1] itself */
    uint64_t size;           /* file size; symlink: strlen(link) */
    struct md_xattr *xattrs;
    size_t n_xattrs;
    /* Filled by md_tree_finalize(): */
    uint32_t ino;            /* stable number, 1-based, in sorted order */
    uint32_t nlink;          /* link count (dirs: 2 + subdirs; files: links in tree) */
    bool last_link;          /* the last entry of a hard-link group in sorted order */
    bool removed;            /* tombstone, skipped everywhere */
};

struct md_tree {
    md_ctx *ctx;
    struct md_entry **v;     /* all entries (tombstones included); not the root */
    size_t n, cap;
    size_t live;
    struct md_hslot {        /* open addressing on path; a slot keeps the hash, so */
        uint64_t h;          /* that a probe touches no entry but the one found */
        struct md_entry *e;
    } *hash;
    size_t hash_cap;
    bool sorted;             /* v is sorted and finalized */
    /* The root directory: attributes and xattrs only, path "".  root_set
     * once a source described it (a host DIR, an archive's "./", a spec's
     * "dir /"); sinks that merge into an existing root apply it only then. */
    struct md_entry root;
    bool root_set;
    /* Contents of archive entries, streamed to an unlinked temporary file
     * instead of memory; written through a buffer, flushed by finalize. */
    int spool_fd;
    uint64_t spool_size;     /* bytes written or buffered */
    char *spool_buf;
    size_t spool_buf_len;
    /* Directories walked by md_tree_add_host() that regular entries were
     * found in, open (O_RDONLY | O_DIRECTORY) until the tree is freed: their
     * files are opened again relative to them (md_data_open()). */
    int *host_roots;
    size_t n_host_roots;
    /* Uncompressed tar and cpio archives whose members' bytes are read where
     * they lie instead of being spooled: open until the tree is freed, and
     * as they were then (a sink finding one changed refuses it). */
    struct md_archive_ref {
        int fd;
        char *path;
        struct stat st;
    } *archives;
    size_t n_archives;
};

/* Sort, drop tombstones, assign inode numbers (the root is 1) and link
 * counts, flush the spool.  Sinks call this before iterating
 * tree->v[0 .. tree->n) (the root is tree->root).  Idempotent. */
int md_tree_finalize(md_tree *tree);

/* The live entry at normalised @norm_path; "" is the root. */
struct md_entry *md_tree_lookup(const md_tree *tree, const char *norm_path);

/* Append @n bytes to the tree's spool file (created on first use in
 * $TMPDIR, else /var/tmp, unlinked at once); *@off is where they start.
 * Errors: -errno (message on the context). */
int md_tree_spool_write(md_tree *tree, const void *buf, size_t n, uint64_t *off);

/* Normalise @in into a newly allocated string; error message on @ctx. */
int md_path_normalize(md_ctx *ctx, const char *in, char **out);

/* Extended attributes a tree holds: user.*, security.*, trusted.* and the
 * POSIX ACLs (system.posix_acl_access, system.posix_acl_default, in the
 * Linux xattr format). */
#define MD_XATTR_ACL_ACCESS "system.posix_acl_access"
#define MD_XATTR_ACL_DEFAULT "system.posix_acl_default"
bool md_xattr_name_ok(const char *name);
/* 0 if @value is an ACL in that format, else -EINVAL. */
int md_acl_xattr_check(const void *value, size_t size);

/* The entry holding the contents of @e: its hard-link master, or itself. */
const struct md_entry *md_entry_data(const struct md_entry *e);

/* The contents of a regular entry, as a sink reads them. */
struct md_data {
    int fd;             /* -1: in memory (buf) or empty */
    bool own_fd;        /* close fd in md_data_close() */
    uint64_t off;       /* where the contents start in fd */
    uint64_t size;
    const void *buf;
    const char *name;   /* the host file or the entry path, for messages */
    bool sparse;        /* own fd that may have holes: worth SEEK_DATA/SEEK_HOLE */
};

/* Open the contents of regular entry @e (through its hard-link master).
 * A host file is opened without blocking on a FIFO and, when a walk found
 * it, relative to the walked directory without following a symlink at any
 * level; it must still be the regular file the source saw (same device,
 * inode and size): else -ESTALE.  Errors: -errno; a message on @ctx unless
 * it is NULL (helper threads pass NULL and report themselves). */
int md_data_open(md_tree *tree, md_ctx *ctx, const struct md_entry *e, struct md_data *d);
/* @n bytes at offset @pos of the contents into @buf: 0, -EIO when the file
 * is shorter than that, or -errno. */
int md_data_read(const struct md_data *d, void *buf, size_t n, uint64_t pos);
void md_data_close(struct md_data *d);
/* The file @e's contents are read from, for messages: the host file, the
 * archive holding them in place, or NULL (the spool, a buffer). */
const char *md_data_file(const md_tree *tree, const struct md_entry *e);
/* md_data_open()'s -ESTALE for contents in an archive that has changed since
 * it was read, as a message on @ctx. */
int md_data_archive_changed(md_ctx *ctx, const md_tree *tree, const struct md_entry *e);
/* Is the host file @d opened (by md_data_open(), not the spool or a lent
 * descriptor) no longer the size it had when listed?  Its size now in
 * *@now.  Asked after reading it, or when a read came up short. */
bool md_data_resized(const struct md_data *d, uint64_t *now);
/* The message for that, on @ctx, naming @entry (may be NULL) and @file:
 * -ESTALE. */
int md_data_resized_error(md_ctx *ctx, const char *entry, const char *file, uint64_t now,
                          uint64_t listed);

/* md_tree_add_archive(); @guessed: the path was a "DIR or ARCHIVE" argument
 * (MD_SOURCE_AUTO), so an unreadable one is reported as possibly neither. */
int md_tree_add_archive_guessed(md_tree *tree, const char *archive_path, bool guessed);

/* Add with full control (used by the sources); takes ownership of nothing. */
int md_tree_add_entry(md_tree *tree, const char *path, uint32_t mode, const md_attr *attr,
                      struct md_entry **ret);

#endif
