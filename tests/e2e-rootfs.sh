#!/bin/sh
# A real distribution: a Debian bookworm minbase tarball made by mmdebstrap
# (scripts/make-rootfs, cached by week; scripts/test makes it as root before
# the unprivileged run) becomes a bootable image with `mdimg build --rootfs`
# as whoever runs the test (nobody in CI), --boot hybrid: boots under
# SeaBIOS -> EXTLINUX -> Debian's kernel and initramfs-tools -> systemd, and
# is logged in to on ttyS0 with the password set at build time:
#   systemctl is-system-running   running (or degraded)
#   getcap /usr/bin/ping          the file capability from the tarball
#   stat -c %a /                  755
# then powered off; then the same image under OVMF -> the UKI on the ESP
# (Debian's kernel, its initrd, root=UUID=...): login, running, power-off;
# e2fsck -fn is clean afterwards.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:?MDIMG not set}
md_need_qemu
md_need_tool e2fsck e2fsprogs
md_need_tool sfdisk fdisk
md_need_file /usr/share/OVMF/OVMF_CODE_4M.fd ovmf
SRC=${MD_SRCDIR:-$(dirname "$0")/..}

TAR=$("$SRC/scripts/make-rootfs" --query 2>/dev/null) || TAR=
if [ -z "$TAR" ]; then
    # make it when we can (root, or user namespaces); a mirror that cannot be
    # reached is the one acceptable reason to skip
    rc=0
    TAR=$("$SRC/scripts/make-rootfs" 2>"${TMPDIR:-/tmp}/make-rootfs.$$.err") || rc=$?
    if [ $rc = 3 ]; then
        rm -f "${TMPDIR:-/tmp}/make-rootfs.$$.err"
        md_skip_env "the Debian mirror cannot be reached: no rootfs tarball"
    fi
    if [ $rc != 0 ]; then
        cat "${TMPDIR:-/tmp}/make-rootfs.$$.err" >&2
        rm -f "${TMPDIR:-/tmp}/make-rootfs.$$.err"
        md_missing "a Debian rootfs tarball (scripts/make-rootfs failed)" mmdebstrap
    fi
    rm -f "${TMPDIR:-/tmp}/make-rootfs.$$.err"
fi
md_ok "rootfs tarball: $TAR ($(du -h "$TAR" | cut -f1))"

md_tmpdir e2e-rootfs
IMG=$T/debian.img
start=$(date +%s)
"$MDIMG" build -o "$IMG" --rootfs "$TAR" --boot hybrid --root-password 'e2e pass' --hostname e2e-debian \
    >"$T/build.txt" 2>&1 ||
    { cat "$T/build.txt" >&2; md_die "mdimg build --rootfs"; }
md_ok "built in $(( $(date +%s) - start )) s: $(head -n 1 "$T/build.txt")"

start=$(date +%s)
"$MDIMG" boot "$IMG" --memory 1024 --timeout 900 \
    --expect "e2e-debian login:" --send root --expect "Password:" --prompt "" --send 'e2e pass' \
    --expect "root@e2e-debian:~# " \
    --send "echo R=\$(systemctl is-system-running) C=\$(getcap /usr/bin/ping | tr ' ' _) M=\$(stat -c %a /) E=end" \
    --expect " E=end" --expect "root@e2e-debian:~# " --send "poweroff" --wait >"$T/serial.txt" 2>&1 ||
    { tail -n 40 "$T/serial.txt" >&2; md_die "boot, login or poweroff failed"; }
md_ok "booted, logged in and powered off in $(( $(date +%s) - start )) s"
# the output line (not the echo of the command), terminal sequences aside
line=$(tr -d '\r' <"$T/serial.txt" | sed -n 's/.*\(R=[a-z]* C=[^ ]* M=[0-9]* E=end\).*/\1 /p' | tail -n 1)
case $line in
*"R=running "*|*"R=degraded "*) md_ok "systemctl is-system-running: ${line%% C=*}" ;;
*) md_fail "system state: $line" ;;
esac
case $line in
*"C=/usr/bin/ping_cap_net_raw=ep "*) md_ok "getcap /usr/bin/ping: the capability survived" ;;
*) md_fail "getcap: $line" ;;
esac
case $line in
*" M=755 "*) md_ok "stat -c %a / = 755" ;;
*) md_fail "mode of /: $line" ;;
esac

start=$(date +%s)
"$MDIMG" boot --firmware uefi "$IMG" --memory 1024 --timeout 900 \
    --expect "e2e-debian login:" --send root --expect "Password:" --prompt "" --send 'e2e pass' \
    --expect "root@e2e-debian:~# " \
    --send "echo R=\$(systemctl is-system-running) F=\$(test -d /sys/firmware/efi && echo uefi) E=end" \
    --expect " E=end" --expect "root@e2e-debian:~# " --send "poweroff" --wait >"$T/serial-uefi.txt" 2>&1 ||
    { tail -n 40 "$T/serial-uefi.txt" >&2; md_die "UEFI boot, login or poweroff failed"; }
line=$(tr -d '\r' <"$T/serial-uefi.txt" | sed -n 's/.*\(R=[a-z]* F=[a-z]* E=end\).*/\1/p' | tail -n 1)
case $line in
"R=running F=uefi E=end" | "R=degraded F=uefi E=end")
    md_ok "UEFI (OVMF -> the UKI): logged in, $line, powered off in $(( $(date +%s) - start )) s" ;;
*) md_fail "UEFI boot: $line" ;;
esac

# the root filesystem is partition 2, after the ESP
off=$(sfdisk -d "$IMG" | sed -n 's/^[^ ]*2 : start= *\([0-9]*\),.*/\1/p')
e2fsck -fn "$IMG?offset=$((off * 512))" >"$T/fsck.txt" 2>&1 || { cat "$T/fsck.txt" >&2; md_fail "e2fsck -fn after the boots"; }
md_done "PASS: a Debian minbase rootfs, built as $(id -un), boots to a root login"
