/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Streaming compressors for the cpio sink, multi-threaded, in the variants
 * the Linux kernel's initramfs unpacker reads.  Internal, not installed.
 *
 *   md_compressor_new() -> md_compressor_write()... -> md_compressor_finish()
 *   -> md_compressor_free()
 *
 * The output goes to a callback, always called on the caller's thread (the
 * one that calls write and finish), in order.  The compressed bytes depend
 * on the codec, the level and the input only: never on the thread count,
 * on how the input is split into write calls or on timing.  Every codec
 * cuts its input at fixed sizes and compresses the pieces independently of
 * which thread runs them:
 *   gzip  one gzip member; 128 KiB chunks deflated in parallel, each with
 *         the 32 KiB before it as preset dictionary, joined with sync
 *         flushes (pigz's scheme); CRC32 combined
 *   xz    liblzma's multi-threaded encoder: one stream of fixed-size
 *         blocks, LZMA2, CRC32 check
 *   zstd  libzstd with >= 1 worker and a fixed job size: one frame
 *   lz4   legacy frame, 8 MiB blocks compressed in parallel
 *   none  pass-through
 * Memory is bounded per thread and does not grow with the input.
 */
#ifndef MD_COMPRESS_H
#define MD_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "libminidistro/minidistro.h"

/* Thread counts above this are treated as this. */
#define MD_COMPRESS_THREADS_MAX 256u

/* Receives compressed bytes; returns 0 or a negative errno (and then has
 * left its own message on the context, if it wants one). */
typedef int (*md_compress_out_fn)(void *userdata, const void *buf, size_t n);

typedef struct md_compressor md_compressor;

/* The number of threads md_compressor_new() uses for @threads: 0 means the
 * number of online CPUs; the result is in 1..MD_COMPRESS_THREADS_MAX. */
uint32_t md_compress_threads(uint32_t threads);

/*
 * A compressor for @codec (MD_COMPRESS_*) at @level (already validated, not
 * MD_COMPRESS_LEVEL_DEFAULT) with @threads worker threads (0: one per
 * online CPU), writing through @out(@userdata, ...).  Error messages go to
 * @ctx (borrowed; used only on the caller's thread).
 * Errors: -EINVAL (unknown codec), -ENOMEM, -EAGAIN (no thread), -EIO.
 */
int md_compressor_new(md_ctx *ctx, int32_t codec, int32_t level, uint32_t threads,
                      md_compress_out_fn out, void *userdata, md_compressor **ret);

/* Compress @n bytes of @buf (borrowed; copied or consumed before this
 * returns).  After a failure every call returns the same error. */
int md_compressor_write(md_compressor *c, const void *buf, size_t n);

/* End the stream: flush everything through @out.  Call once. */
int md_compressor_finish(md_compressor *c);

/* Stop the workers and free everything (pending output is dropped).  NULL-safe. */
void md_compressor_free(md_compressor *c);

#endif
