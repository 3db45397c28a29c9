#!/bin/sh
# Reproducibility: the same input gives the same bytes whatever the cwd,
# umask, TZ, the copy's location, the order the files were created in,
# their mtimes and the number of compression threads; and a real change (content, mode, SOURCE_DATE_EPOCH) does
# change the output, so that the comparisons can fail.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

MDIMG=${MDIMG:?MDIMG not set}
md_need_tool sha256sum

T=$(mktemp -d /tmp/t-determinism.XXXXXX)
trap 'rm -rf "$T"' EXIT
export LC_ALL=C
unset TZ

# mk_tree DIR forward|reverse MTIME: the same tree, created in a different
# order, with different mtimes; modes are set explicitly (umask-proof).
mk_tree() {
    d=$1
    if [ "$2" = forward ]; then
        names="a b c d e f g"
    else
        names="g f e d c b a"
    fi
    mkdir -p "$d"
    for n in $names; do
        case $n in
        a) mkdir -p "$d/etc/conf.d" && printf 'x=1\n' > "$d/etc/conf.d/x.conf" ;;
        b) mkdir -p "$d/bin" && printf '#!/bin/sh\necho hi\n' > "$d/bin/hi" ;;
        c) mkdir -p "$d/data" && seq 1 200000 > "$d/data/numbers" ;;
        d) mkdir -p "$d/etc" && printf 'motd\n' > "$d/etc/motd" ;;
        e) mkdir -p "$d/bin" "$d/data" && ln -s hi "$d/bin/hello" && ln -s /nonexistent "$d/data/dangling" ;;
        f) mkdir -p "$d/var/empty" ;;
        g) mkdir -p "$d/secret" && printf 'pw\n' > "$d/secret/key" ;;
        esac
    done
    ln "$d/etc/motd" "$d/etc/motd.link"
    chmod 0755 "$d" "$d/etc" "$d/etc/conf.d" "$d/bin" "$d/data" "$d/var" "$d/var/empty"
    chmod 0700 "$d/secret"
    chmod 0600 "$d/secret/key"
    chmod 0644 "$d/etc/conf.d/x.conf" "$d/data/numbers" "$d/etc/motd"
    chmod 0755 "$d/bin/hi"
    find "$d" -exec touch -h -d "$3" {} +
}

mk_tree "$T/first/src" forward "2001-02-03 04:05:06"
(umask 077 && mk_tree "$T/elsewhere/deeper/copy" reverse "2030-12-31 23:59:59")

export SOURCE_DATE_EPOCH=1600000000

# build NAME DIR CWD TZ UMASK [mdimg args...]: build and print the hash
build() {
    name=$1 dir=$2 cwd=$3 tz=$4 um=$5
    shift 5
    (cd "$cwd" && umask "$um" && TZ=$tz "$MDIMG" initramfs -q -o "$T/$name" "$@" "$dir") ||
        md_die "mdimg initramfs failed for $name"
    sha256sum < "$T/$name" | cut -d' ' -f1
}

n=0
for c in none gzip xz zstd lz4; do
    # (1.3 MB of numbers: several gzip chunks)
    h1=$(build "one.$c" "$T/first/src" / UTC 022 --compress "$c" --threads 1)
    h2=$(build "two.$c" "$T/elsewhere/deeper/copy" "$T/elsewhere" Asia/Tokyo 077 --compress "$c" --threads 8)
    [ "$h1" = "$h2" ] || md_die "$c: two builds of the same tree differ ($h1 vs $h2)"
    n=$((n + 1))
done
# the archive holds what we think it holds (so equal hashes mean something)
[ "$(cpio -it --quiet < "$T/one.none" | wc -l)" -eq 16 ] || # 15 entries and the root "."
    { cpio -it < "$T/one.none" >&2; md_die "unexpected entry count"; }
cpio -i --quiet --to-stdout data/numbers < "$T/one.none" | cmp - "$T/first/src/data/numbers" ||
    md_die "data/numbers content"

# mtimes kept but all later than the epoch: clamped to it, still identical
h1=$(build keep1 "$T/first/src" / UTC 022 --keep-mtime)
h2=$(build keep2 "$T/elsewhere/deeper/copy" / UTC 022 --keep-mtime)
# first/src has 2001 mtimes (kept), the copy 2030 ones (clamped): must differ
[ "$h1" != "$h2" ] || md_die "--keep-mtime: mtimes before the epoch were not kept"
touch -d "2029-01-01" "$T/first/src" && find "$T/first/src" -exec touch -h -d "2029-01-01" {} +
h1=$(build keep3 "$T/first/src" / UTC 022 --keep-mtime)
[ "$h1" = "$h2" ] || md_die "--keep-mtime: mtimes after the epoch are not clamped"

# a spec source: same spec and files in two places, relative locations
for w in "$T/specA" "$T/x/specB"; do
    mkdir -p "$w/files"
    printf 'spec data\n' > "$w/files/data"
    chmod 0640 "$w/files/data"
    cat > "$w/list.spec" <<'EOF'
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
file /etc/data files/data 0640 10 20 /etc/data.link
slink /bin/sh busybox 0777 0 0
pipe /run/fifo 0600 0 0
EOF
done
touch -d "1999-01-01" "$T/specA/files/data"
(cd / && "$MDIMG" initramfs -q -o "$T/spec1" --spec "$T/specA/list.spec") || md_die "spec build 1"
(cd "$T/x" && umask 077 && TZ=America/New_York "$MDIMG" initramfs -q -o "$T/spec2" --spec specB/list.spec) ||
    md_die "spec build 2"
cmp "$T/spec1" "$T/spec2" || md_die "two builds of the same spec differ"

# BusyBox: same binary, different cwd and TZ
if [ -x /bin/busybox ] || md_missing_part /bin/busybox busybox-static; then
    (cd / && "$MDIMG" initramfs -q -o "$T/bb1" --compress gzip --busybox /bin/busybox "$T/first/src") ||
        md_die "busybox build 1"
    (cd "$T" && TZ=Europe/Paris "$MDIMG" initramfs -q -o "$T/bb2" --compress gzip --busybox /bin/busybox \
        "$T/elsewhere/deeper/copy") || md_die "busybox build 2"
    cmp "$T/bb1" "$T/bb2" || md_die "two BusyBox builds differ"
fi

# ---- and real changes do change the output ------------------------------------
base=$(sha256sum < "$T/one.gzip" | cut -d' ' -f1)
h=$(SOURCE_DATE_EPOCH=1600000001 build epoch "$T/first/src" / UTC 022 --compress gzip)
[ "$h" != "$base" ] || md_die "changing SOURCE_DATE_EPOCH did not change the output"
printf 'x=2\n' > "$T/elsewhere/deeper/copy/etc/conf.d/x.conf"
h=$(build content "$T/elsewhere/deeper/copy" / UTC 022 --compress gzip)
[ "$h" != "$base" ] || md_die "changing a file's content did not change the output"
printf 'x=1\n' > "$T/elsewhere/deeper/copy/etc/conf.d/x.conf"
chmod 0640 "$T/elsewhere/deeper/copy/etc/conf.d/x.conf"
h=$(build mode "$T/elsewhere/deeper/copy" / UTC 022 --compress gzip)
[ "$h" != "$base" ] || md_die "changing a file's mode did not change the output"
chmod 0644 "$T/elsewhere/deeper/copy/etc/conf.d/x.conf"
h=$(build back "$T/elsewhere/deeper/copy" / UTC 022 --compress gzip)
[ "$h" = "$base" ] || md_die "restoring the content and mode did not restore the output"

md_done "PASS: identical output for $n codecs, --keep-mtime, a spec and BusyBox; changes detected"
