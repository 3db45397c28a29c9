/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libminidistro: shared definitions of the public API.
 *
 * Conventions (see each function's comment for the specifics):
 *  - Every fallible function returns int: >= 0 on success, a negative errno
 *    value (-EINVAL, -ENOENT, -ENOSPC, ...) on failure.  A human-readable
 *    message describing the failure is stored on the context and can be read
 *    with md_ctx_errmsg().
 *  - Objects are opaque handles created by md_<object>_new() (or another
 *    constructor) and released by md_<object>_free(); every free function
 *    accepts NULL.  Objects hold a reference on their context.
 *  - Options are passed in versioned structs whose first member is
 *    `uint32_t version`; initialise them with the MD_<OP>_OPTS_INIT macro or
 *    the md_<op>_opts_init() function.  A NULL options pointer means defaults.
 *  - Pointer arguments are borrowed: read during the call only, unless the
 *    function's comment says that it copies them or keeps them (and for how
 *    long).  Returned pointers are borrowed too, with the lifetime the
 *    comment gives, except where it says who frees them.
 *  - Headers are C89 clean and usable from C++.
 */
#ifndef LIBMINIDISTRO_MD_COMMON_H
#define LIBMINIDISTRO_MD_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(MD_BUILDING_LIBRARY) && defined(__GNUC__)
#define MD_API __attribute__((visibility("default")))
#else
#define MD_API
#endif

#ifdef __cplusplus
#define MD_BEGIN_DECLS extern "C" {
#define MD_END_DECLS }
#else
#define MD_BEGIN_DECLS
#define MD_END_DECLS
#endif

MD_BEGIN_DECLS

/** A library context: error message, logging, defaults.  See md-ctx.h. */
typedef struct md_ctx md_ctx;

/**
 * Progress callback used by long operations.  @done and @total are in the
 * operation's unit (bytes unless documented otherwise); @total may be 0 when
 * unknown.  Return 0 to continue; any other value cancels the operation,
 * which then fails with -ECANCELED.
 */
typedef int (*md_progress_fn)(void *userdata, uint64_t done, uint64_t total);

MD_END_DECLS

#endif
