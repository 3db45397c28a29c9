#!/bin/sh
# The exported dynamic symbols of libminidistro.so must be exactly the global
# list in lib/libminidistro.sym.
set -eu
so="$MD_LIBDIR/libminidistro.so"
sym="$MD_SRCDIR/lib/libminidistro.sym"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" {print $3}' \
    | sed 's/@.*//' | sort -u > "$tmp/exported"
sed -n '/global:/,/local:/p' "$sym" | sed 's,/\*.*\*/,,' | grep -oE '^[[:space:]]*md_[a-z0-9_]+;' \
    | tr -d ' ;\t' | sort -u > "$tmp/listed"
if ! diff -u "$tmp/listed" "$tmp/exported"; then
    echo "FAIL: exports differ from $sym (- listed only, + exported only)"
    exit 1
fi
# every listed symbol must also be declared in a public header
for s in $(cat "$tmp/listed"); do
    grep -q "\\b$s(" "$MD_SRCDIR"/include/libminidistro/*.h || { echo "FAIL: $s not in a header"; exit 1; }
done
echo "ok: $(wc -l < "$tmp/listed") exported symbols match the version script"
