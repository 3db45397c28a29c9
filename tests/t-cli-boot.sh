#!/bin/sh
# mdimg boot: bad input is refused before QEMU runs, with a message naming
# the problem (exit 1), usage errors exit 2.  No guest is booted here; see
# e2e-boot.sh for real boots.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
T=$(mktemp -d /tmp/t-cli-boot.XXXXXX)
trap 'rm -rf "$T"' EXIT

# run EXPECTED_STATUS EXPECTED_STDERR_SUBSTRING -- ARGS...
run() {
    want=$1; msg=$2; shift 3
    "$@" >"$T/out" 2>"$T/err" </dev/null
    got=$?
    if [ "$got" != "$want" ]; then
        md_fail "$* -> exit $got, want $want"; cat "$T/err" >&2; return
    fi
    if ! grep -qF -- "$msg" "$T/err"; then
        md_fail "$* -> stderr lacks '$msg':"; cat "$T/err" >&2; return
    fi
    md_ok "$* -> $got: $(head -n1 "$T/err")"
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
# a read-only image needs --snapshot (root ignores permissions: only checked as a user)
if [ "$(id -u)" != 0 ]; then
    cp "$T/disk.img" "$T/ro.img" && chmod 444 "$T/ro.img"
    run 1 "disk image $T/ro.img: not writable (--snapshot / MD_BOOT_SNAPSHOT boots it" -- \
        "$MDIMG" boot "$T/ro.img"
fi
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
run 2 "--firmware: 'coreboot': expected bios, uefi or auto" -- \
    "$MDIMG" boot --firmware coreboot "$T/disk.img"
run 2 "--ovmf-code and --ovmf-vars need --firmware uefi or auto" -- \
    "$MDIMG" boot --ovmf-code "$T/x" "$T/disk.img"

"$MDIMG" boot --help > "$T/help" || md_fail "--help"
grep -q -- "--expect STR" "$T/help" || md_fail "--help lacks --expect"

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
grep -q "^--- qemu stderr ---" "$T/err" || { md_fail "no QEMU stderr in the report"; cat "$T/err" >&2; }
grep -q "^SeaBIOS (fake)" "$T/err" || md_fail "no serial tail in the report"
grep -q "^SeaBIOS (fake)" "$T/out" || md_fail "serial not echoed to stdout"
run 1 "QEMU exited with status 1" -- \
    "$MDIMG" boot --qemu "$T/qemu-fail" --accel tcg --batch "$T/disk.img"
run 1 "QEMU exited with status 1" -- \
    "$MDIMG" boot --qemu "$T/qemu-fail" --accel tcg "$T/disk.img"
# scripted runs against fake QEMUs (fast, no guest)
cat > "$T/qemu-chat" <<'SH'
#!/bin/sh
printf 'fake guest\n# '
read cmd
printf '%s\nran: %s\n' "$cmd" "$cmd"
[ "$cmd" = fail ] && exit 4
exit 0
SH
cat > "$T/qemu-hang" <<'SH'
#!/bin/sh
printf 'hanging guest\n'
exec sleep 60
SH
chmod +x "$T/qemu-chat" "$T/qemu-hang"
# --send waits for the prompt, then --expect sees the command's output; ending
# with --expect stops QEMU: exit 0
"$MDIMG" boot --qemu "$T/qemu-chat" --accel tcg --kernel "$T/bzImage" --timeout 20 \
    --send 'uname' --expect 'ran: uname' >"$T/out" 2>"$T/err" </dev/null ||
    { md_fail "scripted fake session"; cat "$T/err" >&2; }
grep -q "^ran: uname" "$T/out" || md_fail "no command output echoed"
# ending with --send waits for the exit, whose status decides
run 1 "QEMU exited with status 4" -- \
    "$MDIMG" boot --qemu "$T/qemu-chat" --accel tcg --kernel "$T/bzImage" --timeout 20 --send fail
# the overall --timeout: exit 1 soon after it, named in the message, tail printed
start=$(date +%s)
run 1 '"NEVER" not seen within the 2 s timeout' -- \
    "$MDIMG" boot --qemu "$T/qemu-hang" --accel tcg --kernel "$T/bzImage" --timeout 2 --expect NEVER
took=$(( $(date +%s) - start ))
[ $took -le 5 ] || md_fail "--timeout 2 took $took s"
grep -q "^hanging guest" "$T/err" || md_fail "no tail after the timeout"
run 1 "QEMU still running after the 1 s timeout: killed" -- \
    "$MDIMG" boot --qemu "$T/qemu-hang" --accel tcg --kernel "$T/bzImage" --timeout 1 --batch
run 1 'the prompt "$ " (to send "ls") not seen within the 1 s timeout' -- \
    "$MDIMG" boot --qemu "$T/qemu-chat" --accel tcg --kernel "$T/bzImage" --timeout 1 \
    --prompt '$ ' --send ls

# UEFI: OVMF files checked before QEMU runs; then q35 and two pflash drives
echo CODE > "$T/code.fd"
echo VARS > "$T/vars.fd"
run 1 "OVMF firmware $T/nope.fd: No such file or directory" -- \
    "$MDIMG" boot --firmware uefi --ovmf-code "$T/nope.fd" --ovmf-vars "$T/vars.fd" "$T/disk.img"
run 1 "OVMF variable store $T/nope.fd: No such file or directory" -- \
    "$MDIMG" boot --firmware uefi --ovmf-code "$T/code.fd" --ovmf-vars "$T/nope.fd" "$T/disk.img"
if [ ! -e /usr/share/OVMF/OVMF_CODE_4M.fd ]; then
    run 1 "OVMF firmware /usr/share/OVMF/OVMF_CODE_4M.fd: No such file or directory (install ovmf)" -- \
        "$MDIMG" boot --firmware uefi "$T/disk.img"
fi
cat > "$T/qemu-args" <<'SH'
#!/bin/sh
for a in "$@"; do printf '<%s>\n' "$a"; done
SH
chmod +x "$T/qemu-args"
mkdir "$T/tmp"
TMPDIR="$T/tmp" "$MDIMG" boot --qemu "$T/qemu-args" --accel tcg --batch --firmware uefi \
    --ovmf-code "$T/code.fd" --ovmf-vars "$T/vars.fd" "$T/disk.img" >"$T/out" 2>"$T/err" ||
    { md_fail "--firmware uefi with a fake QEMU"; cat "$T/err" >&2; }
grep -q "^<q35>" "$T/out" && grep -q "^<if=pflash,format=raw,readonly=on,file=$T/code.fd>" "$T/out" &&
    grep -q "^<if=pflash,format=raw,file=$T/tmp/md-boot-.*/OVMF_VARS.fd>" "$T/out" ||
    { md_fail "--firmware uefi: no q35/pflash arguments"; cat "$T/out" >&2; }
[ -z "$(ls -A "$T/tmp")" ] || md_fail "the VARS copy was left in $T/tmp: $(ls -A "$T/tmp")"
"$MDIMG" boot --qemu "$T/qemu-args" --accel tcg --batch --firmware auto "$T/disk.img" >"$T/out" 2>&1 ||
    md_fail "--firmware auto on a disk without a table"
grep -q "q35\|pflash" "$T/out" && md_fail "--firmware auto on a disk without a table chose UEFI"

# --quiet-serial keeps stdout clean
"$MDIMG" boot --qemu "$T/qemu-fail" --accel tcg --quiet-serial --batch "$T/disk.img" >"$T/out" 2>/dev/null
[ ! -s "$T/out" ] || md_fail "--quiet-serial still wrote to stdout"

# The same runner from another language: Python ctypes against the shared
# library (checks the options struct layout and the int/handle conventions).
if [ -z "${MD_LIBDIR:-}" ]; then
    echo "note: MD_LIBDIR not set: FFI check skipped"
elif md_want_tool python3; then
    if ! python3 - "$MD_LIBDIR/libminidistro.so.0" "$T/qemu-chat" "$T/bzImage" <<'PY'
import ctypes as C, sys
lib = C.CDLL(sys.argv[1])
V1 = [("version", C.c_uint32), ("flags", C.c_uint32), ("qemu", C.c_char_p),
      ("disk", C.c_char_p), ("disk_if", C.c_uint32), ("memory_mib", C.c_uint32),
      ("kernel", C.c_char_p), ("initrd", C.c_char_p), ("append", C.c_char_p),
      ("accel", C.c_uint32), ("echo_fd", C.c_int32),
      ("extra_args", C.POINTER(C.c_char_p))]
class OptsV1(C.Structure):
    _fields_ = V1
class Opts(C.Structure):
    _fields_ = V1 + [("firmware", C.c_uint32), ("reserved", C.c_uint32),
                     ("ovmf_code", C.c_char_p), ("ovmf_vars", C.c_char_p)]
lib.md_ctx_errmsg.restype = C.c_char_p
lib.md_boot_tail.restype = C.c_char_p
ctx, b = C.c_void_p(), C.c_void_p()
assert lib.md_ctx_new(C.byref(ctx)) == 0
o = Opts()
lib.md_boot_opts_init(C.byref(o))
assert (o.version, o.memory_mib, o.echo_fd, o.accel, o.firmware) == (2, 256, -1, 0, 0), "struct layout"
assert C.sizeof(Opts) == 96, C.sizeof(Opts)
o.qemu, o.kernel, o.accel = sys.argv[2].encode(), sys.argv[3].encode(), 1
r = lib.md_boot_start(ctx, C.byref(o), C.byref(b))
assert r == 0, lib.md_ctx_errmsg(ctx)
assert lib.md_boot_expect(b, b"# ", 10000) == 0
assert lib.md_boot_send(b, b"uname\n") == 0
assert lib.md_boot_expect(b, b"ran: uname", 10000) == 0
st = C.c_int(-1)
assert lib.md_boot_wait(b, 10000, C.byref(st)) == 0 and st.value == 0
assert lib.md_boot_tail(b, 1) == b"ran: uname\n", lib.md_boot_tail(b, 1)
# errors are negative errno values with a message on the context
assert lib.md_boot_expect(b, b"more", 100) == -32  # EPIPE: QEMU has exited
assert b"before \"more\" was seen" in lib.md_ctx_errmsg(ctx)
lib.md_boot_free(b)
# a caller built against version 1 passes the shorter struct
v1 = OptsV1(version=1, memory_mib=256, echo_fd=-1, accel=1)
v1.qemu, v1.kernel = sys.argv[2].encode(), sys.argv[3].encode()
assert lib.md_boot_start(ctx, C.byref(v1), C.byref(b)) == 0, lib.md_ctx_errmsg(ctx)
assert lib.md_boot_firmware(b) == 0
assert lib.md_boot_kill(b) == 0
lib.md_boot_free(b)
lib.md_ctx_free(ctx)
print("python ctypes: ok")
PY
    then
        md_fail "the boot runner through Python ctypes"
    fi
fi

md_done PASS
