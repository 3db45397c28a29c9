#!/bin/sh
# Regression tests for what the fuzzers (tests/fuzz) found, each input made
# here from a few bytes (suite robustness).  Checked with blkid and cmp, and
# by the exit status and message of mdimg: never a signal, always an
# "mdimg:" message when refusing.
#   1. fuzz-image: an ext2 filesystem whose superblock says its first data
#      block is 9 made libext2fs overflow a heap buffer while reading the
#      bitmaps (and `disk ls` list nothing, exit 0): refused as corrupt.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
md_need_tool blkid
md_need_tool cmp
md_tmpdir t-fuzz-found
cd "$T" || exit 1

# expect_refusal WHAT STATUS: status 1 (or 2) with an "mdimg:" message in err.
expect_refusal() {
    if [ "$2" -gt 2 ]; then
        md_fail "$1: status $2 (a signal or a sanitizer report)"
        cat err >&2
    elif [ "$2" = 0 ]; then
        md_fail "$1: accepted (status 0)"
    elif ! head -n 1 err | grep -q '^mdimg:'; then
        md_fail "$1: status $2 without an 'mdimg:' message"
        cat err >&2
    else
        md_ok "$1: refused: $(head -n 1 err)"
    fi
}

# ---- 1. s_first_data_block = 9 -----------------------------------------------
mkdir -p tree
echo hi > tree/f
"$MDIMG" -q disk create good.img --size 64K --fs ext2 tree || md_die "making good.img failed"
cp good.img bad.img
# the superblock is at byte 1024; s_first_data_block is its 32-bit field at 20
printf '\011' | dd of=bad.img bs=1 seek=1044 conv=notrunc status=none
cp bad.img bad.orig
"$MDIMG" disk ls bad.img:/ > out 2> err
expect_refusal "disk ls of a corrupt superblock" $?
grep -q 'corrupt' err || md_fail "disk ls: the message does not say the filesystem is corrupt: $(cat err)"
"$MDIMG" disk cp bad.img:/f f.out > out 2> err
expect_refusal "disk cp out of a corrupt superblock" $?
[ ! -e f.out ] || md_fail "disk cp left f.out"
"$MDIMG" -q disk populate bad.img tree > out 2> err
expect_refusal "disk populate into a corrupt superblock" $?
cmp -s bad.img bad.orig || md_fail "disk populate changed the corrupt image"
"$MDIMG" disk ls good.img:/ > out 2> err && grep -qx 'f' out ||
    md_fail "disk ls of the intact image: $(cat out err)"

md_done "t-fuzz-found: fuzzer findings stay fixed"
