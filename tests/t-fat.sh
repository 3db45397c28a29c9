#!/bin/sh
# FAT made by mdimg, judged by other tools: FAT12, FAT16 and FAT32 from a
# tree with long names, nested directories, a 10 MB file, names that need
# long-name entries and names that fit 8.3 (upper, lower, mixed case) pass
# `fsck.fat -n` (dosfstools), are listed by `mdir` and read back by
# `mcopy -s` identical to the tree (diff -r).  An ESP from `disk create
# --part 64M:efi --fs vfat` shows \EFI\BOOT\BOOTX64.EFI to mtools, and
# `disk ls`/`disk cp` read it.  The same inputs with SOURCE_DATE_EPOCH give
# the same bytes under two time zones.  Bad input (a symlink, a name FAT
# cannot hold, a given size too small) exits 1 with a message naming it and
# leaves no output.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
md_need_tool fsck.fat dosfstools
md_need_tool mdir mtools
md_need_tool mcopy mtools
md_need_tool diff
md_need_tool cmp
md_need_tool sfdisk
md_tmpdir t-fat
export SOURCE_DATE_EPOCH=1700000000
export MTOOLS_SKIP_CHECK=1 # mtools' geometry check is not ours to pass for every size

# expect CODE PATTERN cmd...: exit status CODE and stderr matching PATTERN
expect() {
    code=$1 pat=$2
    shift 2
    "$@" >"$T/out.txt" 2>"$T/err.txt"
    rc=$?
    [ "$rc" = "$code" ] || { cat "$T/err.txt" >&2; md_fail "'$*' exited $rc, expected $code"; return; }
    [ -z "$pat" ] || grep -q -- "$pat" "$T/err.txt" ||
        { cat "$T/err.txt" >&2; md_fail "'$*': stderr lacks '$pat'"; }
}

# ---- the tree, and a name outside ASCII
S=$T/src
md_fat_tree "$S"
printf 'utf8\n' >"$S/docs/caf$(printf '\303\251').txt"

# check_fs NAME IMG OFFSET BITS: fsck.fat on the filesystem at OFFSET (FAT entries
# of BITS bits), mtools read-back
check_fs() {
    name=$1 img=$2 off=$3 bits=$4
    if [ "$off" = 0 ]; then
        fs=$img
    else
        fs=$T/$name.part
        dd if="$img" of="$fs" bs=1M skip=$((off / 1048576)) status=none
    fi
    if fsck.fat -n -v "$fs" >"$T/$name.fsck" 2>&1; then
        grep -q "$bits bit entries" "$T/$name.fsck" ||
            { grep FAT "$T/$name.fsck" >&2; md_fail "$name: not FAT$bits"; }
        if grep -qi warning "$T/$name.fsck"; then
            cat "$T/$name.fsck" >&2
            md_fail "$name: fsck.fat -n warns"
        else
            md_ok "$name: fsck.fat -n is clean (FAT$bits)"
        fi
    else
        cat "$T/$name.fsck" >&2
        md_fail "$name: fsck.fat -n"
    fi
    mdir -i "$img@@$off" ::/lower >"$T/$name.mdir" 2>&1 || { cat "$T/$name.mdir" >&2; md_fail "$name: mdir"; }
    grep -q '^notes    txt ' "$T/$name.mdir" && grep -q ' MixedCase.Txt$' "$T/$name.mdir" ||
        { cat "$T/$name.mdir" >&2; md_fail "$name: mdir shows other names"; }
    rm -rf "$T/$name.out"
    mkdir "$T/$name.out"
    if mcopy -s -i "$img@@$off" ::/ "$T/$name.out/" 2>"$T/$name.mcopy" &&
        diff -r "$S" "$T/$name.out" >"$T/$name.diff" 2>&1; then
        md_ok "$name: mcopy -s reads back the tree (diff -r)"
    else
        cat "$T/$name.mcopy" "$T/$name.diff" >&2
        md_fail "$name: mcopy -s read-back differs"
    fi
}

for t in fat12 fat16 fat32; do
    img=$T/$t.img
    if "$MDIMG" -q disk create "$img" --table none --fs "$t" --label "$t" "$S" 2>"$T/err.txt"; then
        check_fs "$t" "$img" 0 "${t#fat}"
    else
        cat "$T/err.txt" >&2
        md_fail "disk create --fs $t"
    fi
done

# ---- an ESP on GPT
E=$T/esp
mkdir -p "$E/EFI/BOOT"
cp "$S/EFI/BOOT/BOOTX64.EFI" "$E/EFI/BOOT/"
cp "$S/Nested/ten-megabytes.bin" "$E/"
"$MDIMG" -q disk create "$T/esp.img" --size 80M --part 64M:efi --fs vfat --label ESP "$E" ||
    md_die "disk create --part 64M:efi --fs vfat"
sfdisk -d "$T/esp.img" 2>/dev/null | grep -qi 'type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B' ||
    md_fail "partition 1 is not an EFI System partition"
if mdir -i "$T/esp.img@@1M" ::/EFI/BOOT 2>&1 | grep -q "^BOOTX64  EFI  *$(stat -c %s "$E/EFI/BOOT/BOOTX64.EFI") "; then
    md_ok "mtools lists \\EFI\\BOOT\\BOOTX64.EFI on the ESP"
else
    mdir -i "$T/esp.img@@1M" ::/EFI/BOOT >&2
    md_fail "mtools does not list \\EFI\\BOOT\\BOOTX64.EFI"
fi
dd if="$T/esp.img" of="$T/esp.part" bs=1M skip=1 count=64 status=none
fsck.fat -n "$T/esp.part" >"$T/esp.fsck" 2>&1 && md_ok "ESP: fsck.fat -n is clean" ||
    { cat "$T/esp.fsck" >&2; md_fail "ESP: fsck.fat -n"; }
"$MDIMG" disk ls "$T/esp.img:/EFI/BOOT" >"$T/ls.txt" 2>"$T/err.txt" && grep -qx BOOTX64.EFI "$T/ls.txt" ||
    { cat "$T/ls.txt" "$T/err.txt" >&2; md_fail "disk ls on the ESP"; }
"$MDIMG" -q disk cp "$T/esp.img:/ten-megabytes.bin" "$T/cp.out" && cmp -s "$T/cp.out" "$E/ten-megabytes.bin" &&
    md_ok "disk ls / disk cp read the ESP" || md_fail "disk cp out of the ESP"
# disk format --fs vfat on an existing partition, then populate it
"$MDIMG" -q disk create "$T/fmt.img" --size 40M --part 30M:efi || md_die "disk create fmt.img"
"$MDIMG" -q disk format "$T/fmt.img" --fs vfat --label FMT && "$MDIMG" -q disk populate "$T/fmt.img" "$E" &&
    dd if="$T/fmt.img" of="$T/fmt.part" bs=1M skip=1 count=30 status=none &&
    fsck.fat -n "$T/fmt.part" >"$T/fmt.fsck" 2>&1 &&
    mdir -i "$T/fmt.img@@1M" ::/EFI/BOOT | grep -q '^BOOTX64  EFI' &&
    md_ok "disk format --fs vfat + disk populate" || { cat "$T/fmt.fsck" >&2; md_fail "disk format --fs vfat"; }

# ---- determinism: the same bytes under two zones
TZ=UTC "$MDIMG" -q disk create "$T/d1.img" --part 64M:efi --fs vfat "$S" &&
    TZ=Asia/Tokyo "$MDIMG" -q disk create "$T/d2.img" --part 64M:efi --fs vfat "$S" &&
    cmp -s "$T/d1.img" "$T/d2.img" && md_ok "same bytes under TZ=UTC and TZ=Asia/Tokyo" ||
    md_fail "the ESP's bytes depend on the time zone"

# ---- bad input: exit 1, the entry named, no output
mkdir -p "$T/bad1/EFI"
ln -s BOOT "$T/bad1/EFI/link"
expect 1 "EFI/link' is a symlink" "$MDIMG" disk create "$T/bad1.img" --part 64M:efi --fs vfat "$T/bad1"
mkdir -p "$T/bad2"
printf x >"$T/bad2/what?.txt"
expect 1 "what?.txt" "$MDIMG" disk create "$T/bad2.img" --part 64M:efi --fs vfat "$T/bad2"
expect 1 "too small" "$MDIMG" disk create "$T/bad3.img" --size 8M --part rest:efi --fs vfat "$E"
grep -q "MiB" "$T/err.txt" || md_fail "too small: no needed size in '$(cat "$T/err.txt")'"
expect 2 "is for ext" "$MDIMG" disk create "$T/bad4.img" --size 64M --part rest:efi --fs vfat --features ^64bit
for b in bad1 bad2 bad3 bad4; do
    [ ! -e "$T/$b.img" ] || md_fail "$b.img left behind"
done
[ -z "$(ls -A "$T" | grep '^\.bad')" ] || md_fail "temporary files left behind"
[ "$MD_FAILS" != 0 ] || md_ok "bad input (symlink, name, size, option): exit 1/2, named, nothing left"

md_done
