#!/bin/sh
# Unified kernel images booted by OVMF.  A GPT image from `mdimg disk create
# --part 64M:efi` gets a FAT32 ESP made with the standard tools (mkfs.fat,
# mmd, mcopy: the in-process FAT writer is another module's job) holding the
# UKI at \EFI\BOOT\BOOTX64.EFI, which OVMF's boot manager starts without any
# boot entry.  The UKI: `mdimg uki` on an initramfs from `mdimg initramfs
# --busybox` (its /init starts a shell), cmdline "console=ttyS0 panic=-1".
#   1. the minidistro kernel (scripts/build-kernel), `mdimg boot --firmware
#      uefi`: shell, a command, the ESP mounted as vfat by the guest, clean
#      power-off; again with --if ide (AHCI on q35)
#   2. the same image with a plain qemu-system-x86_64 -machine q35 -drive
#      if=pflash,... line (no mdimg), driven through a FIFO
#   3. Debian's kernel (/boot/vmlinuz-*, it has the EFI stub) as .linux, with
#      `mdimg boot --firmware auto` (the image has only an ESP: UEFI)
# QEMU is TCG here; every run has a timeout.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
SRC=${MD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
md_need_qemu
md_need_busybox
md_need_file "$OVMF_CODE" ovmf
md_need_file "$OVMF_VARS" ovmf
md_need_file /usr/lib/systemd/boot/efi/linuxx64.efi.stub systemd-boot-efi
md_need_tool mkfs.fat dosfstools
md_need_tool mmd mtools
md_need_tool mcopy mtools
md_need_tool mdir mtools
md_need_kernel
DEB=$KERNEL

md_tmpdir e2e-uefi-uki
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"; [ -z "${QPID:-}" ] || kill "$QPID" 2>/dev/null' EXIT
now() { date +%s.%N; }
elapsed() { echo "$(now) $1" | awk '{ printf "%.1f", $1 - $2 }'; }
export MTOOLS_SKIP_CHECK=1 # the partition is not a whole number of "cylinders"

TINY=${MD_E2E_TINY_KERNEL:-$("$SRC/scripts/build-kernel" --query 2>/dev/null)}
if [ -z "$TINY" ]; then
    echo "note: building the minidistro kernel (cached afterwards; ~10 min on 2 cores)"
    TINY=$("$SRC/scripts/build-kernel" | tail -n 1) || TINY=
fi
[ -n "$TINY" ] && [ -r "$TINY" ] || md_missing "the minidistro kernel (scripts/build-kernel failed)"

CMDLINE="console=ttyS0 panic=-1"
"$MDIMG" initramfs -q -o "$T/initrd.cpio" --busybox "$BUSYBOX" || md_die "mdimg initramfs"
printf 'NAME="minidistro"\nID=minidistro\nPRETTY_NAME="minidistro UKI test"\n' >"$T/os-release"

# make_esp IMG UKI: GPT image, FAT32 in partition 1 (at 1 MiB), UKI as BOOTX64.EFI
make_esp() {
    "$MDIMG" disk create -q "$1" --size 80M --part 64M:efi || md_die "mdimg disk create $1"
    start=$("$MDIMG" inspect "$1" | awk '$1 == 1 { print $2 }')
    [ "$start" = 2048 ] || md_die "partition 1 of $1 starts at sector '$start', want 2048"
    mkfs.fat -F 32 -n ESP --offset 2048 "$1" $((64 * 1024)) >"$T/mkfs.log" 2>&1 ||
        { cat "$T/mkfs.log" >&2; md_die "mkfs.fat"; }
    mmd -i "$1@@1M" ::/EFI ::/EFI/BOOT || md_die "mmd"
    mcopy -i "$1@@1M" "$2" ::/EFI/BOOT/BOOTX64.EFI || md_die "mcopy"
    mdir -i "$1@@1M" ::/EFI/BOOT | grep -q "^BOOTX64 *EFI *$(stat -c %s "$2")" ||
        { mdir -i "$1@@1M" ::/EFI/BOOT >&2; md_die "BOOTX64.EFI not on the ESP of $1"; }
}

# boot_check NAME OUT ERR RC SECONDS: the common checks of a scripted boot
boot_check() {
    if [ "$4" != 0 ]; then
        md_fail "$1: exit $4 after $5 s"; cat "$3" >&2; return
    fi
    grep -q "EFI stub: " "$2" || md_fail "$1: the kernel did not start through its EFI stub"
    grep -q "^hi-3" "$2" || md_fail "$1: the typed command did not run"
    grep -q "^cmdline: $CMDLINE" "$2" || md_fail "$1: /proc/cmdline is not the UKI's .cmdline"
    grep -q "reboot: Power down" "$2" || md_fail "$1: no clean power-off"
    md_ok "$1: UEFI boot to the shell, a command, power-off in $5 s"
}

# --- 1. our kernel through mdimg boot -------------------------------------------------

"$MDIMG" uki -q -o "$T/tiny.efi" --kernel "$TINY" --initrd "$T/initrd.cpio" \
    --cmdline "$CMDLINE" --os-release "$T/os-release" || md_die "mdimg uki (our kernel)"
make_esp "$T/tiny.img" "$T/tiny.efi"
ESPCMD='mkdir -p /esp && mount -t vfat -o ro DEV /esp && ls /esp/EFI/BOOT | sed s/^/esp:/; umount /esp'
t0=$(now)
"$MDIMG" boot --firmware uefi --timeout 300 "$T/tiny.img" \
    --expect "libminidistro: booted" --send 'echo hi-$((1+2)); echo "cmdline: $(cat /proc/cmdline)"' \
    --expect hi-3 --send "$(echo "$ESPCMD" | sed 's,DEV,/dev/vda1,')" --expect esp:BOOTX64.EFI \
    --send 'poweroff -f' >"$T/out1" 2>"$T/err1" </dev/null
rc=$?
boot_check "our kernel, mdimg boot --firmware uefi (virtio)" "$T/out1" "$T/err1" $rc "$(elapsed "$t0")"
grep -q "^esp:BOOTX64.EFI" "$T/out1" && md_ok "the guest mounted the ESP (vfat) and sees BOOTX64.EFI" ||
    md_fail "the guest did not list BOOTX64.EFI on the ESP"

t0=$(now)
"$MDIMG" boot --firmware uefi --if ide --timeout 300 "$T/tiny.img" \
    --expect "libminidistro: booted" --send 'echo hi-$((1+2)); echo "cmdline: $(cat /proc/cmdline)"' \
    --expect hi-3 --send "$(echo "$ESPCMD" | sed 's,DEV,/dev/sda1,')" --expect esp:BOOTX64.EFI \
    --send 'poweroff -f' >"$T/out1i" 2>"$T/err1i" </dev/null
rc=$?
boot_check "our kernel, --if ide (AHCI on q35)" "$T/out1i" "$T/err1i" $rc "$(elapsed "$t0")"

# --- 2. a plain QEMU line, no mdimg ---------------------------------------------------

t0=$(now)
md_qemu_ovmf 300 "$T/tiny.img" "$T/out2" "$T/err2"
exec 3>"$T/in"
if md_wait_for "$T/out2" "libminidistro: booted" 240 && md_wait_for "$T/out2" "# " 60; then
    echo 'echo hi-$((1+2)); echo "cmdline: $(cat /proc/cmdline)"' >&3
    md_wait_for "$T/out2" "hi-3" 60 || md_fail "plain QEMU: the command's output did not come"
    echo 'poweroff -f' >&3
else
    md_fail "plain QEMU: no shell within the time limit"
fi
wait "$QPID"
rc=$?
QPID=
exec 3>&-
boot_check "our kernel, plain qemu-system-x86_64 -machine q35 -drive if=pflash,..." \
    "$T/out2" "$T/err2" $rc "$(elapsed "$t0")"
cmp -s "$OVMF_VARS" "$T/vars.fd" && echo "note: OVMF did not write its variable store"

# --- 3. Debian's kernel ---------------------------------------------------------------

"$MDIMG" uki -q -o "$T/deb.efi" --kernel "$DEB" --initrd "$T/initrd.cpio" --cmdline "$CMDLINE" ||
    md_die "mdimg uki ($DEB)"
make_esp "$T/deb.img" "$T/deb.efi"
t0=$(now)
"$MDIMG" -v boot --firmware auto --timeout 300 "$T/deb.img" \
    --expect "libminidistro: booted" --send 'echo hi-$((1+2)); echo "cmdline: $(cat /proc/cmdline)"' \
    --expect hi-3 --send 'poweroff -f' >"$T/out3" 2>"$T/err3" </dev/null
rc=$?
boot_check "Debian's kernel $(basename "$DEB"), --firmware auto" "$T/out3" "$T/err3" $rc "$(elapsed "$t0")"
grep -q "^mdimg: boot: firmware UEFI (OVMF)" "$T/err3" || md_fail "--firmware auto did not pick UEFI"
grep -q "libminidistro: booted ${DEB#/boot/vmlinuz-}" "$T/out3" ||
    md_fail "the guest does not run $(basename "$DEB")"

md_done PASS
