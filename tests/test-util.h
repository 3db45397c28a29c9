/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the unit tests. */
#ifndef MD_TEST_UTIL_H
#define MD_TEST_UTIL_H

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

static inline int md_test_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove @dir and everything under it, without following symlinks (a test
 * may leave links pointing anywhere).  Best effort: teardown has no way to
 * report a failure. */
static inline void md_test_rmtree(const char *dir)
{
    nftw(dir, md_test_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run a shell command made from @fmt: its exit status, -1 when it did not exit. */
static inline int md_test_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int md_test_run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first 64 KiB of a shell command's output, NUL-terminated; free() it. */
static inline char *md_test_capture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *md_test_capture(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    FILE *p;
    char *buf = calloc(1, 65536);
    size_t n;

    assert_non_null(buf);
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(buf, 1, 65535, p);
    buf[n] = '\0';
    pclose(p);
    return buf;
}

/* ---- skips: the same rule as tests/lib.sh --------------------------------
 * What scripts/setup installs (a tool, /bin/busybox, extlinux, a kernel) may
 * be missing on a developer's machine: the test skips.  In CI (CI=true in the
 * environment) scripts/setup has run, so the same thing missing fails the
 * test.  A property of the environment that no package changes (no user
 * xattrs on /tmp, a kernel with the drivers built in) is md_test_skip_env:
 * a skip everywhere.  These do not return (cmocka jumps out of the test):
 * call them before allocating anything. */

static inline bool md_test_in_ci(void)
{
    const char *ci = getenv("CI");
    return ci && strcmp(ci, "true") == 0;
}

/* @what, from Debian package @package (in scripts/setup), is missing. */
static inline void md_test_missing(const char *what, const char *package)
{
    if (md_test_in_ci()) {
        print_error("FAIL (CI): %s is required but missing (install %s; scripts/setup should have)\n",
                    what, package);
        fail();
    }
    print_message("SKIP: %s is missing (install %s)\n", what, package);
    skip();
}

static inline void md_test_skip_env(const char *reason)
{
    print_message("SKIP: %s\n", reason);
    skip();
}

static inline bool md_test_have_tool(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Skip (fail in CI) unless @tool is on $PATH. */
static inline void md_test_need_tool(const char *tool, const char *package)
{
    if (!md_test_have_tool(tool))
        md_test_missing(tool, package);
}

/* Skip (fail in CI) unless access(@path, @mode) succeeds. */
static inline void md_test_need_file(const char *path, int mode, const char *package)
{
    if (access(path, mode) != 0)
        md_test_missing(path, package);
}

/* For a check only part of a test needs: true if access(@path, @mode)
 * succeeds; else false after a note, or a failure in CI. */
static inline bool md_test_want_file(const char *path, int mode, const char *package)
{
    if (access(path, mode) == 0)
        return true;
    if (md_test_in_ci())
        md_test_missing(path, package);
    print_message("note: %s is missing (install %s): the checks that need it are skipped\n", path,
                  package);
    return false;
}

#endif
