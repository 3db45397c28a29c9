/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
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
        cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
