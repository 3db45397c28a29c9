#!/bin/sh
# A distribution-like root filesystem tarball keeps every piece of metadata
# through mdimg: / 0755, a 0640 root:42 file, a setuid binary, a file
# capability, an access + default ACL, a hard-link pair, a device node, a
# symlink, mtimes in 2020.  As root the tree is made with the real tools
# (chown, mknod, setcap, setfacl) and tarred with `tar --xattrs --acls`, and
# mdimg runs as nobody; as a normal user the same tarball is written by
# Python's tarfile with the same pax records.  SOURCE_DATE_EPOCH is unset:
# the archive's own mtimes must survive.  Judged by e2fsck, debugfs (stat,
# ea_list), getfacl/getcap on a read-only loop mount (as root), cpio -itv.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:?MDIMG not set}
for t in e2fsck debugfs cpio tar python3; do md_need_tool "$t"; done
unset SOURCE_DATE_EPOCH
md_tmpdir t-rootfs-meta
chmod 1777 "$T" # mdimg may run as nobody: its outputs go here too
cd "$T"

# 2020-06-01 12:00:00 UTC
MT=1591012800
as_root=0
[ "$(id -u)" = 0 ] && as_root=1

if [ $as_root = 1 ]; then
    for t in setcap getcap setfacl getfacl mknod setpriv; do md_need_tool "$t"; done
    R=$T/root
    mkdir -p "$R/etc/conf" "$R/usr/bin" "$R/dev" "$R/data"
    chmod 755 "$R"
    echo secret > "$R/etc/shadowish"; chown 0:42 "$R/etc/shadowish"; chmod 640 "$R/etc/shadowish"
    printf '#!/bin/sh\n' > "$R/usr/bin/suid"; chmod 4755 "$R/usr/bin/suid"
    printf 'ping\n' > "$R/usr/bin/ping"; chmod 755 "$R/usr/bin/ping"
    setcap cap_net_raw+ep "$R/usr/bin/ping"
    echo acl > "$R/data/shared"; chmod 640 "$R/data/shared"
    setfacl -m u:1000:rw "$R/data/shared"
    setfacl -d -m g:100:rx "$R/data"
    echo linked > "$R/etc/hard1"; ln "$R/etc/hard1" "$R/etc/hard2"
    python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 8192)' > "$R/big"
    mknod "$R/dev/console" c 5 1; chmod 600 "$R/dev/console"
    ln -s ../usr/bin/ping "$R/etc/link"
    find "$R" -exec touch -h -d "@$MT" {} +
    (cd "$R" && tar --xattrs --xattrs-include='*' --acls --numeric-owner -cf "$T/rootfs.tar" .) ||
        md_die "tar --xattrs --acls"
    chmod 644 rootfs.tar
    RUN() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
    # a checkout nobody cannot reach (a 0700 parent directory): as root then,
    # the suite's run as nobody covers the unprivileged case
    if ! RUN "$MDIMG" --version >/dev/null 2>&1; then
        echo "note: nobody cannot run $MDIMG here; running it as root"
        RUN() { "$@"; }
    fi
else
    # the same records tar --xattrs --acls writes, from Python's tarfile
    python3 - "$T/rootfs.tar" "$MT" <<'PY' || md_die "python tarfile"
import struct, sys, tarfile, io
out, mt = sys.argv[1], int(sys.argv[2])
def acl(entries):  # Linux xattr form: version 2, {tag u16, perm u16, id u32}
    return struct.pack('<I', 2) + b''.join(struct.pack('<HHI', t, p, i) for t, p, i in entries)
U = 0xffffffff
cap = bytes([1, 0, 0, 2, 0, 0x20, 0, 0] + [0] * 12)          # cap_net_raw+ep
acc = acl([(1, 6, U), (2, 6, 1000), (4, 4, U), (0x10, 6, U), (0x20, 0, U)])
dfl = acl([(1, 7, U), (4, 5, U), (8, 5, 100), (0x10, 5, U), (0x20, 5, U)])
def enc(b): return b.decode('utf-8', 'surrogateescape')  # tarfile writes pax values as UTF-8
t = tarfile.open(out, 'w', format=tarfile.PAX_FORMAT)
def add(name, typ, mode, uid=0, gid=0, data=b'', link='', pax=None, dev=(0, 0)):
    i = tarfile.TarInfo(name); i.type = typ; i.mode = mode; i.uid = uid; i.gid = gid; i.mtime = mt
    i.linkname = link; i.size = len(data) if typ == tarfile.REGTYPE else 0
    i.devmajor, i.devminor = dev
    if pax: i.pax_headers = pax
    t.addfile(i, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
add('.', tarfile.DIRTYPE, 0o755)
for d in ('./data', './dev', './etc', './etc/conf', './usr', './usr/bin'):
    add(d, tarfile.DIRTYPE, 0o755, pax={'SCHILY.xattr.system.posix_acl_default': enc(dfl)} if d == './data' else None)
add('./data/shared', tarfile.REGTYPE, 0o660, data=b'acl\n', pax={'SCHILY.xattr.system.posix_acl_access': enc(acc)})
add('./dev/console', tarfile.CHRTYPE, 0o600, dev=(5, 1))
add('./etc/hard1', tarfile.REGTYPE, 0o644, data=b'linked\n')
add('./etc/hard2', tarfile.LNKTYPE, 0o644, link='./etc/hard1')
add('./etc/link', tarfile.SYMTYPE, 0o777, link='../usr/bin/ping')
add('./etc/shadowish', tarfile.REGTYPE, 0o640, gid=42, data=b'secret\n')
add('./big', tarfile.REGTYPE, 0o644, data=bytes(range(256)) * 8192)
add('./usr/bin/ping', tarfile.REGTYPE, 0o755, data=b'ping\n', pax={'SCHILY.xattr.security.capability': enc(cap)})
add('./usr/bin/suid', tarfile.REGTYPE, 0o4755, data=b'#!/bin/sh\n')
t.close()
PY
    RUN() { "$@"; }
fi

# ---- the ext4 image: no --size, as nobody (when root) --------------------------------
RUN "$MDIMG" disk create "$T/img" --table none --fs ext4 "$T/rootfs.tar" >out.txt 2>err.txt ||
    { cat err.txt >&2; md_die "disk create from the tarball"; }
grep -q "computed from the contents" out.txt || md_fail "the computed size is not printed: $(cat out.txt)"
e2fsck -fn img >fsck.txt 2>&1 || { cat fsck.txt >&2; md_fail "e2fsck -fn"; }
st() { debugfs -R "stat $1" img 2>/dev/null; }
ea() { debugfs -R "ea_list $1" img 2>/dev/null; }
st / | grep -q 'Mode:  0755' && st / | grep -q 'User:     0   Group:     0' ||
    md_fail "/ is not 0755 root:root: $(st / | head -3)"
st / | grep -q "mtime: .* 2020" || md_fail "/ lost the archive's mtime"
st /etc/shadowish | grep -q 'Mode:  0640' && st /etc/shadowish | grep -q 'Group:    42' ||
    md_fail "/etc/shadowish: $(st /etc/shadowish | head -3)"
st /usr/bin/suid | grep -q 'Mode:  04755' || md_fail "setuid bit lost"
ea /usr/bin/ping | grep -q 'security.capability' || md_fail "file capability lost"
ea /data/shared | grep -q 'system.posix_acl_access' || md_fail "access ACL lost"
ea /data | grep -q 'system.posix_acl_default' || md_fail "default ACL lost"
[ "$(st /etc/hard1 | sed -n 's/^Inode: *\([0-9]*\).*/\1/p')" = "$(st /etc/hard2 | sed -n 's/^Inode: *\([0-9]*\).*/\1/p')" ] &&
    st /etc/hard1 | grep -q 'Links: 2' || md_fail "hard-link pair"
st /dev/console | grep -q 'Type: character special' && st /dev/console | grep -q 'Device major/minor number: 05:01' ||
    md_fail "device node: $(st /dev/console | grep -i 'type\|device')"
debugfs -R "stat /etc/link" img 2>/dev/null | grep -q 'Fast link dest: "../usr/bin/ping"' || md_fail "symlink"
for f in /etc/shadowish /usr/bin/suid /data/shared /etc/link; do
    st "$f" | grep -q "mtime: .* 2020" || md_fail "$f: mtime not kept (SOURCE_DATE_EPOCH unset)"
done
lf=$(debugfs -R "stat /lost+found" img 2>/dev/null)
echo "$lf" | grep -q 'Mode:  0700' || md_fail "lost+found is not 0700 as mke2fs makes it"
md_ok "ext4 from the tarball: modes, owners, setuid, capability, ACLs, links, node, mtimes"

if [ $as_root = 1 ]; then
    mkdir mnt
    if mount -o ro,loop img mnt 2>/dev/null; then
        getfacl -n mnt/data/shared 2>/dev/null | grep -qx 'user:1000:rw-' || md_fail "getfacl: access ACL"
        getfacl -n mnt/data 2>/dev/null | grep -qx 'default:group:100:r-x' || md_fail "getfacl: default ACL"
        getcap mnt/usr/bin/ping | grep -q 'cap_net_raw[=+]ep' || md_fail "getcap: $(getcap mnt/usr/bin/ping)"
        [ "$(stat -c %a mnt)" = 755 ] || md_fail "mounted / is $(stat -c %a mnt)"
        umount mnt
        md_ok "getfacl/getcap on the loop-mounted image"
    else
        echo "note: no loop mount here; getfacl checks left out"
    fi
fi

# ---- the initramfs: a "." root entry, and a warning for what newc cannot hold ----------
RUN "$MDIMG" initramfs -o "$T/x.cpio" "$T/rootfs.tar" >out.txt 2>err.txt ||
    { cat err.txt >&2; md_die "initramfs from the tarball"; }
grep -q "warning: .*cannot hold extended attributes: dropped file capabilities of 1 entry (e.g. usr/bin/ping), ACLs of 2 entries" err.txt ||
    md_fail "no warning naming the dropped capability and ACLs: $(cat err.txt)"
cpio -itv --numeric-uid-gid --quiet <x.cpio >list.txt 2>/dev/null || md_fail "cpio -itv"
head -n 1 list.txt | grep -q '^drwxr-xr-x .* 0 *0 .* 2020 \.$' || md_fail "first entry is not '.' 0755 0:0: $(head -n 1 list.txt)"
grep -q '^-rw-r----- .* 0 *42 .* 2020 etc/shadowish$' list.txt || md_fail "etc/shadowish in the cpio"
grep -q '^-rwsr-xr-x .* usr/bin/suid$' list.txt || md_fail "setuid in the cpio"
grep -q '^crw------- .* 5, *1 .* dev/console$' list.txt || md_fail "device node in the cpio"
grep -q '^lrwxrwxrwx .* etc/link -> ../usr/bin/ping$' list.txt || md_fail "symlink in the cpio"
grep -q '^-rw-r--r-- *2 .* etc/hard2$' list.txt || md_fail "hard links in the cpio"
md_ok "initramfs: '.' first, metadata kept, the lost capability and ACLs named"

# ---- bad input: exit 1, no output ---------------------------------------------------
bad() {
    what=$1; shift
    rm -f out.img out.cpio
    rc=0
    RUN "$MDIMG" "$@" >out.txt 2>err.txt || rc=$?
    [ $rc != 0 ] || { md_fail "$what: accepted"; return; }
    [ $rc = 1 ] || md_fail "$what: exit status $rc, not 1"
    [ -s err.txt ] || md_fail "$what: no message"
    ls -A | grep -q '^\.out\.' && md_fail "$what: left a temporary file"
    [ -e out.img ] || [ -e out.cpio ] && md_fail "$what: left an output"
    md_ok "$what: $(head -n 1 err.txt)"
}
python3 - "$T" <<'PY'
import io, sys, tarfile
d = sys.argv[1]
for name, member in (('dotdot', '../escape'), ('deep', 'a/../../escape'), ('abs', '/etc/abs')):
    t = tarfile.open(f'{d}/{name}.tar', 'w')
    i = tarfile.TarInfo(member); i.size = 2
    t.addfile(i, io.BytesIO(b'x\n')); t.close()
PY
head -c 1000000 rootfs.tar > truncated.tar # in the middle of big
bad "a tarball with ../" disk create "$T/out.img" --table none --fs ext4 "$T/dotdot.tar"
grep -q "escapes the root" err.txt || md_fail "../ not named: $(cat err.txt)"
bad "a tarball with a/../../" initramfs -o "$T/out.cpio" "$T/deep.tar"
bad "a tarball with an absolute name" disk create "$T/out.img" --table none --fs ext4 "$T/abs.tar"
grep -q "entry '/etc/abs' has an absolute path" err.txt || md_fail "absolute name not named: $(cat err.txt)"
bad "a tarball with an absolute name (initramfs)" initramfs -o "$T/out.cpio" "$T/abs.tar"
bad "a truncated tarball" disk create "$T/out.img" --table none --fs ext4 "$T/truncated.tar"
bad "a --size too small" disk create "$T/out.img" --size 1M --table none --fs ext4 "$T/rootfs.tar"
grep -q "MiB" err.txt || md_fail "too small: no size in the message: $(cat err.txt)"
bad "a rootfs without a kernel" build -o "$T/out.img" --rootfs "$T/rootfs.tar"
grep -q "looked for /vmlinuz" err.txt || md_fail "no kernel: what was looked for is not named"

md_done "PASS: metadata kept from a rootfs tarball (as $( [ $as_root = 1 ] && echo "root, mdimg as nobody" || id -un))"
