/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Source: a minimal BusyBox system (binary, applet links, dirs, nodes, /init). */
#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "md-internal.h"

#define LIST_TIMEOUT_MS 10000
#define LIST_MAX (1024 * 1024)

/* The built-in /init.  The kernel starts it with /dev/console as stdio;
 * /dev/console cannot be a controlling terminal, so a shell there has no job
 * control.  `setsid cttyhack sh` starts a new session and reopens the real
 * console device (ttyS0, tty1, ...) as its controlling tty.  When the shell
 * exits, power off instead of letting PID 1 exit (a kernel panic). */
static const char default_init[] =
    "#!/bin/sh\n"
    "# /init written by libminidistro.\n"
    "export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root\n"
    "mount -t proc proc /proc 2>/dev/null\n"
    "mount -t sysfs sysfs /sys 2>/dev/null\n"
    "mount -t devtmpfs devtmpfs /dev 2>/dev/null\n"
    "echo \"libminidistro: booted $(uname -r)\"\n"
    "if command -v setsid >/dev/null && command -v cttyhack >/dev/null; then\n"
    "    setsid cttyhack sh\n"
    "else\n"
    "    sh\n"
    "fi\n"
    "echo \"libminidistro: shell exited, powering off\"\n"
    "sync\n"
    "poweroff -f\n";

static const char etc_passwd[] = "root:x:0:0:root:/root:/bin/sh\n";
static const char etc_group[] = "root:x:0:\n";

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The probe's child: stdout to the pipe, stdin and stderr /dev/null, no
 * other descriptors, default signals, its own process group; then busybox
 * with argv[0] "busybox" (it dispatches on its name: a copy called "bb"
 * would look for an applet "bb").  Only async-signal-safe calls. */
static void probe_child(const char *path, int out, int devnull, long maxfd)
{
    char *const argv[] = { (char *)"busybox", (char *)"--list-full", NULL };
    char *const envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", (char *)"LC_ALL=C", NULL };
    sigset_t none;
    long fd;

    setpgid(0, 0);
    if (dup2(out, 1) < 0)
        _exit(127);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 2);
    } else {
        close(0);
        close(2);
    }
    if (close_range(3, ~0U, 0) < 0)
        for (fd = 3; fd < maxfd; fd++)
            close((int)fd);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execve(path, argv, envp);
    _exit(127);
}

/* Wait for the probe @pid; @kill_now (a timeout, an error) kills it first.
 * Whatever it started in its process group goes too (a script's `sleep`
 * would outlive it): the group is killed while the exited child, not yet
 * reaped, still holds the group's id.  Returns its wait status (0 when the
 * application reaps children itself). */
static int reap_probe(pid_t pid, bool kill_now)
{
    siginfo_t si;
    int status = 0;

    if (kill_now && kill(-pid, SIGKILL) < 0)
        kill(pid, SIGKILL);
    memset(&si, 0, sizeof(si));
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
        ;
    if (si.si_pid == pid)
        kill(-pid, SIGKILL); /* what it left running in its group */
    while (waitpid(pid, &status, 0) < 0) {
        if (errno == EINTR)
            continue;
        /* ECHILD: the application reaps children itself (SIGCHLD ignored);
         * judge by the output alone. */
        status = 0;
        break;
    }
    return status;
}

/* Read the probe's output from @fd until EOF, @deadline, or LIST_MAX bytes
 * into *@buf (*@cap bytes allocated, *@len used). */
static int read_probe(md_ctx *ctx, const char *path, int fd, int64_t deadline, int timeout_ms,
                      char **buf, size_t *cap, size_t *len)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int64_t left = deadline - now_ms();
        ssize_t n;
        int pr;

        if (left <= 0)
            return md_error(ctx, -ENOEXEC, "%s: not a BusyBox binary ('--list-full' did not finish in %d s)",
                            path, timeout_ms / 1000);
        pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return md_error_errno(ctx, -errno, "%s: poll", path);
        if (pr == 0)
            continue;
        if (*len + 1 >= *cap) {
            char *nb;
            if (*cap >= LIST_MAX)
                return md_error(ctx, -ENOEXEC, "%s: not a BusyBox binary ('--list-full' printed over %d bytes)",
                                path, LIST_MAX);
            nb = realloc(*buf, *cap * 2);
            if (!nb)
                return md_error(ctx, -ENOMEM, "out of memory");
            *buf = nb;
            *cap *= 2;
        }
        n = read(fd, *buf + *len, *cap - *len - 1);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return md_error_errno(ctx, -errno, "%s: read", path);
        if (n == 0)
            return 0;
        *len += (size_t)n;
    }
}

/*
 * Run `@path --list-full` (as "busybox", in its own process group) without a
 * shell and collect its standard output (NUL-terminated, malloc'ed).  Kills
 * the child, and its process group, after @timeout_ms or when it prints more
 * than LIST_MAX bytes.  Internal; tests call it directly.
 * Errors: -ENOEXEC (failed, timed out, too much output), -errno.
 */
int md_busybox_list(md_ctx *ctx, const char *path, int timeout_ms, char **out, size_t *out_size);
int md_busybox_list(md_ctx *ctx, const char *path, int timeout_ms, char **out, size_t *out_size)
{
    int pfd[2], devnull, status, r = 0;
    int64_t deadline = now_ms() + timeout_ms;
    long maxfd = sysconf(_SC_OPEN_MAX);
    size_t len = 0, cap = 4096;
    char *buf;
    pid_t pid;

    if (maxfd < 0 || maxfd > 65536)
        maxfd = 65536;
    buf = malloc(cap);
    if (!buf)
        return md_error(ctx, -ENOMEM, "out of memory");
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        free(buf);
        return md_error_errno(ctx, -errno, "%s: pipe", path);
    }
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    pid = fork();
    if (pid < 0) {
        r = md_error_errno(ctx, -errno, "%s: fork", path);
        close(pfd[0]);
        close(pfd[1]);
        if (devnull >= 0)
            close(devnull);
        free(buf);
        return r;
    }
    if (pid == 0)
        probe_child(path, pfd[1], devnull, maxfd);
    setpgid(pid, pid); /* as the child does: no race with a kill of the group */
    close(pfd[1]);
    if (devnull >= 0)
        close(devnull);
    r = read_probe(ctx, path, pfd[0], deadline, timeout_ms, &buf, &cap, &len);
    close(pfd[0]);
    status = reap_probe(pid, r < 0);
    if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && len == 0)
            r = md_error(ctx, -ENOEXEC, "%s: not a BusyBox binary (cannot be executed here)", path);
        else
            r = md_error(ctx, -ENOEXEC, "%s: not a BusyBox binary ('--list-full' failed)", path);
    }
    if (r < 0) {
        free(buf);
        return r;
    }
    buf[len] = '\0';
    *out = buf;
    *out_size = len;
    return 0;
}

/* A dynamically linked busybox runs on the host but not in an initramfs
 * that lacks its libraries: warn (it may be intended). */
static void warn_if_dynamic(md_ctx *ctx, const char *path)
{
    unsigned char ident[EI_NIDENT];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t phoff;
    unsigned phnum, phentsize, i;

    if (fd < 0)
        return;
    if (md_pread_full(fd, ident, sizeof(ident), 0) < 0 || memcmp(ident, ELFMAG, SELFMAG) ||
        ident[EI_DATA] != ELFDATA2LSB || ident[EI_CLASS] != ELFCLASS64)
        goto out; /* only the common case is checked */
    {
        /* little-endian fields, read as such whatever the host's byte order */
        unsigned char eh[sizeof(Elf64_Ehdr)];
        if (md_pread_full(fd, eh, sizeof(eh), 0) < 0)
            goto out;
        phoff = md_get_le64(eh + offsetof(Elf64_Ehdr, e_phoff));
        phnum = md_get_le16(eh + offsetof(Elf64_Ehdr, e_phnum));
        phentsize = md_get_le16(eh + offsetof(Elf64_Ehdr, e_phentsize));
    }
    if (phentsize < sizeof(Elf64_Phdr) || phnum > 256)
        goto out;
    for (i = 0; i < phnum; i++) {
        unsigned char ph[sizeof(Elf64_Phdr)];
        if (md_pread_full(fd, ph, sizeof(ph), phoff + (uint64_t)i * phentsize) < 0)
            break;
        if (md_get_le32(ph + offsetof(Elf64_Phdr, p_type)) == PT_INTERP) {
            md_warn(ctx, "%s: BusyBox is dynamically linked; it will not run in an image "
                    "without its shared libraries", path);
            break;
        }
    }
out:
    close(fd);
}

/* Validate the --list-full output: one relative path per line. */
static int parse_list(md_ctx *ctx, const char *path, char *list, char ***ret, size_t *ret_n)
{
    char **v = NULL, *line, *save = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    int r = 0;

    for (line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *norm, *p;

        lineno++;
        for (p = line; *p; p++)
            if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f)
                break;
        if (*p) {
            r = md_error(ctx, -ENOEXEC, "%s: not a BusyBox binary (unexpected '--list-full' output "
                         "on line %zu)", path, lineno);
            break;
        }
        r = md_path_normalize(ctx, line, &norm);
        if (r < 0 || !*norm) {
            if (r >= 0)
                free(norm);
            r = md_error(ctx, -ENOEXEC, "%s: not a BusyBox binary (bad applet path '%s' in "
                         "'--list-full' output)", path, line);
            break;
        }
        if (n == cap) {
            char **nv = realloc(v, (cap = cap ? cap * 2 : 256) * sizeof(*nv));
            if (!nv) {
                free(norm);
                r = md_error(ctx, -ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        v[n++] = norm;
    }
    if (r == 0 && n == 0)
        r = md_error(ctx, -ENOEXEC, "%s: not a BusyBox binary ('--list-full' listed no applets)", path);
    if (r < 0) {
        while (n)
            free(v[--n]);
        free(v);
        return r;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

static int add_dir_if_missing(md_tree *tree, const char *path, uint32_t mode)
{
    md_attr a = MD_ATTR_INIT;
    struct md_entry *e;
    int r;

    if (md_tree_contains(tree, path) > 0)
        return 0;
    a.mode = mode;
    r = md_tree_add_entry(tree, path, S_IFDIR, &a, &e);
    return r;
}

MD_API int md_tree_add_busybox(md_tree *tree, const char *busybox, const md_busybox_opts *opts)
{
    static const md_busybox_opts defaults = MD_BUSYBOX_OPTS_INIT;
    static const struct { const char *path; uint32_t mode; } dirs[] = {
        { "bin", 0755 }, { "sbin", 0755 }, { "usr", 0755 }, { "usr/bin", 0755 },
        { "usr/sbin", 0755 }, { "dev", 0755 }, { "etc", 0755 }, { "proc", 0555 },
        { "sys", 0555 }, { "tmp", 01777 }, { "root", 0700 }, { "run", 0755 },
    };
    md_ctx *ctx;
    char *list = NULL, **applets = NULL;
    size_t list_size, n_applets = 0, i;
    bool have_sh = false;
    struct stat st;
    md_attr a;
    int r;

    if (!tree || !busybox)
        return -EINVAL;
    ctx = tree->ctx;
    if (!opts)
        opts = &defaults;
    r = md_check_version(ctx, "md_busybox_opts", opts->version, MD_BUSYBOX_OPTS_VERSION);
    if (r < 0)
        return r;
    if (opts->flags & ~MD_BUSYBOX_NO_INIT)
        return md_error(ctx, -EINVAL, "md_busybox_opts: unknown flags 0x%x", opts->flags);

    /* Check everything before the tree is touched. */
    if (stat(busybox, &st) < 0)
        return md_error_errno(ctx, -errno, "%s", busybox);
    if (!S_ISREG(st.st_mode))
        return md_error(ctx, -ENOEXEC, "%s: not a BusyBox binary (not a regular file)", busybox);
    if (!(st.st_mode & 0111) || access(busybox, X_OK) < 0)
        return md_error(ctx, -ENOEXEC, "%s: not a BusyBox binary (not executable)", busybox);
    if (access(busybox, R_OK) < 0)
        return md_error_errno(ctx, -errno, "%s", busybox);
    if (!(opts->flags & MD_BUSYBOX_NO_INIT) && opts->init_path) {
        if (stat(opts->init_path, &st) < 0)
            return md_error_errno(ctx, -errno, "init %s", opts->init_path);
        if (!S_ISREG(st.st_mode))
            return md_error(ctx, -EINVAL, "init %s: not a regular file", opts->init_path);
    }
    r = md_busybox_list(ctx, busybox, LIST_TIMEOUT_MS, &list, &list_size);
    if (r < 0)
        return r;
    r = parse_list(ctx, busybox, list, &applets, &n_applets);
    free(list);
    if (r < 0)
        return r;
    for (i = 0; i < n_applets; i++)
        if (!strcmp(applets[i], "bin/sh"))
            have_sh = true;
    if (!have_sh && !(opts->flags & MD_BUSYBOX_NO_INIT) && !opts->init_path) {
        r = md_error(ctx, -EINVAL, "%s: BusyBox has no 'sh' applet, which the built-in /init needs "
                     "(supply an init or none)", busybox);
        goto out;
    }
    warn_if_dynamic(ctx, busybox);

    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        r = add_dir_if_missing(tree, dirs[i].path, dirs[i].mode);
        if (r < 0)
            goto out;
    }
    md_attr_init(&a);
    a.mode = 0755;
    r = md_tree_add_file(tree, "bin/busybox", busybox, &a);
    if (r < 0)
        goto out;
    a.mode = 0777;
    for (i = 0; i < n_applets; i++) {
        if (!strcmp(applets[i], "bin/busybox"))
            continue;
        /* absolute targets: valid wherever the link lives, and deterministic */
        r = md_tree_add_symlink(tree, applets[i], "/bin/busybox", &a);
        if (r < 0)
            goto out;
    }
    if (md_tree_contains(tree, "dev/console") == 0) {
        a.mode = 0600;
        r = md_tree_add_node(tree, "dev/console", MD_NODE_CHR, 5, 1, &a);
        if (r < 0)
            goto out;
    }
    if (md_tree_contains(tree, "dev/null") == 0) {
        a.mode = 0666;
        r = md_tree_add_node(tree, "dev/null", MD_NODE_CHR, 1, 3, &a);
        if (r < 0)
            goto out;
    }
    a.mode = 0644;
    if (md_tree_contains(tree, "etc/passwd") == 0 &&
        (r = md_tree_add_data(tree, "etc/passwd", etc_passwd, sizeof(etc_passwd) - 1, &a)) < 0)
        goto out;
    if (md_tree_contains(tree, "etc/group") == 0 &&
        (r = md_tree_add_data(tree, "etc/group", etc_group, sizeof(etc_group) - 1, &a)) < 0)
        goto out;
    if (!(opts->flags & MD_BUSYBOX_NO_INIT)) {
        a.mode = 0755;
        if (opts->init_path)
            r = md_tree_add_file(tree, "init", opts->init_path, &a);
        else
            r = md_tree_add_data(tree, "init", default_init, sizeof(default_init) - 1, &a);
        if (r < 0)
            goto out;
    }
    r = 0;
out:
    for (i = 0; i < n_applets; i++)
        free(applets[i]);
    free(applets);
    return r;
}
