#!/bin/sh
# mdimg boot with a real guest (TCG unless KVM really works): the Debian
# kernel from /boot (or MD_E2E_KERNEL) and a BusyBox initramfs built with
# `mdimg initramfs --busybox`.  Checks: scripted --expect/--send to a clean
# power-off (exit 0), --expect never seen (exit 1 within timeout + 5 s, last
# serial lines printed), a kernel panic (exit 1, reported as such), a disk
# image written by the guest (virtio), and left unchanged with --snapshot
# (IDE).  The Debian kernel has the disk drivers as modules: they are taken
# from /lib/modules/VERSION when present (else the disk checks are skipped).
set -u

. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
md_need_qemu
md_need_busybox
md_need_kernel

md_tmpdir e2e-boot
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT # KEEP=1: leave $T for a look
now() { date +%s.%N; }
elapsed() { echo "$(now) $1" | awk '{ printf "%.1f", $1 - $2 }'; }

# disk drivers for a distribution kernel, in load order
MODDIR=/lib/modules/${KERNEL#*/vmlinuz-}
mkdir -p "$T/root/mods"
DISK=no
if [ -r "$MODDIR/modules.dep" ]; then
    DISK=yes
    for m in virtio/virtio virtio/virtio_ring virtio/virtio_pci_legacy_dev \
             virtio/virtio_pci_modern_dev virtio/virtio_pci block/virtio_blk \
             scsi/scsi_common scsi/scsi_mod ata/libata ata/ata_piix scsi/sd_mod; do
        f="$MODDIR/kernel/drivers/$m.ko"
        if [ -r "$f" ]; then
            cp "$f" "$T/root/mods/" && echo "${m#*/}.ko" >> "$T/root/mods/order"
        elif ! grep -q "/${m#*/}.ko\$" "$MODDIR/modules.builtin" 2>/dev/null; then
            DISK=no # neither a module nor built in (compressed modules: not handled here)
        fi
    done
fi
echo "disk checks: $DISK ($MODDIR)"
cat > "$T/init" <<'SH'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
# load in passes: a module whose dependencies are not loaded yet waits for the next
for pass in 1 2 3 4; do
    for m in /mods/*.ko; do [ -e "$m" ] && insmod "$m" 2>/dev/null && rm "$m"; done
done
ls /mods/*.ko 2>/dev/null | sed 's/^/module not loaded: /'
echo "MD-E2E-MARKER $(uname -r) cmdline=$(cat /proc/cmdline)"
exec setsid cttyhack sh
SH
"$MDIMG" initramfs -q -o "$T/initrd" --busybox "$BUSYBOX" --init "$T/init" "$T/root" ||
    md_die "mdimg initramfs"
truncate -s 4M "$T/disk.img"
DISKCMD=
if [ $DISK = yes ]; then
    # the block device may show up a moment after the driver is loaded
    DISKCMD='for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.5; done; [ -b /dev/vda ] && echo MD-DISK-WRITE | dd of=/dev/vda conv=fsync 2>/dev/null; echo wrote-$?'
fi
APPEND="console=ttyS0 panic=-1 quiet"

# 1. scripted session to a clean power-off, the guest writing to the disk
t0=$(now)
if [ $DISK = yes ]; then
    set -- --send "$DISKCMD" --expect wrote-0
else
    set --
fi
"$MDIMG" boot --kernel "$KERNEL" --initrd "$T/initrd" --append "$APPEND" --timeout 240 \
    --expect MD-E2E-MARKER --send 'echo hi-$((1+2))' --expect hi-3 "$@" \
    --send 'poweroff -f' "$T/disk.img" >"$T/out1" 2>"$T/err1" </dev/null
rc=$?
echo "scripted boot to power-off: exit $rc in $(elapsed "$t0") s"
if [ $rc != 0 ]; then
    md_fail "scripted boot exit $rc"; cat "$T/err1" >&2
else
    grep -q "MD-E2E-MARKER .* cmdline=console=ttyS0 panic=-1 quiet" "$T/out1" ||
        md_fail "no marker in the serial output"
    # the typed command ran in the guest: its output is a line of its own
    grep -q "^hi-3" "$T/out1" || md_fail "'hi-3' not printed by the guest"
    grep -q "reboot: Power down" "$T/out1" || md_fail "no clean power-off"
    [ ! -s "$T/err1" ] || { md_fail "unexpected stderr:"; cat "$T/err1" >&2; }
    if [ $DISK = yes ]; then
        [ "$(head -c 13 "$T/disk.img")" = MD-DISK-WRITE ] ||
            md_fail "the guest's write did not reach disk.img"
    fi
fi

# 2. --expect that never comes: exit 1 within timeout + 5 s, tail printed
t0=$(now)
"$MDIMG" boot --kernel "$KERNEL" --initrd "$T/initrd" --append "$APPEND" \
    --expect NEVER-PRINTED --timeout 20 >"$T/out2" 2>"$T/err2" </dev/null
rc=$?
el=$(elapsed "$t0")
echo "--expect never seen: exit $rc after $el s"
[ $rc = 1 ] || md_fail "exit $rc, want 1"
awk -v e="$el" 'BEGIN { exit !(e >= 19.5 && e <= 25) }' ||
    md_fail "took $el s, want 20..25"
grep -q '"NEVER-PRINTED" not seen within the 20 s timeout' "$T/err2" ||
    { md_fail "no timeout message"; cat "$T/err2" >&2; }
grep -q "last serial output" "$T/err2" && grep -q "MD-E2E-MARKER" "$T/err2" ||
    { md_fail "last serial lines not printed"; cat "$T/err2" >&2; }

# 3. a kernel panic (no initramfs, no root): exit 1, reported as a panic
t0=$(now)
"$MDIMG" boot --kernel "$KERNEL" --append "console=ttyS0 panic=-1" --expect "login:" \
    --timeout 120 >"$T/out3" 2>"$T/err3" </dev/null
rc=$?
echo "kernel panic: exit $rc after $(elapsed "$t0") s"
[ $rc = 1 ] || md_fail "exit $rc, want 1"
grep -q 'kernel panic before "login:" was seen' "$T/err3" ||
    { md_fail "panic not reported"; cat "$T/err3" >&2; }
grep -q "Kernel panic - not syncing" "$T/err3" ||
    md_fail "panic line not in the tail"

# 4. IDE + --snapshot: the guest sees its own write, the image file does not change
if [ $DISK = yes ]; then
    sum=$(md5sum < "$T/disk.img")
    "$MDIMG" boot --kernel "$KERNEL" --initrd "$T/initrd" --append "$APPEND" --snapshot \
        --if ide --memory 200 --timeout 240 --quiet-serial --expect MD-E2E-MARKER \
        --send 'for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/sda ] && break; sleep 0.5; done; head -c 13 /dev/sda; echo; [ -b /dev/sda ] && echo MD-SNAP-WRITE | dd of=/dev/sda conv=fsync 2>/dev/null; head -c 13 /dev/sda | tr A-Z a-z; echo' \
        --expect md-snap-write --send 'poweroff -f' "$T/disk.img" >"$T/out4" 2>"$T/err4" </dev/null
    rc=$?
    [ $rc = 0 ] || { md_fail "boot with a --snapshot IDE disk: exit $rc"; cat "$T/err4" >&2; }
    [ ! -s "$T/out4" ] || md_fail "--quiet-serial wrote to stdout"
    [ "$(md5sum < "$T/disk.img")" = "$sum" ] || md_fail "disk changed under --snapshot"
else
    md_missing_part "disk drivers for $KERNEL in $MODDIR (uncompressed modules or built in)" \
        linux-image-cloud-amd64 || true
fi

md_done PASS
