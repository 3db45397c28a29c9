#!/bin/sh
# The Linux kernel reads and writes our filesystems: a disk with an MBR
# partition formatted (ext4, mke2fs's default features incl. 64bit and
# metadata_csum) and populated by mdimg is attached to QEMU (virtio-blk,
# TCG).  A BusyBox initramfs (made by mdimg initramfs) loads the virtio
# modules, lists /proc/partitions, mounts the partition read-write, checks a
# file we put there, writes a new file, unmounts and powers off.  Then, on
# the host: `e2fsck -fn` is still clean and debugfs shows the new file.
# MD_E2E_FS (default "ext4") may list several types, e.g. "ext2 ext3 ext4".
set -eu

. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
FSTYPES=${MD_E2E_FS:-ext4}
md_need_qemu
md_need_busybox
md_need_kernel
KVER=${KERNEL#/boot/vmlinuz-}
MODDIR=/lib/modules/$KVER
md_need_file "$MODDIR/modules.dep" linux-image-cloud-amd64

md_tmpdir e2e-disk-kernel
export SOURCE_DATE_EPOCH=1700000000

# virtio_pci + virtio_blk and their dependencies, in load order (modules.dep);
# built-in drivers are skipped.
mods=""
add_mod() { # path relative to MODDIR
    case " $mods " in *" $1 "*) return;; esac
    deps=$(awk -F: -v m="$1" '$1 == m { print $2 }' "$MODDIR/modules.dep")
    for d in $deps; do add_mod "$d"; done
    mods="$mods $1"
}
for m in virtio_pci virtio_blk; do
    p=$(awk -F: -v n="/$m.ko" 'index($1, n) { print $1; exit }' "$MODDIR/modules.dep")
    if [ -n "$p" ]; then
        add_mod "$p"
    elif ! grep -q "/$m.ko" "$MODDIR/modules.builtin" 2>/dev/null; then
        md_missing "$m (neither a module in $MODDIR nor built in)" linux-image-cloud-amd64
    fi
done
mkdir -p "$T/rd/lib/modules"
loads=""
for m in $mods; do
    b=$(basename "$m")
    case "$b" in
    *.ko) cp "$MODDIR/$m" "$T/rd/lib/modules/$b" ;;
    *.ko.xz) xz -dc "$MODDIR/$m" >"$T/rd/lib/modules/${b%.xz}"; b=${b%.xz} ;;
    *.ko.zst) zstd -qdc "$MODDIR/$m" >"$T/rd/lib/modules/${b%.zst}"; b=${b%.zst} ;;
    *.ko.gz) gzip -dc "$MODDIR/$m" >"$T/rd/lib/modules/${b%.gz}"; b=${b%.gz} ;;
    esac
    loads="$loads $b"
done

cat >"$T/init" <<EOF
#!/bin/sh
export PATH=/bin:/sbin
busybox mount -t proc proc /proc
busybox mount -t sysfs sysfs /sys
busybox mount -t devtmpfs devtmpfs /dev
for m in $loads; do busybox insmod /lib/modules/\$m || echo "INSMOD-FAILED \$m"; done
i=0
while [ ! -b /dev/vda1 ] && [ \$i -lt 50 ]; do busybox sleep 0.2; i=\$((i + 1)); done
echo "PARTITIONS-BEGIN"; busybox cat /proc/partitions; echo "PARTITIONS-END"
busybox mkdir -p /mnt
if busybox mount -t \$(busybox cat /fstype) -o rw /dev/vda1 /mnt; then
    echo "MOUNTED \$(busybox grep ' /mnt ' /proc/mounts)"
    echo "READ \$(busybox cat /mnt/etc/greeting)"
    echo "SUM \$(busybox sha256sum /mnt/blob)"
    echo "COUNT \$(busybox ls /mnt/many | busybox wc -l)"
    echo "written by the kernel" > /mnt/newfile
    busybox mkdir /mnt/newdir && echo x > /mnt/newdir/x
    busybox sync
    busybox umount /mnt && echo "UMOUNTED"
else
    echo "MOUNT-FAILED"
fi
busybox poweroff -f
EOF

for fs in $FSTYPES; do
    echo "$fs" >"$T/rd/fstype"
    "$MDIMG" initramfs -q -o "$T/initrd" --busybox "$BUSYBOX" --init "$T/init" "$T/rd"
    img="$T/disk-$fs.img"
    mkdir -p "$T/tree/etc"
    echo "hello from mdimg" >"$T/tree/etc/greeting"
    if [ ! -e "$T/tree/blob" ]; then
        # data through the kernel's extent / block-map reader: a file with a hole
        head -c 3000000 /dev/urandom >"$T/tree/blob"
        dd if=/dev/urandom bs=4096 count=100 seek=2000 of="$T/tree/blob" conv=notrunc 2>/dev/null
        mkdir -p "$T/tree/many"
        i=0; while [ $i -lt 3000 ]; do : >"$T/tree/many/f$i"; i=$((i + 1)); done
    fi
    blobsum=$(sha256sum <"$T/tree/blob" | cut -d' ' -f1)
    "$MDIMG" -q disk create "$img" --size 96M --table mbr --part rest:linux:bootable
    "$MDIMG" -q disk format "$img" --part 1 --fs "$fs" --label E2E
    "$MDIMG" -q disk populate "$img" --part 1 "$T/tree"
    dev="$img?offset=1048576"
    e2fsck -fn "$dev" >"$T/fsck0" 2>&1 || { cat "$T/fsck0" >&2; md_die "$fs: e2fsck before boot"; }
    start=$(date +%s)
    set +e
    timeout 400 "$QEMU" -nodefaults -display none -serial stdio -no-reboot \
        -machine accel=tcg -m 512 -kernel "$KERNEL" -initrd "$T/initrd" \
        -drive file="$img",format=raw,if=virtio \
        -append "console=ttyS0 panic=-1 quiet" </dev/null >"$T/log" 2>&1
    st=$?
    set -e
    secs=$(( $(date +%s) - start ))
    tr -d '\r' <"$T/log" >"$T/log2"
    ok=1
    grep -q "INSMOD-FAILED" "$T/log2" && { md_fail "$fs: insmod failed"; ok=0; }
    sed -n '/PARTITIONS-BEGIN/,/PARTITIONS-END/p' "$T/log2" | grep -q ' vda1$' ||
        { md_fail "$fs: vda1 not in /proc/partitions"; ok=0; }
    grep -q "^MOUNTED /dev/vda1 /mnt $fs rw" "$T/log2" || { md_fail "$fs: not mounted rw"; ok=0; }
    grep -q "^READ hello from mdimg$" "$T/log2" || { md_fail "$fs: our file not read back"; ok=0; }
    grep -q "^SUM $blobsum " "$T/log2" || { md_fail "$fs: the kernel read different data"; ok=0; }
    grep -q "^COUNT 3000$" "$T/log2" || { md_fail "$fs: 3000-entry directory"; ok=0; }
    grep -q "^UMOUNTED$" "$T/log2" || { md_fail "$fs: umount"; ok=0; }
    if [ $ok = 1 ]; then
        if ! e2fsck -fn "$dev" >"$T/fsck1" 2>&1; then
            cat "$T/fsck1" >&2; md_fail "$fs: e2fsck -fn after the kernel wrote"; ok=0
        fi
        debugfs -R 'cat /newfile' "$dev" 2>/dev/null | grep -qx "written by the kernel" ||
            { md_fail "$fs: /newfile not found by debugfs"; ok=0; }
        debugfs -R 'cat /newdir/x' "$dev" 2>/dev/null | grep -qx x ||
            { md_fail "$fs: /newdir/x not found by debugfs"; ok=0; }
    fi
    if [ $ok = 1 ]; then
        md_ok "$fs: kernel $KVER mounted, read, wrote; e2fsck clean (${secs}s)"
    else
        echo "qemu exit $st after ${secs}s; console log:" >&2
        tail -n 40 "$T/log2" >&2
    fi
done
md_done
