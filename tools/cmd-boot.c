/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mdimg boot: run QEMU on an image or kernel, optionally scripted. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mdimg.h"

#define TAIL_LINES 20
#define DEFAULT_TIMEOUT_S 300

enum { OPT_KERNEL = 0x100, OPT_INITRD, OPT_APPEND, OPT_MEMORY, OPT_TIMEOUT, OPT_EXPECT,
       OPT_SEND, OPT_IF, OPT_ACCEL, OPT_SNAPSHOT, OPT_QUIET_SERIAL, OPT_PROMPT, OPT_WAIT,
       OPT_QEMU, OPT_QEMU_ARG, OPT_BATCH, OPT_NO_PANIC_CHECK, OPT_FIRMWARE, OPT_OVMF_CODE,
       OPT_OVMF_VARS };

struct step {
    int send;            /* 1: --send, 0: --expect */
    const char *str;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mdimg boot [IMG] [options]\n"
            "       mdimg boot --kernel BZIMAGE [--initrd FILE] [--append CMDLINE] [IMG] [options]\n"
            "\n"
            "Boot a raw disk image (and/or a kernel) in QEMU with the guest's serial\n"
            "console on this terminal.\n"
            "\n"
            "What to boot:\n"
            "  IMG                  raw disk image, attached as the first disk\n"
            "      --kernel FILE    boot this bzImage directly (-kernel)\n"
            "      --initrd FILE    initramfs for --kernel\n"
            "      --append STR     kernel command line (default \"console=ttyS0 panic=-1\")\n"
            "\n"
            "Machine:\n"
            "      --firmware bios|uefi|auto  SeaBIOS (default), or OVMF on the q35 machine\n"
            "                       with a private copy of its variable store; auto: UEFI\n"
            "                       if IMG has an EFI System partition and no partition\n"
            "                       a BIOS boots (bootable flag, BIOS boot partition);\n"
            "                       with --kernel: BIOS\n"
            "      --ovmf-code FILE OVMF code (default %s)\n"
            "      --ovmf-vars FILE OVMF variable store template, copied for the run\n"
            "                       (default %s)\n"
            "      --memory MIB     guest RAM in MiB (default 256)\n"
            "      --if virtio|ide  disk interface (default virtio)\n"
            "      --accel auto|tcg|kvm  accelerator (default auto: KVM only if a probe\n"
            "                       guest runs on /dev/kvm; env MD_BOOT_ACCEL overrides auto)\n"
            "      --snapshot       discard the guest's writes to IMG\n"
            "      --qemu PATH      QEMU binary (default qemu-system-x86_64 from PATH)\n"
            "      --qemu-arg ARG   extra QEMU argument (repeatable)\n"
            "\n"
            "Scripting (steps run in command-line order):\n"
            "      --expect STR     wait until STR appears in the serial output\n"
            "      --send STR       type STR plus a newline; waits for the prompt first,\n"
            "                       unless the previous --expect ended with the prompt\n"
            "      --prompt STR     the shell prompt --send waits for (default \"# \";\n"
            "                       \"\" sends at once)\n"
            "      --wait           after the steps, wait for QEMU to exit (power-off) and\n"
            "                       require exit status 0; implied when the last step is\n"
            "                       a --send.  Otherwise QEMU is stopped after the last\n"
            "                       --expect.\n"
            "      --timeout S      give up after S seconds in total (default %d; 0: none)\n"
            "      --no-panic-check do not fail on \"Kernel panic\" in the output\n"
            "      --quiet-serial   do not copy the serial output to stdout\n"
            "      --batch          never interactive, even on a terminal\n"
            "  -q, --quiet          print only errors (and the serial output)\n"
            "  -v, --verbose        print library debug messages and step times\n"
            "  -h, --help           show this help\n"
            "\n"
            "Without --expect/--send the console is relayed: stdin goes to the guest\n"
            "(raw mode on a terminal; Ctrl-A x quits) until QEMU exits, e.g. after\n"
            "'poweroff -f' in the guest.\n"
            "\n"
            "Exit status: 0 all expected strings seen / QEMU exited with 0; 1 timeout,\n"
            "kernel panic, QEMU exiting early or with an error (the last serial lines\n"
            "go to stderr); 2 usage.\n",
            MD_BOOT_OVMF_CODE, MD_BOOT_OVMF_VARS, DEFAULT_TIMEOUT_S);
}

static uint32_t remaining_ms(int64_t deadline_ms, int64_t now)
{
    if (deadline_ms == 0)
        return 0; /* no limit */
    if (deadline_ms - now <= 0)
        return 1;
    return (uint32_t)(deadline_ms - now);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_tail(md_boot *b)
{
    const char *t = md_boot_tail(b, TAIL_LINES);
    if (*t)
        fprintf(stderr, "mdimg: boot: last serial output:\n%s", t);
}

static int fail_with_tail(md_ctx *ctx, md_boot *b, int r)
{
    fflush(stdout);
    mdimg_fail(ctx, r);
    print_tail(b);
    return 1;
}

/* Report a failed step; a timeout is the user's --timeout, not the remaining
 * milliseconds the library was given. */
static int step_fail(md_ctx *ctx, md_boot *b, int r, unsigned long timeout_s, const char *what)
{
    fflush(stdout);
    if (r == -ETIMEDOUT && what)
        mdimg_err("%s not seen within the %lu s timeout", what, timeout_s);
    else if (r == -ETIMEDOUT)
        mdimg_err("QEMU still running after the %lu s timeout: killed", timeout_s);
    else
        mdimg_fail(ctx, r);
    print_tail(b);
    return 1;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* What the options say. */
struct boot_args {
    md_boot_opts bo;
    struct step *steps;
    size_t n_steps;
    const char **qargs;
    size_t n_qargs;
    unsigned long timeout_s;
    const char *prompt;
    bool quiet_serial, wait_exit, batch, timeout_given;
};

/* One run: the handle, the clock, the result. */
struct boot_run {
    const struct boot_args *a;
    md_ctx *ctx;
    md_boot *b;
    int64_t deadline, t_start;
    int status;
};

static int parse_choice(const char *opt, const char *arg, const char *const *names,
                        const uint32_t *values, uint32_t *ret)
{
    char list[128] = "";
    size_t i, len;

    for (i = 0; names[i]; i++) {
        if (!strcmp(arg, names[i])) {
            *ret = values[i];
            return 0;
        }
        len = strlen(list);
        snprintf(list + len, sizeof(list) - len, "%s%s", i == 0 ? "" : names[i + 1] ? ", " : " or ",
                 names[i]);
    }
    mdimg_usage_error("%s: '%s': expected %s", opt, arg, list);
    return -EINVAL;
}

static int parse_step(struct boot_args *a, int c, const char *arg)
{
    if (c == OPT_EXPECT && !*arg) {
        mdimg_usage_error("--expect: empty string");
        return -EINVAL;
    }
    a->steps[a->n_steps].send = c == OPT_SEND;
    a->steps[a->n_steps++].str = arg;
    return 0;
}

/* Returns 0 to go on, -1 after --help, else the exit status. */
static int parse_args(struct boot_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        { "kernel", required_argument, NULL, OPT_KERNEL },
        { "initrd", required_argument, NULL, OPT_INITRD },
        { "append", required_argument, NULL, OPT_APPEND },
        { "memory", required_argument, NULL, OPT_MEMORY },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "expect", required_argument, NULL, OPT_EXPECT },
        { "send", required_argument, NULL, OPT_SEND },
        { "if", required_argument, NULL, OPT_IF },
        { "accel", required_argument, NULL, OPT_ACCEL },
        { "snapshot", no_argument, NULL, OPT_SNAPSHOT },
        { "quiet-serial", no_argument, NULL, OPT_QUIET_SERIAL },
        { "prompt", required_argument, NULL, OPT_PROMPT },
        { "wait", no_argument, NULL, OPT_WAIT },
        { "qemu", required_argument, NULL, OPT_QEMU },
        { "qemu-arg", required_argument, NULL, OPT_QEMU_ARG },
        { "batch", no_argument, NULL, OPT_BATCH },
        { "no-panic-check", no_argument, NULL, OPT_NO_PANIC_CHECK },
        { "firmware", required_argument, NULL, OPT_FIRMWARE },
        { "ovmf-code", required_argument, NULL, OPT_OVMF_CODE },
        { "ovmf-vars", required_argument, NULL, OPT_OVMF_VARS },
        MDIMG_COMMON_LONGOPTS,
        { NULL, 0, NULL, 0 },
    };
    static const char *const if_names[] = { "virtio", "ide", NULL };
    static const uint32_t if_values[] = { MD_BOOT_IF_VIRTIO, MD_BOOT_IF_IDE };
    static const char *const accel_names[] = { "auto", "tcg", "kvm", NULL };
    static const uint32_t accel_values[] = { MD_BOOT_ACCEL_AUTO, MD_BOOT_ACCEL_TCG, MD_BOOT_ACCEL_KVM };
    static const char *const fw_names[] = { "bios", "uefi", "auto", NULL };
    static const uint32_t fw_values[] = { MD_BOOT_FIRMWARE_BIOS, MD_BOOT_FIRMWARE_UEFI,
                                          MD_BOOT_FIRMWARE_AUTO };
    md_boot_opts *bo = &a->bo;
    unsigned long v;
    int c, r = 0;

    while (r == 0 && (c = getopt_long(argc, argv, "qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return -1;
        case OPT_KERNEL: bo->kernel = optarg; break;
        case OPT_INITRD: bo->initrd = optarg; break;
        case OPT_APPEND: bo->append = optarg; break;
        case OPT_MEMORY:
            r = mdimg_parse_uint("--memory", optarg, 1024ul * 1024ul, &v);
            bo->memory_mib = (uint32_t)v;
            break;
        case OPT_TIMEOUT:
            r = mdimg_parse_uint("--timeout", optarg, 30ul * 24 * 3600, &a->timeout_s);
            a->timeout_given = true;
            break;
        case OPT_EXPECT:
        case OPT_SEND: r = parse_step(a, c, optarg); break;
        case OPT_IF: r = parse_choice("--if", optarg, if_names, if_values, &bo->disk_if); break;
        case OPT_ACCEL: r = parse_choice("--accel", optarg, accel_names, accel_values, &bo->accel); break;
        case OPT_SNAPSHOT: bo->flags |= MD_BOOT_SNAPSHOT; break;
        case OPT_QUIET_SERIAL: a->quiet_serial = true; break;
        case OPT_PROMPT: a->prompt = optarg; break;
        case OPT_WAIT: a->wait_exit = true; break;
        case OPT_QEMU: bo->qemu = optarg; break;
        case OPT_QEMU_ARG: a->qargs[a->n_qargs++] = optarg; break;
        case OPT_BATCH: a->batch = true; break;
        case OPT_NO_PANIC_CHECK: bo->flags |= MD_BOOT_NO_PANIC_CHECK; break;
        case OPT_FIRMWARE:
            r = parse_choice("--firmware", optarg, fw_names, fw_values, &bo->firmware);
            break;
        case OPT_OVMF_CODE: bo->ovmf_code = optarg; break;
        case OPT_OVMF_VARS: bo->ovmf_vars = optarg; break;
        default:
            if (!mdimg_common_option(c))
                return mdimg_try_help();
        }
    }
    if (r < 0)
        return EXIT_USAGE;
    if (optind < argc)
        bo->disk = argv[optind++];
    if (optind < argc)
        return mdimg_usage_error("unexpected argument '%s'", argv[optind]);
    if (!bo->disk && !bo->kernel)
        return mdimg_usage_error("nothing to boot: give an image or --kernel");
    if ((bo->initrd || bo->append) && !bo->kernel)
        return mdimg_usage_error("--initrd and --append need --kernel");
    if ((bo->ovmf_code || bo->ovmf_vars) && bo->firmware == MD_BOOT_FIRMWARE_BIOS)
        return mdimg_usage_error("--ovmf-code and --ovmf-vars need --firmware uefi or auto");
    if (a->n_qargs)
        bo->extra_args = a->qargs;
    if (!a->quiet_serial) {
        bo->flags |= MD_BOOT_ECHO;
        bo->echo_fd = STDOUT_FILENO;
    }
    return 0;
}

static int exit_status_fail(struct boot_run *run)
{
    fflush(stdout);
    mdimg_err("QEMU exited with status %d", run->status);
    print_tail(run->b);
    return 1;
}

/* No steps: stdin (a terminal or a pipe) goes to the guest. */
static int run_relay(struct boot_run *run, bool tty)
{
    int out_fd = STDOUT_FILENO, devnull = -1, r, ret;

    if (run->a->quiet_serial) {
        out_fd = devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull < 0) {
            mdimg_err("--quiet-serial: /dev/null: %s", strerror(errno));
            return 1;
        }
    }
    if (tty)
        fprintf(stderr, "mdimg: boot: console attached; Ctrl-A x quits\n");
    r = md_boot_interactive(run->b, STDIN_FILENO, out_fd, remaining_ms(run->deadline, mono_ms()),
                            &run->status);
    if (devnull >= 0)
        close(devnull);
    if (r < 0)
        return step_fail(run->ctx, run->b, r, run->a->timeout_s, NULL);
    ret = (r == 1 || run->status == 0) ? 0 : 1; /* r == 1: the user quit */
    return ret ? exit_status_fail(run) : 0;
}

static int run_expect(struct boot_run *run, const char *str, const char *what)
{
    int r = md_boot_expect(run->b, str, remaining_ms(run->deadline, mono_ms()));

    if (r < 0)
        return step_fail(run->ctx, run->b, r, run->a->timeout_s, what);
    if (mdimg_verbose > 0)
        fprintf(stderr, "mdimg: boot: \"%s\" seen after %.2f s\n", str,
                (double)(mono_ms() - run->t_start) / 1000.0);
    return 0;
}

/* --send: wait for the prompt unless the last --expect ended with it. */
static int run_send(struct boot_run *run, const char *str, bool at_prompt)
{
    const char *prompt = run->a->prompt;
    char what[512];
    int r;

    if (*prompt && !at_prompt) {
        snprintf(what, sizeof(what), "the prompt \"%s\" (to send \"%s\")", prompt, str);
        if (run_expect(run, prompt, what))
            return 1;
    }
    r = md_boot_send(run->b, str);
    if (r >= 0)
        r = md_boot_send(run->b, "\n");
    return r < 0 ? fail_with_tail(run->ctx, run->b, r) : 0;
}

static int run_steps(struct boot_run *run)
{
    const struct boot_args *a = run->a;
    bool at_prompt = false;
    char what[512];
    size_t i;
    int r;

    for (i = 0; i < a->n_steps; i++) {
        if (a->steps[i].send) {
            if (run_send(run, a->steps[i].str, at_prompt))
                return 1;
            at_prompt = false;
            continue;
        }
        snprintf(what, sizeof(what), "\"%s\"", a->steps[i].str);
        if (run_expect(run, a->steps[i].str, what))
            return 1;
        at_prompt = *a->prompt && ends_with(a->steps[i].str, a->prompt);
    }
    if (a->n_steps == 0 || a->wait_exit || a->steps[a->n_steps - 1].send) {
        r = md_boot_wait(run->b, remaining_ms(run->deadline, mono_ms()), &run->status);
        if (r < 0)
            return step_fail(run->ctx, run->b, r, a->timeout_s, NULL);
        if (run->status != 0)
            return exit_status_fail(run);
    } else {
        md_boot_kill(run->b);
    }
    if (mdimg_verbose > 0)
        fprintf(stderr, "mdimg: boot: done after %.2f s\n", (double)(mono_ms() - run->t_start) / 1000.0);
    return 0;
}

static int boot(const struct boot_args *a)
{
    struct boot_run run;
    bool tty;
    int r, ret;

    memset(&run, 0, sizeof(run));
    run.a = a;
    run.status = -1;
    if (mdimg_ctx_new(&run.ctx) < 0)
        return 1;
    fflush(stdout);
    run.t_start = mono_ms();
    r = md_boot_start(run.ctx, &a->bo, &run.b);
    if (r < 0) {
        ret = mdimg_fail(run.ctx, r);
        goto out;
    }
    if (mdimg_verbose > 0)
        fprintf(stderr, "mdimg: boot: firmware %s, %s\n",
                md_boot_firmware(run.b) == MD_BOOT_FIRMWARE_UEFI ? "UEFI (OVMF)" : "BIOS (SeaBIOS)",
                md_boot_accel(run.b) == MD_BOOT_ACCEL_KVM ? "KVM" : "TCG");
    tty = isatty(STDIN_FILENO);
    /* an interactive session has no time limit unless asked for */
    if (a->timeout_s > 0 && (a->timeout_given || a->n_steps > 0 || a->batch || !tty))
        run.deadline = mono_ms() + (int64_t)a->timeout_s * 1000;
    ret = a->n_steps == 0 && !a->batch ? run_relay(&run, tty) : run_steps(&run);
out:
    if (!a->quiet_serial)
        fflush(stdout);
    md_boot_free(run.b);
    md_ctx_free(run.ctx);
    return ret;
}

int cmd_boot(int argc, char **argv)
{
    static const md_boot_opts def = MD_BOOT_OPTS_INIT;
    struct boot_args a;
    int ret;

    memset(&a, 0, sizeof(a));
    a.bo = def;
    a.timeout_s = DEFAULT_TIMEOUT_S;
    a.prompt = "# ";
    a.steps = calloc((size_t)argc, sizeof(*a.steps));
    a.qargs = calloc((size_t)argc + 1, sizeof(*a.qargs));
    if (!a.steps || !a.qargs) {
        mdimg_err("out of memory");
        ret = 1;
    } else {
        ret = parse_args(&a, argc, argv);
        if (ret == 0)
            ret = boot(&a);
    }
    free(a.steps);
    free(a.qargs);
    return ret < 0 ? 0 : ret;
}
