#!/bin/sh
# What `disk ls` and `inspect` print of images other people made (suite
# robustness; issue 11 items 13 and 15).
#  13. Names, link targets, partition names and labels are untrusted bytes:
#      in text output no control character reaches the terminal raw (C0,
#      DEL, C1 as UTF-8 — U+009B is a CSI to some terminals — and bytes that
#      are not UTF-8, a lone 0x9B being the 8-bit CSI), each shown as \xNN, a
#      backslash doubled, so that one entry is one line; valid UTF-8 stays as
#      it is.  The JSON output parses (python3 json) and gives the names back
#      (bytes that are not UTF-8 as U+FFFD).  ext names come from a host tree
#      (debugfs confirms the image holds the raw bytes), a GPT partition name
#      from --part name= (sfdisk confirms), an ext label set by tune2fs, a FAT
#      long name patched to hold an ESC.
#  15. An empty directory lists as nothing, exit 0: ext (a new one and
#      lost+found) and FAT.  md_ext_list sorted it with qsort(NULL, 0, ...),
#      which UBSan reports: in a sanitizer build (-Db_sanitize=undefined)
#      this test fails on the report (UBSAN_OPTIONS halt_on_error=1 is set
#      here); in a plain build it checks the output only.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
md_need_tool python3
md_need_tool debugfs e2fsprogs
md_tmpdir t-listing
cd "$T" || exit 1
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}:halt_on_error=1
export UBSAN_OPTIONS

# raw_controls FILE: what of FILE must not reach a terminal, if anything: a
# control character but the newlines between entries (C0, DEL, C1), or bytes
# that are not UTF-8
raw_controls() {
    python3 -c '
import sys
b = open(sys.argv[1], "rb").read()
try:
    s = b.decode("utf-8")
except UnicodeDecodeError as e:
    print("not UTF-8: %r" % b[max(0, e.start - 8):e.end + 8])
    sys.exit()
bad = [c for c in s if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
if bad:
    print(repr(bad))
' "$1"
}

# ---- 13. names in an ext filesystem ---------------------------------------------
mkdir -p tree/empty
names='bad\033[2Jname new\nline csi-c1\302\23331m csi-8bit\233m del\177 back\\slash caf\303\251'
for n in $names; do
    # shellcheck disable=SC2059
    printf 'x\n' >"tree/$(printf "$n")"
done
ln -s "$(printf 'target\033]0;title\007')" tree/link
"$MDIMG" -q disk create ext.img --size 8M --fs ext4 tree || md_die "making ext.img failed"
# debugfs shows the byte 0x1b it finds as \x1b
debugfs -R 'ls /' ext.img 2>/dev/null | grep -qF 'bad\x1b[2Jname' ||
    md_die "debugfs does not see the ESC in ext.img: the fixture is wrong"
"$MDIMG" disk ls ext.img:/ >ls.txt 2>err.txt || md_fail "disk ls: $(cat err.txt)"
cat >want.txt <<'EOF'
back\\slash
bad\x1b[2Jname
café
csi-8bit\x9bm
csi-c1\xc2\x9b31m
del\x7f
empty
link
lost+found
new\x0aline
EOF
if cmp -s ls.txt want.txt; then
    md_ok "disk ls: control characters and bytes that are not UTF-8 escaped, one line each"
else
    md_fail "disk ls text output is not what it must be"
    diff want.txt ls.txt >&2
fi
[ -z "$(raw_controls ls.txt)" ] || md_fail "disk ls: raw control bytes: $(raw_controls ls.txt)"
"$MDIMG" disk ls -l ext.img:/ >ll.txt 2>err.txt || md_fail "disk ls -l: $(cat err.txt)"
grep -qF 'link -> target\x1b]0;title\x07' ll.txt || md_fail "disk ls -l: the link target: $(grep link ll.txt)"
[ -z "$(raw_controls ll.txt)" ] || md_fail "disk ls -l: raw control bytes: $(raw_controls ll.txt)"
"$MDIMG" disk ls --json ext.img:/ >ls.json 2>err.txt || md_fail "disk ls --json: $(cat err.txt)"
python3 - ls.json <<'EOF' || md_fail "disk ls --json: not what it must be"
import json, sys
names = sorted(e["name"] for e in json.load(open(sys.argv[1], "rb")))
want = sorted(["bad\x1b[2Jname", "new\nline", "csi-c1\x9b31m", "csi-8bit\ufffdm", "del\x7f",
               "back\\slash", "caf\xe9", "empty", "link", "lost+found"])
if names != want:
    print("got  %r\nwant %r" % (names, want), file=sys.stderr)
    sys.exit(1)
EOF

# ---- 13. a partition name and a filesystem label ----------------------------------
"$MDIMG" -q disk create gpt.img --size 8M --table gpt --part "4M:linux:name=$(printf 'p\033[31mq')" \
    --fs ext4 tree || md_die "making gpt.img failed"
if md_want_tool sfdisk fdisk && md_want_tool tune2fs e2fsprogs; then
    # sfdisk shows the byte 0x1b as \x1b too
    sfdisk -d gpt.img 2>/dev/null | grep -qF 'name="p\x1b[31mq"' ||
        md_fail "sfdisk does not see the ESC in the partition name"
    tune2fs -L "$(printf 'l\033[2Jm')" "gpt.img?offset=1048576" >/dev/null 2>&1 ||
        md_fail "tune2fs -L failed"
    "$MDIMG" inspect gpt.img >in.txt 2>err.txt || md_fail "inspect: $(cat err.txt)"
    grep -qF 'p\x1b[31mq' in.txt || md_fail "inspect: the partition name: $(cat in.txt)"
    grep -qF 'l\x1b[2Jm' in.txt || md_fail "inspect: the label: $(cat in.txt)"
    [ -z "$(raw_controls in.txt)" ] || md_fail "inspect: raw control bytes: $(raw_controls in.txt)"
    md_ok "inspect: $(grep -F 'p\x1b' in.txt | tr -s ' ')"
    "$MDIMG" inspect --json gpt.img >in.json 2>err.txt || md_fail "inspect --json: $(cat err.txt)"
    python3 - in.json <<'EOF' || md_fail "inspect --json: not what it must be"
import json, sys
p = json.load(open(sys.argv[1], "rb"))["partitions"][0]
if p["name"] != "p\x1b[31mq" or p["filesystem"]["label"] != "l\x1b[2Jm":
    print(repr(p), file=sys.stderr)
    sys.exit(1)
EOF
fi

# ---- 13. a FAT long name holding an ESC -------------------------------------------
mkdir -p fat/empty
printf 'x\n' >'fat/A long name.txt'
"$MDIMG" -q disk create fat.img --size 1M --fs vfat fat || md_die "making fat.img failed"
off=$(grep -obUa 'ALONGN~1TXT' fat.img | head -n 1 | cut -d: -f1)
[ -n "$off" ] || md_die "no short entry ALONGN~1TXT in fat.img"
# the long name's first slot, just before its short entry: character 2 at byte 3
printf '\033' | dd of=fat.img bs=1 seek=$((off - 32 + 3)) conv=notrunc status=none
"$MDIMG" disk ls fat.img:/ >fl.txt 2>err.txt || md_fail "disk ls of FAT: $(cat err.txt)"
grep -qxF 'A\x1blong name.txt' fl.txt || md_fail "disk ls of FAT: the long name: $(cat fl.txt)"
[ -z "$(raw_controls fl.txt)" ] || md_fail "disk ls of FAT: raw control bytes: $(raw_controls fl.txt)"
md_ok "disk ls of FAT: $(tr '\n' ' ' <fl.txt)"

# ---- 15. empty directories ----------------------------------------------------------
for d in ext.img:/empty ext.img:/lost+found fat.img:/empty; do
    "$MDIMG" disk ls "$d" >e.txt 2>err.txt
    st=$?
    if [ "$st" != 0 ] || grep -q 'runtime error' err.txt; then
        md_fail "disk ls $d: status $st: $(cat err.txt)"
    elif [ -s e.txt ]; then
        md_fail "disk ls $d lists something: $(cat e.txt)"
    else
        md_ok "disk ls $d: nothing, status 0"
    fi
    "$MDIMG" disk ls --json "$d" >e.json 2>err.txt && [ "$(tr -d ' \n' <e.json)" = '[]' ] ||
        md_fail "disk ls --json $d: $(cat e.json err.txt)"
done

md_done "t-listing: untrusted names escaped; empty directories list as nothing"
