/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Source options shared by `initramfs`, `disk create` and `disk populate`: every
 * command that fills a tree takes the same kinds, in command-line order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mdimg.h"

const char mdimg_sources_help[] =
    "Sources (applied in command-line order; a later one replaces entries of an\n"
    "earlier one; --busybox goes first):\n"
    "  DIR|ARCHIVE           a host directory (its contents), or an archive file:\n"
    "                        tar/pax/cpio/zip..., any compression libarchive reads,\n"
    "                        recognised by its contents\n"
    "      --archive FILE    an archive (also --cpio)\n"
    "      --spec FILE       a gen_init_cpio spec file (relative locations: from the\n"
    "                        spec's directory)\n"
    "      --busybox PATH    a BusyBox system from a static busybox binary\n"
    "      --prefix DIR      put the contents of each host DIR under DIR\n"
    "      --keep-owner      keep the host owners of DIR files (default: 0:0)\n"
    "      --keep-mtime      keep host mtimes, clamped to the epoch (default: epoch)\n"
    "      --xattrs          copy security.*, user.*, trusted.* xattrs of DIR files\n"
    "      --no-hardlinks    store hard-linked host files as separate copies\n";

int mdimg_sources_init(struct mdimg_sources *s, int argc)
{
    static const md_host_opts def = MD_HOST_OPTS_INIT;

    memset(s, 0, sizeof(*s));
    s->host = def;
    s->v = calloc((size_t)argc + 1, sizeof(*s->v));
    if (!s->v) {
        mdimg_err("out of memory");
        return -ENOMEM;
    }
    return 0;
}

void mdimg_sources_free(struct mdimg_sources *s)
{
    free(s->v);
    s->v = NULL;
}

void mdimg_sources_push(struct mdimg_sources *s, uint32_t kind, const char *path)
{
    s->v[s->n].kind = kind;
    s->v[s->n++].path = path;
}

int mdimg_sources_option(struct mdimg_sources *s, int c, const char *arg)
{
    switch (c) {
    case MDIMG_SRC_SPEC: mdimg_sources_push(s, MD_SOURCE_SPEC, arg); break;
    case MDIMG_SRC_ARCHIVE: mdimg_sources_push(s, MD_SOURCE_ARCHIVE, arg); break;
    case MDIMG_SRC_BUSYBOX: s->busybox = arg; break;
    case MDIMG_SRC_PREFIX: s->host.prefix = arg; break;
    case MDIMG_SRC_KEEP_OWNER: s->host.flags |= MD_HOST_KEEP_OWNER; break;
    case MDIMG_SRC_KEEP_MTIME: s->host.flags |= MD_HOST_KEEP_MTIME; break;
    case MDIMG_SRC_XATTRS: s->host.flags |= MD_HOST_XATTRS; break;
    case MDIMG_SRC_NO_HARDLINKS: s->host.flags |= MD_HOST_NO_HARDLINKS; break;
    default: return 0;
    }
    return 1;
}

int mdimg_sources_empty(const struct mdimg_sources *s)
{
    return s->n == 0 && !s->busybox;
}

int mdimg_sources_add(struct mdimg_sources *s, md_tree *tree)
{
    size_t i;
    int r;

    if (s->busybox) {
        r = md_tree_add_source(tree, MD_SOURCE_BUSYBOX, s->busybox, NULL);
        if (r < 0)
            return r;
    }
    for (i = 0; i < s->n; i++) {
        r = md_tree_add_source(tree, s->v[i].kind, s->v[i].path, &s->host);
        if (r < 0)
            return r;
    }
    return 0;
}
