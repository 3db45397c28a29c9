/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg: shared pieces of the subcommands.  The CLI only parses, calls, prints. */
#ifndef MDIMG_H
#define MDIMG_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <libminidistro/minidistro.h>

#define EXIT_USAGE 2

struct mdimg_cmd {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
};

extern int mdimg_verbose; /* -1 quiet, 0 normal, 1 verbose */
extern const char *mdimg_cmdname;

/* Print "mdimg: CMD: <library message or strerror>" and return 1. */
int mdimg_fail(md_ctx *ctx, int r);
/* Print "mdimg: CMD: message" to stderr. */
void mdimg_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a usage error plus a hint to use --help, return EXIT_USAGE. */
int mdimg_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Informational output, suppressed by -q. */
void mdimg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A context set up for the CLI (log to stderr with -v). */
int mdimg_ctx_new(md_ctx **ret);
/* Parse a size like 64M; usage error message on failure. */
int mdimg_parse_size(const char *opt, const char *s, uint64_t *ret);
/* Parse a non-negative integer; usage error message on failure. */
int mdimg_parse_uint(const char *opt, const char *s, unsigned long max, unsigned long *ret);

/* Subcommands */
int cmd_initramfs(int argc, char **argv);
int cmd_disk(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_extlinux(int argc, char **argv);
int cmd_boot(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_disk_create(int argc, char **argv);
int cmd_disk_format(int argc, char **argv);
int cmd_disk_populate(int argc, char **argv);
int cmd_disk_cp(int argc, char **argv);
int cmd_disk_ls(int argc, char **argv);

#endif
