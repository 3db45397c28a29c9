#!/bin/sh
# A directory of the input tree swapped for a symlink while mdimg reads the
# tree (suite robustness).  A helper (python3: renameat2(RENAME_EXCHANGE) in
# a loop) keeps exchanging in/sub, a directory, with in/sub.link, a symlink
# to a directory outside the tree that holds a canary file, while
# `mdimg initramfs` and `mdimg disk populate` run 50 times each.  Before the
# walk opened directories relative to their parent with O_NOFOLLOW, it
# followed the swapped-in symlink: the canary was in the output and mdimg
# exited 0.  Checked with cpio -it, e2fsck -fn and the output's bytes (grep):
# every run exits 0 or 1 (never a signal or a hang), 1 with an "mdimg:"
# message and no output file left; the canary's name and contents are in no
# output; a successful output holds the whole tree; and the helper really
# swapped (a count) while the runs went on.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
md_need_tool python3
md_need_tool cpio
md_need_tool e2fsck e2fsprogs
md_need_tool timeout coreutils
md_tmpdir t-walk-race
cd "$T" || exit 1
RUNS=${MD_RACE_RUNS:-50}
CANARY=canary-7f3d1e
SECRET=SECRET-CONTENTS-b41c0a9e

# the input: many names before sub (a wider window between listing sub and
# opening it), sub with files, and the symlink that is swapped in for it
mkdir -p in/sub outside out
i=0
while [ $i -lt 1000 ]; do
    echo "$i" >"in/a$i"
    i=$((i + 1))
done
for f in one two three; do echo "$f" >"in/sub/$f"; done
echo "$SECRET" >"outside/$CANARY"
# the same names as in sub too, so that a followed symlink finds files
for f in one two three; do echo "$SECRET" >"outside/$f"; done
ln -s "$T/outside" in/sub.link
# a*, then sub and sub.link: each a symlink (1 entry) or the directory with
# its three files (4), as each was when it was examined (a listing is not a
# snapshot: both may be seen as symlinks, or both as the directory)
ENTRIES="1002 1005 1008"

cat >swap.py <<'EOF'
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]
a, b, count_file = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3]
n = 0
def stop(*_):
    with open(count_file, "w") as f:
        f.write("%d\n" % n)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    if libc.renameat2(-100, a, -100, b, 2) != 0:   # AT_FDCWD, RENAME_EXCHANGE
        sys.exit("renameat2: %s" % os.strerror(ctypes.get_errno()))
    n += 1
EOF

"$MDIMG" -q disk create base.img --size 16M --fs ext4 || md_die "disk create base.img failed"

python3 swap.py in/sub in/sub.link swaps &
SWAPPER=$!

# check_run WHAT STATUS OUTPUT: the checks common to both commands
check_run() {
    if [ "$2" -gt 1 ]; then
        md_fail "$1: status $2 (a signal, a hang or a usage error)"
        cat err >&2
        return 1
    fi
    if [ "$2" = 1 ] && ! head -n 1 err | grep -q '^mdimg:'; then
        md_fail "$1: status 1 without an 'mdimg:' message: $(cat err)"
    fi
    if [ -e "$3" ] && grep -aqe "$CANARY" -e "$SECRET" "$3"; then
        md_fail "$1: the canary from outside the tree is in $3 (status $2)"
        cp "$3" "$T.leak" 2>/dev/null
    fi
    return 0
}

ok_init=0 fail_init=0
i=0
while [ $i -lt "$RUNS" ]; do
    rm -f out/init.cpio
    timeout 60 "$MDIMG" -q initramfs -o out/init.cpio in >/dev/null 2>err
    st=$?
    check_run "initramfs run $i" $st out/init.cpio || break
    if [ $st = 0 ]; then
        ok_init=$((ok_init + 1))
        n=$(cpio -it <out/init.cpio 2>/dev/null | grep -vcx '\.')
        case " $ENTRIES " in
        *" $n "*) ;;
        *) md_fail "initramfs run $i: $n entries, not one of $ENTRIES" ;;
        esac
    else
        fail_init=$((fail_init + 1))
        [ ! -e out/init.cpio ] || md_fail "initramfs run $i failed and left out/init.cpio"
    fi
    [ -z "$(ls -A out)" ] || [ "$(ls -A out)" = init.cpio ] ||
        md_fail "initramfs run $i left $(ls -A out)"
    i=$((i + 1))
done

ok_pop=0 fail_pop=0
i=0
while [ $i -lt "$RUNS" ]; do
    cp base.img out/pop.img
    timeout 60 "$MDIMG" -q disk populate out/pop.img in >/dev/null 2>err
    st=$?
    check_run "disk populate run $i" $st out/pop.img || break
    if [ $st = 0 ]; then ok_pop=$((ok_pop + 1)); else fail_pop=$((fail_pop + 1)); fi
    # a failed populate may have written part of the tree, never a broken
    # filesystem
    e2fsck -fn out/pop.img >fsck.txt 2>&1 ||
        { md_fail "disk populate run $i (status $st): e2fsck -fn finds errors"; cat fsck.txt >&2; }
    i=$((i + 1))
done

kill "$SWAPPER"
wait "$SWAPPER"
swaps=$(cat swaps 2>/dev/null || echo 0)
[ "$swaps" -gt 1000 ] || md_fail "the helper swapped only $swaps times: the race was not run"
md_ok "initramfs: $ok_init exits 0, $fail_init exits 1; disk populate: $ok_pop exits 0, $fail_pop exits 1; $swaps swaps"
md_done PASS
