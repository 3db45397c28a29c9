#!/bin/sh
# Messages that must say what and why (suite robustness; issue 11 items 9
# and 11):
#   9. libext2fs's errors in its own words, never "Unknown code ext2 N" (its
#      error table was never read): an ext2 superblock with an unknown
#      incompatible feature bit, and one whose first data block is wrong,
#      refused by `disk ls`/`disk cp`/`disk populate` with libext2fs's text;
#      and a write that fails while a file's data is written (the fault shim
#      makes every write fail with ENOSPC, as a full disk does) names the
#      file as well as the cause ("writing file data: Unknown code ext2 37"
#      named neither); e2fsck -fn says the image is still clean.
#  11. a malformed SOURCE_DATE_EPOCH (abc, 12abc, -5, " 12", 1e9, 0x10, a
#      number past 64 bits) is refused by every command that builds something,
#      naming the value, and nothing is written; an empty one means unset, as
#      reproducible-builds.org says.
# Judged with e2fsck -fn, debugfs and cmp.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
md_need_tool e2fsck e2fsprogs
md_need_tool debugfs e2fsprogs
md_need_tool cmp
md_tmpdir t-messages
cd "$T" || exit 1

# refused WHAT WANT: the last command ($st, err) failed with status 1, an
# "mdimg:" message matching WANT (grep -E), and no "Unknown code".
refused() {
    if [ "$st" != 1 ]; then
        md_fail "$1: status $st, not 1: $(cat err)"
    elif ! head -n 1 err | grep -q '^mdimg: '; then
        md_fail "$1: no 'mdimg:' message: $(cat err)"
    elif grep -q 'Unknown code' err; then
        md_fail "$1: libext2fs's error table was not read: $(cat err)"
    elif ! grep -Eq "$2" err; then
        md_fail "$1: the message does not match '$2': $(cat err)"
    else
        md_ok "$1: $(head -n 1 err)"
    fi
}

mkdir -p tree/etc
echo hi >tree/etc/hi
"$MDIMG" -q disk create good.img --size 1M --fs ext2 tree || md_die "making good.img failed"

# ---- 9. libext2fs's own words --------------------------------------------------------
# s_feature_incompat is the 32-bit field at byte 96 of the superblock (at 1024):
# its top bit is no feature libext2fs knows
cp good.img feat.img
printf '\200' | dd of=feat.img bs=1 seek=$((1024 + 96 + 3)) conv=notrunc status=none
cp feat.img feat.orig
"$MDIMG" disk ls feat.img:/ >out 2>err
st=$?
refused "disk ls, an unknown incompatible feature" 'feat\.img: .*[Uu]nsupported feature'
"$MDIMG" -q disk populate feat.img tree >out 2>err
st=$?
refused "disk populate, an unknown incompatible feature" 'feat\.img: .*[Uu]nsupported feature'
cmp -s feat.img feat.orig || md_fail "disk populate changed the image it refused"
# s_first_data_block (byte 20): 9 on a filesystem of 1 KiB blocks
cp good.img first.img
printf '\011' | dd of=first.img bs=1 seek=$((1024 + 20)) conv=notrunc status=none
"$MDIMG" disk cp first.img:/etc/hi hi.out >out 2>err
st=$?
refused "disk cp, a wrong first data block" 'first\.img: .*(corrupt|[Cc]orrupt)'
[ ! -e hi.out ] || md_fail "disk cp left hi.out"

# ---- 9. a write failing while a file's data is written: the file named --------
if [ -n "${MD_FAULT_SHIM:-}" ] && [ -r "$MD_FAULT_SHIM" ]; then
    asan_opts=${ASAN_OPTIONS:-}
    if command -v ldd >/dev/null 2>&1 && ldd "$MDIMG" 2>/dev/null | grep -q libasan; then
        asan_opts=${asan_opts:+$asan_opts:}verify_asan_link_order=0
    fi
    seq 1 100000 >host-file
    mkdir -p src/opt
    cp host-file src/opt/data-file
    "$MDIMG" -q disk create base.img --size 8M --fs ext4 tree || md_die "making base.img failed"
    cp base.img w.img
    env ASAN_OPTIONS="$asan_opts" MD_FAULT=write:1+ LD_PRELOAD="$MD_FAULT_SHIM" \
        "$MDIMG" disk cp host-file w.img:/etc/new >out 2>err
    st=$?
    refused "disk cp, every write failing" 'host-file: .*No space left on device'
    e2fsck -fn w.img >fsck.txt 2>&1 || { md_fail "disk cp: e2fsck -fn after the failure"; cat fsck.txt >&2; }
    cp base.img w.img
    env ASAN_OPTIONS="$asan_opts" MD_FAULT=write:1+ LD_PRELOAD="$MD_FAULT_SHIM" \
        "$MDIMG" disk populate w.img src >out 2>err
    st=$?
    refused "disk populate, every write failing" 'data-file: .*No space left on device'
    e2fsck -fn w.img >fsck.txt 2>&1 ||
        { md_fail "disk populate: e2fsck -fn after the failure"; cat fsck.txt >&2; }
    debugfs -R 'cat /etc/hi' w.img 2>/dev/null | grep -qx hi || md_fail "disk populate: /etc/hi lost"
else
    md_missing_part "the fault injection shim (MD_FAULT_SHIM, built in BUILD/tests/fault)" ||
        true
fi

# ---- 11. SOURCE_DATE_EPOCH ----------------------------------------------------------------
for v in abc 12abc -5 ' 12' 1e9 0x10 99999999999999999999; do
    env SOURCE_DATE_EPOCH="$v" "$MDIMG" initramfs -o e.cpio tree >out 2>err
    st=$?
    refused "initramfs, SOURCE_DATE_EPOCH='$v'" "SOURCE_DATE_EPOCH='$v' is not a number"
    env SOURCE_DATE_EPOCH="$v" "$MDIMG" disk create e.img --size 8M --fs ext4 tree >out 2>err
    st=$?
    refused "disk create, SOURCE_DATE_EPOCH='$v'" "SOURCE_DATE_EPOCH='$v' is not a number"
    [ ! -e e.img ] || md_fail "disk create with SOURCE_DATE_EPOCH='$v' left e.img"
    cp good.img e.img
    cp e.img e.orig
    env SOURCE_DATE_EPOCH="$v" "$MDIMG" disk cp tree/etc/hi e.img:/etc/hi2 >out 2>err
    st=$?
    refused "disk cp, SOURCE_DATE_EPOCH='$v'" "SOURCE_DATE_EPOCH='$v' is not a number"
    cmp -s e.img e.orig || md_fail "disk cp with SOURCE_DATE_EPOCH='$v' changed the image"
    rm -f e.img e.orig
    [ ! -e e.cpio ] || md_fail "initramfs with SOURCE_DATE_EPOCH='$v' left e.cpio"
done
env SOURCE_DATE_EPOCH= "$MDIMG" -q initramfs -o e.cpio tree 2>err ||
    md_fail "an empty SOURCE_DATE_EPOCH (unset) was refused: $(cat err)"
env SOURCE_DATE_EPOCH=0 "$MDIMG" -q initramfs -o e0.cpio tree 2>err ||
    md_fail "SOURCE_DATE_EPOCH=0 was refused: $(cat err)"

md_done "t-messages: libext2fs's words and the file named; malformed SOURCE_DATE_EPOCH refused"
