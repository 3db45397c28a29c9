#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# EXTLINUX installed by `mdimg extlinux install` (no root, no mount) boots in
# QEMU from the disk alone (no -kernel): whole-disk ext4, MBR partition 1 and
# 2, GPT (gptmbr.bin), ext2, ext3.  Each image is installed twice (the
# second run is an update), checked with e2fsck -fn after each run and with
# sfdisk for the boot flag; the boot must show the SYSLINUX banner on the
# serial line, the kernel command line of that case, and the marker printed
# by the initramfs /init.
# Fixtures are made here with independent tools: sfdisk, mkfs.ext2/3/4 -d
# (which leaves all-zero blocks of the kernel as holes: the install must fill
# them, EXTLINUX cannot read sparse files), cpio.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

: "${MDIMG:?}"
for t in qemu-system-x86_64 sfdisk mkfs.ext4 e2fsck debugfs cpio; do
    md_need_tool "$t"
done
KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | head -n1)
[ -n "$KERNEL" ] && [ -r "$KERNEL" ] || md_missing "a readable /boot/vmlinuz-*" linux-image-cloud-amd64
BUSYBOX=/bin/busybox # Debian busybox-static
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && [ -x "$BUSYBOX" ] || md_missing busybox busybox-static
md_need_file /usr/bin/extlinux extlinux

W=$(mktemp -d /tmp/md-extlinux-e2e.XXXXXX)
trap 'rm -rf "$W"' EXIT

# initramfs: static busybox + /init printing a marker and powering off
mkdir -p "$W/ird/bin" "$W/root/boot"
cp "$BUSYBOX" "$W/ird/bin/busybox"
cat >"$W/ird/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox echo "MD-EXTLINUX-MARKER: /init reached"
/bin/busybox poweroff -f
EOF
chmod 755 "$W/ird/init"
(cd "$W/ird" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$W/root/boot/initrd.gz"
cp "$KERNEL" "$W/root/boot/vmlinuz"
chmod 644 "$W/root/boot/vmlinuz" "$W/root/boot/initrd.gz"

# mkimage NAME TABLE(none|dos|gpt) PARTNO MKFS [MKFS_OPTS]
# The filesystem is 64 MiB; with a table it is partition PARTNO (a small
# partition 1 precedes partition 2).
mkimage() {
    name=$1 table=$2 part=$3 mkfs=$4
    shift 4
    img="$W/$name.img"
    start=0
    if [ "$table" = none ]; then
        truncate -s 64M "$img"
    else
        truncate -s 72M "$img"
        if [ "$part" = 1 ]; then
            printf 'label: %s\nstart=2048, size=131072, type=L\n' "$table" | sfdisk -q "$img"
            start=2048
        else
            printf 'label: %s\nstart=2048, size=8192, type=L\nstart=10240, size=131072, type=L\n' \
                "$table" | sfdisk -q "$img"
            start=10240
        fi
    fi
    "$mkfs" -q -F -E offset=$((start * 512)) -d "$W/root" "$@" "$img" 64M >/dev/null
    echo "$start"
}

fsck_ok() { # IMG START what
    if ! e2fsck -fn "$1?offset=$(($2 * 512))" >"$W/fsck.log" 2>&1; then
        cat "$W/fsck.log" >&2
        md_die "$1: e2fsck -fn not clean $3"
    fi
}

# check NAME TABLE PARTNO START: install twice, fsck, table, boot
check() {
    name=$1 table=$2 part=$3 start=$4
    img="$W/$name.img"
    shift 4
    dir=/boot/syslinux
    case "$*" in *"--dir /") dir= ;; esac
    for run in 1 2; do
        "$MDIMG" -q extlinux install "$img" --part "$part" "$@" || md_die "$name: install run $run"
        fsck_ok "$img" "$start" "after install run $run"
    done
    # the file: immutable, mode 0444, one extent
    debugfs -R "stat $dir/ldlinux.sys" "$img?offset=$((start * 512))" >"$W/stat" 2>/dev/null
    grep -q "Mode:  0444" "$W/stat" || md_die "$name: ldlinux.sys mode"
    grep -q "Size: 59392" "$W/stat" || md_die "$name: ldlinux.sys size"
    flags=$(sed -n 's/.*Flags: \(0x[0-9a-f]*\).*/\1/p' "$W/stat")
    [ $((flags & 0x10)) -ne 0 ] || { cat "$W/stat" >&2; md_die "$name: ldlinux.sys not immutable"; }
    case $table in
    dos)
        sfdisk -d "$img" | grep "^$img$part :" | grep -q "bootable" || md_die "$name: partition $part not active"
        n=$(sfdisk -d "$img" | grep -c bootable || true)
        [ "$n" = 1 ] || md_die "$name: $n active partitions"
        cmp -n 440 "$img" /usr/lib/syslinux/mbr/mbr.bin || md_die "$name: MBR boot code is not mbr.bin"
        ;;
    gpt)
        sfdisk -d "$img" | grep "^$img$part :" | grep -q "LegacyBIOSBootable" ||
            md_die "$name: partition $part lacks the LegacyBIOSBootable attribute"
        cmp -n 440 "$img" /usr/lib/syslinux/mbr/gptmbr.bin || md_die "$name: MBR boot code is not gptmbr.bin"
        ;;
    esac
    # VBR: hidden sectors = partition start
    hidden=$(od -An -tu4 -j $((start * 512 + 0x1c)) -N4 "$img" | tr -d ' ')
    [ "$hidden" = "$start" ] || md_die "$name: VBR hidden sectors $hidden, expected $start"

    t0=$(date +%s)
    timeout 300 qemu-system-x86_64 -nodefaults -display none -serial stdio -no-reboot -m 512 \
        -drive "file=$img,format=raw" </dev/null >"$W/$name.log" 2>&1 || true
    t1=$(date +%s)
    tr -d '\r' <"$W/$name.log" >"$W/$name.txt"
    if ! grep -q "^SYSLINUX 6" "$W/$name.txt" || ! grep -q "mdcase=$name" "$W/$name.txt" ||
        ! grep -q "MD-EXTLINUX-MARKER: /init reached" "$W/$name.txt"; then
        tail -n 30 "$W/$name.txt" >&2
        md_die "$name: did not boot to the initramfs marker"
    fi
    md_ok "$name ($table, partition $part) booted in $((t1 - t0)) s"
}

APPEND="console=ttyS0 panic=-1"

s=$(mkimage ext4-whole none 0 mkfs.ext4)
check ext4-whole none 0 "$s" --kernel /boot/vmlinuz --initrd /boot/initrd.gz \
    --append "$APPEND mdcase=ext4-whole" --serial 0,115200

s=$(mkimage ext4-mbr1 dos 1 mkfs.ext4)
check ext4-mbr1 dos 1 "$s" --kernel /boot/vmlinuz --initrd /boot/initrd.gz \
    --append "$APPEND mdcase=ext4-mbr1" --serial 0,115200

# a hand-written config, install in / of partition 2, 4 KiB blocks, no 64bit/metadata_csum
s=$(mkimage ext4-mbr2 dos 2 mkfs.ext4 -b 4096 -O ^64bit,^metadata_csum)
cat >"$W/ext4-mbr2.conf" <<EOF
SERIAL 0 115200
DEFAULT mdtest
PROMPT 0
TIMEOUT 0
LABEL mdtest
  KERNEL /boot/vmlinuz
  APPEND $APPEND mdcase=ext4-mbr2 initrd=/boot/initrd.gz
EOF
check ext4-mbr2 dos 2 "$s" --config "$W/ext4-mbr2.conf" --dir /

s=$(mkimage ext4-gpt gpt 1 mkfs.ext4)
check ext4-gpt gpt 1 "$s" --kernel /boot/vmlinuz --initrd /boot/initrd.gz \
    --append "$APPEND mdcase=ext4-gpt" --serial 0,115200

s=$(mkimage ext2-whole none 0 mkfs.ext2)
check ext2-whole none 0 "$s" --kernel /boot/vmlinuz --initrd /boot/initrd.gz \
    --append "$APPEND mdcase=ext2-whole" --serial 0,115200

s=$(mkimage ext3-mbr1 dos 1 mkfs.ext3 -I 128)
check ext3-mbr1 dos 1 "$s" --kernel /boot/vmlinuz --initrd /boot/initrd.gz \
    --append "$APPEND mdcase=ext3-mbr1" --serial 0,115200

md_done PASS
