#!/bin/sh
# The manual pages: one per mdimg command (docs/man/*.scd, scdoc), each
# rendered by groff without a warning, its SYNOPSIS the command's --help
# "Usage:" block and its options those of --help (tests/check-man.py); the
# built pages are installed by `meson install` in share/man/man1, where
# `man -l` renders mdimg.1 with every command and subcommand listed.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
md_need_tool scdoc
md_need_tool groff groff-base
md_need_tool man man-db
md_need_tool python3
md_tmpdir t-man
export PYTHONDONTWRITEBYTECODE=1 MANWIDTH=100 LC_ALL=C.UTF-8
python3 "$MD_TESTDIR/check-man.py" "$MDIMG" "$MD_SRCDIR/docs/man" ||
    md_fail "the man pages do not agree with --help (above)"

n=0
for src in "$MD_SRCDIR"/docs/man/*.scd; do
    page=$(basename "$src" .scd)
    scdoc <"$src" >"$T/$page" 2>"$T/err" || { cat "$T/err" >&2; md_fail "scdoc $page"; continue; }
    groff -k -man -Tutf8 -ww -z "$T/$page" 2>"$T/err"
    [ ! -s "$T/err" ] || { cat "$T/err" >&2; md_fail "groff warns about $page"; }
    built=$MD_BUILDDIR/docs/$page
    if [ -f "$built" ]; then
        cmp -s "$built" "$T/$page" || md_fail "$built is not what scdoc makes of $src now"
    else
        md_missing_part "$built (the build's man pages: meson setup found no scdoc)" scdoc || true
    fi
    n=$((n + 1))
done
[ "$n" -ge 13 ] || md_fail "only $n man pages"

if meson install -C "$MD_BUILDDIR" --destdir "$T/dest" --no-rebuild >"$T/install.log" 2>&1; then
    man1=$(find "$T/dest" -path '*/share/man/man1' -type d | head -n 1)
    if [ -z "$man1" ] || [ ! -f "$man1/mdimg.1" ]; then
        md_fail "meson install put no share/man/man1/mdimg.1 in $T/dest"
    else
        installed=$(ls "$man1" | grep -c '^mdimg.*\.1$')
        [ "$installed" = "$n" ] || md_fail "$installed pages installed in $man1, $n sources"
        man -l "$man1/mdimg.1" >"$T/mdimg.txt" 2>"$T/err" || { cat "$T/err" >&2; md_fail "man -l mdimg.1"; }
        for c in $("$MDIMG" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z]*\) .*/\1/p'); do
            grep -q "^       $c\$" "$T/mdimg.txt" || md_fail "man mdimg does not list the command $c"
            [ -f "$man1/mdimg-$c.1" ] || md_fail "no mdimg-$c.1 installed"
        done
        man -l "$man1/mdimg-disk.1" >"$T/disk.txt" 2>/dev/null
        for c in $("$MDIMG" disk --help | sed -n '/^Subcommands:/,/^$/s/^  \([a-z]*\) .*/\1/p'); do
            grep -q "^       $c\$" "$T/disk.txt" || md_fail "man mdimg-disk does not list $c"
        done
        [ "$MD_FAILS" = 0 ] && md_ok "meson install: $installed pages in ${man1#"$T/dest"}; man -l mdimg.1 lists every command"
    fi
else
    cat "$T/install.log" >&2
    md_fail "meson install --destdir failed"
fi
md_done "$n man pages"
