/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Boot runner unit tests.  No guest is booted here: a fake "qemu" shell
 * script (written at run time) plays scripted serial output, exits, hangs or
 * panics, so the expect/send/timeout/exit/tail logic is tested quickly and
 * deterministically.  tests/t-cli-boot.sh boots a real kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "md-internal.h"

static char dir[] = "/tmp/md-test-boot.XXXXXX";
static char fake_qemu[256], kernel[256], textfile[256], disk[256], ovmf_code[256],
    ovmf_vars[256], fwtmp[256];

/* Modes chosen with FAKE_MODE in the environment (inherited by the child). */
static const char fake_script[] =
    "#!/bin/sh\n"
    "case \"$FAKE_MODE\" in\n"
    "hello)\n"
    "  printf 'SeaBIOS\\nbooting...\\nMARKER-1\\n'\n"
    "  printf 'MARKER-2\\n# '\n"
    "  read line\n"
    "  printf '%s\\ngot: %s\\n# ' \"$line\" \"$line\"\n"
    "  read line2\n"
    "  printf 'bye %s\\n' \"$line2\"\n"
    "  exit \"${FAKE_EXIT:-0}\" ;;\n"
    "sleep)\n"
    "  printf 'start\\n'\n"
    "  exec sleep 30 ;;\n"
    "panic)\n"
    "  printf 'Run /init\\n[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\\n'\n"
    "  sleep 0.2\n"
    "  printf '[    1.1] ---[ end Kernel panic ]---\\n'\n"
    "  exec sleep 30 ;;\n"
    "exit3)\n"
    "  printf 'partial\\n'\n"
    "  echo 'qemu: boom: could not open disk' >&2\n"
    "  exit 3 ;;\n"
    "args)\n"
    "  for a in \"$@\"; do printf '<%s>\\n' \"$a\"; done\n"
    "  exit 0 ;;\n"
    "uefi)\n"
    "  for a in \"$@\"; do\n"
    "    printf '<%s>\\n' \"$a\"\n"
    "    case \"$a\" in if=pflash,format=raw,file=*)\n"
    "      f=${a#if=pflash,format=raw,file=}\n"
    "      printf 'vars=%s\\n' \"$(cat \"$f\")\"; echo written > \"$f\" ;;\n"
    "    esac\n"
    "  done\n"
    "  exit 0 ;;\n"
    "child)\n"
    "  sleep 30 &\n"
    "  printf 'bgpid=%s\\n' $!\n"
    "  exec sleep 30 ;;\n"
    "lines)\n"
    "  i=1; while [ $i -le 50 ]; do echo \"line $i\"; i=$((i+1)); done\n"
    "  printf 'partial-last'\n"
    "  exit 0 ;;\n"
    "term0)\n"
    "  trap 'echo got-term; exit 0' TERM\n"
    "  printf 'ready\\n'\n"
    "  while :; do sleep 0.1; done ;;\n"
    "endless)\n"
    "  exec yes 'spam spam spam spam spam spam spam spam spam spam spam spam'\n"
    "  ;;\n"
    "fds)\n"
    "  for f in /proc/$$/fd/*; do echo \"fd ${f##*/}\"; done\n"
    "  exit 0 ;;\n"
    "split)\n"
    "  printf 'MAR'; sleep 0.3; printf 'KER\\n'\n"
    "  exit 0 ;;\n"
    "flood)\n"
    "  i=0; while [ $i -lt 3000 ]; do echo \"flood line $i ................................................\"; i=$((i+1)); done\n"
    "  echo END-OF-FLOOD\n"
    "  exit 0 ;;\n"
    "esac\n"
    "exit 99\n";

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(md_write_full(fd, data, n), 0);
    close(fd);
    chmod(path, mode);
}

static int setup(void **state)
{
    char bz[0x400];
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(fake_qemu, sizeof(fake_qemu), "%s/qemu-fake", dir);
    snprintf(kernel, sizeof(kernel), "%s/bzImage", dir);
    snprintf(textfile, sizeof(textfile), "%s/notakernel.txt", dir);
    snprintf(disk, sizeof(disk), "%s/a,b.img", dir);
    snprintf(ovmf_code, sizeof(ovmf_code), "%s/CODE.fd", dir);
    snprintf(ovmf_vars, sizeof(ovmf_vars), "%s/VARS.fd", dir);
    snprintf(fwtmp, sizeof(fwtmp), "%s/tmp", dir);
    write_file(fake_qemu, fake_script, strlen(fake_script), 0755);
    memset(bz, 0, sizeof(bz));
    memcpy(bz + 0x202, "HdrS", 4);
    write_file(kernel, bz, sizeof(bz), 0644);
    write_file(textfile, "hello, I am text\n", 17, 0644);
    write_file(disk, bz, 512, 0644);
    write_file(ovmf_code, "CODE", 4, 0644);
    write_file(ovmf_vars, "VARS-TEMPLATE", 13, 0644);
    if (mkdir(fwtmp, 0700) < 0)
        return -1;
    unsetenv("MD_BOOT_ACCEL");
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Start the fake QEMU in @mode with a direct "kernel" boot. */
static md_boot *start_fake(md_ctx *ctx, const char *mode, md_boot_opts *o_in)
{
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    md_boot *b = NULL;
    int r;

    if (o_in)
        o = *o_in;
    o.qemu = fake_qemu;
    if (!o.kernel && !o.disk)
        o.kernel = kernel;
    o.accel = o.accel ? o.accel : MD_BOOT_ACCEL_TCG;
    setenv("FAKE_MODE", mode, 1);
    r = md_boot_start(ctx, &o, &b);
    if (r < 0)
        fprintf(stderr, "start: %s\n", md_ctx_errmsg(ctx));
    assert_int_equal(r, 0);
    assert_non_null(b);
    assert_true(md_boot_pid(b) > 0);
    return b;
}

static void test_opts(void **state)
{
    md_boot_opts o, d = MD_BOOT_OPTS_INIT;
    md_ctx *ctx;
    md_boot *b = (md_boot *)0x1;
    (void)state;

    memset(&o, 0xff, sizeof(o));
    md_boot_opts_init(&o);
    assert_memory_equal(&o, &d, sizeof(o));
    assert_int_equal(o.version, MD_BOOT_OPTS_VERSION);
    assert_int_equal(o.memory_mib, 256);
    assert_int_equal(o.echo_fd, -1);
    assert_null(o.qemu);
    assert_int_equal(MD_BOOT_OPTS_VERSION, 2);
    assert_int_equal(o.firmware, MD_BOOT_FIRMWARE_BIOS);
    assert_null(o.ovmf_code);
    assert_null(o.ovmf_vars);

    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(md_boot_start(ctx, NULL, NULL), -EINVAL);
    /* NULL opts = defaults = nothing to boot */
    assert_int_equal(md_boot_start(ctx, NULL, &b), -EINVAL);
    assert_null(b);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "nothing to boot"));

    o.version = 0;
    o.kernel = kernel;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "options version"));

    md_boot_opts_init(&o);
    o.disk = disk;
    o.initrd = kernel;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "needs a kernel"));

    md_boot_opts_init(&o);
    o.kernel = kernel;
    o.flags = 0x100;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "flags"));
    o.flags = MD_BOOT_ECHO; /* without echo_fd */
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    o.flags = 0;
    o.disk_if = 7;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    o.disk_if = MD_BOOT_IF_IDE;
    o.accel = 9;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    o.accel = MD_BOOT_ACCEL_TCG;
    o.memory_mib = 1;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "memory"));
    o.memory_mib = 0;
    o.firmware = 3;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "unknown firmware 3"));
    o.firmware = MD_BOOT_FIRMWARE_BIOS;
    o.ovmf_code = ovmf_code;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "the firmware is BIOS"));
    o.version = MD_BOOT_OPTS_VERSION + 1;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "options version"));

    /* a bad accelerator override in the environment is named */
    md_boot_opts_init(&o);
    o.kernel = kernel;
    o.qemu = fake_qemu;
    setenv("MD_BOOT_ACCEL", "warp", 1);
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "MD_BOOT_ACCEL=warp"));
    unsetenv("MD_BOOT_ACCEL");

    /* NULL-safe accessors */
    md_boot_free(NULL);
    assert_int_equal(md_boot_pid(NULL), -1);
    assert_string_equal(md_boot_tail(NULL, 5), "");
    assert_int_equal(md_boot_expect(NULL, "x", 1), -EINVAL);
    md_ctx_free(ctx);
}

static void test_missing_qemu(void **state)
{
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    md_ctx *ctx;
    md_boot *b = NULL;
    char *old_path;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    o.kernel = kernel;
    o.qemu = "/nonexistent/qemu-system-x86_64";
    assert_int_equal(md_boot_start(ctx, &o, &b), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "/nonexistent/qemu-system-x86_64"));
    assert_null(b);

    /* the default name, searched in a PATH without QEMU */
    old_path = md_strdup(getenv("PATH"));
    setenv("PATH", dir, 1);
    o.qemu = NULL;
    assert_int_equal(md_boot_start(ctx, &o, &b), -ENOENT);
    assert_string_equal(md_ctx_errmsg(ctx),
                        "qemu-system-x86_64 not found in PATH (install qemu-system-x86)");
    /* and a named one found through PATH */
    o.qemu = "qemu-fake";
    setenv("FAKE_MODE", "exit3", 1);
    assert_int_equal(md_boot_start(ctx, &o, &b), 0);
    assert_int_equal(md_boot_wait(b, 10000, NULL), 0);
    md_boot_free(b);
    setenv("PATH", old_path, 1);
    free(old_path);
    md_ctx_free(ctx);
}

static void test_bad_kernel(void **state)
{
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    md_ctx *ctx;
    md_boot *b = NULL;
    char missing[300];
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    o.qemu = fake_qemu;
    o.kernel = textfile;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "not an x86 Linux bzImage"));
    assert_non_null(strstr(md_ctx_errmsg(ctx), textfile));

    snprintf(missing, sizeof(missing), "%s/vmlinuz-missing", dir);
    o.kernel = missing;
    assert_int_equal(md_boot_start(ctx, &o, &b), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "vmlinuz-missing"));

    o.kernel = dir; /* a directory */
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "not a regular file"));

    o.kernel = kernel;
    o.initrd = missing;
    assert_int_equal(md_boot_start(ctx, &o, &b), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "initrd"));

    md_boot_opts_init(&o);
    o.qemu = fake_qemu;
    o.disk = missing;
    assert_int_equal(md_boot_start(ctx, &o, &b), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "disk image"));
    assert_null(b);
    md_ctx_free(ctx);
}

static void test_expect_send_wait(void **state)
{
    md_ctx *ctx;
    md_boot *b;
    int status = -1;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    b = start_fake(ctx, "hello", NULL);
    assert_int_equal(md_boot_expect(b, "MARKER-1", 10000), 0);
    /* the next search starts after the previous match */
    assert_int_equal(md_boot_expect(b, "MARKER-2", 10000), 0);
    assert_int_equal(md_boot_expect(b, "# ", 10000), 0);
    assert_int_equal(md_boot_send(b, "echo hi\n"), 0);
    assert_int_equal(md_boot_expect(b, "got: echo hi", 10000), 0);
    assert_int_equal(md_boot_expect(b, "# ", 10000), 0);
    assert_int_equal(md_boot_expect(b, "MARKER-1", 200), -ETIMEDOUT); /* consumed: not again */
    assert_int_equal(md_boot_send(b, "poweroff\n"), 0);
    assert_int_equal(md_boot_wait(b, 10000, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(md_boot_pid(b), -1);
    assert_non_null(strstr(md_boot_tail(b, 2), "bye poweroff"));
    /* after the exit: expect fails with -EPIPE, send too, wait repeats */
    assert_int_equal(md_boot_expect(b, "nothing", 1000), -EPIPE);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "status 0"));
    assert_int_equal(md_boot_send(b, "x\n"), -EPIPE);
    status = -1;
    assert_int_equal(md_boot_wait(b, 1, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(md_boot_kill(b), 0);
    md_boot_free(b);

    /* the exit status is QEMU's */
    setenv("FAKE_EXIT", "1", 1);
    b = start_fake(ctx, "hello", NULL);
    assert_int_equal(md_boot_expect(b, "# ", 10000), 0);
    assert_int_equal(md_boot_send(b, "a\nb\n"), 0);
    assert_int_equal(md_boot_wait(b, 10000, &status), 0);
    assert_int_equal(status, 1);
    unsetenv("FAKE_EXIT");
    md_boot_free(b);
    md_ctx_free(ctx);
}

static void test_expect_timeout(void **state)
{
    md_ctx *ctx;
    md_boot *b;
    int64_t t0;
    int status = -1;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    b = start_fake(ctx, "sleep", NULL);
    t0 = ms_now();
    assert_int_equal(md_boot_expect(b, "NEVER", 300), -ETIMEDOUT);
    assert_true(ms_now() - t0 >= 290);
    assert_true(ms_now() - t0 < 2000);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "\"NEVER\" not seen within 0.300 s"));
    assert_string_equal(md_boot_tail(b, 5), "start\n");
    /* still running; wait with a timeout kills it (SIGTERM first) */
    assert_true(md_boot_pid(b) > 0);
    t0 = ms_now();
    assert_int_equal(md_boot_wait(b, 200, &status), -ETIMEDOUT);
    assert_true(ms_now() - t0 < 3000);
    assert_int_equal(md_boot_pid(b), -1);
    assert_int_equal(md_boot_wait(b, 0, &status), 0);
    assert_int_equal(status, 128 + SIGTERM);
    md_boot_free(b);

    /* a guest that never stops talking does not make us miss the deadline */
    b = start_fake(ctx, "endless", NULL);
    t0 = ms_now();
    assert_int_equal(md_boot_expect(b, "NEVER", 500), -ETIMEDOUT);
    assert_true(ms_now() - t0 < 2000);
    assert_non_null(strstr(md_boot_tail(b, 2), "spam spam\n"));
    md_boot_free(b);

    /* free kills a running QEMU without waiting */
    b = start_fake(ctx, "sleep", NULL);
    t0 = ms_now();
    md_boot_free(b);
    assert_true(ms_now() - t0 < 1000);
    md_ctx_free(ctx);
}

static void test_panic(void **state)
{
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    md_ctx *ctx;
    md_boot *b;
    const char *t;
    int64_t t0;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    b = start_fake(ctx, "panic", NULL);
    t0 = ms_now();
    assert_int_equal(md_boot_expect(b, "login:", 20000), -ECONNABORTED);
    assert_true(ms_now() - t0 < 5000);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "kernel panic before \"login:\""));
    t = md_boot_tail(b, 10);
    assert_non_null(strstr(t, "Kernel panic - not syncing: VFS"));
    /* the rest of the panic message was collected for the report */
    assert_non_null(strstr(t, "end Kernel panic"));
    md_boot_free(b);

    /* panic detection can be switched off: then it is a plain timeout */
    o.flags = MD_BOOT_NO_PANIC_CHECK;
    b = start_fake(ctx, "panic", &o);
    assert_int_equal(md_boot_expect(b, "login:", 500), -ETIMEDOUT);
    md_boot_free(b);
    md_ctx_free(ctx);
}

static void test_early_exit(void **state)
{
    md_ctx *ctx;
    md_boot *b;
    int status = -1;
    const char *t;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    b = start_fake(ctx, "exit3", NULL);
    assert_int_equal(md_boot_expect(b, "login:", 10000), -EPIPE);
    assert_string_equal(md_ctx_errmsg(ctx),
                        "QEMU exited (status 3) before \"login:\" was seen: "
                        "qemu: boom: could not open disk");
    t = md_boot_tail(b, 10);
    assert_string_equal(t, "partial\n--- qemu stderr ---\nqemu: boom: could not open disk\n");
    assert_int_equal(md_boot_wait(b, 1000, &status), 0);
    assert_int_equal(status, 3);
    md_boot_free(b);
    md_ctx_free(ctx);
}

static void test_args(void **state)
{
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    const char *extra[] = { "-smp", "2", NULL };
    md_ctx *ctx;
    md_boot *b;
    const char *t;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    o.disk = disk; /* a comma in the name must be doubled for -drive */
    o.kernel = kernel;
    o.flags = MD_BOOT_SNAPSHOT;
    o.extra_args = extra;
    o.memory_mib = 128;
    b = start_fake(ctx, "args", &o);
    assert_int_equal(md_boot_wait(b, 10000, NULL), 0);
    t = md_boot_tail(b, 100);
    assert_non_null(strstr(t, "<-nodefaults>\n<-display>\n<none>\n<-serial>\n<stdio>\n<-no-reboot>\n"
                              "<-m>\n<128>\n<-accel>\n<tcg>\n"));
    assert_non_null(strstr(t, "<-drive>\n<file="));
    assert_non_null(strstr(t, "/a,,b.img,format=raw,if=virtio>\n<-snapshot>\n"));
    assert_non_null(strstr(t, "<-append>\n<console=ttyS0 panic=-1>\n"));
    assert_non_null(strstr(t, "<-smp>\n<2>\n"));
    assert_null(strstr(t, "-initrd"));
    md_boot_free(b);

    md_boot_opts_init(&o);
    o.disk = disk;
    o.disk_if = MD_BOOT_IF_IDE;
    o.flags = MD_BOOT_READONLY;
    b = start_fake(ctx, "args", &o);
    assert_int_equal(md_boot_wait(b, 10000, NULL), 0);
    t = md_boot_tail(b, 100);
    assert_non_null(strstr(t, ",format=raw,if=ide,readonly=on>\n"));
    assert_null(strstr(t, "-kernel"));
    assert_null(strstr(t, "-snapshot"));
    md_boot_free(b);

    /* MD_BOOT_ACCEL=tcg overrides AUTO */
    setenv("MD_BOOT_ACCEL", "tcg", 1);
    md_boot_opts_init(&o);
    o.kernel = kernel;
    o.accel = MD_BOOT_ACCEL_AUTO;
    o.qemu = fake_qemu;
    setenv("FAKE_MODE", "args", 1);
    assert_int_equal(md_boot_start(ctx, &o, &b), 0);
    assert_int_equal(md_boot_accel(b), MD_BOOT_ACCEL_TCG);
    assert_int_equal(md_boot_wait(b, 10000, NULL), 0);
    assert_non_null(strstr(md_boot_tail(b, 100), "<-accel>\n<tcg>\n"));
    md_boot_free(b);
    unsetenv("MD_BOOT_ACCEL");
    md_ctx_free(ctx);
}

/* Callers built against version 1 pass the shorter struct: accepted, BIOS.
 * The struct is allocated at exactly its version-1 size, so reading a
 * version-2 field would be caught by ASan. */
static void test_opts_v1(void **state)
{
    const size_t v1_size = offsetof(md_boot_opts, firmware);
    md_boot_opts full = MD_BOOT_OPTS_INIT;
    md_boot_opts *v1;
    md_ctx *ctx;
    md_boot *b = NULL;
    const char *t;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    full.version = 1;
    full.qemu = fake_qemu;
    full.kernel = kernel;
    full.accel = MD_BOOT_ACCEL_TCG;
    v1 = malloc(v1_size);
    assert_non_null(v1);
    memcpy(v1, &full, v1_size);
    setenv("FAKE_MODE", "args", 1);
    assert_int_equal(md_boot_start(ctx, v1, &b), 0);
    assert_int_equal(md_boot_firmware(b), MD_BOOT_FIRMWARE_BIOS);
    assert_int_equal(md_boot_wait(b, 10000, NULL), 0);
    t = md_boot_tail(b, 100);
    assert_null(strstr(t, "pflash"));
    assert_null(strstr(t, "q35"));
    md_boot_free(b);
    free(v1);
    md_ctx_free(ctx);
}

static size_t count_entries(const char *d)
{
    char cmd[600], buf[64];
    FILE *f;
    size_t n = 0;

    snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", d);
    f = popen(cmd, "r");
    assert_non_null(f);
    if (fgets(buf, sizeof(buf), f))
        n = (size_t)strtoul(buf, NULL, 10);
    pclose(f);
    return n;
}

/* UEFI: q35, OVMF code read-only, a private copy of VARS that QEMU may
 * write and that is gone after md_boot_free(); the template is untouched. */
static void test_uefi(void **state)
{
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    char copy[512] = "", *p, *nl;
    md_ctx *ctx;
    md_boot *b;
    const char *t;
    struct stat st;
    char buf[32];
    int fd;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    setenv("TMPDIR", fwtmp, 1);
    o.disk = disk;
    o.firmware = MD_BOOT_FIRMWARE_UEFI;
    o.ovmf_code = ovmf_code;
    o.ovmf_vars = ovmf_vars;
    b = start_fake(ctx, "uefi", &o);
    assert_int_equal(md_boot_firmware(b), MD_BOOT_FIRMWARE_UEFI);
    assert_int_equal(md_boot_wait(b, 10000, NULL), 0);
    t = md_boot_tail(b, 100);
    assert_non_null(strstr(t, "<-accel>\n<tcg>\n<-machine>\n<q35>\n<-drive>\n"
                              "<if=pflash,format=raw,readonly=on,file="));
    assert_non_null(strstr(t, "/CODE.fd>\n<-drive>\n<if=pflash,format=raw,file="));
    assert_non_null(strstr(t, "/a,,b.img,format=raw,if=virtio>\n"));
    /* QEMU read the copy of the template */
    assert_non_null(strstr(t, "vars=VARS-TEMPLATE\n"));
    p = strstr(t, "<if=pflash,format=raw,file=");
    assert_non_null(p);
    snprintf(copy, sizeof(copy), "%s", p + strlen("<if=pflash,format=raw,file="));
    nl = strchr(copy, '>');
    assert_non_null(nl);
    *nl = '\0';
    assert_int_equal(strncmp(copy, fwtmp, strlen(fwtmp)), 0);
    assert_int_equal(stat(copy, &st), 0); /* there while the md_boot lives */
    md_boot_free(b);
    assert_int_equal(stat(copy, &st), -1);
    assert_int_equal(count_entries(fwtmp), 0);
    /* the template is never written */
    fd = open(ovmf_vars, O_RDONLY);
    assert_true(fd >= 0);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(read(fd, buf, sizeof(buf)), 13);
    close(fd);
    assert_string_equal(buf, "VARS-TEMPLATE");

    /* missing firmware files: named, before anything runs, nothing left */
    o.ovmf_code = "/nonexistent/CODE.fd";
    assert_int_equal(md_boot_start(ctx, &o, &b), -ENOENT);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "OVMF firmware /nonexistent/CODE.fd"));
    o.ovmf_code = ovmf_code;
    o.ovmf_vars = dir;
    assert_int_equal(md_boot_start(ctx, &o, &b), -EINVAL);
    assert_non_null(strstr(md_ctx_errmsg(ctx), "OVMF variable store"));
    assert_int_equal(count_entries(fwtmp), 0);
    /* the default paths name the package when missing */
    if (access(MD_BOOT_OVMF_CODE, F_OK) != 0) {
        o.ovmf_code = o.ovmf_vars = NULL;
        assert_int_equal(md_boot_start(ctx, &o, &b), -ENOENT);
        assert_non_null(strstr(md_ctx_errmsg(ctx), "(install ovmf)"));
    }

    /* QEMU that cannot start: the copy made for it is removed too */
    {
        char bad[300];
        snprintf(bad, sizeof(bad), "%s/qemu-noexec", dir);
        write_file(bad, "#!/nonexistent/interpreter\n", 27, 0755);
        o.qemu = bad;
        o.ovmf_code = ovmf_code;
        o.ovmf_vars = ovmf_vars;
        o.accel = MD_BOOT_ACCEL_TCG;
        assert_true(md_boot_start(ctx, &o, &b) < 0);
        assert_non_null(strstr(md_ctx_errmsg(ctx), "cannot run"));
        assert_int_equal(count_entries(fwtmp), 0);
    }
    unsetenv("TMPDIR");
    md_ctx_free(ctx);
}

/* AUTO decides from the disk's partition table. */
static uint32_t auto_firmware_of(md_ctx *ctx, uint32_t table, const char *const *parts,
                                 bool with_kernel)
{
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    md_table_opts topts = MD_TABLE_OPTS_INIT;
    char img_path[300];
    md_image *img;
    md_boot *b;
    uint32_t fw;
    size_t i;

    snprintf(img_path, sizeof(img_path), "%s/auto.img", dir);
    unlink(img_path);
    assert_int_equal(md_image_create(ctx, img_path, 64u << 20, NULL, &img), 0);
    if (table != MD_TABLE_NONE) {
        for (i = 0; parts[i]; i++)
            assert_int_equal(md_image_add_partition_spec(img, parts[i]), 0);
        topts.type = table;
        assert_int_equal(md_image_write_table(img, &topts), 0);
    }
    assert_int_equal(md_image_commit(img), 0);
    md_image_free(img);
    o.disk = img_path;
    o.firmware = MD_BOOT_FIRMWARE_AUTO;
    o.ovmf_code = ovmf_code;
    o.ovmf_vars = ovmf_vars;
    if (with_kernel)
        o.kernel = kernel;
    b = start_fake(ctx, "uefi", &o);
    fw = md_boot_firmware(b);
    assert_int_equal(md_boot_wait(b, 10000, NULL), 0);
    assert_int_equal(strstr(md_boot_tail(b, 100), "<q35>") != NULL, fw == MD_BOOT_FIRMWARE_UEFI);
    md_boot_free(b);
    return fw;
}

static void test_firmware_auto(void **state)
{
    static const char *const esp[] = { "32M:efi", NULL };
    static const char *const esp_root[] = { "32M:efi", "rest", NULL };
    static const char *const esp_bootable[] = { "32M:efi", "rest:linux:bootable", NULL };
    static const char *const esp_bios_boot[] = { "1M:bios-boot", "32M:efi", NULL };
    static const char *const root_only[] = { "rest:linux:bootable", NULL };
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    md_ctx *ctx;
    md_boot *b;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    setenv("TMPDIR", fwtmp, 1);
    assert_int_equal(auto_firmware_of(ctx, MD_TABLE_GPT, esp, false), MD_BOOT_FIRMWARE_UEFI);
    assert_int_equal(auto_firmware_of(ctx, MD_TABLE_GPT, esp_root, false), MD_BOOT_FIRMWARE_UEFI);
    assert_int_equal(auto_firmware_of(ctx, MD_TABLE_MBR, esp, false), MD_BOOT_FIRMWARE_UEFI);
    /* something a BIOS boots: BIOS (a hybrid image boots faster that way) */
    assert_int_equal(auto_firmware_of(ctx, MD_TABLE_GPT, esp_bootable, false), MD_BOOT_FIRMWARE_BIOS);
    assert_int_equal(auto_firmware_of(ctx, MD_TABLE_MBR, esp_bootable, false), MD_BOOT_FIRMWARE_BIOS);
    assert_int_equal(auto_firmware_of(ctx, MD_TABLE_GPT, esp_bios_boot, false), MD_BOOT_FIRMWARE_BIOS);
    assert_int_equal(auto_firmware_of(ctx, MD_TABLE_GPT, root_only, false), MD_BOOT_FIRMWARE_BIOS);
    assert_int_equal(auto_firmware_of(ctx, MD_TABLE_NONE, NULL, false), MD_BOOT_FIRMWARE_BIOS);
    /* a direct kernel boot does not use the disk's loader */
    assert_int_equal(auto_firmware_of(ctx, MD_TABLE_GPT, esp, true), MD_BOOT_FIRMWARE_BIOS);
    /* no disk at all; the OVMF paths are then unused */
    o.kernel = kernel;
    o.firmware = MD_BOOT_FIRMWARE_AUTO;
    o.ovmf_code = "/nonexistent";
    b = start_fake(ctx, "args", &o);
    assert_int_equal(md_boot_firmware(b), MD_BOOT_FIRMWARE_BIOS);
    md_boot_free(b);
    assert_int_equal(count_entries(fwtmp), 0);
    unsetenv("TMPDIR");
    md_ctx_free(ctx);
}

static bool proc_gone(long pid)
{
    char path[64], buf[512];
    FILE *f;
    char *p;
    bool gone = true;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return true;
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
        gone = p[2] == 'Z' || p[2] == 'X';
    fclose(f);
    return gone;
}

static void test_kill_group(void **state)
{
    md_ctx *ctx;
    md_boot *b;
    const char *t;
    long bg = 0;
    int status = -1, i;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    b = start_fake(ctx, "child", NULL);
    assert_int_equal(md_boot_expect(b, "\n", 10000), 0);
    t = md_boot_tail(b, 1);
    assert_int_equal(sscanf(t, "bgpid=%ld", &bg), 1);
    assert_false(proc_gone(bg));
    assert_int_equal(md_boot_kill(b), 0);
    assert_int_equal(md_boot_wait(b, 1000, &status), 0);
    assert_int_equal(status, 128 + SIGTERM);
    /* the background child of "QEMU" is gone too (whole process group) */
    for (i = 0; i < 100 && !proc_gone(bg); i++)
        usleep(10000);
    assert_true(proc_gone(bg));
    md_boot_free(b);

    /* QEMU exits 0 on SIGTERM: our kill must not look like a power-off */
    b = start_fake(ctx, "term0", NULL);
    assert_int_equal(md_boot_expect(b, "ready\n", 10000), 0);
    assert_int_equal(md_boot_kill(b), 0);
    assert_int_equal(md_boot_wait(b, 1000, &status), 0);
    assert_int_equal(status, 128 + SIGTERM);
    assert_non_null(strstr(md_boot_tail(b, 1), "got-term"));
    md_boot_free(b);
    md_ctx_free(ctx);
}

static void test_tail_echo_split(void **state)
{
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    md_ctx *ctx;
    md_boot *b;
    char buf[8192];
    int p[2], status;
    ssize_t n;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(pipe(p), 0);
    o.flags = MD_BOOT_ECHO;
    o.echo_fd = p[1];
    b = start_fake(ctx, "lines", &o);
    assert_int_equal(md_boot_wait(b, 10000, &status), 0);
    assert_int_equal(status, 0);
    assert_string_equal(md_boot_tail(b, 3), "line 49\nline 50\npartial-last\n");
    assert_string_equal(md_boot_tail(b, 1), "partial-last\n");
    assert_string_equal(md_boot_tail(b, 0), "");
    assert_non_null(strstr(md_boot_tail(b, 1000), "line 1\nline 2\n"));
    md_boot_free(b);
    close(p[1]);
    n = read(p[0], buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_true(strncmp(buf, "line 1\nline 2\n", 14) == 0);
    assert_non_null(strstr(buf, "line 50\npartial-last"));
    close(p[0]);

    /* an expected string split across two reads is found */
    b = start_fake(ctx, "split", NULL);
    assert_int_equal(md_boot_expect(b, "MARKER", 10000), 0);
    md_boot_free(b);

    /* output larger than the pipe buffer, nobody reading until expect */
    b = start_fake(ctx, "flood", NULL);
    assert_int_equal(md_boot_expect(b, "END-OF-FLOOD", 30000), 0);
    assert_non_null(strstr(md_boot_tail(b, 2), "flood line 2999"));
    md_boot_free(b);
    md_ctx_free(ctx);
}

static void test_fd_leak(void **state)
{
    md_ctx *ctx;
    md_boot *b;
    int p[2];
    char want[32];
    const char *t;
    (void)state;

    /* descriptors the caller forgot to mark close-on-exec do not reach QEMU */
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(pipe(p), 0);
    b = start_fake(ctx, "fds", NULL);
    assert_int_equal(md_boot_wait(b, 10000, NULL), 0);
    t = md_boot_tail(b, 100);
    assert_non_null(strstr(t, "fd 0\n"));
    assert_non_null(strstr(t, "fd 2\n"));
    snprintf(want, sizeof(want), "fd %d\n", p[1]);
    assert_null(strstr(t, want));
    md_boot_free(b);
    close(p[0]);
    close(p[1]);
    md_ctx_free(ctx);
}

static void test_echo_closed_pipe(void **state)
{
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    md_ctx *ctx;
    md_boot *b;
    int p[2], status = -1;
    (void)state;

    /* a closed echo pipe must not kill us with SIGPIPE */
    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    o.flags = MD_BOOT_ECHO;
    o.echo_fd = p[1];
    b = start_fake(ctx, "lines", &o);
    assert_int_equal(md_boot_wait(b, 10000, &status), 0);
    assert_int_equal(status, 0);
    md_boot_free(b);
    close(p[1]);
    md_ctx_free(ctx);
}

static void test_interactive(void **state)
{
    md_ctx *ctx;
    md_boot *b;
    int in[2], out[2], status = -1, devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    char buf[4096];
    ssize_t n;
    int64_t t0;
    (void)state;

    assert_int_equal(md_ctx_new(&ctx), 0);
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    /* Ctrl-A Ctrl-A is a literal Ctrl-A */
    assert_int_equal(md_write_full(in[1], "hi\001\001x\nsecond\n", 14), 0);
    close(in[1]);
    b = start_fake(ctx, "hello", NULL);
    assert_int_equal(md_boot_interactive(b, in[0], out[1], 10000, &status), 0);
    assert_int_equal(status, 0);
    close(out[1]);
    n = 0;
    for (;;) {
        ssize_t got = read(out[0], buf + n, sizeof(buf) - 1 - (size_t)n);
        if (got <= 0)
            break;
        n += got;
    }
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "MARKER-2\n# "));
    assert_non_null(strstr(buf, "got: hi\001x\n"));
    assert_non_null(strstr(buf, "bye second\n"));
    md_boot_free(b);
    close(in[0]);
    close(out[0]);

    /* Ctrl-A x kills QEMU */
    assert_int_equal(pipe(in), 0);
    assert_int_equal(md_write_full(in[1], "\001x", 2), 0);
    b = start_fake(ctx, "sleep", NULL);
    t0 = ms_now();
    assert_int_equal(md_boot_interactive(b, in[0], devnull, 10000, &status), 1);
    assert_true(ms_now() - t0 < 3000);
    assert_int_equal(status, 128 + SIGTERM);
    md_boot_free(b);
    close(in[0]);
    close(in[1]);

    /* timeout */
    b = start_fake(ctx, "sleep", NULL);
    assert_int_equal(md_boot_interactive(b, -1, devnull, 300, &status), -ETIMEDOUT);
    assert_int_equal(md_boot_pid(b), -1);
    md_boot_free(b);
    close(devnull);
    md_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_missing_qemu),
        cmocka_unit_test(test_bad_kernel),
        cmocka_unit_test(test_expect_send_wait),
        cmocka_unit_test(test_expect_timeout),
        cmocka_unit_test(test_panic),
        cmocka_unit_test(test_early_exit),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_opts_v1),
        cmocka_unit_test(test_uefi),
        cmocka_unit_test(test_firmware_auto),
        cmocka_unit_test(test_kill_group),
        cmocka_unit_test(test_tail_echo_split),
        cmocka_unit_test(test_echo_closed_pipe),
        cmocka_unit_test(test_fd_leak),
        cmocka_unit_test(test_interactive),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
