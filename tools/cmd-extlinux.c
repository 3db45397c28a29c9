/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg extlinux install: rootless EXTLINUX installation into an image. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mdimg.h"

static void usage_install(FILE *f)
{
    fprintf(f,
            "Usage: mdimg extlinux install IMG [options]\n"
            "\n"
            "Install the EXTLINUX boot loader into the ext2/3/4 filesystem of IMG, without\n"
            "root and without mounting.  Running it again updates the installation.\n"
            "For a partitioned image the MBR boot code (mbr.bin, or gptmbr.bin for GPT) is\n"
            "written and the partition is marked bootable.\n"
            "\n"
            "Options:\n"
            "  --part N              partition holding the filesystem (default 0: the whole\n"
            "                        image is the filesystem, no MBR)\n"
            "  --dir DIR             install directory in the filesystem (default /boot/syslinux)\n"
            "  --config FILE         use FILE as extlinux.conf\n"
            "  --kernel PATH         generate extlinux.conf booting PATH (a path in the image)\n"
            "  --initrd PATH[,PATH]  initramfs file(s) in the image for --kernel\n"
            "  --append ARGS         kernel command line for --kernel\n"
            "  --label NAME          entry label (default linux)\n"
            "  --serial PORT,BAUD    serial console line, e.g. 0,115200 (also for menus)\n"
            "  --timeout T           timeout in tenths of a second (default 0: boot at once)\n"
            "  --prompt              always show the boot: prompt\n"
            "  --modules A.c32,...   extra com32 modules to install (menu.c32, libutil.c32...)\n"
            "  --syslinux-dir DIR    syslinux files (mbr/, modules/bios/); default /usr/lib/syslinux\n"
            "  --extlinux-bin FILE   binary holding the boot sector and ldlinux.sys (default\n"
            "                        /usr/bin/extlinux), or a dir with ldlinux.bss/ldlinux.sys\n"
            "  --no-mbr              do not touch the MBR boot code nor the boot flag\n"
            "  --raid                on boot failure try the next disk (INT 18h)\n"
            "  --stupid              read one sector at a time (buggy BIOSes)\n"
            "  -h, --help            show this help\n"
            "\n"
            "Without --config or --kernel an existing extlinux.conf is kept.\n"
            "Kernel and initrd files named in the config must already be in the image.\n");
}

static int split_modules(char *s, char ***ret)
{
    size_t n = 1, i = 0;
    char *p, **v;

    for (p = s; *p; p++)
        if (*p == ',')
            n++;
    v = calloc(n + 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (p = strtok(s, ","); p; p = strtok(NULL, ","))
        v[i++] = p;
    v[i] = NULL;
    *ret = v;
    return 0;
}

static int cmd_install(int argc, char **argv)
{
    enum { O_PART = 256, O_DIR, O_CONFIG, O_KERNEL, O_INITRD, O_APPEND, O_LABEL, O_SERIAL,
           O_TIMEOUT, O_PROMPT, O_MODULES, O_SDIR, O_BIN, O_NOMBR, O_RAID, O_STUPID };
    static const struct option lopts[] = {
        { "part", required_argument, NULL, O_PART },
        { "dir", required_argument, NULL, O_DIR },
        { "config", required_argument, NULL, O_CONFIG },
        { "kernel", required_argument, NULL, O_KERNEL },
        { "initrd", required_argument, NULL, O_INITRD },
        { "append", required_argument, NULL, O_APPEND },
        { "label", required_argument, NULL, O_LABEL },
        { "serial", required_argument, NULL, O_SERIAL },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "prompt", no_argument, NULL, O_PROMPT },
        { "modules", required_argument, NULL, O_MODULES },
        { "syslinux-dir", required_argument, NULL, O_SDIR },
        { "extlinux-bin", required_argument, NULL, O_BIN },
        { "no-mbr", no_argument, NULL, O_NOMBR },
        { "raid", no_argument, NULL, O_RAID },
        { "stupid", no_argument, NULL, O_STUPID },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    md_extlinux_opts opts = MD_EXTLINUX_OPTS_INIT;
    const char *config = NULL, *kernel = NULL, *initrd = NULL, *append = NULL, *label = "linux";
    const char *serial = NULL;
    char *modules_arg = NULL, **modules = NULL, *text = NULL;
    unsigned long part = 0, timeout = 0, port = 0, baud = 0;
    int prompt = 0, c, r, ret = 1;
    md_ctx *ctx = NULL;
    md_image *img = NULL;
    md_extlinux_config *cfg = NULL;

    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (c) {
        case O_PART:
            if (mdimg_parse_uint("--part", optarg, 128, &part) < 0)
                return EXIT_USAGE;
            break;
        case O_DIR: opts.dir = optarg; break;
        case O_CONFIG: config = optarg; break;
        case O_KERNEL: kernel = optarg; break;
        case O_INITRD: initrd = optarg; break;
        case O_APPEND: append = optarg; break;
        case O_LABEL: label = optarg; break;
        case O_SERIAL: serial = optarg; break;
        case O_TIMEOUT:
            if (mdimg_parse_uint("--timeout", optarg, 35999, &timeout) < 0)
                return EXIT_USAGE;
            break;
        case O_PROMPT: prompt = 1; break;
        case O_MODULES: modules_arg = optarg; break;
        case O_SDIR: opts.syslinux_dir = optarg; break;
        case O_BIN: opts.extlinux_bin = optarg; break;
        case O_NOMBR: opts.flags |= MD_EXTLINUX_NO_MBR; break;
        case O_RAID: opts.flags |= MD_EXTLINUX_RAID; break;
        case O_STUPID: opts.flags |= MD_EXTLINUX_STUPID; break;
        case 'h': usage_install(stdout); return 0;
        default: return mdimg_usage_error("bad option");
        }
    }
    if (optind + 1 != argc)
        return mdimg_usage_error(optind >= argc ? "missing IMG" : "too many arguments");
    if (config && (kernel || initrd || append || serial || timeout || prompt))
        return mdimg_usage_error("--config excludes --kernel/--initrd/--append/--serial/--timeout/--prompt");
    if (!kernel && (initrd || append))
        return mdimg_usage_error("--initrd and --append need --kernel");
    if (serial) {
        char *end;
        errno = 0;
        port = strtoul(serial, &end, 10);
        if (end == serial || *end != ',' || errno)
            return mdimg_usage_error("--serial: '%s' is not PORT,BAUD (e.g. 0,115200)", serial);
        baud = strtoul(end + 1, &end, 10);
        if (*end || errno || port > 3 || !baud)
            return mdimg_usage_error("--serial: '%s' is not PORT,BAUD (e.g. 0,115200)", serial);
    }
    if (modules_arg) {
        modules_arg = strdup(modules_arg);
        if (!modules_arg || split_modules(modules_arg, &modules) < 0) {
            mdimg_err("out of memory");
            goto out;
        }
        opts.modules = (const char *const *)modules;
    }
    if (mdimg_ctx_new(&ctx) < 0)
        goto out;
    if (config) {
        size_t len = 0, cap = 0;
        FILE *f = fopen(config, "r");
        if (!f) {
            mdimg_err("%s: %s", config, strerror(errno));
            goto out;
        }
        for (;;) {
            size_t got;
            if (cap - len < 4096) {
                char *t = realloc(text, cap + 65536);
                if (!t) {
                    fclose(f);
                    mdimg_err("out of memory");
                    goto out;
                }
                text = t;
                cap += 65536;
            }
            got = fread(text + len, 1, cap - len - 1, f);
            len += got;
            if (got == 0)
                break;
        }
        if (ferror(f)) {
            fclose(f);
            mdimg_err("%s: read error", config);
            goto out;
        }
        fclose(f);
        text[len] = '\0';
        if (strlen(text) != len) {
            mdimg_err("%s: contains NUL bytes, not a config file", config);
            goto out;
        }
        opts.config_text = text;
    } else if (kernel) {
        const char *t;
        if ((r = md_extlinux_config_new(ctx, &cfg)) < 0 ||
            (r = md_extlinux_config_set_serial(cfg, (uint32_t)port, (uint32_t)baud)) < 0 ||
            (r = md_extlinux_config_set_timeout(cfg, (uint32_t)timeout)) < 0 ||
            (r = md_extlinux_config_set_prompt(cfg, prompt)) < 0 ||
            (r = md_extlinux_config_add_entry(cfg, label, kernel, initrd, append)) < 0 ||
            (r = md_extlinux_config_render(cfg, &t)) < 0) {
            mdimg_fail(ctx, r);
            goto out;
        }
        opts.config_text = t;
    } else if (serial || timeout || prompt) {
        mdimg_usage_error("--serial/--timeout/--prompt need --kernel");
        ret = EXIT_USAGE;
        goto out;
    }
    r = md_image_open(ctx, argv[optind], 0, &img);
    if (r < 0) {
        mdimg_fail(ctx, r);
        goto out;
    }
    r = md_extlinux_install(img, (uint32_t)part, &opts);
    if (r < 0) {
        mdimg_fail(ctx, r);
        goto out;
    }
    if (part)
        mdimg_info("%s: EXTLINUX installed in partition %lu, %s\n", argv[optind], part,
                   opts.dir ? opts.dir : "/boot/syslinux");
    else
        mdimg_info("%s: EXTLINUX installed, %s\n", argv[optind],
                   opts.dir ? opts.dir : "/boot/syslinux");
    ret = 0;
out:
    md_image_free(img);
    md_extlinux_config_free(cfg);
    md_ctx_free(ctx);
    free(text);
    free(modules);
    free(modules_arg);
    return ret;
}

int cmd_extlinux(int argc, char **argv)
{
    static char name[] = "extlinux install";

    if (argc < 2) {
        fprintf(stderr, "Usage: mdimg extlinux install IMG [options]\n"
                        "Run 'mdimg extlinux install --help' for the options.\n");
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage_install(stdout);
        return 0;
    }
    if (strcmp(argv[1], "install")) {
        mdimg_err("unknown subcommand '%s' (known: install)", argv[1]);
        return EXIT_USAGE;
    }
    mdimg_cmdname = name;
    optind = 0;
    return cmd_install(argc - 1, argv + 1);
}
