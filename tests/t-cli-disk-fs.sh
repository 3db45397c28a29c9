#!/bin/sh
# mdimg disk format | populate | cp | ls: round trips checked with blkid,
# dumpe2fs, debugfs and e2fsck; bad input: exit codes, messages, and the
# image left byte-for-byte unchanged.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

: "${MDIMG:?}"
for t in e2fsck debugfs dumpe2fs blkid sha256sum cpio python3; do
    md_need_tool $t
done
tmp=$(mktemp -d /tmp/t-cli-disk-fs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
export SOURCE_DATE_EPOCH=1700000000

sum() { sha256sum <"$1" | cut -d' ' -f1; }

# ---- a tree, a spec, a cpio archive
mkdir -p tree/etc tree/bin src/cpio/usr/share
printf 'hello\n' >tree/etc/motd
printf '#!/bin/sh\necho hi\n' >tree/bin/hi
chmod 755 tree/bin/hi
ln -s hi tree/bin/hello
ln tree/etc/motd tree/etc/motd.link
head -c 300000 /dev/urandom >tree/blob
printf 'from cpio\n' >src/cpio/usr/share/note
(cd src/cpio && find . | cpio -o -H newc --quiet >../in.cpio)
cat >spec <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 5 c 5 1
nod /dev/sda 0660 0 6 b 8 0
pipe /run.fifo 0644 0 0
file /etc/owned $tmp/tree/etc/motd 0640 1000 1000
EOF

# ---- format on an MBR partition
"$MDIMG" -q disk create d.img --size 64M --table mbr --part rest:linux:bootable
"$MDIMG" -q disk format d.img --part 1 --fs ext4 --label ROOTFS --uuid 11111111-2222-4333-8444-555555555555
blkid -p -O 1048576 -o export d.img >blkid.txt
grep -qx 'TYPE=ext4' blkid.txt || md_die "blkid type"
grep -qx 'LABEL=ROOTFS' blkid.txt || md_die "blkid label"
grep -qx 'UUID=11111111-2222-4333-8444-555555555555' blkid.txt || md_die "blkid uuid"
e2fsck -fn "d.img?offset=1048576" >fsck.txt 2>&1 || { cat fsck.txt >&2; md_die "e2fsck after format"; }
# the MBR survives the format
sfdisk -d d.img 2>/dev/null | grep -q 'bootable' || md_die "partition table damaged by format"

# ---- populate from a DIR, a spec and a cpio archive
"$MDIMG" -q disk populate d.img --part 1 tree --spec spec --cpio src/in.cpio
e2fsck -fn "d.img?offset=1048576" >fsck.txt 2>&1 || { cat fsck.txt >&2; md_die "e2fsck after populate"; }
dev="d.img?offset=1048576"
debugfs -R 'cat /etc/motd' "$dev" 2>/dev/null | grep -qx hello || md_die "motd content"
debugfs -R 'cat /usr/share/note' "$dev" 2>/dev/null | grep -qx 'from cpio' || md_die "cpio content"
debugfs -R 'stat /dev/console' "$dev" 2>/dev/null | grep -q 'Device major/minor number: 05:01' || md_die "console rdev"
debugfs -R 'stat /dev/sda' "$dev" 2>/dev/null | grep -q 'Type: block' || md_die "sda type"
debugfs -R 'stat /run.fifo' "$dev" 2>/dev/null | grep -q 'Type: FIFO' || md_die "fifo"
debugfs -R 'stat /etc/owned' "$dev" 2>/dev/null | grep -q 'User:  1000   Group:  1000' || md_die "spec owner"
debugfs -R 'stat /bin/hi' "$dev" 2>/dev/null | grep -q 'User:     0   Group:     0' || md_die "owner squash"
debugfs -R 'stat /bin/hello' "$dev" 2>/dev/null | grep -q 'Fast link dest: "hi"' || md_die "symlink"
debugfs -R 'stat /etc/motd' "$dev" 2>/dev/null | grep -q 'Links: 2' || md_die "hard link count"

# ---- ls
"$MDIMG" disk ls d.img:1:/etc >ls.txt
printf 'motd\nmotd.link\nowned\n' | cmp -s - ls.txt || { cat ls.txt >&2; md_die "ls /etc"; }
"$MDIMG" disk ls -l d.img:1:/bin >ls.txt
grep -q '^lrwxrwxrwx .* hello -> hi$' ls.txt || { cat ls.txt >&2; md_die "ls -l symlink"; }
grep -q '^-rwxr-xr-x   1     0     0         18 2023-11-14 22:13 hi$' ls.txt || { cat ls.txt >&2; md_die "ls -l file"; }
"$MDIMG" disk ls --json d.img:1:/dev | python3 -c '
import json, sys
d = {e["name"]: e for e in json.load(sys.stdin)}
assert d["console"]["type"] == "chardev" and d["console"]["major"] == 5 and d["console"]["minor"] == 1, d
assert d["sda"]["type"] == "blockdev" and d["sda"]["mode"] == "0660" and d["sda"]["gid"] == 6, d
' || md_die "ls --json"
"$MDIMG" disk ls -l d.img:1:/etc/motd | grep -q ' motd$' || md_die "ls of a file"

# ---- cp out and in
"$MDIMG" -q disk cp d.img:1:/blob blob.out
cmp blob.out tree/blob || md_die "cp out content"
"$MDIMG" -q disk cp --mode 0600 --owner 12:34 tree/blob d.img:1:/etc/blob2
debugfs -R 'stat /etc/blob2' "$dev" 2>/dev/null | grep -q 'Mode:  0600' || md_die "cp in mode"
debugfs -R 'stat /etc/blob2' "$dev" 2>/dev/null | grep -q 'User:    12   Group:    34' || md_die "cp in owner"
debugfs -R 'dump /etc/blob2 blob2.out' "$dev" >/dev/null 2>&1
cmp blob2.out tree/blob || md_die "cp in content"
"$MDIMG" -q disk cp tree/etc/motd d.img:1:/usr/      # into a directory: keeps the name
debugfs -R 'cat /usr/motd' "$dev" 2>/dev/null | grep -qx hello || md_die "cp into dir"
printf 'replaced\n' >new.txt
"$MDIMG" -q disk cp new.txt d.img:1:/etc/motd.link   # replace one link of a hard-link pair
debugfs -R 'cat /etc/motd' "$dev" 2>/dev/null | grep -qx hello || md_die "other link changed"
debugfs -R 'stat /etc/motd' "$dev" 2>/dev/null | grep -q 'Links: 1' || md_die "link count after replace"
e2fsck -fn "$dev" >fsck.txt 2>&1 || { cat fsck.txt >&2; md_die "e2fsck after cp"; }

# ---- an image name containing ':' and a whole-image filesystem
"$MDIMG" -q disk create 'a:b.img' --size 16M
"$MDIMG" -q disk format 'a:b.img' --fs ext2 -b 1024
"$MDIMG" -q disk cp tree/etc/motd 'a:b.img:/motd'
"$MDIMG" -q disk cp 'a:b.img:/motd' motd.out
cmp motd.out tree/etc/motd || md_die "cp via IMG with ':'"
dumpe2fs -h 'a:b.img' 2>/dev/null | grep -q 'Block size: *1024' || md_die "block size"
e2fsck -fn 'a:b.img' >fsck.txt 2>&1 || { cat fsck.txt >&2; md_die "e2fsck a:b.img"; }

# ---- bad input: clear errors, the image unchanged
before=$(sum d.img)
md_expect 2 "unknown filesystem type 'xfs'" "$MDIMG" disk format d.img --part 1 --fs xfs
md_expect 2 "required" "$MDIMG" disk format d.img --part 1
md_expect 2 "--part" "$MDIMG" disk format d.img --part one --fs ext4
md_expect 1 "frobnicate" "$MDIMG" disk format d.img --part 1 --fs ext4 --features ^64bit,frobnicate
md_expect 1 "inline_data" "$MDIMG" disk format d.img --part 1 --fs ext4 --features inline_data
md_expect 1 "not-a-uuid" "$MDIMG" disk format d.img --part 1 --fs ext4 --uuid not-a-uuid
md_expect 1 "partition" "$MDIMG" disk format d.img --part 5 --fs ext4
md_expect 1 "partition" "$MDIMG" disk populate d.img --part 3 tree
md_expect 1 "no-such-dir" "$MDIMG" disk populate d.img --part 1 no-such-dir
md_expect 1 "" "$MDIMG" disk ls d.img:1:/nope
md_expect 1 "" "$MDIMG" disk cp d.img:1:/nope nope.out
[ ! -e nope.out ] || md_die "cp of a missing file created the output"
md_expect 1 "" "$MDIMG" disk cp tree/etc/motd d.img:1:/no/such/dir/x
md_expect 1 "directory" "$MDIMG" disk cp tree/etc/motd d.img:1:/etc/motd/x
md_expect 2 "" "$MDIMG" disk cp tree/etc/motd other-file
md_expect 1 "" "$MDIMG" disk populate missing.img tree
[ "$(sum d.img)" = "$before" ] || md_die "a failed command changed the image"

# a tree that does not fit: ENOSPC naming the sizes, nothing written
head -c $((80 << 20)) /dev/zero | tr '\0' 'x' >huge
mkdir big && mv huge big/
md_expect 1 "needs about .* KiB" "$MDIMG" disk populate d.img --part 1 big
grep -q "free" err.txt || md_die "ENOSPC message lacks the free space"
[ "$(sum d.img)" = "$before" ] || md_die "ENOSPC changed the image"

# populate into a filesystem that is not there
"$MDIMG" -q disk create blank.img --size 8M
md_expect 1 "no ext2/ext3/ext4 filesystem" "$MDIMG" disk populate blank.img tree

# ---- determinism through the CLI
for i in 1 2; do
    "$MDIMG" -q disk create det$i.img --size 32M --table gpt --part rest --seed 7
    "$MDIMG" -q disk format det$i.img --part 1 --fs ext4
    ( cd / && umask 077 && TZ=Asia/Tokyo "$MDIMG" -q disk populate "$tmp/det$i.img" --part 1 \
        "$tmp/tree" --spec "$tmp/spec" )
    touch tree/etc/motd
done
[ "$(sum det1.img)" = "$(sum det2.img)" ] || md_die "same inputs gave different images"

# help
"$MDIMG" disk format --help | grep -q -- '--features' || md_die "format --help"
"$MDIMG" disk populate --help | grep -q -- '--spec' || md_die "populate --help"
"$MDIMG" disk cp --help | grep -q 'IMG\[:PART\]' || md_die "cp --help"
"$MDIMG" disk ls --help | grep -q -- '--json' || md_die "ls --help"
md_done ok
