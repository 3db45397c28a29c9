#!/bin/sh
# Compatibility with the kernel's own tool: for the same spec file, the
# archive of usr/gen_init_cpio (compiled here from the kernel source) and
# ours list the same in `cpio -itv` and unpack (bsdtar) to the same trees.
#
# Known, documented differences that are normalised before comparing:
#  - gen_init_cpio writes entries in spec order, we sort them (listings are
#    sorted before comparing); so in a hard-link group the data is on the
#    last name of the spec line there and on the last name in byte order
#    here: the size column of linked files is compared as a group total;
#  - gen_init_cpio stores a symlink target with its terminating NUL, so its
#    size column is one larger (the kernel's unpacker ignores the NUL);
#  - gen_init_cpio gives fifos and sockets a link count of 2 (it writes them
#    with its directory code), we give 1.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
TARBALL=${MD_LINUX_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
md_need_file "$TARBALL" linux-source-6.1
for tool in cc tar xz cpio bsdtar diff find sort; do
    md_need_tool "$tool"
done

T=$(mktemp -d /tmp/t-gen-init-cpio.XXXXXX)
trap 'rm -rf "$T"' EXIT
export TZ=UTC LC_ALL=C
EPOCH=1700000000

# ---- the kernel's gen_init_cpio --------------------------------------------
# Extracting one file means decompressing most of the tarball (a minute on a
# busy machine): keep the extracted source in the build directory.
CACHE=${MD_BUILDDIR:-$T}/tests/gen_init_cpio.c
SRC=$T/gen_init_cpio.c
if [ -s "$CACHE" ]; then
    cp "$CACHE" "$SRC"
else
    tar -xJf "$TARBALL" -O --occurrence=1 linux-source-6.1/usr/gen_init_cpio.c > "$SRC" ||
        md_die "cannot extract usr/gen_init_cpio.c from $TARBALL"
    [ -s "$SRC" ] || md_die "usr/gen_init_cpio.c not in $TARBALL"
    cp "$SRC" "$CACHE.tmp.$$" 2>/dev/null && mv "$CACHE.tmp.$$" "$CACHE" 2>/dev/null || true
fi
cc -O2 -w -o "$T/gen_init_cpio" "$SRC" || md_die "cannot compile gen_init_cpio.c"

# ---- fixture: host files and a spec with every line type ---------------------
W=$T/work
mkdir -p "$W/files/sub"
printf 'hello, initramfs\n' > "$W/files/hello.txt"
printf '#!/bin/sh\necho tool\n' > "$W/files/sub/tool"
: > "$W/files/empty"
head -c 70000 /dev/urandom > "$W/files/random.bin"   # several 64 KiB blocks
# gen_init_cpio takes a file's mtime from the host; ours is the epoch.
touch -d "@$EPOCH" "$W/files/hello.txt" "$W/files/sub/tool" "$W/files/empty" "$W/files/random.bin"

export MD_T_FILES="$W/files" MD_T_SUB=sub
cat > "$W/all.spec" <<'EOF'
# every line type of usr/gen_init_cpio.c
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/sda1 0660 0 6 b 8 1
dir /bin 0755 0 0
dir /etc 0750 0 0
dir /root 0700 0 0
dir /tmp 1777 0 0
dir /run 0755 0 0
dir /data 0755 1000 1000
file /bin/tool ${MD_T_FILES}/${MD_T_SUB}/tool 0755 0 0
file /etc/hello files/hello.txt 0644 1000 100 /etc/hello.hard /bin/hello.hard2
file /etc/empty files/empty 0600 0 0
file /data/random.bin files/random.bin 0444 1000 1000
slink /bin/sh tool 0777 0 0
slink /etc/abs /etc/hello 0777 0 0
pipe /run/fifo 0620 0 0
sock /run/sock 0755 12 34
EOF

# gen_init_cpio resolves relative locations against the cwd, we against the
# spec's directory: run it from there.
(cd "$W" && "$T/gen_init_cpio" -t "$EPOCH" all.spec) > "$T/kernel.cpio" ||
    md_die "gen_init_cpio failed"
(cd / && "$MDIMG" initramfs -q --spec "$W/all.spec" --epoch "$EPOCH" -o "$T/ours.cpio") ||
    md_die "mdimg initramfs --spec failed"

# ---- listings ----------------------------------------------------------------
listing() {
    cpio -itv --numeric-uid-gid --quiet < "$1" | awk '{ $1 = $1; print }' | sort
}
normalise() {
    awk '{ if ($1 ~ /^l/) $5 = "-"
           if ($1 ~ /^[ps]/) $2 = "-"
           if ($1 ~ /^-/ && $2 > 1) { linked += $5; $5 = "-" }
           print }
         END { print "hard-linked data bytes: " linked }' "$1" | sort
}
listing "$T/kernel.cpio" > "$T/kernel.list"
listing "$T/ours.cpio" > "$T/ours.list.all"
# ours starts with the root ".", which gen_init_cpio does not write (the
# kernel then leaves "/" at 1777): checked here, compared without it
grep -qx 'drwxr-xr-x 9 0 0 0 Nov 14 2023 \.' "$T/ours.list.all" ||
    { cat "$T/ours.list.all" >&2; md_die "no root entry '.' (0755 0:0, 9 links)"; }
grep -vx 'drwxr-xr-x 9 0 0 0 Nov 14 2023 \.' "$T/ours.list.all" > "$T/ours.list"
normalise "$T/kernel.list" > "$T/kernel.norm"
normalise "$T/ours.list" > "$T/ours.norm"
if ! diff -u "$T/kernel.norm" "$T/ours.norm" >&2; then
    md_die "cpio -itv listings differ (- gen_init_cpio, + ours)"
fi
# the comparison means something only if the listing is the expected one
[ "$(wc -l < "$T/ours.list")" -eq 19 ] || { cat "$T/ours.list" >&2; md_die "expected 19 entries"; }
grep -qx -- '-rw-r--r-- 3 1000 100 0 Nov 14 2023 etc/hello' "$T/ours.list" ||
    { cat "$T/ours.list" >&2; md_die "etc/hello: expected 3 links, size 0 (data on the last link)"; }
grep -qx -- '-rw-r--r-- 3 1000 100 17 Nov 14 2023 etc/hello.hard' "$T/ours.list" ||
    md_die "etc/hello.hard: expected the data on the last link"
grep -qx 'crw------- 1 0 0 5, 1 Nov 14 2023 dev/console' "$T/ours.list" || md_die "dev/console"
grep -qx 'brw-rw---- 1 0 6 8, 1 Nov 14 2023 dev/sda1' "$T/ours.list" || md_die "dev/sda1"
grep -qx 'drwxrwxrwt 2 0 0 0 Nov 14 2023 tmp' "$T/ours.list" || md_die "tmp 1777"
grep -q '^prw--w---- .* run/fifo$' "$T/ours.list" || md_die "run/fifo"
grep -q '^srwxr-xr-x 1 12 34 .* run/sock$' "$T/ours.list" || md_die "run/sock"
grep -q '^lrwxrwxrwx .* bin/sh -> tool$' "$T/ours.list" || md_die "bin/sh"

# ---- unpacked trees ----------------------------------------------------------
# Device nodes cannot be created by a normal user, bsdtar turns sockets into
# plain files: both are compared in the listing
# above, left out here.  Hard links are checked through link counts.
unpack() {
    mkdir "$2"
    (cd "$2" && bsdtar -x --no-same-owner --exclude 'dev/*' --exclude run/sock -f "$1") || md_die "bsdtar -x $1"
}
unpack "$T/kernel.cpio" "$T/k"
unpack "$T/ours.cpio" "$T/o"
# types, modes, link counts, sizes, mtimes, symlink targets of everything ...
meta() { (cd "$1" && find . -mindepth 1 -printf '%p %y %m %n %s %T@ %l\n' | sort); }
meta "$T/k" > "$T/k.meta"
meta "$T/o" > "$T/o.meta"
diff -u "$T/k.meta" "$T/o.meta" >&2 || md_die "unpacked metadata differs (- gen_init_cpio, + ours)"
# ... and the contents of the regular files (diff -r trips over fifos)
(cd "$T/k" && find . -type f | sort) > "$T/files"
[ "$(wc -l < "$T/files")" -eq 6 ] || { cat "$T/files" >&2; md_die "expected 6 regular files unpacked"; }
while read -r f; do
    cmp "$T/k/$f" "$T/o/$f" || md_die "$f: contents differ"
done < "$T/files"
cmp "$W/files/random.bin" "$T/o/data/random.bin" || md_die "random.bin content"
[ "$(stat -c %h "$T/o/bin/hello.hard2")" -eq 3 ] || md_die "hard links not restored as a group"
[ "$(stat -c %i "$T/o/etc/hello")" = "$(stat -c %i "$T/o/bin/hello.hard2")" ] ||
    md_die "hard links unpack as separate files"

# ---- errors name the spec line; nothing is written ---------------------------
bad() {
    printf '%s\n' "dir /ok 0755 0 0" "$1" > "$W/bad.spec"
    rm -f "$T/bad.cpio"
    if "$MDIMG" initramfs -q --spec "$W/bad.spec" -o "$T/bad.cpio" 2> "$T/err"; then
        md_die "accepted bad line: $1"
    else
        rc=$?
    fi
    [ "$rc" -eq 1 ] || md_die "exit $rc for: $1"
    grep -qF -- "$W/bad.spec:2: $2" "$T/err" || { cat "$T/err" >&2; md_die "message for: $1"; }
    [ ! -e "$T/bad.cpio" ] || md_die "output left behind for: $1"
    [ -z "$(find "$T" -maxdepth 1 -name '.bad.cpio*')" ] || md_die "temporary file left for: $1"
}
bad "fiel /x files/hello.txt 0644 0 0" "unknown type 'fiel'"
bad "dir /x 9x9 0 0" "bad mode '9x9'"
bad "nod /x 0600 0 0 c 5" "missing field"
bad "dir /x 0755 root 0" "bad uid 'root'"
bad "file /../x files/hello.txt 0644 0 0" "'/../x': path escapes the root with '..'"
bad "file /x files/nothere 0644 0 0" "file location '$W/files/nothere': No such file or directory"
unset MD_T_UNSET 2>/dev/null || true
bad "file /x \${MD_T_UNSET}/hello.txt 0644 0 0" "file location '/hello.txt': No such file or directory (\${MD_T_UNSET} not set)"

md_done "PASS: gen_init_cpio and mdimg agree on $(wc -l < "$T/ours.list") entries"
