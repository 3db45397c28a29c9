#!/bin/sh
# A tree 2,000 directories deep (suite robustness): d/d/.../d, each level
# holding a file f with its depth after the directory, so that every level
# still has something to visit while the walk is below it; the deepest path,
# 2000 x "d/" + "f", is 4,001 bytes.  The recursive walk overflowed the
# stack (SIGSEGV) on it.  Run with at most 256 open files (the walk keeps a
# bounded number of directories open, not one per level), and once more with
# 24 (the walk then closes more of them), which must give the same archive
# byte for byte.  Checked through
# `initramfs` (cpio -it: every entry; cpio -i --to-stdout: the deepest file's
# contents), `disk create --fs ext4` and `disk populate` (e2fsck -fn clean;
# debugfs cat of the deepest file and of one near the top), `disk create
# --fs vfat` (fsck.fat -n clean; mtype of the deepest file), and our own
# readers on the ext image: `disk ls` and `disk cp` of the deepest entries.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
md_need_tool python3
md_need_tool cpio
md_need_tool e2fsck e2fsprogs
md_need_tool debugfs e2fsprogs
md_need_tool cmp diffutils
md_tmpdir t-walk-deep
cd "$T" || exit 1

DEPTH=2000
python3 - "$DEPTH" <<'EOF' || md_die "making the deep tree failed"
import os, sys
depth = int(sys.argv[1])
os.mkdir("deep")
fd = os.open("deep", os.O_RDONLY | os.O_DIRECTORY)
for i in range(depth + 1):
    f = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(f, b"%d\n" % i)
    os.close(f)
    if i == depth:
        break
    os.mkdir("d", dir_fd=fd)
    nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
os.close(fd)
EOF
DIRS=$(python3 -c "print('d/' * $DEPTH, end='')")
DEEPEST="${DIRS}f"
ENTRIES=$((DEPTH + DEPTH + 1))
[ ${#DEEPEST} = $((DEPTH * 2 + 1)) ] || md_die "the deepest path is ${#DEEPEST} bytes"

# run WHAT CMD...: CMD with at most $NOFILE descriptors; status 0 or a failure
NOFILE=256
run() {
    what=$1
    shift
    (ulimit -n $NOFILE && exec "$@") >out.txt 2>err.txt
    st=$?
    [ $st = 0 ] && return 0
    md_fail "$what: status $st: $(cat err.txt)"
    return 1
}

# ---- initramfs ----------------------------------------------------------------------
if run "initramfs" "$MDIMG" -q initramfs -o deep.cpio deep; then
    cpio -it <deep.cpio >list.txt 2>/dev/null || md_fail "cpio -it cannot read deep.cpio"
    n=$(grep -vcx '\.' list.txt)
    [ "$n" = "$ENTRIES" ] || md_fail "initramfs: $n entries in the archive, not $ENTRIES"
    grep -qxF "$DEEPEST" list.txt || md_fail "initramfs: the deepest file is not listed"
    got=$(cpio -i --quiet --to-stdout "$DEEPEST" <deep.cpio 2>&1)
    [ "$got" = "$DEPTH" ] || md_fail "initramfs: the deepest file holds '$got', not $DEPTH"
    md_ok "initramfs: $n entries, the deepest file at depth $DEPTH"
    NOFILE=24
    if run "initramfs with 24 descriptors" "$MDIMG" -q initramfs -o deep24.cpio deep; then
        cmp -s deep.cpio deep24.cpio || md_fail "initramfs with 24 descriptors: another archive"
    fi
    NOFILE=256
fi

# ---- ext4: disk create, disk populate -------------------------------------------------
# check_ext WHAT IMG: e2fsck clean, the deepest file and one near the top read by debugfs
check_ext() {
    if ! e2fsck -fn "$2" >fsck.txt 2>&1; then
        md_fail "$1: e2fsck -fn finds errors"
        cat fsck.txt >&2
    fi
    got=$(debugfs -R "cat /$DEEPEST" "$2" 2>/dev/null)
    [ "$got" = "$DEPTH" ] || md_fail "$1: debugfs reads '$got' from the deepest file, not $DEPTH"
    got=$(debugfs -R "cat /d/f" "$2" 2>/dev/null)
    [ "$got" = 1 ] || md_fail "$1: debugfs reads '$got' from /d/f, not 1"
}
if run "disk create --fs ext4" "$MDIMG" -q disk create --size 64M --fs ext4 deep.img deep; then
    check_ext "disk create --fs ext4" deep.img
    "$MDIMG" disk ls "deep.img:/$DIRS" >ls.txt 2>err.txt && [ "$(cat ls.txt)" = f ] ||
        md_fail "disk ls of the deepest directory: $(cat ls.txt err.txt)"
    "$MDIMG" disk cp "deep.img:/$DEEPEST" deepest.out 2>err.txt &&
        [ "$(cat deepest.out)" = "$DEPTH" ] ||
        md_fail "disk cp of the deepest file: $(cat deepest.out err.txt 2>&1)"
    md_ok "disk create --fs ext4: e2fsck clean, the deepest file read back"
fi
"$MDIMG" -q disk create --size 64M --fs ext4 pop.img || md_die "disk create pop.img failed"
if run "disk populate" "$MDIMG" -q disk populate pop.img deep; then
    check_ext "disk populate" pop.img
    md_ok "disk populate: e2fsck clean, the deepest file read back"
fi

# ---- vfat -----------------------------------------------------------------------------
if run "disk create --fs vfat" "$MDIMG" -q disk create --size 64M --fs vfat deep-fat.img deep; then
    if md_want_tool fsck.fat dosfstools; then
        fsck.fat -n deep-fat.img >fsck.txt 2>&1 ||
            { md_fail "disk create --fs vfat: fsck.fat -n finds errors"; cat fsck.txt >&2; }
    fi
    if md_want_tool mtype mtools; then
        got=$(mtype -i deep-fat.img "::/$DEEPEST" 2>&1)
        [ "$got" = "$DEPTH" ] || md_fail "disk create --fs vfat: mtype reads '$got' from the deepest file"
    fi
    md_ok "disk create --fs vfat: checked"
fi
md_done PASS
