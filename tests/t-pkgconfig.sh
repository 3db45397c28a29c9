#!/bin/sh
# After `meson install --destdir`, an external C program builds and runs
# against the installed library using only `pkg-config --cflags --libs`.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"
meson install -C "$MD_BUILDDIR" --destdir "$dest" --no-rebuild >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"; echo "FAIL: meson install"; exit 1; }
prefix=$(meson introspect "$MD_BUILDDIR" --buildoptions | python3 -c '
import json, sys
print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
libdir=$(meson introspect "$MD_BUILDDIR" --buildoptions | python3 -c '
import json, sys
print([o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"][0])')
case "$libdir" in /*) ;; *) libdir="$prefix/$libdir" ;; esac
pcdir="$dest$libdir/pkgconfig"
[ -f "$pcdir/libminidistro.pc" ] || { echo "FAIL: no libminidistro.pc in $pcdir"; exit 1; }
for h in minidistro.h md-ctx.h md-tree.h md-version.h; do
    [ -f "$dest$prefix/include/libminidistro/$h" ] || { echo "FAIL: header $h not installed"; exit 1; }
done
ls "$dest$libdir"/libminidistro.so.0 >/dev/null || { echo "FAIL: no SONAME link libminidistro.so.0"; exit 1; }
soname=$(readelf -d "$dest$libdir/libminidistro.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libminidistro.so.0" ] || { echo "FAIL: SONAME is '$soname'"; exit 1; }

cat > "$tmp/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <libminidistro/minidistro.h>
int main(void)
{
    md_ctx *ctx;
    md_tree *tree;
    if (md_ctx_new(&ctx) < 0 || md_tree_new(ctx, &tree) < 0)
        return 1;
    if (md_tree_add_dir(tree, "/etc", NULL) < 0)
        return 1;
    if (md_tree_add_dir(tree, "../x", NULL) != -22 || !strstr(md_ctx_errmsg(ctx), ".."))
        return 2;
    printf("libminidistro %s, %zu entries\n", md_version(), md_tree_count(tree));
    md_tree_free(tree);
    md_ctx_free(ctx);
    return 0;
}
C
export PKG_CONFIG_PATH="$pcdir"
export PKG_CONFIG_SYSROOT_DIR="$dest"
# the .pc lists Requires.private; static flags are not needed for a shared link
flags=$(pkg-config --cflags --libs libminidistro)
cc -std=c99 -Wall -Werror -o "$tmp/app" "$tmp/app.c" $flags || { echo "FAIL: compile with: $flags"; exit 1; }
out=$(LD_LIBRARY_PATH="$dest$libdir" "$tmp/app")
echo "$out"
case "$out" in "libminidistro "*", 1 entries") ;; *) echo "FAIL: unexpected output"; exit 1 ;; esac
echo "ok: external program links via pkg-config"
