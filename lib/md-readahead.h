/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Read-ahead of file contents for the sinks (cpio, ext).  Internal.
 *
 * A helper thread opens and reads the contents of the tree's regular files
 * (host files and the archive spool) in tree order into a small ring of
 * chunks, so that reading overlaps with what the calling thread does with
 * them (compressing, allocating blocks and writing the image).  The helper
 * touches nothing shared but the ring: it records errno values, and the
 * calling thread words the messages (a context is not thread-safe).  What
 * is read, and in which order, is fixed before the thread starts, so the
 * output never depends on timing.
 *
 *   md_ra_start() -> md_ra_next() [md_ra_add_run()...] md_ra_done() ...
 *   -> md_ra_drain() -> md_ra_stop()
 *
 * With a write descriptor, a second helper writes behind the consumer: the
 * consumer describes where each chunk's bytes go (md_ra_add_run()) and
 * hands the chunk on (md_ra_done()); the writer pwrite()s the runs in order
 * and frees the slot.  The consumer then only decides, the copying into the
 * output file runs beside it.  Only for output that nothing else reads or
 * writes at those offsets meanwhile (file data in blocks just allocated).
 */
#ifndef MD_READAHEAD_H
#define MD_READAHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md-internal.h"

enum md_ra_kind {
    MD_RA_OK = 0,   /* data (possibly none: the end of a file after a hole) */
    MD_RA_OPEN,     /* the file could not be opened: err */
    MD_RA_CHANGED,  /* it is not the file the source saw (md_data_open()'s -ESTALE) */
    MD_RA_READ,     /* a read failed: err */
    MD_RA_RESIZED,  /* it is not the size it had when listed: size_now */
};

/* Bytes of a chunk the writer puts at an offset of its file. */
struct md_ra_run {
    size_t buf_off, len;
    uint64_t file_off;
};

struct md_ra_chunk {
    size_t entry;       /* index in tree->v */
    uint64_t pos;       /* offset of buf in the file */
    size_t n;           /* bytes in buf */
    bool last;          /* the entry's last chunk */
    int kind, err;      /* enum md_ra_kind; an errno value for OPEN and READ */
    uint64_t size_now;  /* RESIZED: the file's size after the read */
    char *buf;          /* chunk bytes, with room for a whole chunk */
    struct md_ra_run *runs; /* for the writer: where its bytes go */
    size_t n_runs, cap_runs;
};

typedef struct md_ra md_ra;

/* Start reading the contents of the entries @want marks (by index in
 * tree->v; each a regular file whose data is in a host file or the spool),
 * in tree order, in chunks of @chunk bytes.  @hole_align > 0: a host file
 * that may have holes (md_data.sparse) is read by SEEK_DATA/SEEK_HOLE, each
 * piece of data widened to multiples of @hole_align (the block size; @chunk
 * is a multiple of it), a chunk ending at each hole, and the holes' bytes
 * are never delivered (the caller treats them as zeros); 0: every byte is.
 * @write_fd >= 0: a write-behind helper writes the runs md_ra_add_run()
 * gives to that descriptor, and with @kick starts its writeback every
 * MD_RA_KICK bytes; -1: none (the consumer writes itself).  Takes @want (freed by
 * md_ra_stop()).  0, -ENOMEM or -EAGAIN (no thread); on failure nothing is
 * left running and @want is freed. */
int md_ra_start(md_ra **ret, md_tree *tree, unsigned char *want, size_t chunk, unsigned hole_align,
                int write_fd, bool kick);
/* The next chunk in order (blocks until the helper has one); NULL when the
 * helper has ended without one (asked for more than @want marked: a bug).
 * The consumer may write into its buffer (padding) until md_ra_done(). */
struct md_ra_chunk *md_ra_next(md_ra *r);
/* With a writer: @len bytes at @data (inside @c's buffer) go to @file_off.
 * 0 or -ENOMEM. */
int md_ra_add_run(struct md_ra_chunk *c, const char *data, size_t len, uint64_t file_off);
/* The consumer is done with the chunk md_ra_next() returned: the writer
 * writes its runs, or (no writer) the slot is free at once.  Returns the
 * writer's first error so far (-errno; *@err_entry: the entry it was
 * writing), or 0. */
int md_ra_done(md_ra *r, size_t *err_entry);
/* Wait until the writer has written every chunk handed to it; its first
 * error (as md_ra_done()), or 0.  At once without a writer. */
int md_ra_drain(md_ra *r, size_t *err_entry);
/* Have the helper start writeback of @fd's dirty pages (sync_file_range(2),
 * without waiting) before it reads on: the page walk and I/O submission that
 * costs then runs on its thread.  Advisory; a kick not yet taken is replaced. */
void md_ra_writeback(md_ra *r, int fd);
/* Stop the helper (wherever it is) and free everything; NULL-safe. */
void md_ra_stop(md_ra *r);

/* The message for a failed chunk @c of entry @e, on @ctx, in the words
 * md_data_open() and md_data_read() use; returns the negative errno. */
int md_ra_error(const md_ra *r, md_ctx *ctx, const struct md_entry *e, const struct md_ra_chunk *c);

#endif
