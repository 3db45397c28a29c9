#!/bin/sh
# Each public header must compile on its own as C89 and as C++.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
inc="$MD_SRCDIR/include"
gen="$MD_BUILDDIR/include"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for h in "$inc"/libminidistro/*.h; do
    name=$(basename "$h")
    printf '#include <libminidistro/%s>\nint main(void) { return 0; }\n' "$name" > "$tmp/t.c"
    cp "$tmp/t.c" "$tmp/t.cpp"
    cc -std=c89 -pedantic -Wall -Wextra -Werror -I"$inc" -I"$gen" -c "$tmp/t.c" -o "$tmp/t.o" \
        || md_die "$name does not compile as C89"
    c++ -std=c++11 -pedantic -Wall -Wextra -Werror -I"$inc" -I"$gen" -c "$tmp/t.cpp" -o "$tmp/t.o" \
        || md_die "$name does not compile as C++"
    n=$((n + 1))
done
md_ok "$n headers compile alone as C89 and C++"
md_done
