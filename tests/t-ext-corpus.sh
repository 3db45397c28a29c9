#!/bin/sh
# Randomized corpus (fixed seeds): trees of files around block boundaries,
# sparse files, deep paths, 255-byte names, symlinks of 1..bs-1 bytes, hard
# links, device nodes/FIFOs/sockets (via a spec file: no root needed), odd
# modes and owners.  Each tree is formatted + populated for ext2, ext3 and
# ext4 by mdimg, checked with `e2fsck -fn`, extracted with
# `debugfs -R 'rdump / OUT'` and compared with the source (content, types,
# modes, link targets, hard links); owners, inode sharing and device
# numbers are read with debugfs (ls -p / stat), never with our own reader.
# Plus a few big cases: a 64 MiB file, a 10000-entry directory.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

: "${MDIMG:?}"
md_need_tool python3
md_need_tool debugfs
md_need_tool e2fsck

TREES=${MD_CORPUS_TREES:-50}
tmp=$(mktemp -d /tmp/t-ext-corpus.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export SOURCE_DATE_EPOCH=1700000000

cat >"$tmp/gen.py" <<'EOF'
import os, random, stat, sys

def gen(root, seed, bs):
    """Write tree number @seed under root/tree, its spec file root/spec."""
    rnd = random.Random(seed)
    tree = os.path.join(root, "tree")
    os.makedirs(tree)
    sizes = [0, 1, bs - 1, bs, bs + 1, 1023, 1024, 1025, 4095, 4096, 4097,
             12 * bs - 1, 12 * bs, 12 * bs + 1, 65535, 65536, 65537]
    dirs = [tree]
    files = []
    def name(n=None):
        n = n or rnd.randint(1, 24)
        alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789_-.,+=@ %"
        s = "".join(rnd.choice(alpha) for _ in range(n))
        if s in (".", ".."):
            s = "x" + s
        return s
    nent = rnd.randint(10, 60)
    for i in range(nent):
        parent = rnd.choice(dirs)
        kind = rnd.random()
        path = os.path.join(parent, name(255 if rnd.random() < 0.05 else None))
        if os.path.lexists(path):
            continue
        if kind < 0.2:
            os.mkdir(path)
            os.chmod(path, 0o700 | rnd.choice([0, 0o55, 0o50, 0o5, 0o1055, 0o2070]))
            dirs.append(path)
        elif kind < 0.7:
            size = rnd.choice(sizes) if rnd.random() < 0.7 else rnd.randint(0, 300000)
            with open(path, "wb") as f:
                f.write(rnd.randbytes(size))
            os.chmod(path, 0o400 | rnd.choice([0, 0o644, 0o755, 0o4755, 0o2711, 0o1777, 0o600]))
            files.append(path)
        elif kind < 0.78:
            # sparse: data, a hole, data (and sometimes a hole at the end)
            with open(path, "wb") as f:
                f.write(rnd.randbytes(rnd.randint(1, 3 * bs)))
                f.seek(rnd.randint(1, 200) * bs + rnd.randint(0, bs), 1)
                f.write(rnd.randbytes(rnd.randint(1, 2 * bs)))
                if rnd.random() < 0.5:
                    f.truncate(f.tell() + rnd.randint(1, 100) * bs)
            files.append(path)
        elif kind < 0.9:
            n = rnd.choice([1, 2, 59, 60, 61, bs - 1, rnd.randint(1, bs - 1)])
            target = "".join(rnd.choice("abc/._-xyz") for _ in range(n))
            os.symlink(target, path)
        elif files:
            os.link(rnd.choice(files), path)
    # a deep path
    deep = tree
    for d in range(rnd.randint(5, 40)):
        deep = os.path.join(deep, "d%d" % d)
    os.makedirs(deep)
    with open(os.path.join(deep, "leaf"), "w") as f:
        f.write("deep %d\n" % seed)
    # spec: nodes, fifos, sockets and owners that need root on the host
    with open(os.path.join(root, "spec"), "w") as f:
        f.write("dir /specdir 0751 %d %d\n" % (rnd.randint(1, 65535), rnd.randint(1, 65535)))
        for i in range(rnd.randint(1, 6)):
            maj, mnr = rnd.choice([(1, 3), (4, 64), (8, 0), (259, 70000), (4095, 1048575), (0, 0)])
            f.write("nod /specdir/n%d 0%o %d %d %s %d %d\n" % (
                i, rnd.choice([0o600, 0o620, 0o666]), rnd.randint(0, 70000), rnd.randint(0, 70000),
                rnd.choice("cb"), maj, mnr))
        f.write("pipe /specdir/fifo 0644 0 0\n")
        f.write("sock /specdir/sock 0755 123 456\n")
        f.write("slink /specdir/link /specdir/n0 0777 0 0\n")
        f.write("file /specdir/owned %s 0640 70000 80000\n" % os.path.join(deep, "leaf"))

def walk(top):
    out = {}
    for dp, dn, fn in os.walk(top):
        for n in dn + fn:
            p = os.path.join(dp, n)
            out[os.path.relpath(p, top)] = os.lstat(p)
    return out

def parse_lsp(path):
    """debugfs -f session of 'ls -p "/dir"': {relpath: (mode, uid, gid, ino)}."""
    out, cur = {}, None
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("debugfs: ls -p "):
                cur = line[len("debugfs: ls -p "):].strip('"').strip("/")
                continue
            parts = line.split("/")
            if cur is None or len(parts) < 7 or parts[0] != "":
                continue
            ino, mode, uid, gid = int(parts[1]), int(parts[2], 8), int(parts[3]), int(parts[4])
            name = "/".join(parts[5:-2])
            if name in (".", ".."):
                continue
            out[(cur + "/" + name) if cur else name] = (mode, uid, gid, ino)
    return out

def compare(src, dump, lsp):
    """Types, modes, owners (0:0), contents, link targets, hard-link groups."""
    a, b, meta = walk(src), walk(dump), parse_lsp(lsp)
    for d in (b, meta):
        for k in list(d):
            if k == "lost+found" or k.startswith("lost+found/") or k == "specdir" or k.startswith("specdir/"):
                del d[k]
    if set(a) != set(b) or set(a) != set(meta):
        print("path sets differ: only in source %s, only in rdump %s, only in ls -p %s" % (
            sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5], sorted(set(meta) - set(a))[:5]))
        return 1
    inos = {}
    for k in sorted(a):
        sa, sb = a[k], b[k]
        mode, uid, gid, ino = meta[k]
        if sa.st_mode != mode:
            print("%s: mode %o in the source, %o in the image" % (k, sa.st_mode, mode)); return 1
        if (uid, gid) != (0, 0):
            print("%s: owner %d:%d, not squashed to 0:0" % (k, uid, gid)); return 1
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
            print("%s: rdump type %o != %o" % (k, sa.st_mode, sb.st_mode)); return 1
        pa, pb = os.path.join(src, k), os.path.join(dump, k)
        if stat.S_ISLNK(sa.st_mode):
            if os.readlink(pa) != os.readlink(pb):
                print("%s: link target differs" % k); return 1
        elif stat.S_ISREG(sa.st_mode):
            if sa.st_size != sb.st_size:
                print("%s: size %d != %d" % (k, sa.st_size, sb.st_size)); return 1
            with open(pa, "rb") as f1, open(pb, "rb") as f2:
                if f1.read() != f2.read():
                    print("%s: content differs" % k); return 1
            # same source inode <=> same image inode
            if inos.setdefault(("s", sa.st_ino), ino) != ino or inos.setdefault(("i", ino), sa.st_ino) != sa.st_ino:
                print("%s: hard links not preserved" % k); return 1
    return 0

if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3], sys.argv[4]))
EOF

# md_die after the spec entries of the last debugfs listing, if there is one
corpus_die() {
    [ -f "$tmp/w/lsp" ] && grep -a "fifo\|sock\|link/\|owned" "$tmp/w/lsp" | head >&2
    md_die "$*"
}

# debugfs "ls -p" of every directory: /ino/mode/uid/gid/name/size/
lsp_all() { # IMG DIRLIST OUT
    sed 's|^|ls -p "/|; s|$|"|' "$2" >"$tmp/cmds"
    debugfs -f "$tmp/cmds" "$1" >"$3" 2>/dev/null
}

check_tree() { # seed fstype bs mbr
    seed=$1 fstype=$2 bs=$3 mbr=$4
    w="$tmp/w"
    rm -rf "$w" && mkdir -p "$w"
    python3 "$tmp/gen.py" gen "$w" "$seed" "$bs"
    kb=$(du -sk "$w/tree" | cut -f1)
    size=$(( (kb * 2 + 8192) / 1024 + 8 ))M
    img="$w/img"
    if [ "$mbr" = 1 ]; then
        "$MDIMG" -q disk create "$img" --size "$size" --table mbr --part rest:linux:bootable
        part=1 dev="$img?offset=1048576"
    else
        "$MDIMG" -q disk create "$img" --size "$size"
        part=0 dev="$img"
    fi
    "$MDIMG" -q disk format "$img" --part $part --fs "$fstype" --block-size "$bs" \
        || corpus_die "seed $seed $fstype: format"
    "$MDIMG" -q disk populate "$img" --part $part "$w/tree" --spec "$w/spec" \
        || corpus_die "seed $seed $fstype bs $bs: populate"
    e2fsck -fn "$dev" >"$w/fsck" 2>&1 || { cat "$w/fsck" >&2; corpus_die "seed $seed $fstype bs $bs: e2fsck -fn"; }
    mkdir "$w/out"
    debugfs -R "rdump / $w/out" "$dev" >/dev/null 2>&1 || corpus_die "seed $seed: rdump"
    (cd "$w/tree" && find . -type d | sed 's|^\./||; s|^\.$||') >"$w/dirs"
    echo specdir >>"$w/dirs"
    lsp_all "$dev" "$w/dirs" "$w/lsp"
    python3 "$tmp/gen.py" cmp "$w/tree" "$w/out" "$w/lsp" || corpus_die "seed $seed $fstype bs $bs: tree differs"
    grep -q "^/[0-9]*/120777/0/0/link/" "$w/lsp" || corpus_die "seed $seed: spec symlink"
    grep -q "^/[0-9]*/100640/70000/80000/owned/" "$w/lsp" || corpus_die "seed $seed: spec file owner"
    grep -q "^/[0-9]*/010644/0/0/fifo/" "$w/lsp" || corpus_die "seed $seed: spec fifo"
    grep -q "^/[0-9]*/140755/123/456/sock/" "$w/lsp" || corpus_die "seed $seed: spec socket"
    # device numbers (independent: debugfs stat) against the spec
    grep '^nod ' "$w/spec" | while read -r _ p mode uid gid t maj mnr; do
        out=$(debugfs -R "stat $p" "$dev" 2>/dev/null)
        case "$t" in c) want=character;; b) want=block;; esac
        echo "$out" | grep -q "Type: $want" || corpus_die "seed $seed: $p type"
        echo "$out" | grep -q "User: *$uid *Group: *$gid " || corpus_die "seed $seed: $p owner"
        mm=$(printf '%02d:%02d' "$maj" "$mnr")
        echo "$out" | grep -q "Device major/minor number: $mm " || {
            echo "$out" | grep Device >&2; corpus_die "seed $seed: $p rdev want $mm"; }
    done
    rm -rf "$w"
}

n=0
seed=1
while [ $n -lt "$TREES" ]; do
    for fstype in ext2 ext3 ext4; do
        bs=1024; [ $((seed % 2)) = 0 ] && bs=4096
        check_tree "$seed" "$fstype" "$bs" $((seed % 3 == 0))
    done
    n=$((n + 1))
    seed=$((seed + 1))
done
md_ok "$n trees x ext2/ext3/ext4"

# big cases: a 64 MiB file with a hole and a 10000-entry directory
w="$tmp/big"
mkdir -p "$w/tree/many"
python3 - "$w/tree" <<'EOF'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(64)
chunk = rnd.randbytes(1 << 20)
with open(os.path.join(root, "big64m"), "wb") as f:
    for i in range(64):
        if i in (10, 11, 40):
            f.seek(1 << 20, 1)           # holes
        else:
            f.write(chunk[i:] + chunk[:i])
for i in range(10000):
    with open(os.path.join(root, "many", "entry-%05d-%s" % (i, "n" * (i % 40))), "w") as f:
        f.write(str(i))
EOF
for fstype in ext2 ext4; do
    img="$w/img"
    rm -f "$img"
    "$MDIMG" -q disk create "$img" --size 200M
    "$MDIMG" -q disk format "$img" --fs $fstype --block-size 4096
    start=$(date +%s)
    "$MDIMG" -q disk populate "$img" "$w/tree" || corpus_die "big $fstype: populate"
    echo "big tree on $fstype: populate $(( $(date +%s) - start )) s"
    e2fsck -fn "$img" >"$w/fsck" 2>&1 || { cat "$w/fsck" >&2; corpus_die "big $fstype: e2fsck -fn"; }
    debugfs -R "dump /big64m $w/out64" "$img" >/dev/null 2>&1
    cmp "$w/out64" "$w/tree/big64m" || corpus_die "big $fstype: 64 MiB file differs"
    rm -f "$w/out64"
    cnt=$(debugfs -R "ls -p /many" "$img" 2>/dev/null | grep -c '/entry-')
    [ "$cnt" = 10000 ] || corpus_die "big $fstype: /many has $cnt entries, not 10000"
    debugfs -R "cat /many/entry-09999-nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn" "$img" 2>/dev/null |
        grep -qx 9999 || corpus_die "big $fstype: last entry content"
done
md_ok "64 MiB file and 10000-entry directory on ext2 and ext4"
md_done
