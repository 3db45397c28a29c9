/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * extlinux.conf for the EXTLINUX installer (see md-extlinux.c): the
 * structured builder md_extlinux_config_*, and the scanner that lists the
 * files a config refers to, so that the install can check they exist and
 * fill their holes.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "md-extlinux-internal.h"
#include "md-internal.h"

/* ---- config files -------------------------------------------------------- */

void md_extlinux_refs_free(struct md_sl_ref *refs, size_t n)
{
    size_t i;
    for (i = 0; refs && i < n; i++)
        free(refs[i].path);
    free(refs);
}

static int add_ref(struct md_sl_ref **refs, size_t *n, const char *s, size_t len, unsigned line,
                   const char *what)
{
    struct md_sl_ref *v;
    if (!len)
        return 0;
    v = realloc(*refs, (*n + 1) * sizeof(**refs));
    if (!v)
        return -ENOMEM;
    *refs = v;
    v[*n].path = strndup(s, len);
    if (!v[*n].path)
        return -ENOMEM;
    v[*n].line = line;
    v[*n].what = what;
    (*n)++;
    return 0;
}

/* Add each element of a comma separated list ending at whitespace/end. */
static int add_ref_list(struct md_sl_ref **refs, size_t *n, const char *s, unsigned line,
                        const char *what)
{
    for (;;) {
        size_t len = strcspn(s, ", \t\r\n");
        int r = add_ref(refs, n, s, len, line, what);
        if (r < 0)
            return r;
        s += len;
        if (*s != ',')
            return 0;
        s++;
    }
}

/*
 * The files a config refers to: KERNEL/LINUX (skipping com32 modules and
 * other boot types), INITRD and APPEND's initrd= lists.  Keywords are case
 * insensitive as in syslinux's parser.
 */
int md_extlinux_config_refs(md_ctx *ctx, const char *text, struct md_sl_ref **refs, size_t *n)
{
    const char *line = text;
    unsigned lineno = 0;
    int r = 0;

    *refs = NULL;
    *n = 0;
    while (line && *line && r >= 0) {
        const char *end = strchr(line, '\n'), *p = line, *kw;
        size_t kwlen;

        lineno++;
        while (*p == ' ' || *p == '\t')
            p++;
        kw = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        kwlen = (size_t)(p - kw);
        while (*p == ' ' || *p == '\t')
            p++;
        if ((kwlen == 6 && !strncasecmp(kw, "kernel", 6)) || (kwlen == 5 && !strncasecmp(kw, "linux", 5))) {
            size_t len = strcspn(p, " \t\r\n");
            /* a .c32 module is looked up along the module path, not checked here */
            if (!(len > 4 && !strncasecmp(p + len - 4, ".c32", 4)))
                r = add_ref(refs, n, p, len, lineno, "kernel");
        } else if (kwlen == 6 && !strncasecmp(kw, "initrd", 6)) {
            r = add_ref_list(refs, n, p, lineno, "initrd");
        } else if (kwlen == 6 && !strncasecmp(kw, "append", 6)) {
            while (*p && *p != '\n' && r >= 0) {
                size_t len;
                if (!strncmp(p, "initrd=", 7))
                    r = add_ref_list(refs, n, p + 7, lineno, "initrd");
                len = strcspn(p, " \t\r\n");
                p += len;
                while (*p == ' ' || *p == '\t' || *p == '\r')
                    p++;
            }
        }
        line = end ? end + 1 : NULL;
    }
    if (r < 0) {
        md_extlinux_refs_free(*refs, *n);
        *refs = NULL;
        *n = 0;
        return md_error(ctx, -ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- structured config --------------------------------------------------- */

struct sl_entry {
    char *label, *kernel, *initrd, *append;
};

struct md_extlinux_config {
    md_ctx *ctx;
    char *deflabel;
    uint32_t timeout;
    int32_t prompt;
    uint32_t serial_port, serial_baud;
    struct sl_entry *entries;
    size_t n;
    char *text;
};

MD_API int md_extlinux_config_new(md_ctx *ctx, md_extlinux_config **ret)
{
    md_extlinux_config *cfg;

    if (!ctx || !ret)
        return -EINVAL;
    cfg = md_calloc(1, sizeof(*cfg));
    if (!cfg)
        return md_error(ctx, -ENOMEM, "out of memory");
    cfg->ctx = md_ctx_ref(ctx);
    *ret = cfg;
    return 0;
}

MD_API void md_extlinux_config_free(md_extlinux_config *cfg)
{
    size_t i;
    if (!cfg)
        return;
    for (i = 0; i < cfg->n; i++) {
        free(cfg->entries[i].label);
        free(cfg->entries[i].kernel);
        free(cfg->entries[i].initrd);
        free(cfg->entries[i].append);
    }
    free(cfg->entries);
    free(cfg->deflabel);
    free(cfg->text);
    md_ctx_unref(cfg->ctx);
    free(cfg);
}

static bool has_space(const char *s) { return s && strpbrk(s, " \t\r\n") != NULL; }
static bool has_newline(const char *s) { return s && strpbrk(s, "\r\n") != NULL; }

MD_API int md_extlinux_config_set_default(md_extlinux_config *cfg, const char *label)
{
    char *d = NULL;
    if (!cfg)
        return -EINVAL;
    if (has_space(label) || (label && !*label))
        return md_error(cfg->ctx, -EINVAL, "extlinux default label '%s': must be one word",
                        label);
    if (label && !(d = strdup(label)))
        return md_error(cfg->ctx, -ENOMEM, "out of memory");
    free(cfg->deflabel);
    cfg->deflabel = d;
    return 0;
}

MD_API int md_extlinux_config_set_timeout(md_extlinux_config *cfg, uint32_t deciseconds)
{
    if (!cfg)
        return -EINVAL;
    if (deciseconds > 35999) /* syslinux's limit: one hour */
        return md_error(cfg->ctx, -EINVAL, "extlinux timeout %u: at most 35999 (tenths of a second)",
                        deciseconds);
    cfg->timeout = deciseconds;
    return 0;
}

MD_API int md_extlinux_config_set_prompt(md_extlinux_config *cfg, int32_t prompt)
{
    if (!cfg)
        return -EINVAL;
    cfg->prompt = prompt ? 1 : 0;
    return 0;
}

MD_API int md_extlinux_config_set_serial(md_extlinux_config *cfg, uint32_t port, uint32_t baud)
{
    if (!cfg)
        return -EINVAL;
    if (port > 3)
        return md_error(cfg->ctx, -EINVAL, "serial port %u: must be 0..3 (COM1..COM4)", port);
    if (baud && (baud < 75 || baud > 115200 || 115200 % baud))
        return md_error(cfg->ctx, -EINVAL, "serial speed %u: must divide 115200", baud);
    cfg->serial_port = port;
    cfg->serial_baud = baud;
    return 0;
}

MD_API int md_extlinux_config_add_entry(md_extlinux_config *cfg, const char *label,
                                        const char *kernel, const char *initrd,
                                        const char *append)
{
    struct sl_entry *v, e;
    size_t i;

    if (!cfg)
        return -EINVAL;
    if (!label || !*label || has_space(label))
        return md_error(cfg->ctx, -EINVAL, "extlinux entry label '%s': must be one word",
                        label ? label : "");
    if (!kernel || !*kernel || has_space(kernel))
        return md_error(cfg->ctx, -EINVAL, "extlinux entry '%s': kernel path '%s' must be "
                        "one word", label, kernel ? kernel : "");
    if (has_space(initrd))
        return md_error(cfg->ctx, -EINVAL, "extlinux entry '%s': initrd '%s' must not contain "
                        "spaces (separate several with commas)", label, initrd);
    if (has_newline(append))
        return md_error(cfg->ctx, -EINVAL, "extlinux entry '%s': newline in the command line",
                        label);
    for (i = 0; i < cfg->n; i++)
        if (!strcmp(cfg->entries[i].label, label))
            return md_error(cfg->ctx, -EINVAL, "extlinux entry '%s' defined twice", label);
    e.label = strdup(label);
    e.kernel = strdup(kernel);
    e.initrd = initrd && *initrd ? strdup(initrd) : NULL;
    e.append = append && *append ? strdup(append) : NULL;
    v = realloc(cfg->entries, (cfg->n + 1) * sizeof(*v));
    if (!v || !e.label || !e.kernel || (initrd && *initrd && !e.initrd) ||
        (append && *append && !e.append)) {
        free(e.label);
        free(e.kernel);
        free(e.initrd);
        free(e.append);
        if (v)
            cfg->entries = v;
        return md_error(cfg->ctx, -ENOMEM, "out of memory");
    }
    cfg->entries = v;
    v[cfg->n++] = e;
    return 0;
}

MD_API int md_extlinux_config_render(md_extlinux_config *cfg, const char **text)
{
    char *buf = NULL;
    size_t size = 0, i;
    FILE *f;

    if (!cfg || !text)
        return -EINVAL;
    if (!cfg->n)
        return md_error(cfg->ctx, -EINVAL, "extlinux config has no entry");
    if (cfg->deflabel) {
        for (i = 0; i < cfg->n; i++)
            if (!strcmp(cfg->entries[i].label, cfg->deflabel))
                break;
        if (i == cfg->n)
            return md_error(cfg->ctx, -EINVAL, "extlinux default label '%s' has no entry",
                            cfg->deflabel);
    }
    f = open_memstream(&buf, &size);
    if (!f)
        return md_error(cfg->ctx, -ENOMEM, "out of memory");
    /* SERIAL must come first to see everything on the serial console */
    if (cfg->serial_baud)
        fprintf(f, "SERIAL %u %u\n", cfg->serial_port, cfg->serial_baud);
    fprintf(f, "DEFAULT %s\nPROMPT %d\nTIMEOUT %u\n",
            cfg->deflabel ? cfg->deflabel : cfg->entries[0].label, cfg->prompt, cfg->timeout);
    for (i = 0; i < cfg->n; i++) {
        const struct sl_entry *e = &cfg->entries[i];
        fprintf(f, "\nLABEL %s\n  LINUX %s\n", e->label, e->kernel);
        if (e->initrd)
            fprintf(f, "  INITRD %s\n", e->initrd);
        if (e->append)
            fprintf(f, "  APPEND %s\n", e->append);
    }
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return md_error(cfg->ctx, -ENOMEM, "out of memory");
    }
    free(cfg->text);
    cfg->text = buf;
    *text = buf;
    return 0;
}
