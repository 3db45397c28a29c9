#!/bin/sh
# File data into ext2/ext4 (disk create DIR|ARCHIVE; the read-ahead thread):
# holes and all-zero blocks become holes whatever the host file's layout.
# The same contents as a sparse tree, as a dense copy (cp --sparse=never) and
# as a tarball give the same per-file block counts (debugfs stat), the same
# contents (debugfs dump + cmp), e2fsck -fn clean; the sparse and the dense
# tree give the same image bytes, and so does --no-sync.  Chunk edges of the
# read-ahead (512 KiB) and of libext2fs's blocks are crossed on purpose.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
for t in debugfs e2fsck cmp tar truncate dd head sha256sum; do
    md_need_tool "$t"
done
md_tmpdir t-ext-holes
cd "$T" || exit 1
export SOURCE_DATE_EPOCH=1700000000

mkdir -p sp/d
# a host hole, data at 3 MB, a tail
truncate -s 10M sp/d/sparse
printf 'abc' | dd of=sp/d/sparse bs=1 seek=3000000 conv=notrunc 2>/dev/null
printf 'end' >> sp/d/sparse
# written zeros (allocated on the host): holes in the image all the same
dd if=/dev/zero of=sp/d/zeros bs=1M count=3 2>/dev/null
# data, 600000 zero bytes across a 512 KiB chunk edge, data
{ head -c 700000 /dev/urandom; head -c 600000 /dev/zero; head -c 5000 /dev/urandom; } > sp/d/mixed
ln sp/d/mixed sp/d/mixedlink
truncate -s 5M sp/d/allhole
# data on both sides of a host hole that starts inside a block
head -c 524289 /dev/urandom > sp/d/edge
truncate -s 2000000 sp/d/edge
printf 'x' >> sp/d/edge
# six pieces of data between holes: six extents, more than the inode holds
# (4), so the extent tree gets a leaf block
for i in 0 1 2 3 4 5; do
    head -c 5000 /dev/urandom | dd of=sp/d/islands bs=1M seek=$i conv=notrunc 2>/dev/null
done
head -c 2000000 /dev/urandom > sp/big
ln sp/big sp/d/biglink
: > sp/empty
cp -a sp dense
for f in d/sparse d/zeros d/mixed d/allhole d/edge d/islands; do
    rm dense/$f
    cp --sparse=never sp/$f dense/$f
done
ln -f dense/d/mixed dense/d/mixedlink
# the host may not keep holes (then the sparse tree is dense too: still a
# valid check of the zero blocks)
[ "$(du -k sp/d/sparse | cut -f1)" -lt 1024 ] || echo "note: the host filesystem keeps no holes"
tar -C sp -cf sp.tar .

for fs in ext2 ext4; do
    for src in sp dense sp.tar; do
        img=$fs-$src.img
        "$MDIMG" -q disk create "$img" --size 64M --fs "$fs" "$src" 2>err ||
            { md_fail "$fs from $src: exit $? ($(cat err))"; continue; }
        e2fsck -fn "$img" > fsck.out 2>&1 && md_ok "$fs from $src: e2fsck -fn clean" ||
            { md_fail "$fs from $src: e2fsck -fn"; cat fsck.out >&2; }
        for f in d/sparse d/zeros d/mixed d/mixedlink d/allhole d/edge d/islands big d/biglink empty; do
            rm -f out
            debugfs -R "dump /$f out" "$img" 2>/dev/null
            cmp -s out "sp/$f" || md_fail "$fs from $src: /$f differs from the source"
            debugfs -R "stat /$f" "$img" 2>/dev/null | sed -n 's/.*Blockcount: \([0-9]*\).*/\1/p' \
                > "$img.$(echo "$f" | tr / _).blocks"
        done
    done
    for f in d_sparse d_zeros d_mixed d_allhole d_edge d_islands big; do
        a=$(cat "$fs-sp.img.$f.blocks") b=$(cat "$fs-dense.img.$f.blocks") c=$(cat "$fs-sp.tar.img.$f.blocks")
        [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$c" ] && md_ok "$fs: $f takes $a sectors from each source" ||
            md_fail "$fs: $f takes $a / $b / $c sectors (sparse tree / dense tree / tarball)"
    done
    # zero blocks are holes: 3 MiB of zeros take nothing, 5 MiB of hole nothing
    [ "$(cat "$fs-dense.img.d_zeros.blocks")" = 0 ] && md_ok "$fs: written zeros are a hole" ||
        md_fail "$fs: d/zeros takes $(cat "$fs-dense.img.d_zeros.blocks") sectors"
    [ "$(cat "$fs-dense.img.d_allhole.blocks")" = 0 ] && md_ok "$fs: an all-hole file takes no block" ||
        md_fail "$fs: d/allhole takes $(cat "$fs-dense.img.d_allhole.blocks") sectors"
    # ext4: six extents do not fit in the inode: an index there (debugfs
    # level 0/1) and six entries in one leaf block (level 1/1)
    if [ "$fs" = ext4 ]; then
        debugfs -R "ex /d/islands" "$fs-sp.img" 2>/dev/null > ex.out
        n=$(grep -c "^ *1/ *1" ex.out)
        [ "$n" = 6 ] && grep -q "^ *0/ *1" ex.out && md_ok "ext4: d/islands has 6 extents in a leaf block" ||
            { md_fail "ext4: d/islands extents:"; cat ex.out >&2; }
    fi
    [ "$(sha256sum < "$fs-sp.img")" = "$(sha256sum < "$fs-dense.img")" ] &&
        md_ok "$fs: the sparse and the dense tree give the same image bytes" ||
        md_fail "$fs: the sparse and the dense tree give different images"
    # --no-sync changes when the bytes reach the disk, never which bytes
    "$MDIMG" -q disk create "$fs-nosync.img" --no-sync --size 64M --fs "$fs" sp 2>err ||
        md_fail "$fs --no-sync: exit $? ($(cat err))"
    [ "$(sha256sum < "$fs-sp.img")" = "$(sha256sum < "$fs-nosync.img")" ] &&
        md_ok "$fs: --no-sync gives the same image bytes" ||
        md_fail "$fs: --no-sync gives a different image"
done
md_done "holes and zero blocks"
