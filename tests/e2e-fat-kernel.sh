#!/bin/sh
# The Linux kernel reads our FAT: for FAT12, FAT16 and FAT32, `mdimg disk
# create IMG --part 64M:efi --fs TYPE TREE` makes a GPT image whose EFI
# System partition holds a tree with long names, nested directories, a
# 10 MB file, 8.3 names in upper, lower (the NT case flags) and mixed case.
# The minidistro kernel (scripts/build-kernel: vfat built in) boots under
# QEMU (TCG) with an initramfs from `mdimg initramfs --busybox` whose /init
# mounts /dev/vda1 read-only as vfat and prints a checksum listing — busybox
# md5sum over every file, names included, and the directories — that must
# equal the same listing made on the host from the tree; the FAT driver
# must log nothing (no "not properly unmounted", no corruption notes).
# MD_E2E_FAT lists the types (default "fat12 fat16 fat32").
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
SRC=${MD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
TYPES=${MD_E2E_FAT:-fat12 fat16 fat32}
md_need_qemu
md_need_busybox
md_tmpdir e2e-fat-kernel

# before SOURCE_DATE_EPOCH is set below: it is part of build-kernel's cache key
KERNEL=${MD_E2E_TINY_KERNEL:-$("$SRC/scripts/build-kernel" --query 2>/dev/null)}
if [ -z "$KERNEL" ]; then
    echo "note: building the minidistro kernel (cached afterwards; ~10 min on 2 cores)"
    KERNEL=$("$SRC/scripts/build-kernel" | tail -n 1) || KERNEL=
fi
[ -n "$KERNEL" ] && [ -r "$KERNEL" ] || md_missing "the minidistro kernel (scripts/build-kernel failed)"
export SOURCE_DATE_EPOCH=1700000000

# ---- the tree (ASCII names: the kernel's default iocharset is iso8859-1)
S=$T/src
md_fat_tree "$S"

# the listing, the same commands on both sides (busybox in the guest)
LIST='find . -type d | LC_ALL=C sort | sed "s/^/dir /"; find . -type f | LC_ALL=C sort | while read -r f; do md5sum "$f"; done'
(cd "$S" && eval "$LIST") >"$T/want"
[ "$(wc -l <"$T/want")" -gt 20 ] || md_die "host listing too short"

mkdir -p "$T/rd"
cat >"$T/init" <<EOF
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
i=0
while [ ! -b /dev/vda1 ] && [ \$i -lt 50 ]; do sleep 0.2; i=\$((i + 1)); done
mkdir -p /mnt
if mount -t vfat -o ro /dev/vda1 /mnt; then
    echo "MOUNTED \$(grep ' /mnt ' /proc/mounts)"
    cd /mnt
    echo LIST-BEGIN
    $LIST
    echo LIST-END
    cd /
    umount /mnt && echo UMOUNTED
    dmesg | grep 'FAT-fs' | sed 's/^/KMSG /'
else
    echo MOUNT-FAILED
fi
poweroff -f
EOF
"$MDIMG" initramfs -q -o "$T/initrd" --busybox "$BUSYBOX" --init "$T/init" "$T/rd" ||
    md_die "mdimg initramfs"

for t in $TYPES; do
    img=$T/$t.img
    "$MDIMG" -q disk create "$img" --part 64M:efi --fs "$t" --label E2E "$S" ||
        { md_fail "$t: disk create"; continue; }
    start=$(date +%s)
    timeout 300 "$QEMU" -nodefaults -display none -serial stdio -no-reboot \
        -machine accel=tcg -m 256 -kernel "$KERNEL" -initrd "$T/initrd" \
        -drive file="$img",format=raw,if=virtio \
        -append "console=ttyS0 panic=-1 quiet" </dev/null >"$T/$t.log" 2>&1
    st=$?
    secs=$(( $(date +%s) - start ))
    tr -d '\r' <"$T/$t.log" >"$T/$t.log2"
    sed -n '/^LIST-BEGIN$/,/^LIST-END$/p' "$T/$t.log2" | sed '1d;$d' >"$T/$t.got"
    ok=1
    grep -q "^MOUNTED /dev/vda1 /mnt vfat ro" "$T/$t.log2" || { md_fail "$t: not mounted as vfat ro"; ok=0; }
    if ! diff -u "$T/want" "$T/$t.got" >"$T/$t.diff"; then
        cat "$T/$t.diff" >&2
        md_fail "$t: the kernel's listing differs from the tree's"
        ok=0
    fi
    grep -q "^UMOUNTED$" "$T/$t.log2" || { md_fail "$t: umount"; ok=0; }
    if grep -q "^KMSG " "$T/$t.log2"; then
        grep "^KMSG " "$T/$t.log2" >&2
        md_fail "$t: the kernel's FAT driver complained"
        ok=0
    fi
    if [ $ok = 1 ]; then
        md_ok "$t: the kernel mounted the ESP (vfat) and read $(wc -l <"$T/want") names and sums identical (${secs}s)"
    else
        echo "qemu exit $st after ${secs}s; console log:" >&2
        tail -n 40 "$T/$t.log2" >&2
    fi
done
md_done
