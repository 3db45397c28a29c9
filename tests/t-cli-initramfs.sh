#!/bin/sh
# mdimg initramfs: listings through GNU cpio and bsdcpio, every compression
# through its own tool, determinism, and bad input (exit 1, message, no OUT).
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
for tool in cpio bsdcpio gzip xz zstd lz4 sha256sum od; do
    md_need_tool "$tool"
done

T=$(mktemp -d /tmp/t-cli-initramfs.XXXXXX)
cleanup() { chmod -R u+rwx "$T" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
export TZ=UTC LC_ALL=C

# ---- fixture: a host tree plus a spec with what a host tree cannot hold ----
R=$T/root
mkdir -p "$R/etc" "$R/bin" "$R/empty"
printf 'hello\n' > "$R/etc/motd"
chmod 640 "$R/etc/motd"
ln "$R/etc/motd" "$R/etc/motd.hard"
printf '#!/bin/sh\necho tool\n' > "$R/bin/tool"
chmod 755 "$R/bin/tool"
ln -s tool "$R/bin/sh"
chmod 700 "$R/empty"
printf 'issue text\n' > "$T/issue"
cat > "$T/extra.spec" <<EOF
# devices and owners need no root: the spec supplies them
dir /dev 0755 0 0
nod /dev/console 0600 0 5 c 5 1
nod /dev/sda 0660 0 6 b 8 0
dir /run 0755 0 0
pipe /run/fifo 0644 0 0
sock /run/sock 0600 0 0
slink /lib lib64 0777 0 0
file /etc/issue $T/issue 0444 1 2
EOF

OUT=$T/out.cpio
"$MDIMG" initramfs -q -o "$OUT" --epoch 1000 "$R" --spec "$T/extra.spec"
[ -f "$OUT" ] || md_die "no output"
[ $(( $(stat -c %s "$OUT") % 512 )) -eq 0 ] || md_die "uncompressed output not padded to 512 bytes"

# GNU cpio's view.  Data is on the last link only: motd (first) has size 0.
cat > "$T/expect-cpio" <<'EOF'
drwxr-xr-x 7 0 0 0 Jan 1 1970 .
drwxr-xr-x 2 0 0 0 Jan 1 1970 bin
lrwxrwxrwx 1 0 0 4 Jan 1 1970 bin/sh -> tool
-rwxr-xr-x 1 0 0 20 Jan 1 1970 bin/tool
drwxr-xr-x 2 0 0 0 Jan 1 1970 dev
crw------- 1 0 5 5, 1 Jan 1 1970 dev/console
brw-rw---- 1 0 6 8, 0 Jan 1 1970 dev/sda
drwx------ 2 0 0 0 Jan 1 1970 empty
drwxr-xr-x 2 0 0 0 Jan 1 1970 etc
-r--r--r-- 1 1 2 11 Jan 1 1970 etc/issue
-rw-r----- 2 0 0 0 Jan 1 1970 etc/motd
-rw-r----- 2 0 0 6 Jan 1 1970 etc/motd.hard
lrwxrwxrwx 1 0 0 5 Jan 1 1970 lib -> lib64
drwxr-xr-x 2 0 0 0 Jan 1 1970 run
prw-r--r-- 1 0 0 0 Jan 1 1970 run/fifo
srw------- 1 0 0 0 Jan 1 1970 run/sock
EOF
cpio -itv --numeric-uid-gid < "$OUT" 2>"$T/cpio.err" | tr -s ' ' > "$T/got-cpio"
diff -u "$T/expect-cpio" "$T/got-cpio" || md_die "cpio -itv listing differs"

# bsdcpio (libarchive) reports the hard link and the same metadata.
cat > "$T/expect-bsd" <<'EOF'
drwxr-xr-x 7 0 0 0 Jan 1 1970 .
drwxr-xr-x 2 0 0 0 Jan 1 1970 bin
lrwxrwxrwx 1 0 0 4 Jan 1 1970 bin/sh -> tool
-rwxr-xr-x 1 0 0 20 Jan 1 1970 bin/tool
drwxr-xr-x 2 0 0 0 Jan 1 1970 dev
crw------- 1 0 5 5,1 Jan 1 1970 dev/console
brw-rw---- 1 0 6 8,0 Jan 1 1970 dev/sda
drwx------ 2 0 0 0 Jan 1 1970 empty
drwxr-xr-x 2 0 0 0 Jan 1 1970 etc
-r--r--r-- 1 1 2 11 Jan 1 1970 etc/issue
-rw-r----- 2 0 0 0 Jan 1 1970 etc/motd
-rw-r----- 2 0 0 6 Jan 1 1970 etc/motd.hard link to etc/motd
lrwxrwxrwx 1 0 0 5 Jan 1 1970 lib -> lib64
drwxr-xr-x 2 0 0 0 Jan 1 1970 run
prw-r--r-- 1 0 0 0 Jan 1 1970 run/fifo
srw------- 1 0 0 0 Jan 1 1970 run/sock
EOF
bsdcpio -itvn < "$OUT" 2>/dev/null | tr -s ' ' > "$T/got-bsd"
diff -u "$T/expect-bsd" "$T/got-bsd" || md_die "bsdcpio -itv listing differs"

# Raw header fields cpio -tv does not show: inode numbers and hard-link ino.
# (newc header: magic(6) ino(8) mode(8) ...; find each name's header.)
hdr_of() { # ARCHIVE NAME -> "ino nlink devmajor devminor mtime"
    python3 - "$1" "$2" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
name = sys.argv[2].encode() + b'\0'
off = 0
while True:
    assert d[off:off+6] == b'070701', off
    f = [int(d[off+6+8*i:off+14+8*i], 16) for i in range(13)]
    nsz, fsz = f[11], f[6]
    nm = d[off+110:off+110+nsz]
    if nm == name:
        print(f[0], f[4], f[7], f[8], f[5]); break
    if nm == b'TRAILER!!!\0':
        sys.exit('not found')
    off = (off + 110 + nsz + 3) & ~3
    off = (off + fsz + 3) & ~3
PY
}
if md_want_tool python3; then
    a=$(hdr_of "$OUT" etc/motd); b=$(hdr_of "$OUT" etc/motd.hard); c=$(hdr_of "$OUT" bin)
    r=$(hdr_of "$OUT" .)
    [ "${a%% *}" = "${b%% *}" ] || md_die "hard links have different inodes: $a / $b"
    [ "$r" = "1 7 0 0 1000" ] || md_die "the root '.': ino/nlink/devmajor/devminor/mtime = $r, want 1 7 0 0 1000"
    [ "$c" = "2 2 0 0 1000" ] || md_die "first entry: ino/nlink/devmajor/devminor/mtime = $c, want 2 2 0 0 1000"
fi

# File contents come out intact.
[ "$(cpio -i --to-stdout etc/motd.hard < "$OUT" 2>/dev/null)" = hello ] || md_die "etc/motd.hard contents"
[ "$(cpio -i --to-stdout etc/issue < "$OUT" 2>/dev/null)" = "issue text" ] || md_die "etc/issue contents"

# --prefix, --keep-owner/--keep-mtime, --init (overrides a DIR's /init), later DIR overlays earlier
mkdir -p "$T/over/etc"
printf 'override\n' > "$T/over/etc/issue"
printf 'first\n' > "$T/first-issue"
mkdir -p "$T/first/etc"
cp "$T/first-issue" "$T/first/etc/issue"
printf '#!/bin/sh\necho custom init\n' > "$T/myinit"
chmod 600 "$T/myinit"
touch -d '1970-01-01 00:05:00' "$R/bin/tool"
"$MDIMG" initramfs -q -o "$T/p.cpio" --epoch 100000 --prefix opt/x --keep-mtime --keep-owner \
    --init "$T/myinit" "$R" "$T/first" "$T/over"
cpio -itv --numeric-uid-gid < "$T/p.cpio" 2>/dev/null | tr -s ' ' > "$T/got-p"
u=$(id -u) g=$(id -g)
grep -q "^drwxr-xr-x 3 0 0 0 Jan 2 1970 opt$" "$T/got-p" || md_die "--prefix: parent opt: $(cat "$T/got-p")"
grep -q "^-rwxr-xr-x 1 $u $g 20 Jan 1 1970 opt/x/bin/tool$" "$T/got-p" ||
    md_die "--keep-owner/--keep-mtime: $(grep tool "$T/got-p")"
if md_want_tool python3; then
    [ "$(hdr_of "$T/p.cpio" opt/x/bin/tool | cut -d' ' -f5)" = 300 ] || md_die "--keep-mtime: mtime not kept"
fi
grep -q "^-rwxr-xr-x 1 0 0 27 Jan 2 1970 init$" "$T/got-p" || md_die "--init: $(grep init "$T/got-p")"
[ "$(cpio -i --to-stdout opt/x/etc/issue < "$T/p.cpio" 2>/dev/null)" = override ] ||
    md_die "a later DIR does not overlay an earlier one"
[ "$(cpio -i --to-stdout init < "$T/p.cpio" 2>/dev/null)" = "$(cat "$T/myinit")" ] || md_die "--init contents"
# the summary line, and nothing with -q
"$MDIMG" initramfs -o "$T/s.cpio" "$R" > "$T/summary"
grep -q "^wrote $T/s.cpio: 7 entries, [0-9]* bytes (none)$" "$T/summary" || md_die "summary: $(cat "$T/summary")"
[ -z "$("$MDIMG" initramfs -q -o "$T/s.cpio" "$R")" ] || md_die "-q is not quiet"
"$MDIMG" initramfs --help | grep -q -- "--compress" || md_die "--help"
# -o - writes the same bytes to stdout; a device as OUT is refused (never renamed over)
"$MDIMG" initramfs -q -o - "$R" | cmp -s - "$T/s.cpio" || md_die "-o - differs from a file OUT"
set +e
"$MDIMG" initramfs -o /dev/null "$R" 2>"$T/err"; st=$?
set -e
[ "$st" -eq 1 ] && grep -q "/dev/null: exists and is not a regular file" "$T/err" && [ -c /dev/null ] ||
    md_die "-o /dev/null: exit $st: $(cat "$T/err")"

# ---- compression: each tool accepts it and it holds the same archive ----------
for c in gzip xz zstd lz4; do
    "$MDIMG" initramfs -q -o "$T/out.$c" -c $c --epoch 1000 "$R" --spec "$T/extra.spec"
    case $c in
    gzip) gzip -t "$T/out.$c"; gzip -dc "$T/out.$c" > "$T/dec" ;;
    xz) xz -t "$T/out.$c"; xz -dc "$T/out.$c" > "$T/dec"
        xz --robot --list "$T/out.$c" | grep -q '^file.*CRC32' || md_die "xz check is not CRC32" ;;
    zstd) zstd -q -t "$T/out.$c"; zstd -q -dc "$T/out.$c" > "$T/dec" ;;
    lz4) lz4 -q -t "$T/out.$c"; lz4 -q -dc "$T/out.$c" > "$T/dec"
        [ "$(od -An -tx1 -N4 "$T/out.$c" | tr -d ' ')" = 02214c18 ] || md_die "lz4 is not the legacy format" ;;
    esac
    # the compressed stream holds the unpadded archive: a prefix of the plain one
    n=$(stat -c %s "$T/dec")
    cmp -n "$n" "$T/dec" "$OUT" || md_die "$c: decompressed archive differs"
    [ $(( $(stat -c %s "$OUT") - n )) -lt 512 ] || md_die "$c: decompressed archive too short"
done
[ "$(od -An -tx1 -j4 -N4 "$T/out.gzip" | tr -d ' ')" = 00000000 ] || md_die "gzip header has a timestamp"
"$MDIMG" initramfs -q -o "$T/l1" -c gzip -l 1 "$R"
"$MDIMG" initramfs -q -o "$T/l9" -c gzip --level 9 "$R"
gzip -t "$T/l1" "$T/l9"

# ---- determinism: other cwd, umask, TZ, mtimes, creation order --------------------
mkdir "$T/copy"
( cd "$T/copy" && umask 077 && mkdir -p bin etc empty && chmod 755 bin etc && chmod 700 empty &&
  printf '#!/bin/sh\necho tool\n' > bin/tool && chmod 755 bin/tool && ln -s tool bin/sh &&
  printf 'hello\n' > etc/motd && chmod 640 etc/motd && ln etc/motd etc/motd.hard &&
  touch -d '2001-02-03 04:05' etc/motd bin/tool )
( cd "$T" && TZ=Asia/Tokyo SOURCE_DATE_EPOCH=1000 "$MDIMG" initramfs -q -o out2.cpio copy --spec extra.spec )
[ "$(sha256sum < "$OUT")" = "$(sha256sum < "$T/out2.cpio")" ] || md_die "not deterministic"

# ---- bad input: exit 1, a message naming the thing, and no OUT ---------------------
# expect_fail STATUS PATTERN ARGS...: run mdimg initramfs -o $T/bad/out ARGS
mkdir "$T/bad"
expect_fail() {
    want=$1 pat=$2
    shift 2
    set +e
    "$MDIMG" initramfs -o "$T/bad/out" "$@" 2>"$T/err" >/dev/null
    st=$?
    set -e
    [ "$st" -eq "$want" ] || md_die "exit $st (want $want) for: $* ($(cat "$T/err"))"
    grep -q -- "$pat" "$T/err" || md_die "message '$(cat "$T/err")' does not mention '$pat'"
    [ -z "$(ls -A "$T/bad")" ] || md_die "output left behind for: $* ($(ls -A "$T/bad"))"
}
expect_fail 1 "$T/missing" "$T/missing"
expect_fail 1 "$T/issue: not a directory" "$T/issue"
expect_fail 1 "unknown compression 'bzip2'" -c bzip2 "$R"
expect_fail 1 "gzip level must be 1..9" -c gzip -l 10 "$R"
expect_fail 1 "level needs a compression" -l 3 "$R"
expect_fail 2 "is not a number" -c gzip -l fast "$R"
printf 'fiel /x %s 0644 0 0\n' "$T/issue" > "$T/s1.spec"
expect_fail 1 "s1.spec:1: unknown type 'fiel'" --spec "$T/s1.spec"
printf 'dir /a 0755 0 0\nfile /x\n' > "$T/s2.spec"
expect_fail 1 "s2.spec:2: missing field" --spec "$T/s2.spec"
printf 'dir /a 9z9 0 0\n' > "$T/s3.spec"
expect_fail 1 "s3.spec:1: bad mode" --spec "$T/s3.spec"
printf 'dir /../etc 0755 0 0\n' > "$T/s4.spec"
expect_fail 1 "s4.spec:1: .*escapes" --spec "$T/s4.spec"
printf 'file /x %s/nonexistent 0644 0 0\n' "$T" > "$T/s5.spec"
expect_fail 1 "nonexistent" --spec "$T/s5.spec"
expect_fail 1 "$T/nospec" --spec "$T/nospec"
expect_fail 1 "$T/issue: not a BusyBox" --busybox "$T/issue"
expect_fail 1 "$T/nobusybox" --busybox "$T/nobusybox"
expect_fail 1 "$T/noinit" --init "$T/noinit" "$R"
expect_fail 2 "nothing to archive"
set +e
"$MDIMG" initramfs "$R" 2>"$T/err"; st=$?
set -e
[ "$st" -eq 2 ] && grep -q "missing -o" "$T/err" || md_die "missing -o: exit $st"
# an output directory that does not exist / is not writable
set +e
"$MDIMG" initramfs -o "$T/nodir/out" "$R" 2>"$T/err"; st=$?
set -e
[ "$st" -eq 1 ] && grep -q "$T/nodir/out" "$T/err" || md_die "missing output dir: exit $st: $(cat "$T/err")"
if [ "$(id -u)" -ne 0 ]; then
    chmod 555 "$T/bad"
    expect_fail 1 "$T/bad/out: cannot create output file: Permission denied" "$R"
    chmod 755 "$T/bad"
    # an unreadable file inside a DIR
    mkdir "$T/unr"; echo secret > "$T/unr/f"; chmod 000 "$T/unr/f"
    expect_fail 1 "$T/unr/f" "$T/unr"
    chmod 644 "$T/unr/f"
else
    echo "note: running as root: skipping the permission checks"
fi
# a failed run leaves an existing OUT untouched
echo old > "$T/keep"
set +e
"$MDIMG" initramfs -o "$T/keep" "$T/missing" 2>/dev/null
set -e
[ "$(cat "$T/keep")" = old ] || md_die "a failed run replaced an existing OUT"

md_done PASS
