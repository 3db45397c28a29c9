#!/bin/sh
# scripts/build-busybox and `mdimg build --busybox-src`, against fabricated
# BusyBox source trees (no real BusyBox source here, none downloaded): their
# Makefile behaves like kbuild's for the targets the script uses and "builds"
# by copying the host's static /bin/busybox — only if .config has
# CONFIG_STATIC=y, so a pass proves the script turned static linking on.
# Checks: the printed path is a static busybox that runs --list; the second
# run is served from the cache without running make; the source tree is not
# modified (also when it is configured in place); the image built with
# --busybox-src holds that binary (read back with `mdimg disk cp`); bad
# input (not a BusyBox tree, a dynamic result, --busybox with --busybox-src).
set -eu

MDIMG=${MDIMG:?MDIMG not set}
SRCDIR=${MD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
BB="$SRCDIR/scripts/build-busybox"
[ -x "$BB" ] || md_missing "$BB (executable, of the libminidistro sources)"
for tool in make readelf sha256sum cmp; do
    md_need_tool "$tool"
done
md_need_busybox
case $(readelf -lW "$BUSYBOX" 2>/dev/null) in
*INTERP*) md_missing "a static busybox ($BUSYBOX is dynamic)" busybox-static ;;
esac

# A kernel for the image: the cached minidistro kernel (from the real cache,
# as the test's own cache is empty) if readable, else /boot/vmlinuz-*.
KERNEL=$("$SRCDIR/scripts/build-kernel" --query 2>/dev/null || true)
[ -n "$KERNEL" ] && [ -r "$KERNEL" ] || md_need_kernel

md_tmpdir t-busybox-src
export XDG_CACHE_HOME="$T/cache" LC_ALL=C
unset MDIMG_BUILD_BUSYBOX 2>/dev/null || true

# make_tree DIR RESULT: a fake BusyBox tree whose "build" copies RESULT.
make_tree() {
    mkdir -p "$1/applets" "$1/shell"
    {
        echo "COUNT := $T/make-count"
        echo "RESULT := $2"
        printf 'defconfig:\n'
        printf '\t@test -d "$(O)" || { echo "output directory $(O) does not exist" >&2; exit 1; }\n'
        printf '\t@test ! -e "$(CURDIR)/.config" || { echo "source tree is not clean, run make mrproper" >&2; exit 1; }\n'
        printf '\t@echo defconfig >> $(COUNT)\n'
        printf "\\t@printf '%%s\\\\n' CONFIG_HAVE_DOT_CONFIG=y '# CONFIG_STATIC is not set' CONFIG_SH_IS_ASH=y CONFIG_TC=y > \$(O)/.config\n"
        printf 'oldconfig:\n'
        printf '\t@test -f "$(O)/.config"\n'
        printf 'busybox:\n'
        printf '\t@grep -qx CONFIG_STATIC=y "$(O)/.config" || { echo "fake busybox: CONFIG_STATIC is not enabled" >&2; exit 1; }\n'
        printf '\tcp $(RESULT) "$(O)/busybox"\n'
        printf 'mrproper:\n'
        printf '\trm -f .config\n'
    } >"$1/Makefile"
    printf 'mainmenu "BusyBox Configuration"\nsource shell/Config.in\n' >"$1/Config.in"
    printf 'config ASH\n\tbool "ash"\n' >"$1/shell/Config.in"
    printf '/* applets */\n' >"$1/applets/applets.c"
    ln -s applets/applets.c "$1/link"
}

# Content + metadata of a tree, to prove it is left alone.
tree_sum() {
    (cd "$1" && find . -printf '%P %y %m %s %T@ %l\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum
}

count() { [ -f "$T/make-count" ] && wc -l <"$T/make-count" || echo 0; }

F=$T/busybox-1.99.0
make_tree "$F" "$BUSYBOX"
before=$(tree_sum "$F")

# ---- first build -----------------------------------------------------------------
"$BB" "$F" >"$T/out1" 2>"$T/err1" || { cat "$T/err1" >&2; md_die "build-busybox failed"; }
P=$(tail -n 1 "$T/out1")
case $P in "$T/cache/minidistro/busybox/"*/busybox) ;; *) md_die "unexpected path '$P'" ;; esac
[ -x "$P" ] || md_die "'$P' is not executable"
cmp -s "$P" "$BUSYBOX" || md_die "'$P' is not the fake tree's build result"
case $(readelf -lW "$P") in *INTERP*) md_die "'$P' has a program interpreter" ;; esac
"$P" --list | grep -qx sh || md_die "'$P --list' has no sh"
[ "$(count)" = 1 ] || md_die "make defconfig ran $(count) times, expected 1"
grep -qx CONFIG_STATIC=y "$(dirname "$P")/config" || md_die "cached config lacks CONFIG_STATIC=y"
grep -qx '# CONFIG_TC is not set' "$(dirname "$P")/config" || md_die "cached config still has CONFIG_TC"
grep -q 'configuring' "$T/err1" || md_die "no progress on stderr"
[ "$(tree_sum "$F")" = "$before" ] || md_die "the source tree was modified by the build"
ls -a "$T/cache/minidistro/busybox" | grep -q '^\.build-' && md_die "temporary build dir left in the cache"

# ---- second build: cached, fast, make not run ------------------------------------
t0=$(date +%s%N)
"$BB" "$F" >"$T/out2" 2>"$T/err2" || { cat "$T/err2" >&2; md_die "cached build-busybox failed"; }
t1=$(date +%s%N)
[ "$(tail -n 1 "$T/out2")" = "$P" ] || md_die "second run printed '$(tail -n 1 "$T/out2")', not '$P'"
[ "$(count)" = 1 ] || md_die "second run ran make again"
ms=$(( (t1 - t0) / 1000000 ))
[ "$ms" -lt 1000 ] || md_die "cached run took $ms ms"
echo "cached run: $ms ms"

# ---- a changed source file means a new build -------------------------------------
sleep 0.01
printf '/* changed */\n' >>"$F/applets/applets.c"
before=$(tree_sum "$F")
P2=$("$BB" "$F" 2>/dev/null | tail -n 1)
[ "$(count)" = 2 ] || md_die "a changed tree was not rebuilt"
[ "$P2" != "$P" ] && [ -x "$P2" ] || md_die "a changed tree got the old cache entry '$P2'"

# ---- mdimg build --busybox-src ---------------------------------------------------
IMG=$T/x.img
"$MDIMG" build -q -o "$IMG" --kernel "$KERNEL" --busybox-src "$F" --root initramfs \
    2>"$T/err3" || { cat "$T/err3" >&2; md_die "mdimg build --busybox-src failed"; }
[ "$(count)" = 2 ] || md_die "mdimg build did not use the cache"
"$MDIMG" disk cp "$IMG:1:/bin/busybox" "$T/bb.out" || md_die "mdimg disk cp failed"
cmp "$T/bb.out" "$BUSYBOX" || md_die "/bin/busybox in the image differs from the built one"
# and inside the initramfs
"$MDIMG" disk cp "$IMG:1:/boot/initramfs.img" "$T/initramfs.img" || md_die "no /boot/initramfs.img"
if md_want_tool bsdtar; then
    mkdir "$T/ir"
    bsdtar -xf "$T/initramfs.img" -C "$T/ir" bin/busybox || md_die "bsdtar cannot read the initramfs"
    cmp "$T/ir/bin/busybox" "$BUSYBOX" || md_die "/bin/busybox in the initramfs differs"
fi
[ "$(tree_sum "$F")" = "$before" ] || md_die "mdimg build modified the source tree"

# ---- a tree configured in place: built from a cleaned copy -----------------------
C=$T/configured
make_tree "$C" "$BUSYBOX"
printf 'CONFIG_STATIC=y\n' >"$C/.config"
before=$(tree_sum "$C")
"$BB" "$C" >"$T/out4" 2>"$T/err4" || { cat "$T/err4" >&2; md_die "configured tree failed"; }
PC=$(tail -n 1 "$T/out4")
cmp -s "$PC" "$BUSYBOX" || md_die "configured tree: wrong result '$PC'"
grep -q 'cleaned copy' "$T/err4" || md_die "configured tree: no 'cleaned copy' message"
[ -f "$C/.config" ] && [ "$(tree_sum "$C")" = "$before" ] || md_die "configured tree was modified"

# ---- bad input -----------------------------------------------------------------------
N=$T/not-busybox
mkdir -p "$N"
echo 'all:' >"$N/Makefile"
rc=0
"$BB" "$N" >"$T/out5" 2>"$T/err5" || rc=$?
[ "$rc" = 1 ] || md_die "not a BusyBox tree: exit $rc, expected 1"
grep -q "$N" "$T/err5" && grep -q 'Config.in' "$T/err5" && grep -q 'applets' "$T/err5" ||
    md_die "not a BusyBox tree: message does not name the dir and what is missing: $(cat "$T/err5")"
[ ! -s "$T/out5" ] || md_die "not a BusyBox tree: something on stdout"

rc=0
"$MDIMG" build -o "$IMG.bad" --kernel "$KERNEL" --busybox-src "$N" 2>"$T/err6" || rc=$?
[ "$rc" = 1 ] || md_die "mdimg build with a non-BusyBox tree: exit $rc, expected 1"
grep -q "$N" "$T/err6" || md_die "mdimg build: message does not name '$N': $(cat "$T/err6")"
[ ! -e "$IMG.bad" ] || md_die "an image was left behind"

rc=0
"$MDIMG" build -o "$IMG.bad" --kernel "$KERNEL" --busybox-src /nonexistent/bb 2>"$T/err7" || rc=$?
[ "$rc" = 1 ] && grep -q '/nonexistent/bb' "$T/err7" || md_die "missing dir: exit $rc: $(cat "$T/err7")"
[ ! -e "$IMG.bad" ] || md_die "an image was left behind"

# A helper that succeeds without printing a path: the message says so.
printf '#!/bin/sh\nexit 0\n' >"$T/silent-build"
chmod +x "$T/silent-build"
rc=0
MDIMG_BUILD_BUSYBOX="$T/silent-build" "$MDIMG" build -o "$IMG.bad" --kernel "$KERNEL" \
    --busybox-src "$F" 2>"$T/err7b" || rc=$?
[ "$rc" = 1 ] && grep -q 'silent-build succeeded but printed no path' "$T/err7b" ||
    md_die "helper without output: exit $rc: $(cat "$T/err7b")"
[ ! -e "$IMG.bad" ] || md_die "an image was left behind"

rc=0
"$MDIMG" build -o "$IMG.bad" --kernel "$KERNEL" --busybox "$BUSYBOX" --busybox-src "$F" \
    2>"$T/err8" || rc=$?
[ "$rc" = 2 ] || md_die "--busybox with --busybox-src: exit $rc, expected 2"
grep -q 'exclude' "$T/err8" || md_die "--busybox with --busybox-src: $(cat "$T/err8")"
[ ! -e "$IMG.bad" ] || md_die "an image was left behind"

# A "build" that yields a dynamic executable is refused and not cached.
DYN=$(command -v ls)
case $(readelf -lW "$DYN" 2>/dev/null) in
*INTERP*)
    D=$T/dynamic
    make_tree "$D" "$DYN"
    rc=0
    "$BB" "$D" >"$T/out9" 2>"$T/err9" || rc=$?
    [ "$rc" = 1 ] || md_die "dynamic result: exit $rc, expected 1"
    grep -q 'dynamically linked' "$T/err9" || md_die "dynamic result: $(cat "$T/err9")"
    n=$(find "$T/cache/minidistro/busybox" -name busybox -type f | wc -l)
    [ "$n" = 3 ] || md_die "dynamic result: $n cache entries, expected 3"
    ;;
esac

# Usage errors of the script.
rc=0; "$BB" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || md_die "no SRC_DIR: exit $rc, expected 2"
rc=0; "$BB" "$F" --jobs x >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || md_die "--jobs x: exit $rc, expected 2"

md_done PASS
