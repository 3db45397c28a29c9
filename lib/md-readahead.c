/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Read-ahead of file contents for the sinks (md-readahead.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "md-readahead.h"

/* Bytes the writer writes between two starts of writeback. */
#define MD_RA_KICK (32u << 20)

/* Slots in the ring.  A waiting producer is woken only once half of them are
 * free again, a waiting consumer once half of them are full (or the producer
 * has ended), so that many small files do not cost two wake-ups each. */
#define RA_SLOTS 32
/* The writer takes the chunks the consumer is done with in groups of this
 * many (fewer only when the consumer drains): the groups, and so the
 * write calls, do not depend on the threads' timing (t-fault counts
 * them). */
#define RA_BATCH (RA_SLOTS / 4)

struct md_ra {
    md_tree *tree;
    unsigned char *want;
    size_t chunk;
    unsigned hole_align;
    pthread_t thread, wthread;
    bool writer;         /* a write-behind thread writes the chunks' runs */
    int wfd;             /* to this file */
    bool kick;           /* and starts its writeback every MD_RA_KICK bytes */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct md_ra_chunk slots[RA_SLOTS];
    /* Slots [head, head + count) hold chunks in order; of them, the first
     * @used have been taken by the consumer (md_ra_done()) and wait for the
     * writer (without one, md_ra_done() frees them at once). */
    size_t head, count, used;
    bool prod_waiting;   /* the producer waits for free slots */
    bool cons_waiting;   /* the consumer waits for a chunk */
    bool writer_waiting; /* the writer waits for taken chunks */
    bool draining;       /* the consumer waits for the writer to finish */
    bool stop;           /* the consumer gave up: the helpers must exit */
    bool done;           /* the producer has exited */
    int wb_fd;           /* md_ra_writeback(): a file to start writeback of, or -1 */
    int werr;            /* the writer's first error (errno), 0 */
    size_t werr_entry;   /* the entry whose data it was writing */
    uint64_t unkicked;   /* bytes the writer wrote since it last started writeback */
};

/* Producer: wait for a free slot; NULL when told to stop. */
static struct md_ra_chunk *slot_get(md_ra *r)
{
    struct md_ra_chunk *c;
    int wb;

    pthread_mutex_lock(&r->mu);
    wb = r->wb_fd;
    if (wb >= 0) {
        /* outside the lock: it may take a while */
        r->wb_fd = -1;
        pthread_mutex_unlock(&r->mu);
#ifdef SYNC_FILE_RANGE_WRITE
        (void)sync_file_range(wb, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
        pthread_mutex_lock(&r->mu);
    }
    while (r->count == RA_SLOTS && !r->stop) {
        r->prod_waiting = true;
        if (r->cons_waiting)
            pthread_cond_broadcast(&r->cv);
        pthread_cond_wait(&r->cv, &r->mu);
    }
    r->prod_waiting = false;
    c = r->stop ? NULL : &r->slots[(r->head + r->count) % RA_SLOTS];
    pthread_mutex_unlock(&r->mu);
    return c;
}

static void slot_put(md_ra *r)
{
    pthread_mutex_lock(&r->mu);
    r->count++;
    if (r->cons_waiting && r->count - r->used >= RA_SLOTS / 2)
        pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Tell the consumer why entry @i ends here: false (the helper stops). */
static bool report(md_ra *r, size_t i, uint64_t pos, int kind, int err)
{
    struct md_ra_chunk *c = slot_get(r);

    if (c) {
        c->entry = i, c->pos = pos, c->n = 0, c->last = true, c->kind = kind, c->err = err;
        slot_put(r);
    }
    return false;
}

/* The next piece of @d from *@pos on: its start in *@pos, its end in *@end
 * (cut at the next hole); false when only a hole remains. */
static bool next_data(const md_ra *r, const struct md_data *d, uint64_t *pos, uint64_t *end)
{
    unsigned a = r->hole_align;
    off_t s, h;

    *end = d->size;
    if (!a || !d->sparse || d->fd < 0 || d->off)
        return *pos < d->size;
    s = lseek(d->fd, (off_t)*pos, SEEK_DATA);
    if (s < 0)
        return errno != ENXIO && *pos < d->size; /* ENXIO: only a hole is left */
    *pos = (uint64_t)s / a * a;
    h = lseek(d->fd, (off_t)*pos, SEEK_HOLE);
    if (h >= 0 && (uint64_t)h < *end)
        *end = ((uint64_t)h + a - 1) / a * a;
    if (*end > d->size)
        *end = d->size;
    return *pos < d->size;
}

/* Entry @i, chunk by chunk: false when the helper must stop. */
static bool read_entry(md_ra *r, size_t i)
{
    const struct md_entry *e = r->tree->v[i];
    struct md_data d;
    uint64_t pos = 0, end = 0;
    int k;

    /* no context from this thread: the consumer words the message */
    k = md_data_open(r->tree, NULL, e, &d);
    if (k < 0)
        return report(r, i, 0, k == -ESTALE ? MD_RA_CHANGED : MD_RA_OPEN, -k);
    if (d.own_fd && d.size > r->chunk)
        (void)posix_fadvise(d.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (;;) {
        bool more = next_data(r, &d, &pos, &end);
        struct md_ra_chunk *c = slot_get(r);
        size_t want;

        if (!c)
            break;
        c->entry = i;
        c->pos = pos;
        c->n = 0;
        c->kind = MD_RA_OK;
        c->err = 0;
        c->last = !more;
        if (more) {
            want = end - pos < r->chunk ? (size_t)(end - pos) : r->chunk;
            k = md_data_read(&d, c->buf, want, pos);
            if (k < 0) {
                /* a short read: it shrank, or was swapped */
                c->kind = k != -EIO                             ? MD_RA_READ
                          : md_data_resized(&d, &c->size_now) ? MD_RA_RESIZED
                                                              : MD_RA_CHANGED;
                c->err = k == -EIO ? ESTALE : -k;
                c->last = true;
            } else {
                c->n = want;
                pos += want;
                c->last = pos >= d.size;
            }
        }
        if (c->last && c->kind == MD_RA_OK && md_data_resized(&d, &c->size_now)) {
            /* read as a hole to its old end through SEEK_DATA, cut after the
             * last read, or grown: its size says it changed */
            c->kind = MD_RA_RESIZED;
            c->err = ESTALE;
        }
        slot_put(r);
        if (c->last) {
            md_data_close(&d);
            return c->kind == MD_RA_OK;
        }
    }
    md_data_close(&d);
    return false;
}

static void *ra_main(void *userdata)
{
    md_ra *r = userdata;
    size_t i;

    for (i = 0; i < r->tree->n; i++)
        if (r->want[i] && !read_entry(r, i))
            break;
    pthread_mutex_lock(&r->mu);
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void free_ra(md_ra *r)
{
    size_t i;

    for (i = 0; i < RA_SLOTS; i++) {
        free(r->slots[i].buf);
        free(r->slots[i].runs);
    }
    free(r->want);
    free(r);
}

/* Free the oldest slot (under the lock). */
static void free_head(md_ra *r)
{
    r->head = (r->head + 1) % RA_SLOTS;
    r->count--;
    r->used--;
    if (r->prod_waiting && r->count <= RA_SLOTS / 2)
        pthread_cond_broadcast(&r->cv);
    if (r->draining && !r->used)
        pthread_cond_broadcast(&r->cv);
}

/* Runs joined into one pwritev(): consecutive files lie next to each other
 * in the image, so most chunks' runs continue the previous one and a batch
 * of small files costs one call instead of one per file. */
#define RA_IOV 64

struct iov_src {
    size_t slot, run;   /* where an iovec's bytes come from */
};

/* Write @n iovecs (a contiguous file range from @off): 0, or an errno value
 * with the entry of the run that fails in *@entry (after a failed batch the
 * runs are written one by one to find it; writing a run twice is harmless). */
static int flush_iov(md_ra *r, struct iovec *iov, const struct iov_src *src, size_t n,
                     uint64_t off, size_t *entry)
{
    size_t i = 0;

    while (i < n) {
        ssize_t w = pwritev(r->wfd, iov + i, (int)(n - i), (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (uint64_t)w;
        while (i < n && (size_t)w >= iov[i].iov_len)
            w -= (ssize_t)iov[i++].iov_len;
        if (i < n && w > 0) {
            iov[i].iov_base = (char *)iov[i].iov_base + w;
            iov[i].iov_len -= (size_t)w;
        }
    }
    if (i == n)
        return 0;
    for (i = 0; i < n; i++) {
        const struct md_ra_chunk *c = &r->slots[src[i].slot];
        const struct md_ra_run *u = &c->runs[src[i].run];
        int err = -md_pwrite_full(r->wfd, c->buf + u->buf_off, u->len, u->file_off);
        if (err) {
            *entry = c->entry;
            return err;
        }
    }
    return 0;
}

/* The runs of the @nb taken chunks from the head, joined where they are
 * contiguous in the file: 0 or the first errno value (*@entry: its entry). */
static int write_taken(md_ra *r, size_t nb, size_t *entry)
{
    struct iovec iov[RA_IOV];
    struct iov_src src[RA_IOV];
    uint64_t start = 0, end = 0;
    size_t n = 0, b, k;
    int err = 0;

    for (b = 0; b < nb && !err; b++) {
        size_t slot = (r->head + b) % RA_SLOTS;
        struct md_ra_chunk *c = &r->slots[slot];

        for (k = 0; k < c->n_runs; k++) {
            const struct md_ra_run *u = &c->runs[k];

            if (n && (n == RA_IOV || u->file_off != end)) {
                if ((err = flush_iov(r, iov, src, n, start, entry)))
                    break;
                n = 0;
            }
            if (!n)
                start = end = u->file_off;
            iov[n].iov_base = c->buf + u->buf_off;
            iov[n].iov_len = u->len;
            src[n].slot = slot;
            src[n].run = k;
            n++;
            end += u->len;
            r->unkicked += u->len;
        }
    }
    if (!err && n)
        err = flush_iov(r, iov, src, n, start, entry);
    return err;
}

/* The writer: the runs of the taken chunks, in order, then their slots are
 * free.  After an error it writes nothing more but still frees the slots. */
static void *writer_main(void *userdata)
{
    md_ra *r = userdata;

    pthread_mutex_lock(&r->mu);
    for (;;) {
        size_t nb, b, entry = 0;
        int err;

        while (r->used < RA_BATCH && !(r->draining && r->used) && !r->stop) {
            r->writer_waiting = true;
            pthread_cond_wait(&r->cv, &r->mu);
        }
        r->writer_waiting = false;
        if (r->stop)
            break;
        /* the consumer is done with them: only this thread touches them */
        nb = r->used < RA_BATCH ? r->used : RA_BATCH;
        err = r->werr;
        pthread_mutex_unlock(&r->mu);
        if (!err)
            err = write_taken(r, nb, &entry);
#ifdef SYNC_FILE_RANGE_WRITE
        if (!err && r->kick && r->unkicked >= MD_RA_KICK) {
            r->unkicked = 0;
            (void)sync_file_range(r->wfd, 0, 0, SYNC_FILE_RANGE_WRITE);
        }
#endif
        pthread_mutex_lock(&r->mu);
        if (err && !r->werr) {
            r->werr = err;
            r->werr_entry = entry;
        }
        for (b = 0; b < nb; b++) {
            r->slots[r->head].n_runs = 0;
            free_head(r);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int md_ra_start(md_ra **ret, md_tree *tree, unsigned char *want, size_t chunk, unsigned hole_align,
                int write_fd, bool kick)
{
    md_ra *r = calloc(1, sizeof(*r));
    size_t i;

    *ret = NULL;
    if (!r) {
        free(want);
        return -ENOMEM;
    }
    r->tree = tree;
    r->want = want;
    r->chunk = chunk;
    r->hole_align = hole_align;
    r->wb_fd = -1;
    for (i = 0; i < RA_SLOTS; i++) {
        r->slots[i].buf = malloc(chunk);
        if (!r->slots[i].buf) {
            free_ra(r);
            return -ENOMEM;
        }
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->wfd = write_fd;
    r->kick = kick;
    if (write_fd >= 0) {
        if (pthread_create(&r->wthread, NULL, writer_main, r) != 0) {
            pthread_cond_destroy(&r->cv);
            pthread_mutex_destroy(&r->mu);
            free_ra(r);
            return -EAGAIN;
        }
        r->writer = true;
    }
    if (pthread_create(&r->thread, NULL, ra_main, r) != 0) {
        if (r->writer) {
            pthread_mutex_lock(&r->mu);
            r->stop = true;
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
            pthread_join(r->wthread, NULL);
        }
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free_ra(r);
        return -EAGAIN;
    }
    *ret = r;
    return 0;
}

struct md_ra_chunk *md_ra_next(md_ra *r)
{
    struct md_ra_chunk *c;

    pthread_mutex_lock(&r->mu);
    while (r->count == r->used && !r->done) {
        r->cons_waiting = true;
        /* the writer may hold what the producer waits for */
        if (r->writer_waiting && r->used)
            pthread_cond_broadcast(&r->cv);
        pthread_cond_wait(&r->cv, &r->mu);
    }
    r->cons_waiting = false;
    c = r->count > r->used ? &r->slots[(r->head + r->used) % RA_SLOTS] : NULL;
    if (c)
        c->n_runs = 0;
    pthread_mutex_unlock(&r->mu);
    return c;
}

int md_ra_add_run(struct md_ra_chunk *c, const char *data, size_t len, uint64_t file_off)
{
    if (c->n_runs == c->cap_runs) {
        size_t nc = c->cap_runs ? c->cap_runs * 2 : 8;
        struct md_ra_run *nv = realloc(c->runs, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        c->runs = nv;
        c->cap_runs = nc;
    }
    c->runs[c->n_runs].buf_off = (size_t)(data - c->buf);
    c->runs[c->n_runs].len = len;
    c->runs[c->n_runs].file_off = file_off;
    c->n_runs++;
    return 0;
}

int md_ra_done(md_ra *r, size_t *err_entry)
{
    int err;

    pthread_mutex_lock(&r->mu);
    r->used++;
    if (!r->writer) {
        r->slots[r->head].n_runs = 0;
        free_head(r);
    } else if (r->writer_waiting && r->used >= RA_BATCH) {
        pthread_cond_broadcast(&r->cv);
    }
    err = r->werr;
    if (err && err_entry)
        *err_entry = r->werr_entry;
    pthread_mutex_unlock(&r->mu);
    return -err;
}

int md_ra_drain(md_ra *r, size_t *err_entry)
{
    int err;

    pthread_mutex_lock(&r->mu);
    r->draining = true;
    while (r->writer && r->used && !r->stop) {
        if (r->writer_waiting)
            pthread_cond_broadcast(&r->cv);
        pthread_cond_wait(&r->cv, &r->mu);
    }
    r->draining = false;
    err = r->werr;
    if (err && err_entry)
        *err_entry = r->werr_entry;
    pthread_mutex_unlock(&r->mu);
    return -err;
}

void md_ra_stop(md_ra *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    if (r->writer)
        pthread_join(r->wthread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free_ra(r);
}

void md_ra_writeback(md_ra *r, int fd)
{
    pthread_mutex_lock(&r->mu);
    r->wb_fd = fd;
    pthread_mutex_unlock(&r->mu);
}

int md_ra_error(const md_ra *r, md_ctx *ctx, const struct md_entry *e, const struct md_ra_chunk *c)
{
    const struct md_entry *d = md_entry_data(e);
    const char *file = md_data_file(r->tree, e);
    const char *name = file ? file : "the archive's contents";

    switch (c->kind) {
    case MD_RA_OPEN:
        return md_error(ctx, -c->err, "%s: %s: %s", e->path, name, strerror(c->err));
    case MD_RA_CHANGED:
        if (d->src == MD_SRC_SPOOL && d->spool_src) /* read in place */
            return md_data_archive_changed(ctx, r->tree, e);
        return md_error(ctx, -ESTALE, "%s: %s: file changed or vanished while the image was being built",
                        e->path, name);
    case MD_RA_READ:
        return md_error(ctx, -c->err, "%s: read error (%s): %s", e->path, name, strerror(c->err));
    case MD_RA_RESIZED:
        return md_data_resized_error(ctx, e->path, name, c->size_now, d->size);
    }
    return md_error(ctx, -EIO, "%s: internal error: read-ahead chunk of kind %d", e->path, c->kind);
}
