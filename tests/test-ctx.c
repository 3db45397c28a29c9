/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "md-internal.h"

static void test_new_free(void **state)
{
    md_ctx *ctx = NULL;
    (void)state;
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_non_null(ctx);
    assert_string_equal(md_ctx_errmsg(ctx), "");
    assert_ptr_equal(md_ctx_ref(ctx), ctx);
    md_ctx_unref(ctx);
    md_ctx_free(ctx);
    md_ctx_free(NULL);
    assert_int_equal(md_ctx_new(NULL), -EINVAL);
}

static void test_errors(void **state)
{
    md_ctx *ctx;
    (void)state;
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_error(ctx, -EINVAL, "spec line %d: unknown type '%s'", 12, "fiel"), -EINVAL);
    assert_string_equal(md_ctx_errmsg(ctx), "spec line 12: unknown type 'fiel'");
    md_error_prefix(ctx, "%s", "a.spec");
    assert_string_equal(md_ctx_errmsg(ctx), "a.spec: spec line 12: unknown type 'fiel'");
    assert_int_equal(md_error_errno(ctx, -ENOENT, "%s", "/nope"), -ENOENT);
    assert_string_equal(md_ctx_errmsg(ctx), "/nope: No such file or directory");
    md_ctx_clear_error(ctx);
    assert_string_equal(md_ctx_errmsg(ctx), "");
    assert_string_equal(md_strerror(-ENOSPC), "No space left on device");
    assert_string_equal(md_strerror(ENOSPC), "No space left on device");
    md_ctx_free(ctx);
}

static int log_count;
static void count_log(void *ud, int prio, const char *msg)
{
    (void)prio;
    (void)msg;
    (*(int *)ud)++;
}

static void test_logging(void **state)
{
    md_ctx *ctx;
    (void)state;
    unsetenv("MD_DEBUG");
    assert_int_equal(md_ctx_new(&ctx), 0);
    log_count = 0;
    md_log(ctx, MD_LOG_DEBUG, "off by default");
    md_ctx_set_log_fn(ctx, count_log, &log_count, MD_LOG_INFO);
    md_log(ctx, MD_LOG_DEBUG, "filtered");
    md_log(ctx, MD_LOG_INFO, "counted");
    md_log(ctx, MD_LOG_ERR, "counted");
    assert_int_equal(log_count, 2);
    md_ctx_free(ctx);
}

static void test_epoch(void **state)
{
    md_ctx *ctx;
    (void)state;
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_get_epoch(ctx), 1700000000);
    assert_int_equal(md_ctx_set_epoch(ctx, -1), -EINVAL);
    assert_int_equal(md_ctx_set_epoch(ctx, 42), 0);
    assert_int_equal(md_ctx_get_epoch(ctx), 42);
    md_ctx_free(ctx);
    /* malformed: an error, not silently "no epoch" (reproducible-builds.org) */
    {
        static const char *const bad[] = { "garbage", "12abc", "-5", " 12", "+7", "1e9",
                                           "99999999999999999999999" };
        size_t i;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            setenv("SOURCE_DATE_EPOCH", bad[i], 1);
            ctx = (md_ctx *)&i;
            assert_int_equal(md_ctx_new(&ctx), -EINVAL);
            assert_null(ctx);
        }
    }
    /* "0" is an epoch; empty or unset is none */
    setenv("SOURCE_DATE_EPOCH", "0", 1);
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_has_epoch(ctx), 1);
    md_ctx_free(ctx);
    setenv("SOURCE_DATE_EPOCH", "", 1);
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_ctx_has_epoch(ctx), 0);
    assert_int_equal(md_ctx_get_epoch(ctx), 0);
    assert_int_equal(md_ctx_set_epoch(ctx, 5), 0);
    assert_int_equal(md_ctx_has_epoch(ctx), 1);
    md_ctx_free(ctx);
    unsetenv("SOURCE_DATE_EPOCH");
    assert_int_equal(md_ctx_has_epoch(NULL), 0);
}

/* "/long/...": @n bytes of a path of 200-byte components (malloc'ed). */
static char *long_path(size_t n, char c)
{
    char *p = malloc(n + 1);
    size_t i;

    assert_non_null(p);
    for (i = 0; i < n; i++)
        p[i] = i % 201 == 0 ? '/' : c;
    p[n] = '\0';
    return p;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

/* Every byte sequence is well-formed UTF-8 (no sequence cut by the "..."). */
static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0)
            return false;
        for (p++; n > 0; n--, p++)
            if ((*p & 0xc0) != 0x80)
                return false;
    }
    return true;
}

static char logged[2 * MD_ERRMSG_MAX];
static void keep_log(void *ud, int prio, const char *msg)
{
    (void)ud;
    (void)prio;
    snprintf(logged, sizeof(logged), "%s", msg);
}

/* Issue 11 item 10: a message over MD_ERRMSG_MAX keeps its reason; the long
 * echoed values lose their middle instead. */
static void test_long_messages(void **state)
{
    char *path = long_path(4000, 'a'), *label = malloc(3001), *words, *utf;
    const char *m;
    md_ctx *ctx;
    size_t i;
    (void)state;

    assert_non_null(label);
    memset(label, 'L', 3000);
    label[3000] = '\0';
    assert_int_equal(md_ctx_new(&ctx), 0);

    /* a 4000-byte path, the reason after it */
    assert_int_equal(md_error_errno(ctx, -ENOENT, "cannot open '%s'", path), -ENOENT);
    m = md_ctx_errmsg(ctx);
    assert_true(strlen(m) <= MD_ERRMSG_MAX - 1);
    assert_true(strlen(m) >= MD_ERRMSG_MAX - 8); /* as much of the path as fits */
    assert_true(!strncmp(m, "cannot open '/aaaa", 18));
    assert_true(ends_with(m, "aaaa': No such file or directory"));
    assert_non_null(strstr(m, "..."));

    /* a long label in the middle, the reason after it, a short path before */
    md_error(ctx, -EINVAL, "/tmp/x.img: label '%s' is longer than %d bytes", label, 16);
    m = md_ctx_errmsg(ctx);
    assert_true(strlen(m) <= MD_ERRMSG_MAX - 1);
    assert_true(!strncmp(m, "/tmp/x.img: label 'LLLL", 23));
    assert_true(ends_with(m, "LLLL' is longer than 16 bytes"));

    /* two long values: each keeps both ends */
    md_error(ctx, -EINVAL, "%s: label '%s' too long", path, label);
    m = md_ctx_errmsg(ctx);
    assert_true(strlen(m) <= MD_ERRMSG_MAX - 1);
    assert_true(!strncmp(m, "/aaaa", 5));
    assert_non_null(strstr(m, "aaaa: label 'LLLL"));
    assert_true(ends_with(m, "LLLL' too long"));

    /* a prefix added on the way up: the reason stays at the end */
    md_error(ctx, -EIO, "short reason");
    md_error_prefix(ctx, "%s", path);
    m = md_ctx_errmsg(ctx);
    assert_true(strlen(m) <= MD_ERRMSG_MAX - 1);
    assert_true(!strncmp(m, "/aaaa", 5));
    assert_true(ends_with(m, "aaaa: short reason"));
    md_error_prefix(ctx, "%s", label);
    m = md_ctx_errmsg(ctx);
    assert_true(strlen(m) <= MD_ERRMSG_MAX - 1);
    assert_true(ends_with(m, ": short reason"));

    /* the message itself as an argument (callers re-wrap it) */
    md_error(ctx, -EIO, "%s", md_ctx_errmsg(ctx));
    assert_true(ends_with(md_ctx_errmsg(ctx), ": short reason"));

    /* many short words, none to shorten: the message's middle goes */
    words = malloc(3 * 700 + 16);
    assert_non_null(words);
    for (i = 0; i < 700; i++)
        memcpy(words + 3 * i, "ab ", 3);
    strcpy(words + 3 * 700, "THE REASON");
    md_error(ctx, -EINVAL, "%s", words);
    m = md_ctx_errmsg(ctx);
    assert_true(strlen(m) <= MD_ERRMSG_MAX - 1);
    assert_true(!strncmp(m, "ab ab ", 6));
    assert_true(ends_with(m, "ab THE REASON"));
    assert_non_null(strstr(m, " ... "));

    /* UTF-8 is never cut inside a character */
    utf = malloc(2 * 2000 + 1);
    assert_non_null(utf);
    for (i = 0; i < 2000; i++)
        memcpy(utf + 2 * i, "\xc3\xa9", 2);
    utf[4000] = '\0';
    md_error(ctx, -EINVAL, "'%s': bad name", utf);
    m = md_ctx_errmsg(ctx);
    assert_true(strlen(m) <= MD_ERRMSG_MAX - 1);
    assert_true(valid_utf8(m));
    assert_true(ends_with(m, "': bad name"));
    md_error(ctx, -EINVAL, "x%s': bad name", utf); /* the other parity */
    assert_true(valid_utf8(md_ctx_errmsg(ctx)));

    /* a message that fits is stored as it is */
    md_error(ctx, -EINVAL, "%.*s", 1000, path);
    assert_int_equal(strlen(md_ctx_errmsg(ctx)), 1000);
    assert_null(strstr(md_ctx_errmsg(ctx), "..."));

    /* log lines are shortened the same way */
    md_ctx_set_log_fn(ctx, keep_log, NULL, MD_LOG_DEBUG);
    md_log(ctx, MD_LOG_INFO, "reading %s: done", path);
    assert_true(strlen(logged) <= MD_ERRMSG_MAX - 1);
    assert_true(ends_with(logged, "aaaa: done"));

    md_ctx_free(ctx);
    free(path);
    free(label);
    free(words);
    free(utf);
}

static void test_version(void **state)
{
    (void)state;
    assert_string_equal(md_version(), MD_VERSION_STRING);
    assert_int_equal(md_version_number(), MD_VERSION_NUMBER);
}

static void test_parse_size(void **state)
{
    uint64_t v;
    (void)state;
    assert_int_equal(md_parse_size("512", &v), 0);
    assert_int_equal(v, 512);
    assert_int_equal(md_parse_size("64M", &v), 0);
    assert_int_equal(v, 64ULL << 20);
    assert_int_equal(md_parse_size("2GiB", &v), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_equal(md_parse_size("4k", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(md_parse_size("", &v), -EINVAL);
    assert_int_equal(md_parse_size("-1M", &v), -EINVAL);
    assert_int_equal(md_parse_size("12Q", &v), -EINVAL);
    assert_int_equal(md_parse_size("M", &v), -EINVAL);
    assert_int_equal(md_parse_size("99999999999T", &v), -ERANGE);
}

static void test_quote(void **state)
{
    char *q = NULL;
    (void)state;

    assert_int_equal(md_quote("a\"b\\c\x1b[2J\x7f", MD_QUOTE_JSON, &q), 0);
    assert_string_equal(q, "\"a\\\"b\\\\c\\u001b[2J\\u007f\"");
    free(q);
    assert_int_equal(md_quote(NULL, MD_QUOTE_JSON, &q), 0);
    assert_string_equal(q, "null");
    free(q);
    assert_int_equal(md_quote("ok\x1b]0;x\x07\\n", MD_QUOTE_TEXT, &q), 0);
    assert_string_equal(q, "ok\\x1b]0;x\\x07\\\\n");
    free(q);
    assert_int_equal(md_quote("plain name", MD_QUOTE_TEXT, &q), 0);
    assert_string_equal(q, "plain name");
    free(q);
    assert_int_equal(md_quote("x", 7, &q), -EINVAL);
    assert_int_equal(md_quote("x", MD_QUOTE_TEXT, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_free),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_logging),
        cmocka_unit_test(test_long_messages),
        cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
