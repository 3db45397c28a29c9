/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fault injection for any program: an LD_PRELOAD shim that makes the Nth call
 * of one family of C library functions fail (tests/t-fault.sh drives it;
 * tests/README.md, "Fuzzing and fault injection").
 *
 *   MD_FAULT=FAMILY:N[+][:ERRNO]   fail the Nth call of FAMILY (1-based); with
 *                                  "+" every call from the Nth on; N = 0 only
 *                                  counts.  ERRNO is a name (EIO, ENOSPC...)
 *                                  replacing the family's default.
 *   MD_FAULT_LOG=FILE              append what happened to FILE:
 *                                    "fired FAMILY N ERRNO writes=W" when a
 *                                    call is failed (W: writes done before it),
 *                                    "count FAMILY C fired F writes W" at exit.
 *   MD_FAULT_BACKTRACE=1           also a backtrace of each failed call.
 *
 * Families (default error):
 *   malloc  malloc calloc realloc posix_memalign aligned_alloc memalign (ENOMEM)
 *   write   write pwrite pwrite64 writev pwritev pwritev64, not to fd 2 (ENOSPC)
 *   fsync   fsync fdatasync (EIO)
 *   rename  rename renameat renameat2 link linkat (ENOSPC)
 *   open    open open64 openat openat64 creat creat64 fopen fopen64 opendir
 *           mkstemp mkostemp mkstemps mkostemps, and the _2 fortify variants
 *           (EACCES)
 *
 * Counting starts when main() is entered (the shim wraps main through
 * __libc_start_main), so the dynamic loader and constructors never count, and
 * in another thread when its start routine is entered (the shim wraps
 * pthread_create), so the set-up of a thread never counts; only with
 * MD_FAULT set; MD_FAULT and MD_FAULT_LOG are then removed from the
 * environment so that child processes run without faults.  Calls made by the
 * C library into itself (stdio writing stderr, fopen's own open) do not go
 * through these symbols and are not counted.  Calls are counted across
 * threads, so a multi-threaded program may fail a different call each run.
 */
/* The shim defines open and open64, pwrite and pwrite64...: each its own
 * symbol, not the 64-bit one a redirecting header would make it. */
#undef _FILE_OFFSET_BITS
#undef _FORTIFY_SOURCE
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* Not declared by the headers (fortify variants, the C start-up). */
EXPORT int __open_2(const char *path, int flags);
EXPORT int __open64_2(const char *path, int flags);
EXPORT int __openat_2(int dir, const char *path, int flags);
EXPORT int __openat64_2(int dir, const char *path, int flags);
EXPORT int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
                             void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
                             void *stack_end);

enum family { F_NONE = -1, F_MALLOC, F_WRITE, F_FSYNC, F_RENAME, F_OPEN, F_COUNT };

static const char *const family_names[F_COUNT] = { "malloc", "write", "fsync", "rename", "open" };
static const int family_errno[F_COUNT] = { ENOMEM, ENOSPC, EIO, ENOSPC, EACCES };

static const struct {
    const char *name;
    int value;
} errno_names[] = {
    { "ENOMEM", ENOMEM }, { "ENOSPC", ENOSPC }, { "EIO", EIO },       { "EACCES", EACCES },
    { "EPERM", EPERM },   { "EDQUOT", EDQUOT }, { "EROFS", EROFS },   { "EINTR", EINTR },
    { "EAGAIN", EAGAIN }, { "EBADF", EBADF },   { "ENOENT", ENOENT }, { "EEXIST", EEXIST },
    { "EXDEV", EXDEV },   { "EMFILE", EMFILE }, { "EFBIG", EFBIG },
};

static enum family fault_family = F_NONE;
static unsigned long fault_nth;      /* 0: count only */
static int fault_sticky;             /* fail every call from the Nth on */
static int fault_errno;
static int fault_log_fd = -1;
static int fault_backtrace;
static volatile int counting;        /* set when main() is entered */
static unsigned long calls[F_COUNT]; /* atomics */
static unsigned long fired;
static unsigned long writes_done;

/* Inside the shim (resolving symbols, logging, backtrace): calls pass through
 * uncounted.  initial-exec: no allocation on first access; volatile: the
 * compiler sees that dlsym() cannot reach a static variable and would drop
 * the increment around it, yet dlsym() calls back into free(). */
static __thread volatile int in_shim __attribute__((tls_model("initial-exec")));

/* Set in the main thread when main() starts and in other threads when their
 * start routine does: what a sanitizer runtime or the C library does to set
 * a new thread up before that (and may not survive failing) never counts. */
static __thread volatile int thread_started __attribute__((tls_model("initial-exec")));

/* ---- the real functions ------------------------------------------------------ */

/* dlsym() may allocate before malloc is resolved: a small static pool serves
 * those calls, and free()/realloc() recognise its pointers. */
static char pool[16384] __attribute__((aligned(16)));
static size_t pool_used;

static int in_pool(const void *p)
{
    return (const char *)p >= pool && (const char *)p < pool + sizeof(pool);
}

static void *pool_alloc(size_t n)
{
    size_t at = __atomic_fetch_add(&pool_used, (n + 15) & ~(size_t)15, __ATOMIC_RELAXED);
    if (at + n > sizeof(pool))
        return NULL;
    return pool + at;
}

#define REAL(ret, name, args)                                              \
    static ret(*real_##name) args;                                         \
    static ret(*get_##name(void)) args                                     \
    {                                                                      \
        if (!real_##name) {                                                \
            in_shim++;                                                     \
            real_##name = (ret(*) args)dlsym(RTLD_NEXT, #name);            \
            in_shim--;                                                     \
        }                                                                  \
        return real_##name;                                                \
    }

REAL(void *, malloc, (size_t))
REAL(void *, calloc, (size_t, size_t))
REAL(void *, realloc, (void *, size_t))
REAL(void, free, (void *))
REAL(int, posix_memalign, (void **, size_t, size_t))
REAL(void *, aligned_alloc, (size_t, size_t))
REAL(void *, memalign, (size_t, size_t))
REAL(ssize_t, write, (int, const void *, size_t))
REAL(ssize_t, pwrite, (int, const void *, size_t, off_t))
REAL(ssize_t, pwrite64, (int, const void *, size_t, off_t))
REAL(ssize_t, writev, (int, const struct iovec *, int))
REAL(ssize_t, pwritev, (int, const struct iovec *, int, off_t))
REAL(ssize_t, pwritev64, (int, const struct iovec *, int, off_t))
REAL(int, fsync, (int))
REAL(int, fdatasync, (int))
REAL(int, rename, (const char *, const char *))
REAL(int, renameat, (int, const char *, int, const char *))
REAL(int, renameat2, (int, const char *, int, const char *, unsigned int))
REAL(int, link, (const char *, const char *))
REAL(int, linkat, (int, const char *, int, const char *, int))
REAL(int, open, (const char *, int, ...))
REAL(int, open64, (const char *, int, ...))
REAL(int, openat, (int, const char *, int, ...))
REAL(int, openat64, (int, const char *, int, ...))
REAL(int, __open_2, (const char *, int))
REAL(int, __open64_2, (const char *, int))
REAL(int, __openat_2, (int, const char *, int))
REAL(int, __openat64_2, (int, const char *, int))
REAL(int, creat, (const char *, mode_t))
REAL(int, creat64, (const char *, mode_t))
REAL(FILE *, fopen, (const char *, const char *))
REAL(FILE *, fopen64, (const char *, const char *))
REAL(DIR *, opendir, (const char *))
REAL(int, mkstemp, (char *))
REAL(int, mkostemp, (char *, int))
REAL(int, mkstemps, (char *, int))
REAL(int, mkostemps, (char *, int, int))

/* ---- logging: raw syscalls, nothing that is counted ---------------------------- */

static void log_str(const char *s)
{
    if (fault_log_fd >= 0)
        (void)!syscall(SYS_write, fault_log_fd, s, strlen(s));
}

static void log_line(const char *what, enum family f, unsigned long a, unsigned long b)
{
    char buf[160];
    const char *en = "?";
    size_t i;

    for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (errno_names[i].value == fault_errno)
            en = errno_names[i].name;
    if (strcmp(what, "fired") == 0)
        snprintf(buf, sizeof(buf), "fired %s %lu %s writes=%lu\n", family_names[f], a, en,
                 __atomic_load_n(&writes_done, __ATOMIC_RELAXED));
    else
        snprintf(buf, sizeof(buf), "count %s %lu fired %lu writes %lu\n", family_names[f], a, b,
                 __atomic_load_n(&writes_done, __ATOMIC_RELAXED));
    log_str(buf);
}

/* ---- the decision ----------------------------------------------------------- */

/* 1 if this call of family @f is to fail (errno is then set). */
static int should_fail(enum family f)
{
    unsigned long n;

    if (!counting || !thread_started || in_shim || f != fault_family)
        return 0;
    n = __atomic_add_fetch(&calls[f], 1, __ATOMIC_RELAXED);
    if (fault_nth == 0 || n < fault_nth || (n > fault_nth && !fault_sticky))
        return 0;
    __atomic_add_fetch(&fired, 1, __ATOMIC_RELAXED);
    in_shim++;
    log_line("fired", f, n, 0);
    if (fault_backtrace && fault_log_fd >= 0) {
        void *frames[64];
        int k = backtrace(frames, 64);
        backtrace_symbols_fd(frames, k, fault_log_fd);
    }
    in_shim--;
    errno = fault_errno;
    return 1;
}

static void count_write(ssize_t r)
{
    if (r >= 0 && counting && !in_shim)
        __atomic_add_fetch(&writes_done, 1, __ATOMIC_RELAXED);
}

/* ---- set-up: MD_FAULT, and main() starts the count ------------------------------ */

static void parse_env(void)
{
    const char *spec = getenv("MD_FAULT"), *log = getenv("MD_FAULT_LOG"), *bt;
    char fam[16], *end;
    const char *p;
    size_t n, i;

    if (!spec || !*spec)
        return;
    p = strchr(spec, ':');
    n = p ? (size_t)(p - spec) : 0;
    if (!p || n >= sizeof(fam))
        goto bad;
    memcpy(fam, spec, n);
    fam[n] = '\0';
    for (i = 0; i < F_COUNT; i++)
        if (strcmp(fam, family_names[i]) == 0)
            fault_family = (enum family)i;
    if (fault_family == F_NONE)
        goto bad;
    errno = 0;
    fault_nth = strtoul(p + 1, &end, 10);
    if (errno || end == p + 1)
        goto bad;
    if (*end == '+') {
        fault_sticky = 1;
        end++;
    }
    fault_errno = family_errno[fault_family];
    if (*end == ':') {
        fault_errno = 0;
        for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
            if (strcmp(end + 1, errno_names[i].name) == 0)
                fault_errno = errno_names[i].value;
        if (!fault_errno)
            goto bad;
    } else if (*end) {
        goto bad;
    }
    if (log && *log)
        fault_log_fd = (int)syscall(SYS_open, log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    bt = getenv("MD_FAULT_BACKTRACE");
    fault_backtrace = bt && strcmp(bt, "1") == 0;
    return;
bad:
    fault_family = F_NONE;
    {
        static const char msg[] = "md-fault: MD_FAULT must be FAMILY:N[+][:ERRNO] with FAMILY "
                                  "malloc, write, fsync, rename or open\n";
        (void)!syscall(SYS_write, 2, msg, sizeof(msg) - 1);
    }
    _exit(125);
}

static int (*real_main)(int, char **, char **);

static int fault_main(int argc, char **argv, char **envp)
{
    (void)envp;
    if (fault_family != F_NONE) {
        unsetenv("MD_FAULT");
        unsetenv("MD_FAULT_LOG");
        unsetenv("MD_FAULT_BACKTRACE");
        thread_started = 1;
        counting = 1;
    }
    return real_main(argc, argv, environ);
}

static void __attribute__((destructor)) fault_report(void)
{
    if (fault_family == F_NONE)
        return;
    counting = 0;
    log_line("count", fault_family, __atomic_load_n(&calls[fault_family], __ATOMIC_RELAXED),
             __atomic_load_n(&fired, __ATOMIC_RELAXED));
}

typedef int (*start_main_fn)(int (*)(int, char **, char **), int, char **, void (*)(void),
                             void (*)(void), void (*)(void), void *);

EXPORT int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
                             void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
                             void *stack_end)
{
    start_main_fn real = (start_main_fn)dlsym(RTLD_NEXT, "__libc_start_main");

    parse_env();
    real_main = main;
    return real(fault_main, argc, argv, init, fini, rtld_fini, stack_end);
}

/* ---- threads: count from the start routine on --------------------------------- */

struct start {
    void *(*fn)(void *);
    void *arg;
};

static void *start_thread(void *p)
{
    struct start st = *(struct start *)p;

    in_shim++;
    free(p);
    in_shim--;
    thread_started = 1;
    return st.fn(st.arg);
}

REAL(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))

EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    struct start *st;
    int r;

    if (fault_family == F_NONE)
        return get_pthread_create()(t, attr, fn, arg);
    in_shim++;
    st = malloc(sizeof(*st));
    in_shim--;
    if (!st)
        return EAGAIN;
    st->fn = fn;
    st->arg = arg;
    r = get_pthread_create()(t, attr, start_thread, st);
    if (r != 0) {
        in_shim++;
        free(st);
        in_shim--;
    }
    return r;
}

/* ---- malloc ------------------------------------------------------------------- */

/* Before the real allocator is known (dlsym() resolving it may allocate):
 * the pool. */
#define RESOLVE_OR_POOL(name, n)                                            \
    do {                                                                    \
        if (!real_##name && (in_shim || !get_##name()))                     \
            return pool_alloc(n);                                           \
    } while (0)

EXPORT void *malloc(size_t n)
{
    RESOLVE_OR_POOL(malloc, n);
    if (should_fail(F_MALLOC))
        return NULL;
    return real_malloc(n);
}

EXPORT void *calloc(size_t n, size_t size)
{
    RESOLVE_OR_POOL(calloc, n * size); /* the pool is zeroed */
    if (should_fail(F_MALLOC))
        return NULL;
    return real_calloc(n, size);
}

EXPORT void *realloc(void *p, size_t n)
{
    if (in_pool(p)) {
        void *q = malloc(n);
        size_t room = (size_t)(pool + sizeof(pool) - (char *)p);
        if (q)
            memcpy(q, p, n < room ? n : room);
        return q;
    }
    RESOLVE_OR_POOL(realloc, n);
    if (should_fail(F_MALLOC))
        return NULL;
    return real_realloc(p, n);
}

EXPORT void free(void *p)
{
    if (!p || in_pool(p))
        return;
    if (!real_free && (in_shim || !get_free()))
        return; /* freed while resolving free itself: leaked */
    real_free(p);
}

EXPORT int posix_memalign(void **ret, size_t align, size_t n)
{
    if (should_fail(F_MALLOC))
        return ENOMEM;
    return get_posix_memalign()(ret, align, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
    if (should_fail(F_MALLOC))
        return NULL;
    return get_aligned_alloc()(align, n);
}

EXPORT void *memalign(size_t align, size_t n)
{
    if (should_fail(F_MALLOC))
        return NULL;
    return get_memalign()(align, n);
}

/* ---- write, fsync, rename and link, open ------------------------------------------ */

/* A wrapper that fails as family @fam with @failval or calls the real one. */
#define WRAP(ret, name, fam, failval, params, args)                         \
    EXPORT ret name params                                                  \
    {                                                                       \
        if (should_fail(fam))                                               \
            return failval;                                                 \
        return get_##name() args;                                           \
    }

/* Writes: never to fd 2 (the error message itself), and counted when done. */
#define WRAP_WRITE(name, params, args)                                      \
    EXPORT ssize_t name params                                              \
    {                                                                       \
        ssize_t r;                                                          \
        if (fd != 2 && should_fail(F_WRITE))                                \
            return -1;                                                      \
        r = get_##name() args;                                              \
        if (fd != 2)                                                        \
            count_write(r);                                                 \
        return r;                                                           \
    }

WRAP_WRITE(write, (int fd, const void *buf, size_t n), (fd, buf, n))
WRAP_WRITE(pwrite, (int fd, const void *buf, size_t n, off_t off), (fd, buf, n, off))
WRAP_WRITE(pwrite64, (int fd, const void *buf, size_t n, off_t off), (fd, buf, n, off))
WRAP_WRITE(writev, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt))
WRAP_WRITE(pwritev, (int fd, const struct iovec *iov, int cnt, off_t off), (fd, iov, cnt, off))
WRAP_WRITE(pwritev64, (int fd, const struct iovec *iov, int cnt, off_t off), (fd, iov, cnt, off))

WRAP(int, fsync, F_FSYNC, -1, (int fd), (fd))
WRAP(int, fdatasync, F_FSYNC, -1, (int fd), (fd))

WRAP(int, rename, F_RENAME, -1, (const char *a, const char *b), (a, b))
WRAP(int, renameat, F_RENAME, -1, (int da, const char *a, int db, const char *b), (da, a, db, b))
WRAP(int, renameat2, F_RENAME, -1, (int da, const char *a, int db, const char *b, unsigned int fl),
     (da, a, db, b, fl))
WRAP(int, link, F_RENAME, -1, (const char *a, const char *b), (a, b))
WRAP(int, linkat, F_RENAME, -1, (int da, const char *a, int db, const char *b, int fl),
     (da, a, db, b, fl))

/* open and openat take a mode only with O_CREAT or O_TMPFILE. */
#define WRAP_OPEN(name, params, dir_args)                                   \
    EXPORT int name params                                                  \
    {                                                                       \
        int mode = 0;                                                       \
        if (flags & (O_CREAT | __O_TMPFILE)) {                              \
            va_list ap;                                                     \
            va_start(ap, flags);                                            \
            mode = va_arg(ap, int);                                         \
            va_end(ap);                                                     \
        }                                                                   \
        if (should_fail(F_OPEN))                                            \
            return -1;                                                      \
        return get_##name() dir_args;                                       \
    }

WRAP_OPEN(open, (const char *path, int flags, ...), (path, flags, mode))
WRAP_OPEN(open64, (const char *path, int flags, ...), (path, flags, mode))
WRAP_OPEN(openat, (int dir, const char *path, int flags, ...), (dir, path, flags, mode))
WRAP_OPEN(openat64, (int dir, const char *path, int flags, ...), (dir, path, flags, mode))
WRAP(int, __open_2, F_OPEN, -1, (const char *path, int flags), (path, flags))
WRAP(int, __open64_2, F_OPEN, -1, (const char *path, int flags), (path, flags))
WRAP(int, __openat_2, F_OPEN, -1, (int dir, const char *path, int flags), (dir, path, flags))
WRAP(int, __openat64_2, F_OPEN, -1, (int dir, const char *path, int flags), (dir, path, flags))
WRAP(int, creat, F_OPEN, -1, (const char *path, mode_t mode), (path, mode))
WRAP(int, creat64, F_OPEN, -1, (const char *path, mode_t mode), (path, mode))
WRAP(FILE *, fopen, F_OPEN, NULL, (const char *path, const char *mode), (path, mode))
WRAP(FILE *, fopen64, F_OPEN, NULL, (const char *path, const char *mode), (path, mode))
WRAP(DIR *, opendir, F_OPEN, NULL, (const char *path), (path))
WRAP(int, mkstemp, F_OPEN, -1, (char *tmpl), (tmpl))
WRAP(int, mkostemp, F_OPEN, -1, (char *tmpl, int fl), (tmpl, fl))
WRAP(int, mkstemps, F_OPEN, -1, (char *tmpl, int suffixlen), (tmpl, suffixlen))
WRAP(int, mkostemps, F_OPEN, -1, (char *tmpl, int suffixlen, int fl), (tmpl, suffixlen, fl))
