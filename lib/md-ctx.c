/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "md-internal.h"
#include "libminidistro/md-version.h"

struct md_ctx {
    atomic_uint refs;       /* objects of one context may be freed from different threads */
    char errmsg[MD_ERRMSG_MAX];
    md_log_fn log_fn;
    void *log_userdata;
    int log_max;
    int64_t epoch;
    bool epoch_set;         /* SOURCE_DATE_EPOCH or md_ctx_set_epoch(): clamp and derive ids */
};

static void log_stderr(void *userdata, int priority, const char *msg)
{
    static const char *const names[] = {
        "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
    };
    (void)userdata;
    fprintf(stderr, "libminidistro: %s: %s\n",
            priority >= 0 && priority <= 7 ? names[priority] : "log", msg);
}

/* SOURCE_DATE_EPOCH: unset or empty means none; anything else must be a
 * non-negative decimal number of seconds (reproducible-builds.org: a
 * malformed value is an error, not a silent fallback). */
static int epoch_from_env(int64_t *epoch, bool *set)
{
    const char *s = getenv("SOURCE_DATE_EPOCH");
    char *end;
    long long v;

    *epoch = 0;
    *set = false;
    if (!s || !*s)
        return 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < 0)
        return -EINVAL;
    *epoch = v;
    *set = true;
    return 0;
}

MD_API int md_ctx_new(md_ctx **ret)
{
    md_ctx *ctx;
    const char *dbg;

    if (!ret)
        return -EINVAL;
    *ret = NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return -ENOMEM;
    if (epoch_from_env(&ctx->epoch, &ctx->epoch_set) < 0) {
        free(ctx);
        return -EINVAL;
    }
    atomic_init(&ctx->refs, 1);
    dbg = getenv("MD_DEBUG");
    if (dbg && *dbg && strcmp(dbg, "0") != 0) {
        ctx->log_fn = log_stderr;
        ctx->log_max = MD_LOG_DEBUG;
    }
    *ret = ctx;
    return 0;
}

MD_API md_ctx *md_ctx_ref(md_ctx *ctx)
{
    if (ctx)
        atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

MD_API void md_ctx_unref(md_ctx *ctx)
{
    if (ctx && atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) == 1)
        free(ctx);
}

MD_API void md_ctx_free(md_ctx *ctx)
{
    md_ctx_unref(ctx);
}

MD_API const char *md_ctx_errmsg(const md_ctx *ctx)
{
    return ctx ? ctx->errmsg : "";
}

MD_API void md_ctx_clear_error(md_ctx *ctx)
{
    if (ctx)
        ctx->errmsg[0] = '\0';
}

MD_API void md_ctx_set_log_fn(md_ctx *ctx, md_log_fn fn, void *userdata, int max_priority)
{
    if (!ctx)
        return;
    ctx->log_fn = fn;
    ctx->log_userdata = userdata;
    ctx->log_max = max_priority;
}

MD_API int md_ctx_set_epoch(md_ctx *ctx, int64_t epoch)
{
    if (!ctx || epoch < 0)
        return -EINVAL;
    ctx->epoch = epoch;
    ctx->epoch_set = true;
    return 0;
}

MD_API int64_t md_ctx_get_epoch(const md_ctx *ctx)
{
    return ctx ? ctx->epoch : 0;
}

MD_API int md_ctx_has_epoch(const md_ctx *ctx)
{
    return ctx && ctx->epoch_set ? 1 : 0;
}

MD_API const char *md_strerror(int err)
{
    if (err < 0)
        err = -err;
    if (err == 0)
        return "Success";
    return strerror(err);
}

MD_API const char *md_version(void)
{
    return MD_VERSION_STRING;
}

MD_API uint32_t md_version_number(void)
{
    return MD_VERSION_NUMBER;
}

/* ---- messages that fit ---------------------------------------------------------- */

#define FIT_KEEP 16 /* bytes kept at each end of a shortened word */

static bool fit_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* The longest run of non-space bytes in @s: its start in *@at. */
static size_t fit_longest_word(const char *s, size_t len, size_t *at)
{
    size_t i = 0, best = 0;

    *at = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && !fit_space(s[j]))
            j++;
        if (j - i > best) {
            best = j - i;
            *at = i;
        }
        i = j < len ? j + 1 : j;
    }
    return best;
}

/* Replace @s[@from..@to) by "...", moving both ends off the middle of a
 * UTF-8 sequence (within @lo..@hi); returns the new length. */
static size_t fit_cut(char *s, size_t len, size_t from, size_t to, size_t lo, size_t hi,
                      const char *mark)
{
    size_t m = strlen(mark);

    while (from > lo && ((unsigned char)s[from] & 0xc0) == 0x80)
        from--;
    while (to < hi && ((unsigned char)s[to] & 0xc0) == 0x80)
        to++;
    if (to - from < m)
        return len;
    memcpy(s + from, mark, m);
    memmove(s + from + m, s + to, len - to + 1);
    return len - (to - from) + m;
}

/*
 * Shorten the NUL-terminated @s of @len bytes to at most @max, in place, so
 * that what says why survives a long echoed value: the longest word (a
 * path, a label: a run of non-space bytes) loses its middle to "...", as
 * much as needed and keeping FIT_KEEP bytes at each end, then the next
 * longest; only a message of many short words loses its own middle.
 */
static size_t fit_message(char *s, size_t len, size_t max)
{
    while (len > max) {
        size_t at, n = fit_longest_word(s, len, &at), cut, head, nlen;

        if (n <= 2 * FIT_KEEP + 3)
            break;
        cut = len - max + 3;
        if (cut > n - 2 * FIT_KEEP)
            cut = n - 2 * FIT_KEEP;
        head = (n - cut) / 2;
        nlen = fit_cut(s, len, at + head, at + head + cut, at, at + n, "...");
        if (nlen >= len)
            break;
        len = nlen;
    }
    if (len > max) {
        size_t head = max / 4;
        len = fit_cut(s, len, head, len - (max - head - 5), 0, len, " ... ");
        if (len > max) { /* not reached (the cut is over 5 bytes): a guard */
            s[max] = '\0';
            len = max;
        }
    }
    return len;
}

/* @fmt formatted, then ": @suffix" when it is given, in @stack (@cap bytes)
 * or, when longer, in *@heap (the caller frees it); cut at @cap when there is
 * no memory for that. */
static char *format_msg(char *stack, size_t cap, char **heap, const char *suffix,
                        const char *fmt, va_list ap)
{
    size_t slen = suffix ? strlen(suffix) + 2 : 0, need, pos;
    va_list aq;
    char *buf = stack;
    int n;

    *heap = NULL;
    va_copy(aq, ap);
    n = vsnprintf(stack, cap, fmt, aq);
    va_end(aq);
    if (n < 0) {
        stack[0] = '\0';
        n = 0;
    }
    pos = (size_t)n;
    need = pos + slen + 1;
    if (need > cap) {
        *heap = malloc(need);
        if (*heap) {
            buf = *heap;
            vsnprintf(buf, need, fmt, ap);
        } else {
            /* no memory: the end of the text makes room for the suffix */
            need = cap;
            pos = slen < cap - 1 ? cap - 1 - slen : 0;
        }
    }
    if (suffix)
        snprintf(buf + pos, need - pos, ": %s", suffix);
    return buf;
}

/* Store @msg (shortened to fit, see fit_message()) on @ctx. */
static void store_msg(md_ctx *ctx, char *msg)
{
    size_t len = fit_message(msg, strlen(msg), sizeof(ctx->errmsg) - 1);

    memcpy(ctx->errmsg, msg, len + 1);
    md_log(ctx, MD_LOG_DEBUG, "error: %s", ctx->errmsg);
}

int md_verror(md_ctx *ctx, int err, const char *suffix, const char *fmt, va_list ap)
{
    char stack[2 * MD_ERRMSG_MAX], *heap;

    if (ctx) {
        store_msg(ctx, format_msg(stack, sizeof(stack), &heap, suffix, fmt, ap));
        free(heap);
    }
    return err;
}

int md_error(md_ctx *ctx, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    md_verror(ctx, err, NULL, fmt, ap);
    va_end(ap);
    return err;
}

int md_error_errno(md_ctx *ctx, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    md_verror(ctx, err, md_strerror(err), fmt, ap);
    va_end(ap);
    return err;
}

void md_error_prefix(md_ctx *ctx, const char *fmt, ...)
{
    char stack[2 * MD_ERRMSG_MAX], old[MD_ERRMSG_MAX], *heap;
    va_list ap;

    if (!ctx)
        return;
    memcpy(old, ctx->errmsg, sizeof(old));
    va_start(ap, fmt);
    store_msg(ctx, format_msg(stack, sizeof(stack), &heap, old, fmt, ap));
    va_end(ap);
    free(heap);
}

void md_log(md_ctx *ctx, int priority, const char *fmt, ...)
{
    char stack[2 * MD_ERRMSG_MAX], *heap, *msg;
    va_list ap;

    if (!ctx || !ctx->log_fn || priority > ctx->log_max)
        return;
    va_start(ap, fmt);
    msg = format_msg(stack, sizeof(stack), &heap, NULL, fmt, ap);
    va_end(ap);
    fit_message(msg, strlen(msg), MD_ERRMSG_MAX - 1);
    ctx->log_fn(ctx->log_userdata, priority, msg);
    free(heap);
}

int md_check_version(md_ctx *ctx, const char *what, uint32_t got, uint32_t max)
{
    if (got == 0 || got > max)
        return md_error(ctx, -EINVAL, "%s: unsupported options version %u (this library knows 1..%u)",
                        what, got, max);
    return 0;
}
