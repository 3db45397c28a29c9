/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The gen_init_cpio spec parser: md_tree_add_spec_buf() on arbitrary text,
 * with no base directory (a relative file location is an error, absolute
 * ones are only stat()ed: the tree is not written, so no host file is read). */
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    md_ctx *ctx = fuzz_ctx();
    md_tree *tree = NULL;
    int r;

    if (md_tree_new(ctx, &tree) < 0)
        abort();
    r = md_tree_add_spec_buf(tree, (const char *)data, size, "fuzz.spec", NULL);
    if (r < 0)
        fuzz_assert(md_ctx_errmsg(ctx) && *md_ctx_errmsg(ctx), "error %d without a message", r);
    md_tree_free(tree);
    md_ctx_free(ctx);
    return 0;
}
