#!/bin/sh
# mdimg disk create / mdimg inspect, checked with independent tools:
# sfdisk -d (util-linux's own reading of the table), blkid -p, du, sha256sum,
# python3's JSON parser.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
for t in sfdisk blkid python3 sha256sum du; do
    md_need_tool "$t"
done
tmp=$(mktemp -d /tmp/t-cli-disk.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
unset SOURCE_DATE_EPOCH

# expect_field FILE REGEX DESCRIPTION
expect() { grep -Eq -- "$2" "$1" && md_ok "$3" || { md_fail "$3 (no /$2/ in $1)"; cat "$1" >&2; }; }

# ---- GPT with several partitions -------------------------------------------
"$MDIMG" -q disk create gpt.img --size 64M --table gpt --part 1M:bios-boot \
    --part 16M:efi:name=ESP --part rest:linux:bootable,name=root --seed 5 \
    || md_fail "gpt create exit $?"
sfdisk -d gpt.img > gpt.sfdisk 2>&1 || md_fail "sfdisk -d gpt.img"
expect gpt.sfdisk '^label: gpt$' "gpt: label type"
expect gpt.sfdisk 'gpt.img1 : start= +2048, size= +2048, type=21686148-6449-6E6F-744E-656564454649' "gpt: p1 BIOS boot at 1 MiB, 1 MiB"
expect gpt.sfdisk 'gpt.img2 : start= +4096, size= +32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=[0-9A-F-]{36}, name="ESP"$' "gpt: p2 ESP 16 MiB, named"
# rest of the disk: up to the last usable LBA (131071 - 33)
expect gpt.sfdisk 'gpt.img3 : start= +36864, size= +94175, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, .*name="root", attrs="LegacyBIOSBootable"' "gpt: p3 rest, bootable, named"
grep -q 'gpt.img1.*attrs' gpt.sfdisk && md_fail "gpt: p1 must not have attributes"
sfdisk --verify gpt.img > verify.txt 2>&1 && grep -q "No errors detected" verify.txt \
    && md_ok "gpt: sfdisk --verify" || { md_fail "gpt: sfdisk --verify"; cat verify.txt >&2; }
label_id=$(sed -n 's/^label-id: //p' gpt.sfdisk)
blkid -p -o export gpt.img > gpt.blkid 2>&1
expect gpt.blkid '^PTTYPE=gpt$' "gpt: blkid sees a GPT"
grep -qi "^PTUUID=$label_id\$" gpt.blkid && md_ok "gpt: blkid PTUUID = sfdisk label-id" || md_fail "gpt: PTUUID vs $label_id"

"$MDIMG" inspect --json gpt.img > gpt.json || md_fail "inspect --json exit $?"
python3 -m json.tool gpt.json > /dev/null && md_ok "inspect --json parses" || md_fail "inspect --json is not JSON"
python3 - "$label_id" <<'EOF' && md_ok "inspect --json values match sfdisk" || md_fail "inspect --json values"
import json, sys
j = json.load(open("gpt.json"))
assert j["table"] == "gpt", j
assert j["id"].upper() == sys.argv[1], (j["id"], sys.argv[1])
p = j["partitions"]
assert [x["number"] for x in p] == [1, 2, 3]
assert [x["start"] for x in p] == [2048*512, 4096*512, 36864*512]
assert [x["size"] for x in p] == [2048*512, 32768*512, 94175*512]
assert [x["bootable"] for x in p] == [False, False, True]
assert [x["name"] for x in p] == [None, "ESP", "root"]
assert p[1]["type"] == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
EOF
"$MDIMG" inspect gpt.img > gpt.txt || md_fail "inspect exit $?"
expect gpt.txt '^3 +\* +36864 +94175 .*Linux filesystem +root' "inspect text output"

# rest of the disk in the middle: leaves room for the partitions after it
"$MDIMG" -q disk create mid.img --size 100M --part 1M:bios-boot --part rest --part 10M:swap \
    || md_fail "mid create exit $?"
sfdisk -d mid.img > mid.sfdisk 2>&1
expect mid.sfdisk 'mid.img2 : start= +4096, size= +178176, type=0FC63DAF' "rest in the middle: p2 up to the next aligned partition"
expect mid.sfdisk 'mid.img3 : start= +182272, size= +20480, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F' "rest in the middle: p3 Linux swap after it"

# ---- MBR ---------------------------------------------------------------------
"$MDIMG" -q disk create mbr.img --size 100M --table mbr --part 25%:efi --part 10M:swap \
    --part 100%::bootable --disk-id 0x1234abcd || md_fail "mbr create exit $?"
sfdisk -d mbr.img > mbr.sfdisk 2>&1 || md_fail "sfdisk -d mbr.img"
expect mbr.sfdisk '^label: dos$' "mbr: label type"
expect mbr.sfdisk '^label-id: 0x1234abcd$' "mbr: disk id"
expect mbr.sfdisk 'mbr.img1 : start= +2048, size= +49152, type=ef$' "mbr: p1 25% of 99 MiB, EFI"
expect mbr.sfdisk 'mbr.img2 : start= +51200, size= +20480, type=82$' "mbr: p2 10 MiB swap"
expect mbr.sfdisk 'mbr.img3 : start= +71680, size= +133120, type=83, bootable$' "mbr: p3 rest, bootable"
sfdisk --verify mbr.img > verify.txt 2>&1 && grep -q "No errors detected" verify.txt \
    && md_ok "mbr: sfdisk --verify" || { md_fail "mbr: sfdisk --verify"; cat verify.txt >&2; }
blkid -p -o export mbr.img > mbr.blkid 2>&1
expect mbr.blkid '^PTTYPE=dos$' "mbr: blkid sees an MBR"
expect mbr.blkid '^PTUUID=1234abcd$' "mbr: blkid PTUUID"

# ---- sparse ----------------------------------------------------------------------
"$MDIMG" -q disk create big.img --size 4G --part rest || md_fail "4G create"
apparent=$(stat -c %s big.img)
alloc=$(du --block-size=1 big.img | cut -f1)
[ "$apparent" = 4294967296 ] && md_ok "4G apparent size" || md_fail "apparent size $apparent"
[ "$alloc" -lt 1048576 ] && md_ok "4G image allocates $alloc bytes" || md_fail "not sparse: $alloc bytes allocated"
"$MDIMG" -q disk create plain.img --size 1G || md_fail "plain create"
[ "$(du --block-size=1 plain.img | cut -f1)" -lt 65536 ] && md_ok "no table: sparse" || md_fail "plain.img not sparse"
sfdisk -d plain.img > plain.sfdisk 2>&1 && md_fail "plain.img has a table"

# ---- determinism --------------------------------------------------------------------
mk() { "$MDIMG" -q disk create "$@" --size 32M --force --table gpt --part 8M:efi:name=ESP --part rest::bootable; }
sum() { sha256sum "$1" | cut -d' ' -f1; }
mk d1.img --seed 42 && mk d2.img --seed 42 || md_fail "seeded create"
[ "$(sum d1.img)" = "$(sum d2.img)" ] && md_ok "same --seed, same bytes" || md_fail "--seed: images differ"
mk d2.img --seed 43
[ "$(sum d1.img)" != "$(sum d2.img)" ] && md_ok "other seed, other bytes" || md_fail "--seed ignored"
SOURCE_DATE_EPOCH=1700000000 mk e1.img && SOURCE_DATE_EPOCH=1700000000 mk e2.img || md_fail "epoch create"
[ "$(sum e1.img)" = "$(sum e2.img)" ] && md_ok "same SOURCE_DATE_EPOCH, same bytes" || md_fail "SOURCE_DATE_EPOCH: images differ"
mk r1.img && mk r2.img
[ "$(sum r1.img)" != "$(sum r2.img)" ] && md_ok "no seed: random ids" || md_fail "no seed: identical images"
mkdir -p sub && (cd sub && SOURCE_DATE_EPOCH=1700000000 mk e3.img && umask 077 && SOURCE_DATE_EPOCH=1700000000 TZ=Asia/Tokyo mk e4.img)
[ "$(sum e1.img)" = "$(sum sub/e3.img)" ] && [ "$(sum e1.img)" = "$(sum sub/e4.img)" ] \
    && md_ok "independent of cwd, umask, TZ" || md_fail "cwd/umask/TZ change the bytes"

# ---- bad input: exit code, message, no file left -------------------------------------
# bad CMD... EXIT REGEX: run, check exit status and stderr, then that bad.img does not exist
bad() {
    want=$1; re=$2; shift 2
    "$MDIMG" "$@" > out.txt 2> err.txt
    rc=$?
    if [ "$rc" != "$want" ]; then md_fail "'$*' exit $rc, want $want"; cat err.txt >&2; return; fi
    grep -Eq -- "$re" err.txt || { md_fail "'$*' message: $(cat err.txt)"; return; }
    if [ -e bad.img ] || ls -A | grep -q '^\.bad\.img'; then md_fail "'$*' left a file"; return; fi
    md_ok "'$*' -> exit $rc: $(head -n1 err.txt)"
}
bad 2 "'12X' is not a size" disk create bad.img --size 12X
bad 2 "missing --size" disk create bad.img
bad 1 "not a positive multiple of 512" disk create bad.img --size 1000
bad 1 "too small for a GPT" disk create bad.img --size 1M --part rest
bad 1 "partition 2 \\(100 MiB\\) does not fit: 23\\.0 MiB free after partition 1" \
    disk create bad.img --size 64M --part 40M --part 100M
bad 2 "'12Q' is not a size" disk create bad.img --size 64M --part 12Q
bad 2 "not a percentage" disk create bad.img --size 64M --part 150%
bad 2 "unknown flag 'bootabel'" disk create bad.img --size 64M --part rest:linux:bootabel
bad 1 "unknown GPT partition type 'fat99'" disk create bad.img --size 64M --part rest:fat99
bad 1 "only in GPT" disk create bad.img --size 64M --table mbr --part 1M:bios-boot
bad 1 "at most 4" disk create bad.img --size 64M --table mbr --part 1M --part 1M --part 1M --part 1M --part 1M
bad 2 "unknown partition table type 'sun'" disk create bad.img --size 64M --table sun
bad 2 "needs a partition table" disk create bad.img --size 64M --table none --part rest
bad 2 "unknown filesystem type 'xfs'" disk create bad.img --size 64M --part rest --fs xfs
bad 1 "disk id 'xyz' is not a GUID" disk create bad.img --size 64M --part rest --disk-id xyz
bad 1 "nodir: No such file" disk create bad.img --size 64M --part rest --fs ext4 nodir
bad 2 "--label needs --fs" disk create bad.img --size 64M --part rest --label X
bad 2 "needs a --part" disk create bad.img --size 64M --table gpt --fs ext4
bad 1 "bad.img: No such file" inspect bad.img
bad 2 "missing IMG" inspect
# existing image: refused without --force and left untouched
before=$(sum gpt.img)
"$MDIMG" disk create gpt.img --size 8M 2> err.txt
rc=$?
[ "$rc" = 1 ] && grep -q "already exists" err.txt && [ "$(sum gpt.img)" = "$before" ] \
    && md_ok "existing IMG: exit 1, untouched" || md_fail "existing IMG: exit $rc $(cat err.txt)"
"$MDIMG" -q disk create gpt.img --size 8M --force && [ "$(stat -c %s gpt.img)" = 8388608 ] \
    && md_ok "--force replaces" || md_fail "--force"
ls -A | grep -q '^\.' && md_fail "temporary files left: $(ls -A | grep '^\.')"

# ---- with a filesystem (ext module) --------------------------------------------------
mkdir -p tree/etc && echo hello > tree/etc/motd
"$MDIMG" -q disk create fs.img --size 64M --table mbr --part 8M --part rest::bootable --seed 1 \
    --fs ext4 --label ROOTFS || md_fail "--fs ext4 exit $?"
sfdisk -d fs.img > fs.sfdisk 2>&1
start=$(sed -n 's/^fs.img2 : start= *\([0-9]*\),.*/\1/p' fs.sfdisk)
blkid -p -O $((start * 512)) -o export fs.img > fs.blkid 2>&1
expect fs.blkid '^TYPE=ext4$' "--fs: ext4 on the bootable partition (blkid -p -O)"
expect fs.blkid '^LABEL=ROOTFS$' "--fs: label"
"$MDIMG" inspect --json fs.img > fs.json
python3 - <<'EOF' && md_ok "inspect: fs per partition" || md_fail "inspect fs"
import json
j = json.load(open("fs.json"))
p = j["partitions"]
assert p[0]["filesystem"] is None, p[0]
assert p[1]["filesystem"]["type"] == "ext4" and p[1]["filesystem"]["label"] == "ROOTFS", p[1]
EOF
have_e2fs=0
md_want_tool e2fsck && md_want_tool debugfs && have_e2fs=1
if [ $have_e2fs = 1 ]; then
    dd if=fs.img of=part.img bs=512 skip="$start" status=none
    e2fsck -fn part.img > fsck.txt 2>&1 && md_ok "--fs: e2fsck -fn clean" || { md_fail "--fs: e2fsck"; cat fsck.txt >&2; }
fi
"$MDIMG" -q disk create whole.img --size 16M --fs ext2 || md_fail "--table none --fs"
blkid -p -o export whole.img > whole.blkid 2>&1
expect whole.blkid '^TYPE=ext2$' "--fs on the whole image"
"$MDIMG" inspect --json whole.img > whole.json
python3 -c 'import json; assert json.load(open("whole.json"))["filesystem"]["type"] == "ext2"' \
    && md_ok "inspect: whole-disk filesystem" || md_fail "inspect: whole-disk filesystem"
# DIR trees (md_ext_populate)
if "$MDIMG" -q disk create pop.img --size 32M --part rest --fs ext4 tree 2> err.txt; then
    start=$(sfdisk -d pop.img | sed -n 's/^pop.img1 : start= *\([0-9]*\),.*/\1/p')
    if [ $have_e2fs = 1 ]; then
        dd if=pop.img of=part.img bs=512 skip="$start" status=none
        e2fsck -fn part.img > fsck.txt 2>&1 && md_ok "populated: e2fsck -fn clean" || { md_fail "populated: e2fsck"; cat fsck.txt >&2; }
        [ "$(debugfs -R 'cat /etc/motd' part.img 2>/dev/null)" = hello ] && md_ok "populated: DIR copied" \
            || md_fail "populated: /etc/motd missing"
    fi
else
    md_fail "--fs DIR: $(cat err.txt)"
fi
bad 1 "too small" disk create bad.img --size 1060K --table mbr --part rest --fs ext4
mkdir -p bigtree && head -c 20000000 /dev/urandom > bigtree/blob
bad 1 "does not fit: it needs" disk create bad.img --size 8M --part rest --fs ext4 bigtree
# an image under 1 MiB is not "0 MiB"
bad 1 "an image of 512 KiB is too small: its contents need about [0-9]+ MiB" \
    disk create bad.img --size 512K --fs ext4 bigtree
# sparse with a filesystem: a 4 GiB image holding 10 MiB
mkdir -p ten && head -c 10485760 /dev/urandom > ten/data
"$MDIMG" -q disk create ten.img --size 4G --part rest:linux:bootable --fs ext4 ten || md_fail "ten.img"
alloc=$(du --block-size=1 ten.img | cut -f1)
# 1.1 x the data + 4 MiB of metadata (bitmaps, descriptors, journal header, directories)
[ "$alloc" -le $((11534336 + 4194304)) ] && md_ok "4 GiB ext4 image with 10 MiB allocates $alloc bytes" \
    || md_fail "4 GiB ext4 image with 10 MiB allocates $alloc bytes"
rm -f ten.img
# the whole image, filesystem included, is reproducible with SOURCE_DATE_EPOCH
for i in 1 2; do
    SOURCE_DATE_EPOCH=1700000000 "$MDIMG" -q disk create "full$i.img" --size 32M --table mbr \
        --part rest::bootable --fs ext4 --label R tree || md_fail "full$i.img"
done
[ "$(sum full1.img)" = "$(sum full2.img)" ] && md_ok "--fs image reproducible with SOURCE_DATE_EPOCH" \
    || md_fail "--fs images differ"

# ---- one step with EXTLINUX (booting it is e2e's job; here: what was written) --
mkdir -p xl/boot && head -c 300000 /dev/urandom > xl/boot/vmlinuz && echo initrd > xl/boot/initrd.gz
"$MDIMG" -q disk create xl.img --size 32M --table mbr --part rest:linux:bootable --fs ext4 xl \
    --extlinux --kernel /boot/vmlinuz --initrd /boot/initrd.gz --append console=ttyS0 \
    --serial 0,115200 || md_fail "disk create --extlinux exit $?"
sfdisk -d xl.img > xl.sfdisk 2>&1
expect xl.sfdisk 'xl.img1 : start= +2048, .*bootable' "--extlinux: partition 1 is active"
cmp -n 440 xl.img /usr/lib/syslinux/mbr/mbr.bin >/dev/null 2>&1 \
    && md_ok "--extlinux: MBR boot code is syslinux mbr.bin" || md_fail "--extlinux: MBR boot code"
dd if=xl.img of=xl.part bs=1M skip=1 status=none
e2fsck -fn xl.part > xl.fsck 2>&1 && md_ok "--extlinux: e2fsck -fn clean" || { md_fail "--extlinux: e2fsck"; cat xl.fsck >&2; }
debugfs -R 'cat /boot/syslinux/extlinux.conf' xl.part > xl.conf 2>/dev/null
expect xl.conf '^SERIAL 0 115200' "--extlinux: config has the serial line"
expect xl.conf '^  LINUX /boot/vmlinuz$' "--extlinux: config boots the kernel"
expect xl.conf '^  INITRD /boot/initrd.gz$' "--extlinux: config loads the initrd"
debugfs -R 'stat /boot/syslinux/ldlinux.sys' xl.part > xl.stat 2>/dev/null
expect xl.stat 'Flags: 0x80010' "--extlinux: ldlinux.sys is immutable + extents"
[ "$(dd if=xl.part bs=1 skip=3 count=8 status=none)" = SYSLINUX ] \
    && md_ok "--extlinux: boot sector at the partition start" || md_fail "--extlinux: no boot sector"
rm -f xl.img xl.part
bad 1 "kernel '/boot/nope' not found in bad.img" disk create bad.img --size 32M --table mbr \
    --part rest:linux:bootable --fs ext4 xl --extlinux --kernel /boot/nope
bad 2 "EXTLINUX options need --extlinux" disk create bad.img --size 32M --kernel /boot/vmlinuz
bad 2 "--extlinux needs --fs" disk create bad.img --size 32M --extlinux

md_done "all checks passed"
