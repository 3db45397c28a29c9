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
/* Parse "ext2", "ext3" or "ext4" given to @opt into MD_EXT*; usage error message on failure. */
int mdimg_parse_fs_type(const char *opt, const char *s, int32_t *ret);
/* Parse a non-negative integer; usage error message on failure. */
int mdimg_parse_uint(const char *opt, const char *s, unsigned long max, unsigned long *ret);

/* EXTLINUX options shared by `extlinux install` and `disk create --extlinux`. */
enum {
    MDIMG_XL_DIR = 0x200, MDIMG_XL_CONFIG, MDIMG_XL_KERNEL, MDIMG_XL_INITRD, MDIMG_XL_APPEND,
    MDIMG_XL_LABEL, MDIMG_XL_SERIAL, MDIMG_XL_TIMEOUT, MDIMG_XL_PROMPT, MDIMG_XL_MODULES,
    MDIMG_XL_SDIR, MDIMG_XL_BIN, MDIMG_XL_NOMBR, MDIMG_XL_RAID, MDIMG_XL_STUPID,
};
/* struct option entries for the shared options (--label is added by each command) */
#define MDIMG_EXTLINUX_LONGOPTS \
    { "dir", required_argument, NULL, MDIMG_XL_DIR }, \
    { "config", required_argument, NULL, MDIMG_XL_CONFIG }, \
    { "kernel", required_argument, NULL, MDIMG_XL_KERNEL }, \
    { "initrd", required_argument, NULL, MDIMG_XL_INITRD }, \
    { "append", required_argument, NULL, MDIMG_XL_APPEND }, \
    { "serial", required_argument, NULL, MDIMG_XL_SERIAL }, \
    { "timeout", required_argument, NULL, MDIMG_XL_TIMEOUT }, \
    { "prompt", no_argument, NULL, MDIMG_XL_PROMPT }, \
    { "modules", required_argument, NULL, MDIMG_XL_MODULES }, \
    { "syslinux-dir", required_argument, NULL, MDIMG_XL_SDIR }, \
    { "extlinux-bin", required_argument, NULL, MDIMG_XL_BIN }, \
    { "no-mbr", no_argument, NULL, MDIMG_XL_NOMBR }, \
    { "raid", no_argument, NULL, MDIMG_XL_RAID }, \
    { "stupid", no_argument, NULL, MDIMG_XL_STUPID }

struct mdimg_extlinux {
    md_extlinux_opts opts;
    const char *config, *kernel, *initrd, *append, *label, *serial, *modules_arg;
    unsigned long timeout;
    int prompt;
    int used;               /* any of the options was given */
    char *text, *modules_copy, **modules;
    md_extlinux_config *cfg;
};
extern const char mdimg_extlinux_help[];
void mdimg_extlinux_init(struct mdimg_extlinux *x);
/* 1: option consumed; 0: not an EXTLINUX option; <0: usage error already printed */
int mdimg_extlinux_option(struct mdimg_extlinux *x, int c, const char *arg);
/* Check the combination and build the config text: 0 ok, else the exit status (message printed). */
int mdimg_extlinux_prepare(struct mdimg_extlinux *x, md_ctx *ctx);
void mdimg_extlinux_free(struct mdimg_extlinux *x);

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
