#!/bin/sh
# Concurrent runs on one path.  Two `disk create` of one image without
# --force: exactly one succeeds, the other says the image exists, and the
# image is the winner's (its label, by blkid) and e2fsck -fn clean.  Ten
# concurrent `disk cp` into one image: each succeeds or fails with the "in
# use" message (images are locked with OFD locks); with --wait all succeed.
# After each round e2fsck -fn is clean, every copied file is there with its
# contents (debugfs dump, cmp), no failed one is, and no temporary file is
# left next to the image.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

: "${MDIMG:?}"
for t in e2fsck debugfs blkid cmp; do
    md_need_tool $t
done
md_tmpdir t-concurrency
cd "$T"
export SOURCE_DATE_EPOCH=1700000000

no_temporaries() {
    left=$(find . -maxdepth 1 -name '.*.img.*' | head -3)
    [ -z "$left" ] || md_fail "$1: temporary files left: $left"
}

fsck_clean() {
    e2fsck -fn "$1" >fsck.txt 2>&1 || { cat fsck.txt >&2; md_fail "$2: e2fsck -fn $1"; }
}

mkdir -p tree
i=0
while [ $i -lt 40 ]; do
    head -c 200000 /dev/urandom >tree/file$i
    i=$((i + 1))
done

# ---- two disk create to one path, no --force
round=1
while [ $round -le 5 ]; do
    img=c$round.img
    for who in A B; do
        ( set +e; "$MDIMG" -q disk create "$img" --size 32M --fs ext4 --label "run$who" tree \
              >"out.$who" 2>"err.$who"; echo $? >"rc.$who" ) &
    done
    wait
    ok=0 winner=
    for who in A B; do
        rc=$(cat "rc.$who")
        case $rc in
        0) ok=$((ok + 1)); winner=$who ;;
        1) grep -q -e "already exists" -e "appeared while it was being made" "err.$who" ||
               { cat "err.$who" >&2; md_fail "create round $round: run $who failed for another reason"; } ;;
        *) cat "err.$who" >&2; md_fail "create round $round: run $who exited $rc" ;;
        esac
    done
    [ "$ok" = 1 ] || md_fail "create round $round: $ok runs succeeded, expected exactly 1"
    if [ "$ok" = 1 ]; then
        label=$(blkid -p -o value -s LABEL "$img" 2>/dev/null || true)
        [ "$label" = "run$winner" ] || md_fail "create round $round: label '$label', the winner was run$winner"
        fsck_clean "$img" "create round $round"
        debugfs -R 'dump /file7 file7.out' "$img" >/dev/null 2>&1 || true
        cmp -s file7.out tree/file7 || md_fail "create round $round: /file7 differs"
        rm -f file7.out
    fi
    no_temporaries "create round $round"
    round=$((round + 1))
done

# ---- ten disk cp into one image: one at a time, or "in use"
"$MDIMG" -q disk create d.img --size 64M --fs ext4
i=1
while [ $i -le 10 ]; do
    head -c 1500000 /dev/urandom >f$i
    head -c 1500000 /dev/urandom >g$i
    i=$((i + 1))
done

# copies PREFIX [OPTION]: ten concurrent disk cp of PREFIX1..10 to /PREFIXn
copies() {
    i=1
    while [ $i -le 10 ]; do
        ( set +e; "$MDIMG" -q disk cp ${2:-} "$1$i" "d.img:/$1$i" >"out.$1$i" 2>"err.$1$i"
          echo $? >"rc.$1$i" ) &
        i=$((i + 1))
    done
    wait
}

# judge PREFIX: statuses and messages, then what the image holds; $ok: the
# number of successful runs (not called in $(...): md_fail counts in this shell)
judge() {
    ok=0
    i=1
    while [ $i -le 10 ]; do
        rc=$(cat "rc.$1$i")
        case $rc in
        0)
            ok=$((ok + 1))
            rm -f got
            debugfs -R "dump /$1$i got" d.img >/dev/null 2>&1 || true
            cmp -s got "$1$i" || md_fail "cp $1$i succeeded, but /$1$i is not its contents"
            ;;
        1)
            grep -q "d.img: in use by another program" "err.$1$i" ||
                { cat "err.$1$i" >&2; md_fail "cp $1$i failed for another reason"; }
            debugfs -R "stat /$1$i" d.img 2>&1 | grep -q 'File not found' ||
                md_fail "cp $1$i failed, but /$1$i is in the image"
            ;;
        *) cat "err.$1$i" >&2; md_fail "cp $1$i exited $rc" ;;
        esac
        i=$((i + 1))
    done
    [ "$ok" -ge 1 ] || md_fail "no cp of $1 succeeded"
    fsck_clean d.img "after the $1 copies"
    no_temporaries "after the $1 copies"
}

copies f
judge f
md_ok "$ok of 10 concurrent disk cp succeeded, the others were told the image is in use"
copies g --wait
judge g
[ "$ok" = 10 ] || md_fail "with --wait $ok of 10 disk cp succeeded"
# the first round's files are still there
i=1
while [ $i -le 10 ]; do
    if [ "$(cat rc.f$i)" = 0 ]; then
        rm -f got
        debugfs -R "dump /f$i got" d.img >/dev/null 2>&1 || true
        cmp -s got f$i || md_fail "/f$i changed by the --wait round"
    fi
    i=$((i + 1))
done

md_done "PASS: concurrent create and cp on one image"
