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
/* Parse a filesystem type name given to @opt (md_fs_type_from_name); usage error on failure. */
int mdimg_parse_fs_type(const char *opt, const char *s, int32_t *ret);
/* 1 if @type (md_fs_type_from_name) is one of the FAT types, else 0. */
int mdimg_fs_is_fat(int32_t type);
/* Parse a partition table type name given to @opt (md_table_from_name); usage error on failure. */
int mdimg_parse_table(const char *opt, const char *s, uint32_t *ret);
/* --free SIZE|N%: the headroom of a computed image size (md_disk_set_headroom:
 * bytes, or a percentage when bytes is 0); usage error on failure. */
int mdimg_parse_free(const char *arg, uint64_t *bytes, uint32_t *percent);
/* Parse a partition number for --part; usage error on failure. */
int mdimg_parse_partno(const char *s, uint32_t *ret);

/* -q, -v and -h: every command takes them (add "qvh" to its short options). */
#define MDIMG_COMMON_LONGOPTS \
    { "quiet", no_argument, NULL, 'q' }, \
    { "verbose", no_argument, NULL, 'v' }, \
    { "help", no_argument, NULL, 'h' }
/* --wait: commands that open an existing image wait for another program's lock. */
#define MDIMG_OPT_WAIT 0x2ff
#define MDIMG_WAIT_LONGOPT { "wait", no_argument, NULL, MDIMG_OPT_WAIT }
extern int mdimg_wait;
/* md_image_open() for a command: read-only with a shared lock, or changed
 * through an atomic copy (publish with md_image_commit()); --wait. */
int mdimg_image_open(md_ctx *ctx, const char *path, int rdonly, md_image **img);
/* -q / -v / --wait: 1 if @c was one of them. */
int mdimg_common_option(int c);
/* getopt has printed why an option is bad: add the --help hint, return EXIT_USAGE. */
int mdimg_try_help(void);
/* Name commands by their full name ("mdimg: disk create") in getopt's messages. */
void mdimg_set_cmdname(char **argv, const char *name);

/* Progress lines (progress.c): on a terminal, or with --progress; never with -q. */
#define MDIMG_PROGRESS_BYTES 0
#define MDIMG_PROGRESS_STEPS 1
struct mdimg_progress {
    const char *what;
    int unit;            /* MDIMG_PROGRESS_* */
    int tty, enabled, printed;
    double t0, last;
};
void mdimg_progress_init(struct mdimg_progress *p, const char *what, int unit, int forced);
/* An md_progress_fn; @userdata is the struct mdimg_progress.  Never cancels. */
int mdimg_progress_cb(void *userdata, uint64_t done, uint64_t total);
/* Ends the line on a terminal. */
void mdimg_progress_done(struct mdimg_progress *p);

/* Source options shared by initramfs, disk create and disk populate (sources.c). */
enum {
    MDIMG_SRC_SPEC = 0x300, MDIMG_SRC_ARCHIVE, MDIMG_SRC_BUSYBOX, MDIMG_SRC_PREFIX,
    MDIMG_SRC_KEEP_OWNER, MDIMG_SRC_KEEP_MTIME, MDIMG_SRC_XATTRS, MDIMG_SRC_NO_HARDLINKS,
};
#define MDIMG_SOURCE_LONGOPTS \
    { "spec", required_argument, NULL, MDIMG_SRC_SPEC }, \
    { "archive", required_argument, NULL, MDIMG_SRC_ARCHIVE }, \
    { "cpio", required_argument, NULL, MDIMG_SRC_ARCHIVE }, \
    { "busybox", required_argument, NULL, MDIMG_SRC_BUSYBOX }, \
    { "prefix", required_argument, NULL, MDIMG_SRC_PREFIX }, \
    { "keep-owner", no_argument, NULL, MDIMG_SRC_KEEP_OWNER }, \
    { "keep-mtime", no_argument, NULL, MDIMG_SRC_KEEP_MTIME }, \
    { "xattrs", no_argument, NULL, MDIMG_SRC_XATTRS }, \
    { "no-hardlinks", no_argument, NULL, MDIMG_SRC_NO_HARDLINKS }
struct mdimg_sources {
    struct mdimg_source {
        uint32_t kind;      /* MD_SOURCE_* */
        const char *path;
    } *v;
    size_t n;
    const char *busybox;    /* added first */
    md_host_opts host;
};
extern const char mdimg_sources_help[];
int mdimg_sources_init(struct mdimg_sources *s, int argc);
void mdimg_sources_free(struct mdimg_sources *s);
/* A DIR|ARCHIVE argument (MD_SOURCE_AUTO) or another kind, in order. */
void mdimg_sources_push(struct mdimg_sources *s, uint32_t kind, const char *path);
/* 1: option consumed; 0: not a source option */
int mdimg_sources_option(struct mdimg_sources *s, int c, const char *arg);
int mdimg_sources_empty(const struct mdimg_sources *s);
/* Add them all to @tree: BusyBox first, then in order.  Library error on failure. */
int mdimg_sources_add(struct mdimg_sources *s, md_tree *tree);
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
int cmd_uki(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_disk_create(int argc, char **argv);
int cmd_disk_format(int argc, char **argv);
int cmd_disk_populate(int argc, char **argv);
int cmd_disk_cp(int argc, char **argv);
int cmd_disk_ls(int argc, char **argv);

#endif
