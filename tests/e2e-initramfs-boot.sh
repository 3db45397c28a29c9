#!/bin/sh
# The Linux kernel itself accepts our initramfs in every codec: boot the
# installed Debian kernel in QEMU (TCG) with an initramfs built by
# `mdimg initramfs --busybox`, whose /init prints a marker and powers off.
# Codecs: MD_E2E_CODECS (default "gzip xz zstd lz4"), each two boots: a
# small BusyBox initramfs, and a >= 40 MB one made with --threads 2 (a
# 56 MiB file of seeded pseudo-random 6-bit symbols: compressible only by
# entropy coding), so that it has many gzip chunks, several xz blocks, zstd
# jobs and lz4 blocks; its /init checks the file's md5sum.  Before that
# boot the structure is checked: xz one stream of several blocks with
# CRC32, zstd one frame with a checksum, gzip one member, lz4 legacy blocks.
set -eu

. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
CODECS=${MD_E2E_CODECS:-gzip xz zstd lz4}

md_need_qemu
md_need_busybox
md_need_kernel
md_need_tool python3
CONFIG=/boot/config-${KERNEL#/boot/vmlinuz-}

md_tmpdir e2e-initramfs-boot

# TCG only: KVM is not usable on the CI machines (it hangs there).
ACCEL=${MD_E2E_ACCEL:-tcg}

mkdir "$T/big"
python3 -c '
import random, sys
table = bytes(0x30 + (i & 63) for i in range(256))
with open(sys.argv[1], "wb") as f:
    f.write(random.Random(13).randbytes(56 << 20).translate(table))
' "$T/big/data.bin"
BIGSUM=$(md5sum < "$T/big/data.bin" | cut -d' ' -f1)

# boot NAME INITRD: boot it, console log in $T/log.NAME; sets BOOT_ST, BOOT_SECS.
boot() {
    _start=$(date +%s)
    set +e
    timeout 300 "$QEMU" -nodefaults -display none -serial stdio -no-reboot \
        -machine accel=$ACCEL -m 512 -kernel "$KERNEL" -initrd "$2" \
        -append "console=ttyS0 panic=-1 quiet" </dev/null >"$T/log.$1" 2>&1
    BOOT_ST=$?
    set -e
    BOOT_SECS=$(( $(date +%s) - _start ))
}

# check_structure CODEC FILE: what the multi-threaded compressor wrote.
check_structure() {
    case $1 in
    gzip)
        # one member: zlib's decoder ends exactly at the end of the file
        if python3 -c '
import sys, zlib
d = zlib.decompressobj(31)
d.decompress(open(sys.argv[1], "rb").read())
sys.exit(0 if d.eof and not d.unused_data else 1)
' "$2"; then
            md_ok "gzip: one member"
        else
            md_fail "gzip: not one gzip member"
        fi
        gzip -t "$2" || md_fail "gzip -t $2"
        ;;
    xz)
        if md_want_tool xz; then
            xz -t "$2" || md_fail "xz -t $2"
            # totals  streams blocks compressed uncompressed ratio check padding
            _tot=$(xz --robot --list "$2" | awk '$1 == "totals" { print $2, $3, $7 }')
            case $_tot in
            "1 "[3-9]" CRC32" | "1 "[1-9][0-9]*" CRC32") md_ok "xz: streams, blocks, check: $_tot" ;;
            *) md_fail "xz: want 1 stream of >= 3 blocks with CRC32, got: $_tot" ;;
            esac
        fi
        ;;
    zstd)
        if md_want_tool zstd; then
            zstd -qt "$2" || md_fail "zstd -t $2"
            zstd -lv "$2" > "$T/zstd-list" 2>&1 || true
            if grep -q "Zstandard Frames: 1$" "$T/zstd-list" && grep -q "Check: XXH64" "$T/zstd-list"; then
                md_ok "zstd: one frame with XXH64, $(grep "Window Size" "$T/zstd-list" | tr -s ' ')"
            else
                md_fail "zstd -lv:"
                cat "$T/zstd-list" >&2
            fi
        fi
        ;;
    lz4)
        if md_want_tool lz4; then
            lz4 -qt "$2" || md_fail "lz4 -t $2"
        fi
        _n=$(python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read()
off, n = 4, 0
while d[:4] == b"\x02\x21\x4c\x18" and off < len(d):
    off += 4 + struct.unpack_from("<I", d, off)[0]
    n += 1
print(n if off == len(d) else -1)
' "$2")
        if [ "$_n" -ge 7 ]; then
            md_ok "lz4: legacy frame of $_n blocks"
        else
            md_fail "lz4: $_n legacy blocks"
        fi
        ;;
    esac
}

for c in $CODECS; do
    sym=$(echo "CONFIG_RD_$c" | tr a-z A-Z)
    if [ -r "$CONFIG" ] && ! grep -q "^$sym=y" "$CONFIG"; then
        echo "note: $KERNEL lacks $sym: skipping $c"
        continue
    fi
    cat > "$T/init" <<EOF
#!/bin/sh
/bin/busybox mount -t proc proc /proc
echo "MARKER-$c \$(cat /proc/cmdline | wc -c) \$(ls /bin | wc -l)"
/bin/busybox poweroff -f
EOF
    "$MDIMG" initramfs -q -o "$T/initrd.$c" -c "$c" --busybox "$BUSYBOX" --init "$T/init"
    boot "$c" "$T/initrd.$c"
    # the marker line proves /init ran from our archive: busybox applets work
    if grep -a -q "^MARKER-$c [0-9]* [0-9]*" "$T/log.$c" &&
       [ "$(grep -a "^MARKER-$c" "$T/log.$c" | head -1 | tr -d '\r' | awk '{print $3}')" -gt 50 ]; then
        md_ok "$c ($(stat -c %s "$T/initrd.$c") bytes) booted in ${BOOT_SECS}s"
    else
        md_fail "$c: no marker (qemu exit $BOOT_ST after ${BOOT_SECS}s); console log:"
        tail -n 30 "$T/log.$c" >&2
    fi

    # the large one, compressed on 2 threads
    cat > "$T/init.big" <<EOF
#!/bin/sh
/bin/busybox mount -t proc proc /proc
echo "BIGMARKER-$c \$(/bin/busybox md5sum /data.bin)"
/bin/busybox poweroff -f
EOF
    "$MDIMG" initramfs -q -o "$T/big.$c" -c "$c" --threads 2 --busybox "$BUSYBOX" \
        --init "$T/init.big" "$T/big"
    size=$(stat -c %s "$T/big.$c")
    [ "$size" -ge 40000000 ] || md_fail "$c: the large initramfs has only $size bytes"
    check_structure "$c" "$T/big.$c"
    boot "big.$c" "$T/big.$c"
    got=$(grep -a "^BIGMARKER-$c " "$T/log.big.$c" | head -1 | tr -d '\r' | awk '{print $2}')
    if [ "$got" = "$BIGSUM" ]; then
        md_ok "$c, $size bytes, --threads 2: booted in ${BOOT_SECS}s, /data.bin intact"
    else
        md_fail "$c, $size bytes, --threads 2: md5sum '${got:-no marker}', want $BIGSUM (qemu exit $BOOT_ST after ${BOOT_SECS}s); console log:"
        tail -n 30 "$T/log.big.$c" >&2
    fi
    rm -f "$T/big.$c"
done
md_done
