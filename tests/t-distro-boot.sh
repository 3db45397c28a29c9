#!/bin/sh
# `mdimg build --boot uefi|hybrid` without booting (the boots are in
# e2e-uefi-distro): the layout, the ESP, the UKI, reproducibility and bad
# input.  The kernel is Debian's (/boot/vmlinuz-*: it has the EFI stub).
#   - uefi: GPT, partition 1 the ESP (type C12A7328-..., FAT16 labelled ESP,
#     fsck.fat -n clean), partition 2 the ext4 root (not BIOS-bootable); mdir
#     lists \EFI\BOOT\BOOTX64.EFI; the file copied out with mcopy has
#     objdump's .osrel, .cmdline, .initrd, .linux sections, the .cmdline the
#     command line with root=LABEL=minidistro, sbverify --list parses it;
#   - hybrid: the same plus the legacy-BIOS-bootable attribute on the root,
#     EXTLINUX's files in its /boot/syslinux (debugfs) and gptmbr.bin's code in the MBR;
#   - uefi on MBR: partition 1 type 0xef;
#   - same inputs and SOURCE_DATE_EPOCH -> the same image bytes under other
#     TZ, umask and cwd, for uefi and hybrid;
#   - bad input: a missing stub (names systemd-boot-efi), an ESP too small
#     for the UKI (says the size it needs), a kernel without the EFI stub,
#     bad option values -> exit 1 (2 for usage), a message, no output.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
for t in sfdisk blkid fsck.fat mdir mcopy objdump objcopy sbverify debugfs e2fsck cmp; do
    md_need_tool "$t"
done
md_need_busybox
md_need_kernel
md_need_file /usr/lib/systemd/boot/efi/linuxx64.efi.stub systemd-boot-efi
md_need_file /usr/lib/syslinux/mbr/gptmbr.bin syslinux-common
md_tmpdir t-distro-boot
export MTOOLS_SKIP_CHECK=1
SOURCE_DATE_EPOCH=1700000000
export SOURCE_DATE_EPOCH

# build NAME ARGS...: mdimg build -o $T/NAME.img with the Debian kernel
build() {
    n=$1
    shift
    "$MDIMG" -q build -o "$T/$n.img" --kernel "$KERNEL" --busybox "$BUSYBOX" "$@" >"$T/$n.out" 2>&1 ||
        { cat "$T/$n.out" >&2; md_die "mdimg build $*"; }
}

# part_field IMG N FIELD: a field of partition N in sfdisk -d (start, size, type, attrs)
part_field() {
    sfdisk -d "$1" | sed -n "s/^[^ ]*$2 : //p" | tr ',' '\n' | sed -n "s/^ *$3= *//p"
}

# esp_check NAME IMG: the ESP of IMG (partition 1) and the UKI on it
esp_check() {
    start=$(part_field "$2" 1 start) size=$(part_field "$2" 1 size)
    dd if="$2" of="$T/esp.img" bs=512 skip="$start" count="$size" status=none
    if fsck.fat -n "$T/esp.img" >"$T/fsck.txt" 2>&1 && ! grep -qi warning "$T/fsck.txt"; then
        md_ok "$1: fsck.fat -n: $(tail -n 1 "$T/fsck.txt")"
    else
        md_fail "$1: fsck.fat -n"; cat "$T/fsck.txt" >&2
    fi
    case $(blkid -p -o export "$T/esp.img" | tr '\n' ' ') in
    *"LABEL=ESP "*"TYPE=vfat "*"VERSION=FAT16 "* | *"VERSION=FAT16 "*"LABEL=ESP "*"TYPE=vfat "* | \
        *"LABEL=ESP "*"VERSION=FAT16 "*"TYPE=vfat "*)
        md_ok "$1: the ESP is FAT16 labelled ESP (blkid)" ;;
    *) md_fail "$1: blkid of the ESP: $(blkid -p -o export "$T/esp.img" | tr '\n' ' ')" ;;
    esac
    mdir -b -i "$T/esp.img" ::/EFI/BOOT >"$T/mdir.txt" 2>&1
    if [ "$(cat "$T/mdir.txt")" = "::/EFI/BOOT/BOOTX64.EFI" ]; then
        md_ok "$1: mdir: \\EFI\\BOOT\\BOOTX64.EFI is the ESP's boot file"
    else
        md_fail "$1: mdir ::/EFI/BOOT: $(cat "$T/mdir.txt")"
    fi
    rm -f "$T/uki.efi"
    mcopy -i "$T/esp.img" ::/EFI/BOOT/BOOTX64.EFI "$T/uki.efi" || md_fail "$1: mcopy the UKI out"
    secs=$(objdump -h "$T/uki.efi" | awk '$2 ~ /^\./ { printf "%s ", $2 }')
    case $secs in
    *".osrel .cmdline .initrd .linux "*) md_ok "$1: the UKI's sections: $secs" ;;
    *) md_fail "$1: objdump -h sections: $secs" ;;
    esac
    sbverify --list "$T/uki.efi" >"$T/sbv.txt" 2>&1 || { md_fail "$1: sbverify --list"; cat "$T/sbv.txt" >&2; }
    cmdline=$(objcopy -O binary --only-section=.cmdline "$T/uki.efi" "$T/cmdline.bin" 2>/dev/null && cat "$T/cmdline.bin")
    case $cmdline in
    "console=ttyS0 panic=-1 quiet root=LABEL=minidistro"*) md_ok "$1: .cmdline '$cmdline'" ;;
    *) md_fail "$1: .cmdline '$cmdline'" ;;
    esac
}

# --- uefi ---------------------------------------------------------------------------
build uefi --boot uefi --root disk
[ "$(sfdisk -d "$T/uefi.img" | sed -n 's/^label: //p')" = gpt ] && md_ok "uefi: a GPT by default" ||
    md_fail "uefi: table $(sfdisk -d "$T/uefi.img" | sed -n 's/^label: //p')"
[ "$(part_field "$T/uefi.img" 1 type)" = C12A7328-F81F-11D2-BA4B-00A0C93EC93B ] &&
    md_ok "uefi: partition 1 is an EFI System partition" ||
    md_fail "uefi: partition 1 type $(part_field "$T/uefi.img" 1 type)"
[ "$(part_field "$T/uefi.img" 2 type)" = 0FC63DAF-8483-4772-8E79-3D69D8477DE4 ] &&
    [ -z "$(part_field "$T/uefi.img" 2 attrs)" ] &&
    md_ok "uefi: partition 2 is Linux, not BIOS-bootable" ||
    md_fail "uefi: partition 2: $(sfdisk -d "$T/uefi.img" | grep 'img2 :')"
esp_check uefi "$T/uefi.img"
off=$(($(part_field "$T/uefi.img" 2 start) * 512))
e2fsck -fn "$T/uefi.img?offset=$off" >"$T/e2fsck.txt" 2>&1 && md_ok "uefi: the root filesystem is e2fsck-clean" ||
    { md_fail "uefi: e2fsck -fn"; cat "$T/e2fsck.txt" >&2; }
debugfs -R "ls -p /boot/syslinux" "$T/uefi.img?offset=$off" 2>/dev/null | grep -q '/ldlinux.sys/' &&
    md_fail "uefi: EXTLINUX installed although the image does not boot by BIOS" ||
    md_ok "uefi: no EXTLINUX on the root filesystem"

# --- hybrid -------------------------------------------------------------------------
build hybrid --boot hybrid --root disk
[ "$(part_field "$T/hybrid.img" 2 attrs)" = '"LegacyBIOSBootable"' ] &&
    md_ok "hybrid: partition 2 has the legacy-BIOS-bootable attribute" ||
    md_fail "hybrid: partition 2 attrs '$(part_field "$T/hybrid.img" 2 attrs)'"
esp_check hybrid "$T/hybrid.img"
off=$(($(part_field "$T/hybrid.img" 2 start) * 512))
ls=$(debugfs -R "ls -p /boot/syslinux" "$T/hybrid.img?offset=$off" 2>/dev/null)
case $ls in
*/ldlinux.sys/*/extlinux.conf/* | */extlinux.conf/*/ldlinux.sys/*) md_ok "hybrid: EXTLINUX in the root's /boot/syslinux" ;;
*) md_fail "hybrid: /boot holds: $ls" ;;
esac
# gptmbr.bin: its code reads the GPT and boots the legacy-BIOS-bootable partition
head -c 440 "$T/hybrid.img" | cmp -s - /usr/lib/syslinux/mbr/gptmbr.bin &&
    md_ok "hybrid: the protective MBR carries gptmbr.bin" ||
    md_fail "hybrid: the MBR's code is not gptmbr.bin"

# --- uefi on an MBR -----------------------------------------------------------------
build uefi-mbr --boot uefi --table mbr
[ "$(part_field "$T/uefi-mbr.img" 1 type)" = ef ] && md_ok "uefi on MBR: partition 1 has type 0xef" ||
    md_fail "uefi on MBR: partition 1 type $(part_field "$T/uefi-mbr.img" 1 type)"

# --- reproducible ---------------------------------------------------------------------
mkdir "$T/elsewhere"
for m in uefi hybrid; do
    # the hybrid one also without the final flush: --no-sync changes no byte
    extra=
    [ "$m" = hybrid ] && extra=--no-sync
    (cd "$T/elsewhere" && umask 077 && TZ=Asia/Tokyo "$MDIMG" -q build -o "$T/$m-2.img" --kernel "$KERNEL" \
        --busybox "$BUSYBOX" --boot "$m" --root disk $extra) || md_die "second $m build"
    if cmp -s "$T/$m.img" "$T/$m-2.img"; then
        md_ok "$m: the same bytes under TZ=Asia/Tokyo, umask 077, another cwd${extra:+, $extra} ($(sha256sum <"$T/$m.img" | cut -c1-16))"
    else
        md_fail "$m: two builds differ: $(cmp "$T/$m.img" "$T/$m-2.img" | head -n 1)"
    fi
    rm -f "$T/$m-2.img"
done

# --- bad input --------------------------------------------------------------------------
# bad NAME STATUS PATTERN ARGS...: exit STATUS, PATTERN in the message, nothing left
bad() {
    n=$1 want=$2 pat=$3
    shift 3
    rm -rf "$T/out"
    mkdir "$T/out"
    "$MDIMG" build -o "$T/out/x.img" --kernel "$KERNEL" --busybox "$BUSYBOX" "$@" >"$T/bad.out" 2>&1
    st=$?
    if [ "$st" != "$want" ]; then
        md_fail "$n: exit $st, want $want: $(head -n 2 "$T/bad.out")"
    elif ! grep -q -- "$pat" "$T/bad.out"; then
        md_fail "$n: the message lacks '$pat': $(head -n 2 "$T/bad.out")"
    elif [ -n "$(ls -A "$T/out")" ]; then
        md_fail "$n: left $(ls -A "$T/out")"
    else
        md_ok "$n: exit $st: $(head -n 1 "$T/bad.out")"
    fi
}
bad "a missing stub" 1 "install systemd-boot-efi" --boot uefi --efi-stub "$T/no-such.stub"
bad "an ESP too small" 1 "too small for the unified kernel image.*needs [0-9]* MiB" --boot hybrid --esp-size 1M
cp "$KERNEL" "$T/nostub"
printf '\0\0' | dd of="$T/nostub" bs=1 count=2 conv=notrunc status=none
"$MDIMG" build -o "$T/out/x.img" --kernel "$T/nostub" --busybox "$BUSYBOX" --boot uefi >"$T/bad.out" 2>&1
st=$?
if [ $st = 1 ] && grep -q "without the EFI stub" "$T/bad.out" && [ ! -e "$T/out/x.img" ]; then
    md_ok "a kernel without the EFI stub: exit 1: $(head -n 1 "$T/bad.out")"
else
    md_fail "a kernel without the EFI stub: exit $st: $(head -n 2 "$T/bad.out")"
fi
bad "--boot with a bad value" 2 "is not 'bios', 'uefi' or 'hybrid'" --boot efi
bad "--efi-stub without UEFI" 2 "are for --boot uefi or hybrid" --efi-stub /x
bad "--esp-size not in MiB" 2 "multiple of 1 MiB" --boot uefi --esp-size 1000K
md_done "PASS"
