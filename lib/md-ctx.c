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

static void set_msg(md_ctx *ctx, const char *fmt, va_list ap, int err_suffix)
{
    int n = vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), fmt, ap);

    if (n < 0)
        ctx->errmsg[0] = '\0';
    if (err_suffix) {
        size_t len = strlen(ctx->errmsg);
        snprintf(ctx->errmsg + len, sizeof(ctx->errmsg) - len, ": %s", md_strerror(err_suffix));
    }
    md_log(ctx, MD_LOG_DEBUG, "error: %s", ctx->errmsg);
}

int md_error(md_ctx *ctx, int err, const char *fmt, ...)
{
    va_list ap;

    if (ctx) {
        va_start(ap, fmt);
        set_msg(ctx, fmt, ap, 0);
        va_end(ap);
    }
    return err;
}

int md_error_errno(md_ctx *ctx, int err, const char *fmt, ...)
{
    va_list ap;

    if (ctx) {
        va_start(ap, fmt);
        set_msg(ctx, fmt, ap, err);
        va_end(ap);
    }
    return err;
}

void md_error_prefix(md_ctx *ctx, const char *fmt, ...)
{
    char prefix[MD_ERRMSG_MAX];
    size_t plen, mlen;
    va_list ap;
    int n;

    if (!ctx)
        return;
    va_start(ap, fmt);
    n = vsnprintf(prefix, sizeof(prefix) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    plen = strlen(prefix);
    memcpy(prefix + plen, ": ", 3);
    plen += 2;
    mlen = strlen(ctx->errmsg);
    if (plen + mlen >= sizeof(ctx->errmsg))
        mlen = sizeof(ctx->errmsg) - 1 - plen;
    memmove(ctx->errmsg + plen, ctx->errmsg, mlen);
    memcpy(ctx->errmsg, prefix, plen);
    ctx->errmsg[plen + mlen] = '\0';
}

void md_log(md_ctx *ctx, int priority, const char *fmt, ...)
{
    char buf[MD_ERRMSG_MAX];
    va_list ap;

    if (!ctx || !ctx->log_fn || priority > ctx->log_max)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ctx->log_fn(ctx->log_userdata, priority, buf);
}

int md_check_version(md_ctx *ctx, const char *what, uint32_t got, uint32_t max)
{
    if (got == 0 || got > max)
        return md_error(ctx, -EINVAL, "%s: unsupported options version %u (this library knows 1..%u)",
                        what, got, max);
    return 0;
}
