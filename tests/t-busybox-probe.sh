#!/bin/sh
# The BusyBox probe (`busybox --list-full`, issue 11 items 14 and 16): a copy
# of busybox under another name ("bb") is a BusyBox binary, run as
# "busybox" (cpio -t lists its applet links, cmp finds the copy as
# /bin/busybox); a --busybox script that hangs with a child of its own is
# timed out and its child killed with it (/proc says it no longer runs),
# nothing left at the output.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

: "${MDIMG:?}"
md_need_tool cpio
md_need_tool cmp
md_need_busybox
md_tmpdir t-busybox-probe
cd "$T"
export SOURCE_DATE_EPOCH=1700000000

# running PID: the process exists and is no zombie
running() {
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# ---- item 16: busybox copied as "bb"
cp -L "$BUSYBOX" bb
chmod 755 bb
if "$MDIMG" -q initramfs -o bb.cpio --busybox ./bb 2>err.txt; then
    cpio -it <bb.cpio >list.txt 2>/dev/null || md_die "cpio cannot read bb.cpio"
    for f in bin/busybox bin/sh init; do
        grep -qx "$f" list.txt || md_fail "$f missing from the archive of 'bb'"
    done
    mkdir x
    (cd x && cpio -id --quiet bin/busybox <../bb.cpio) || md_die "cpio -id bin/busybox"
    cmp -s x/bin/busybox bb || md_fail "/bin/busybox is not the copy 'bb'"
else
    cat err.txt >&2
    md_fail "a copy of busybox named 'bb' was refused"
fi

# ---- item 14: a script that hangs, with a child that would outlive it
cat >hang.sh <<EOF
#!/bin/sh
sleep 300 &
echo \$! >$T/child.pid
wait
EOF
chmod 755 hang.sh
set +e
"$MDIMG" initramfs -o hang.cpio --busybox ./hang.sh 2>err.txt
rc=$?
set -e
[ "$rc" = 1 ] || { cat err.txt >&2; md_fail "a hanging --busybox exited $rc, expected 1"; }
grep -q "hang.sh: not a BusyBox binary ('--list-full' did not finish in 10 s)" err.txt ||
    { cat err.txt >&2; md_fail "the timeout message"; }
[ ! -e hang.cpio ] || md_fail "hang.cpio left behind"
[ -s child.pid ] || md_die "the script did not start its child"
pid=$(cat child.pid)
i=0
while running "$pid" && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
if running "$pid"; then
    kill -9 "$pid" 2>/dev/null || true
    md_fail "the script's child $pid outlived the probe's timeout"
fi

md_done "PASS: busybox under another name; the probe's process group killed on timeout"
