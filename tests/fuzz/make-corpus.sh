#!/bin/sh
# Generate the seed corpus of one fuzz target into DIR (nothing binary is
# committed): small spec files and partition specs written out here, tar/
# cpio/zip/7z/xar archives made with tar, cpio, bsdtar and python3, and
# small ext2/ext3/ext4 and FAT12/16/32 images (whole-image and partitioned)
# made with mdimg itself.  $MDIMG is the mdimg to use (meson sets it).  A tool that is
# missing leaves its seeds out (with a note; a failure with CI=true).
# Usage: make-corpus.sh spec|parse|archive-ext|cpio|image|fat DIR
set -eu
. "${MD_TESTDIR:-$(dirname "$0")/..}/lib.sh"
[ $# = 2 ] || md_die "usage: make-corpus.sh TARGET DIR"
target=$1
out=$(mkdir -p "$2" && cd "$2" && pwd)
MDIMG=${MDIMG:-mdimg}
SOURCE_DATE_EPOCH=1700000000
export SOURCE_DATE_EPOCH
md_tmpdir md-corpus
cd "$T"

# seed NAME: copy stdin to the corpus as NAME.
seed() {
    cat > "$out/$1"
}

# ---- the gen_init_cpio spec parser -------------------------------------------
spec_seeds() {
    seed basic.spec <<'EOF'
# a comment, then every type of line
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/sda 0660 0 6 b 8 0
dir /bin 755 0 0
slink /bin/sh busybox 777 0 0
pipe /run/fifo 0600 0 0
sock /run/sock 0600 0 0
file /etc/passwd /etc/passwd 0644 0 0
file /etc/hosts /etc/hosts 644 0 0 /etc/hosts.link
EOF
    seed vars.spec <<'EOF'
file /etc/x ${HOME}/none 0644 0 0
file /etc/y ${UNSET_VAR_FOR_FUZZ}/etc/passwd 0600 1000 1000
dir	/tabs	0700	1	2
EOF
    seed errors.spec <<'EOF'
dir /a 0755 0 0 extra
fiel /b /etc/passwd 0644 0 0
nod /c 0644 0 0 x 1 2
dir ../escape 0755 0 0
slink /d
file /e relative/path 0644 0 0
EOF
    printf 'dir /a 0755 0 0\r\ndir /a/b 07777 4294967295 4294967295\n' | seed crlf.spec
    printf 'dir /nonl 0755 0 0' | seed nonl.spec
    printf 'nod /dev/null 0666 0 0 c 1 3\nnod /dev/big 0600 0 0 b 4095 1048575\n' | seed nodes.spec
}

# ---- size, partition-spec and name parsers (one table per input) ------------
parse_seeds() {
    printf 'gpt\n1M:bios-boot\n2M:efi:name=ESP\nrest:linux:bootable,name=root\n' | seed gpt
    printf 'mbr\n25%%:efi\n1M:swap\n100%%::bootable\n' | seed mbr
    printf 'dos\n1MiB:0x83\n2M:83\nrest:82\n' | seed dos
    printf 'gpt\n1M::uuid=01234567-89ab-cdef-0123-456789abcdef\n50%%:0fc63daf-8483-4772-8e79-3d69d8477de4\n' | seed uuid
    printf 'gpt\nrest:swap:name=a,name=b,bootable\n1K\n' | seed flags
    printf 'none\n' | seed none
    printf '64M' | seed size
    printf '18446744073709551615' | seed size-max
    printf '17179869184T' | seed size-over
    printf '1KiB' | seed size-kib
    # found by fuzz-parse: an MBR partition of type 0xee (tests/t-fuzz-found.sh)
    printf 'mbr\n1M:ee' | seed found-mbr-ee
    for n in ext2 ext3 ext4 gzip xz zstd lz4 zst gz none; do
        printf '%s' "$n" | seed "name-$n"
    done
}

# ---- archives: a small tree in many formats ----------------------------------
make_tree() {
    mkdir -p tree/etc tree/bin tree/empty "tree/long/$(printf 'd%.0s' $(seq 1 60))"
    echo "hello" > tree/etc/hello
    printf 'root:x:0:0::/root:/bin/sh\n' > tree/etc/passwd
    ln tree/etc/hello tree/etc/hello.link
    ln -s ../etc/hello tree/bin/rel
    ln -s /etc/passwd tree/bin/abs
    : > tree/empty-file
    head -c 3000 /etc/services > tree/etc/services 2>/dev/null || seq 1 600 > tree/etc/services
    printf 'x' > "tree/long/$(printf 'd%.0s' $(seq 1 60))/$(printf 'f%.0s' $(seq 1 120))"
    chmod 4755 tree/bin/rel 2>/dev/null || true
    chmod 1777 tree/empty
}

archive_seeds() {
    make_tree
    if md_want_tool tar; then
        for f in gnu ustar pax v7; do
            tar --format=$f -C tree -cf "$out/tar-$f.tar" . 2>/dev/null || rm -f "$out/tar-$f.tar"
        done
        tar --format=gnu -C tree -czf "$out/tar-gnu.tar.gz" .
    fi
    if md_want_tool cpio; then
        for f in newc crc odc bin; do
            (cd tree && find . | LC_ALL=C sort | cpio -o -H $f --quiet) > "$out/cpio-$f.cpio"
        done
    fi
    if md_want_tool bsdtar libarchive-tools; then
        for f in zip 7zip xar ar shar mtree; do
            case $f in
            ar) bsdtar -c --format ar -f "$out/bsdtar.ar" -C tree/etc hello passwd ;;
            # mtree manifests name host files: the library must refuse them
            *) bsdtar -c --format $f -f "$out/bsdtar.$f" -C tree . ;;
            esac 2>/dev/null || rm -f "$out/bsdtar.$f"
        done
    fi
    newc_seeds
}

# newc archives: cpio's, mdimg's own (with nodes, all compressions), a
# hand-made one with a hard-link group (data on the last link) and an
# uncompressed archive followed by a compressed one (early microcode).
newc_seeds() {
    if md_want_tool cpio; then
        (cd tree && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$out/cpio-newc.cpio"
    fi
    cat > nodes.spec <<'EOF'
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/sda 0660 0 6 b 8 0
pipe /run/fifo 0600 0 0
sock /run/sock 0600 0 0
slink /init /bin/sh 0777 0 0
EOF
    "$MDIMG" -q initramfs -o "$out/mdimg-spec.cpio" --spec nodes.spec
    "$MDIMG" -q initramfs -o "$out/mdimg-tree.cpio" tree
    for c in gzip xz zstd lz4; do
        "$MDIMG" -q initramfs -o "$out/mdimg-$c.cpio" -c $c --spec nodes.spec
    done
    cat "$out/mdimg-spec.cpio" "$out/mdimg-gzip.cpio" > "$out/mdimg-concat.cpio"
    # found by fuzz-cpio: a newc header declaring 4 GiB of data (t-fuzz-found.sh)
    printf '070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x' \
        1 33188 0 0 1 0 4294967280 0 0 0 0 2 0 > "$out/found-huge.cpio"
    printf 'a\0' >> "$out/found-huge.cpio"
    if md_want_tool python3; then
        python3 - "$out" <<'EOF'
import io, os, sys, tarfile, zipfile
out = sys.argv[1]

def newc(entries):
    b = b""
    for ino, (name, mode, nlink, data) in enumerate(entries, 1):
        n = name.encode() + b"\0"
        h = "070701" + "".join("%08x" % v for v in (
            ino if nlink == 1 else 99, mode, 0, 0, nlink, 1700000000, len(data),
            0, 0, 0, 0, len(n), 0))
        b += h.encode() + n
        b += b"\0" * (-len(b) % 4) + data
        b += b"\0" * (-len(b) % 4)
    n = b"TRAILER!!!\0"
    b += ("070701" + "%08x" % 0 * 4 + "%08x" % 1 + "%08x" % 0 * 6 +
          "%08x" % len(n) + "%08x" % 0).encode() + n
    return b + b"\0" * (-len(b) % 512)

# a hard-link group as the kernel's newc writer stores it: data on the last
open(out + "/py-hardlinks.cpio", "wb").write(newc([
    ("a", 0o100644, 3, b""), ("b", 0o100644, 3, b""), ("c", 0o100644, 3, b"shared\n"),
    ("dir", 0o040755, 2, b""), ("dir/link", 0o120777, 1, b"../a")]))

t = io.BytesIO()
with tarfile.open(fileobj=t, mode="w", format=tarfile.PAX_FORMAT) as tf:
    for name, typ, extra in (("dev/null", tarfile.CHRTYPE, (1, 3)),
                             ("dev/sda", tarfile.BLKTYPE, (8, 0)),
                             ("run/fifo", tarfile.FIFOTYPE, None)):
        ti = tarfile.TarInfo(name)
        ti.type = typ
        if extra:
            ti.devmajor, ti.devminor = extra
        tf.addfile(ti)
    ti = tarfile.TarInfo("etc/xattr")
    ti.pax_headers = {"SCHILY.xattr.user.test": "value",
                      "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}
    ti.size = 2
    tf.addfile(ti, io.BytesIO(b"x\n"))
open(out + "/py-nodes-xattr.tar", "wb").write(t.getvalue())

with zipfile.ZipFile(out + "/py.zip", "w") as z:
    z.writestr("etc/hostname", "fuzz\n")
    z.writestr("dir/", "")
EOF
    fi
}

# ---- images: small ext filesystems made with mdimg ---------------------------
image_seeds() {
    make_tree
    mkdir -p small/etc small/bin
    cp tree/etc/hello tree/etc/services small/etc/
    ln -s ../etc/hello small/bin/rel
    "$MDIMG" -q disk create "$out/ext2-64k.img" --size 64K --fs ext2 small
    "$MDIMG" -q disk create "$out/ext4-256k.img" --size 256K --fs ext4 tree
    # with the smallest journal (1024 blocks), and with 4 KiB blocks
    "$MDIMG" -q disk create ext3.img --size 1280K
    "$MDIMG" -q disk format ext3.img --fs ext3 --journal-blocks 1024
    "$MDIMG" -q disk populate ext3.img small
    mv ext3.img "$out/ext3-journal.img"
    "$MDIMG" -q disk create ext4.img --size 256K
    "$MDIMG" -q disk format ext4.img --fs ext4 --block-size 4096 -N 32
    "$MDIMG" -q disk populate ext4.img tree
    mv ext4.img "$out/ext4-4k.img"
    cat > nodes.spec <<'EOF'
nod /dev/console 0600 0 0 c 5 1
pipe /fifo 0600 0 0
slink /long-link /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0777 0 0
EOF
    "$MDIMG" -q disk create "$out/ext2-nodes.img" --size 64K --fs ext2 --spec nodes.spec
    # found by fuzz-image: s_first_data_block = 9 (t-fuzz-found.sh)
    cp "$out/ext2-64k.img" "$out/found-first-data-block.img"
    printf '\011' | dd of="$out/found-first-data-block.img" bs=1 seek=1044 conv=notrunc status=none
    if md_want_tool sfdisk fdisk; then
        # an MBR and a GPT whose one partition starts right after the table,
        # holding the 64 KiB ext2 filesystem (mdimg aligns to 1 MiB)
        for label in dos gpt; do
            case $label in
            dos) start=1 size=$((80 * 1024)) id=0x12345678 part=bootable ;;
            gpt) start=34 size=$((17408 + 64 * 1024 + 17408)) part=uuid=01234567-89ab-cdef-0123-456789abcdef
                 id=fedcba98-7654-3210-fedc-ba9876543210 ;;
            esac
            truncate -s "$size" p.img
            printf 'label: %s\nlabel-id: %s\nstart=%s, size=128, type=L, %s\n' \
                "$label" "$id" "$start" "$part" |
                sfdisk -q --no-reread --no-tell-kernel p.img >/dev/null
            dd if="$out/ext2-64k.img" of=p.img bs=512 seek="$start" conv=notrunc status=none
            mv p.img "$out/$label-ext2.img"
        done
    fi
}

# ---- FAT images made with mdimg ----------------------------------------------
# fuzz-fat extends its input with zeros to 64 MiB: a seed is an image
# without its trailing zeros (trim_seed), so the 34 MiB FAT32 one is small.

# trim_seed IMG NAME: IMG without its trailing zeros, as the seed NAME.
trim_seed() {
    if md_want_tool python3; then
        python3 -c 'import sys; sys.stdout.buffer.write(open(sys.argv[1], "rb").read().rstrip(b"\0"))' \
            "$1" | seed "$2"
    else
        seed "$2" <"$1"
    fi
}

fat_tree() {
    mkdir -p fat/EFI/BOOT "fat/Nested/Deeper/Deepest level with a long name" fat/lower \
        fat/docs "fat/empty dir"
    printf 'MZ stub\n' >fat/EFI/BOOT/BOOTX64.EFI
    seq 1 1200 >fat/Nested/several-clusters.txt   # 4,893 bytes: ten 512-byte clusters
    printf 'upper\n' >fat/README.TXT
    printf 'lower\n' >fat/lower/notes.txt
    printf 'mixed\n' >fat/lower/MixedCase.Txt
    printf 'spaces\n' >"fat/docs/A file name with spaces.text"
    printf 'dots\n' >fat/docs/archive.tar.gz
    printf 'utf-8\n' >"fat/docs/caf$(printf '\303\251') na$(printf '\303\257')ve.txt"
    printf 'deep\n' >"fat/Nested/Deeper/Deepest level with a long name/leaf"
    : >fat/docs/empty
    # a directory of more than one cluster: 24 long names of 3 slots each
    for i in $(seq 1 24); do
        printf '%s\n' "$i" >"fat/docs/a long file name number $i.txt"
    done
}

fat_seeds() {
    fat_tree
    "$MDIMG" -q disk create f.img --size 256K --fs fat12 --label FUZZ12 fat
    trim_seed f.img fat12.img
    "$MDIMG" -q disk create esp.img --size 128K --fs vfat fat/EFI
    trim_seed esp.img fat12-efi.img
    # found by fuzz-fat: a file's entry says 4 GiB (t-fuzz-found.sh, test-fat)
    cp esp.img found.img
    off=$(grep -obUa 'BOOTX64 EFI' found.img | head -n 1 | cut -d: -f1)
    printf '\360\377\377\377' | dd of=found.img bs=1 seek=$((off + 28)) conv=notrunc status=none
    trim_seed found.img found-fat-size.img
    # found by fuzz-fat: a short entry of blanks was listed with an empty name
    cp esp.img found.img
    printf '           ' | dd of=found.img bs=1 seek="$off" conv=notrunc status=none
    trim_seed found.img found-fat-blank-name.img
    # FAT16 and FAT32 with 512-byte clusters: the smallest images of each
    "$MDIMG" -q disk create f.img --force --size 2304K
    "$MDIMG" -q disk format f.img --fs fat16 --cluster-size 512 --label FUZZ16
    "$MDIMG" -q disk populate f.img fat
    trim_seed f.img fat16.img
    "$MDIMG" -q disk create f.img --force --size 34M
    "$MDIMG" -q disk format f.img --fs fat32 --cluster-size 512 --label FUZZ32
    "$MDIMG" -q disk populate f.img fat
    trim_seed f.img fat32.img
    # an EFI System partition in front of a Linux one, MBR and GPT, made by
    # sfdisk right after the table (mdimg aligns to 1 MiB: a 1 MiB seed), the
    # 128 KiB FAT12 filesystem copied in
    if md_want_tool sfdisk fdisk; then
        for label in dos gpt; do
            case $label in
            dos) start=1 size=$((200 * 1024)) ;;
            gpt) start=34 size=$((17408 + 200 * 1024 + 17408)) ;;
            esac
            rm -f p.img
            truncate -s "$size" p.img
            printf 'label: %s\nstart=%s, size=256, type=U\nsize=64, type=L\n' "$label" "$start" |
                sfdisk -q --no-reread --no-tell-kernel p.img >/dev/null
            dd if=esp.img of=p.img bs=512 seek="$start" conv=notrunc status=none
            trim_seed p.img "$label-esp.img"
        done
    fi
    rm -f f.img esp.img found.img p.img
}

case $target in
spec) spec_seeds ;;
parse) parse_seeds ;;
archive-ext) archive_seeds ;;
cpio) make_tree; newc_seeds ;;
image) image_seeds ;;
fat) fat_seeds ;;
*) md_die "make-corpus.sh: unknown target $target" ;;
esac
md_done
