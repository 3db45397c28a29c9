#!/bin/sh
# After `meson install --destdir`, an external C program builds and runs
# against the installed library using only `pkg-config --cflags --libs`.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"
meson install -C "$MD_BUILDDIR" --destdir "$dest" --no-rebuild >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log" >&2; md_die "meson install"; }
prefix=$(meson introspect "$MD_BUILDDIR" --buildoptions | python3 -c '
import json, sys
print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
libdir=$(meson introspect "$MD_BUILDDIR" --buildoptions | python3 -c '
import json, sys
print([o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"][0])')
case "$libdir" in /*) ;; *) libdir="$prefix/$libdir" ;; esac
pcdir="$dest$libdir/pkgconfig"
[ -f "$pcdir/libminidistro.pc" ] || md_die "no libminidistro.pc in $pcdir"
for h in minidistro.h md-ctx.h md-tree.h md-version.h; do
    [ -f "$dest$prefix/include/libminidistro/$h" ] || md_die "header $h not installed"
done
ls "$dest$libdir"/libminidistro.so.0 >/dev/null || md_die "no SONAME link libminidistro.so.0"
soname=$(readelf -d "$dest$libdir/libminidistro.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libminidistro.so.0" ] || md_die "SONAME is '$soname'"

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
cc -std=c99 -Wall -Werror -o "$tmp/app" "$tmp/app.c" $flags || md_die "compile with: $flags"
out=$(LD_LIBRARY_PATH="$dest$libdir" "$tmp/app")
echo "$out"
case "$out" in "libminidistro "*", 1 entries") ;; *) md_die "unexpected output" ;; esac
md_ok "external program links via pkg-config"
md_done
