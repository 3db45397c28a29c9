#!/bin/sh
# FIFOs where mdimg expects regular files (suite robustness): nothing may
# block, everything is refused with an "mdimg:" message.
#   1. A file of the input tree swapped for a FIFO after the walk listed it,
#      before its contents are copied, for `initramfs`, `disk create` (ext4
#      and vfat) and `disk populate`.  The swap is made at a known point: the
#      test fills mdimg's stderr, a pipe, beforehand, so that mdimg blocks on
#      its first progress line (--progress), which it prints only after the
#      walk, while it copies the 8 MiB file sorted before the victim; the
#      test then renames a FIFO over the victim and drains the pipe.  Each
#      run must end (timeout 60 s: opening a FIFO without O_NONBLOCK never
#      returns) with status 1, a message naming the file, and no output or
#      temporary file left (disk populate: e2fsck -fn still clean).
#   2. A FIFO named as --spec FILE, --archive FILE, a DIR|ARCHIVE argument,
#      a spec's file location or --init: refused at once (before the fix
#      --spec and --archive blocked in open(2) for ever).
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
md_need_tool python3
md_need_tool timeout coreutils
md_need_tool e2fsck e2fsprogs
md_tmpdir t-walk-fifo
cd "$T" || exit 1

mkdir in out
head -c 8388608 /dev/urandom >in/a
echo victim >in/z

# run-swapped.py OUTDIR VICTIM CMD...: run CMD with its stderr a full pipe;
# once CMD has a file open in OUTDIR (its output: the walk is over) rename a
# FIFO over VICTIM, then drain the pipe.  Prints CMD's stderr (without the
# filler) and exits with CMD's status, 124 if it did not end within 60 s.
cat >run-swapped.py <<'EOF'
import fcntl, os, subprocess, sys, time
outdir, victim, cmd = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3:]
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, os.O_NONBLOCK)
for chunk in (4096, 1):   # to the last byte: any write CMD makes then blocks
    try:
        while True:
            os.write(w, b"x" * chunk)
    except BlockingIOError:
        pass
fcntl.fcntl(w, fcntl.F_SETFL, 0)
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=w)
os.close(w)
deadline, seen = time.time() + 30, False
while not seen and time.time() < deadline and p.poll() is None:
    try:
        for fd in os.listdir("/proc/%d/fd" % p.pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (p.pid, fd)).startswith(outdir + "/"):
                    seen = True
            except OSError:
                pass
    except OSError:
        pass
    time.sleep(0.01)
if not seen:
    sys.stderr.write("run-swapped: never saw the command open its output\n")
fifo = victim + ".fifo-new"
os.mkfifo(fifo, 0o644)
os.rename(fifo, victim)
err = b""
os.set_blocking(r, False)
deadline = time.time() + 60
while time.time() < deadline:
    try:
        b = os.read(r, 65536)
        if not b:
            break
        err += b
    except BlockingIOError:
        if p.poll() is not None:
            continue
        time.sleep(0.01)
status = p.poll()
if status is None:
    p.kill()
    p.wait()
    status = 124
sys.stdout.write(err.lstrip(b"x").decode(errors="replace"))
sys.exit(status if status >= 0 else 128 - status)
EOF

"$MDIMG" -q disk create base.img --size 64M --fs ext4 || md_die "disk create base.img failed"

# swapped WHAT OUTPUT CMD...: part 1 for one command
swapped() {
    what=$1 output=$2
    shift 2
    rm -f in/z
    echo victim >in/z
    python3 run-swapped.py out in/z "$@" >err 2>&1
    st=$?
    if [ $st = 124 ]; then
        md_fail "$what: still running after 60 s (blocked on the FIFO?)"
    elif [ $st != 1 ]; then
        md_fail "$what: status $st, not 1"
    elif ! grep -q '^mdimg: .*in/z: file changed or vanished' err; then
        md_fail "$what: no 'mdimg: ... in/z: file changed or vanished' message"
    else
        md_ok "$what: $(grep '^mdimg:' err)"
        return 0
    fi
    cat err >&2
    return 1
}

swapped "initramfs, a file swapped for a FIFO" out/init.cpio \
    "$MDIMG" initramfs --progress -o out/init.cpio in
[ -z "$(ls -A out)" ] || md_fail "initramfs left $(ls -A out) in out/"
swapped "disk create --fs ext4, a file swapped for a FIFO" out/disk.img \
    "$MDIMG" disk create --progress --size 64M --fs ext4 out/disk.img in
[ -z "$(ls -A out)" ] || md_fail "disk create --fs ext4 left $(ls -A out) in out/"
swapped "disk create --fs vfat, a file swapped for a FIFO" out/fat.img \
    "$MDIMG" disk create --progress --size 64M --fs vfat out/fat.img in
[ -z "$(ls -A out)" ] || md_fail "disk create --fs vfat left $(ls -A out) in out/"
cp base.img out/pop.img
swapped "disk populate, a file swapped for a FIFO" out/pop.img \
    "$MDIMG" disk populate --progress out/pop.img in
[ "$(ls -A out)" = pop.img ] || md_fail "disk populate left $(ls -A out) in out/"
e2fsck -fn out/pop.img >fsck.txt 2>&1 ||
    { md_fail "disk populate: e2fsck -fn finds errors after the failure"; cat fsck.txt >&2; }
rm -f out/pop.img

# ---- 2. a FIFO named as an input ----------------------------------------------------
mkfifo fifo
printf 'file /x %s/fifo 0644 0 0\n' "$T" >fifo-file.spec
# refused NAME MESSAGE ARGS...: mdimg ARGS exits 1 at once with MESSAGE
refused() {
    what=$1 msg=$2
    shift 2
    timeout 10 "$MDIMG" "$@" >/dev/null 2>err
    st=$?
    if [ $st = 124 ]; then
        md_fail "$what: still running after 10 s (blocked opening the FIFO)"
    elif [ $st != 1 ]; then
        md_fail "$what: status $st, not 1: $(cat err)"
    elif ! grep -q "^mdimg: .*$msg" err; then
        md_fail "$what: the message is not 'mdimg: ...$msg': $(cat err)"
    else
        md_ok "$what: $(cat err)"
    fi
}
refused "initramfs --spec FIFO" "fifo: is a FIFO, not a regular file" \
    initramfs -o out/x.cpio --spec fifo
refused "initramfs --archive FIFO" "fifo: is a FIFO, not an archive" \
    initramfs -o out/x.cpio --archive fifo
refused "initramfs FIFO" "fifo: neither a directory nor an archive" \
    initramfs -o out/x.cpio fifo
refused "initramfs --init FIFO" "fifo: not a regular file" \
    initramfs -o out/x.cpio --init fifo in
refused "a spec naming a FIFO" "fifo-file.spec:1: .*fifo': not a regular file" \
    initramfs -o out/x.cpio --spec fifo-file.spec
refused "disk create --archive FIFO" "fifo: is a FIFO, not an archive" \
    disk create out/x.img --size 16M --fs ext4 --archive fifo
refused "disk populate --spec FIFO" "fifo: is a FIFO, not a regular file" \
    disk populate base.img --spec fifo
[ -z "$(ls -A out)" ] || md_fail "the refusals left $(ls -A out) in out/"
md_done PASS
