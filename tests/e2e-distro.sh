#!/bin/sh
# The distro end to end (issue 6 acceptance):
#  - bad input to `mdimg build`: missing kernel, not a bzImage, image too
#    small, missing driver module, existing output -> exit 1, clear message,
#    no image left behind; usage errors -> exit 2;
#  - `mdimg build` + `mdimg boot` (QEMU, TCG) for --root initramfs and
#    --root disk, MBR and GPT, with the small kernel of scripts/build-kernel:
#    the banner, a shell prompt, a command run via --send, a clean poweroff
#    (QEMU exit 0, no panic); for --root disk a file written in boot 1 is
#    read in boot 2, and e2fsck -fn is clean after each boot;
#  - --root disk + MBR with the Debian kernel from /boot: its virtio/ext4
#    drivers are modules (/lib/modules) that /init must load (checked in
#    /proc/modules, with ata_piix added by --add-module);
#  - every image gets an --overlay whose file must be seen in the guest.
# Independent checks: sfdisk -d (table, bootable), blkid (label, type),
# e2fsck -fn, debugfs (file contents written by the guest).
# Env: MD_E2E_DISTRO_MATRIX="initramfs:mbr initramfs:gpt disk:mbr disk:gpt"
#      MD_E2E_DEBIAN=0 to skip the Debian kernel part;
#      MD_E2E_TINY_KERNEL=PATH instead of scripts/build-kernel's kernel.
# Exit 0 pass, 77 skip, other fail.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
SRC=${MD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
MATRIX=${MD_E2E_DISTRO_MATRIX:-initramfs:mbr initramfs:gpt disk:mbr disk:gpt}

T=$(mktemp -d "${TMPDIR:-/tmp}/e2e-distro.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

for tool in sfdisk blkid e2fsck debugfs; do
    command -v $tool >/dev/null 2>&1 || PATH=$PATH:/sbin:/usr/sbin
done

BUSYBOX=
for b in /bin/busybox /usr/bin/busybox; do [ -x "$b" ] && { BUSYBOX=$b; break; }; done
[ -n "$BUSYBOX" ] || md_missing "a static busybox (/bin/busybox or /usr/bin/busybox)" busybox-static

# --- bad input (no QEMU needed) -----------------------------------------------------

# expect_fail NAME EXIT_CODE PATTERN OUTPUT -- ARGS...: exit code, message and no output
expect_fail() {
    name=$1 code=$2 pat=$3 out=$4
    shift 5
    "$MDIMG" build -o "$out" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" != "$code" ]; then
        md_fail "$name: exit $rc, want $code"; cat "$T/err" >&2
    elif ! grep -q -- "$pat" "$T/err"; then
        md_fail "$name: message lacks '$pat':"; cat "$T/err" >&2
    elif [ "$out" != /dev/null ] && [ "$code" = 1 ] && ls -a "$(dirname "$out")" | grep -q "$(basename "$out")"; then
        md_fail "$name: left $(ls -a "$(dirname "$out")" | grep "$(basename "$out")")"
    else
        md_ok "$name: exit $rc: $(head -n 1 "$T/err")"
    fi
}

mkdir -p "$T/bad" "$T/fakemods/9.9-fake"
printf 'not a kernel\n' >"$T/notkernel"
: >"$T/fakemods/9.9-fake/modules.dep"
: >"$T/fakemods/9.9-fake/modules.builtin"

expect_fail "missing kernel" 1 "kernel '$T/nokernel'" "$T/bad/a.img" -- --kernel "$T/nokernel"
expect_fail "not a bzImage" 1 "not an x86 bzImage" "$T/bad/b.img" -- --kernel "$BUSYBOX"
expect_fail "no output" 2 "no output image" /dev/null -- --kernel "$BUSYBOX" -o ""
expect_fail "bad --root" 2 "--root" "$T/bad/c.img" -- --kernel "$BUSYBOX" --root floppy
expect_fail "bad --table" 2 "--table" "$T/bad/c.img" -- --kernel "$BUSYBOX" --table apm
expect_fail "bad --size" 2 "--size" "$T/bad/c.img" -- --kernel "$BUSYBOX" --size lots

# --- kernels -------------------------------------------------------------------------

TINY=${MD_E2E_TINY_KERNEL:-$("$SRC/scripts/build-kernel" --query 2>/dev/null)}
if [ -z "$TINY" ]; then
    echo "note: building the minidistro kernel (cached afterwards; ~10 min on 2 cores)"
    TINY=$("$SRC/scripts/build-kernel" | tail -n 1) || TINY=
fi
[ -n "$TINY" ] && [ -r "$TINY" ] || TINY=
DEB=
if [ "${MD_E2E_DEBIAN:-1}" != 0 ]; then
    for k in /boot/vmlinuz-*; do
        rel=${k#/boot/vmlinuz-}
        [ -r "$k" ] && [ -r "/lib/modules/$rel/modules.dep" ] && DEB=$k
    done
fi
[ -n "$TINY" ] || [ -n "$DEB" ] ||
    md_missing "a kernel (scripts/build-kernel failed, no readable /boot/vmlinuz-* with /lib/modules)" linux-image-cloud-amd64
ANYK=${TINY:-$DEB}

# Bad input that needs a real kernel.
expect_fail "image too small" 1 "too small" "$T/bad/small.img" -- --kernel "$ANYK" --size 3M
expect_fail "unknown module" 1 "driver 'no_such_driver'" "$T/bad/mod.img" -- \
    --kernel "$ANYK" --add-module no-such-driver --modules-dir "$T/fakemods/9.9-fake" --root disk
if [ -n "$DEB" ]; then
    # The Debian kernel has virtio_pci as a module: a modules dir without it fails, naming it.
    expect_fail "missing driver module" 1 "driver 'virtio_pci'" "$T/bad/deb.img" -- \
        --kernel "$DEB" --root disk --modules-dir "$T/fakemods/9.9-fake"
fi
: >"$T/bad/exists.img"
expect_fail "existing output" 1 "exists" /dev/null -- --kernel "$ANYK" -o "$T/bad/exists.img"
[ -s "$T/bad/exists.img" ] && md_fail "existing output was overwritten"

# after the bad-input checks: md_need_qemu fails, not skips, if one of them failed
md_need_qemu

# --- build + boot --------------------------------------------------------------------

# part_offset IMG: byte offset of partition 1, from sfdisk (not our code)
part_offset() {
    s=$(sfdisk -d "$1" 2>/dev/null | sed -n 's/^[^ ]*1 : start= *\([0-9]*\),.*/\1/p' | head -n 1)
    [ -n "$s" ] && echo $((s * 512))
}

check_image() { # IMG TABLE
    img=$1 c_table=$2
    dump=$(sfdisk -d "$img" 2>&1)
    case $c_table in
    mbr) echo "$dump" | grep -q '^label: dos' || { md_fail "$img: sfdisk sees no dos table: $dump"; return 1; }
         echo "$dump" | grep -q 'bootable' || { md_fail "$img: partition 1 not bootable: $dump"; return 1; } ;;
    gpt) echo "$dump" | grep -q '^label: gpt' || { md_fail "$img: sfdisk sees no gpt table: $dump"; return 1; }
         echo "$dump" | grep -q 'LegacyBIOSBootable\|attrs="[^"]*GUID:2' ||
             { md_fail "$img: partition 1 lacks the legacy BIOS bootable attribute: $dump"; return 1; } ;;
    esac
    off=$(part_offset "$img")
    [ -n "$off" ] || { md_fail "$img: no partition 1"; return 1; }
    info=$(blkid -p -O "$off" "$img" 2>&1)
    echo "$info" | grep -q 'LABEL="minidistro"' && echo "$info" | grep -q 'TYPE="ext4"' ||
        { md_fail "$img: blkid at $off: $info"; return 1; }
    fsck_clean "$img" "after build" || return 1
    for f in boot/vmlinuz boot/initramfs.img boot/syslinux/ldlinux.sys bin/busybox init etc/inittab; do
        debugfs -R "stat /$f" "$img?offset=$off" 2>/dev/null | grep -q 'Type: regular' ||
            { md_fail "$img: /$f missing from the root filesystem"; return 1; }
    done
}

fsck_clean() { # IMG WHEN
    f_off=$(part_offset "$1")
    if ! e2fsck -fn "$1?offset=$f_off" >"$T/fsck" 2>&1; then
        md_fail "$1: e2fsck -fn not clean $2:"; cat "$T/fsck" >&2; return 1
    fi
    md_ok "$1: e2fsck -fn clean $2"
}

# boot IMG NAME SEND [EXTRA...]: boots, types SEND; checks banner, prompt, clean exit
boot() {
    b_img=$1 b_name=$2 b_send=$3
    shift 3
    b_start=$(date +%s)
    "$MDIMG" boot "$b_img" --batch --timeout 300 --expect "minidistro: Linux" \
        --send "$b_send" "$@" >"$T/$b_name.log" 2>&1
    b_rc=$?
    b_secs=$(( $(date +%s) - b_start ))
    if [ $b_rc != 0 ]; then
        md_fail "$b_name: mdimg boot exit $b_rc after ${b_secs}s:"; tail -n 30 "$T/$b_name.log" >&2; return 1
    fi
    if grep -q "Kernel panic" "$T/$b_name.log"; then
        md_fail "$b_name: kernel panic"; tail -n 30 "$T/$b_name.log" >&2; return 1
    fi
    grep -q "root@[a-z]*:.*# " "$T/$b_name.log" || { md_fail "$b_name: no shell prompt"; tail -n 30 "$T/$b_name.log" >&2; return 1; }
    grep -q "reboot: Power down" "$T/$b_name.log" || { md_fail "$b_name: no clean power-off"; tail -n 30 "$T/$b_name.log" >&2; return 1; }
    md_ok "$b_name: booted, banner, prompt, ran the command, powered off (QEMU exit 0) in ${b_secs}s"
}

want_line() { # NAME PATTERN: a line of the boot log matches exactly (CRs dropped)
    tr -d '\r' <"$T/$1.log" | grep -qx "$2" || {
        md_fail "$1: no line '$2' in the serial output:"; tail -n 20 "$T/$1.log" >&2; return 1; }
}

run_case() { # KERNEL KNAME ROOT TABLE
    k=$1 kn=$2 root=$3 table=$4
    name=$kn-$root-$table
    mkdir -p "$T/overlay/etc"
    echo "overlay file for $kn" >"$T/overlay/etc/overlay-test"
    img=$T/$name.img
    start=$(date +%s)
    # shellcheck disable=SC2086
    if ! "$MDIMG" build -q -o "$img" --kernel "$k" --root "$root" --table "$table" --size 48M \
        --hostname "h$kn" --overlay "$T/overlay" ${EXTRA_BUILD:-} 2>"$T/$name.build"; then
        md_fail "$name: mdimg build failed:"; cat "$T/$name.build" >&2; return
    fi
    md_ok "$name: built in $(( $(date +%s) - start ))s ($(du -k "$img" | cut -f1) KiB allocated)"
    check_image "$img" "$table" || return
    rel=$(debugfs -R "cat /init" "$img?offset=$(part_offset "$img")" 2>/dev/null | grep -c switch_root)
    [ "$rel" -ge 1 ] || md_fail "$name: /init lacks switch_root"

    token=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
    if [ "$root" = disk ]; then
        boot "$img" "$name-1" "echo RUN-\$((6*7)); grep -c ' / ext4 ' /proc/mounts; cat /etc/overlay-test; echo MODS \$(cut -d' ' -f1 /proc/modules | sort | tr '\n' ' '); echo $token > /root/persist; sync; poweroff" || return
        want_line "$name-1" "RUN-42" || return
        want_line "$name-1" "overlay file for $kn" || return
        if [ -n "${WANT_MODS:-}" ]; then
            mods=$(tr -d '\r' <"$T/$name-1.log" | sed -n 's/^MODS //p')
            for m in $WANT_MODS; do
                case " $mods " in *" $m "*) ;; *) md_fail "$name: module $m not loaded (loaded: $mods)"; return ;; esac
            done
            md_ok "$name: /init loaded the modules: $mods"
        fi
        want_line "$name-1" "minidistro: root is /dev/[a-z0-9]* (LABEL=minidistro)" || return
        want_line "$name-1" "1" || return
        fsck_clean "$img" "after boot 1" || return
        got=$(debugfs -R "cat /root/persist" "$img?offset=$(part_offset "$img")" 2>/dev/null)
        [ "$got" = "$token" ] || { md_fail "$name: debugfs reads '$got' from /root/persist, want $token"; return; }
        md_ok "$name: the file written in boot 1 is in the image (debugfs)"
        boot "$img" "$name-2" "echo READ-\$(cat /root/persist)-END; poweroff" || return
        want_line "$name-2" "READ-$token-END" || return
        md_ok "$name: boot 2 reads the file written in boot 1"
        fsck_clean "$img" "after boot 2" || return
    else
        boot "$img" "$name" "echo RUN-\$((6*7)); uname -n; cat /etc/overlay-test; poweroff" || return
        want_line "$name" "RUN-42" || return
        want_line "$name" "overlay file for $kn" || return
        want_line "$name" "minidistro: root is the initramfs" || return
        want_line "$name" "h$kn" || return
    fi
}

if [ -n "$TINY" ]; then
    for c in $MATRIX; do
        run_case "$TINY" tiny "${c%%:*}" "${c##*:}"
    done
else
    md_missing_part "the minidistro kernel (scripts/build-kernel failed)" || true
fi
if [ -n "$DEB" ]; then
    # virtio_blk and virtio_pci are needed for the root disk; ata_piix asked for
    EXTRA_BUILD="--add-module ata_piix" WANT_MODS="virtio_blk virtio_pci ata_piix" \
        run_case "$DEB" debian disk mbr
elif [ "${MD_E2E_DEBIAN:-1}" = 0 ]; then
    echo "note: MD_E2E_DEBIAN=0: the Debian kernel part is skipped"
else
    md_missing_part "a readable /boot/vmlinuz-* with /lib/modules" linux-image-cloud-amd64 || true
fi

md_done "all distro checks passed"
