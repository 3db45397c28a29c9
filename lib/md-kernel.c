/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Kernels (part of the distro module, md-distro.h): the release string of
 * a bzImage, and kernel module resolution (modules.dep / modules.builtin /
 * modules.alias / .config) into a tree.
 */
#include <ctype.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>

#include "md-internal.h"

/* ------------------------------------------------------------------------ */
/* Kernel release from the bzImage setup header (Documentation/x86/boot.rst) */

int md_kernel_release_data(md_ctx *ctx, const char *kernel, const struct md_data *d, char *buf,
                           size_t size)
{
    unsigned char hdr[0x280];
    char ver[256];
    uint16_t proto, ver_off;
    size_t n;
    int r;

    buf[0] = '\0';
    if (d->size < sizeof(hdr))
        return md_error(ctx, -ENOEXEC, "kernel '%s': not an x86 bzImage (only %llu bytes)", kernel,
                        (unsigned long long)d->size);
    r = md_data_read(d, hdr, sizeof(hdr), 0);
    if (r < 0)
        return md_error_errno(ctx, r, "kernel '%s': read", kernel);
    /* boot_flag 0xAA55 at 0x1FE, "HdrS" at 0x202 */
    if (hdr[0x1fe] != 0x55 || hdr[0x1ff] != 0xaa || memcmp(hdr + 0x202, "HdrS", 4) != 0)
        return md_error(ctx, -ENOEXEC,
                        "kernel '%s': not an x86 bzImage (no Linux boot header; an ELF vmlinux or "
                        "a compressed file will not boot)",
                        kernel);
    proto = (uint16_t)(hdr[0x206] | hdr[0x207] << 8);
    if (proto < 0x200)
        return md_error(ctx, -ENOEXEC, "kernel '%s': boot protocol %u.%02u is too old", kernel,
                        proto >> 8, proto & 0xff);
    /* loadflags bit 0: loaded high (a bzImage, not a zImage) */
    if (!(hdr[0x211] & 0x1))
        return md_error(ctx, -ENOEXEC, "kernel '%s': a zImage, not a bzImage", kernel);
    ver_off = (uint16_t)(hdr[0x20e] | hdr[0x20f] << 8);
    if (ver_off == 0 || (uint64_t)ver_off + 0x200 >= d->size)
        return md_error(ctx, -ENOEXEC, "kernel '%s': bzImage without a version string", kernel);
    memset(ver, 0, sizeof(ver));
    n = sizeof(ver) - 1;
    if ((uint64_t)ver_off + 0x200 + n > d->size)
        n = (size_t)(d->size - ver_off - 0x200);
    r = md_data_read(d, ver, n, (uint64_t)ver_off + 0x200);
    if (r < 0)
        return md_error_errno(ctx, r, "kernel '%s': read", kernel);
    /* "6.1.0-56-cloud-amd64 (debian-kernel@...) #1 SMP ..." */
    for (n = 0; ver[n] && !isspace((unsigned char)ver[n]); n++)
        if (!isprint((unsigned char)ver[n]))
            return md_error(ctx, -ENOEXEC, "kernel '%s': garbled version string", kernel);
    if (n == 0)
        return md_error(ctx, -ENOEXEC, "kernel '%s': empty version string", kernel);
    if (n >= size)
        n = size - 1;
    memcpy(buf, ver, n);
    buf[n] = '\0';
    return (int)n;
}

int md_kernel_release(md_ctx *ctx, const char *kernel, char *buf, size_t size)
{
    struct md_data d;
    struct stat st;
    int fd, r;

    if (!kernel || !buf || size == 0)
        return md_error(ctx, -EINVAL, "md_kernel_release: missing argument");
    buf[0] = '\0';
    fd = open(kernel, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return md_error_errno(ctx, -errno, "kernel '%s'", kernel);
    if (fstat(fd, &st) < 0) {
        r = md_error_errno(ctx, -errno, "kernel '%s'", kernel);
        close(fd);
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return md_error(ctx, -ENOEXEC, "kernel '%s': not a regular file", kernel);
    }
    memset(&d, 0, sizeof(d));
    d.fd = fd;
    d.own_fd = true;
    d.size = (uint64_t)st.st_size;
    d.name = kernel;
    r = md_kernel_release_data(ctx, kernel, &d, buf, size);
    md_data_close(&d);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Kernel modules                                                           */

void md_kmods_opts_init(md_kmods_opts *opts)
{
    static const md_kmods_opts def = MD_KMODS_OPTS_INIT;
    if (opts)
        *opts = def;
}

struct kmod_dep {
    char *name;  /* normalised: "virtio_blk" */
    char *path;  /* relative to the modules dir: "kernel/drivers/block/virtio_blk.ko" */
    char **deps; /* relative paths */
    size_t n_deps;
};

struct kmods {
    md_ctx *ctx;
    const char *dir;
    const char *release;
    struct kmod_dep *v;
    size_t n;
    char **builtin; /* normalised names */
    size_t n_builtin;
    char *alias_text; /* modules.alias, parsed lazily */
    char *config;     /* kernel .config text */
    char *list;       /* load list text */
    size_t list_len;
    md_tree *tree;
    int count;
};

/* A module name as the kernel spells it: '-' -> '_'. */
static char *normname(const char *name)
{
    char *s = md_strdup(name), *p;
    if (!s)
        return NULL;
    for (p = s; *p; p++)
        if (*p == '-')
            *p = '_';
    return s;
}

/* Module name from a path: basename without .ko[.xz|.zst|.gz], normalised. */
static char *modname_from_path(const char *path)
{
    const char *b = strrchr(path, '/');
    char *s = normname(b ? b + 1 : path), *dot;

    if (s && (dot = strstr(s, ".ko")))
        *dot = '\0';
    return s;
}

static void kmods_done(struct kmods *k)
{
    size_t i, j;

    for (i = 0; i < k->n; i++) {
        free(k->v[i].name);
        free(k->v[i].path);
        for (j = 0; j < k->v[i].n_deps; j++)
            free(k->v[i].deps[j]);
        free(k->v[i].deps);
    }
    free(k->v);
    for (i = 0; i < k->n_builtin; i++)
        free(k->builtin[i]);
    free(k->builtin);
    free(k->alias_text);
    free(k->config);
    free(k->list);
}

/* Read an optional file: -ENOENT is returned without a message. */
static int read_optional(md_ctx *ctx, const char *path, char **data)
{
    size_t size;
    int r;

    *data = NULL;
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return -ENOENT;
    r = md_read_file(ctx, path, data, &size);
    return r;
}

static int kmods_load_dep(struct kmods *k)
{
    char *path md_cleanup(md_freep) = NULL;
    char *text md_cleanup(md_freep) = NULL;
    char *line, *save = NULL;
    size_t lineno = 0;
    int r;

    path = md_asprintf("%s/modules.dep", k->dir);
    if (!path)
        return -ENOMEM;
    r = read_optional(k->ctx, path, &text);
    if (r == -ENOENT)
        return md_error(k->ctx, -ENOENT,
                        "modules directory '%s' has no modules.dep (run depmod, or point "
                        "--modules-dir at /lib/modules/RELEASE)",
                        k->dir);
    if (r < 0)
        return r;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct kmod_dep *d, *nv;
        char *colon, *tok, *s2 = NULL;

        lineno++;
        if (!*line || *line == '#')
            continue;
        colon = strchr(line, ':');
        if (!colon)
            return md_error(k->ctx, -EINVAL, "%s:%zu: no ':' in modules.dep line", path, lineno);
        *colon = '\0';
        if (k->n % 256 == 0) {
            nv = realloc(k->v, (k->n + 256) * sizeof(*nv));
            if (!nv)
                return -ENOMEM;
            k->v = nv;
        }
        d = &k->v[k->n];
        memset(d, 0, sizeof(*d));
        d->path = md_strdup(line);
        d->name = modname_from_path(line);
        k->n++;
        if (!d->path || !d->name)
            return -ENOMEM;
        for (tok = strtok_r(colon + 1, " \t", &s2); tok; tok = strtok_r(NULL, " \t", &s2)) {
            char **nd = realloc(d->deps, (d->n_deps + 1) * sizeof(*nd));
            if (!nd)
                return -ENOMEM;
            d->deps = nd;
            d->deps[d->n_deps] = md_strdup(tok);
            if (!d->deps[d->n_deps])
                return -ENOMEM;
            d->n_deps++;
        }
    }
    return 0;
}

static int kmods_load_builtin(struct kmods *k)
{
    char *path md_cleanup(md_freep) = NULL;
    char *text md_cleanup(md_freep) = NULL;
    char *line, *save = NULL;
    int r;

    path = md_asprintf("%s/modules.builtin", k->dir);
    if (!path)
        return -ENOMEM;
    r = read_optional(k->ctx, path, &text);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char **nv;
        if (!*line)
            continue;
        nv = realloc(k->builtin, (k->n_builtin + 1) * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        k->builtin = nv;
        k->builtin[k->n_builtin] = modname_from_path(line);
        if (!k->builtin[k->n_builtin])
            return -ENOMEM;
        k->n_builtin++;
    }
    return 0;
}

static const struct kmod_dep *kmods_find_name(const struct kmods *k, const char *name)
{
    size_t i;
    for (i = 0; i < k->n; i++)
        if (strcmp(k->v[i].name, name) == 0)
            return &k->v[i];
    return NULL;
}

static const struct kmod_dep *kmods_find_path(const struct kmods *k, const char *path)
{
    size_t i;
    for (i = 0; i < k->n; i++)
        if (strcmp(k->v[i].path, path) == 0)
            return &k->v[i];
    return NULL;
}

static bool kmods_is_builtin_list(const struct kmods *k, const char *name)
{
    size_t i;
    for (i = 0; i < k->n_builtin; i++)
        if (strcmp(k->builtin[i], name) == 0)
            return true;
    return false;
}

/* Module names whose Kconfig symbol is not CONFIG_<NAME>. */
static const struct {
    const char *name, *sym;
} kconfig_names[] = {
    { "ext4", "CONFIG_EXT4_FS" },
    { "ext2", "CONFIG_EXT2_FS" },
    { "ext3", "CONFIG_EXT3_FS" },
    { "jbd2", "CONFIG_JBD2" },
    { "mbcache", "CONFIG_FS_MBCACHE" },
    { "sd_mod", "CONFIG_BLK_DEV_SD" },
    { "sr_mod", "CONFIG_BLK_DEV_SR" },
    { "ahci", "CONFIG_SATA_AHCI" },
    { "libata", "CONFIG_ATA" },
    { "libahci", "CONFIG_SATA_AHCI" },
    { "scsi_mod", "CONFIG_SCSI" },
    { "scsi_common", "CONFIG_SCSI_COMMON" },
    { "virtio_scsi", "CONFIG_SCSI_VIRTIO" },
    { "virtio_pci_modern_dev", "CONFIG_VIRTIO_PCI_LIB" },
    { "virtio_pci_legacy_dev", "CONFIG_VIRTIO_PCI_LIB_LEGACY" },
    { "virtio_ring", "CONFIG_VIRTIO" },
    { "crc32c_generic", "CONFIG_CRYPTO_CRC32C" },
    { "loop", "CONFIG_BLK_DEV_LOOP" },
    { "e1000", "CONFIG_E1000" },
    { "vfat", "CONFIG_VFAT_FS" },
};

/* The value of @sym in the .config text: 'y', 'm' or 0 (unset/absent). */
char md_kconfig_value(const char *config, const char *sym)
{
    size_t len = strlen(sym);
    const char *p = config;

    while (p && *p) {
        if (strncmp(p, sym, len) == 0 && p[len] == '=')
            return p[len + 1] == 'y' ? 'y' : p[len + 1] == 'm' ? 'm' : 0;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return 0;
}

static char kmods_config_value(const struct kmods *k, const char *name)
{
    char sym[160];
    size_t i;

    if (!k->config)
        return 0;
    for (i = 0; i < sizeof(kconfig_names) / sizeof(kconfig_names[0]); i++)
        if (strcmp(kconfig_names[i].name, name) == 0)
            return md_kconfig_value(k->config, kconfig_names[i].sym);
    if (strlen(name) + 8 >= sizeof(sym))
        return 0;
    snprintf(sym, sizeof(sym), "CONFIG_%s", name);
    for (i = 7; sym[i]; i++)
        sym[i] = (char)toupper((unsigned char)sym[i]);
    return md_kconfig_value(k->config, sym);
}

/* First alias of modules.alias matching @name (exact words or a glob), or NULL. */
static char *kmods_alias(struct kmods *k, const char *name)
{
    char *path;
    const char *p;

    if (!k->dir)
        return NULL;
    if (!k->alias_text) {
        path = md_asprintf("%s/modules.alias", k->dir);
        if (!path || read_optional(k->ctx, path, &k->alias_text) < 0) {
            free(path);
            return NULL;
        }
        free(path);
    }
    for (p = k->alias_text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[512], pat[256], target[256];

        if (len < sizeof(line)) {
            memcpy(line, p, len);
            line[len] = '\0';
            if (sscanf(line, "alias %255s %255s", pat, target) == 2) {
                char *np = normname(pat);
                bool hit = np && fnmatch(np, name, 0) == 0;
                free(np);
                if (hit)
                    return normname(target);
            }
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

/* Is @path (relative to the modules dir) in the load list already?  The list
 * holds "/lib/modules/RELEASE/PATH" lines, PATH without compression suffix. */
static bool kmods_added(const struct kmods *k, const char *path)
{
    char *want, *comp;
    const char *p;
    size_t len;
    bool found = false;

    if (!k->list)
        return false;
    want = md_asprintf("/lib/modules/%s/%s", k->release, path);
    if (!want)
        return false;
    comp = strstr(want, ".ko");
    if (comp)
        comp[3] = '\0';
    len = strlen(want);
    for (p = k->list; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, want, len) == 0 && (p[len] == '\n' || p[len] == '\0')) {
            found = true;
            break;
        }
    free(want);
    return found;
}

/* Decompress @host (any filter libarchive reads) into memory. */
static int decompress_file(md_ctx *ctx, const char *host, void **data, size_t *size)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int r;

    if (!a)
        return -ENOMEM;
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    if (archive_read_open_filename(a, host, 65536) != ARCHIVE_OK ||
        archive_read_next_header(a, &ae) != ARCHIVE_OK) {
        r = md_error(ctx, -EINVAL, "module '%s': cannot decompress: %s", host,
                     archive_error_string(a) ? archive_error_string(a) : "unknown error");
        archive_read_free(a);
        return r;
    }
    for (;;) {
        la_ssize_t n;
        if (cap - len < 65536) {
            char *nb = realloc(buf, cap + (cap ? cap : 262144));
            if (!nb) {
                free(buf);
                archive_read_free(a);
                return -ENOMEM;
            }
            buf = nb;
            cap += cap ? cap : 262144;
        }
        n = archive_read_data(a, buf + len, cap - len);
        if (n < 0) {
            r = md_error(ctx, -EINVAL, "module '%s': cannot decompress: %s", host,
                         archive_error_string(a) ? archive_error_string(a) : "unknown error");
            free(buf);
            archive_read_free(a);
            return r;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    archive_read_free(a);
    *data = buf;
    *size = len;
    return 0;
}

static int kmods_list_append(struct kmods *k, const char *line)
{
    size_t n = strlen(line);
    char *nl = realloc(k->list, k->list_len + n + 2);
    if (!nl)
        return -ENOMEM;
    k->list = nl;
    memcpy(k->list + k->list_len, line, n);
    k->list[k->list_len + n] = '\n';
    k->list_len += n + 1;
    k->list[k->list_len] = '\0';
    return 0;
}

static int kmods_add_module(struct kmods *k, const struct kmod_dep *d, unsigned depth)
{
    char *host md_cleanup(md_freep) = NULL;
    char *dest md_cleanup(md_freep) = NULL;
    char *comp;
    size_t i;
    int r;

    if (kmods_added(k, d->path))
        return 0;
    if (depth > 64)
        return md_error(k->ctx, -ELOOP, "module '%s': dependency loop in modules.dep", d->name);
    for (i = 0; i < d->n_deps; i++) {
        const struct kmod_dep *dd = kmods_find_path(k, d->deps[i]);
        if (!dd)
            return md_error(k->ctx, -EINVAL, "%s/modules.dep: '%s' depends on '%s', which has no line",
                            k->dir, d->path, d->deps[i]);
        r = kmods_add_module(k, dd, depth + 1);
        if (r < 0)
            return r;
    }
    if (kmods_added(k, d->path)) /* a dependency cycle brought it in */
        return 0;

    host = md_asprintf("%s/%s", k->dir, d->path);
    dest = md_asprintf("lib/modules/%s/%s", k->release, d->path);
    if (!host || !dest)
        return -ENOMEM;
    comp = strstr(dest, ".ko");
    if (comp && comp[3] != '\0') {
        void *data = NULL;
        size_t size = 0;
        comp[3] = '\0'; /* store as plain .ko */
        r = decompress_file(k->ctx, host, &data, &size);
        if (r < 0)
            return r;
        r = md_tree_add_data(k->tree, dest, data, size, NULL);
        free(data);
    } else {
        r = md_tree_add_file(k->tree, dest, host, NULL);
    }
    if (r < 0) {
        md_error_prefix(k->ctx, "module '%s'", d->name);
        return r;
    }
    {
        char *abs = md_asprintf("/%s", dest);
        if (!abs)
            return -ENOMEM;
        r = kmods_list_append(k, abs);
        free(abs);
        if (r < 0)
            return r;
    }
    md_dbg(k->ctx, "kmods: added %s", dest);
    k->count++;
    return 0;
}

static int kmods_resolve(struct kmods *k, const char *name, uint32_t flags, unsigned depth)
{
    const struct kmod_dep *d;
    char cv;
    char *alias;
    int r;

    if (kmods_is_builtin_list(k, name)) {
        md_dbg(k->ctx, "kmods: %s is built in (modules.builtin)", name);
        return 0;
    }
    cv = kmods_config_value(k, name);
    if (cv == 'y') {
        md_dbg(k->ctx, "kmods: %s is built in (kernel config)", name);
        return 0;
    }
    d = k->dir ? kmods_find_name(k, name) : NULL;
    if (d)
        return kmods_add_module(k, d, 0);
    if (depth == 0) {
        alias = kmods_alias(k, name);
        if (alias) {
            md_dbg(k->ctx, "kmods: %s is an alias of %s", name, alias);
            r = kmods_resolve(k, alias, flags, depth + 1);
            free(alias);
            return r;
        }
    }
    if (flags & MD_KMODS_OPTIONAL) {
        md_dbg(k->ctx, "kmods: optional %s not available; skipped", name);
        return 0;
    }
    if (cv == 'm')
        return md_error(k->ctx, -ENOENT,
                        "driver '%s' is a module of kernel %s (=m in its config) but %s",
                        name, k->release ? k->release : "?",
                        k->dir ? "the modules directory does not have it"
                               : "no modules directory was given (--modules-dir)");
    if (!k->dir && !k->config)
        return md_error(k->ctx, -ENOENT,
                        "driver '%s': cannot tell whether kernel %s has it built in: no modules "
                        "directory and no kernel config (give --modules-dir or --kernel-config)",
                        name, k->release ? k->release : "?");
    return md_error(k->ctx, -ENOENT,
                    "driver '%s' is neither built into kernel %s nor available as a module%s%s",
                    name, k->release ? k->release : "?", k->dir ? " in " : "",
                    k->dir ? k->dir : "");
}

int md_tree_add_kmods(md_tree *tree, const char *modules_dir, const char *const *names,
                      const md_kmods_opts *opts)
{
    md_kmods_opts o = MD_KMODS_OPTS_INIT;
    struct kmods k;
    char *rel = NULL;
    struct md_entry *e;
    size_t i;
    int r;

    if (!tree)
        return -EINVAL;
    if (opts) {
        r = md_check_version(tree->ctx, "md_kmods_opts", opts->version, MD_KMODS_OPTS_VERSION);
        if (r < 0)
            return r;
        o = *opts;
    }
    if (!names || !names[0])
        return 0;
    memset(&k, 0, sizeof(k));
    k.ctx = tree->ctx;
    k.tree = tree;
    k.dir = modules_dir && *modules_dir ? modules_dir : NULL;
    if (o.release) {
        k.release = o.release;
    } else if (k.dir) {
        const char *b;
        size_t len = strlen(k.dir);
        rel = md_strdup(k.dir);
        if (!rel)
            return -ENOMEM;
        while (len > 1 && rel[len - 1] == '/')
            rel[--len] = '\0';
        b = strrchr(rel, '/');
        k.release = b ? b + 1 : rel;
    }
    if (k.dir && !k.release[0]) {
        r = md_error(k.ctx, -EINVAL, "cannot tell the kernel release from modules directory '%s'",
                     k.dir);
        goto out;
    }
    if (k.dir) {
        struct stat st;
        if (stat(k.dir, &st) < 0) {
            r = md_error_errno(k.ctx, -errno, "modules directory '%s'", k.dir);
            goto out;
        }
        r = kmods_load_dep(&k);
        if (r < 0)
            goto out;
        r = kmods_load_builtin(&k);
        if (r < 0)
            goto out;
    }
    if (o.kernel_config) {
        size_t size;
        r = md_read_file(k.ctx, o.kernel_config, &k.config, &size);
        if (r < 0) {
            md_error_prefix(k.ctx, "kernel config");
            goto out;
        }
    }

    /* Start from the existing list so that several calls accumulate. */
    e = md_tree_lookup(tree, MD_KMODS_LOAD_LIST);
    if (e && !e->removed && S_ISREG(e->mode) && e->src == MD_SRC_BUF && e->size) {
        const char *p = e->buf, *end = p + e->size;
        r = 0;
        while (p < end && r >= 0) {
            const char *eol = memchr(p, '\n', (size_t)(end - p));
            size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
            char *line = strndup(p, len);
            if (!line) {
                r = -ENOMEM;
                break;
            }
            r = kmods_list_append(&k, line);
            free(line);
            p += len + 1;
        }
        if (r < 0)
            goto out;
    }

    for (i = 0; names[i]; i++) {
        char *n = normname(names[i]);
        if (!n) {
            r = -ENOMEM;
            goto out;
        }
        if (!*n || strchr(n, '/')) {
            r = md_error(k.ctx, -EINVAL, "'%s' is not a module name", names[i]);
            free(n);
            goto out;
        }
        r = kmods_resolve(&k, n, o.flags, 0);
        free(n);
        if (r < 0)
            goto out;
    }
    if (k.count > 0) {
        md_attr a = MD_ATTR_INIT;
        a.mode = 0644;
        r = md_tree_add_data(tree, MD_KMODS_LOAD_LIST, k.list, k.list_len, &a);
        if (r < 0)
            goto out;
    }
    r = k.count;
out:
    kmods_done(&k);
    free(rel);
    return r;
}

