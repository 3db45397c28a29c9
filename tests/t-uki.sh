#!/bin/sh
# mdimg uki judged by other tools: objdump -h lists the new sections with the
# sizes of their inputs, after the stub's, .linux last; objdump -p agrees on
# SizeOfImage; sbverify --list (sbsigntool) parses the image; the same inputs
# give the same bytes under another TZ.  Bad input exits 1 and leaves no
# file; usage errors exit 2.  Booting it: e2e-uefi-uki.sh.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
STUB=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
md_need_file "$STUB" systemd-boot-efi
md_need_tool objdump binutils
md_need_tool sbverify sbsigntool
md_need_kernel
md_tmpdir t-uki

printf 'NAME=minidistro\nID=minidistro\n' > "$T/os-release"
head -c 1001 /dev/urandom > "$T/initrd1"
head -c 2002 /dev/urandom > "$T/initrd2"
CMDLINE="console=ttyS0 panic=-1"

"$MDIMG" uki -o "$T/linux.efi" --kernel "$KERNEL" --initrd "$T/initrd1" --initrd "$T/initrd2" \
    --cmdline "$CMDLINE" --os-release "$T/os-release" >"$T/out" 2>"$T/err" ||
    { cat "$T/err" >&2; md_die "mdimg uki failed"; }
grep -q "^wrote $T/linux.efi: [0-9]* bytes" "$T/out" || md_fail "no 'wrote' line: $(cat "$T/out")"

# objdump -h: "Idx Name Size VMA LMA File-off Algn" per section
objdump -h "$T/linux.efi" >"$T/objdump" 2>"$T/err" || { cat "$T/err" >&2; md_die "objdump -h failed"; }
grep -q "file format pei-x86-64" "$T/objdump" || md_fail "objdump does not see a pei-x86-64 image"
awk '$1 ~ /^[0-9]+$/ { print $2, $3, $4, $6 }' "$T/objdump" >"$T/sections"
size_of() { awk -v n="$1" '$1 == n { print $2 }' "$T/sections"; }
hex() { printf '%08x' "$1"; }
want_osrel=$(hex "$(stat -c %s "$T/os-release")")
want_cmdline=$(hex "$(printf %s "$CMDLINE" | wc -c)")
want_initrd=$(hex $((1004 + 2004)))  # each of several padded to 4 bytes
want_linux=$(hex "$(stat -c %s "$KERNEL")")
for s in ".osrel $want_osrel" ".cmdline $want_cmdline" ".initrd $want_initrd" ".linux $want_linux"; do
    set -- $s
    got=$(size_of "$1")
    if [ "$got" = "$2" ]; then
        md_ok "objdump: $1 size 0x$got"
    else
        md_fail "objdump: $1 size '${got:-missing}', want $2"
    fi
done
[ "$(tail -n 1 "$T/sections" | cut -d' ' -f1)" = .linux ] || md_fail ".linux is not the last section"
# the stub's sections come first, unchanged
objdump -h "$STUB" | awk '$1 ~ /^[0-9]+$/ { print $2, $3, $4, $6 }' >"$T/stub-sections"
n=$(wc -l <"$T/stub-sections")
head -n "$n" "$T/sections" | cmp -s - "$T/stub-sections" || md_fail "the stub's sections changed"
[ "$(wc -l <"$T/sections")" -eq $((n + 4)) ] || md_fail "want $n + 4 sections: $(cat "$T/sections")"
# increasing, non-overlapping VMAs, each on a SectionAlignment boundary
align=$(objdump -p "$T/linux.efi" | awk '$1 == "SectionAlignment" { print $2 }')
image=$(objdump -p "$T/linux.efi" | awk '$1 == "SizeOfImage" { print $2 }')
end=0 bad=0
while read -r name size vma off; do
    v=$((0x$vma)) z=$((0x$size))
    [ $((v % 0x$align)) = 0 ] || { md_fail "$name: VMA 0x$vma not aligned to 0x$align"; bad=1; }
    [ "$v" -ge "$end" ] || { md_fail "$name: VMA 0x$vma overlaps the section before"; bad=1; }
    end=$((v + z))
done <<EOF
$(tail -n 4 "$T/sections")
EOF
want=$(( (end + 0x$align - 1) / 0x$align * 0x$align ))
[ "$want" = $((0x$image)) ] || { md_fail "SizeOfImage 0x$image, want $(printf %x $want)"; bad=1; }
[ $bad = 1 ] ||
md_ok "VMAs aligned to 0x$align and increasing, SizeOfImage 0x$image"

# sbverify parses the PE (and finds no signature: the image is unsigned)
sbverify --list "$T/linux.efi" >"$T/sbverify" 2>&1
if grep -q "No signature table present" "$T/sbverify"; then
    md_ok "sbverify --list: $(head -n 1 "$T/sbverify")"
else
    md_fail "sbverify --list:"; cat "$T/sbverify" >&2
fi

# the same inputs, another TZ and epoch: the same bytes
TZ=Pacific/Kiritimati SOURCE_DATE_EPOCH=1 "$MDIMG" uki -q -o "$T/again.efi" --kernel "$KERNEL" \
    --initrd "$T/initrd1" --initrd "$T/initrd2" --cmdline "$CMDLINE" --os-release "$T/os-release" ||
    md_fail "second mdimg uki"
cmp -s "$T/linux.efi" "$T/again.efi" && md_ok "byte-identical under another TZ" ||
    md_fail "two runs differ"

# bad input: exit 1, a message naming it, no output
# run EXPECTED_STATUS EXPECTED_STDERR_SUBSTRING -- ARGS...
run() {
    want=$1; msg=$2; shift 3
    rm -f "$T/bad.efi"
    "$@" >"$T/out" 2>"$T/err" </dev/null
    got=$?
    if [ "$got" != "$want" ]; then
        md_fail "$* -> exit $got, want $want"; cat "$T/err" >&2; return
    fi
    if ! grep -qF -- "$msg" "$T/err"; then
        md_fail "$* -> stderr lacks '$msg':"; cat "$T/err" >&2; return
    fi
    if [ -e "$T/bad.efi" ] || ls -a "$T" | grep -q '^\.bad\.efi\.'; then
        md_fail "$* left output behind"; return
    fi
    md_ok "$* -> $got: $(head -n1 "$T/err")"
}
echo "not a kernel" > "$T/text"
run 1 "kernel $T/text: not an x86 Linux bzImage" -- "$MDIMG" uki -o "$T/bad.efi" --kernel "$T/text"
run 1 "kernel $T/missing: No such file or directory" -- \
    "$MDIMG" uki -o "$T/bad.efi" --kernel "$T/missing"
run 1 "stub $T/missing: No such file or directory (the systemd EFI stub: install systemd-boot-efi)" -- \
    "$MDIMG" uki -o "$T/bad.efi" --kernel "$KERNEL" --stub "$T/missing"
run 1 "stub $T/text: not a PE/COFF image" -- \
    "$MDIMG" uki -o "$T/bad.efi" --kernel "$KERNEL" --stub "$T/text"
run 1 "already has a .osrel section" -- \
    "$MDIMG" uki -o "$T/bad.efi" --kernel "$KERNEL" --stub "$T/linux.efi"
run 1 "initrd $T/missing: No such file or directory" -- \
    "$MDIMG" uki -o "$T/bad.efi" --kernel "$KERNEL" --initrd "$T/initrd1" --initrd "$T/missing"
run 1 "os-release: $T/missing: No such file or directory" -- \
    "$MDIMG" uki -o "$T/bad.efi" --kernel "$KERNEL" --os-release "$T/missing"
# a bzImage without the EFI stub: the older kernel header, "MZ" gone
head -c 8192 "$KERNEL" > "$T/nostub"
printf '\377\377' | dd of="$T/nostub" conv=notrunc status=none
run 1 "without the EFI stub (no PE header; build it with CONFIG_EFI_STUB=y)" -- \
    "$MDIMG" uki -o "$T/bad.efi" --kernel "$T/nostub"
cp "$T/linux.efi" "$T/keep.efi"
"$MDIMG" uki -o "$T/keep.efi" --kernel "$T/text" 2>/dev/null && md_fail "bad kernel accepted"
cmp -s "$T/linux.efi" "$T/keep.efi" || md_fail "a failed run changed the existing output"

# usage errors
run 2 "missing -o OUT" -- "$MDIMG" uki --kernel "$KERNEL"
run 2 "missing --kernel" -- "$MDIMG" uki -o "$T/bad.efi"
run 2 "unexpected argument" -- "$MDIMG" uki -o "$T/bad.efi" --kernel "$KERNEL" extra
run 2 "unrecognized option" -- "$MDIMG" uki -o "$T/bad.efi" --kernel "$KERNEL" --bogus
"$MDIMG" uki --help >"$T/help" || md_fail "--help"
grep -q -- "--os-release FILE" "$T/help" || md_fail "--help lacks --os-release"

md_done PASS
