#!/bin/sh
# `mdimg build --boot uefi|hybrid` booted (issue 12 acceptance), as whoever
# runs the test (nobody in CI); QEMU is TCG, every run has a timeout:
#   1. the minidistro kernel (scripts/build-kernel), --boot uefi --root disk:
#      `mdimg boot --firmware uefi` to a shell, /proc/cmdline is the UKI's, a
#      file written; a second UEFI boot reads it back (persistence); e2fsck
#      -fn clean after each boot; then the same image from a plain
#      qemu-system-x86_64 -machine q35 -drive if=pflash,... line (no mdimg);
#   2. the minidistro kernel, --boot hybrid --root disk: boots under SeaBIOS
#      (EXTLINUX) and under OVMF (the UKI), the same root and command line;
#   3. Debian's kernel (/boot/vmlinuz-*, its virtio/ext4 drivers are
#      modules /init loads), --boot uefi and --boot hybrid --root disk:
#      OVMF, and for hybrid also SeaBIOS.
# Each boot: OVMF's boot manager starting the disk and the kernel seeing
# EFI (/sys/firmware/efi), or EXTLINUX's banner and no EFI under SeaBIOS; a
# command's output; a clean power-off; e2fsck -fn clean afterwards.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
SRC=${MD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
md_need_qemu
md_need_busybox
md_need_kernel
DEB=$KERNEL
md_need_file "$OVMF_CODE" ovmf
md_need_file "$OVMF_VARS" ovmf
md_need_file /usr/lib/systemd/boot/efi/linuxx64.efi.stub systemd-boot-efi
md_need_tool e2fsck
md_need_tool sfdisk

TINY=${MD_E2E_TINY_KERNEL:-$("$SRC/scripts/build-kernel" --query 2>/dev/null)}
if [ -z "$TINY" ]; then
    echo "note: building the minidistro kernel (cached afterwards; ~10 min on 2 cores)"
    TINY=$("$SRC/scripts/build-kernel" | tail -n 1) || TINY=
fi
[ -n "$TINY" ] && [ -r "$TINY" ] || md_missing "the minidistro kernel (scripts/build-kernel failed)"

md_tmpdir e2e-uefi-distro
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"; [ -z "${QPID:-}" ] || kill "$QPID" 2>/dev/null' EXIT
now() { date +%s.%N; }
elapsed() { echo "$(now) $1" | awk '{ printf "%.1f", $1 - $2 }'; }

# build IMG KERNEL ARGS...
build() {
    img=$1 k=$2
    shift 2
    "$MDIMG" -q build -o "$img" --kernel "$k" --busybox "$BUSYBOX" --root disk "$@" >"$T/build.out" 2>&1 ||
        { cat "$T/build.out" >&2; md_die "mdimg build $*"; }
}

# root_fsck NAME IMG: e2fsck -fn of partition 2 (the root after the ESP)
root_fsck() {
    start=$(sfdisk -d "$2" | sed -n 's/^[^ ]*2 : start= *\([0-9]*\),.*/\1/p')
    e2fsck -fn "$2?offset=$((start * 512))" >"$T/fsck.txt" 2>&1 ||
        { md_fail "$1: e2fsck -fn after the boot"; cat "$T/fsck.txt" >&2; }
}

# boot NAME FIRMWARE IMG SEND: one scripted boot with its checks: SEND,
# then a line telling whether the kernel sees EFI (/sys/firmware/efi)
boot() {
    name=$1 fw=$2 img=$3
    t0=$(now)
    "$MDIMG" boot --firmware "$fw" --timeout 400 --batch "$img" --expect "# " \
        --send "$4; echo FW=\$([ -d /sys/firmware/efi ] && echo uefi || echo bios) E=\"\"end" \
        --expect "E=end" --send 'poweroff -f' >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    if [ $rc != 0 ]; then
        md_fail "$name: exit $rc after $(elapsed "$t0") s"; tail -n 30 "$T/out" >&2; cat "$T/err" >&2
        return
    fi
    grep -q "^FW=$fw E=end" "$T/out" || md_fail "$name: the kernel did not boot by $fw: $(grep -a '^FW=' "$T/out")"
    if [ "$fw" = uefi ]; then
        grep -q "BdsDxe: starting Boot.*UEFI" "$T/out" || md_fail "$name: OVMF's boot manager did not start the disk"
    else
        grep -q "^SYSLINUX " "$T/out" || md_fail "$name: EXTLINUX did not start"
    fi
    grep -q "reboot: Power down" "$T/out" || md_fail "$name: no clean power-off"
    md_ok "$name: $fw boot to a shell, '$4', power-off in $(elapsed "$t0") s"
    root_fsck "$name" "$img"
}

# --- 1. our kernel, --boot uefi: two boots, then a plain QEMU line --------------------
IMG=$T/uefi.img
build "$IMG" "$TINY" --boot uefi
boot "our kernel, --boot uefi, boot 1" uefi "$IMG" \
    'echo "C=$(cat /proc/cmdline)"; echo kept-$((6*7)) > /persist; sync'
grep -q "^C=console=ttyS0 panic=-1 quiet root=LABEL=minidistro" "$T/out" &&
    md_ok "/proc/cmdline is the UKI's .cmdline" || md_fail "/proc/cmdline: $(grep -a '^C=' "$T/out")"
grep -q "minidistro: root is /dev/vda2" "$T/out" && md_ok "the root is partition 2, after the ESP" ||
    md_fail "the root is not /dev/vda2: $(grep -a 'root is' "$T/out")"
boot "our kernel, --boot uefi, boot 2 (persistence)" uefi "$IMG" 'cat /persist'
grep -q "^kept-42" "$T/out" && md_ok "the file written in boot 1 is read in boot 2" ||
    md_fail "boot 2 did not read /persist"

t0=$(now)
md_qemu_ovmf 400 "$IMG" "$T/out2" "$T/err2"
exec 3>"$T/in"
if md_wait_for "$T/out2" "minidistro: root is" 300 && md_wait_for "$T/out2" "# " 60; then
    echo 'echo again-$(cat /persist)' >&3
    md_wait_for "$T/out2" "again-kept-42" 60 || md_fail "plain QEMU: the command's output did not come"
    echo 'poweroff -f' >&3
else
    md_fail "plain QEMU: no shell within the time limit"
fi
wait "$QPID"
rc=$?
QPID=
exec 3>&-
if [ $rc = 0 ] && grep -q "reboot: Power down" "$T/out2" && grep -q "^again-kept-42" "$T/out2"; then
    md_ok "our kernel, --boot uefi: a plain qemu-system-x86_64 -drive if=pflash,... line boots it ($(elapsed "$t0") s)"
else
    md_fail "plain QEMU: exit $rc"; tail -n 20 "$T/out2" >&2; cat "$T/err2" >&2
fi

# --- 2. our kernel, --boot hybrid: SeaBIOS and OVMF -----------------------------------
IMG=$T/hybrid.img
build "$IMG" "$TINY" --boot hybrid
for fw in bios uefi; do
    boot "our kernel, --boot hybrid" $fw "$IMG" 'echo "C=$(cat /proc/cmdline)"'
    grep -q "^C=.*console=ttyS0 panic=-1 quiet root=LABEL=minidistro" "$T/out" ||
        md_fail "hybrid, $fw: /proc/cmdline: $(grep -a '^C=' "$T/out")"
done

# --- 3. Debian's kernel -------------------------------------------------------------------
for mode in uefi hybrid; do
    IMG=$T/deb-$mode.img
    build "$IMG" "$DEB" --boot $mode
    fws=uefi
    [ $mode = hybrid ] && fws="uefi bios"
    for fw in $fws; do
        boot "Debian's $(basename "$DEB"), --boot $mode" $fw "$IMG" \
            'echo "R=$(uname -r) M=$(grep -c ^virtio_blk /proc/modules)"'
        grep -q "^R=${DEB#/boot/vmlinuz-} M=1" "$T/out" &&
            md_ok "Debian's kernel runs, /init loaded virtio_blk (--boot $mode, $fw)" ||
            md_fail "Debian's kernel, --boot $mode, $fw: $(grep -a '^R=' "$T/out")"
    done
done
md_done PASS
