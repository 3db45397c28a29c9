/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* EXTLINUX options shared by `mdimg extlinux install` and `mdimg disk create --extlinux`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mdimg.h"

const char mdimg_extlinux_help[] =
    "  --dir DIR             install directory in the filesystem (default /boot/syslinux)\n"
    "  --config FILE         use FILE as extlinux.conf\n"
    "  --kernel PATH         generate extlinux.conf booting PATH (a path in the image)\n"
    "  --initrd PATH[,PATH]  initramfs file(s) in the image for --kernel\n"
    "  --append ARGS         kernel command line for --kernel\n"
    "  --serial PORT,BAUD    serial console line, e.g. 0,115200 (also for menus)\n"
    "  --timeout T           timeout in tenths of a second (default 0: boot at once)\n"
    "  --prompt              always show the boot: prompt\n"
    "  --modules A.c32,...   extra com32 modules to install (menu.c32, libutil.c32...)\n"
    "  --syslinux-dir DIR    syslinux files (mbr/, modules/bios/); default /usr/lib/syslinux\n"
    "  --extlinux-bin FILE   binary holding the boot sector and ldlinux.sys (default\n"
    "                        /usr/bin/extlinux), or a dir with ldlinux.bss/ldlinux.sys\n"
    "  --no-mbr              do not touch the MBR boot code nor the boot flag\n"
    "  --raid                on boot failure try the next disk (INT 18h)\n"
    "  --stupid              read one sector at a time (buggy BIOSes)\n";

void mdimg_extlinux_init(struct mdimg_extlinux *x)
{
    static const md_extlinux_opts def = MD_EXTLINUX_OPTS_INIT;

    memset(x, 0, sizeof(*x));
    x->opts = def;
    x->label = "linux";
}

int mdimg_extlinux_option(struct mdimg_extlinux *x, int c, const char *arg)
{
    switch (c) {
    case MDIMG_XL_DIR: x->opts.dir = arg; break;
    case MDIMG_XL_CONFIG: x->config = arg; break;
    case MDIMG_XL_KERNEL: x->kernel = arg; break;
    case MDIMG_XL_INITRD: x->initrd = arg; break;
    case MDIMG_XL_APPEND: x->append = arg; break;
    case MDIMG_XL_LABEL: x->label = arg; break;
    case MDIMG_XL_SERIAL: x->serial = arg; break;
    case MDIMG_XL_TIMEOUT:
        if (mdimg_parse_uint("--timeout", arg, 35999, &x->timeout) < 0)
            return -EINVAL;
        break;
    case MDIMG_XL_PROMPT: x->prompt = 1; break;
    case MDIMG_XL_MODULES: x->modules_arg = arg; break;
    case MDIMG_XL_SDIR: x->opts.syslinux_dir = arg; break;
    case MDIMG_XL_BIN: x->opts.extlinux_bin = arg; break;
    case MDIMG_XL_NOMBR: x->opts.flags |= MD_EXTLINUX_NO_MBR; break;
    case MDIMG_XL_RAID: x->opts.flags |= MD_EXTLINUX_RAID; break;
    case MDIMG_XL_STUPID: x->opts.flags |= MD_EXTLINUX_STUPID; break;
    default: return 0;
    }
    x->used = 1;
    return 1;
}

static int split_modules(struct mdimg_extlinux *x)
{
    size_t n = 1, i = 0;
    char *p;

    x->modules_copy = strdup(x->modules_arg);
    if (!x->modules_copy)
        return -ENOMEM;
    for (p = x->modules_copy; *p; p++)
        if (*p == ',')
            n++;
    x->modules = calloc(n + 1, sizeof(*x->modules));
    if (!x->modules)
        return -ENOMEM;
    for (p = strtok(x->modules_copy, ","); p; p = strtok(NULL, ","))
        x->modules[i++] = p;
    x->opts.modules = (const char *const *)x->modules;
    return 0;
}

static int read_config(struct mdimg_extlinux *x)
{
    size_t len = 0, cap = 0;
    FILE *f = fopen(x->config, "r");

    if (!f) {
        int e = errno; /* mdimg_err() may change errno */
        mdimg_err("--config %s: %s", x->config, strerror(e));
        return -e;
    }
    for (;;) {
        size_t got;
        if (cap - len < 4096) {
            char *t = realloc(x->text, cap + 65536);
            if (!t) {
                fclose(f);
                mdimg_err("out of memory");
                return -ENOMEM;
            }
            x->text = t;
            cap += 65536;
        }
        got = fread(x->text + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fclose(f);
        mdimg_err("%s: read error", x->config);
        return -EIO;
    }
    fclose(f);
    x->text[len] = '\0';
    if (strlen(x->text) != len) {
        mdimg_err("%s: contains NUL bytes, not a config file", x->config);
        return -EINVAL;
    }
    x->opts.config_text = x->text;
    return 0;
}

int mdimg_extlinux_prepare(struct mdimg_extlinux *x, md_ctx *ctx)
{
    unsigned long port = 0, baud = 0;
    const char *t;
    int r;

    if (x->config && (x->kernel || x->initrd || x->append || x->serial || x->timeout || x->prompt))
        return mdimg_usage_error("--config excludes --kernel/--initrd/--append/--serial/--timeout/--prompt");
    if (!x->kernel && (x->initrd || x->append))
        return mdimg_usage_error("--initrd and --append need --kernel");
    if (!x->kernel && !x->config && (x->serial || x->timeout || x->prompt))
        return mdimg_usage_error("--serial/--timeout/--prompt need --kernel");
    if (x->serial) {
        char *end;
        errno = 0;
        port = strtoul(x->serial, &end, 10);
        if (end == x->serial || *end != ',' || errno)
            return mdimg_usage_error("--serial: '%s' is not PORT,BAUD (e.g. 0,115200)", x->serial);
        baud = strtoul(end + 1, &end, 10);
        if (*end || errno || port > 3 || !baud)
            return mdimg_usage_error("--serial: '%s' is not PORT,BAUD (e.g. 0,115200)", x->serial);
    }
    if (x->modules_arg && split_modules(x) < 0) {
        mdimg_err("out of memory");
        return 1;
    }
    if (x->config)
        return read_config(x) < 0 ? 1 : 0;
    if (!x->kernel)
        return 0;
    if ((r = md_extlinux_config_new(ctx, &x->cfg)) < 0 ||
        (r = md_extlinux_config_set_serial(x->cfg, (uint32_t)port, (uint32_t)baud)) < 0 ||
        (r = md_extlinux_config_set_timeout(x->cfg, (uint32_t)x->timeout)) < 0 ||
        (r = md_extlinux_config_set_prompt(x->cfg, x->prompt)) < 0 ||
        (r = md_extlinux_config_add_entry(x->cfg, x->label, x->kernel, x->initrd, x->append)) < 0 ||
        (r = md_extlinux_config_render(x->cfg, &t)) < 0)
        return mdimg_fail(ctx, r);
    x->opts.config_text = t;
    return 0;
}

void mdimg_extlinux_free(struct mdimg_extlinux *x)
{
    md_extlinux_config_free(x->cfg);
    free(x->text);
    free(x->modules);
    free(x->modules_copy);
    x->cfg = NULL;
    x->text = NULL;
    x->modules = NULL;
    x->modules_copy = NULL;
}
