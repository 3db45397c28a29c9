#!/bin/sh
# The image pipeline through mdimg: disk create filling a filesystem from a
# directory, a tarball and a spec in one step; the default partition rule
# shared by disk create --fs, populate, extlinux install, cp and ls; and the
# CLI conventions every command follows (-q/-v/-h, one-line errors for bad
# options, escaped names).  Judged with debugfs, e2fsck, sfdisk and blkid.
set -eu

: "${MDIMG:?}"
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
for t in debugfs e2fsck sfdisk blkid tar cpio; do
    md_need_tool "$t"
done
md_tmpdir t-cli-pipeline
cd "$T"
export SOURCE_DATE_EPOCH=1700000000
# run CODE cmd...: exit status CODE; stdout in out.txt, stderr in err.txt
run() {
    want=$1; shift
    set +e
    "$MDIMG" "$@" >out.txt 2>err.txt
    rc=$?
    set -e
    [ "$rc" = "$want" ] || { cat err.txt >&2; md_fail "'$*' exited $rc, want $want"; return 1; }
    return 0
}
dbg() { debugfs -R "$2" "$1" 2>/dev/null; }

# ---- sources: a DIR, a tarball (compressed, recognised by content) and a spec
mkdir -p tree/etc arch/usr/share/doc
echo from-dir >tree/etc/motd
echo from-tar >arch/usr/share/doc/note
echo from-tar-too >arch/etc-over
(cd arch && tar --owner=7 --group=8 -czf ../rootfs.tgz usr etc-over)
mv rootfs.tgz rootfs.data # the name says nothing: the contents do
cat >spec <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
EOF
run 0 disk create one.img --size 48M --table gpt --part 1M:bios-boot --part rest:linux \
    --fs ext4 tree rootfs.data --spec spec && md_ok "disk create from DIR + tarball + spec"
grep -q "ext4 on partition 2" out.txt || md_fail "the only Linux partition (2) was not chosen: $(cat out.txt)"
off=$(sfdisk -d one.img | sed -n 's/.*start= *\([0-9]*\),.*type=0FC63DAF.*/\1/p')
[ -n "$off" ] || md_fail "no Linux partition in the table"
dd if=one.img of=p2.img bs=512 skip="$off" status=none
e2fsck -fn p2.img >fsck.txt 2>&1 || { cat fsck.txt >&2; md_fail "e2fsck"; }
[ "$(dbg p2.img 'cat /etc/motd')" = from-dir ] || md_fail "DIR contents"
[ "$(dbg p2.img 'cat /usr/share/doc/note')" = from-tar ] || md_fail "tarball contents"
dbg p2.img 'stat /usr/share/doc/note' | grep -q 'User: *7 *Group: *8' || md_fail "tarball owners"
dbg p2.img 'stat /dev/console' | grep -q 'Type: character special' || md_fail "spec node"

# ---- --fs-part, and the ambiguous case
run 0 disk create two.img --size 48M --table mbr --part 16M --part rest --fs ext2 --fs-part 2 tree \
    && md_ok "--fs-part 2"
grep -q "ext2 on partition 2" out.txt || md_fail "--fs-part 2 not honoured: $(cat out.txt)"
run 1 disk create amb.img --size 48M --table mbr --part 16M --part rest --fs ext2 tree &&
    grep -q "Linux partitions 1, 2 and none is bootable" err.txt && md_ok "ambiguous default refused" ||
    md_fail "ambiguous default: $(cat err.txt)"
[ ! -e amb.img ] && ! ls -A | grep -q '^\.amb\.img' || md_fail "a failed create left a file"
run 2 disk create x.img --size 8M --fs-part 1 && grep -q -- "--fs-part needs --fs" err.txt ||
    md_fail "--fs-part without --fs"

# ---- the default partition for the commands that take --part
run 0 disk create mbr.img --size 48M --table mbr --part 8M:efi --part rest:linux:bootable
run 0 disk format mbr.img --fs ext4 && grep -q "partition 2" out.txt || md_fail "format default partition"
run 0 disk populate mbr.img tree rootfs.data || md_fail "populate default partition"
run 0 disk cp spec mbr.img:/etc/spec || md_fail "cp into the default partition"
run 0 disk ls mbr.img:/etc && grep -qx spec out.txt && grep -qx motd out.txt || md_fail "ls default partition"
run 0 disk ls mbr.img:2:/usr/share/doc && grep -qx note out.txt || md_fail "ls explicit partition"
run 0 extlinux install mbr.img --kernel /etc/motd && grep -q "partition 2" out.txt ||
    md_fail "extlinux install default partition: $(cat out.txt err.txt)"
sfdisk -d mbr.img | grep -q 'bootable' || md_fail "boot flag"
md_ok "format, populate, cp, ls, extlinux install use the bootable partition by default"

# ---- names are untrusted bytes: escaped in text, quoted in JSON
esc=$(printf 'bad\033[2Jname')
mkdir esc && echo x >"esc/$esc"
run 0 disk create esc.img --size 16M --fs ext4 esc
run 0 disk ls esc.img:/ && grep -qF 'bad\x1b[2Jname' out.txt || md_fail "ls text escaping: $(od -c out.txt | head -3)"
if grep -q "$(printf '\033')" out.txt; then md_fail "raw ESC in ls output"; fi
run 0 disk ls --json esc.img:/ && grep -qF '"bad\u001b[2Jname"' out.txt || md_fail "ls JSON escaping"
md_ok "names escaped in ls text and JSON output"

# ---- timestamps: kept host mtimes are not clamped without an epoch; generated ones are 0
mkdir -p mt/sub && echo t > mt/sub/f && touch -d 2020-02-02 mt/sub/f mt/sub mt
env -u SOURCE_DATE_EPOCH "$MDIMG" -q initramfs -o mt.cpio --keep-mtime mt || md_fail "initramfs --keep-mtime"
cpio -itv --quiet <mt.cpio 2>/dev/null | grep -q 'Feb  2  2020 sub/f$' || md_fail "--keep-mtime without an epoch: $(cpio -itv --quiet <mt.cpio 2>/dev/null)"
env -u SOURCE_DATE_EPOCH "$MDIMG" -q initramfs -o mt0.cpio mt || md_fail "initramfs"
cpio -itv --quiet <mt0.cpio 2>/dev/null | grep -q 'Jan  1  1970 sub/f$' || md_fail "without --keep-mtime: the epoch (0)"
SOURCE_DATE_EPOCH=1500000000 "$MDIMG" -q initramfs -o mt1.cpio --keep-mtime mt || md_fail "initramfs"
cpio -itv --quiet <mt1.cpio 2>/dev/null | grep -q 'Jul 14  2017 sub/f$' || md_fail "--keep-mtime with an older epoch: clamped"
env SOURCE_DATE_EPOCH=12abc "$MDIMG" initramfs -o bad.cpio mt 2>err.txt && md_fail "a malformed SOURCE_DATE_EPOCH was accepted"
grep -q "SOURCE_DATE_EPOCH='12abc' is not a number" err.txt && [ ! -e bad.cpio ] || md_fail "malformed SOURCE_DATE_EPOCH: $(cat err.txt)"
md_ok "mtimes: kept, clamped only with an epoch; generated ones at the epoch; a bad SOURCE_DATE_EPOCH refused"

# ---- CLI conventions on every command
for cmd in "initramfs" "disk create" "disk format" "disk populate" "disk cp" "disk ls" \
           "inspect" "extlinux install" "boot" "build"; do
    # shellcheck disable=SC2086
    run 2 $cmd --no-such-option || continue
    [ "$(wc -l <err.txt)" = 2 ] || md_fail "$cmd: bad option printed $(wc -l <err.txt) lines"
    grep -q "^mdimg: $cmd: unrecognized option '--no-such-option'" err.txt || md_fail "$cmd: $(head -1 err.txt)"
    grep -q "^Try 'mdimg $cmd --help'" err.txt || md_fail "$cmd: no --help hint"
    # shellcheck disable=SC2086
    run 0 $cmd -q -v --help && grep -q Usage out.txt || md_fail "$cmd: -q -v --help"
done
md_ok "bad options: one line and a hint; -q, -v, -h everywhere"
run 2 no-such-command && [ "$(wc -l <err.txt)" = 2 ] || md_fail "unknown command"

md_done "all ok"
