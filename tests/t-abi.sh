#!/bin/sh
# The library's ABI against the committed baseline (abi/libminidistro.abi,
# abi/structs.txt), judged by libabigail's abidiff: no change at all passes;
# a compatible change (functions added, a versioned struct grown at its end
# with a new MD_*_VERSION) fails until the baseline is updated in the same
# commit; anything else fails as incompatible until lib/libminidistro.sym has
# a new version node and the baseline is updated (abi/README.md,
# scripts/abi).  Also: the baseline's symbol versions are the .sym's nodes.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
md_need_tool abidw abigail-tools
md_need_tool abidiff abigail-tools
md_need_tool python3
export PYTHONDONTWRITEBYTECODE=1
"$MD_SRCDIR/scripts/abi" check "$MD_BUILDDIR" >"${TMPDIR:-/tmp}/t-abi.$$" 2>&1 && rc=0 || rc=$?
out=$(cat "${TMPDIR:-/tmp}/t-abi.$$"); rm -f "${TMPDIR:-/tmp}/t-abi.$$"
case $rc in
0) md_ok "$out" ;;
77) md_skip_env "$out" ;;
*) echo "$out" >&2; md_fail "the ABI differs from abi/libminidistro.abi (above)" ;;
esac
sym_nodes=$(sed -n 's/^\(LIBMINIDISTRO_[0-9A-Za-z_.]*\) *{.*/\1/p' "$MD_SRCDIR/lib/libminidistro.sym" | sort -u)
abi_nodes=$(grep -o "version='LIBMINIDISTRO_[^']*'" "$MD_SRCDIR/abi/libminidistro.abi" |
    sed "s/version='\(.*\)'/\1/" | sort -u)
[ -n "$sym_nodes" ] && [ "$sym_nodes" = "$abi_nodes" ] ||
    md_fail "version nodes: lib/libminidistro.sym has '$sym_nodes', the baseline '$abi_nodes'"
md_done
