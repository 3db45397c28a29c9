#!/bin/sh
# Limits the user runs into (issue 11 items 10 and 12): an error message that
# echoes a 4000-byte path or a 3000-byte label still ends with its reason; 129
# GPT partitions are refused with the 128 limit (before libfdisk), 128 are made
# (sfdisk -d counts them); a partition GUID given twice is refused, nothing
# left at IMG; `disk cp --mode 0` gives mode 0 (debugfs stat), as does a
# host file of mode 0 (when run as root, who can read it).
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

: "${MDIMG:?}"
for t in sfdisk debugfs; do
    md_need_tool $t
done
md_tmpdir t-cli-limits
cd "$T"
export SOURCE_DATE_EPOCH=1700000000

# repeat N STRING
repeat() {
    _i=0 _s=
    while [ $_i -lt "$1" ]; do
        _s=$_s$2
        _i=$((_i + 1))
    done
    printf '%s' "$_s"
}

# one-line stderr, no longer than the context's 1 KiB plus "mdimg: CMD: "
short_line() {
    [ "$(wc -l <err.txt)" = 1 ] || { cat err.txt >&2; md_fail "$1: not one line of stderr"; }
    [ "$(wc -c <err.txt)" -le 1100 ] || md_fail "$1: $(wc -c <err.txt) bytes of stderr"
}

# ---- item 10: long echoed values do not cut the reason off
comp=$(repeat 200 d)
long=$T/$comp
while [ ${#long} -lt 3800 ]; do
    long=$long/$comp
done
long=$long/$(repeat $((4000 - ${#long} - 1)) f)
[ ${#long} = 4000 ] || md_die "the long path is ${#long} bytes"
md_expect 1 ': No such file or directory$' "$MDIMG" initramfs -o x.cpio "$long"
short_line "initramfs from a 4000-byte path"
grep -q "^mdimg: initramfs: $T/dddd.*\.\.\..*ffff" err.txt || { cat err.txt >&2; md_fail "the path keeps both ends"; }
[ ! -e x.cpio ] || md_fail "x.cpio left behind"
md_expect 1 ': No such file or directory$' "$MDIMG" disk create "$long.img" --size 8M
short_line "disk create of a 4000-byte path"
label=$(repeat 3000 L)
md_expect 1 "' is longer than 16 bytes$" "$MDIMG" disk create l.img --size 16M --fs ext4 --label "$label"
short_line "ext label of 3000 bytes"
grep -q "^mdimg: disk create: label 'LLLL.*\.\.\..*LLLL' is longer" err.txt || { cat err.txt >&2; md_fail "the label keeps both ends"; }
md_expect 1 "label" "$MDIMG" disk create l.img --size 16M --fs vfat --label "$label"
short_line "FAT label of 3000 bytes"
grep -q "11" err.txt || { cat err.txt >&2; md_fail "the FAT label message lost its limit"; }
[ ! -e l.img ] || md_fail "l.img left behind"

# ---- item 12: 129 GPT partitions, the limit said; 128 made
parts=
i=0
while [ $i -lt 129 ]; do
    parts="$parts --part 1M"
    i=$((i + 1))
done
# shellcheck disable=SC2086
md_expect 1 "a.img: 129 partitions: a GPT holds at most 128 partitions" "$MDIMG" disk create a.img --size 200M $parts
grep -q 'libfdisk\|Created a new' err.txt && { cat err.txt >&2; md_fail "libfdisk's chatter in the 129 message"; }
[ ! -e a.img ] || md_fail "a.img left behind"
# shellcheck disable=SC2086
"$MDIMG" -q disk create a.img --size 200M ${parts% --part 1M} || md_fail "128 GPT partitions"
n=$(sfdisk -d a.img 2>/dev/null | grep -c '^a.img[0-9]* : start=') || true
[ "$n" = 128 ] || md_fail "sfdisk sees $n partitions, not 128"

# ---- item 12: a partition GUID given twice
u=11111111-2222-4333-8444-555555555555
U=$(echo $u | tr a-f A-F)
md_expect 1 "b.img: partitions 1 and 3 have the same GUID" \
    "$MDIMG" disk create b.img --size 32M --part 4M::uuid=$u --part 4M --part 4M::uuid=$u
[ ! -e b.img ] || md_fail "b.img left behind"
"$MDIMG" -q disk create b.img --size 32M --part 4M::uuid=$u --part 4M::uuid=22222222-2222-4333-8444-555555555555 ||
    md_fail "two different GUIDs"
sfdisk -d b.img 2>/dev/null | grep -q "uuid=$U" || md_fail "sfdisk: partition 1's GUID"
rm -f b.img
md_expect 1 "partitions 1 and 2 have the same GUID" \
    "$MDIMG" disk create b.img --size 32M --part 4M::uuid=$u --part 4M::uuid=$U
md_expect 1 "partition 2 has the disk's GUID" \
    "$MDIMG" disk create b.img --size 32M --disk-id $U --part 4M --part 4M::uuid=$u
[ ! -e b.img ] || md_fail "b.img left behind"

# ---- item 12: disk cp --mode 0 is mode 0
"$MDIMG" -q disk create c.img --size 16M --fs ext4
printf 'x\n' >f
"$MDIMG" -q disk cp --mode 0 f c.img:/zero
debugfs -R 'stat /zero' c.img 2>/dev/null | grep -q 'Mode:  0000' ||
    { debugfs -R 'stat /zero' c.img >&2; md_fail "--mode 0 is not mode 0"; }
"$MDIMG" -q disk cp --mode 4750 f c.img:/suid
debugfs -R 'stat /suid' c.img 2>/dev/null | grep -q 'Mode:  04750' || md_fail "--mode 4750"
chmod 0 f
if [ -r f ]; then # root reads a file of mode 0; a normal user cannot
    "$MDIMG" -q disk cp f c.img:/hostzero
    debugfs -R 'stat /hostzero' c.img 2>/dev/null | grep -q 'Mode:  0000' || md_fail "a host file of mode 0"
else
    echo "note: not root: a host file of mode 0 cannot be read, that check is left out"
fi
chmod 0640 f
"$MDIMG" -q disk cp f c.img:/host
debugfs -R 'stat /host' c.img 2>/dev/null | grep -q 'Mode:  0640' || md_fail "the host file's mode"
debugfs -R 'cat /zero' c.img 2>/dev/null | grep -qx x || md_fail "contents of /zero"

md_done "PASS: long messages keep their reason; GPT partition limits; cp --mode 0"
