#!/bin/sh
# The examples work for an outside user:
#  - examples/minidistro.c compiles against the INSTALLED library
#    (meson install --destdir + pkg-config with PKG_CONFIG_SYSROOT_DIR) and
#    builds a bootable image;
#  - examples/minidistro.py (the minidistro Python package, ctypes over the C
#    ABI) builds one against the built libminidistro.so.0;
#  both images are checked with sfdisk, blkid and debugfs; both programs
#  report a bad kernel clearly with exit 1 and leave no image;
#  - with the same inputs and SOURCE_DATE_EPOCH, `mdimg build`, the C example
#    and the Python example write byte-identical images (cmp), for a disk
#    root on GPT and an initramfs root on MBR.
# With MD_EXAMPLES_BOOT=1 the Python example also boots its image in QEMU.
# Exit 0 pass, 77 skip, other fail.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
SRC=${MD_SRCDIR:?}
BUILD=${MD_BUILDDIR:?}
LIBDIR=${MD_LIBDIR:-$BUILD/lib}
PATH=$PATH:/sbin:/usr/sbin

T=$(mktemp -d "${TMPDIR:-/tmp}/t-examples.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

KERNEL=$("$SRC/scripts/build-kernel" --query 2>/dev/null)
if [ -z "$KERNEL" ]; then
    for k in /boot/vmlinuz-*; do [ -r "$k" ] && KERNEL=$k; done
fi
[ -n "$KERNEL" ] ||
    md_missing "a kernel (scripts/build-kernel not run, no readable /boot/vmlinuz-*)" linux-image-cloud-amd64
[ -x /bin/busybox ] || md_missing /bin/busybox busybox-static
BUSYBOX=/bin/busybox  # the C example's (md_distro_build's) default
printf 'garbage\n' >"$T/notakernel"

check_image() { # IMG TABLE
    d=$(sfdisk -d "$1" 2>&1)
    echo "$d" | grep -q "^label: $2" || { md_fail "$1: sfdisk: want label $2: $d"; return 1; }
    start=$(echo "$d" | sed -n 's/^[^ ]*1 : start= *\([0-9]*\),.*/\1/p')
    [ -n "$start" ] || { md_fail "$1: no partition 1"; return 1; }
    off=$((start * 512))
    blkid -p -O "$off" "$1" | grep -q 'LABEL="minidistro".*TYPE="ext4"\|TYPE="ext4".*LABEL="minidistro"' ||
        { md_fail "$1: blkid: $(blkid -p -O "$off" "$1" 2>&1)"; return 1; }
    cfg=$(debugfs -R "cat /boot/syslinux/extlinux.conf" "$1?offset=$off" 2>/dev/null)
    echo "$cfg" | grep -q "LINUX /boot/vmlinuz" || { md_fail "$1: extlinux.conf: $cfg"; return 1; }
    md_ok "$1: $2 table, ext4 'minidistro', extlinux.conf boots /boot/vmlinuz"
}

# --- C example against the installed library -------------------------------------------
dest=$T/root
if meson install -C "$BUILD" --destdir "$dest" --no-rebuild >"$T/install.log" 2>&1; then
    pc=$(find "$dest" -name libminidistro.pc | head -n 1)
    [ -n "$pc" ] || md_fail "no libminidistro.pc installed"
    if [ -n "$pc" ]; then
        pcdir=$(dirname "$pc")
        flags=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$dest pkg-config --cflags --libs libminidistro)
        libpath=$(dirname "$(find "$dest" -name 'libminidistro.so.0' | head -n 1)")
        # shellcheck disable=SC2086
        if cc -std=c99 -Wall -Wextra -Werror -o "$T/minidistro" "$SRC/examples/minidistro.c" $flags 2>"$T/cc.log"; then
            md_ok "examples/minidistro.c compiles with: pkg-config --cflags --libs libminidistro"
            # make sure it runs against the installed copy, not the build tree
            if LD_LIBRARY_PATH=$libpath ldd "$T/minidistro" | grep -q "$dest"; then
                md_ok "the C example links the installed libminidistro.so.0"
            else
                md_fail "the C example does not resolve to the installed library: $(LD_LIBRARY_PATH=$libpath ldd "$T/minidistro" | grep minidistro)"
            fi
            if LD_LIBRARY_PATH=$libpath "$T/minidistro" "$T/c.img" "$KERNEL" disk gpt >"$T/c.out" 2>&1; then
                grep -q "built $T/c.img" "$T/c.out" || md_fail "C example output: $(cat "$T/c.out")"
                check_image "$T/c.img" gpt
            else
                md_fail "C example failed: $(cat "$T/c.out")"
            fi
            LD_LIBRARY_PATH=$libpath "$T/minidistro" "$T/cbad.img" "$T/notakernel" >"$T/cbad.out" 2>&1
            rc=$?
            if [ $rc = 1 ] && grep -q "not an x86 bzImage" "$T/cbad.out" && [ ! -e "$T/cbad.img" ]; then
                md_ok "C example: bad kernel -> exit 1, '$(tail -n 1 "$T/cbad.out")'"
            else
                md_fail "C example with a bad kernel: exit $rc: $(cat "$T/cbad.out")"
            fi
        else
            md_fail "examples/minidistro.c does not compile against the installed library ($flags): $(cat "$T/cc.log")"
        fi
    fi
else
    md_fail "meson install: $(tail -n 20 "$T/install.log")"
fi

# --- Python example over the minidistro package -----------------------------------------
if md_want_tool python3; then
    export PYTHONDONTWRITEBYTECODE=1
    py="env LIBMINIDISTRO=$LIBDIR/libminidistro.so.0 python3 $SRC/examples/minidistro.py"
    boot=
    [ "${MD_EXAMPLES_BOOT:-0}" = 1 ] && command -v qemu-system-x86_64 >/dev/null && boot=--boot
    # shellcheck disable=SC2086
    if $py $boot -o "$T/py.img" --kernel "$KERNEL" --root initramfs --table mbr >"$T/py.out" 2>&1; then
        grep -q "built $T/py.img in 6 steps" "$T/py.out" || md_fail "python example output: $(cat "$T/py.out")"
        check_image "$T/py.img" dos
        [ -z "$boot" ] || grep -q "hello from python on minidistro" "$T/py.out" ||
            md_fail "python example boot: $(tail -n 20 "$T/py.out")"
    else
        md_fail "python example failed: $(cat "$T/py.out")"
    fi
    # shellcheck disable=SC2086
    $py -o "$T/pybad.img" --kernel "$T/notakernel" >"$T/pybad.out" 2>&1
    rc=$?
    if [ $rc = 1 ] && grep -q "not an x86 bzImage" "$T/pybad.out" && [ ! -e "$T/pybad.img" ]; then
        md_ok "python example: bad kernel -> exit 1, '$(cat "$T/pybad.out")'"
    else
        md_fail "python example with a bad kernel: exit $rc: $(cat "$T/pybad.out")"
    fi
    # shellcheck disable=SC2086
    $py -o "$T/pyusage.img" >"$T/pyusage.out" 2>&1
    rc=$?
    [ $rc = 2 ] && grep -q "required: --kernel" "$T/pyusage.out" ||
        md_fail "python example without --kernel: exit $rc (want 2): $(cat "$T/pyusage.out")"

    # --- the same image three ways ---------------------------------------------------------
    if [ -x "$T/minidistro" ]; then
        for variant in "disk gpt" "initramfs mbr"; do
            set -- $variant
            rm -f "$T"/three-*.img
            (
                export SOURCE_DATE_EPOCH=1700000000
                "$MDIMG" build -q -o "$T/three-mdimg.img" --kernel "$KERNEL" --busybox "$BUSYBOX" \
                    --root "$1" --table "$2" &&
                    LD_LIBRARY_PATH=$libpath "$T/minidistro" "$T/three-c.img" "$KERNEL" "$1" "$2" &&
                    $py -o "$T/three-py.img" --kernel "$KERNEL" --busybox "$BUSYBOX" --root "$1" \
                        --table "$2"
            ) >"$T/three.out" 2>&1 || { md_fail "three-way build ($variant): $(cat "$T/three.out")"; continue; }
            size=$(stat -c %s "$T/three-mdimg.img")
            [ "$size" = $((64 << 20)) ] || md_fail "three-way ($variant): mdimg build made $size bytes, want 64 MiB"
            if cmp "$T/three-mdimg.img" "$T/three-c.img" >&2 && cmp "$T/three-mdimg.img" "$T/three-py.img" >&2; then
                md_ok "mdimg build, examples/minidistro and examples/minidistro.py ($variant): the same $size bytes ($(sha256sum <"$T/three-py.img" | cut -c1-16))"
            else
                md_fail "three-way ($variant): the images differ (cmp above)"
            fi
        done
    else
        md_fail "three-way comparison: the C example was not built (see above)"
    fi
fi
md_done "examples ok"
