#!/bin/sh
# Regression tests for what the fuzzers (tests/fuzz) found, each input made
# here from a few bytes (suite robustness).  Checked with blkid and cmp, and
# by the exit status and message of mdimg: never a signal, always an
# "mdimg:" message when refusing.
#   1. fuzz-image: an ext2 filesystem whose superblock says its first data
#      block is 9 made libext2fs overflow a heap buffer while reading the
#      bitmaps (and `disk ls` list nothing, exit 0): refused as corrupt.
#   2. fuzz-cpio, fuzz-archive-ext: a 112-byte newc archive declaring a 4 GiB
#      file made the library allocate 4 GiB before reading a byte of it
#      (lib/md-tree-archive.c read_data): with 1 GiB of address space it must
#      fail as a truncated archive, not run out of memory.
#   3. fuzz-parse: an MBR partition of type 0xee (GPT protective) makes the
#      disk a protective MBR without a GPT: libblkid and the kernel then see
#      no partition at all; mdimg must refuse it or write a table they see.
#   4. fuzz-fat: a FAT directory entry saying 4 GiB for a one-cluster file
#      made md_fat_read_file() allocate 4 GiB before following the chain
#      (test-fat's test_corrupt_size), and a looping chain would have been
#      read round until then.  `disk cp` (which streams) out of it must
#      refuse it as corrupt before reading, naming the impossible size, in
#      1 GiB of address space; fsck.fat -n confirms the damage.
#   5. fuzz-fat: a FAT short entry of blanks was listed with an empty name
#      (`disk ls` printed an empty line; a caller joining names to paths got
#      the directory itself), and a '/' in a short or long name went through:
#      every name listed must be one path component ('/' reads as '?', a long
#      name with '/' gives way to the short one, a blank entry is left out
#      with a warning), and what is listed can be copied out by that name.
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

# ---- 2. a newc header declaring 4 GiB of data ------------------------------------
printf '070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x' \
    1 33188 0 0 1 0 4294967280 0 0 0 0 2 0 > huge.cpio
printf 'a\0' >> huge.cpio
[ "$(wc -c < huge.cpio)" = 112 ] || md_die "huge.cpio is not 112 bytes"
if grep -q __asan_init "$MDIMG"; then # gcc's or clang's ASan
    echo "note: ASan reserves more address space than the limit: check 2 skipped"
else
    (ulimit -v 1048576 && exec "$MDIMG" -q initramfs -o huge.out huge.cpio) > out 2> err
    st=$?
    expect_refusal "a truncated archive declaring 4 GiB" "$st"
    if grep -qi 'out of memory' err; then
        md_fail "a 112-byte archive ran out of memory (the declared size was allocated): $(cat err)"
    fi
    [ ! -e huge.out ] || md_fail "initramfs left huge.out"
fi

# ---- 3. MBR partition type 0xee ---------------------------------------------------
"$MDIMG" -q disk create ee.img --size 8M --table mbr --part 1M:ee --part 1M > out 2> err
st=$?
if [ "$st" = 0 ]; then
    pt=$(blkid -p -o value -s PTTYPE ee.img)
    [ "$pt" = dos ] && md_ok "type 0xee: blkid sees an MBR" ||
        md_fail "MBR with a type 0xee partition accepted, but blkid sees '$pt', no partitions"
else
    expect_refusal "MBR partition of type 0xee" "$st"
fi

# ---- 4. a FAT file whose entry says 4 GiB -----------------------------------------
mkdir -p fat
printf '0123456789' > fat/BIG.BIN
"$MDIMG" -q disk create fat.img --size 128K --fs fat12 fat || md_die "making fat.img failed"
# the short entry "BIG     BIN" (an 8.3 name in upper case has no long name); its
# 32-bit size is at byte 28
off=$(grep -obUa 'BIG     BIN' fat.img | head -n 1 | cut -d: -f1)
[ -n "$off" ] || md_die "no directory entry BIG.BIN in fat.img"
printf '\360\377\377\377' | dd of=fat.img bs=1 seek=$((off + 28)) conv=notrunc status=none
cp fat.img fat.orig
if md_want_tool fsck.fat dosfstools; then
    if fsck.fat -n fat.img > fsck.out 2>&1; then
        md_fail "fsck.fat -n finds nothing wrong with the patched image: the fixture is wrong"
        cat fsck.out >&2
    else
        md_ok "fsck.fat -n: $(grep -i 'BIG' fsck.out | head -n 1)"
    fi
fi
"$MDIMG" disk ls -l fat.img:/ > out 2> err ||
    md_fail "disk ls -l of the damaged image failed: $(cat err)"
grep -q '4294967280.*BIG.BIN' out || md_fail "disk ls -l does not show BIG.BIN's 4294967280 bytes: $(cat out)"
if grep -q __asan_init "$MDIMG"; then
    "$MDIMG" disk cp fat.img:/BIG.BIN big.out > out 2> err
else
    (ulimit -v 1048576 && exec "$MDIMG" disk cp fat.img:/BIG.BIN big.out) > out 2> err
fi
expect_refusal "disk cp of a FAT file whose entry says 4 GiB" $?
grep -q 'BIG.BIN: its size, 4294967280 bytes, is larger than' err ||
    md_fail "disk cp: the message does not say the size is impossible: $(cat err)"
if grep -qi 'out of memory' err; then
    md_fail "a 10-byte file said to be 4 GiB ran out of memory: $(cat err)"
fi
[ ! -e big.out ] || md_fail "disk cp left big.out"
ls -a | grep -q '^\.big\.out' && md_fail "disk cp left a temporary file: $(ls -a)"
cmp -s fat.img fat.orig || md_fail "disk cp changed the image it read"

# ---- 5. names that are not one path component -------------------------------------
mkdir -p names
printf 'ab\n' > names/AB.TXT
printf 'cd\n' > names/CD.TXT
printf 'long\n' > 'names/A long name.txt'
printf 'keep\n' > names/keep.txt
"$MDIMG" -q disk create names.img --size 128K --fs fat12 names || md_die "making names.img failed"
for n in 'AB      TXT' 'CD      TXT' 'ALONGN~1TXT'; do
    grep -obUa "$n" names.img | head -n 1 | cut -d: -f1
done > offsets
[ "$(wc -l < offsets)" = 3 ] || md_die "names.img lacks one of its short entries"
ab=$(sed -n 1p offsets) cd=$(sed -n 2p offsets) lfn=$(sed -n 3p offsets)
printf '/' | dd of=names.img bs=1 seek=$((ab + 1)) conv=notrunc status=none
printf '           ' | dd of=names.img bs=1 seek="$cd" conv=notrunc status=none
# the long name's first slot is the entry before its short one; its second
# character, at byte 3 of the slot, becomes '/'
printf '/' | dd of=names.img bs=1 seek=$((lfn - 32 + 3)) conv=notrunc status=none
if md_want_tool fsck.fat dosfstools; then
    fsck.fat -n names.img > fsck.out 2>&1 &&
        { md_fail "fsck.fat -n finds nothing wrong with names.img: the fixture is wrong"; cat fsck.out >&2; }
fi
"$MDIMG" disk ls names.img:/ > out 2> err
st=$?
if [ "$st" != 0 ]; then
    md_fail "disk ls of damaged names: status $st: $(cat err)"
else
    grep -qx '' out && md_fail "disk ls prints an empty name: $(cat out)"
    grep -q '/' out && md_fail "disk ls prints a name with '/': $(cat out)"
    [ "$(tr '\n' ' ' < out)" = 'A?.TXT ALONGN~1.TXT keep.txt ' ] ||
        md_fail "disk ls of damaged names: $(tr '\n' ' ' < out)"
    grep -q '1 directory entry without a name' err ||
        md_fail "disk ls does not say an entry was left out: $(cat err)"
    md_ok "disk ls of damaged names: $(tr '\n' ' ' < out); $(cat err)"
fi
"$MDIMG" disk cp 'names.img:/A?.TXT' ab.out 2> err && [ "$(cat ab.out)" = ab ] ||
    md_fail "disk cp of the name listed (A?.TXT): $(cat err)"
"$MDIMG" disk cp 'names.img:/ALONGN~1.TXT' long.out 2> err && [ "$(cat long.out)" = long ] ||
    md_fail "disk cp of the name listed (ALONGN~1.TXT): $(cat err)"

md_done "t-fuzz-found: fuzzer findings stay fixed"
