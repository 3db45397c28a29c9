#!/bin/sh
# The Python package's thin layer (bindings/python/minidistro/_capi.py) agrees
# with the C headers, judged by the C compiler: it is what gen_capi.py makes
# from the headers now; every struct's size and field offsets/sizes, every
# prototype's type (__builtin_types_compatible_p) and its ctypes argument
# sizes and signedness, every constant's value are the compiler's; the
# prototypes are exactly lib/libminidistro.sym.  tests/check-python-capi.py
# does the work; the library is not loaded.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
md_need_tool python3
md_need_tool cc
md_tmpdir t-python-capi
export PYTHONDONTWRITEBYTECODE=1
python3 "$MD_TESTDIR/check-python-capi.py" "$MD_SRCDIR" "$MD_BUILDDIR" "$T" ||
    md_die "the Python bindings do not match the C API (above)"
# the package's version is the project's
want=$(sed -n "s/^  version: '\([^']*\)',/\1/p" "$MD_SRCDIR/meson.build")
got=$(sed -n 's/^version = "\([^"]*\)"/\1/p' "$MD_SRCDIR/bindings/python/pyproject.toml")
pkg=$(sed -n 's/^__version__ = "\([^"]*\)"/\1/p' "$MD_SRCDIR/bindings/python/minidistro/__init__.py")
[ -n "$want" ] && [ "$got" = "$want" ] && [ "$pkg" = "$want" ] ||
    md_fail "versions: meson.build '$want', pyproject.toml '$got', minidistro.__version__ '$pkg'"
md_done "the Python bindings match the C API"
