/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The library context: error reporting, logging, version, defaults.
 *
 * Threads.  The library has no global mutable state: two threads may use
 * the library at the same time as long as each works with its own context
 * and the objects made from it.  A context and every object made from it
 * (trees, images, filesystems, disks, boot runs) are used by one thread at a
 * time: they all write their error messages to the context, and the message
 * of one call would overwrite another's.  A context may move between
 * threads (nothing is thread-local), and md_ctx_ref()/md_ctx_unref() are
 * atomic, so freeing objects of one context from different threads is safe.
 * Some calls use helper threads internally (the cpio writer reads files
 * ahead); they are joined before the call returns.
 *
 * State after a failure.  A failed call leaves its object usable and, unless
 * its comment says otherwise, unchanged: options are checked before
 * anything is modified.  The exceptions are documented per function (e.g.
 * md_ext_populate() after an error other than -ENOSPC, md_image_commit()).
 */
#ifndef LIBMINIDISTRO_MD_CTX_H
#define LIBMINIDISTRO_MD_CTX_H

#include "md-common.h"

MD_BEGIN_DECLS

/* Log priorities, as in syslog(3). */
#define MD_LOG_ERR 3
#define MD_LOG_WARNING 4
#define MD_LOG_INFO 6
#define MD_LOG_DEBUG 7

/** Log callback: @priority is one of MD_LOG_*, @msg has no trailing newline. */
typedef void (*md_log_fn)(void *userdata, int priority, const char *msg);

/**
 * Create a context (reference count 1).  Logging is off unless the
 * environment variable MD_DEBUG is set to a non-empty value other than "0",
 * in which case messages up to MD_LOG_DEBUG go to stderr.  The epoch (see
 * md_ctx_set_epoch()) is taken from SOURCE_DATE_EPOCH when it is set and
 * not empty.
 * Errors: -EINVAL (@ret NULL, or SOURCE_DATE_EPOCH is not a non-negative
 * decimal number of seconds: as reproducible-builds.org asks, a malformed
 * value is an error, not ignored), -ENOMEM.
 */
MD_API int md_ctx_new(md_ctx **ret);

/** Take a reference (atomically).  Returns @ctx.  NULL-safe. */
MD_API md_ctx *md_ctx_ref(md_ctx *ctx);

/** Drop a reference; the context is freed with the last one.  NULL-safe. */
MD_API void md_ctx_unref(md_ctx *ctx);

/** Same as md_ctx_unref(): drop the caller's reference.  NULL-safe. */
MD_API void md_ctx_free(md_ctx *ctx);

/**
 * The message describing the last failure of a call made with @ctx (or an
 * object created from it), "" when none.  Borrowed: valid until the next
 * call that uses @ctx.
 */
MD_API const char *md_ctx_errmsg(const md_ctx *ctx);

/** Forget the last error message. */
MD_API void md_ctx_clear_error(md_ctx *ctx);

/**
 * Route log messages of @priority <= @max_priority to @fn (NULL: off).
 * Replaces the MD_DEBUG default.
 */
MD_API void md_ctx_set_log_fn(md_ctx *ctx, md_log_fn fn, void *userdata, int max_priority);

/**
 * Set the epoch (seconds since 1970), overriding SOURCE_DATE_EPOCH.  The
 * epoch is the timestamp of generated entries (directories the tree makes,
 * BusyBox links, files written from memory, filesystem metadata) and, once
 * set, the upper bound every other timestamp (kept host mtimes, archive
 * mtimes) is clamped to; ids (UUIDs, disk ids, hash seeds) are then derived
 * from it instead of being random.  Without an epoch, generated entries get
 * time 0, other timestamps are kept as they are, and ids are random.
 * Errors: -EINVAL for a negative value.
 */
MD_API int md_ctx_set_epoch(md_ctx *ctx, int64_t epoch);

/** The epoch set by md_ctx_set_epoch() or taken from SOURCE_DATE_EPOCH; 0 when none. */
MD_API int64_t md_ctx_get_epoch(const md_ctx *ctx);

/** 1 when an epoch is set (SOURCE_DATE_EPOCH or md_ctx_set_epoch()), else 0. */
MD_API int md_ctx_has_epoch(const md_ctx *ctx);

/** Name of a (positive or negative) errno value, as strerror(3); never NULL. */
MD_API const char *md_strerror(int err);

/**
 * Parse a size: a decimal number with an optional binary unit suffix
 * K, M, G or T (also KiB, MB, ...: always powers of 1024), e.g. "64M".
 * Errors: -EINVAL (not a size), -ERANGE (over 2^64-1).
 */
MD_API int md_parse_size(const char *s, uint64_t *ret);

/* md_quote() styles */
#define MD_QUOTE_JSON 1u  /* a JSON string literal, quotes included ("null" for NULL);
                           * control characters (C0, DEL, C1) as \u00NN, bytes that are
                           * not UTF-8 as \ufffd */
#define MD_QUOTE_TEXT 2u  /* for terminals and text listings: control characters (C0,
                           * DEL and C1, U+0080..U+009F) and bytes that are not UTF-8 as
                           * \xNN per byte, a backslash doubled; everything else as is
                           * ("" for NULL) */

/**
 * Quote @s for output (file names in listings are untrusted bytes: a name
 * holding terminal escape sequences must not reach a terminal raw).
 * *@ret is allocated with malloc(); the caller frees it.
 * Errors: -EINVAL (bad style or @ret NULL), -ENOMEM.
 */
MD_API int md_quote(const char *s, uint32_t style, char **ret);

/** The library's version string, e.g. "0.1.0" (static). */
MD_API const char *md_version(void);

/** The library's version as MAJOR*10000 + MINOR*100 + PATCH. */
MD_API uint32_t md_version_number(void);

MD_END_DECLS

#endif
