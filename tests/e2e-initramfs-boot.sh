#!/bin/sh
# The Linux kernel itself accepts our initramfs in every codec: boot the
# installed Debian kernel in QEMU (TCG) with an initramfs built by
# `mdimg initramfs --busybox`, whose /init prints a marker and powers off.
# Codecs: MD_E2E_CODECS (default "gzip xz zstd lz4"), each one boot.
set -eu

. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
CODECS=${MD_E2E_CODECS:-gzip xz zstd lz4}

md_need_qemu
md_need_busybox
md_need_kernel
CONFIG=/boot/config-${KERNEL#/boot/vmlinuz-}

md_tmpdir e2e-initramfs-boot

# TCG only: KVM is not usable on the CI machines (it hangs there).
ACCEL=${MD_E2E_ACCEL:-tcg}

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
    start=$(date +%s)
    set +e
    timeout 180 "$QEMU" -nodefaults -display none -serial stdio -no-reboot \
        -machine accel=$ACCEL -m 512 -kernel "$KERNEL" -initrd "$T/initrd.$c" \
        -append "console=ttyS0 panic=-1 quiet" </dev/null >"$T/log.$c" 2>&1
    st=$?
    set -e
    secs=$(( $(date +%s) - start ))
    # the marker line proves /init ran from our archive: busybox applets work
    if grep -a -q "^MARKER-$c [0-9]* [0-9]*" "$T/log.$c" &&
       [ "$(grep -a "^MARKER-$c" "$T/log.$c" | head -1 | tr -d '\r' | awk '{print $3}')" -gt 50 ]; then
        md_ok "$c ($(stat -c %s "$T/initrd.$c") bytes) booted in ${secs}s"
    else
        md_fail "$c: no marker (qemu exit $st after ${secs}s); console log:"
        tail -n 30 "$T/log.$c" >&2
    fi
done
md_done
