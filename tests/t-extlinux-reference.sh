#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Reference check (root only: loop mount): the same filesystem image is
# installed twice, once by `mdimg extlinux install` and once by the real
# `extlinux --install` on a loop mount, whole-disk and as partition 2 of an
# MBR disk.  The boot sector and the patched ldlinux.sys must agree byte for
# byte except where each put the file: the first-sector pointer of the boot
# sector, the checksum, the extent list and the ADV pointers of ldlinux.sys,
# and each of those must match the file's real block map (debugfs).
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

# environmental: CI runs the suites as root and again as nobody (this skip)
[ "$(id -u)" = 0 ] || md_skip_env "needs root (loop mount of the reference image)"
: "${MDIMG:?}"
for t in extlinux losetup mount debugfs mkfs.ext4 sfdisk od awk; do
    md_need_tool "$t"
done
W=$(mktemp -d /tmp/md-extlinux-ref.XXXXXX)
LOOP=
cleanup() {
    mountpoint -q "$W/mnt" 2>/dev/null && umount "$W/mnt"
    [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/mnt" "$W/root/boot/syslinux"
# try a loop device once; some containers have none
truncate -s 1M "$W/probe"
LOOP=$(losetup -f --show "$W/probe" 2>/dev/null) ||
    md_skip_env "no loop device (losetup -f failed: a container without /dev/loop*?)"
losetup -d "$LOOP"
LOOP=

u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
u16() { od -An -tu2 -j "$2" -N2 "$1" | tr -d ' '; }
u64() { echo $(( $(u32 "$1" "$2") + $(u32 "$1" $(($2 + 4))) * 4294967296 )); }

# compare CASE START(sectors)
compare() {
    name=$1 start=$2
    ours="$W/$name-ours.img" ref="$W/$name-ref.img"
    fs="offset=$((start * 512))"
    for who in ours ref; do
        img="$W/$name-$who.img"
        debugfs -R "dump /boot/syslinux/ldlinux.sys $W/$name-$who.sys" "$img?$fs" 2>/dev/null
        debugfs -R "dump /boot/syslinux/ldlinux.c32 $W/$name-$who.c32" "$img?$fs" 2>/dev/null
        dd if="$img" of="$W/$name-$who.vbr" bs=512 skip="$start" count=1 status=none
        bs=$(debugfs -R stats "$img?$fs" 2>/dev/null | sed -n 's/^Block size: *//p')
        # sectors of the file, fs-relative
        debugfs -R "blocks /boot/syslinux/ldlinux.sys" "$img?$fs" 2>/dev/null |
            tr ' ' '\n' | awk -v spb=$((bs / 512)) 'NF { for (i = 0; i < spb; i++) print $1 * spb + i }' \
            >"$W/$name-$who.sect"
        debugfs -R "stat /boot/syslinux/ldlinux.sys" "$img?$fs" 2>/dev/null >"$W/$name-$who.stat"
    done
    cmp "$W/$name-ours.c32" "$W/$name-ref.c32" || md_die "$name: ldlinux.c32 differs"
    sys_o="$W/$name-ours.sys" sys_r="$W/$name-ref.sys"
    [ "$(stat -c %s "$sys_o")" = "$(stat -c %s "$sys_r")" ] || md_die "$name: ldlinux.sys sizes differ"
    grep -q "Mode:  0444" "$W/$name-ours.stat" || md_die "$name: our ldlinux.sys mode"

    # patch area: the LDLINUX_MAGIC dword after the banner
    pa=24
    [ "$(u32 "$sys_r" $pa)" = $((0x3eb202fe)) ] || md_die "$name: no patch area at 0x18"
    epa=$(u16 "$sys_r" $((pa + 22)))
    advptr=$(u16 "$sys_r" "$epa")
    secptr=$(u16 "$sys_r" $((epa + 10)))
    secptrcnt=$(u16 "$sys_r" $((epa + 12)))
    sect1ptr0=$(u16 "$sys_r" $((epa + 14)))
    sect1ptr1=$(u16 "$sys_r" $((epa + 16)))
    ldlen=$(($(u16 "$sys_r" $((pa + 8))) * 512))

    # 1. boot sector: only the first-sector pointer may differ
    cmp -l "$W/$name-ours.vbr" "$W/$name-ref.vbr" | awk -v a=$sect1ptr0 -v b=$sect1ptr1 '
        { o = $1 - 1; if (!((o >= a && o < a + 4) || (o >= b && o < b + 4))) { print "VBR differs at " o; bad = 1 } }
        END { exit bad }' || md_die "$name: boot sectors differ outside the sector pointer"
    # 2. ldlinux.sys: only checksum, extents, ADV pointers (and the ADV, which
    #    is empty in both) may differ
    cmp -l "$sys_o" "$sys_r" | awk -v c=$((pa + 16)) -v e=$secptr -v n=$((secptrcnt * 10)) -v v=$advptr '
        { o = $1 - 1; if (!((o >= c && o < c + 4) || (o >= e && o < e + n) || (o >= v && o < v + 16))) { print "ldlinux.sys differs at " o; bad = 1 } }
        END { exit bad }' || md_die "$name: ldlinux.sys differs outside the patched fields"
    # 3. each image's fields match its own block map
    for who in ours ref; do
        sys="$W/$name-$who.sys"
        first=$(sed -n 1p "$W/$name-$who.sect")
        [ "$(u32 "$W/$name-$who.vbr" "$sect1ptr0")" = "$first" ] || md_die "$name/$who: sect1ptr"
        nsect=$(wc -l <"$W/$name-$who.sect")
        nsect=$((ldlen / 512 + 2 < nsect ? ldlen / 512 + 2 : nsect))
        adv0=$(sed -n "$((nsect - 1))p" "$W/$name-$who.sect")
        adv1=$(sed -n "${nsect}p" "$W/$name-$who.sect")
        [ "$(u64 "$sys" "$advptr")" = "$adv0" ] || md_die "$name/$who: ADV pointer 0"
        [ "$(u64 "$sys" $((advptr + 8)))" = "$adv1" ] || md_die "$name/$who: ADV pointer 1"
        # extents expand to sectors 2 .. nsect-2 of the list
        k=0 expect=2 : >"$W/x"
        while [ $k -lt "$secptrcnt" ]; do
            len=$(u16 "$sys" $((secptr + k * 10 + 8)))
            [ "$len" = 0 ] && break
            lba=$(u64 "$sys" $((secptr + k * 10)))
            i=0
            while [ $i -lt "$len" ]; do echo $((lba + i)); i=$((i + 1)); done >>"$W/x"
            k=$((k + 1))
        done
        sed -n "2,$((nsect - 2))p" "$W/$name-$who.sect" | cmp -s - "$W/x" || md_die "$name/$who: extent list"
        sum=$(od -An -tu4 -v -N "$ldlen" "$sys" | awk '{ for (i = 1; i <= NF; i++) s = (s + $i) % 4294967296 } END { print s }')
        [ "$sum" = $((0x3eb202fe)) ] || md_die "$name/$who: checksum"
        echo "$name/$who: ldlinux.sys at sector $first, $k extent(s), ADV at $adv0/$adv1"
    done
    hidden_o=$(u32 "$W/$name-ours.vbr" 28) hidden_r=$(u32 "$W/$name-ref.vbr" 28)
    md_ok "$name (bsHidden ours $hidden_o, extlinux $hidden_r)"
}

# whole-disk ext4, bookworm defaults
truncate -s 64M "$W/base.img"
mkfs.ext4 -q -F -d "$W/root" "$W/base.img"
cp "$W/base.img" "$W/whole-ours.img"
cp "$W/base.img" "$W/whole-ref.img"
"$MDIMG" -q extlinux install "$W/whole-ours.img"
mount -o loop "$W/whole-ref.img" "$W/mnt"
extlinux --install "$W/mnt/boot/syslinux" >/dev/null 2>&1 || md_die "extlinux --install"
umount "$W/mnt"
compare whole 0

# MBR partition 2 at LBA 10240; extlinux sees a loop device with an offset
truncate -s 72M "$W/pbase.img"
printf 'label: dos\nstart=2048, size=8192, type=83\nstart=10240, size=131072, type=83\n' | sfdisk -q "$W/pbase.img"
mkfs.ext4 -q -F -E offset=$((10240 * 512)) -d "$W/root" "$W/pbase.img" 64M
cp "$W/pbase.img" "$W/part-ours.img"
cp "$W/pbase.img" "$W/part-ref.img"
"$MDIMG" -q extlinux install "$W/part-ours.img" --part 2 --no-mbr
LOOP=$(losetup -f --show -o $((10240 * 512)) --sizelimit $((131072 * 512)) "$W/part-ref.img")
mount "$LOOP" "$W/mnt"
extlinux --install "$W/mnt/boot/syslinux" >/dev/null 2>&1 || md_die "extlinux --install (partition)"
umount "$W/mnt"
losetup -d "$LOOP"
LOOP=
compare part 10240
# only the hidden-sectors field may differ: our value is the partition start
[ "$(u32 "$W/part-ours.vbr" 28)" = 10240 ] || md_die "part: our bsHidden is not 10240"
md_done PASS
