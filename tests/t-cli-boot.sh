#!/bin/sh
# mdimg boot: bad input is refused before QEMU runs, with a message naming
# the problem (exit 1), usage errors exit 2.  No guest is booted here; see
# e2e-boot.sh for real boots.
set -u

MDIMG=${MDIMG:?MDIMG not set}
T=$(mktemp -d /tmp/t-cli-boot.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0

# run EXPECTED_STATUS EXPECTED_STDERR_SUBSTRING -- ARGS...
run() {
    want=$1; msg=$2; shift 3
    "$@" >"$T/out" 2>"$T/err" </dev/null
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: $* -> exit $got, want $want"; cat "$T/err"; fail=1; return
    fi
    if ! grep -qF -- "$msg" "$T/err"; then
        echo "FAIL: $* -> stderr lacks '$msg':"; cat "$T/err"; fail=1; return
    fi
    echo "ok: $* -> $got: $(head -n1 "$T/err")"
}

# a minimal "bzImage": only the header magic matters to the check
head -c 1024 /dev/zero > "$T/bzImage"
printf 'HdrS' | dd of="$T/bzImage" bs=1 seek=514 conv=notrunc 2>/dev/null
echo "I am not a kernel" > "$T/vmlinuz.txt"
truncate -s 1M "$T/disk.img"

run 1 "kernel $T/missing: No such file or directory" -- \
    "$MDIMG" boot --kernel "$T/missing"
run 1 "kernel $T/vmlinuz.txt: not an x86 Linux bzImage" -- \
    "$MDIMG" boot --kernel "$T/vmlinuz.txt"
run 1 "initrd $T/nope.cpio: No such file or directory" -- \
    "$MDIMG" boot --kernel "$T/bzImage" --initrd "$T/nope.cpio"
run 1 "disk image $T/nope.img: No such file or directory" -- \
    "$MDIMG" boot "$T/nope.img"
run 1 "disk image $T: not a regular file" -- \
    "$MDIMG" boot "$T"
# QEMU missing: a PATH without it (mdimg itself is called by absolute path)
run 1 "qemu-system-x86_64 not found in PATH (install qemu-system-x86)" -- \
    env PATH="$T" "$MDIMG" boot --kernel "$T/bzImage"
run 1 "QEMU binary $T/qemu: No such file or directory" -- \
    "$MDIMG" boot --qemu "$T/qemu" "$T/disk.img"
run 1 "MD_BOOT_ACCEL=fast: expected auto, tcg or kvm" -- \
    env MD_BOOT_ACCEL=fast "$MDIMG" boot --kernel "$T/bzImage"

# usage errors
run 2 "nothing to boot" -- "$MDIMG" boot
run 2 "--if: 'scsi': expected virtio or ide" -- "$MDIMG" boot --if scsi "$T/disk.img"
run 2 "--accel: 'hvf': expected auto, tcg or kvm" -- "$MDIMG" boot --accel hvf "$T/disk.img"
run 2 "--timeout: 'soon' is not a number" -- "$MDIMG" boot --timeout soon "$T/disk.img"
run 2 "--initrd and --append need --kernel" -- "$MDIMG" boot --initrd x "$T/disk.img"
run 2 "unexpected argument" -- "$MDIMG" boot "$T/disk.img" "$T/disk.img"
run 2 "--expect: empty string" -- "$MDIMG" boot --expect "" "$T/disk.img"

"$MDIMG" boot --help > "$T/help" || { echo "FAIL: --help"; fail=1; }
grep -q -- "--expect STR" "$T/help" || { echo "FAIL: --help lacks --expect"; fail=1; }

# a fake QEMU that exits with an error: exit 1, QEMU's stderr shown
cat > "$T/qemu-fail" <<'SH'
#!/bin/sh
echo "SeaBIOS (fake)"
echo "qemu-fake: -drive file=x: Could not open 'x'" >&2
exit 1
SH
chmod +x "$T/qemu-fail"
run 1 "QEMU exited (status 1) before \"login:\" was seen: qemu-fake: -drive file=x: Could not open 'x'" -- \
    "$MDIMG" boot --qemu "$T/qemu-fail" --accel tcg --expect login: "$T/disk.img"
grep -q "^--- qemu stderr ---" "$T/err" || { echo "FAIL: no QEMU stderr in the report"; cat "$T/err"; fail=1; }
grep -q "^SeaBIOS (fake)" "$T/err" || { echo "FAIL: no serial tail in the report"; fail=1; }
grep -q "^SeaBIOS (fake)" "$T/out" || { echo "FAIL: serial not echoed to stdout"; fail=1; }
run 1 "QEMU exited with status 1" -- \
    "$MDIMG" boot --qemu "$T/qemu-fail" --accel tcg --batch "$T/disk.img"
run 1 "QEMU exited with status 1" -- \
    "$MDIMG" boot --qemu "$T/qemu-fail" --accel tcg "$T/disk.img"
# --quiet-serial keeps stdout clean
"$MDIMG" boot --qemu "$T/qemu-fail" --accel tcg --quiet-serial --batch "$T/disk.img" >"$T/out" 2>/dev/null
[ ! -s "$T/out" ] || { echo "FAIL: --quiet-serial still wrote to stdout"; fail=1; }

[ $fail = 0 ] && echo "PASS"
exit $fail
