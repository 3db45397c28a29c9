/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mdimg.h"

int mdimg_verbose;
int mdimg_wait;
const char *mdimg_cmdname = NULL;

static const struct mdimg_cmd commands[] = {
    { "initramfs", cmd_initramfs, "build a newc cpio initramfs from trees, spec files and BusyBox" },
    { "disk", cmd_disk, "create, format, populate and read disk images (no root, no mount)" },
    { "inspect", cmd_inspect, "show an image's partition table and filesystems" },
    { "extlinux", cmd_extlinux, "install the EXTLINUX boot loader into an image" },
    { "uki", cmd_uki, "build a unified kernel image (EFI stub + kernel + initrd + cmdline)" },
    { "boot", cmd_boot, "boot an image (or kernel + initramfs) in QEMU" },
    { "build", cmd_build, "build a complete bootable distro image in one step" },
};

static void print_version(void)
{
    printf("mdimg (libminidistro) %s\n", md_version());
}

static void usage(FILE *f)
{
    size_t i;

    fprintf(f,
            "Usage: mdimg [-q|-v] <command> [options]\n"
            "       mdimg --help | --version\n"
            "\n"
            "Build bootable Linux images as a normal user: no root, no mount.\n"
            "\n"
            "Commands:\n");
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "Options:\n"
            "  -q, --quiet     print only errors\n"
            "  -v, --verbose   print library debug messages (also: MD_DEBUG=1)\n"
            "  -h, --help      show this help\n"
            "  -V, --version   show the version\n"
            "\n"
            "Run 'mdimg <command> --help' for a command's options.\n"
            "Exit status: 0 ok, 1 failure, 2 usage error.\n");
}

int mdimg_fail(md_ctx *ctx, int r)
{
    const char *msg = ctx ? md_ctx_errmsg(ctx) : "";
    fprintf(stderr, "mdimg: %s: %s\n", mdimg_cmdname ? mdimg_cmdname : "error",
            *msg ? msg : md_strerror(r));
    return 1;
}

void mdimg_err(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mdimg: %s: ", mdimg_cmdname ? mdimg_cmdname : "error");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int mdimg_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mdimg: %s: ", mdimg_cmdname ? mdimg_cmdname : "usage");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (mdimg_cmdname)
        fprintf(stderr, "\nTry 'mdimg %s --help' for more information.\n", mdimg_cmdname);
    else
        fprintf(stderr, "\nTry 'mdimg --help' for more information.\n");
    return EXIT_USAGE;
}

void mdimg_info(const char *fmt, ...)
{
    va_list ap;
    if (mdimg_verbose < 0)
        return;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void log_to_stderr(void *userdata, int prio, const char *msg)
{
    (void)userdata;
    if (prio <= MD_LOG_WARNING)
        fprintf(stderr, "mdimg: %s: warning: %s\n", mdimg_cmdname ? mdimg_cmdname : "", msg);
    else
        fprintf(stderr, "mdimg: debug: %s\n", msg);
}

int mdimg_ctx_new(md_ctx **ret)
{
    int r = md_ctx_new(ret);
    if (r == -EINVAL) {
        /* the only reason md_ctx_new() gives -EINVAL */
        mdimg_err("SOURCE_DATE_EPOCH='%s' is not a number of seconds since 1970",
                  getenv("SOURCE_DATE_EPOCH") ? getenv("SOURCE_DATE_EPOCH") : "");
        return r;
    }
    if (r < 0) {
        mdimg_err("cannot create context: %s", md_strerror(r));
        return r;
    }
    /* warnings (metadata a sink cannot hold, ...) always, unless -q;
     * debug messages with -v */
    if (mdimg_verbose > 0)
        md_ctx_set_log_fn(*ret, log_to_stderr, NULL, MD_LOG_DEBUG);
    else if (mdimg_verbose == 0)
        md_ctx_set_log_fn(*ret, log_to_stderr, NULL, MD_LOG_WARNING);
    return 0;
}

int mdimg_parse_size(const char *opt, const char *s, uint64_t *ret)
{
    if (md_parse_size(s, ret) < 0) {
        mdimg_usage_error("%s: '%s' is not a size (examples: 512, 64M, 2G)", opt, s);
        return -EINVAL;
    }
    return 0;
}

/* No context here: a name is checked without allocating anything. */
int mdimg_parse_fs_type(const char *opt, const char *s, int32_t *ret)
{
    if (md_fs_type_from_name(NULL, s, ret) == 0)
        return 0;
    mdimg_usage_error("%s: unknown filesystem type '%s' (use ext2, ext3 or ext4)", opt, s);
    return -EINVAL;
}

int mdimg_fs_is_fat(int32_t type)
{
    return type == MD_VFAT || type == MD_FAT12 || type == MD_FAT16 || type == MD_FAT32;
}

int mdimg_parse_table(const char *opt, const char *s, uint32_t *ret)
{
    if (md_table_from_name(NULL, s, ret) == 0)
        return 0;
    mdimg_usage_error("%s: unknown partition table type '%s' (use gpt, mbr or none)", opt, s);
    return -EINVAL;
}

int mdimg_parse_partno(const char *s, uint32_t *ret)
{
    unsigned long v;

    if (mdimg_parse_uint("--part", s, 4096, &v) < 0)
        return -EINVAL;
    *ret = (uint32_t)v;
    return 0;
}

int mdimg_parse_free(const char *arg, uint64_t *bytes, uint32_t *percent)
{
    size_t n = strlen(arg);
    unsigned long pct;
    char *end;

    *bytes = 0;
    *percent = 0;
    if (n > 1 && arg[n - 1] == '%' && arg[0] >= '0' && arg[0] <= '9') {
        errno = 0;
        pct = strtoul(arg, &end, 10);
        if (errno || end != arg + n - 1 || pct > 1000) {
            mdimg_usage_error("--free: '%s' is not a percentage from 0%% to 1000%%", arg);
            return -EINVAL;
        }
        *percent = (uint32_t)pct;
        return 0;
    }
    if (md_parse_size(arg, bytes) < 0) {
        mdimg_usage_error("--free: '%s' is not a size or a percentage (examples: 64M, 25%%)", arg);
        return -EINVAL;
    }
    return 0;
}

int mdimg_common_option(int c)
{
    switch (c) {
    case 'q': mdimg_verbose = -1; return 1;
    case 'v': mdimg_verbose = 1; return 1;
    case MDIMG_OPT_WAIT: mdimg_wait = 1; return 1;
    default: return 0;
    }
}

int mdimg_image_open(md_ctx *ctx, const char *path, int rdonly, md_image **img)
{
    uint32_t flags = rdonly ? MD_IMAGE_RDONLY : MD_IMAGE_ATOMIC;

    if (mdimg_wait)
        flags |= MD_IMAGE_WAIT;
    return md_image_open(ctx, path, flags, img);
}

int mdimg_try_help(void)
{
    if (mdimg_cmdname)
        fprintf(stderr, "Try 'mdimg %s --help' for more information.\n", mdimg_cmdname);
    else
        fprintf(stderr, "Try 'mdimg --help' for more information.\n");
    return EXIT_USAGE;
}

void mdimg_set_cmdname(char **argv, const char *name)
{
    static char display[80];

    mdimg_cmdname = name;
    snprintf(display, sizeof(display), "mdimg: %s", name);
    argv[0] = display;
}

int mdimg_parse_uint(const char *opt, const char *s, unsigned long max, unsigned long *ret)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 0);
    if (errno || end == s || *end || *s == '-' || v > max) {
        mdimg_usage_error("%s: '%s' is not a number from 0 to %lu", opt, s, max);
        return -EINVAL;
    }
    *ret = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { NULL, 0, NULL, 0 },
    };
    size_t i;
    int c;

    argv[0] = (char *)"mdimg"; /* getopt's messages name the program, not its path */
    /* stop at the first non-option: the command and its own options follow */
    while ((c = getopt_long(argc, argv, "+hVqv", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'V': print_version(); return 0;
        case 'q': mdimg_verbose = -1; break;
        case 'v': mdimg_verbose = 1; break;
        default: return mdimg_try_help();
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[optind], commands[i].name) == 0) {
            int first = optind;
            mdimg_set_cmdname(argv + first, commands[i].name);
            optind = 0; /* glibc: fully re-initialise getopt for the subcommand */
            return commands[i].run(argc - first, argv + first);
        }
    }
    fprintf(stderr, "mdimg: unknown command '%s'\n", argv[optind]);
    return mdimg_try_help();
}
