/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The boot runner: QEMU as a child process whose stdin/stdout is the guest's
 * serial console.
 *
 * All waiting is one poll() loop (io_step) over QEMU's stdout and stderr, a
 * pidfd for its exit (ticks of 100 ms where pidfds are missing) and, while
 * sending, its stdin.  Deadlines use CLOCK_MONOTONIC.  Output is kept twice:
 * `pend`, everything after the last md_boot_expect() match (what the next
 * expect searches), and `hist`, a bounded history for md_boot_tail().
 *
 * UEFI boots get a private copy of OVMF's variable store in a directory of
 * their own under $TMPDIR, made before QEMU starts and removed by
 * md_boot_free() (also when md_boot_start() fails after making it).
 */
#include <fcntl.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "md-image-internal.h"

#define DEFAULT_QEMU "qemu-system-x86_64"
#define DEFAULT_APPEND "console=ttyS0 panic=-1"
#define PANIC_STR "Kernel panic"
#define HIST_MAX (64u * 1024u)      /* serial history kept for md_boot_tail() */
#define PEND_MAX (1024u * 1024u)    /* unmatched output kept for md_boot_expect() */
#define PEND_KEEP (64u * 1024u)     /* ... trimmed to this when PEND_MAX is hit */
#define ERR_MAX (8u * 1024u)        /* QEMU stderr kept */
#define KILL_GRACE_MS 2000
#define KVM_PROBE_MS 2000
#define SEND_TIMEOUT_MS 60000       /* QEMU not reading its stdin for this long: give up */

struct md_boot {
    md_ctx *ctx;
    pid_t pid;           /* > 0 while not reaped */
    int pidfd;           /* -1 if unsupported */
    int in_fd;           /* QEMU's stdin (guest serial input) */
    int out_fd;          /* QEMU's stdout (guest serial output), -1 at EOF */
    int err_fd;          /* QEMU's stderr, -1 at EOF */
    bool exited;         /* reaped; status is valid */
    int status;          /* exit code or 128 + signal */
    bool panic_seen;
    int killed_by;       /* signal we sent, 0 if none */
    uint32_t flags;
    uint32_t accel;
    uint32_t firmware;   /* MD_BOOT_FIRMWARE_BIOS or _UEFI */
    char *fw_dir;        /* private directory of the VARS copy, or NULL */
    char *vars_copy;     /* the copy QEMU writes to, or NULL */
    int echo_fd;
    char *pend;
    size_t pend_len, pend_cap;
    char *hist;
    size_t hist_len;
    char *err;
    size_t err_len;
    char *tail;
};

MD_API void md_boot_opts_init(md_boot_opts *opts)
{
    static const md_boot_opts def = MD_BOOT_OPTS_INIT;
    if (opts)
        *opts = def;
}

/* ---- time ---------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadline for a relative timeout; 0 = none (INT64_MAX). */
static int64_t deadline_after(uint32_t timeout_ms)
{
    return timeout_ms ? now_ms() + timeout_ms : INT64_MAX;
}

/* poll() timeout until @deadline, capped at @cap ms (-1: no cap). */
static int poll_timeout(int64_t deadline, int cap)
{
    int64_t left;
    if (deadline == INT64_MAX)
        return cap;
    left = deadline - now_ms();
    if (left < 0)
        left = 0;
    if (cap >= 0 && left > cap)
        left = cap;
    return (int)left;
}

/* ---- writes that never raise SIGPIPE -------------------------------------- */

/* Block SIGPIPE in this thread around the write and swallow the one it may
 * have raised, so a dead QEMU or a closed echo pipe gives -EPIPE instead of
 * killing the caller's process. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t n)
{
    sigset_t pipe_set, old, pending;
    bool was_pending;
    ssize_t r;
    int e;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    r = write(fd, buf, n);
    e = errno;
    if (r < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = { 0, 0 };
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return r;
}

static int write_all_nosigpipe(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write_nosigpipe(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                poll(&pfd, 1, 1000);
                continue;
            }
            return -errno;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---- output bookkeeping --------------------------------------------------- */

static void append_bounded(char *buf, size_t *len, size_t max, const char *data, size_t n)
{
    if (n >= max) {
        memcpy(buf, data + n - max, max);
        *len = max;
        return;
    }
    if (*len + n > max) {
        size_t drop = *len + n - max;
        memmove(buf, buf + drop, *len - drop);
        *len -= drop;
    }
    memcpy(buf + *len, data, n);
    *len += n;
}

static void got_serial(md_boot *b, const char *data, size_t n)
{
    size_t scan_from;

    if (b->echo_fd >= 0 && write_all_nosigpipe(b->echo_fd, data, n) < 0) {
        md_dbg(b->ctx, "boot: echo fd failed, no longer echoing");
        b->echo_fd = -1;
    }
    append_bounded(b->hist, &b->hist_len, HIST_MAX, data, n);

    if (b->pend_len + n > PEND_MAX) {
        size_t keep = b->pend_len < PEND_KEEP ? b->pend_len : PEND_KEEP;
        memmove(b->pend, b->pend + b->pend_len - keep, keep);
        b->pend_len = keep;
    }
    if (b->pend_len + n + 1 > b->pend_cap) {
        size_t cap = b->pend_cap ? b->pend_cap : 4096;
        char *p;
        while (cap < b->pend_len + n + 1)
            cap *= 2;
        p = realloc(b->pend, cap);
        if (!p) {
            /* keep going with what fits: losing output beats failing a boot */
            if (b->pend_cap == 0)
                return;
            n = b->pend_cap - b->pend_len - 1;
        } else {
            b->pend = p;
            b->pend_cap = cap;
        }
    }
    scan_from = b->pend_len > strlen(PANIC_STR) ? b->pend_len - strlen(PANIC_STR) : 0;
    memcpy(b->pend + b->pend_len, data, n);
    b->pend_len += n;
    b->pend[b->pend_len] = '\0';
    if (!b->panic_seen && memmem(b->pend + scan_from, b->pend_len - scan_from, PANIC_STR,
                                 strlen(PANIC_STR)))
        b->panic_seen = true;
}

/* ---- process handling ----------------------------------------------------- */

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

/* If QEMU has exited, kill what it left in its process group and reap it.
 * Returns true once reaped. */
static bool try_reap(md_boot *b)
{
    siginfo_t si;
    int st;

    if (b->exited)
        return true;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)b->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
        return false;
    /* the leader is a zombie, so its group id cannot have been reused */
    kill(-b->pid, SIGKILL);
    while (waitpid(b->pid, &st, 0) < 0 && errno == EINTR)
        ;
    b->status = decode_status(st);
    /* QEMU exits 0 on SIGTERM: do not let a kill pass for a clean power-off */
    if (b->killed_by && b->status == 0)
        b->status = 128 + b->killed_by;
    b->exited = true;
    b->pid = -1;
    if (b->pidfd >= 0) {
        close(b->pidfd);
        b->pidfd = -1;
    }
    md_dbg(b->ctx, "boot: QEMU exited with status %d", b->status);
    return true;
}

static void drain_fd(md_boot *b, int *fd, bool serial)
{
    char buf[4096];
    int rounds = 16; /* a flooding guest must not keep callers from their deadlines */

    while (*fd >= 0 && rounds-- > 0) {
        ssize_t r = read(*fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            close(*fd);
            *fd = -1;
            return;
        }
        if (serial)
            got_serial(b, buf, (size_t)r);
        else
            append_bounded(b->err, &b->err_len, ERR_MAX, buf, (size_t)r);
    }
}

/*
 * One round of waiting, at most until @deadline: read output, write from
 * *@wbuf (advancing it), notice QEMU's exit.  With @in_fd >= 0 input read
 * from it is handed to @on_input (interactive mode).  Returns 0, or -errno
 * for a poll failure.
 */
static int io_step(md_boot *b, int64_t deadline, const char **wbuf, size_t *wlen, int in_fd,
                   int (*on_input)(md_boot *b, const char *data, size_t n, void *ud), void *ud)
{
    struct pollfd p[5];
    int idx_out = -1, idx_err = -1, idx_in = -1, idx_w = -1;
    int n = 0, r, cap;

    if (b->out_fd >= 0) {
        p[n] = (struct pollfd){ .fd = b->out_fd, .events = POLLIN };
        idx_out = n++;
    }
    if (b->err_fd >= 0) {
        p[n] = (struct pollfd){ .fd = b->err_fd, .events = POLLIN };
        idx_err = n++;
    }
    if (b->exited) {
        /* only the last output is left to collect */
        r = poll(p, (nfds_t)n, poll_timeout(deadline, -1));
        if (idx_out >= 0 && r > 0 && p[idx_out].revents)
            drain_fd(b, &b->out_fd, true);
        if (idx_err >= 0 && r > 0 && p[idx_err].revents)
            drain_fd(b, &b->err_fd, false);
        return 0;
    }
    if (b->pidfd >= 0) {
        /* readable once QEMU exited: try_reap() below then notices */
        p[n++] = (struct pollfd){ .fd = b->pidfd, .events = POLLIN };
    }
    if (wbuf && *wlen > 0 && b->in_fd >= 0) {
        p[n] = (struct pollfd){ .fd = b->in_fd, .events = POLLOUT };
        idx_w = n++;
    }
    if (in_fd >= 0) {
        p[n] = (struct pollfd){ .fd = in_fd, .events = POLLIN };
        idx_in = n++;
    }
    /* without a pidfd, or once both pipes are closed, look at the child regularly */
    cap = (b->pidfd < 0 || (b->out_fd < 0 && b->err_fd < 0)) ? 100 : -1;
    r = poll(p, (nfds_t)n, poll_timeout(deadline, cap));
    if (r < 0) {
        if (errno == EINTR)
            return 0;
        return md_error_errno(b->ctx, -errno, "boot: poll");
    }
    if (idx_out >= 0 && p[idx_out].revents)
        drain_fd(b, &b->out_fd, true);
    if (idx_err >= 0 && p[idx_err].revents)
        drain_fd(b, &b->err_fd, false);
    if (idx_w >= 0 && p[idx_w].revents) {
        ssize_t w = write_nosigpipe(b->in_fd, *wbuf, *wlen);
        if (w > 0) {
            *wbuf += w;
            *wlen -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            close(b->in_fd);
            b->in_fd = -1;
        }
    }
    if (idx_in >= 0 && p[idx_in].revents) {
        char buf[1024];
        ssize_t got = read(in_fd, buf, sizeof(buf));
        if (got >= 0 || (errno != EINTR && errno != EAGAIN)) {
            r = on_input(b, buf, got > 0 ? (size_t)got : 0, ud); /* 0: EOF or error */
            if (r < 0)
                return r;
        }
    }
    if (try_reap(b)) {
        /* whatever QEMU wrote last is in the pipes now */
        drain_fd(b, &b->out_fd, true);
        drain_fd(b, &b->err_fd, false);
    }
    return 0;
}

static void kill_group(md_boot *b)
{
    int64_t deadline;

    if (b->exited || b->pid <= 0)
        return;
    b->killed_by = SIGTERM;
    kill(-b->pid, SIGTERM);
    deadline = now_ms() + KILL_GRACE_MS;
    while (!try_reap(b) && now_ms() < deadline) {
        /* keep the pipes flowing so that QEMU never blocks on a full one */
        if (io_step(b, deadline, NULL, NULL, -1, NULL, NULL) < 0)
            break;
    }
    if (!b->exited) {
        int st;
        b->killed_by = SIGKILL;
        kill(-b->pid, SIGKILL);
        while (waitpid(b->pid, &st, 0) < 0 && errno == EINTR)
            ;
        b->status = decode_status(st);
        b->exited = true;
        b->pid = -1;
    }
}

/* First line of QEMU's stderr, for messages ("" if none). */
static const char *err_first_line(md_boot *b, char *buf, size_t size)
{
    size_t n = b->err_len < size - 1 ? b->err_len : size - 1;
    char *nl;

    memcpy(buf, b->err, n);
    buf[n] = '\0';
    nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    return buf;
}

/* ---- option checks -------------------------------------------------------- */

/* Resolve @name like execvp() would; *ret is allocated. */
static int find_qemu(md_ctx *ctx, const char *name, char **ret)
{
    const char *path, *p;

    if (strchr(name, '/')) {
        if (access(name, X_OK) < 0)
            return md_error_errno(ctx, -errno, "QEMU binary %s", name);
        *ret = md_strdup(name);
        return *ret ? 0 : -ENOMEM;
    }
    path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (p = path;; p = strchr(p, ':') + 1) {
        const char *end = strchrnul(p, ':');
        char *cand = md_asprintf("%.*s/%s", (int)(end - p), end == p ? "." : p, name);
        struct stat st;
        if (!cand)
            return -ENOMEM;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
            *ret = cand;
            return 0;
        }
        free(cand);
        if (!*end)
            break;
    }
    if (!strcmp(name, DEFAULT_QEMU))
        return md_error(ctx, -ENOENT, "%s not found in PATH (install qemu-system-x86)", name);
    return md_error(ctx, -ENOENT, "%s not found in PATH", name);
}

static int check_file(md_ctx *ctx, const char *what, const char *path, int amode)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return md_error_errno(ctx, -errno, "%s %s", what, path);
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return md_error(ctx, -EINVAL, "%s %s: not a regular file", what, path);
    if (access(path, amode) < 0)
        return md_error_errno(ctx, -errno, "%s %s", what, path);
    return 0;
}

static int check_bzimage(md_ctx *ctx, const char *path)
{
    char magic[4];
    int fd, r;

    r = check_file(ctx, "kernel", path, R_OK);
    if (r < 0)
        return r;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return md_error_errno(ctx, -errno, "kernel %s", path);
    r = md_pread_full(fd, magic, sizeof(magic), 0x202);
    close(fd);
    if (r == -EIO || (r == 0 && memcmp(magic, "HdrS", 4) != 0))
        return md_error(ctx, -EINVAL,
                        "kernel %s: not an x86 Linux bzImage (no \"HdrS\" magic at offset 0x202)",
                        path);
    if (r < 0)
        return md_error_errno(ctx, r, "kernel %s", path);
    return 0;
}

/* QEMU's option parser splits on ',' and reads ",," as a comma. */
static char *qemu_escape(const char *s)
{
    size_t n = strlen(s), commas = 0, i, j;
    char *out;

    for (i = 0; i < n; i++)
        commas += s[i] == ',';
    out = malloc(n + commas + 1);
    if (!out)
        return NULL;
    for (i = 0, j = 0; i < n; i++) {
        out[j++] = s[i];
        if (s[i] == ',')
            out[j++] = ',';
    }
    out[j] = '\0';
    return out;
}

/* ---- KVM probe ------------------------------------------------------------ */

/* Runs in a child: can a one-instruction (hlt) real-mode guest run on
 * /dev/kvm?  Opening the device and creating a VM can succeed on hosts where
 * guests then hang (nested setups), so only a guest that really halts
 * counts.  Exit 0 if it did. */
static void kvm_probe_child(void)
{
    struct kvm_userspace_memory_region region;
    struct kvm_sregs sregs;
    struct kvm_regs regs;
    struct kvm_run *run;
    int kvm, vm, vcpu, size;
    unsigned char *mem;

    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0 || ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        _exit(1);
    vm = ioctl(kvm, KVM_CREATE_VM, 0UL);
    if (vm < 0)
        _exit(1);
    mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        _exit(1);
    mem[0] = 0xf4; /* hlt */
    memset(&region, 0, sizeof(region));
    region.guest_phys_addr = 0x1000;
    region.memory_size = 0x1000;
    region.userspace_addr = (uint64_t)(uintptr_t)mem;
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        _exit(1);
    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
    size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vcpu < 0 || size <= 0)
        _exit(1);
    run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        _exit(1);
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        _exit(1);
    memset(&regs, 0, sizeof(regs));
    regs.rip = 0x1000;
    regs.rflags = 0x2;
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        _exit(1);
    if (ioctl(vcpu, KVM_RUN, 0) < 0)
        _exit(1);
    _exit(run->exit_reason == KVM_EXIT_HLT ? 0 : 1);
}

/* true if KVM demonstrably works; never blocks more than KVM_PROBE_MS. */
static bool kvm_works(md_ctx *ctx)
{
    int64_t deadline;
    pid_t pid;
    int st = 0;

    if (access("/dev/kvm", R_OK | W_OK) < 0) {
        md_dbg(ctx, "boot: /dev/kvm not usable: %s", strerror(errno));
        return false;
    }
    pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0)
        kvm_probe_child();
    deadline = now_ms() + KVM_PROBE_MS;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return false;
        if (now_ms() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            md_dbg(ctx, "boot: KVM probe guest did not halt within %d ms: using TCG",
                   KVM_PROBE_MS);
            return false;
        }
        usleep(5000);
    }
    md_dbg(ctx, "boot: KVM probe %s", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "failed");
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* CPUID.1:ECX bit 31: we run inside a virtual machine.  Nested KVM there is
 * the case where the probe guest halts fine and real guests still hang or
 * abort (measured on this project's build host), so AUTO avoids it. */
static bool under_hypervisor(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned int a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d))
        return (c >> 31) & 1;
#endif
    return false;
}

static int choose_accel(md_ctx *ctx, uint32_t accel, uint32_t *ret)
{
    const char *env = getenv("MD_BOOT_ACCEL");

    if (accel == MD_BOOT_ACCEL_AUTO && env && *env) {
        if (!strcmp(env, "tcg"))
            accel = MD_BOOT_ACCEL_TCG;
        else if (!strcmp(env, "kvm"))
            accel = MD_BOOT_ACCEL_KVM;
        else if (strcmp(env, "auto") != 0)
            return md_error(ctx, -EINVAL, "MD_BOOT_ACCEL=%s: expected auto, tcg or kvm", env);
    }
    switch (accel) {
    case MD_BOOT_ACCEL_AUTO:
        if (under_hypervisor()) {
            md_dbg(ctx, "boot: running under a hypervisor: TCG (MD_BOOT_ACCEL=kvm to try KVM)");
            *ret = MD_BOOT_ACCEL_TCG;
        } else {
            *ret = kvm_works(ctx) ? MD_BOOT_ACCEL_KVM : MD_BOOT_ACCEL_TCG;
        }
        return 0;
    case MD_BOOT_ACCEL_TCG:
        *ret = accel;
        return 0;
    case MD_BOOT_ACCEL_KVM:
        if (access("/dev/kvm", R_OK | W_OK) < 0)
            return md_error_errno(ctx, -ENODEV, "KVM requested but /dev/kvm is not usable (%s)",
                                  strerror(errno));
        *ret = accel;
        return 0;
    default:
        return md_error(ctx, -EINVAL, "boot options: unknown accel %u", accel);
    }
}

/* ---- firmware ------------------------------------------------------------- */

static bool is_type(const char *type, const char *alias)
{
    const struct md_known_type *k;
    char dos[8];

    if (!type)
        return false;
    for (k = md_known_types; k->alias1; k++) {
        if (strcmp(k->alias1, alias) != 0)
            continue;
        snprintf(dos, sizeof(dos), "0x%02x", k->dos);
        return (k->gpt && !strcasecmp(type, k->gpt)) || (k->dos && !strcasecmp(type, dos));
    }
    return false;
}

/* MD_BOOT_FIRMWARE_AUTO: what the disk looks bootable with (md-boot.h). */
static int auto_firmware(md_ctx *ctx, const md_boot_opts *o, uint32_t *ret)
{
    bool esp = false, bios = false;
    md_image *img = NULL;
    md_probe *pr = NULL;
    uint32_t i;
    int r;

    *ret = MD_BOOT_FIRMWARE_BIOS;
    if (!o->disk || o->kernel) {
        md_dbg(ctx, "boot: firmware auto: %s: BIOS", o->kernel ? "direct kernel boot" : "no disk");
        return 0;
    }
    r = md_image_open(ctx, o->disk, MD_IMAGE_RDONLY, &img);
    if (r >= 0)
        r = md_image_probe(img, &pr);
    md_image_free(img);
    if (r == -ENOMEM)
        return r;
    if (r < 0) {
        md_dbg(ctx, "boot: firmware auto: cannot probe %s (%s): BIOS", o->disk, md_ctx_errmsg(ctx));
        md_ctx_clear_error(ctx);
        return 0;
    }
    for (i = 1; md_probe_table(pr) && i <= md_probe_count(pr); i++) {
        esp |= is_type(md_probe_type(pr, i), MD_PART_EFI);
        bios |= is_type(md_probe_type(pr, i), MD_PART_BIOS_BOOT) ||
                (md_probe_flags(pr, i) & MD_PART_BOOTABLE);
    }
    md_probe_free(pr);
    if (esp && !bios)
        *ret = MD_BOOT_FIRMWARE_UEFI;
    md_dbg(ctx, "boot: firmware auto: %s: %s an EFI System partition, %s: %s", o->disk,
           esp ? "has" : "no", bios ? "BIOS-bootable" : "nothing a BIOS boots",
           *ret == MD_BOOT_FIRMWARE_UEFI ? "UEFI" : "BIOS");
    return 0;
}

static int check_ovmf(md_ctx *ctx, const char *what, const char *path, const char *def)
{
    int r = check_file(ctx, what, path, R_OK);

    if (r == -ENOENT && !strcmp(path, def))
        return md_error(ctx, r, "%s %s: No such file or directory (install ovmf)", what, path);
    return r;
}

/* The writable copy of the variable store, in a new directory of its own. */
static int copy_vars(md_boot *b, const char *template)
{
    const char *tmp = getenv("TMPDIR");
    char buf[64 * 1024];
    int in = -1, out = -1, r = 0;
    ssize_t got;

    b->fw_dir = md_asprintf("%s/md-boot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!b->fw_dir)
        return md_error(b->ctx, -ENOMEM, "boot: out of memory");
    if (!mkdtemp(b->fw_dir)) {
        r = md_error_errno(b->ctx, -errno, "boot: cannot create a directory for the UEFI "
                           "variable store (%s)", b->fw_dir);
        free(b->fw_dir);
        b->fw_dir = NULL;
        return r;
    }
    b->vars_copy = md_asprintf("%s/OVMF_VARS.fd", b->fw_dir);
    if (!b->vars_copy)
        return md_error(b->ctx, -ENOMEM, "boot: out of memory");
    in = open(template, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return md_error_errno(b->ctx, -errno, "OVMF variable store %s", template);
    out = open(b->vars_copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        r = md_error_errno(b->ctx, -errno, "boot: %s", b->vars_copy);
        goto done;
    }
    while ((got = read(in, buf, sizeof(buf))) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = md_error_errno(b->ctx, -errno, "OVMF variable store %s: read", template);
            goto done;
        }
        r = md_write_full(out, buf, (size_t)got);
        if (r < 0) {
            md_error_errno(b->ctx, r, "boot: %s: write", b->vars_copy);
            goto done;
        }
    }
    if (close(out) < 0)
        r = md_error_errno(b->ctx, -errno, "boot: %s: close", b->vars_copy);
    out = -1;
done:
    if (out >= 0)
        close(out);
    close(in);
    return r;
}

static void remove_vars(md_boot *b)
{
    if (b->vars_copy)
        unlink(b->vars_copy);
    if (b->fw_dir && rmdir(b->fw_dir) < 0)
        md_dbg(b->ctx, "boot: cannot remove %s: %s", b->fw_dir, strerror(errno));
    free(b->vars_copy);
    free(b->fw_dir);
    b->vars_copy = b->fw_dir = NULL;
}

/* ---- start ---------------------------------------------------------------- */

struct argv_buf {
    char **v;
    size_t n, cap;
    bool oom;
};

/* Adds @s, taking ownership if @own (freed with the vector). */
static void argv_add(struct argv_buf *a, const char *s, bool own)
{
    char *c = own ? (char *)s : md_strdup(s);
    if (!c || a->oom) {
        a->oom = true;
        if (own)
            free(c);
        return;
    }
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, cap * sizeof(*v));
        if (!v) {
            a->oom = true;
            free(c);
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = c;
    a->v[a->n] = NULL;
}

static void argv_free(struct argv_buf *a)
{
    size_t i;
    for (i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
}

static int build_argv(md_ctx *ctx, const md_boot_opts *o, const char *qemu, uint32_t accel,
                      const md_boot *b, struct argv_buf *a)
{
    size_t i;

    argv_add(a, qemu, false);
    argv_add(a, "-nodefaults", false);
    argv_add(a, "-display", false);
    argv_add(a, "none", false);
    argv_add(a, "-serial", false);
    argv_add(a, "stdio", false);
    argv_add(a, "-no-reboot", false);
    argv_add(a, "-m", false);
    argv_add(a, md_asprintf("%u", o->memory_mib ? o->memory_mib : 256), true);
    argv_add(a, "-accel", false);
    argv_add(a, accel == MD_BOOT_ACCEL_KVM ? "kvm" : "tcg", false);
    if (accel == MD_BOOT_ACCEL_KVM) {
        argv_add(a, "-cpu", false);
        argv_add(a, "host", false);
    }
    if (b->firmware == MD_BOOT_FIRMWARE_UEFI) {
        char *code = qemu_escape(o->ovmf_code ? o->ovmf_code : MD_BOOT_OVMF_CODE);
        char *vars = qemu_escape(b->vars_copy);
        /* OVMF needs q35's flash; the non-secure-boot build needs no SMM */
        argv_add(a, "-machine", false);
        argv_add(a, "q35", false);
        argv_add(a, "-drive", false);
        argv_add(a, code ? md_asprintf("if=pflash,format=raw,readonly=on,file=%s", code) : NULL,
                 true);
        argv_add(a, "-drive", false);
        argv_add(a, vars ? md_asprintf("if=pflash,format=raw,file=%s", vars) : NULL, true);
        free(code);
        free(vars);
    }
    if (o->disk) {
        char *esc = qemu_escape(o->disk);
        argv_add(a, "-drive", false);
        argv_add(a, esc ? md_asprintf("file=%s,format=raw,if=%s%s", esc,
                                      o->disk_if == MD_BOOT_IF_IDE ? "ide" : "virtio",
                                      o->flags & MD_BOOT_READONLY ? ",readonly=on" : "")
                        : NULL,
                 true);
        free(esc);
    }
    if (o->flags & MD_BOOT_SNAPSHOT)
        argv_add(a, "-snapshot", false);
    if (o->kernel) {
        argv_add(a, "-kernel", false);
        argv_add(a, o->kernel, false);
        argv_add(a, "-append", false);
        argv_add(a, o->append ? o->append : DEFAULT_APPEND, false);
        if (o->initrd) {
            argv_add(a, "-initrd", false);
            argv_add(a, o->initrd, false);
        }
    }
    for (i = 0; o->extra_args && o->extra_args[i]; i++)
        argv_add(a, o->extra_args[i], false);
    if (a->oom)
        return md_error(ctx, -ENOMEM, "boot: out of memory");
    return 0;
}

static int validate(md_ctx *ctx, const md_boot_opts *o)
{
    int r;

    r = md_check_version(ctx, "boot options", o->version, MD_BOOT_OPTS_VERSION);
    if (r < 0)
        return r;
    if (o->firmware > MD_BOOT_FIRMWARE_AUTO)
        return md_error(ctx, -EINVAL, "boot options: unknown firmware %u", o->firmware);
    if (o->reserved)
        return md_error(ctx, -EINVAL, "boot options: reserved must be 0");
    if (o->firmware == MD_BOOT_FIRMWARE_BIOS && (o->ovmf_code || o->ovmf_vars))
        return md_error(ctx, -EINVAL, "boot options: OVMF files given, but the firmware is BIOS");
    if (o->disk_if > MD_BOOT_IF_IDE)
        return md_error(ctx, -EINVAL, "boot options: unknown disk interface %u", o->disk_if);
    if (o->accel > MD_BOOT_ACCEL_KVM)
        return md_error(ctx, -EINVAL, "boot options: unknown accel %u", o->accel);
    if (o->flags & ~(uint32_t)(MD_BOOT_SNAPSHOT | MD_BOOT_ECHO | MD_BOOT_NO_PANIC_CHECK |
                               MD_BOOT_READONLY))
        return md_error(ctx, -EINVAL, "boot options: unknown flags 0x%x", o->flags);
    if ((o->flags & MD_BOOT_ECHO) && o->echo_fd < 0)
        return md_error(ctx, -EINVAL, "boot options: MD_BOOT_ECHO needs echo_fd");
    if (o->memory_mib && (o->memory_mib < 16 || o->memory_mib > 1024u * 1024u))
        return md_error(ctx, -EINVAL, "boot options: memory %u MiB out of range (16..1048576)",
                        o->memory_mib);
    if (!o->disk && !o->kernel)
        return md_error(ctx, -EINVAL, "nothing to boot: give a disk image or a kernel");
    if (!o->kernel && (o->initrd || o->append))
        return md_error(ctx, -EINVAL, "an initrd or kernel command line needs a kernel");
    if (o->disk) {
        bool ro = o->flags & (MD_BOOT_SNAPSHOT | MD_BOOT_READONLY);
        r = check_file(ctx, "disk image", o->disk, ro ? R_OK : R_OK | W_OK);
        if (r == -EACCES && !ro && access(o->disk, R_OK) == 0)
            return md_error(ctx, r, "disk image %s: not writable (--snapshot / MD_BOOT_SNAPSHOT "
                            "boots it and discards the guest's writes)", o->disk);
        if (r < 0)
            return r;
    }
    if (o->kernel) {
        r = check_bzimage(ctx, o->kernel);
        if (r < 0)
            return r;
    }
    if (o->initrd) {
        r = check_file(ctx, "initrd", o->initrd, R_OK);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The child between fork() and exec(): async-signal-safe calls only. */
static void exec_child(pid_t parent, int in_r, int out_w, int err_w, int report_w,
                       const char *path, char **argv)
{
    sigset_t none;
    int e, sig;

    setpgid(0, 0);
    /* die with the parent; if it already died, the prctl came too late */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    for (sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in_r, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
        goto fail;
#ifdef SYS_close_range
    /* the caller's other descriptors are none of QEMU's business (a leaked
     * pipe end could keep someone waiting for EOF); Linux >= 5.11 */
    syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
#endif
    execv(path, argv);
fail:
    e = errno;
    (void)!write(report_w, &e, sizeof(e));
    _exit(127);
}

static void close_pair(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
}

MD_API int md_boot_start(md_ctx *ctx, const md_boot_opts *opts, md_boot **ret)
{
    md_boot_opts o = MD_BOOT_OPTS_INIT;
    struct argv_buf argv = { 0 };
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, rep[2] = { -1, -1 };
    char *qemu = NULL;
    md_boot *b = NULL;
    uint32_t accel = MD_BOOT_ACCEL_TCG, firmware = MD_BOOT_FIRMWARE_BIOS;
    pid_t parent, pid;
    ssize_t got;
    int r, e;

    if (!ctx || !ret)
        return -EINVAL;
    *ret = NULL;
    if (opts && opts->version == 1)
        memcpy(&o, opts, offsetof(md_boot_opts, firmware)); /* the rest: version 2 defaults */
    else if (opts)
        o = *opts;
    r = validate(ctx, &o);
    if (r < 0)
        return r;
    r = find_qemu(ctx, o.qemu ? o.qemu : DEFAULT_QEMU, &qemu);
    if (r < 0)
        return r;
    r = choose_accel(ctx, o.accel, &accel);
    if (r < 0)
        goto out;
    firmware = o.firmware;
    if (firmware == MD_BOOT_FIRMWARE_AUTO && (r = auto_firmware(ctx, &o, &firmware)) < 0)
        goto out;
    if (firmware == MD_BOOT_FIRMWARE_UEFI) {
        r = check_ovmf(ctx, "OVMF firmware", o.ovmf_code ? o.ovmf_code : MD_BOOT_OVMF_CODE,
                       MD_BOOT_OVMF_CODE);
        if (r >= 0)
            r = check_ovmf(ctx, "OVMF variable store", o.ovmf_vars ? o.ovmf_vars : MD_BOOT_OVMF_VARS,
                           MD_BOOT_OVMF_VARS);
        if (r < 0)
            goto out;
    }

    b = calloc(1, sizeof(*b));
    if (!b) {
        r = md_error(ctx, -ENOMEM, "boot: out of memory");
        goto out;
    }
    /* before anything can fail: md_boot_free() must not close fd 0 */
    b->ctx = md_ctx_ref(ctx);
    b->pid = -1;
    b->pidfd = b->in_fd = b->out_fd = b->err_fd = -1;
    b->hist = malloc(HIST_MAX);
    b->err = malloc(ERR_MAX);
    if (!b->hist || !b->err) {
        r = md_error(ctx, -ENOMEM, "boot: out of memory");
        goto out;
    }
    b->flags = o.flags;
    b->accel = accel;
    b->firmware = firmware;
    b->echo_fd = (o.flags & MD_BOOT_ECHO) ? o.echo_fd : -1;
    if (firmware == MD_BOOT_FIRMWARE_UEFI) {
        r = copy_vars(b, o.ovmf_vars ? o.ovmf_vars : MD_BOOT_OVMF_VARS);
        if (r < 0)
            goto out;
    }
    r = build_argv(ctx, &o, qemu, accel, b, &argv);
    if (r < 0)
        goto out;

    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
        pipe2(rep, O_CLOEXEC) < 0) {
        r = md_error_errno(ctx, -errno, "boot: pipe");
        goto out;
    }
    {
        size_t i;
        char line[2048] = "";
        for (i = 0; i < argv.n; i++) {
            strncat(line, argv.v[i], sizeof(line) - strlen(line) - 2);
            strncat(line, " ", sizeof(line) - strlen(line) - 1);
        }
        md_dbg(ctx, "boot: running %s", line);
    }
    parent = getpid();
    pid = fork();
    if (pid < 0) {
        r = md_error_errno(ctx, -errno, "boot: fork");
        goto out;
    }
    if (pid == 0)
        exec_child(parent, in[0], out[1], err[1], rep[1], qemu, argv.v);
    setpgid(pid, pid); /* also here: no window where kill(-pid) misses */
    b->pid = pid;
    close(rep[1]);
    rep[1] = -1;
    do
        got = read(rep[0], &e, sizeof(e));
    while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof(e)) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        b->pid = -1;
        b->exited = true;
        r = md_error_errno(ctx, -e, "cannot run %s", qemu);
        goto out;
    }
    b->in_fd = in[1];
    b->out_fd = out[0];
    b->err_fd = err[0];
    in[1] = out[0] = err[0] = -1;
    fcntl(b->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(b->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(b->err_fd, F_SETFL, O_NONBLOCK);
#ifdef SYS_pidfd_open
    b->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    md_dbg(ctx, "boot: QEMU pid %d (%s, %s)", (int)pid, accel == MD_BOOT_ACCEL_KVM ? "kvm" : "tcg",
           firmware == MD_BOOT_FIRMWARE_UEFI ? "UEFI" : "BIOS");
    *ret = b;
    b = NULL;
    r = 0;
out:
    close_pair(in);
    close_pair(out);
    close_pair(err);
    close_pair(rep);
    argv_free(&argv);
    free(qemu);
    md_boot_free(b);
    return r;
}

/* ---- talking to the guest ------------------------------------------------- */

static bool serial_done(const md_boot *b)
{
    return b->exited && b->out_fd < 0;
}

MD_API int md_boot_expect(md_boot *b, const char *str, uint32_t timeout_ms)
{
    int64_t deadline;
    size_t len;
    int r;

    if (!b)
        return -EINVAL;
    if (!str || !*str)
        return md_error(b->ctx, -EINVAL, "expect: empty string");
    len = strlen(str);
    deadline = deadline_after(timeout_ms);
    for (;;) {
        char *hit = b->pend_len ? memmem(b->pend, b->pend_len, str, len) : NULL;
        if (hit) {
            size_t end = (size_t)(hit - b->pend) + len;
            memmove(b->pend, b->pend + end, b->pend_len - end);
            b->pend_len -= end;
            b->pend[b->pend_len] = '\0';
            return 0;
        }
        if (b->panic_seen && !(b->flags & MD_BOOT_NO_PANIC_CHECK)) {
            /* let the rest of the panic message arrive for the report */
            int64_t until = now_ms() + 1000;
            if (until > deadline)
                until = deadline;
            while (!serial_done(b) && now_ms() < until)
                if (io_step(b, until, NULL, NULL, -1, NULL, NULL) < 0)
                    break;
            return md_error(b->ctx, -ECONNABORTED, "kernel panic before \"%s\" was seen", str);
        }
        if (serial_done(b)) {
            char first[256];
            const char *qerr = err_first_line(b, first, sizeof(first));
            return md_error(b->ctx, -EPIPE, "QEMU exited (status %d) before \"%s\" was seen%s%s",
                            b->status, str, *qerr ? ": " : "", qerr);
        }
        if (now_ms() >= deadline)
            return md_error(b->ctx, -ETIMEDOUT, "\"%s\" not seen within %u.%03u s", str,
                            timeout_ms / 1000, timeout_ms % 1000);
        r = io_step(b, deadline, NULL, NULL, -1, NULL, NULL);
        if (r < 0)
            return r;
    }
}

MD_API int md_boot_send(md_boot *b, const char *str)
{
    int64_t deadline;
    const char *p;
    size_t left;
    int r;

    if (!b || !str)
        return -EINVAL;
    p = str;
    left = strlen(str);
    deadline = now_ms() + SEND_TIMEOUT_MS;
    while (left > 0) {
        if (b->exited || b->in_fd < 0)
            return md_error(b->ctx, -EPIPE, "send: QEMU has exited (status %d)", b->status);
        if (now_ms() >= deadline)
            return md_error(b->ctx, -ETIMEDOUT, "send: QEMU read no input for %d s",
                            SEND_TIMEOUT_MS / 1000);
        r = io_step(b, deadline, &p, &left, -1, NULL, NULL);
        if (r < 0)
            return r;
    }
    return 0;
}

/* After the exit: read what is left in the pipes, for at most 2 s (something
 * outside QEMU's process group may hold them open). */
static void collect_last(md_boot *b)
{
    int64_t until = now_ms() + 2000;
    while ((b->out_fd >= 0 || b->err_fd >= 0) && now_ms() < until)
        if (io_step(b, until, NULL, NULL, -1, NULL, NULL) < 0)
            break;
}

MD_API int md_boot_wait(md_boot *b, uint32_t timeout_ms, int *exit_status)
{
    int64_t deadline;
    int r;

    if (!b)
        return -EINVAL;
    deadline = deadline_after(timeout_ms);
    while (!b->exited) {
        if (now_ms() >= deadline) {
            kill_group(b);
            return md_error(b->ctx, -ETIMEDOUT, "QEMU still running after %u.%03u s: killed",
                            timeout_ms / 1000, timeout_ms % 1000);
        }
        r = io_step(b, deadline, NULL, NULL, -1, NULL, NULL);
        if (r < 0)
            return r;
    }
    collect_last(b);
    if (exit_status)
        *exit_status = b->status;
    return 0;
}

MD_API int md_boot_kill(md_boot *b)
{
    if (!b)
        return -EINVAL;
    kill_group(b);
    return 0;
}

/* ---- interactive ---------------------------------------------------------- */

struct relay {
    bool escape;       /* Ctrl-A seen */
    bool quit;
    bool in_eof;
};

static int relay_input(md_boot *b, const char *data, size_t n, void *ud)
{
    struct relay *st = ud;
    char out[2048];
    size_t i, k = 0;
    int r;

    if (n == 0) {
        st->in_eof = true;
        return 0;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        if (st->escape) {
            st->escape = false;
            if (c == 'x' || c == 'X') {
                st->quit = true;
                break;
            }
            if (c == 0x01)
                out[k++] = 0x01;
            continue; /* other escapes are ignored */
        }
        if (c == 0x01) {
            st->escape = true;
            continue;
        }
        out[k++] = (char)c;
    }
    if (k > 0 && !b->exited && b->in_fd >= 0) {
        out[k] = '\0';
        r = write_all_nosigpipe(b->in_fd, out, k);
        if (r < 0 && r != -EPIPE)
            return md_error_errno(b->ctx, r, "interactive: write to QEMU");
    }
    return 0;
}

MD_API int md_boot_interactive(md_boot *b, int in_fd, int out_fd, uint32_t timeout_ms,
                               int *exit_status)
{
    int64_t deadline = deadline_after(timeout_ms);
    struct relay st = { false, false, false };
    struct termios saved, raw;
    bool tty = false;
    int old_echo, r = 0;

    if (!b || out_fd < 0)
        return -EINVAL;
    if (in_fd >= 0 && isatty(in_fd) && tcgetattr(in_fd, &saved) == 0) {
        raw = saved;
        cfmakeraw(&raw);
        tty = tcsetattr(in_fd, TCSANOW, &raw) == 0;
    }
    old_echo = b->echo_fd;
    b->echo_fd = out_fd;
    if (in_fd < 0)
        st.in_eof = true;
    while (!b->exited && !st.quit) {
        if (now_ms() >= deadline) {
            kill_group(b);
            r = md_error(b->ctx, -ETIMEDOUT, "QEMU still running after %u.%03u s: killed",
                         timeout_ms / 1000, timeout_ms % 1000);
            break;
        }
        r = io_step(b, deadline, NULL, NULL, st.in_eof ? -1 : in_fd, relay_input, &st);
        if (r < 0)
            break;
    }
    if (st.quit)
        kill_group(b);
    if (r >= 0)
        collect_last(b);
    b->echo_fd = old_echo;
    if (tty)
        tcsetattr(in_fd, TCSANOW, &saved);
    if (r < 0)
        return r;
    if (exit_status)
        *exit_status = b->status;
    return st.quit ? 1 : 0;
}

/* ---- reports and accessors ------------------------------------------------ */

MD_API const char *md_boot_tail(md_boot *b, uint32_t lines)
{
    size_t start, n, total;
    const char *sep = "--- qemu stderr ---\n";
    char *t;

    if (!b)
        return "";
    /* walk back over @lines newlines; a last line without newline counts too */
    start = b->hist_len;
    if (start > 0 && b->hist[start - 1] == '\n')
        start--;
    for (n = 0; start > 0; start--) {
        if (b->hist[start - 1] == '\n' && ++n >= lines)
            break;
    }
    if (lines == 0)
        start = b->hist_len;
    total = b->hist_len - start + 1 + (b->err_len ? strlen(sep) + b->err_len + 1 : 0) + 1;
    t = malloc(total);
    if (!t)
        return "";
    n = b->hist_len - start;
    memcpy(t, b->hist + start, n);
    if (n > 0 && t[n - 1] != '\n')
        t[n++] = '\n';
    if (b->err_len) {
        memcpy(t + n, sep, strlen(sep));
        n += strlen(sep);
        memcpy(t + n, b->err, b->err_len);
        n += b->err_len;
        if (t[n - 1] != '\n')
            t[n++] = '\n';
    }
    t[n] = '\0';
    free(b->tail);
    b->tail = t;
    return t;
}

MD_API int md_boot_pid(const md_boot *b)
{
    return b && !b->exited ? (int)b->pid : -1;
}

MD_API uint32_t md_boot_accel(const md_boot *b)
{
    return b ? b->accel : 0;
}

MD_API uint32_t md_boot_firmware(const md_boot *b)
{
    return b ? b->firmware : 0;
}

MD_API md_ctx *md_boot_ctx(const md_boot *b)
{
    return b ? b->ctx : NULL;
}

MD_API void md_boot_free(md_boot *b)
{
    if (!b)
        return;
    if (!b->exited && b->pid > 0) {
        /* nobody is interested in a graceful end any more */
        int st;
        kill(-b->pid, SIGKILL);
        while (waitpid(b->pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    if (b->pidfd >= 0)
        close(b->pidfd);
    if (b->in_fd >= 0)
        close(b->in_fd);
    if (b->out_fd >= 0)
        close(b->out_fd);
    if (b->err_fd >= 0)
        close(b->err_fd);
    remove_vars(b); /* QEMU is gone: nothing holds the copy */
    free(b->pend);
    free(b->hist);
    free(b->err);
    free(b->tail);
    md_ctx_unref(b->ctx);
    free(b);
}
