#!/bin/sh
# The exported dynamic symbols of libminidistro.so must be exactly the global
# list in lib/libminidistro.sym.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
so="$MD_LIBDIR/libminidistro.so"
sym="$MD_SRCDIR/lib/libminidistro.sym"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" {print $3}' \
    | sed 's/@.*//' | sort -u > "$tmp/exported"
sed -n '/global:/,/local:/p' "$sym" | sed 's,/\*.*\*/,,' | grep -oE '^[[:space:]]*md_[a-z0-9_]+;' \
    | tr -d ' ;\t' | sort -u > "$tmp/listed"
diff -u "$tmp/listed" "$tmp/exported" >&2 ||
    md_die "exports differ from $sym (- listed only, + exported only)"
# every listed symbol must also be declared in a public header
for s in $(cat "$tmp/listed"); do
    grep -q "\\b$s(" "$MD_SRCDIR"/include/libminidistro/*.h || md_die "$s not in a header"
done
md_ok "$(wc -l < "$tmp/listed") exported symbols match the version script"
md_done
