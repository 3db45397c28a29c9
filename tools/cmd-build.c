/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg build: a complete bootable distro image in one step (md_distro_build). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mdimg.h"

enum {
    OPT_KERNEL = 0x100,
    OPT_BUILD_KERNEL,
    OPT_KERNEL_CONFIG,
    OPT_BUSYBOX,
    OPT_BUSYBOX_SRC,
    OPT_ROOT,
    OPT_TABLE,
    OPT_OVERLAY,
    OPT_MODULES_DIR,
    OPT_ADD_MODULE,
    OPT_HOSTNAME,
    OPT_APPEND,
    OPT_INITRAMFS,
    OPT_FORCE,
    OPT_NO_MODULES,
    OPT_COMPRESS,
    OPT_ROOTFS,
    OPT_INITRD,
    OPT_ROOT_PASSWORD,
    OPT_FREE,
    OPT_PROGRESS,
    OPT_NO_SYNC,
    OPT_BOOT,
    OPT_EFI_STUB,
    OPT_ESP_SIZE,
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg build -o IMAGE (--kernel PATH | --build-kernel)\n"
            "                   [--busybox PATH | --busybox-src DIR] [options]\n"
            "       mdimg build -o IMAGE --rootfs TAR|DIR [--root-password PASS] [options]\n"
            "\n"
            "Build a bootable disk image holding a BusyBox system: partition table,\n"
            "ext4 root filesystem, kernel + initramfs in /boot, EXTLINUX. No root needed.\n"
            "With --rootfs the system is a distribution's root filesystem instead (a\n"
            "tarball from mmdebstrap, say), booted by its own kernel and initrd.\n"
            "\n"
            "Options:\n"
            "  -o, --output IMAGE     the image to create\n"
            "      --rootfs TAR|DIR   the root filesystem: an archive (tar, cpio, ...; any\n"
            "                         compression) or a directory; its /vmlinuz and\n"
            "                         /initrd.img (else the newest /boot/vmlinuz-* and its\n"
            "                         /boot/initrd.img-*) boot it with root=UUID=...\n"
            "                         console=ttyS0; /etc/fstab gets a root line if it has\n"
            "                         none; the image size is computed unless --size\n"
            "      --initrd PATH      with --rootfs: boot this initrd instead of its own\n"
            "      --root-password P  with --rootfs: root's password (hashed, yescrypt)\n"
            "      --free SIZE|N%%     with --rootfs and no --size: free space left in the\n"
            "                         root filesystem (default 20%% of its contents, >= 16M)\n"
            "      --kernel PATH      x86 bzImage to boot (e.g. /boot/vmlinuz-RELEASE)\n"
            "      --build-kernel     build the small minidistro kernel with\n"
            "                         scripts/build-kernel (cached) and use it\n"
            "      --kernel-config F  the kernel's .config (default: 'config' next to the\n"
            "                         kernel, or /boot/config-RELEASE)\n"
            "      --busybox PATH     static BusyBox binary (default: /bin/busybox)\n"
            "      --busybox-src DIR  build a static BusyBox from the BusyBox source tree\n"
            "                         DIR with scripts/build-busybox (out of tree: DIR\n"
            "                         is not modified; cached) and use it\n"
            "      --root MODE        initramfs: the system runs from RAM (default)\n"
            "                         disk: /init mounts the ext4 partition and\n"
            "                         switch_roots to it; changes persist\n"
            "  -s, --size SIZE        image size (default: 64M; with --rootfs: computed)\n"
            "      --boot MODE        bios: EXTLINUX on the root partition (default)\n"
            "                         uefi: an EFI System partition holding\n"
            "                         \\EFI\\BOOT\\BOOTX64.EFI, a unified kernel image\n"
            "                         hybrid: both in one image\n"
            "      --efi-stub PATH    EFI stub for the UKI (default: systemd-boot-efi's\n"
            "                         %s)\n"
            "      --esp-size SIZE    ESP size (default: the UKI's size + 1 MiB, FAT16)\n"
            "      --table TYPE       partition table: mbr (default; with --boot uefi or\n"
            "                         hybrid: gpt) or gpt\n"
            "      --overlay DIR      copy DIR's contents over the system (repeatable)\n"
            "      --modules-dir DIR  kernel modules (default: /lib/modules/RELEASE)\n"
            "      --add-module NAME  also load this module at boot (repeatable)\n"
            "      --no-modules       do not add disk driver modules for --root disk\n"
            "      --hostname NAME    default: minidistro (with --rootfs: the rootfs's own)\n"
            "      --append ARGS      extra kernel command line\n"
            "      --initramfs PATH   also write the initramfs to PATH (for -kernel boots)\n"
            "      --compress CODEC   initramfs codec: auto (default: zstd if the kernel\n"
            "                         config has CONFIG_RD_ZSTD=y, else gzip), gzip, zstd,\n"
            "                         xz, lz4, none\n"
            "  -f, --force            replace an existing IMAGE\n"
            "      --progress         show progress also when stderr is not a terminal\n"
            "      --no-sync          do not flush IMAGE to stable storage at the end (see\n"
            "                         mdimg disk create --no-sync)\n"
            "  -q, --quiet            print nothing on success\n"
            "  -v, --verbose          print library debug messages\n"
            "  -h, --help             show this help\n"
            "\n"
            "Boot the result with: mdimg boot IMAGE (--firmware uefi for --boot uefi)\n"
            "Exit status: 0 ok, 1 failure (no image left behind), 2 usage error.\n",
            MD_UKI_DEFAULT_STUB);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Where helper script NAME (scripts/build-kernel, scripts/build-busybox) is:
 * $ENV, the source tree this mdimg was built in (a build directory inside
 * it, or the one named by the mdimg-srcdir file meson writes next to an
 * uninstalled mdimg), the installed share directory, or $PATH. */
static char *find_script(const char *name, const char *env_name)
{
    char exe[PATH_MAX], *p;
    const char *env = getenv(env_name);
    static const char *const rel[] = { "/../../scripts/", "/../scripts/",
                                       "/../share/libminidistro/", NULL };
    ssize_t n;
    size_t i;

    if (env && *env)
        return strdup(env);
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        p = strrchr(exe, '/');
        if (p) {
            char cand[2 * PATH_MAX], src[PATH_MAX];
            FILE *f;

            *p = '\0';
            for (i = 0; rel[i]; i++) {
                snprintf(cand, sizeof(cand), "%s%s%s", exe, rel[i], name);
                if (access(cand, X_OK) == 0)
                    return realpath(cand, NULL);
            }
            snprintf(cand, sizeof(cand), "%s/mdimg-srcdir", exe);
            f = fopen(cand, "re");
            if (f) {
                if (fgets(src, sizeof(src), f)) {
                    src[strcspn(src, "\n")] = '\0';
                    snprintf(cand, sizeof(cand), "%s/scripts/%s", src, name);
                    if (*src == '/' && access(cand, X_OK) == 0) {
                        fclose(f);
                        return realpath(cand, NULL);
                    }
                }
                fclose(f);
            }
        }
    }
    return strdup(name); /* from $PATH */
}

/* Run helper script NAME with ARGS (NULL-terminated; passed as is, no shell)
 * and return the last non-empty line of its stdout; its stderr (progress) goes
 * to ours. WHAT describes the job for the user, ALT the other way to get the
 * result, for the message when the script cannot be found. */
static char *run_script(const char *name, const char *env_name, const char *const *args,
                        const char *what, const char *alt)
{
    char *script = find_script(name, env_name), line[PATH_MAX], *last = NULL;
    const char **argv = NULL;
    size_t n = 0, i;
    int fds[2] = { -1, -1 }, st = -1;
    pid_t pid;
    FILE *p;

    if (!script) {
        mdimg_err("out of memory");
        return NULL;
    }
    while (args && args[n])
        n++;
    argv = calloc(n + 2, sizeof(*argv));
    if (!argv) {
        mdimg_err("out of memory");
        free(script);
        return NULL;
    }
    argv[0] = script;
    for (i = 0; i < n; i++)
        argv[i + 1] = args[i];
    mdimg_info("%s with %s (cached after the first time)...\n", what, script);
    fflush(NULL);
    if (pipe(fds) < 0 || (pid = fork()) < 0) {
        mdimg_err("cannot run %s: %s", script, strerror(errno));
        if (fds[0] >= 0) {
            close(fds[0]);
            close(fds[1]);
        }
        goto out;
    }
    if (pid == 0) {
        close(fds[0]);
        if (fds[1] != STDOUT_FILENO) {
            dup2(fds[1], STDOUT_FILENO);
            close(fds[1]);
        }
        execvp(script, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    p = fdopen(fds[0], "r");
    if (!p) {
        close(fds[0]);
    } else {
        while (fgets(line, sizeof(line), p)) {
            line[strcspn(line, "\n")] = '\0';
            if (*line) {
                free(last);
                last = strdup(line);
            }
        }
        fclose(p);
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (st != 0 || !last) {
        if (st == -1 || (WIFEXITED(st) && WEXITSTATUS(st) == 127))
            mdimg_err("cannot run %s (set %s to scripts/%s of the libminidistro sources, "
                      "or %s)", script, env_name, name, alt);
        else if (st == 0)
            mdimg_err("%s succeeded but printed no path on its standard output", script);
        else if (WIFSIGNALED(st))
            mdimg_err("%s was killed by signal %d", script, WTERMSIG(st));
        else
            mdimg_err("%s failed (exit status %d)", script, WEXITSTATUS(st));
        free(last);
        last = NULL;
    }
out:
    free(argv);
    free(script);
    return last;
}

struct build_args {
    md_distro_opts o;
    const char **overlays, **modules;
    size_t n_overlays, n_modules;
    const char *busybox_src;
    int want_build_kernel, free_given, progress, table_given;
};

static int parse_boot(const char *arg, uint32_t *boot)
{
    if (strcmp(arg, "bios") == 0)
        *boot = MD_DISTRO_BOOT_BIOS;
    else if (strcmp(arg, "uefi") == 0)
        *boot = MD_DISTRO_BOOT_UEFI;
    else if (strcmp(arg, "hybrid") == 0)
        *boot = MD_DISTRO_BOOT_HYBRID;
    else
        return mdimg_usage_error("--boot: '%s' is not 'bios', 'uefi' or 'hybrid'", arg);
    return 0;
}

static int parse_root(const char *arg, uint32_t *root)
{
    if (strcmp(arg, "initramfs") == 0 || strcmp(arg, "ram") == 0)
        *root = MD_DISTRO_ROOT_INITRAMFS;
    else if (strcmp(arg, "disk") == 0)
        *root = MD_DISTRO_ROOT_DISK;
    else
        return mdimg_usage_error("--root: '%s' is not 'initramfs' or 'disk'", arg);
    return 0;
}

static int parse_table(const char *arg, uint32_t *table)
{
    if (mdimg_parse_table("--table", arg, table) < 0)
        return EXIT_USAGE;
    if (*table == MD_TABLE_NONE)
        return mdimg_usage_error("--table: a bootable image needs 'mbr' or 'gpt'");
    return 0;
}

static int parse_compress(const char *arg, int32_t *compression)
{
    if (strcmp(arg, "auto") == 0)
        *compression = MD_DISTRO_COMPRESS_AUTO;
    else if (md_compress_from_name(NULL, arg, compression) < 0)
        return mdimg_usage_error("--compress: '%s' is not auto, none, gzip, xz, zstd or lz4", arg);
    return 0;
}

/* Option combinations: usage errors. */
static int check_args(struct build_args *a)
{
    const md_distro_opts *o = &a->o;

    if (!o->output || !*o->output)
        return mdimg_usage_error("no output image: use -o IMAGE");
    if (!o->kernel && !a->want_build_kernel && !o->rootfs)
        return mdimg_usage_error("no kernel: use --kernel PATH (e.g. /boot/vmlinuz-*) or --build-kernel");
    if (o->rootfs && (a->busybox_src || o->busybox || o->root || o->modules_dir || a->n_modules ||
                      o->initramfs_output || o->compression != MD_DISTRO_COMPRESS_AUTO ||
                      o->kernel_config || (o->flags & MD_DISTRO_NO_MODULES)))
        return mdimg_usage_error("--rootfs brings its own system and initrd: --busybox, --busybox-src, "
                                 "--root, --modules-dir, --add-module, --no-modules, --kernel-config, "
                                 "--initramfs and --compress do not apply");
    if (!o->rootfs && (o->initrd || o->root_password || a->free_given))
        return mdimg_usage_error("--initrd, --root-password and --free need --rootfs");
    if (a->free_given && o->size)
        return mdimg_usage_error("--free is for a computed size: it excludes --size");
    if (o->kernel && a->want_build_kernel)
        return mdimg_usage_error("--kernel and --build-kernel exclude each other");
    if (o->busybox && a->busybox_src)
        return mdimg_usage_error("--busybox and --busybox-src exclude each other");
    if (a->busybox_src && !*a->busybox_src)
        return mdimg_usage_error("--busybox-src: empty directory name");
    if (o->boot == MD_DISTRO_BOOT_BIOS && (o->efi_stub || o->esp_size))
        return mdimg_usage_error("--efi-stub and --esp-size are for --boot uefi or hybrid");
    if (o->esp_size % (1024 * 1024))
        return mdimg_usage_error("--esp-size: a multiple of 1 MiB, e.g. 64M");
    /* UEFI machines expect a GPT */
    if (o->boot != MD_DISTRO_BOOT_BIOS && !a->table_given)
        a->o.table = MD_TABLE_GPT;
    return 0;
}

/* Returns 0 to go on, -1 after --help, else the exit status. */
static int parse_args(struct build_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        { "output", required_argument, NULL, 'o' },
        { "kernel", required_argument, NULL, OPT_KERNEL },
        { "build-kernel", no_argument, NULL, OPT_BUILD_KERNEL },
        { "kernel-config", required_argument, NULL, OPT_KERNEL_CONFIG },
        { "busybox", required_argument, NULL, OPT_BUSYBOX },
        { "busybox-src", required_argument, NULL, OPT_BUSYBOX_SRC },
        { "root", required_argument, NULL, OPT_ROOT },
        { "size", required_argument, NULL, 's' },
        { "table", required_argument, NULL, OPT_TABLE },
        { "overlay", required_argument, NULL, OPT_OVERLAY },
        { "modules-dir", required_argument, NULL, OPT_MODULES_DIR },
        { "add-module", required_argument, NULL, OPT_ADD_MODULE },
        { "no-modules", no_argument, NULL, OPT_NO_MODULES },
        { "hostname", required_argument, NULL, OPT_HOSTNAME },
        { "append", required_argument, NULL, OPT_APPEND },
        { "initramfs", required_argument, NULL, OPT_INITRAMFS },
        { "compress", required_argument, NULL, OPT_COMPRESS },
        { "rootfs", required_argument, NULL, OPT_ROOTFS },
        { "initrd", required_argument, NULL, OPT_INITRD },
        { "root-password", required_argument, NULL, OPT_ROOT_PASSWORD },
        { "free", required_argument, NULL, OPT_FREE },
        { "progress", no_argument, NULL, OPT_PROGRESS },
        { "no-sync", no_argument, NULL, OPT_NO_SYNC },
        { "boot", required_argument, NULL, OPT_BOOT },
        { "efi-stub", required_argument, NULL, OPT_EFI_STUB },
        { "esp-size", required_argument, NULL, OPT_ESP_SIZE },
        { "force", no_argument, NULL, 'f' },
        MDIMG_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    md_distro_opts *o = &a->o;
    int c, r = 0;

    while (r == 0 && (c = getopt_long(argc, argv, "o:s:fqvh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o->output = optarg; break;
        case OPT_KERNEL: o->kernel = optarg; break;
        case OPT_BUILD_KERNEL: a->want_build_kernel = 1; break;
        case OPT_KERNEL_CONFIG: o->kernel_config = optarg; break;
        case OPT_BUSYBOX: o->busybox = optarg; break;
        case OPT_BUSYBOX_SRC: a->busybox_src = optarg; break;
        case OPT_ROOT: r = parse_root(optarg, &o->root); break;
        case 's': r = mdimg_parse_size("--size", optarg, &o->size) < 0 ? EXIT_USAGE : 0; break;
        case OPT_TABLE: r = parse_table(optarg, &o->table); a->table_given = 1; break;
        case OPT_BOOT: r = parse_boot(optarg, &o->boot); break;
        case OPT_EFI_STUB: o->efi_stub = optarg; break;
        case OPT_ESP_SIZE: r = mdimg_parse_size("--esp-size", optarg, &o->esp_size) < 0 ? EXIT_USAGE : 0; break;
        case OPT_OVERLAY: a->overlays[a->n_overlays++] = optarg; break;
        case OPT_MODULES_DIR: o->modules_dir = optarg; break;
        case OPT_ADD_MODULE: a->modules[a->n_modules++] = optarg; break;
        case OPT_NO_MODULES: o->flags |= MD_DISTRO_NO_MODULES; break;
        case OPT_HOSTNAME: o->hostname = optarg; break;
        case OPT_APPEND: o->append = optarg; break;
        case OPT_INITRAMFS: o->initramfs_output = optarg; break;
        case OPT_COMPRESS: r = parse_compress(optarg, &o->compression); break;
        case OPT_ROOTFS: o->rootfs = optarg; break;
        case OPT_PROGRESS: a->progress = 1; break;
        case OPT_NO_SYNC: o->flags |= MD_DISTRO_NO_SYNC; break;
        case OPT_INITRD: o->initrd = optarg; break;
        case OPT_ROOT_PASSWORD: o->root_password = optarg; break;
        case OPT_FREE:
            r = mdimg_parse_free(optarg, &o->free_bytes, &o->free_percent) < 0 ? EXIT_USAGE : 0;
            a->free_given = 1;
            break;
        case 'f': o->flags |= MD_DISTRO_FORCE; break;
        case 'h': usage(stdout); return -1;
        default:
            if (!mdimg_common_option(c))
                return mdimg_try_help();
        }
    }
    if (r != 0)
        return r;
    if (optind < argc)
        return mdimg_usage_error("unexpected argument '%s'", argv[optind]);
    o->overlays = a->n_overlays ? a->overlays : NULL;
    o->modules = a->n_modules ? a->modules : NULL;
    return check_args(a);
}

/* --build-kernel and --busybox-src: the helper scripts print the path. */
static int run_helpers(struct build_args *a, char **built_kernel, char **built_busybox)
{
    double t0;

    if (a->want_build_kernel) {
        t0 = now_s();
        *built_kernel = run_script("build-kernel", "MDIMG_BUILD_KERNEL", NULL,
                                   "building the kernel", "use --kernel PATH");
        if (!*built_kernel)
            return 1;
        a->o.kernel = *built_kernel;
        mdimg_info("kernel: %s (%.1f s)\n", *built_kernel, now_s() - t0);
    }
    if (a->busybox_src) {
        const char *args[] = { "--", a->busybox_src, NULL };

        t0 = now_s();
        *built_busybox = run_script("build-busybox", "MDIMG_BUILD_BUSYBOX", args,
                                    "building BusyBox", "use --busybox PATH");
        if (!*built_busybox)
            return 1;
        a->o.busybox = *built_busybox;
        mdimg_info("busybox: %s (%.1f s)\n", *built_busybox, now_s() - t0);
    }
    return 0;
}

static int build(struct build_args *a)
{
    md_distro_opts *o = &a->o;
    struct mdimg_progress pr;
    md_ctx *ctx = NULL;
    double t0;
    int r;

    if (mdimg_ctx_new(&ctx) < 0)
        return 1;
    t0 = now_s();
    mdimg_progress_init(&pr, "build", MDIMG_PROGRESS_STEPS, a->progress);
    o->progress = mdimg_progress_cb;
    o->userdata = &pr;
    r = md_distro_build(ctx, o);
    mdimg_progress_done(&pr);
    if (r < 0) {
        mdimg_fail(ctx, r);
        md_ctx_free(ctx);
        return 1;
    }
    {
        struct stat st;
        uint64_t size = stat(o->output, &st) == 0 ? (uint64_t)st.st_size : o->size;

        mdimg_info("built %s: %s, %s table, %s boot, %llu MiB%s, in %.2f s\n", o->output,
                   o->rootfs ? "root filesystem from the rootfs" :
                   o->root == MD_DISTRO_ROOT_DISK ? "disk root" : "initramfs root",
                   md_table_name(o->table),
                   o->boot == MD_DISTRO_BOOT_UEFI ? "UEFI" : o->boot == MD_DISTRO_BOOT_HYBRID ? "BIOS+UEFI" : "BIOS",
                   (unsigned long long)(size >> 20), o->rootfs && !o->size ? " (computed)" : "",
                   now_s() - t0);
    }
    mdimg_info("boot it with: mdimg boot %s%s\n",
               o->boot == MD_DISTRO_BOOT_BIOS ? "" : "--firmware uefi ", o->output);
    md_ctx_free(ctx);
    return 0;
}

int cmd_build(int argc, char **argv)
{
    static const md_distro_opts def = MD_DISTRO_OPTS_INIT;
    struct build_args a;
    char *built_kernel = NULL, *built_busybox = NULL;
    int ret;

    memset(&a, 0, sizeof(a));
    a.o = def;
    a.overlays = calloc((size_t)argc + 1, sizeof(*a.overlays));
    a.modules = calloc((size_t)argc + 1, sizeof(*a.modules));
    if (!a.overlays || !a.modules) {
        mdimg_err("out of memory");
        ret = 1;
        goto out;
    }
    ret = parse_args(&a, argc, argv);
    if (ret == 0)
        ret = run_helpers(&a, &built_kernel, &built_busybox);
    if (ret == 0)
        ret = build(&a);
out:
    free(built_kernel);
    free(built_busybox);
    free(a.overlays);
    free(a.modules);
    return ret < 0 ? 0 : ret;
}
