#!/bin/sh
# What is at an output path (suite robustness; issue 11 item 4): only a
# regular file is ever replaced.  A character device (mknod, as root: a copy
# of /dev/null's numbers in the test's directory, never /dev/null itself), a
# FIFO, a symlink (to a file that must keep its contents) and a directory at
# the output of `disk create` (with and without --force), `disk cp IMG:/f`
# out of ext4 and out of FAT, `initramfs -o`, `build -o` and `build
# --initramfs` are refused at once (a FIFO must not block the open: each run
# has 20 s) with "OUT: exists and is not a regular file (a device|a FIFO|a
# symlink)" or "is a directory", and afterwards the thing is still what it
# was (stat, cmp) and nothing else is in the directory.  Before the fix
# they were replaced by regular files (that replaced a machine's /dev/null).
# '-' writes through to standard output (cpio -it, cmp), and a regular file
# is replaced (--force), so the refusals are about the kind of file.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
md_need_tool timeout coreutils
md_need_tool stat coreutils
md_need_tool cpio
md_need_tool cmp
md_tmpdir t-output-kinds
cd "$T" || exit 1

mkdir -p tree/etc fat/EFI out
echo hello >tree/etc/hi
echo fat >fat/EFI/F.TXT
echo "keep me" >target
cp target target.orig
"$MDIMG" -q disk create ext.img --size 8M --fs ext4 tree || md_die "making ext.img failed"
"$MDIMG" -q disk create fat.img --size 1M --fs vfat fat || md_die "making fat.img failed"

kinds="fifo symlink dir"
if [ "$(id -u)" = 0 ] && mknod out/probe c 1 3 2>/dev/null; then
    rm -f out/probe
    kinds="cdev $kinds"
else
    echo "note: not root (or no mknod here): the character-device case is left out"
fi
# the build cases need what md_need_kernel and md_need_busybox look for
build= KERNEL=${MD_E2E_KERNEL:-} BUSYBOX=
[ -n "$KERNEL" ] || for k in /boot/vmlinuz-*; do [ -r "$k" ] && KERNEL=$k; done
for b in /bin/busybox /usr/bin/busybox; do [ -x "$b" ] && BUSYBOX=$b && break; done
if [ -n "$KERNEL" ] && [ -r "$KERNEL" ] && [ -n "$BUSYBOX" ]; then
    build=1
else
    md_missing_part "a kernel in /boot and busybox, for the build cases" busybox-static || true
fi

# put_kind KIND: put a KIND at out/o
put_kind() {
    rm -rf out/o
    case $1 in
    cdev) mknod out/o c 1 3 ;;
    fifo) mkfifo out/o ;;
    symlink) ln -s ../target out/o ;;
    dir) mkdir out/o && echo inside >out/o/file ;;
    esac
}

# still KIND: out/o is still the KIND it was, and nothing else is in out/
still() {
    case $1 in
    cdev) [ -c out/o ] && [ "$(stat -c '%t:%T' out/o)" = 1:3 ] ;;
    fifo) [ -p out/o ] ;;
    symlink) [ -L out/o ] && [ "$(readlink out/o)" = ../target ] && cmp -s target target.orig ;;
    dir) [ -d out/o ] && [ "$(ls -A out/o)" = file ] ;;
    esac
}

word() {
    case $1 in
    cdev) echo 'exists and is not a regular file \(a device\)' ;;
    fifo) echo 'exists and is not a regular file \(a FIFO\)' ;;
    symlink) echo 'exists and is not a regular file \(a symlink\)' ;;
    dir) echo 'is a directory' ;;
    esac
}

# refused_at WHAT KIND CMD...: CMD (whose output is out/o) refused, out/o kept
refused_at() {
    what=$1 kind=$2
    shift 2
    put_kind "$kind"
    timeout 20 "$@" >stdout 2>err </dev/null
    st=$?
    if [ "$st" = 124 ]; then
        md_fail "$what, a $kind: still running after 20 s (blocked opening it?)"
    elif [ "$st" != 1 ]; then
        md_fail "$what, a $kind: status $st, not 1: $(cat err)"
    elif ! grep -Eq "^mdimg: .*out/o: $(word "$kind")" err; then
        md_fail "$what, a $kind: not the message wanted: $(cat err)"
    else
        md_ok "$what, a $kind: $(head -n 1 err)"
    fi
    still "$kind" || { md_fail "$what: the $kind at out/o was changed: $(ls -la out)"; ls -la out >&2; }
    [ "$(ls -A out)" = o ] || md_fail "$what, a $kind: left in out/: $(ls -A out)"
}

for kind in $kinds; do
    refused_at "disk create --force" "$kind" "$MDIMG" disk create out/o --force --size 8M
    refused_at "disk create --fs ext4" "$kind" "$MDIMG" disk create out/o --size 8M --fs ext4 tree
    refused_at "disk cp out of ext4" "$kind" "$MDIMG" disk cp ext.img:/etc/hi out/o
    refused_at "disk cp out of FAT" "$kind" "$MDIMG" disk cp fat.img:/EFI/F.TXT out/o
    refused_at "initramfs -o" "$kind" "$MDIMG" initramfs -o out/o tree
    if [ -n "$build" ]; then
        refused_at "build -o --force" "$kind" "$MDIMG" build -o out/o --force --kernel "$KERNEL" --busybox "$BUSYBOX"
        rm -f out/b.img
        refused_at "build --initramfs" "$kind" "$MDIMG" build -o out/b.img --kernel "$KERNEL" --busybox "$BUSYBOX" \
            --initramfs out/o
    fi
done
rm -rf out/o

# ---- '-' writes through; a regular file is replaced ---------------------------------
"$MDIMG" disk cp ext.img:/etc/hi - >hi.out 2>err && [ "$(cat hi.out)" = hello ] ||
    md_fail "disk cp ext.img:/etc/hi -: $(cat err) $(cat hi.out)"
"$MDIMG" disk cp fat.img:/EFI/F.TXT - >f.out 2>err && [ "$(cat f.out)" = fat ] ||
    md_fail "disk cp fat.img:/EFI/F.TXT -: $(cat err) $(cat f.out)"
"$MDIMG" -q initramfs -o - tree >i.cpio 2>err || md_fail "initramfs -o -: $(cat err)"
cpio -it <i.cpio 2>/dev/null | grep -qx etc/hi || md_fail "initramfs -o -: cpio -it does not list etc/hi"
echo old >out/o
"$MDIMG" -q disk cp ext.img:/etc/hi out/o 2>err && [ "$(cat out/o)" = hello ] ||
    md_fail "disk cp over a regular file: $(cat err)"
"$MDIMG" -q disk create out/o --force --size 8M 2>err && [ "$(stat -c %s out/o)" = 8388608 ] ||
    md_fail "disk create --force over a regular file: $(cat err)"
"$MDIMG" disk create out/o --size 8M >/dev/null 2>err
st=$?
[ "$st" = 1 ] && grep -q 'out/o: already exists' err || md_fail "disk create without --force: $st $(cat err)"
[ "$(ls -A out)" = o ] || md_fail "left in out/: $(ls -A out)"

md_done "t-output-kinds: only regular files are replaced"
