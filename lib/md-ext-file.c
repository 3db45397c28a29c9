/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Regular-file data: extent and block-map allocation, holes, and writing
 * single files (md_ext_write_file, md_ext_write_host_file).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>
#include <ext2fs/ext3_extents.h>

#include "md-ext-internal.h"

/* ---- file data ----------------------------------------------------------------- */

/* Physical ranges given to an extent-mapped file, merged while writing and
 * turned into as few extents as possible at the end (allocating per chunk
 * with ext2fs_fallocate() would leave one extent per chunk). */
struct fmap {
    blk64_t l, p, n;
};

struct fmaps {
    struct fmap *v;
    size_t n, cap;
    blk64_t blocks;
};

static int fmaps_add(md_ext *x, struct fmaps *m, blk64_t l, blk64_t p, blk64_t n)
{
    struct fmap *last = m->n ? &m->v[m->n - 1] : NULL;

    m->blocks += n;
    if (last && last->l + last->n == l && last->p + last->n == p) {
        last->n += n;
        return 0;
    }
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 8;
        struct fmap *nv = realloc(m->v, nc * sizeof(*nv));
        if (!nv)
            return md_error(x->ctx, -ENOMEM, "out of memory");
        m->v = nv;
        m->cap = nc;
    }
    m->v[m->n].l = l;
    m->v[m->n].p = p;
    m->v[m->n].n = n;
    m->n++;
    return 0;
}

/* Extents @m needs: ranges longer than an extent holds are split. */
static size_t fmaps_extents(const struct fmaps *m)
{
    size_t i, n = 0;

    for (i = 0; i < m->n; i++)
        n += (size_t)((m->v[i].n + EXT_INIT_MAX_LEN - 1) / EXT_INIT_MAX_LEN);
    return n;
}

/* The common case, without libext2fs's extent handle (which writes the
 * inode, reading it back first, at every insertion): extents that fit in
 * the inode go straight into its i_block, in the layout the handle gives
 * them (the header of init_file_inode(), entries in order, the rest
 * zero).  The caller writes the inode. */
static void fmaps_inline(struct ext2_inode_large *in, const struct fmaps *m)
{
    struct ext3_extent_header *eh = (struct ext3_extent_header *)in->i_block;
    struct ext3_extent *ee = (struct ext3_extent *)(eh + 1);
    uint16_t n = 0;
    size_t i;

    for (i = 0; i < m->n; i++) {
        blk64_t done = 0;
        while (done < m->v[i].n) {
            blk64_t len = m->v[i].n - done, p = m->v[i].p + done;
            if (len > EXT_INIT_MAX_LEN)
                len = EXT_INIT_MAX_LEN;
            ee[n].ee_block = ext2fs_cpu_to_le32((uint32_t)(m->v[i].l + done));
            ee[n].ee_len = ext2fs_cpu_to_le16((uint16_t)len);
            ee[n].ee_start_hi = ext2fs_cpu_to_le16((uint16_t)(p >> 32));
            ee[n].ee_start = ext2fs_cpu_to_le32((uint32_t)p);
            n++;
            done += len;
        }
    }
    eh->eh_entries = ext2fs_cpu_to_le16(n);
}

/* After a failed commit: the blocks from range @i, block @done on, are in no
 * extent, so releasing the inode would not free them; those before it are
 * freed with the inode's extent tree. */
static void fmaps_free_from(md_ext *x, const struct fmaps *m, size_t i, blk64_t done)
{
    for (; i < m->n; i++, done = 0)
        if (m->v[i].n > done)
            ext2fs_block_alloc_stats_range(x->fs, m->v[i].p + done, (blk_t)(m->v[i].n - done), -1);
    x->fresh = false; /* they may be handed out again */
}

/* Store the ranges of @m as the extents of inode @ino (tree empty so far). */
static int fmaps_commit(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, struct fmaps *m)
{
    const struct ext3_extent_header *eh = (const struct ext3_extent_header *)in->i_block;
    ext2_extent_handle_t h;
    errcode_t err;
    size_t i;
    int first = 1;

    if (!m->n)
        return 0;
    if (ext2fs_le16_to_cpu(eh->eh_magic) == EXT3_EXT_MAGIC && !eh->eh_entries && !eh->eh_depth &&
        fmaps_extents(m) <= ext2fs_le16_to_cpu(eh->eh_max)) {
        fmaps_inline(in, m);
        goto blocks;
    }
    err = ext2fs_extent_open2(x->fs, ino, (struct ext2_inode *)in, &h);
    if (err) {
        fmaps_free_from(x, m, 0, 0);
        return md_ext_error(x->ctx, err, "inode %u: opening the extent tree", ino);
    }
    for (i = 0; i < m->n && !err; i++) {
        blk64_t done = 0;
        while (done < m->v[i].n && !err) {
            struct ext2fs_extent ex;
            blk64_t len = m->v[i].n - done;
            if (len > EXT_INIT_MAX_LEN)
                len = EXT_INIT_MAX_LEN;
            memset(&ex, 0, sizeof(ex));
            ex.e_lblk = m->v[i].l + done;
            ex.e_pblk = m->v[i].p + done;
            ex.e_len = (__u32)len;
            /* a full leaf is split into a new block: this can fail (ENOSPC) */
            err = ext2fs_extent_insert(h, first ? 0 : EXT2_EXTENT_INSERT_AFTER, &ex);
            if (!err) {
                first = 0;
                done += len;
                err = ext2fs_extent_fix_parents(h);
            }
            if (err)
                fmaps_free_from(x, m, i, done);
        }
    }
    ext2fs_extent_free(h);
    if (err)
        return md_ext_error(x->ctx, err, "inode %u: writing the extent tree", ino);
blocks:
    err = ext2fs_iblk_add_blocks(x->fs, (struct ext2_inode *)in, m->blocks);
    if (err)
        return md_ext_error(x->ctx, err, "inode %u: block count", ino);
    return 0;
}

/* Write @n blocks of file data at block @p: handed to the read-ahead's
 * writer while the chunk being written goes to it (a fresh filesystem),
 * else through libext2fs's I/O channel.  Extent files only: blocks taken
 * with ext2fs_new_range() were never written through the channel, where
 * block-map allocation (ext2fs_bmap2) writes each new block as zeros into
 * the channel's cache, to be flushed later over what the writer put there. */
static errcode_t put_blocks(md_ext *x, blk64_t p, blk64_t n, const char *data)
{
    size_t bs = x->fs->blocksize;

    if (x->wb_chunk)
        return md_ra_add_run(x->wb_chunk, data, (size_t)n * bs, x->offset + p * bs) < 0
                   ? EXT2_ET_NO_MEMORY : 0;
    return io_channel_write_blk64(x->fs->io, p, (int)n, data);
}

/* Extent files: take free ranges from @goal on, write @data, record them. */
static int write_run_ext(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, struct fmaps *m,
                         blk64_t l, blk64_t n, const char *data)
{
    ext2_filsys fs = x->fs;
    errcode_t err;
    int r;

    while (n > 0) {
        blk64_t goal = x->goal ? x->goal : ext2fs_find_inode_goal(fs, ino, (struct ext2_inode *)in, l);
        blk64_t p = 0, got = 0;

        err = ext2fs_new_range(fs, 0, goal, n, NULL, &p, &got);
        if (err == EXT2_ET_BLOCK_ALLOC_FAIL && goal > fs->super->s_first_data_block)
            err = ext2fs_new_range(fs, 0, fs->super->s_first_data_block, n, NULL, &p, &got);
        if (err)
            return md_ext_error(x->ctx, err, "allocating %llu blocks", (unsigned long long)n);
        if (got > n)
            got = n;
        ext2fs_block_alloc_stats_range(fs, p, (blk_t)got, +1);
        err = put_blocks(x, p, got, data);
        if (err)
            return md_ext_error(x->ctx, err, "writing file data");
        r = fmaps_add(x, m, l, p, got);
        if (r < 0)
            return r;
        x->goal = p + got;
        l += got;
        n -= got;
        data += (size_t)got * fs->blocksize;
    }
    return 0;
}

/* Allocate logical blocks [l, l+n) of inode @ino and write @data there. */
static int write_run(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, struct fmaps *m,
                     blk64_t l, blk64_t n, const char *data)
{
    ext2_filsys fs = x->fs;
    blk64_t k, start = 0, prev = 0, first = 0;
    errcode_t err;

    if (in->i_flags & EXT4_EXTENTS_FL)
        return write_run_ext(x, ino, in, m, l, n, data);
    for (k = 0; k < n; k++) {
        blk64_t p = 0;
        {
            err = ext2fs_bmap2(fs, ino, (struct ext2_inode *)in, NULL, BMAP_ALLOC, l + k, NULL, &p);
            if (err)
                return md_ext_error(x->ctx, err, "allocating a block");
        }
        if (!p)
            return md_error(x->ctx, -EIO, "inode %u: block %llu not mapped after allocation", ino,
                            (unsigned long long)(l + k));
        if (k > 0 && p == prev + 1) {
            prev = p;
            continue;
        }
        if (k > 0) {
            err = io_channel_write_blk64(fs->io, first, (int)(prev - first + 1),
                                         data + (size_t)start * fs->blocksize);
            if (err)
                return md_ext_error(x->ctx, err, "writing file data");
        }
        first = prev = p;
        start = k;
    }
    err = io_channel_write_blk64(fs->io, first, (int)(prev - first + 1),
                                 data + (size_t)start * fs->blocksize);
    if (err)
        return md_ext_error(x->ctx, err, "writing file data");
    x->goal = prev + 1;
    return 0;
}

/* For a host file: move *@pos to the block holding the next data and cut
 * *@end at the hole after it.  1 when only a hole remains. */
static int skip_hole(const struct md_data *s, unsigned bs, uint64_t *pos, uint64_t *end)
{
    off_t d;

    /* only a file of its own with fewer blocks than its size has holes worth
     * looking for (the spool has none) */
    if (s->fd < 0 || !s->own_fd || s->off || !s->sparse)
        return 0;
    d = lseek(s->fd, (off_t)*pos, SEEK_DATA);
    if (d < 0 && errno == ENXIO)
        return 1;               /* only a hole remains */
    if (d >= 0) {
        off_t h;
        *pos = (uint64_t)d / bs * bs;
        h = lseek(s->fd, (off_t)*pos, SEEK_HOLE);
        if (h >= 0 && (uint64_t)h < *end)
            *end = ((uint64_t)h + bs - 1) / bs * bs;
        if (*end > s->size)
            *end = s->size;
    }
    return *pos >= s->size;
}

/* Bytes [@pos, @pos + @n) of @s into @buf. */
static int read_piece(md_ext *x, const struct md_data *s, char *buf, uint64_t pos, size_t n)
{
    uint64_t now;
    int r;

    r = md_data_read(s, buf, n, pos);
    if (r == -EIO && md_data_resized(s, &now))
        return md_data_resized_error(x->ctx, NULL, s->name, now, s->size);
    if (r < 0)
        return md_error(x->ctx, r == -EIO ? -ESTALE : r,
                        "%s: read failed (file changed while the image was being built?): %s",
                        s->name, md_strerror(r));
    return 0;
}

/* Write the runs of non-zero blocks of the @n bytes in @buf (file offset
 * @pos, a multiple of the block size); @buf has room for a padded last block. */
static int write_piece(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, struct fmaps *m,
                       char *buf, uint64_t pos, size_t n)
{
    unsigned bs = x->fs->blocksize;
    size_t nblk = (n + bs - 1) / bs, b, e;
    int r;

    if (n % bs)
        memset(buf + n, 0, nblk * bs - n);
    for (b = 0; b < nblk;) {
        if (md_ext_is_zero(buf + b * bs, bs)) {
            b++;
            continue;
        }
        for (e = b + 1; e < nblk && !md_ext_is_zero(buf + e * bs, bs); e++)
            ;
        r = write_run(x, ino, in, m, pos / bs + b, e - b, buf + b * bs);
        if (r < 0)
            return r;
        b = e;
    }
    return 0;
}

/* Start writing the image's dirty pages out, without waiting: the disk works
 * while the populate goes on, and the fsync of ext2fs_close() (an image is
 * durable once made) finds most of them written.  Advisory: where the call
 * fails (not Linux, not a file) nothing changes but the timing. */
static void kick_writeback(md_ext *x, md_ra *ra)
{
    int fd = md_image_fd(x->img);

    x->unkicked = 0;
    if (fd < 0)
        return;
    if (ra) {
        md_ra_writeback(ra, fd); /* on the read-ahead thread: off this one */
        return;
    }
#ifdef SYNC_FILE_RANGE_WRITE
    (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
}

int md_ext_data_write_error(md_ext *x, md_tree *tree, size_t entry, int err)
{
    const struct md_entry *e = tree && entry < tree->n ? tree->v[entry] : NULL;

    return md_error(x->ctx, err, "%s: writing file data: %s", e ? e->path : md_image_name(x->img),
                    md_strerror(err));
}

/* Progress and writeback after @n more bytes of file data (@ra: the
 * read-ahead thread feeding them, or NULL). */
static int data_written(md_ext *x, md_ra *ra, bool writer_kicks, size_t n, uint64_t *progress_done,
                        const md_ext_populate_opts *po)
{
    x->unkicked += n;
    if (x->unkicked >= MD_EXT_KICK && !writer_kicks && !x->no_sync)
        kick_writeback(x, ra);
    if (po && po->progress) {
        *progress_done += n;
        if (po->progress(po->userdata, *progress_done, x->progress_total))
            return md_error(x->ctx, -ECANCELED, "cancelled");
    }
    return 0;
}

/* The chunks of @f, as the read-ahead thread delivers them. */
static int write_fed(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, struct fmaps *maps,
                     const struct md_ext_feed *f, uint64_t *progress_done,
                     const md_ext_populate_opts *po)
{
    for (;;) {
        struct md_ra_chunk *c = md_ra_next(f->ra);
        size_t bad = 0;
        bool last;
        int r, k;

        if (!c || c->entry != f->idx) /* cannot happen: both walk the same order */
            return md_error(x->ctx, -EIO, "%s: internal error: read-ahead out of order", f->e->path);
        last = c->last;
        if (c->kind != MD_RA_OK) {
            r = md_ra_error(f->ra, x->ctx, f->e, c);
        } else {
            x->wb_chunk = f->write_behind ? c : NULL;
            r = c->n ? write_piece(x, ino, in, maps, c->buf, c->pos, c->n) : 0;
            x->wb_chunk = NULL;
        }
        if (r == 0)
            r = data_written(x, f->write_behind ? NULL : f->ra, f->write_behind, c->n, progress_done, po);
        k = md_ra_done(f->ra, &bad);
        if (r == 0 && k < 0)
            r = md_ext_data_write_error(x, f->tree, bad, k);
        if (r < 0 || last)
            return r;
    }
}

/* After a file's data (@r: how it went): its extents stored, or on failure
 * the blocks taken for it freed.  Frees @m's ranges; returns @r or the
 * commit's error. */
static int data_end(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, struct fmaps *m, int r)
{
    if (r == 0 && (in->i_flags & EXT4_EXTENTS_FL)) {
        r = fmaps_commit(x, ino, in, m);
    } else if (r < 0 && m->n) {
        /* the blocks written so far belong to no extent yet: releasing the
         * inode would not free them (they were left marked in use) */
        size_t i;
        for (i = 0; i < m->n; i++)
            ext2fs_block_alloc_stats_range(x->fs, m->v[i].p, (blk_t)m->v[i].n, -1);
        x->fresh = false; /* they may be handed out again */
    }
    free(m->v);
    m->v = NULL;
    return r;
}

/* Write the contents of @s (or @feed) to inode @ino, skipping holes and
 * all-zero blocks. */
static int write_data(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in,
                      const struct md_data *s, const struct md_ext_feed *feed,
                      uint64_t *progress_done, const md_ext_populate_opts *po)
{
    unsigned bs = x->fs->blocksize;
    uint64_t pos = 0;
    struct fmaps maps = { NULL, 0, 0, 0 };
    char *buf;
    int r = 0;

    if (!s->size)
        return 0;
    if (feed) {
        /* the read-ahead thread reads, and tells a file that shrank */
        r = write_fed(x, ino, in, &maps, feed, progress_done, po);
        return data_end(x, ino, in, &maps, r);
    }
    buf = malloc(MD_EXT_CHUNK);
    if (!buf)
        return md_error(x->ctx, -ENOMEM, "out of memory");
    while (r == 0 && pos < s->size) {
        uint64_t end = s->size;
        size_t got;

        if (skip_hole(s, bs, &pos, &end))
            break;
        got = (size_t)(end - pos < MD_EXT_CHUNK ? end - pos : MD_EXT_CHUNK);
        r = read_piece(x, s, buf, pos, got);
        if (r == 0)
            r = write_piece(x, ino, in, &maps, buf, pos, got);
        pos += got;
        if (r == 0)
            r = data_written(x, NULL, false, got, progress_done, po);
    }
    if (r == 0) {
        /* a file that shrank reads as a hole to its old end through
         * SEEK_DATA, not as a short read: its size says it changed */
        uint64_t now;
        if (md_data_resized(s, &now))
            r = md_data_resized_error(x->ctx, NULL, s->name, now, s->size);
    }
    free(buf);
    return data_end(x, ino, in, &maps, r);
}

/* Prepare a new regular-file inode in memory (extent header on ext4). */
static int init_file_inode(md_ext *x, ext2_ino_t ino, struct ext2_inode_large *in, uint32_t mode,
                           uint32_t uid, uint32_t gid, uint32_t nlink)
{
    memset(in, 0, sizeof(*in));
    in->i_mode = (uint16_t)(LINUX_S_IFREG | (mode & 07777));
    md_ext_set_owner(in, uid, gid);
    in->i_links_count = (uint16_t)nlink;
    if (ext2fs_has_feature_extents(x->fs->super)) {
        struct ext3_extent_header *eh = (struct ext3_extent_header *)in->i_block;
        in->i_flags |= EXT4_EXTENTS_FL;
        eh->eh_magic = ext2fs_cpu_to_le16(EXT3_EXT_MAGIC);
        eh->eh_entries = 0;
        eh->eh_max = ext2fs_cpu_to_le16((sizeof(in->i_block) - sizeof(*eh)) /
                                        sizeof(struct ext3_extent));
        eh->eh_depth = 0;
        eh->eh_generation = 0;
    }
    (void)ino;
    return 0;
}

/* Create a regular file inode with data from @s; returns its number. */
int md_ext_create_file(md_ext *x, ext2_ino_t dir, const struct md_data *s,
                       const struct md_ext_feed *feed, uint32_t mode, uint32_t uid, uint32_t gid,
                       int64_t mtime, uint32_t nlink, ext2_ino_t *ret, uint64_t *progress_done,
                       const md_ext_populate_opts *po)
{
    struct ext2_inode_large in;
    ext2_ino_t ino;
    errcode_t err;
    int r;

    r = md_ext_new_inode(x, dir, LINUX_S_IFREG, &ino);
    if (r < 0)
        return r;
    init_file_inode(x, ino, &in, mode, uid, gid, nlink);
    /* the final size first: fallocate then extends the previous extent
     * instead of starting a new one for every chunk */
    err = ext2fs_inode_size_set(x->fs, (struct ext2_inode *)&in, s->size);
    if (err) {
        r = md_ext_error(x->ctx, err, "%s: setting the size", s->name);
        goto undo;
    }
    r = md_ext_write_inode(x, ino, &in, mtime, 1);
    if (r == 0)
        r = write_data(x, ino, &in, s, feed, progress_done, po);
    if (r < 0)
        goto undo;
    err = ext2fs_inode_size_set(x->fs, (struct ext2_inode *)&in, s->size);
    if (err) {
        r = md_ext_error(x->ctx, err, "%s: setting the size", s->name);
        goto undo;
    }
    r = md_ext_write_inode(x, ino, &in, mtime, 0);
    if (r < 0)
        goto undo;
    *ret = ino;
    return 0;
undo:
    /* the new inode and its blocks go back: nothing names it yet.  The
     * message names the file: the block writers below only know the inode
     * ("writing file data: No space left on device" said neither which file
     * nor, before the error table was read, why) */
    {
        char msg[MD_ERRMSG_MAX];
        const char *name = s->name ? s->name : "";
        size_t nl = strlen(name);
        bool named;

        snprintf(msg, sizeof(msg), "%s", md_ctx_errmsg(x->ctx));
        named = !nl || (!strncmp(msg, name, nl) && msg[nl] == ':');
        if (md_ext_release_inode(x, ino, &in) < 0)
            md_error(x->ctx, r, "%s%s%s (and the half-written inode %u could not be freed)",
                     named ? "" : name, named ? "" : ": ", msg, ino);
        else
            md_error(x->ctx, r, "%s%s%s", named ? "" : name, named ? "" : ": ", msg);
    }
    return r;
}

/* Blocks of data and mapping metadata for a file with @data_blocks allocated
 * blocks in about @runs pieces. */
uint64_t md_ext_file_blocks(ext2_filsys fs, uint64_t data_blocks, uint64_t runs)
{
    uint64_t per = fs->blocksize / 4, meta = 0;

    if (!data_blocks)
        return 0;
    if (ext2fs_has_feature_extents(fs->super)) {
        /* extents of up to 32768 blocks, (blocksize-12)/12 per tree block */
        uint64_t ext = runs + data_blocks / 32768 + 1;
        if (ext > 4)
            meta = (ext + (fs->blocksize - 12) / 12 - 1) / ((fs->blocksize - 12) / 12) + 1;
    } else {
        uint64_t rest = data_blocks > 12 ? data_blocks - 12 : 0;
        if (rest) {
            meta++;
            rest = rest > per ? rest - per : 0;
        }
        if (rest) {
            uint64_t n = rest < per * per ? rest : per * per;
            meta += 1 + (n + per - 1) / per;
            rest -= n;
        }
        if (rest)
            meta += 1 + (rest + per * per - 1) / (per * per) + (rest + per - 1) / per;
    }
    return data_blocks + meta;
}

/* ---- single files ------------------------------------------------------------ */

struct same {
    const struct md_data *s;
    uint64_t pos;
    char *buf;
    bool differ;
};

static int same_cb(void *ud, const void *p, size_t n)
{
    struct same *c = ud;

    if (c->pos + n > c->s->size || md_data_read(c->s, c->buf, n, c->pos) < 0 ||
        memcmp(c->buf, p, n)) {
        c->differ = true;
        return 1; /* stop */
    }
    c->pos += n;
    return 0;
}

/* Does regular inode @ino hold exactly the contents of @s?  Then writing it
 * again changes nothing (and a re-install stays byte for byte what it was). */
static bool same_contents(md_ext *x, ext2_ino_t ino, const struct md_data *s, const char *path)
{
    struct ext2_inode_large in;
    struct same c = { s, 0, NULL, false };

    if (md_ext_read_inode(x, ino, &in) < 0 || !LINUX_S_ISREG(in.i_mode) || EXT2_I_SIZE(&in) != s->size ||
        in.i_links_count != 1)
        return false;
    c.buf = malloc(MD_EXT_CHUNK);
    if (!c.buf)
        return false;
    if (md_ext_read_stream(x, ino, path, same_cb, &c) < 0)
        c.differ = true;
    free(c.buf);
    md_ctx_clear_error(x->ctx);
    return !c.differ && c.pos == s->size;
}

/* The mode, owner and mtime of @ino as asked (its contents are right). */
static int set_attrs(md_ext *x, ext2_ino_t ino, uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime)
{
    struct ext2_inode_large in;
    int r = md_ext_read_inode(x, ino, &in);

    if (r < 0)
        return r;
    if ((in.i_mode & 07777) == (mode & 07777) && md_ext_uid_of(&in) == uid && md_ext_gid_of(&in) == gid &&
        md_ext_inode_mtime(&in, md_ext_inode_full(x->fs)) == mtime)
        return 0;
    in.i_mode = (uint16_t)((in.i_mode & LINUX_S_IFMT) | (mode & 07777));
    md_ext_set_owner(&in, uid, gid);
    return md_ext_write_inode(x, ino, &in, mtime, 0);
}

static int write_file_common(md_ext *x, const char *path, const struct md_data *s,
                             const md_attr *attr)
{
    uint32_t mode, uid, gid;
    int64_t mtime;
    ext2_ino_t dir, ino = 0, old;
    const char *name;
    char *nb;
    int r;

    r = md_ext_check_rw(x);
    if (r < 0)
        return r;
    r = md_ext_attr_values(x, attr, 0644, &mode, &uid, &gid, &mtime);
    if (r < 0)
        return r;
    r = md_ext_lookup_parent(x, path, &dir, &nb, &name);
    if (r < 0)
        return r;
    /* what is there: checked before anything is written */
    {
        errcode_t err = ext2fs_lookup(x->fs, dir, name, (int)strlen(name), NULL, &old);
        struct ext2_inode oi;

        if (err && err != EXT2_ET_FILE_NOT_FOUND) {
            r = md_ext_error(x->ctx, err, "%s", path);
            goto out;
        }
        if (!err && (err = ext2fs_read_inode(x->fs, old, &oi)) != 0) {
            r = md_ext_error(x->ctx, err, "%s", path);
            goto out;
        }
        if (!err && LINUX_S_ISDIR(oi.i_mode)) {
            r = md_error(x->ctx, -EISDIR, "%s: is a directory", path);
            goto out;
        }
    }
    {
        /* validate before the first write: space for the data (holes counted) */
        uint64_t nb_need = md_ext_file_blocks(x->fs,
                                              (s->size + x->fs->blocksize - 1) / x->fs->blocksize,
                                              s->size / (1u << 20) + 1) + 2;
        uint64_t nb_free = ext2fs_free_blocks_count(x->fs->super);
        if (nb_need > nb_free || x->fs->super->s_free_inodes_count == 0) {
            r = md_error(x->ctx, -ENOSPC,
                         "%s: needs about %llu KiB (%llu blocks) and an inode; %llu KiB (%llu blocks) "
                         "and %u inodes free%s", path,
                         (unsigned long long)(nb_need * (x->fs->blocksize / 1024)),
                         (unsigned long long)nb_need,
                         (unsigned long long)(nb_free * (x->fs->blocksize / 1024)),
                         (unsigned long long)nb_free, x->fs->super->s_free_inodes_count,
                         old ? " (the file it replaces is freed only once the new one is written: "
                               "both must fit)" : "");
            goto out;
        }
    }
    if (old && same_contents(x, old, s, path)) {
        r = set_attrs(x, old, mode, uid, gid, mtime);
        goto out;
    }
    /* the new file complete first, then it takes the name: a failure on the
     * way leaves the old file (and a consistent filesystem) */
    r = md_ext_create_file(x, dir, s, NULL, mode, uid, gid, mtime, 1, &ino, NULL, NULL);
    if (r < 0)
        goto out;
    r = md_ext_replace(x, dir, name, ino, S_IFREG);
out:
    free(nb);
    return r;
}

MD_API int md_ext_write_file(md_ext *x, const char *path, const void *data, size_t size,
                             const md_attr *attr)
{
    struct md_data s;

    if (!x || !path || (size && !data))
        return -EINVAL;
    memset(&s, 0, sizeof(s));
    s.buf = data;
    s.fd = -1;
    s.size = size;
    s.name = path;
    return write_file_common(x, path, &s, attr);
}

MD_API int md_ext_write_host_file(md_ext *x, const char *path, const char *host_path,
                                  const md_attr *attr)
{
    struct stat st;
    struct md_data s;
    int fd, r;

    if (!x || !path || !host_path)
        return -EINVAL;
    /* O_NONBLOCK: a FIFO is refused below instead of blocking the open */
    fd = open(host_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return md_error_errno(x->ctx, -errno, "%s", host_path);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return md_error(x->ctx, -EINVAL, "%s: not a regular file", host_path);
    }
    memset(&s, 0, sizeof(s));
    s.own_fd = true;
    s.fd = fd;
    s.sparse = md_stat_sparse(&st);
    s.size = (uint64_t)st.st_size;
    s.name = host_path;
    r = write_file_common(x, path, &s, attr);
    close(fd);
    return r;
}
