#!/bin/sh
# The Python package as a user gets it: `pip install --no-index
# --no-build-isolation bindings/python` into a fresh venv (offline, no
# setuptools or wheel needed), `import minidistro` finding the library through
# LD_LIBRARY_PATH, $LIBMINIDISTRO and pkg-config's libdir; then the package's
# unittest suite (bindings/python/tests: every module, results read back with
# cpio, sfdisk, blkid, e2fsck, debugfs, mtools, objdump) run with the venv's
# interpreter against the installed copy.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
md_need_tool python3
for t in cpio sfdisk blkid e2fsck debugfs mdir mtype objdump bsdtar gzip xz zstd lz4 pkg-config; do
    md_need_tool "$t"
done
md_need_busybox
md_tmpdir t-python
SRC=$MD_SRCDIR
LIB=$MD_LIBDIR/libminidistro.so.0
export PYTHONDONTWRITEBYTECODE=1 PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# meson puts the build tree on LD_LIBRARY_PATH: each case below sets what it uses
unset LIBMINIDISTRO PYTHONPATH LD_LIBRARY_PATH || true

python3 -m venv "$T/venv" >"$T/venv.log" 2>&1 ||
    { cat "$T/venv.log" >&2; md_die "python3 -m venv failed (install python3-venv)"; }
py=$T/venv/bin/python
if "$py" -m pip install --no-index --no-build-isolation "$SRC/bindings/python" >"$T/pip.log" 2>&1; then
    md_ok "pip install --no-index --no-build-isolation bindings/python: $(tail -n 1 "$T/pip.log")"
else
    cat "$T/pip.log" >&2
    md_die "pip install --no-index --no-build-isolation bindings/python failed"
fi
"$py" -m pip list 2>/dev/null | grep -q '^minidistro  *0\.1\.0' || md_fail "pip list: $("$py" -m pip list 2>&1)"

cd "$T"   # not the source tree: the package comes from the venv
where=$("$py" -c 'import minidistro, os; print(os.path.dirname(minidistro.__file__))')
case $where in
"$T/venv/"*) md_ok "import minidistro: $where" ;;
*) md_fail "import minidistro found $where, not the venv's copy" ;;
esac

# finding the library: LD_LIBRARY_PATH, $LIBMINIDISTRO, pkg-config
probe='import minidistro; print(minidistro.version(), minidistro.lib().path)'
out=$(LD_LIBRARY_PATH=$MD_LIBDIR "$py" -c "$probe" 2>&1) &&
    [ "$out" = "$(sed -n "s/^  version: '\([^']*\)',/\1/p" "$SRC/meson.build") libminidistro.so.0" ] ||
    md_fail "with LD_LIBRARY_PATH: $out"
out=$(LIBMINIDISTRO=$LIB "$py" -c "$probe" 2>&1) && [ "${out#* }" = "$LIB" ] ||
    md_fail "with LIBMINIDISTRO: $out"
mkdir "$T/pc"
printf 'libdir=%s\nName: libminidistro\nDescription: x\nVersion: 0.1.0\nLibs: -L${libdir} -lminidistro\n' \
    "$MD_LIBDIR" >"$T/pc/libminidistro.pc"
out=$(PKG_CONFIG_PATH=$T/pc "$py" -c "$probe" 2>&1) && [ "${out#* }" = "$LIB" ] ||
    md_fail "with pkg-config's libdir: $out"
out=$(PKG_CONFIG_PATH=$T/pc LD_LIBRARY_PATH= "$py" -c 'import minidistro' 2>&1) ||
    md_fail "import minidistro must not need the library yet: $out"
out=$(PKG_CONFIG_PATH=/nonexistent "$py" -c "$probe" 2>&1) &&
    md_fail "no library anywhere, yet: $out"
echo "$out" | grep -q "cannot load libminidistro.so.0.*LIBMINIDISTRO" ||
    md_fail "no library: the error should say how to point at it: $out"
[ "$MD_FAILS" = 0 ] && md_ok "the library is found through LD_LIBRARY_PATH, \$LIBMINIDISTRO and pkg-config"

# the package's own tests, against the installed copy
KERNEL=$("$SRC/scripts/build-kernel" --query 2>/dev/null || true)
if [ -z "$KERNEL" ]; then
    for k in /boot/vmlinuz-*; do [ -r "$k" ] && KERNEL=$k; done
fi
[ -n "$KERNEL" ] || md_missing "a kernel (scripts/build-kernel, /boot/vmlinuz-*)" linux-image-cloud-amd64
tests=$SRC/bindings/python/tests
if LIBMINIDISTRO=$LIB MD_TEST_KERNEL=$KERNEL PATH=$PATH:/sbin:/usr/sbin \
    "$py" -m unittest discover -s "$tests" -t "$tests" -v >"$T/unittest.log" 2>&1; then
    md_ok "bindings/python/tests: $(grep -E '^Ran [0-9]+ tests' "$T/unittest.log")"
    if grep -q "skipped" "$T/unittest.log"; then
        grep "skipped" "$T/unittest.log" >&2
        [ "${CI:-}" = true ] && md_fail "tests were skipped in CI (above)"
    fi
else
    cat "$T/unittest.log" >&2
    md_fail "bindings/python/tests failed (above)"
fi
md_done "the Python package installs offline and passes its tests"
