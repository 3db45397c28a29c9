/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Multi-threaded streaming compression for the cpio sink (md-compress.h).
 *
 * zstd and xz bring their own worker threads (libzstd's ZSTDMT, liblzma's
 * stream_encoder_mt); gzip and lz4 run on the chunk pool below.  Either way
 * the calling thread only hands input over and writes output, so the
 * context (not thread-safe) is touched by that thread alone: workers report
 * errno codes, the caller turns them into messages.
 */
#include <lz4.h>
#include <lz4hc.h>
#include <lzma.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "md-compress.h"
#include "md-internal.h"

/*
 * gzip: the input is cut into GZ_CHUNK pieces; each is deflated on its own
 * with the GZ_DICT bytes before it as preset dictionary and ends with a
 * sync flush (an empty stored block: byte-aligned, not final), the last one
 * with Z_FINISH, so the pieces concatenate into one deflate stream.  128 KiB
 * is pigz's default: large enough that the restarts cost well under 1 %.
 */
#define GZ_CHUNK (128u * 1024u)
#define GZ_DICT (32u * 1024u)    /* deflate's whole window */
#define GZ_SLOTS_PER_THREAD 4    /* chunks in flight per thread */
/* lz4 legacy frames: independent 8 MiB blocks, what `lz4 -l` and the kernel use. */
#define LZ4_LEGACY_MAGIC 0x184C2102u
#define LZ4_BLOCK (8u << 20)
#define LZ4_SLOTS_PER_THREAD 1   /* plus one being filled */
/*
 * zstd: the window is set explicitly, to libzstd's own choice for the level
 * and an input of unknown size (the table is libzstd 1.5's, whose level
 * parameters are not public API), capped at 2^27 = 128 MiB: the kernel
 * rejects a frame whose window exceeds ZSTD_WINDOWSIZE_MAX, which is 2^27
 * in the kernels of 5.9-5.15 (the first with CONFIG_RD_ZSTD, zstd 1.3.1)
 * and 2^31 (2^30 on 32-bit) from 5.16, and it allocates the whole window
 * at boot.  Jobs are max(8 MiB, 4 windows), fixed so that they can never
 * follow the thread count (libzstd's default is 4 windows, at least 1 MiB).
 */
#define ZSTD_JOB_MIN (8u << 20)
#define ZSTD_WLOG_KERNEL_MAX 27
static const uint8_t zstd_wlog[23] = {
    19, 19, 20, 21, 21, 21, 21, 21, 21, 22, 22, 22, 22, 22, 22, 22, 22, 23, 23, 23, 25, 26, 27,
};
/*
 * xz: blocks of 1.5 dictionaries (12 MiB at the default preset 6), half
 * liblzma's default of 3: an 80-100 MB archive then has enough blocks to
 * keep two threads busy to the end.  Each block starts with an empty
 * dictionary; on 82 MB of linux-source fs/ + include/ the stream was 1.5 %
 * larger than `xz -6 -T1`'s single block (16 MiB: 1.3 %, 24 MiB: 0.65 %,
 * 8 MiB: 2.6 %).
 */
#define XZ_BLOCK_NUM 3u
#define XZ_BLOCK_DEN 2u
#define XZ_BLOCK_MIN (1u << 20)
/* xz threads are reduced until the encoder needs at most this share of RAM. */
#define XZ_MEM_SHARE 4

#define OUT_BUF (128u * 1024u)  /* output buffer of the zstd and xz engines */

/* A FREE slot is the caller's: the one at pool.fill is being filled. */
enum { JOB_FREE, JOB_QUEUED, JOB_BUSY, JOB_DONE };

struct job {
    int state;              /* JOB_*, under pool.mu */
    unsigned char *dict;    /* gzip: the GZ_DICT bytes before @in */
    size_t dict_len;
    unsigned char *in;
    size_t in_len;
    unsigned char *out;     /* owned by the worker while BUSY (it may grow it) */
    size_t out_cap, out_len;
    uint32_t crc;           /* gzip: CRC32 of @in */
    bool last;
    int err;                /* negative errno from the engine */
};

struct worker {
    md_compressor *c;
    void *state;            /* the engine's per-thread state */
    pthread_t tid;
    bool started;
};

struct pool {
    size_t chunk;
    size_t n;               /* slots */
    struct job *slots;
    size_t fill;            /* slot being filled (caller) */
    size_t emit;            /* next slot to write out (caller) */
    size_t take;            /* next slot for a worker (under mu) */
    size_t pending;         /* queued or running or done, not yet written (caller) */
    struct worker *w;
    size_t nw;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    bool sync_ready, stop;
    /* gzip trailer, caller only */
    uint32_t crc;
    uint64_t total;
};

struct engine;

struct md_compressor {
    md_ctx *ctx;
    const struct engine *eng;
    int32_t level;
    uint32_t threads;
    md_compress_out_fn out;
    void *userdata;
    int err;                /* first error; every later call returns it */
    bool finished;
    unsigned char *obuf;    /* zstd, xz */
    ZSTD_CCtx *zc;
    lzma_stream xz;
    bool xz_ready;
    struct pool *pool;      /* gzip, lz4 */
};

/* An engine: either streaming (write/finish) or chunked (per-thread state + run). */
struct engine {
    const char *name;
    int (*init)(md_compressor *c);
    int (*write)(md_compressor *c, const unsigned char *buf, size_t n);
    int (*finish)(md_compressor *c);
    /* chunked engines */
    size_t chunk, dict, slots_per_thread;
    bool crc;                         /* run() computes job.crc: combine them */
    size_t (*out_bound)(size_t chunk);
    int (*state_new)(int32_t level, void **state);
    void (*state_free)(void *state);
    int (*run)(void *state, int32_t level, struct job *j);
    int (*begin)(md_compressor *c);   /* header */
    int (*end)(md_compressor *c);     /* trailer */
};

uint32_t md_compress_threads(uint32_t threads)
{
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (uint32_t)(n < (long)MD_COMPRESS_THREADS_MAX ? n : MD_COMPRESS_THREADS_MAX)
                        : 1;
    }
    return threads > MD_COMPRESS_THREADS_MAX ? MD_COMPRESS_THREADS_MAX : threads;
}

static int emit(md_compressor *c, const void *buf, size_t n)
{
    int r;

    if (n == 0)
        return 0;
    r = c->out(c->userdata, buf, n);
    if (r < 0 && !c->err)
        c->err = r;
    return r;
}

static int fail(md_compressor *c, int err, const char *what, int code)
{
    c->err = md_error(c->ctx, err, "%s compression failed (%s error %d)", c->eng->name, what, code);
    return c->err;
}

/* ---- none ---------------------------------------------------------------------- */

static int none_write(md_compressor *c, const unsigned char *buf, size_t n)
{
    return emit(c, buf, n);
}

static int none_finish(md_compressor *c)
{
    (void)c;
    return 0;
}

/* ---- zstd ---------------------------------------------------------------------- */

static int zstd_fail(md_compressor *c, size_t zr)
{
    c->err = md_error(c->ctx, ZSTD_getErrorCode(zr) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO,
                      "zstd compression failed: %s", ZSTD_getErrorName(zr));
    return c->err;
}

static int zstd_init(md_compressor *c)
{
    ZSTD_bounds wb = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers);
    int wlog = c->level >= 1 && c->level <= 22 ? zstd_wlog[c->level] : 21;
    size_t job, zr;
    int workers = (int)c->threads;

    if (wlog > ZSTD_WLOG_KERNEL_MAX)
        wlog = ZSTD_WLOG_KERNEL_MAX;
    job = (size_t)4 << wlog;
    if (job < ZSTD_JOB_MIN)
        job = ZSTD_JOB_MIN;
    /* nbWorkers >= 1 always: 0 is libzstd's single-threaded mode, whose
     * output differs from the multi-threaded one.  A libzstd built without
     * threads has only that mode: then it is used whatever the thread
     * count, so the bytes still do not depend on it. */
    if (ZSTD_isError(wb.error) || wb.upperBound < 1)
        workers = 0;
    else if (workers > wb.upperBound)
        workers = wb.upperBound;
    c->zc = ZSTD_createCCtx();
    c->obuf = malloc(OUT_BUF);
    if (!c->zc || !c->obuf)
        return md_error(c->ctx, -ENOMEM, "out of memory");
    zr = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, c->level);
    if (!ZSTD_isError(zr))
        zr = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_windowLog, wlog);
    if (!ZSTD_isError(zr))
        zr = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(zr) && workers > 0)
        zr = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_nbWorkers, workers);
    if (!ZSTD_isError(zr) && workers > 0)
        zr = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_jobSize, (int)job);
    if (ZSTD_isError(zr))
        return md_error(c->ctx, -EINVAL, "zstd: cannot set up level %d with %d workers: %s",
                        c->level, workers, ZSTD_getErrorName(zr));
    return 0;
}

static int zstd_run(md_compressor *c, const unsigned char *buf, size_t n, ZSTD_EndDirective end)
{
    ZSTD_inBuffer in = { buf, n, 0 };

    for (;;) {
        ZSTD_outBuffer out = { c->obuf, OUT_BUF, 0 };
        size_t left = ZSTD_compressStream2(c->zc, &out, &in, end);

        if (ZSTD_isError(left))
            return zstd_fail(c, left);
        if (emit(c, c->obuf, out.pos) < 0)
            return c->err;
        if (end == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

static int zstd_write(md_compressor *c, const unsigned char *buf, size_t n)
{
    return zstd_run(c, buf, n, ZSTD_e_continue);
}

static int zstd_finish(md_compressor *c)
{
    return zstd_run(c, NULL, 0, ZSTD_e_end);
}

/* ---- xz ------------------------------------------------------------------------ */

static int xz_init(md_compressor *c)
{
    lzma_options_lzma lz;
    lzma_mt mt;
    uint64_t mem, limit;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    lzma_ret lr;

    if (lzma_lzma_preset(&lz, (uint32_t)c->level))
        return md_error(c->ctx, -EINVAL, "xz: unknown preset %d", c->level);
    memset(&mt, 0, sizeof(mt));
    mt.threads = c->threads;
    mt.block_size = (uint64_t)lz.dict_size * XZ_BLOCK_NUM / XZ_BLOCK_DEN;
    if (mt.block_size < XZ_BLOCK_MIN)
        mt.block_size = XZ_BLOCK_MIN;
    mt.timeout = 0;
    mt.preset = (uint32_t)c->level;
    mt.filters = NULL;                /* the preset's LZMA2 alone, no BCJ */
    mt.check = LZMA_CHECK_CRC32;      /* the kernel's XZ decoder: CRC32 or none */
    /* Fewer threads change nothing in the output: only the memory. */
    limit = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize / XZ_MEM_SHARE : 0;
    while (limit && mt.threads > 1 && (mem = lzma_stream_encoder_mt_memusage(&mt)) != UINT64_MAX &&
           mem > limit)
        mt.threads--;
    c->obuf = malloc(OUT_BUF);
    if (!c->obuf)
        return md_error(c->ctx, -ENOMEM, "out of memory");
    lr = lzma_stream_encoder_mt(&c->xz, &mt);
    if (lr != LZMA_OK)
        return md_error(c->ctx, lr == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL,
                        "xz: cannot set up the encoder for preset %d with %u threads (liblzma error %d)",
                        c->level, mt.threads, (int)lr);
    c->xz_ready = true;
    return 0;
}

static int xz_run(md_compressor *c, const unsigned char *buf, size_t n, lzma_action action)
{
    c->xz.next_in = buf;
    c->xz.avail_in = n;
    for (;;) {
        lzma_ret lr;

        c->xz.next_out = c->obuf;
        c->xz.avail_out = OUT_BUF;
        lr = lzma_code(&c->xz, action);
        if (lr != LZMA_OK && lr != LZMA_STREAM_END)
            return fail(c, lr == LZMA_MEM_ERROR ? -ENOMEM : -EIO, "liblzma", (int)lr);
        if (emit(c, c->obuf, OUT_BUF - c->xz.avail_out) < 0)
            return c->err;
        if (lr == LZMA_STREAM_END || (action == LZMA_RUN && c->xz.avail_in == 0))
            return 0;
    }
}

static int xz_write(md_compressor *c, const unsigned char *buf, size_t n)
{
    return xz_run(c, buf, n, LZMA_RUN);
}

static int xz_finish(md_compressor *c)
{
    return xz_run(c, NULL, 0, LZMA_FINISH);
}

/* ---- gzip (chunked) ------------------------------------------------------------- */

static size_t gz_bound(size_t chunk)
{
    /* zlib's bound plus the sync flush's empty stored block; run() grows
     * the buffer should it ever be short */
    return compressBound((uLong)chunk) + 16;
}

static int gz_state_new(int32_t level, void **state)
{
    z_stream *zs = calloc(1, sizeof(*zs));
    int zr;

    if (!zs)
        return -ENOMEM;
    /* raw deflate (-15): the gzip wrapper is ours */
    zr = deflateInit2(zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    if (zr != Z_OK) {
        free(zs);
        return zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    }
    *state = zs;
    return 0;
}

static void gz_state_free(void *state)
{
    if (state) {
        deflateEnd(state);
        free(state);
    }
}

static int gz_run(void *state, int32_t level, struct job *j)
{
    z_stream *zs = state;
    int flush = j->last ? Z_FINISH : Z_SYNC_FLUSH;

    (void)level;
    if (deflateReset(zs) != Z_OK)
        return -EIO;
    if (j->dict_len && deflateSetDictionary(zs, j->dict, (uInt)j->dict_len) != Z_OK)
        return -EIO;
    zs->next_in = j->in;
    zs->avail_in = (uInt)j->in_len;
    zs->next_out = j->out;
    zs->avail_out = (uInt)j->out_cap;
    for (;;) {
        int zr = deflate(zs, flush);

        if (zr == Z_STREAM_ERROR)
            return -EIO;
        if (j->last ? zr == Z_STREAM_END : zs->avail_in == 0 && zs->avail_out > 0)
            break;
        if (zs->avail_out == 0) {
            size_t used = j->out_cap, cap = used * 2;
            unsigned char *p = realloc(j->out, cap);
            if (!p)
                return -ENOMEM;
            j->out = p;
            j->out_cap = cap;
            zs->next_out = p + used;
            zs->avail_out = (uInt)(cap - used);
        }
    }
    j->out_len = j->out_cap - zs->avail_out;
    j->crc = (uint32_t)crc32(0, j->in, (uInt)j->in_len);
    return 0;
}

static int gz_begin(md_compressor *c)
{
    /* no name, mtime 0, no FEXTRA/FCOMMENT/FHCRC (the kernel's parser
     * skips only FNAME); XFL as gzip(1) sets it; OS 3 = Unix */
    unsigned char h[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };

    h[8] = c->level == 9 ? 2 : c->level == 1 ? 4 : 0;
    return emit(c, h, sizeof(h));
}

static int gz_end(md_compressor *c)
{
    unsigned char t[8];

    md_put_le32(t, c->pool->crc);
    md_put_le32(t + 4, (uint32_t)c->pool->total);
    return emit(c, t, sizeof(t));
}

/* ---- lz4 legacy (chunked) -------------------------------------------------------- */

static size_t lz4_bound(size_t chunk)
{
    return (size_t)LZ4_compressBound((int)chunk) + 4;
}

static int lz4_state_new(int32_t level, void **state)
{
    *state = malloc((size_t)(level < LZ4HC_CLEVEL_MIN ? LZ4_sizeofState() : LZ4_sizeofStateHC()));
    return *state ? 0 : -ENOMEM;
}

static void lz4_state_free(void *state)
{
    free(state);
}

static int lz4_run(void *state, int32_t level, struct job *j)
{
    int n, cap = (int)(j->out_cap - 4);

    /* levels 1-2: the fast compressor at acceleration 1; 3-12: HC */
    if (level < LZ4HC_CLEVEL_MIN)
        n = LZ4_compress_fast_extState(state, (const char *)j->in, (char *)j->out + 4,
                                       (int)j->in_len, cap, 1);
    else
        n = LZ4_compress_HC_extStateHC(state, (const char *)j->in, (char *)j->out + 4,
                                       (int)j->in_len, cap, level);
    if (n <= 0)
        return -EIO;
    md_put_le32(j->out, (uint32_t)n);
    j->out_len = (size_t)n + 4;
    return 0;
}

static int lz4_begin(md_compressor *c)
{
    unsigned char m[4];

    md_put_le32(m, LZ4_LEGACY_MAGIC);
    return emit(c, m, sizeof(m));
}

/* ---- the chunk pool ----------------------------------------------------------------- */

static void *worker_main(void *userdata)
{
    struct worker *w = userdata;
    md_compressor *c = w->c;
    struct pool *p = c->pool;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct job *j;
        int r;

        while (!p->stop && p->slots[p->take].state != JOB_QUEUED)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->stop)
            break;
        j = &p->slots[p->take];
        p->take = (p->take + 1) % p->n;
        j->state = JOB_BUSY;
        pthread_mutex_unlock(&p->mu);
        r = c->eng->run(w->state, c->level, j);
        pthread_mutex_lock(&p->mu);
        j->err = r;
        j->state = JOB_DONE;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Write out the oldest job (DONE, taken out of the workers' hands). */
static int pool_emit_one(md_compressor *c, struct job *j)
{
    struct pool *p = c->pool;

    if (j->err < 0) {
        c->err = md_error(c->ctx, j->err, "%s compression failed: %s", c->eng->name,
                          j->err == -ENOMEM ? "out of memory" : "internal error");
        return c->err;
    }
    if (c->eng->crc)
        p->crc = (uint32_t)crc32_combine(p->crc, j->crc, (z_off_t)j->in_len);
    p->total += j->in_len;
    return emit(c, j->out, j->out_len);
}

/*
 * Write out finished jobs in order.  @block: wait until slot @until is free
 * (every job before it written); otherwise only what is done already.
 */
static int pool_reap(md_compressor *c, bool block, size_t until)
{
    struct pool *p = c->pool;
    int r = 0;

    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) {
        struct job *j = &p->slots[p->emit];

        if (block && p->slots[until].state == JOB_FREE)
            break;
        if (j->state != JOB_DONE) {
            if (!block)
                break;
            pthread_cond_wait(&p->done, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        r = pool_emit_one(c, j);
        pthread_mutex_lock(&p->mu);
        j->state = JOB_FREE;
        p->emit = (p->emit + 1) % p->n;
        p->pending--;
        if (r < 0)
            break;
    }
    pthread_mutex_unlock(&p->mu);
    return r;
}

/* Queue the slot being filled; unless it is the last, start filling the next. */
static int pool_submit(md_compressor *c, bool last)
{
    struct pool *p = c->pool;
    struct job *j = &p->slots[p->fill], *nj;
    size_t next = (p->fill + 1) % p->n;
    int r;

    j->last = last;
    pthread_mutex_lock(&p->mu);
    j->state = JOB_QUEUED;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    p->pending++;
    p->fill = next;
    if (last)
        return 0;
    r = pool_reap(c, true, next);
    if (r >= 0)
        r = pool_reap(c, false, 0);
    if (r < 0)
        return r;
    /* the workers only read a queued job's input: copying from it is safe */
    nj = &p->slots[next];
    nj->in_len = 0;
    nj->dict_len = c->eng->dict;
    if (nj->dict_len)
        memcpy(nj->dict, j->in + j->in_len - nj->dict_len, nj->dict_len);
    return 0;
}

static int pool_write(md_compressor *c, const unsigned char *buf, size_t n)
{
    struct pool *p = c->pool;

    while (n > 0) {
        struct job *j = &p->slots[p->fill];
        size_t k = p->chunk - j->in_len;
        int r;

        if (k > n)
            k = n;
        memcpy(j->in + j->in_len, buf, k);
        j->in_len += k;
        buf += k;
        n -= k;
        if (j->in_len == p->chunk && (r = pool_submit(c, false)) < 0)
            return r;
    }
    return 0;
}

static int pool_finish(md_compressor *c)
{
    struct pool *p = c->pool;
    size_t last;
    int r;

    /* gzip needs its final block even when empty; a legacy lz4 frame
     * has no empty blocks */
    if (p->slots[p->fill].in_len > 0 || c->eng->end) {
        r = pool_submit(c, true);
        if (r < 0)
            return r;
    }
    if (p->pending > 0) {
        last = (p->fill + p->n - 1) % p->n;
        r = pool_reap(c, true, last);
        if (r < 0)
            return r;
    }
    return c->eng->end ? c->eng->end(c) : 0;
}

static void pool_free(md_compressor *c)
{
    struct pool *p = c->pool;
    size_t i;

    if (!p)
        return;
    if (p->sync_ready) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->mu);
    }
    for (i = 0; p->w && i < p->nw; i++) { /* p->w is NULL when its allocation failed */
        if (p->w[i].started)
            pthread_join(p->w[i].tid, NULL);
        c->eng->state_free(p->w[i].state);
    }
    if (p->sync_ready) {
        pthread_cond_destroy(&p->done);
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->mu);
    }
    for (i = 0; p->slots && i < p->n; i++) {
        free(p->slots[i].dict);
        free(p->slots[i].in);
        free(p->slots[i].out);
    }
    free(p->slots);
    free(p->w);
    free(p);
    c->pool = NULL;
}

static int pool_init(md_compressor *c)
{
    const struct engine *e = c->eng;
    struct pool *p;
    size_t i;
    int r;

    p = c->pool = calloc(1, sizeof(*p));
    if (!p)
        return md_error(c->ctx, -ENOMEM, "out of memory");
    p->chunk = e->chunk;
    p->nw = c->threads;
    p->n = p->nw * e->slots_per_thread + 1;
    p->slots = calloc(p->n, sizeof(*p->slots));
    p->w = calloc(p->nw, sizeof(*p->w));
    if (!p->slots || !p->w)
        return md_error(c->ctx, -ENOMEM, "out of memory");
    for (i = 0; i < p->n; i++) {
        struct job *j = &p->slots[i];
        j->in = malloc(e->chunk);
        j->out_cap = e->out_bound(e->chunk);
        j->out = malloc(j->out_cap);
        if (e->dict)
            j->dict = malloc(e->dict);
        if (!j->in || !j->out || (e->dict && !j->dict))
            return md_error(c->ctx, -ENOMEM, "out of memory");
    }
    p->crc = (uint32_t)crc32(0, NULL, 0);
    for (i = 0; i < p->nw; i++) {
        p->w[i].c = c;
        r = e->state_new(c->level, &p->w[i].state);
        if (r < 0)
            return md_error(c->ctx, r, "%s: cannot set up the compressor for level %d%s", e->name,
                            c->level, r == -ENOMEM ? ": out of memory" : "");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->sync_ready = true;
    for (i = 0; i < p->nw; i++) {
        r = pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i]);
        if (r != 0)
            return md_error(c->ctx, -r, "%s: cannot start a compression thread: %s", e->name,
                            strerror(r));
        p->w[i].started = true;
    }
    return e->begin ? e->begin(c) : 0;
}

/* ---- the table and the object ---------------------------------------------------------- */

static const struct engine engines[] = {
    [MD_COMPRESS_NONE] = { .name = "none", .write = none_write, .finish = none_finish },
    [MD_COMPRESS_GZIP] = { .name = "gzip", .init = pool_init, .write = pool_write,
                           .finish = pool_finish, .chunk = GZ_CHUNK, .dict = GZ_DICT, .crc = true,
                           .slots_per_thread = GZ_SLOTS_PER_THREAD, .out_bound = gz_bound,
                           .state_new = gz_state_new, .state_free = gz_state_free,
                           .run = gz_run, .begin = gz_begin, .end = gz_end },
    [MD_COMPRESS_XZ] = { .name = "xz", .init = xz_init, .write = xz_write, .finish = xz_finish },
    [MD_COMPRESS_ZSTD] = { .name = "zstd", .init = zstd_init, .write = zstd_write,
                           .finish = zstd_finish },
    [MD_COMPRESS_LZ4] = { .name = "lz4", .init = pool_init, .write = pool_write,
                          .finish = pool_finish, .chunk = LZ4_BLOCK,
                          .slots_per_thread = LZ4_SLOTS_PER_THREAD, .out_bound = lz4_bound,
                          .state_new = lz4_state_new, .state_free = lz4_state_free,
                          .run = lz4_run, .begin = lz4_begin },
};

int md_compressor_new(md_ctx *ctx, int32_t codec, int32_t level, uint32_t threads,
                      md_compress_out_fn out, void *userdata, md_compressor **ret)
{
    md_compressor *c;
    int r;

    if (!ret || !out)
        return -EINVAL;
    *ret = NULL;
    if (codec < 0 || codec >= (int32_t)(sizeof(engines) / sizeof(engines[0])))
        return md_error(ctx, -EINVAL, "unknown compression %d", codec);
    c = calloc(1, sizeof(*c));
    if (!c)
        return md_error(ctx, -ENOMEM, "out of memory");
    c->ctx = ctx;
    c->eng = &engines[codec];
    c->level = level;
    c->threads = md_compress_threads(threads);
    c->out = out;
    c->userdata = userdata;
    c->xz = (lzma_stream)LZMA_STREAM_INIT;
    r = c->eng->init ? c->eng->init(c) : 0;
    if (r < 0) {
        md_compressor_free(c);
        return r;
    }
    *ret = c;
    return 0;
}

int md_compressor_write(md_compressor *c, const void *buf, size_t n)
{
    int r;

    if (c->err)
        return c->err;
    if (c->finished)
        return md_error(c->ctx, -EINVAL, "%s: write after the end of the stream", c->eng->name);
    r = c->eng->write(c, buf, n);
    if (r < 0 && !c->err)
        c->err = r;
    return r;
}

int md_compressor_finish(md_compressor *c)
{
    int r;

    if (c->err)
        return c->err;
    if (c->finished)
        return md_error(c->ctx, -EINVAL, "%s: the stream is already finished", c->eng->name);
    c->finished = true;
    r = c->eng->finish(c);
    if (r < 0 && !c->err)
        c->err = r;
    return r;
}

void md_compressor_free(md_compressor *c)
{
    if (!c)
        return;
    pool_free(c);
    ZSTD_freeCCtx(c->zc);
    if (c->xz_ready)
        lzma_end(&c->xz);
    free(c->obuf);
    free(c);
}
