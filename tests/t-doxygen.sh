#!/bin/sh
# The API reference builds with Doxygen from the public headers (through
# docs/doxygen-filter.py) without a single warning, and documents every
# exported function (each has an entry in the HTML function index).  The same
# configuration as `meson compile -C BUILD docs`, written to a temporary dir.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
md_need_tool doxygen
md_need_tool python3
md_tmpdir t-doxygen
export PYTHONDONTWRITEBYTECODE=1
sed -e "s|@VERSION@|test|; s|@OUTDIR@|$T|g; s|@SRCDIR@|$MD_SRCDIR|g" \
    -e "s|@BUILDDIR@|$MD_BUILDDIR|g; s|@PYTHON@|$(command -v python3)|g" \
    "$MD_SRCDIR/docs/Doxyfile.in" >"$T/Doxyfile"
(cd "$T" && doxygen Doxyfile) >"$T/out.log" 2>&1 || { cat "$T/out.log" >&2; md_die "doxygen failed"; }
if [ -s "$T/warnings.log" ] || [ -s "$T/out.log" ]; then
    cat "$T/warnings.log" "$T/out.log" >&2
    md_fail "doxygen warned (above)"
fi
[ -f "$T/html/index.html" ] || md_die "no html/index.html"
grep -q "mdimg" "$T/html/index.html" || md_fail "the main page (docs/reference.md) is not the index"
n=0
for s in $(sed -n 's/^[[:space:]]*\(md_[a-z0-9_]*\);.*/\1/p' "$MD_SRCDIR/lib/libminidistro.sym"); do
    grep -q "<li>$s()&#160;" "$T/html/globals_func.html" || md_fail "$s is not in the reference's function index"
    n=$((n + 1))
done
[ "$n" -gt 100 ] || md_fail "only $n functions read from lib/libminidistro.sym"
md_done "doxygen: no warnings, $n exported functions in the reference"
