/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the libFuzzer targets (tests/fuzz/README.md). */
#ifndef MD_FUZZ_UTIL_H
#define MD_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libminidistro/minidistro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A crash the fuzzer reports with the message: the library broke a promise
 * (a successful call whose result an independent reader rejects). */
#define fuzz_assert(cond, ...)                                             \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "fuzz_assert(%s) failed: ", #cond);            \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* One directory per process for the files a target writes, made on first use
 * under $TMPDIR (/tmp by default; a tmpfs such as /dev/shm is faster) and
 * removed at exit.  Paths are "DIR/NAME". */
static char fuzz_dir_buf[4096];
static char fuzz_path_buf[4][4096 + 64];

static int fuzz_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fuzz_dir_cleanup(void)
{
    if (fuzz_dir_buf[0])
        nftw(fuzz_dir_buf, fuzz_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static inline const char *fuzz_path(unsigned slot, const char *name)
{
    if (!fuzz_dir_buf[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir_buf, sizeof(fuzz_dir_buf), "%s/md-fuzz.XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fuzz_dir_buf)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_dir_cleanup);
    }
    snprintf(fuzz_path_buf[slot], sizeof(fuzz_path_buf[slot]), "%s/%s", fuzz_dir_buf, name);
    return fuzz_path_buf[slot];
}

/* Write @size bytes to the file @path (replaced).  Aborts on failure: the
 * harness, not the library, is broken then. */
static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t done = 0;

    if (fd < 0) {
        perror(path);
        abort();
    }
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror(path);
            abort();
        }
        done += (size_t)n;
    }
    close(fd);
}

/* A context with a fixed epoch (deterministic ids, no clock reads), no log. */
static inline md_ctx *fuzz_ctx(void)
{
    md_ctx *ctx = NULL;

    if (md_ctx_new(&ctx) < 0 || md_ctx_set_epoch(ctx, 1700000000) < 0)
        abort();
    return ctx;
}

/* The input as a NUL-terminated string (it may hold NULs itself: the
 * parsers see the part before the first one). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
