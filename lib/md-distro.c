/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The distro module: kernel release probing, kernel module resolution
 * (modules.dep / modules.builtin / modules.alias / .config), the minidistro
 * system files (/init, /etc) and the one-call image builder.
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

int md_kernel_release(md_ctx *ctx, const char *kernel, char *buf, size_t size)
{
    unsigned char hdr[0x280];
    char ver[256];
    uint16_t proto, ver_off;
    int fd md_cleanup(md_closep) = -1;
    struct stat st;
    size_t n;
    int r;

    if (!kernel || !buf || size == 0)
        return md_error(ctx, -EINVAL, "md_kernel_release: missing argument");
    buf[0] = '\0';
    fd = open(kernel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return md_error_errno(ctx, -errno, "kernel '%s'", kernel);
    if (fstat(fd, &st) < 0)
        return md_error_errno(ctx, -errno, "kernel '%s'", kernel);
    if (!S_ISREG(st.st_mode))
        return md_error(ctx, -ENOEXEC, "kernel '%s': not a regular file", kernel);
    if ((uint64_t)st.st_size < sizeof(hdr))
        return md_error(ctx, -ENOEXEC, "kernel '%s': not an x86 bzImage (only %lld bytes)", kernel,
                        (long long)st.st_size);
    r = md_pread_full(fd, hdr, sizeof(hdr), 0);
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
    if (ver_off == 0 || (uint64_t)ver_off + 0x200 >= (uint64_t)st.st_size)
        return md_error(ctx, -ENOEXEC, "kernel '%s': bzImage without a version string", kernel);
    memset(ver, 0, sizeof(ver));
    r = md_pread_full(fd, ver, sizeof(ver) - 1, (uint64_t)ver_off + 0x200);
    if (r < 0 && r != -EIO)
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
static char kconfig_value(const char *config, const char *sym)
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
            return kconfig_value(k->config, kconfig_names[i].sym);
    if (strlen(name) + 8 >= sizeof(sym))
        return 0;
    snprintf(sym, sizeof(sym), "CONFIG_%s", name);
    for (i = 7; sym[i]; i++)
        sym[i] = (char)toupper((unsigned char)sym[i]);
    return kconfig_value(k->config, sym);
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

/* ------------------------------------------------------------------------ */
/* The system files                                                         */

/* /init of the initramfs.  It runs as PID 1 from the initramfs in both root
 * modes: without root= on the command line it hands over to BusyBox init in
 * the initramfs; with root= it mounts that filesystem and switch_roots.
 * Everything it prints starts with "minidistro:" so tests can match it. */
static const char init_script[] =
    "#!/bin/sh\n"
    "# minidistro /init (generated by libminidistro)\n"
    "export PATH=/sbin:/bin:/usr/sbin:/usr/bin\n"
    "mount -t proc proc /proc\n"
    "mount -t sysfs sysfs /sys\n"
    "mount -t devtmpfs devtmpfs /dev 2>/dev/null\n"
    "echo \"minidistro: Linux $(uname -r) $(uname -m)\"\n"
    "if [ -f /" MD_KMODS_LOAD_LIST " ]; then\n"
    "    while read -r m; do\n"
    "        [ -n \"$m\" ] || continue\n"
    "        insmod \"$m\" 2>/dev/null || echo \"minidistro: cannot load module $m\"\n"
    "    done < /" MD_KMODS_LOAD_LIST "\n"
    "fi\n"
    "root=\n"
    "for arg in $(cat /proc/cmdline); do\n"
    "    case $arg in root=*) root=${arg#root=} ;; esac\n"
    "done\n"
    "rescue() {\n"
    "    echo \"minidistro: $*; starting a rescue shell (exit to power off)\"\n"
    "    echo \"minidistro: block devices: $(ls /sys/class/block 2>/dev/null | tr '\\n' ' ')\"\n"
    "    setsid cttyhack sh\n"
    "    poweroff -f\n"
    "}\n"
    "case $root in\n"
    "''|initramfs|/dev/ram0)\n"
    "    echo \"minidistro: root is the initramfs\"\n"
    "    exec /sbin/init ;;\n"
    "esac\n"
    "dev=\n"
    "i=0\n"
    "while [ -z \"$dev\" ]; do\n"
    "    case $root in\n"
    "    LABEL=*|UUID=*) dev=$(findfs \"$root\" 2>/dev/null) ;;\n"
    "    /dev/*) [ -b \"$root\" ] && dev=$root ;;\n"
    "    *) rescue \"unsupported root=$root (use LABEL=, UUID= or /dev/NAME)\" ;;\n"
    "    esac\n"
    "    [ -n \"$dev\" ] && break\n"
    "    i=$((i + 1))\n"
    "    [ $i -le 300 ] || rescue \"root device $root not found after 30 s\"\n"
    "    sleep 0.1\n"
    "done\n"
    "mkdir -p /newroot\n"
    "mount -t ext4 -o rw \"$dev\" /newroot || rescue \"cannot mount $dev ($root)\"\n"
    "[ -x /newroot/sbin/init ] || rescue \"$dev has no /sbin/init\"\n"
    "echo \"minidistro: root is $dev ($root)\"\n"
    "for fs in dev proc sys; do\n"
    "    mkdir -p /newroot/$fs\n"
    "    mount --move /$fs /newroot/$fs\n"
    "done\n"
    "exec switch_root /newroot /sbin/init\n";

static const char rcs_script[] =
    "#!/bin/sh\n"
    "# minidistro system start (generated by libminidistro)\n"
    "export PATH=/sbin:/bin:/usr/sbin:/usr/bin\n"
    "mounted() { grep -q \" $1 \" /proc/mounts 2>/dev/null; }\n"
    "mounted /proc || mount -t proc proc /proc\n"
    "mounted /sys || mount -t sysfs sysfs /sys\n"
    "mounted /dev || mount -t devtmpfs devtmpfs /dev\n"
    "mkdir -p /dev/pts\n"
    "mounted /dev/pts || mount -t devpts devpts /dev/pts 2>/dev/null\n"
    "mount -o remount,rw / 2>/dev/null\n"
    "[ -f /etc/hostname ] && hostname -F /etc/hostname\n"
    "for f in /etc/init.d/S*; do [ -x \"$f\" ] && \"$f\" start; done\n"
    "exit 0\n";

static const char inittab[] =
    "# BusyBox init (generated by libminidistro)\n"
    "::sysinit:/etc/init.d/rcS\n"
    "# a login shell on the kernel console (console=ttyS0), with job control\n"
    "::respawn:/bin/cttyhack /bin/sh -l\n"
    "::ctrlaltdel:/sbin/reboot\n"
    "::shutdown:/bin/sync\n"
    "::shutdown:/bin/mount -o remount,ro /\n"
    "::shutdown:/bin/umount -a -r 2>/dev/null\n";

static const char fstab[] =
    "# <fs> <mountpoint> <type> <options> <dump> <pass>\n"
    "proc /proc proc defaults 0 0\n"
    "sysfs /sys sysfs defaults 0 0\n"
    "devtmpfs /dev devtmpfs defaults 0 0\n"
    "devpts /dev/pts devpts defaults 0 0\n";

static const char profile[] =
    "# minidistro (generated by libminidistro)\n"
    "export PATH=/sbin:/bin:/usr/sbin:/usr/bin\n"
    "export HOME=/root\n"
    "export PS1='\\u@\\h:\\w\\$ '\n"
    "umask 022\n"
    "alias ll='ls -l'\n";

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
static const char group[] = "root:x:0:\nnogroup:x:65534:\n";
static const char shadow[] = "root::1:0:99999:7:::\nnobody:*:1:0:99999:7:::\n";

static int add_text(md_tree *tree, const char *path, const char *text, uint32_t mode)
{
    md_attr a = MD_ATTR_INIT;
    a.mode = mode;
    return md_tree_add_data(tree, path, text, strlen(text), &a);
}

static int valid_hostname(const char *h)
{
    size_t i, n = strlen(h);
    if (n == 0 || n > 63 || h[0] == '-' || h[0] == '.')
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.')
            return 0;
    return 1;
}

int md_tree_add_distro_files(md_tree *tree, const char *hostname)
{
    static const char *const dirs[] = { "dev", "proc", "sys", "root", "etc", "etc/init.d",
                                        "newroot", "mnt", "var", "var/log", "run",
                                        "usr/bin", "usr/sbin", "boot", NULL };
    char *h = NULL;
    md_attr a = MD_ATTR_INIT;
    size_t i;
    int r;

    if (!tree)
        return -EINVAL;
    if (!hostname)
        hostname = "minidistro";
    if (!valid_hostname(hostname))
        return md_error(tree->ctx, -EINVAL,
                        "hostname '%s': use 1-63 letters, digits, '-' and '.'", hostname);
    /* Directories another source (BusyBox) made keep their modes. */
    for (i = 0; dirs[i]; i++) {
        if (md_tree_contains(tree, dirs[i]) == 1)
            continue;
        a.mode = strcmp(dirs[i], "root") == 0 ? 0700 : 0755;
        r = md_tree_add_dir(tree, dirs[i], &a);
        if (r < 0)
            return r;
    }
    a.mode = 01777;
    r = md_tree_add_dir(tree, "tmp", &a);
    if (r < 0)
        return r;
    h = md_asprintf("%s\n", hostname);
    if (!h)
        return -ENOMEM;
    r = add_text(tree, "etc/hostname", h, 0644);
    free(h);
    if (r < 0)
        return r;
    if ((r = add_text(tree, "init", init_script, 0755)) < 0 ||
        (r = add_text(tree, "etc/init.d/rcS", rcs_script, 0755)) < 0 ||
        (r = add_text(tree, "etc/inittab", inittab, 0644)) < 0 ||
        (r = add_text(tree, "etc/fstab", fstab, 0644)) < 0 ||
        (r = add_text(tree, "etc/profile", profile, 0644)) < 0 ||
        (r = add_text(tree, "etc/passwd", passwd, 0644)) < 0 ||
        (r = add_text(tree, "etc/group", group, 0644)) < 0 ||
        (r = add_text(tree, "etc/shadow", shadow, 0600)) < 0 ||
        (r = add_text(tree, "etc/issue", "minidistro \\r (\\l)\n\n", 0644)) < 0)
        return r;
    /* BusyBox's applet list has sbin/init; add it anyway for other sources. */
    if (md_tree_contains(tree, "sbin/init") != 1) {
        r = md_tree_add_symlink(tree, "sbin/init", "../bin/busybox", NULL);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The one-call builder                                                     */

void md_distro_opts_init(md_distro_opts *opts)
{
    static const md_distro_opts def = MD_DISTRO_OPTS_INIT;
    if (opts)
        *opts = def;
}

#define MIB (1024ull * 1024ull)

/* Drivers /init needs to mount an ext4 root on QEMU's virtio disk. */
static const char *const disk_drivers[] = { "virtio_pci", "virtio_blk", "ext4", NULL };

#define N_PHASES 6

struct build {
    md_ctx *ctx;
    const md_distro_opts *o;
    char release[128];
    char *kernel_config;   /* owned */
    char *modules_dir;     /* owned */
    md_disk *disk;         /* the image description */
    md_tree *tree;         /* the root filesystem's tree, owned by disk */
    int root_fs;           /* its index in disk */
    md_tmpfile initrd;     /* the initramfs, under a temporary name (initrd.tmp_path) */
    md_extlinux_config *cfg;
    uint32_t phase;
};

static int phase_done(struct build *b, const char *what)
{
    b->phase++;
    md_info(b->ctx, "distro: %s done (%u/%u)", what, b->phase, N_PHASES);
    if (b->o->progress && b->o->progress(b->o->userdata, b->phase, N_PHASES) != 0)
        return md_error(b->ctx, -ECANCELED, "cancelled after: %s", what);
    return 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return md_strdup(".");
    if (slash == path)
        return md_strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The kernel's .config and modules directory, from the options or next to
 * the kernel: scripts/build-kernel leaves "config" beside its bzImage,
 * Debian has /boot/config-RELEASE and /lib/modules/RELEASE. */
static int find_kernel_extras(struct build *b)
{
    const md_distro_opts *o = b->o;
    char *dir;

    if (o->kernel_config) {
        if (!is_file(o->kernel_config))
            return md_error(b->ctx, -ENOENT, "kernel config '%s': no such file", o->kernel_config);
        b->kernel_config = md_strdup(o->kernel_config);
        if (!b->kernel_config)
            return -ENOMEM;
    } else {
        dir = dir_of(o->kernel);
        if (!dir)
            return -ENOMEM;
        b->kernel_config = md_asprintf("%s/config", dir);
        free(dir);
        if (!b->kernel_config)
            return -ENOMEM;
        if (!is_file(b->kernel_config)) {
            free(b->kernel_config);
            b->kernel_config = md_asprintf("/boot/config-%s", b->release);
            if (!b->kernel_config)
                return -ENOMEM;
            if (!is_file(b->kernel_config)) {
                free(b->kernel_config);
                b->kernel_config = NULL;
            }
        }
    }
    if (o->modules_dir) {
        if (!is_dir(o->modules_dir))
            return md_error(b->ctx, -ENOENT, "modules directory '%s': no such directory",
                            o->modules_dir);
        b->modules_dir = md_strdup(o->modules_dir);
        if (!b->modules_dir)
            return -ENOMEM;
    } else {
        b->modules_dir = md_asprintf("/lib/modules/%s", b->release);
        if (!b->modules_dir)
            return -ENOMEM;
        if (!is_file(b->modules_dir) && !is_dir(b->modules_dir)) {
            free(b->modules_dir);
            b->modules_dir = NULL;
        }
    }
    md_dbg(b->ctx, "distro: kernel %s, release %s, config %s, modules %s", o->kernel, b->release,
           b->kernel_config ? b->kernel_config : "(none)",
           b->modules_dir ? b->modules_dir : "(none)");
    return 0;
}

static int build_tree(struct build *b)
{
    const md_distro_opts *o = b->o;
    md_busybox_opts bo = MD_BUSYBOX_OPTS_INIT;
    md_kmods_opts ko = MD_KMODS_OPTS_INIT;
    size_t i;
    int r;

    bo.flags = MD_BUSYBOX_NO_INIT;
    r = md_tree_add_busybox(b->tree, o->busybox ? o->busybox : "/bin/busybox", &bo);
    if (r < 0)
        return r;
    r = md_tree_add_distro_files(b->tree, o->hostname);
    if (r < 0)
        return r;
    ko.kernel_config = b->kernel_config;
    ko.release = b->release;
    if (o->root == MD_DISTRO_ROOT_DISK && !(o->flags & MD_DISTRO_NO_MODULES)) {
        r = md_tree_add_kmods(b->tree, b->modules_dir, disk_drivers, &ko);
        if (r < 0) {
            md_error_prefix(b->ctx, "--root disk needs the virtio disk and ext4 drivers");
            return r;
        }
    }
    if (o->modules && o->modules[0]) {
        r = md_tree_add_kmods(b->tree, b->modules_dir, o->modules, &ko);
        if (r < 0)
            return r;
    }
    for (i = 0; o->overlays && o->overlays[i]; i++) {
        md_host_opts ho = MD_HOST_OPTS_INIT;

        /* an overlay's contents go over the system; "/" stays 0755 root */
        ho.flags = MD_HOST_NO_ROOT;
        r = md_tree_add_host(b->tree, o->overlays[i], &ho);
        if (r < 0) {
            md_error_prefix(b->ctx, "overlay '%s'", o->overlays[i]);
            return r;
        }
    }
    return 0;
}

static int write_initramfs(struct build *b)
{
    md_cpio_opts co = MD_CPIO_OPTS_INIT;
    int r;

    co.compression = b->o->compression;
    if (co.compression == MD_DISTRO_COMPRESS_AUTO) {
        char *cfg = NULL;
        size_t n;
        co.compression = MD_COMPRESS_GZIP;
        if (b->kernel_config && md_read_file(b->ctx, b->kernel_config, &cfg, &n) == 0 &&
            kconfig_value(cfg, "CONFIG_RD_ZSTD") == 'y')
            co.compression = MD_COMPRESS_ZSTD;
        free(cfg);
        md_ctx_clear_error(b->ctx);
    }
    md_dbg(b->ctx, "distro: initramfs compression %s", md_compress_name(co.compression));
    /* Written under a temporary name next to where it goes (the requested
     * path, or next to the image), published only when the image is. */
    {
        char *p = b->o->initramfs_output ? md_strdup(b->o->initramfs_output)
                                         : md_asprintf("%s.initramfs", b->o->output);
        if (!p)
            return -ENOMEM;
        r = md_tmpfile_open(b->ctx, &b->initrd, p, true);
        free(p);
    }
    if (r < 0)
        return r;
    return md_cpio_write_fd(b->tree, b->initrd.fd, &co);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static double mib(uint64_t n)
{
    return (double)n / (double)MIB;
}

/* A clear message before libext2fs says something vaguer: payload plus the
 * filesystem's own overhead (journal, inode tables, ~12 %) and the 1 MiB
 * before the first partition must fit. */
static int check_size(struct build *b, uint64_t size)
{
    uint64_t kernel = file_size(b->o->kernel), initrd = file_size(b->initrd.tmp_path);
    uint64_t files = 0, need;
    size_t i;
    int r;

    r = md_tree_finalize(b->tree);
    if (r < 0)
        return r;
    for (i = 0; i < b->tree->n; i++) {
        const struct md_entry *e = b->tree->v[i];
        if (e->removed)
            continue;
        files += 512; /* an inode's share and a directory entry, roughly */
        if (S_ISREG(e->mode) && !e->master)
            files += (e->size + 4095) & ~4095ull; /* 4 KiB blocks, see make_fs() */
    }
    /* 1 MiB before the partition, the boot files (kernel and initramfs are
     * rounded up too), EXTLINUX, the 4 MiB journal mke2fs gives a small
     * ext4, and ~1/8 for inode tables, bitmaps and directories. */
    need = MIB + ((kernel + 4095) & ~4095ull) + ((initrd + 4095) & ~4095ull) + files +
           256 * 1024 + 4 * MIB;
    need += need / 8 + MIB;
    if (size < need)
        return md_error(b->ctx, -ENOSPC,
                        "image size %.1f MiB is too small: kernel %.1f MiB + initramfs %.1f MiB + "
                        "root files %.1f MiB + boot loader and filesystem overhead need about "
                        "%.0f MiB (use --size %lluM or more)",
                        mib(size), mib(kernel), mib(initrd), mib(files), mib(need) + 0.5,
                        (unsigned long long)((need + MIB - 1) / MIB));
    return 0;
}

/* The image: one bootable Linux partition with an ext4 root filesystem
 * labelled MD_DISTRO_ROOT_LABEL, whose tree the system is built into. */
static int describe_image(struct build *b, uint64_t size)
{
    const md_distro_opts *o = b->o;
    md_table_opts to = MD_TABLE_OPTS_INIT;
    md_part_opts po = MD_PART_OPTS_INIT;
    md_ext_format_opts fo = MD_EXT_FORMAT_OPTS_INIT;
    int r;

    if ((r = md_disk_new(b->ctx, &b->disk)) < 0 || (r = md_disk_set_size(b->disk, size)) < 0)
        return r;
    to.type = o->table;
    po.flags = MD_PART_BOOTABLE;
    if (o->table == MD_TABLE_GPT)
        po.name = "minidistro";
    if ((r = md_disk_set_table(b->disk, &to)) < 0 || (r = md_disk_add_partition(b->disk, &po)) < 0)
        return r;
    fo.fs_type = MD_EXT4;
    /* 4 KiB blocks: one block group up to 128 MiB, so /boot/vmlinuz and the
     * initramfs are a few long extents and EXTLINUX reads them through the
     * BIOS in few, large requests (mke2fs would pick 1 KiB for < 512 MiB). */
    fo.block_size = 4096;
    fo.label = MD_DISTRO_ROOT_LABEL;
    r = md_disk_add_ext(b->disk, 1, &fo, &b->tree);
    if (r < 0)
        return r;
    b->root_fs = r;
    return 0;
}

/* The kernel and initramfs go in /boot of the root filesystem, where
 * EXTLINUX loads them from and where the booted system can see them. */
static int add_boot_files(struct build *b)
{
    md_attr a = MD_ATTR_INIT;
    int r;

    a.mode = 0644;
    r = md_tree_add_file(b->tree, "boot/vmlinuz", b->o->kernel, &a);
    if (r < 0)
        return r;
    return md_tree_add_file(b->tree, "boot/initramfs.img", b->initrd.tmp_path, &a);
}

static int add_bootloader(struct build *b)
{
    const md_distro_opts *o = b->o;
    md_extlinux_opts xo = MD_EXTLINUX_OPTS_INIT;
    const char *text;
    char *append;
    int r;

    r = md_extlinux_config_new(b->ctx, &b->cfg);
    if (r < 0)
        return r;
    append = md_asprintf("console=ttyS0 panic=-1 quiet%s%s%s",
                         o->root == MD_DISTRO_ROOT_DISK ? " root=LABEL=" MD_DISTRO_ROOT_LABEL : "",
                         o->append && *o->append ? " " : "", o->append ? o->append : "");
    if (!append)
        return -ENOMEM;
    if ((r = md_extlinux_config_set_serial(b->cfg, 0, 115200)) < 0 ||
        (r = md_extlinux_config_set_timeout(b->cfg, 0)) < 0 ||
        (r = md_extlinux_config_add_entry(b->cfg, "minidistro", "/boot/vmlinuz",
                                          "/boot/initramfs.img", append)) < 0 ||
        (r = md_extlinux_config_render(b->cfg, &text)) < 0) {
        free(append);
        return r;
    }
    free(append);
    xo.config_text = text;
    return md_disk_set_extlinux(b->disk, (uint32_t)b->root_fs, &xo);
}

static int write_image(struct build *b)
{
    md_disk_write_opts wo = MD_DISK_WRITE_OPTS_INIT;
    int r;

    if (b->o->flags & MD_DISTRO_FORCE)
        wo.flags |= MD_DISK_FORCE;
    r = md_disk_write(b->disk, b->o->output, &wo);
    if (r == -ENOSPC)
        md_error_prefix(b->ctx, "image size %.1f MiB is too small (use a larger --size)",
                        mib(md_disk_size(b->disk)));
    return r;
}

/* The initramfs copy is published only together with the image: if it
 * cannot be, the image goes too. */
static int publish_initramfs(struct build *b)
{
    int r;

    if (!b->o->initramfs_output)
        return 0;
    r = md_tmpfile_publish(b->ctx, &b->initrd);
    if (r < 0)
        unlink(b->o->output);
    return r;
}

int md_distro_build(md_ctx *ctx, const md_distro_opts *opts)
{
    struct build b;
    uint64_t size;
    int r;

    if (!ctx)
        return -EINVAL;
    if (!opts)
        return md_error(ctx, -EINVAL, "md_distro_build: options are required (output, kernel)");
    r = md_check_version(ctx, "md_distro_opts", opts->version, MD_DISTRO_OPTS_VERSION);
    if (r < 0)
        return r;
    if (!opts->output || !*opts->output)
        return md_error(ctx, -EINVAL, "no output image given");
    if (!opts->kernel || !*opts->kernel)
        return md_error(ctx, -EINVAL, "no kernel given (a bzImage, e.g. /boot/vmlinuz-RELEASE)");
    if (opts->root > MD_DISTRO_ROOT_DISK)
        return md_error(ctx, -EINVAL, "unknown root mode %u", opts->root);
    if (opts->table != MD_TABLE_MBR && opts->table != MD_TABLE_GPT)
        return md_error(ctx, -EINVAL, "unknown partition table type %u", opts->table);
    if (opts->compression != MD_DISTRO_COMPRESS_AUTO && !md_compress_name(opts->compression))
        return md_error(ctx, -EINVAL, "unknown initramfs compression %d", opts->compression);
    if (opts->flags & ~(MD_DISTRO_FORCE | MD_DISTRO_NO_MODULES))
        return md_error(ctx, -EINVAL, "unknown flags 0x%x", opts->flags);
    size = opts->size ? opts->size : 64 * MIB;
    if (size % 512)
        return md_error(ctx, -EINVAL, "image size %llu is not a multiple of 512 bytes",
                        (unsigned long long)size);
    if (!(opts->flags & MD_DISTRO_FORCE) && access(opts->output, F_OK) == 0)
        return md_error(ctx, -EEXIST, "'%s' exists (use --force to replace it)", opts->output);

    memset(&b, 0, sizeof(b));
    b.ctx = ctx;
    b.o = opts;
    b.initrd.fd = -1;

    r = md_kernel_release(ctx, opts->kernel, b.release, sizeof(b.release));
    if (r < 0 || (r = find_kernel_extras(&b)) < 0 || (r = phase_done(&b, "kernel check")) < 0)
        goto out;
    if ((r = describe_image(&b, size)) < 0 || (r = build_tree(&b)) < 0 ||
        (r = phase_done(&b, "system tree")) < 0)
        goto out;
    if ((r = write_initramfs(&b)) < 0 || (r = check_size(&b, size)) < 0 ||
        (r = phase_done(&b, "initramfs")) < 0)
        goto out;
    if ((r = add_boot_files(&b)) < 0 || (r = add_bootloader(&b)) < 0 ||
        (r = phase_done(&b, "image description")) < 0)
        goto out;
    if ((r = write_image(&b)) < 0)
        goto out;
    if ((r = phase_done(&b, "disk image")) < 0) {
        unlink(opts->output);
        goto out;
    }
    if ((r = publish_initramfs(&b)) < 0)
        goto out;
    /* everything is published: the last report cannot cancel */
    (void)phase_done(&b, "done");
    md_ctx_clear_error(ctx);
    r = 0;
out:
    md_disk_free(b.disk);
    md_extlinux_config_free(b.cfg);
    md_tmpfile_discard(&b.initrd);
    free(b.kernel_config);
    free(b.modules_dir);
    return r < 0 ? r : 0;
}
