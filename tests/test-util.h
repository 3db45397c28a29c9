/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the unit tests. */
#ifndef MD_TEST_UTIL_H
#define MD_TEST_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

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

#endif
