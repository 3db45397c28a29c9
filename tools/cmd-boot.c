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
       OPT_QEMU, OPT_QEMU_ARG, OPT_BATCH, OPT_NO_PANIC_CHECK };

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
            "\n"
            "Without --expect/--send the console is relayed: stdin goes to the guest\n"
            "(raw mode on a terminal; Ctrl-A x quits) until QEMU exits, e.g. after\n"
            "'poweroff -f' in the guest.\n"
            "\n"
            "Exit status: 0 all expected strings seen / QEMU exited with 0; 1 timeout,\n"
            "kernel panic, QEMU exiting early or with an error (the last serial lines\n"
            "go to stderr); 2 usage.\n",
            DEFAULT_TIMEOUT_S);
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

int cmd_boot(int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
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
        { NULL, 0, NULL, 0 },
    };
    md_boot_opts bo = MD_BOOT_OPTS_INIT;
    struct step *steps = NULL;
    const char **qargs = NULL;
    size_t n_steps = 0, n_qargs = 0;
    unsigned long timeout_s = DEFAULT_TIMEOUT_S, v;
    const char *prompt = "# ";
    bool quiet_serial = false, wait_exit = false, batch = false, timeout_given = false;
    md_ctx *ctx = NULL;
    md_boot *b = NULL;
    int64_t deadline = 0, t_start = 0;
    int c, r, ret = 1, status = -1, devnull = -1;
    bool tty;

    steps = calloc((size_t)argc, sizeof(*steps));
    qargs = calloc((size_t)argc + 1, sizeof(*qargs));
    if (!steps || !qargs) {
        mdimg_err("out of memory");
        goto out;
    }
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            ret = 0;
            goto out;
        case OPT_KERNEL: bo.kernel = optarg; break;
        case OPT_INITRD: bo.initrd = optarg; break;
        case OPT_APPEND: bo.append = optarg; break;
        case OPT_MEMORY:
            if (mdimg_parse_uint("--memory", optarg, 1024ul * 1024ul, &v) < 0)
                goto usage;
            bo.memory_mib = (uint32_t)v;
            break;
        case OPT_TIMEOUT:
            if (mdimg_parse_uint("--timeout", optarg, 30ul * 24 * 3600, &timeout_s) < 0)
                goto usage;
            timeout_given = true;
            break;
        case OPT_EXPECT:
        case OPT_SEND:
            if (c == OPT_EXPECT && !*optarg) {
                mdimg_usage_error("--expect: empty string");
                goto usage;
            }
            steps[n_steps].send = c == OPT_SEND;
            steps[n_steps++].str = optarg;
            break;
        case OPT_IF:
            if (!strcmp(optarg, "virtio"))
                bo.disk_if = MD_BOOT_IF_VIRTIO;
            else if (!strcmp(optarg, "ide"))
                bo.disk_if = MD_BOOT_IF_IDE;
            else {
                mdimg_usage_error("--if: '%s': expected virtio or ide", optarg);
                goto usage;
            }
            break;
        case OPT_ACCEL:
            if (!strcmp(optarg, "auto"))
                bo.accel = MD_BOOT_ACCEL_AUTO;
            else if (!strcmp(optarg, "tcg"))
                bo.accel = MD_BOOT_ACCEL_TCG;
            else if (!strcmp(optarg, "kvm"))
                bo.accel = MD_BOOT_ACCEL_KVM;
            else {
                mdimg_usage_error("--accel: '%s': expected auto, tcg or kvm", optarg);
                goto usage;
            }
            break;
        case OPT_SNAPSHOT: bo.flags |= MD_BOOT_SNAPSHOT; break;
        case OPT_QUIET_SERIAL: quiet_serial = true; break;
        case OPT_PROMPT: prompt = optarg; break;
        case OPT_WAIT: wait_exit = true; break;
        case OPT_QEMU: bo.qemu = optarg; break;
        case OPT_QEMU_ARG: qargs[n_qargs++] = optarg; break;
        case OPT_BATCH: batch = true; break;
        case OPT_NO_PANIC_CHECK: bo.flags |= MD_BOOT_NO_PANIC_CHECK; break;
        default:
            goto usage;
        }
    }
    if (optind < argc)
        bo.disk = argv[optind++];
    if (optind < argc) {
        mdimg_usage_error("unexpected argument '%s'", argv[optind]);
        goto usage;
    }
    if (!bo.disk && !bo.kernel) {
        mdimg_usage_error("nothing to boot: give an image or --kernel");
        goto usage;
    }
    if ((bo.initrd || bo.append) && !bo.kernel) {
        mdimg_usage_error("--initrd and --append need --kernel");
        goto usage;
    }
    if (n_qargs)
        bo.extra_args = qargs;
    if (!quiet_serial) {
        bo.flags |= MD_BOOT_ECHO;
        bo.echo_fd = STDOUT_FILENO;
    }

    if (mdimg_ctx_new(&ctx) < 0)
        goto out;
    fflush(stdout);
    t_start = mono_ms();
    r = md_boot_start(ctx, &bo, &b);
    if (r < 0) {
        ret = mdimg_fail(ctx, r);
        goto out;
    }

    tty = isatty(STDIN_FILENO);
    /* an interactive session has no time limit unless asked for */
    if (timeout_s > 0 && (timeout_given || n_steps > 0 || batch || !tty))
        deadline = mono_ms() + (int64_t)timeout_s * 1000;

    if (n_steps == 0 && !batch) {
        /* relay mode: stdin (a terminal or a pipe) goes to the guest */
        int out_fd = STDOUT_FILENO;
        if (quiet_serial) {
            out_fd = devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
            if (devnull < 0) {
                mdimg_err("--quiet-serial: /dev/null: %s", strerror(errno));
                goto out;
            }
        }
        if (tty)
            fprintf(stderr, "mdimg: boot: console attached; Ctrl-A x quits\n");
        r = md_boot_interactive(b, STDIN_FILENO, out_fd, remaining_ms(deadline, mono_ms()),
                                &status);
        if (r < 0) {
            ret = step_fail(ctx, b, r, timeout_s, NULL);
            goto out;
        }
        ret = (r == 1 || status == 0) ? 0 : 1; /* r == 1: the user quit */
        if (ret) {
            fflush(stdout);
            mdimg_err("QEMU exited with status %d", status);
            print_tail(b);
        }
        goto out;
    }

    {
        bool at_prompt = false;
        char what[512];
        size_t i;

        for (i = 0; i < n_steps; i++) {
            if (!steps[i].send) {
                r = md_boot_expect(b, steps[i].str, remaining_ms(deadline, mono_ms()));
                if (r < 0) {
                    snprintf(what, sizeof(what), "\"%s\"", steps[i].str);
                    ret = step_fail(ctx, b, r, timeout_s, what);
                    goto out;
                }
                at_prompt = *prompt && ends_with(steps[i].str, prompt);
                if (mdimg_verbose > 0)
                    fprintf(stderr, "mdimg: boot: \"%s\" seen after %.2f s\n", steps[i].str,
                            (double)(mono_ms() - t_start) / 1000.0);
                continue;
            }
            if (*prompt && !at_prompt) {
                r = md_boot_expect(b, prompt, remaining_ms(deadline, mono_ms()));
                if (r < 0) {
                    snprintf(what, sizeof(what), "the prompt \"%s\" (to send \"%s\")", prompt,
                             steps[i].str);
                    ret = step_fail(ctx, b, r, timeout_s, what);
                    goto out;
                }
            }
            r = md_boot_send(b, steps[i].str);
            if (r >= 0)
                r = md_boot_send(b, "\n");
            if (r < 0) {
                ret = fail_with_tail(ctx, b, r);
                goto out;
            }
            at_prompt = false;
        }
    }
    if (n_steps == 0 || wait_exit || steps[n_steps - 1].send) {
        r = md_boot_wait(b, remaining_ms(deadline, mono_ms()), &status);
        if (r < 0) {
            ret = step_fail(ctx, b, r, timeout_s, NULL);
            goto out;
        }
        if (status != 0) {
            fflush(stdout);
            mdimg_err("QEMU exited with status %d", status);
            print_tail(b);
            goto out;
        }
    } else {
        md_boot_kill(b);
    }
    if (mdimg_verbose > 0)
        fprintf(stderr, "mdimg: boot: done after %.2f s\n", (double)(mono_ms() - t_start) / 1000.0);
    ret = 0;
    goto out;
usage:
    ret = EXIT_USAGE;
out:
    if (!quiet_serial)
        fflush(stdout);
    md_boot_free(b);
    md_ctx_free(ctx);
    if (devnull >= 0)
        close(devnull);
    free(steps);
    free(qargs);
    return ret;
}
