#!/bin/sh
# Ctrl-C, a closed terminal and kill (suite robustness; issue 11 item 8):
# SIGINT, SIGHUP and SIGTERM delivered in the middle of `disk create --size
# 100G --fs ext4` (a Ctrl-C of it once left a 100 GiB-apparent temporary
# file), `initramfs -c gzip` and `disk populate` into an existing image
# leave nothing behind: the process dies of the signal (mdimg sets
# no handler: its temporary files are unnamed, O_TMPFILE, and vanish with
# it), the output directory holds nothing new (no .NAME.XXXXXX, no output),
# an existing image is byte for byte the old one (cmp) and e2fsck -fn clean.
# The moment is made certain rather than timed: mdimg's stderr is a full
# pipe, so it blocks on its first --progress line, which comes after its
# output is open (seen in /proc/PID/fd); then the signal comes.  (`build`
# prints its steps before it opens its output: SIGTERM and SIGKILL at random
# moments of it, of disk create and of disk cp are t-interrupt's.)  A
# filesystem without O_TMPFILE gets the named .NAME.XXXXXX fallback, which a
# signal leaves behind (tests/README.md).
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
md_need_tool python3
md_need_tool cmp
md_need_tool e2fsck e2fsprogs
md_tmpdir t-signals
cd "$T" || exit 1
SOURCE_DATE_EPOCH=1700000000
export SOURCE_DATE_EPOCH

mkdir -p src/etc out
head -c 20000000 /dev/urandom >src/big
echo hi >src/etc/hi
mkdir -p add/opt
head -c 20000000 /dev/urandom >add/opt/data

# run-signalled.py OUTDIR SIGNAL CMD...: run CMD (SIGINT, SIGHUP and SIGTERM
# at their defaults, whatever this shell ignores) with its stderr a full
# pipe; once CMD has a file open in OUTDIR, send SIGNAL.  Exits with 128 +
# the signal CMD died of, or CMD's status; 124 if CMD did not end within 60
# s; 125 if it never opened a file in OUTDIR (or ended before).
cat >run-signalled.py <<'EOF'
import fcntl, os, signal, subprocess, sys, time
outdir, sig, cmd = os.path.abspath(sys.argv[1]), getattr(signal, "SIG" + sys.argv[2]), sys.argv[3:]
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, os.O_NONBLOCK)
for chunk in (4096, 1):
    try:
        while True:
            os.write(w, b"x" * chunk)
    except BlockingIOError:
        pass
fcntl.fcntl(w, fcntl.F_SETFL, 0)
def defaults():
    for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=w, preexec_fn=defaults)
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
if seen:
    time.sleep(0.2)   # into the blocked write of the progress line
    if p.poll() is None:
        os.kill(p.pid, sig)
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
if not seen:
    sys.exit(125)
sys.exit(status if status >= 0 else 128 - status)
EOF

"$MDIMG" -q disk create base.img --size 64M --fs ext4 src || md_die "making base.img failed"

# signalled WHAT SIG WANT_IN_OUT CMD...: CMD, signalled mid-run, dies of SIG
# and leaves out/ holding exactly WANT_IN_OUT ("" for nothing)
signalled() {
    what=$1 sig=$2 want=$3
    shift 3
    python3 run-signalled.py out "$sig" "$@" >err 2>&1
    st=$?
    case $sig in HUP) n=1 ;; INT) n=2 ;; TERM) n=15 ;; esac
    if [ "$st" = 125 ]; then
        md_fail "$what, SIG$sig: it never had its output open (or ended first): $(cat err)"
    elif [ "$st" = 124 ]; then
        md_fail "$what, SIG$sig: still running 60 s after the signal"
    elif [ "$st" != $((128 + n)) ]; then
        md_fail "$what, SIG$sig: status $st, not $((128 + n)) (death by the signal): $(cat err)"
    else
        md_ok "$what, SIG$sig: died of it (status $st)"
    fi
    left=$(ls -A out | tr '\n' ' ')
    [ "$left" = "$want" ] || md_fail "$what, SIG$sig: out/ holds '$left', not '$want'"
}

for sig in INT HUP TERM; do
    rm -rf out && mkdir out
    signalled "disk create --size 100G --fs ext4" "$sig" "" \
        "$MDIMG" disk create --progress out/big.img --size 100G --fs ext4 src
    signalled "initramfs -c gzip" "$sig" "" \
        "$MDIMG" initramfs --progress -c gzip -o out/i.cpio src
    cp base.img out/pop.img
    signalled "disk populate" "$sig" "pop.img " \
        "$MDIMG" disk populate --progress out/pop.img add
    cmp -s out/pop.img base.img || md_fail "disk populate, SIG$sig: the image is not the old one"
    e2fsck -fn out/pop.img >fsck.txt 2>&1 ||
        { md_fail "disk populate, SIG$sig: e2fsck -fn finds errors"; cat fsck.txt >&2; }
    rm -f out/pop.img
done

md_done "t-signals: SIGINT, SIGHUP and SIGTERM leave nothing behind"
