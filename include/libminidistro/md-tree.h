/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A tree of file entries: the one model that every source fills and every
 * sink (cpio archive, ext filesystem) consumes.
 *
 * Paths are normalised when added: leading "/" and "./", repeated and
 * trailing slashes are dropped ("/bin//sh/" -> "bin/sh").  Empty paths, ".."
 * components, components longer than 255 bytes and paths longer than 4095
 * bytes are rejected with -EINVAL.  Adding a path that already exists
 * replaces the old entry (later sources overlay earlier ones), except that a
 * directory added over a directory only updates its attributes.  Missing
 * parent directories are created (0755, root:root, the context epoch).
 * Sinks emit entries sorted by the byte order of their paths, so the output
 * does not depend on the order in which entries were added.  Timestamps are
 * resolved when an entry is added (MD_MTIME_DEFAULT becomes the context
 * epoch, later ones are clamped to it): set the epoch on the context before
 * adding entries.
 *
 * Only metadata is kept in memory for host files: their contents are read
 * when a sink writes them.
 */
#ifndef LIBMINIDISTRO_MD_TREE_H
#define LIBMINIDISTRO_MD_TREE_H

#include "md-common.h"

MD_BEGIN_DECLS

typedef struct md_tree md_tree;

/** Attributes of an added entry.  Permission bits only in @mode (07777). */
typedef struct md_attr {
    uint32_t version;   /* MD_ATTR_VERSION */
    uint32_t mode;      /* permission bits, e.g. 0755; bits above 07777 are ignored */
    uint32_t uid;
    uint32_t gid;
    int64_t mtime;      /* seconds; MD_MTIME_DEFAULT: the context epoch */
} md_attr;

#define MD_ATTR_VERSION 1
#define MD_MTIME_DEFAULT (-1)
/* mode 0 in an md_attr means "the default for the type":
 * 0755 for directories, 0644 for files, 0777 for symlinks, 0600 for nodes.
 * MD_ATTR_MODE_SET | PERM means exactly PERM, 0 included ("--mode 0"). */
#define MD_ATTR_MODE_SET 0x10000u
#define MD_ATTR_INIT { MD_ATTR_VERSION, 0, 0, 0, MD_MTIME_DEFAULT }
/** Fill @attr with MD_ATTR_INIT (default mode for the type, 0:0, the epoch).  NULL-safe. */
MD_API void md_attr_init(md_attr *attr);

/* Node types for md_tree_add_node(). */
#define MD_NODE_CHR 1
#define MD_NODE_BLK 2
#define MD_NODE_FIFO 3
#define MD_NODE_SOCK 4

/**
 * Create an empty tree.  The tree keeps a reference on @ctx.
 * Errors: -EINVAL, -ENOMEM.
 */
MD_API int md_tree_new(md_ctx *ctx, md_tree **ret);

/** Free the tree.  NULL-safe. */
MD_API void md_tree_free(md_tree *tree);

/** Number of entries, including created parent directories. */
MD_API size_t md_tree_count(const md_tree *tree);

/** The context the tree was made with (borrowed). */
MD_API md_ctx *md_tree_ctx(const md_tree *tree);

/*
 * Single entries.  @path is copied.  @attr may be NULL (defaults, 0:0).
 * Errors: -EINVAL (bad path or arguments), -ENOMEM, and for the ones
 * below, as documented.
 */

/** A directory (over an existing one: only its attributes change).  Errors: -EINVAL, -ENOMEM. */
MD_API int md_tree_add_dir(md_tree *tree, const char *path, const md_attr *attr);

/**
 * A regular file whose contents are read from @host_path when the tree is
 * written (the path is copied; the file is checked now with stat(2)).
 * Errors: -ENOENT/-EACCES (host file missing or unreadable), -EISDIR.
 */
MD_API int md_tree_add_file(md_tree *tree, const char *path, const char *host_path,
                            const md_attr *attr);

/** A regular file with contents @data of @size bytes (copied).  Errors: -EINVAL, -ENOMEM. */
MD_API int md_tree_add_data(md_tree *tree, const char *path, const void *data, size_t size,
                            const md_attr *attr);

/** A symbolic link to @target (copied; 1..4095 bytes).  Errors: -EINVAL, -ENOMEM. */
MD_API int md_tree_add_symlink(md_tree *tree, const char *path, const char *target,
                               const md_attr *attr);

/**
 * A hard link @path to the regular file @target_path already in the tree.
 * All names of a file share its contents and attributes.  Replacing one of
 * them later (any md_tree_add_* on its path) detaches only that name: the
 * others keep the old file, as when an archive is unpacked over a tree.
 * Errors: -ENOENT (no such entry), -EPERM (target is not a regular file).
 */
MD_API int md_tree_add_hardlink(md_tree *tree, const char *path, const char *target_path);

/**
 * A device node, FIFO or socket; @type is MD_NODE_*; major/minor for devices.
 * Errors: -EINVAL (bad path or type), -ENOMEM.
 */
MD_API int md_tree_add_node(md_tree *tree, const char *path, uint32_t type, uint32_t major,
                            uint32_t minor, const md_attr *attr);

/**
 * Attach an extended attribute ("security.*", "user.*", "trusted.*") to an
 * existing entry.  @value is copied.  Sinks that cannot store xattrs (cpio)
 * ignore them.  Errors: -ENOENT, -EINVAL.
 */
MD_API int md_tree_set_xattr(md_tree *tree, const char *path, const char *name,
                             const void *value, size_t size);

/** Remove an entry and, for a directory, everything below it.  -ENOENT if absent. */
MD_API int md_tree_remove(md_tree *tree, const char *path);

/** 1 if @path is in the tree, 0 if not (after normalisation), <0 on a bad path. */
MD_API int md_tree_contains(const md_tree *tree, const char *path);

/* ------------------------------------------------------------------ */
/* Sources                                                            */

/* md_host_opts.flags */
#define MD_HOST_KEEP_OWNER 0x1u   /* keep host uid/gid (default: squash to 0:0) */
#define MD_HOST_KEEP_MTIME 0x2u   /* keep host mtimes, clamped to the epoch (default: epoch) */
#define MD_HOST_NO_HARDLINKS 0x4u /* store hard-linked files as separate copies */
#define MD_HOST_XATTRS 0x8u       /* read security.* / user.* / trusted.* xattrs and POSIX ACLs */
#define MD_HOST_NO_ROOT 0x10u     /* contents only: the DIR's own mode, owner and mtime are
                                   * not given to the tree's root (without a prefix) */

typedef struct md_host_opts {
    uint32_t version;       /* MD_HOST_OPTS_VERSION */
    uint32_t flags;         /* MD_HOST_* */
    const char *prefix;     /* destination directory in the tree; NULL or "" = root */
} md_host_opts;

#define MD_HOST_OPTS_VERSION 1
#define MD_HOST_OPTS_INIT { MD_HOST_OPTS_VERSION, 0, NULL }
/** Fill @opts with MD_HOST_OPTS_INIT (no flags, no prefix).  NULL-safe. */
MD_API void md_host_opts_init(md_host_opts *opts);

/**
 * Add the contents of host directory @dir recursively; the directory's own
 * attributes (mode; owner and mtime as the flags say; xattrs) go to @prefix
 * when a prefix is given, else to the tree's root directory (unless
 * MD_HOST_NO_ROOT).  Symlinks are
 * stored as links, never followed.  Files with several links inside the tree
 * become hard links unless MD_HOST_NO_HARDLINKS.  Permission bits come from
 * the host (umask-independent); owners are squashed to 0:0 and mtimes set
 * to the context epoch unless the flags say otherwise.  @dir itself may be a
 * symlink; nothing below it is followed: each directory is opened relative
 * to its parent without following it and must be the one its parent listed,
 * and files are read again below @dir, following no symlink, when the tree
 * is written (the tree keeps @dir open until it is freed).  Any depth a
 * path allows is walked, with a bounded number of descriptors.
 * Errors: -ENOENT/-ENOTDIR/-EACCES naming the host path, -ESTALE (a
 * directory replaced or swapped for a symlink during the walk), -ENOMEM.
 */
MD_API int md_tree_add_host(md_tree *tree, const char *dir, const md_host_opts *opts);

/**
 * Add the entries described by a gen_init_cpio(1)-style spec file (the
 * format of the kernel's usr/gen_init_cpio.c: file, dir, nod, slink, pipe,
 * sock lines, '#' comments, ${VAR} expanded from the environment in a file's
 * location).  Relative file locations are resolved against @base_dir, or
 * against the directory holding the spec when @base_dir is NULL (never the
 * cwd).  As in the kernel, an unset ${VAR} expands to ""; unlike it, the
 * expansion is not rescanned.  Every entry gets the context epoch as mtime.
 * Extra fields and unknown types are errors.  Lines before a bad one have
 * already been added when the error is returned.  @spec_path and @base_dir
 * are borrowed.
 * The spec must be a regular file (a FIFO is refused, not read).
 * Errors (message "SPEC:LINE: ..."): -EINVAL (syntax, bad mode or number,
 * ".." in a name), -ENOENT/-EACCES/-EISDIR (a file location, named, with
 * any unset variable it used), -EEXIST/-ENOTDIR (conflicts with the tree),
 * -ENOENT for a missing spec, -ENOMEM.
 */
MD_API int md_tree_add_spec(md_tree *tree, const char *spec_path, const char *base_dir);

/**
 * As md_tree_add_spec() with the spec text (@size bytes, borrowed) in
 * memory; @name is used in messages.  With @base_dir NULL a relative file
 * location is an error (-EINVAL).
 */
MD_API int md_tree_add_spec_buf(md_tree *tree, const char *text, size_t size, const char *name,
                                const char *base_dir);

/**
 * Add every entry of an archive that libarchive can read (cpio in any
 * variant, tar, optionally compressed with gzip, xz, zstd, lz4 including
 * the kernel's legacy lz4 frames, bzip2, ...).  Contents are streamed to
 * an unlinked temporary file ($TMPDIR, else /var/tmp), not kept in memory,
 * whatever the archive's size.  Modes, owners, mtimes (kept; clamped to the
 * epoch when one is set), POSIX ACLs (pax/star records), device numbers, hard links
 * (newc groups with data on the last link included) and user/security/
 * trusted xattrs are kept.  Entry names are normalised like any path
 * (absolute names become relative; the root entry "." is skipped); a name
 * that escapes with ".." is an error naming the entry.  Concatenated
 * archives are read as the kernel reads them (later ones overlay earlier
 * ones) after an uncompressed cpio archive, e.g. an early-microcode archive
 * in front of the compressed main one; a compressed archive ends the
 * input.  mtree manifests are not accepted (libarchive would read the host
 * files they name).  @archive_path is borrowed and must name a regular file:
 * a FIFO, device or socket is refused (-EINVAL) without blocking.
 * Errors: -ENOENT/-EACCES/-EISDIR, -EINVAL (not an archive or not a regular
 * file, truncated, bad entry name), -ENOMEM.
 */
MD_API int md_tree_add_archive(md_tree *tree, const char *archive_path);

/* md_tree_add_source() kinds */
#define MD_SOURCE_AUTO 0u     /* a directory: as MD_SOURCE_HOST; anything else: MD_SOURCE_ARCHIVE */
#define MD_SOURCE_HOST 1u     /* md_tree_add_host() */
#define MD_SOURCE_ARCHIVE 2u  /* md_tree_add_archive() */
#define MD_SOURCE_SPEC 3u     /* md_tree_add_spec(), relative locations from the spec's directory */
#define MD_SOURCE_BUSYBOX 4u  /* md_tree_add_busybox() with the default options */

/**
 * Add one source of the given @kind at host path @path (borrowed): the one
 * entry point for front ends that take a list of sources in order, so that
 * every command accepts the same kinds.  @opts applies to host trees (also
 * those found by MD_SOURCE_AUTO) and may be NULL.
 * Errors: those of the function the kind names; for MD_SOURCE_AUTO a path
 * that is neither a directory nor a regular file (an archive) is -EINVAL
 * without being opened; -EINVAL for an unknown kind.
 */
MD_API int md_tree_add_source(md_tree *tree, uint32_t kind, const char *path,
                              const md_host_opts *opts);

/** md_busybox_opts.flags */
#define MD_BUSYBOX_NO_INIT 0x1u  /* do not add an /init */

typedef struct md_busybox_opts {
    uint32_t version;           /* MD_BUSYBOX_OPTS_VERSION */
    uint32_t flags;             /* MD_BUSYBOX_* */
    const char *init_path;      /* host file used as /init; NULL: the built-in one */
} md_busybox_opts;

#define MD_BUSYBOX_OPTS_VERSION 1
#define MD_BUSYBOX_OPTS_INIT { MD_BUSYBOX_OPTS_VERSION, 0, NULL }
/** Fill @opts with MD_BUSYBOX_OPTS_INIT (the built-in /init).  NULL-safe. */
MD_API void md_busybox_opts_init(md_busybox_opts *opts);

/**
 * Add a BusyBox system: /bin/busybox from @busybox (a static binary; 0755,
 * 0:0), a symlink to "/bin/busybox" for every applet it lists (`busybox
 * --list-full`, run without a shell as "busybox" whatever the file's name,
 * in its own process group, killed with the group after a 10 s timeout),
 * and, unless the tree already has them, the directories /bin /sbin /usr/bin
 * /usr/sbin /dev /etc /proc /sys /run /tmp (1777) /root (0700), the nodes
 * /dev/console (5,1, 0600) and /dev/null (1,3, 0666), and a root-only
 * /etc/passwd and /etc/group.  /init (0755): the host file @opts->init_path, or the
 * built-in script, which mounts proc, sysfs and devtmpfs (failures
 * ignored), prints "libminidistro: booted <kernel release>", runs
 * `setsid cttyhack sh` (a job-control shell on the real console, e.g.
 * ttyS0) and powers off when the shell exits; none with MD_BUSYBOX_NO_INIT.
 * Everything is checked before the tree is changed.  A dynamically linked
 * busybox only gets a warning in the log.  @busybox and @opts are borrowed.
 * Errors: -ENOENT/-EACCES (no such file, or no such init_path),
 * -ENOEXEC ("PATH: not a BusyBox binary (...)": not a regular executable
 * file, `--list-full` failed, timed out or printed something else),
 * -EINVAL (bad options; no "sh" applet for the built-in /init), -ENOMEM.
 */
MD_API int md_tree_add_busybox(md_tree *tree, const char *busybox, const md_busybox_opts *opts);

MD_END_DECLS

#endif
