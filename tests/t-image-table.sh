#!/bin/sh
# Partition tables that do not fit the file (issue 11 item 5): a partition
# past the end of a truncated image, a GPT that describes a larger disk,
# overlapping MBR partitions, a partition on the MBR or on the GPT's own
# sectors.  Every write is refused before it starts, with a message that
# says what is wrong; the image keeps its size (stat) and its bytes (cmp);
# what the checks refuse for reading is refused too, and a good table in a
# grown file, or an extended partition with its logical ones, is not.  The
# tables are made and read by sfdisk (and a few bytes patched by python3);
# the filesystems judged by e2fsck -fn and debugfs.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

: "${MDIMG:?}"
for t in sfdisk e2fsck debugfs python3 cmp stat truncate; do
    md_need_tool $t
done
md_tmpdir t-image-table
cd "$T"
export SOURCE_DATE_EPOCH=1700000000

# refused IMG PATTERN cmd...: exit 1 with PATTERN, IMG unchanged: size and bytes
refused() {
    img=$1 pat=$2
    shift 2
    cp --sparse=always "$img" before.img
    size=$(stat -c %s "$img")
    md_expect 1 "$pat" "$@"
    [ "$(stat -c %s "$img")" = "$size" ] || md_fail "'$*' changed the size of $img: $size -> $(stat -c %s "$img")"
    cmp -s before.img "$img" || md_fail "'$*' changed $img"
}

# mbr_entry IMG SLOT TYPE START SECTORS: write MBR entry SLOT (0..3) as it is
mbr_entry() {
    python3 - "$@" <<'EOF'
import struct, sys
img, slot, typ, start, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 16), int(sys.argv[4]), int(sys.argv[5])
with open(img, "r+b") as f:
    f.seek(446 + 16 * slot)
    f.write(struct.pack("<B3sB3sII", 0, b"\0\0\0", typ, b"\0\0\0", start, size))
    f.seek(510)
    f.write(b"\x55\xaa")
EOF
}

# gpt_entry IMG N FIRST LAST: set entry N's LBAs in both GPTs, CRCs redone
gpt_entry() {
    python3 - "$@" <<'EOF'
import struct, sys, zlib
img, n, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(img, "r+b") as f:
    f.seek(512 + 32)
    backup = struct.unpack("<Q", f.read(8))[0]
    for lba in (1, backup):
        f.seek(lba * 512)
        h = bytearray(f.read(512))
        hsize = struct.unpack_from("<I", h, 12)[0]
        elba, cnt, esz = struct.unpack_from("<QII", h, 72)
        f.seek(elba * 512)
        e = bytearray(f.read(cnt * esz))
        struct.pack_into("<QQ", e, (n - 1) * esz + 32, first, last)
        f.seek(elba * 512)
        f.write(e)
        struct.pack_into("<I", h, 88, zlib.crc32(e))
        struct.pack_into("<I", h, 16, 0)
        struct.pack_into("<I", h, 16, zlib.crc32(bytes(h[:hsize])))
        f.seek(lba * 512)
        f.write(h)
EOF
}

mkdir -p tree
printf 'kept\n' >tree/kept.txt
printf 'new\n' >new.txt

# ---- MBR, truncated: partition 2 ends past the end of the file
"$MDIMG" -q disk create m.img --size 64M --table mbr --part 16M --part rest --fs ext4 --fs-part 2 tree
"$MDIMG" -q disk format m.img --part 1 --fs ext4
truncate -s 40M m.img
sfdisk -d m.img 2>/dev/null | grep -q 'm.img2 : start= *34816, size= *96256,' ||
    { sfdisk -d m.img >&2; md_die "sfdisk does not see the table the test made"; }
msg="m.img: partition 2 ends at 64 MiB, beyond the image's 40 MiB: truncated image?"
refused m.img "$msg" "$MDIMG" disk format m.img --part 2 --fs ext4
refused m.img "$msg" "$MDIMG" disk cp new.txt m.img:2:/new.txt
refused m.img "$msg" "$MDIMG" disk populate m.img --part 2 tree
# a write to the intact partition 1 is refused too: the table is wrong
refused m.img "$msg" "$MDIMG" disk format m.img --part 1 --fs ext2
refused m.img "$msg" "$MDIMG" disk cp new.txt m.img:1:/new.txt
# reading partition 2 would read zeros past the end: refused as well
refused m.img "$msg" "$MDIMG" disk ls m.img:2:/
rm -f out.txt
refused m.img "$msg" "$MDIMG" disk cp m.img:2:/kept.txt kept.out
[ ! -e kept.out ] || md_fail "disk cp out of a cut partition left kept.out"
# reading the intact partition is fine
"$MDIMG" disk ls m.img:1:/ >ls.txt 2>err.txt || { cat err.txt >&2; md_fail "disk ls of intact partition 1"; }
grep -qx 'lost+found' ls.txt || md_fail "disk ls of partition 1: $(cat ls.txt)"
# grown back, everything is there and clean
truncate -s 64M m.img
e2fsck -fn "m.img?offset=$((34816 * 512))" >fsck.txt 2>&1 || { cat fsck.txt >&2; md_fail "e2fsck partition 2"; }
debugfs -R 'cat /kept.txt' "m.img?offset=$((34816 * 512))" 2>/dev/null | grep -qx kept ||
    md_fail "kept.txt lost from partition 2"
"$MDIMG" -q disk cp new.txt m.img:2:/new.txt || md_fail "disk cp into the grown-back image"
debugfs -R 'cat /new.txt' "m.img?offset=$((34816 * 512))" 2>/dev/null | grep -qx new ||
    md_fail "new.txt not in the grown-back image"

# ---- a 16 MiB file whose MBR puts partition 2 at 1 TiB (it grew to 1 TB)
"$MDIMG" -q disk create t.img --size 16M --table mbr --part 8M
mbr_entry t.img 1 83 2147483648 65536
sfdisk -d t.img 2>/dev/null | grep -q 't.img2 : start= *2147483648, size= *65536,' ||
    { sfdisk -d t.img >&2; md_die "sfdisk does not see partition 2 at 1 TiB"; }
msg="t.img: partition 2 ends at 1.0 TiB, beyond the image's 16 MiB: truncated image?"
refused t.img "$msg" "$MDIMG" disk format t.img --part 2 --fs ext4
refused t.img "$msg" "$MDIMG" disk format t.img --part 2 --fs vfat
refused t.img "$msg" "$MDIMG" disk format t.img --part 1 --fs ext4
[ "$(stat -c %s t.img)" = 16777216 ] || md_fail "t.img is $(stat -c %s t.img) bytes, not 16 MiB"

# ---- MBR, overlapping partitions: formatting one would destroy the other
"$MDIMG" -q disk create o.img --size 64M --table mbr --part 20M --part 20M --fs ext4 --fs-part 1 tree
mbr_entry o.img 1 83 30720 40960
sfdisk -d o.img 2>/dev/null | grep -q 'o.img2 : start= *30720, size= *40960,' ||
    { sfdisk -d o.img >&2; md_die "sfdisk does not see the overlapping partition 2"; }
msg="o.img: partitions 1 and 2 overlap (sectors 30720-43007)"
refused o.img "$msg" "$MDIMG" disk format o.img --part 2 --fs ext4
refused o.img "$msg" "$MDIMG" disk format o.img --part 2 --fs vfat
refused o.img "$msg" "$MDIMG" disk cp new.txt o.img:1:/new.txt
# reading does not hurt: allowed
"$MDIMG" disk ls o.img:1:/ >ls.txt 2>err.txt || { cat err.txt >&2; md_fail "disk ls of overlapping partition 1"; }
grep -qx 'kept.txt' ls.txt || md_fail "disk ls o.img:1:/: $(cat ls.txt)"
e2fsck -fn "o.img?offset=1048576" >fsck.txt 2>&1 || { cat fsck.txt >&2; md_fail "e2fsck o.img partition 1"; }
debugfs -R 'cat /kept.txt' "o.img?offset=1048576" 2>/dev/null | grep -qx kept || md_fail "kept.txt on o.img"

# ---- MBR, a partition on sector 0 (the MBR itself)
"$MDIMG" -q disk create z.img --size 32M --table mbr --part 8M --part 8M
mbr_entry z.img 0 83 0 16384
sfdisk -d z.img 2>/dev/null | grep -q 'z.img1 : start= *0, size= *16384,' ||
    { sfdisk -d z.img >&2; md_die "sfdisk does not see partition 1 at sector 0"; }
refused z.img "z.img: partition 1 starts at sector 0, on the MBR itself" \
    "$MDIMG" disk format z.img --part 1 --fs ext4
refused z.img "z.img: partition 1 starts at sector 0" "$MDIMG" disk format z.img --part 2 --fs ext4

# ---- GPT, truncated: the backup header is gone
"$MDIMG" -q disk create g.img --size 64M --part 16M --part rest --fs ext4 --fs-part 1 tree
truncate -s 48M g.img
msg="g.img: the GPT describes a disk of 64 MiB, the image is 48 MiB: truncated image?"
refused g.img "$msg" "$MDIMG" disk format g.img --part 1 --fs ext4
refused g.img "$msg" "$MDIMG" disk cp new.txt g.img:1:/new.txt
refused g.img "$msg" "$MDIMG" disk format g.img --part 2 --fs ext4
# libblkid does not read such a GPT at all: reading is refused, with the reason
refused g.img "$msg" "$MDIMG" disk ls g.img:1:/
truncate -s 64M g.img
debugfs -R 'cat /kept.txt' "g.img?offset=1048576" 2>/dev/null | grep -qx kept || md_fail "kept.txt on g.img"

# ---- GPT, a partition on the table's own sectors (the primary entries)
"$MDIMG" -q disk create e.img --size 64M --part 16M --part 16M
gpt_entry e.img 1 10 32767
sfdisk -d e.img 2>/dev/null | grep -q 'e.img1 : start= *10, size= *32758,' ||
    { sfdisk -d e.img >&2; md_die "sfdisk does not see partition 1 at sector 10"; }
msg="e.img: partition 1 (sectors 10-32767) is outside the GPT's usable sectors 2048-131038"
refused e.img "$msg" "$MDIMG" disk format e.img --part 1 --fs ext4
refused e.img "$msg" "$MDIMG" disk format e.img --part 2 --fs ext4
refused e.img "$msg" "$MDIMG" disk ls e.img:1:/
# ... and one on the backup entries at the end
gpt_entry e.img 1 2048 32767
gpt_entry e.img 2 34816 131070
msg="e.img: partition 2 (sectors 34816-131070) is outside the GPT's usable sectors 2048-131038"
refused e.img "$msg" "$MDIMG" disk format e.img --part 2 --fs ext4
refused e.img "$msg" "$MDIMG" disk format e.img --part 1 --fs ext4

# ---- what is fine stays fine: a GPT in a file grown with truncate (the
# backup header is not at the end), an extended partition and its logical one
"$MDIMG" -q disk create w.img --size 32M --part 8M --part 8M
truncate -s 48M w.img
"$MDIMG" -q disk format w.img --part 2 --fs ext4 || md_fail "format partition 2 of a grown GPT image"
"$MDIMG" -q disk cp new.txt w.img:2:/new.txt || md_fail "cp into a grown GPT image"
debugfs -R 'cat /new.txt' "w.img?offset=$((18432 * 512))" 2>/dev/null | grep -qx new || md_fail "new.txt on w.img"
truncate -s 64M x.img
printf 'label: dos\nstart=2048, size=16384, type=83\nstart=18432, size=65536, type=5\nstart=20480, size=32768, type=83\n' |
    sfdisk -q x.img >/dev/null 2>&1 || md_die "sfdisk could not make the extended partition"
sfdisk -d x.img 2>/dev/null | grep -q 'x.img5 : start= *20480, size= *32768,' ||
    { sfdisk -d x.img >&2; md_die "sfdisk does not see logical partition 5"; }
"$MDIMG" -q disk format x.img --part 5 --fs ext4 2>err.txt || { cat err.txt >&2; md_fail "format logical partition 5"; }
"$MDIMG" -q disk cp new.txt x.img:5:/new.txt || md_fail "cp into logical partition 5"
e2fsck -fn "x.img?offset=$((20480 * 512))" >fsck.txt 2>&1 || { cat fsck.txt >&2; md_fail "e2fsck x.img partition 5"; }
debugfs -R 'cat /new.txt' "x.img?offset=$((20480 * 512))" 2>/dev/null | grep -qx new || md_fail "new.txt on x.img5"
[ "$(stat -c %s x.img)" = 67108864 ] || md_fail "x.img changed size"

md_done "PASS: tables that do not fit the file are refused before any write"
