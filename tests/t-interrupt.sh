#!/bin/sh
# Interruption (suite robustness, issue 11): `mdimg disk create`, `disk cp`
# (into an existing image) and `build` are killed at random moments, 20
# runs each (MD_INTERRUPT_RUNS), SIGKILL and SIGTERM alternating, the delay
# drawn uniformly from 0 to 1.2x the time a whole run takes.  After each:
#   - create/build: the output is absent, or complete: equal to a run that
#     was not interrupted (the epoch is fixed: the same bytes);
#   - cp: the image is the old one or the new one (cmp), never anything
#     else (cmp against the old image and a complete run);
#   - nothing else in the work directory: no temporary file (O_TMPFILE
#     leaves none even after SIGKILL; a named .NAME.XXXXXX fallback would
#     show here);
#   - a SIGTERM'ed run exits with status 1 and an "mdimg:" message, or 143
#     (killed before the handler was installed), or 0 (it had finished).
# Judged with cmp, e2fsck -fn, debugfs.
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:?MDIMG not set}
for t in e2fsck debugfs cmp awk; do
    md_need_tool "$t"
done
md_need_busybox
md_need_kernel
md_tmpdir t-interrupt
RUNS=${MD_INTERRUPT_RUNS:-20}
SOURCE_DATE_EPOCH=1700000000
export SOURCE_DATE_EPOCH
W=$T/w
OFF=1048576

# a tree big enough that a run takes a while (about 60 MB, 600 files)
mkdir -p "$T/src"
i=0
while [ $i -lt 30 ]; do
    mkdir -p "$T/src/d$i"
    j=0
    while [ $j -lt 20 ]; do
        head -c $((((i * 20 + j) % 7 + 1) * 14000)) /dev/zero | tr '\0' "$(printf '\\%03o' $((65 + j)))" \
            >"$T/src/d$i/f$j"
        j=$((j + 1))
    done
    i=$((i + 1))
done
head -c 40000000 /dev/urandom >"$T/src/big"
head -c 30000000 /dev/urandom >"$T/new"
echo old >"$T/src/x"

cmd() {
    case $1 in
    create) echo "disk create out.img --size 160M --table gpt --part rest:linux --fs ext4 $T/src" ;;
    cp) echo "disk cp $T/new img:/x" ;;
    build) echo "build -o out.img --kernel $KERNEL --busybox $BUSYBOX --root disk --boot hybrid --size 128M --overlay $T/src/d1" ;;
    esac
}
output() { [ "$1" = cp ] && echo img || echo out.img; }

prepare() {
    rm -rf "$W"
    mkdir "$W"
    [ "$1" = cp ] && cp --sparse=always "$T/base.img" "$W/img"
    return 0
}

now() { date +%s.%N; }

"$MDIMG" -q disk create "$T/base.img" --size 160M --table gpt --part rest:linux --fs ext4 "$T/src" ||
    md_die "the base image"
for c in create cp build; do
    prepare "$c"
    t0=$(now)
    # shellcheck disable=SC2046
    (cd "$W" && "$MDIMG" -q $(cmd "$c")) || md_die "$c fails without interruption"
    dur=$(echo "$(now) $t0" | awk '{ printf "%.3f", $1 - $2 }')
    cp --sparse=always "$W/$(output "$c")" "$T/ref-$c"
    echo "note: $c takes $dur s"
    bad=0 done_n=0 absent=0
    n=0
    while [ $n -lt "$RUNS" ]; do
        prepare "$c"
        sig=KILL
        [ $((n % 2)) = 1 ] && sig=TERM
        delay=$(awk -v d="$dur" -v s="$n$$" 'BEGIN { srand(s); printf "%.3f", rand() * d * 1.2 }')
        # shellcheck disable=SC2046
        (cd "$W" && exec "$MDIMG" -q $(cmd "$c")) >"$T/out" 2>"$T/err" &
        pid=$!
        sleep "$delay"
        kill -s "$sig" "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        st=$?
        what="$c, SIG$sig after $delay s (status $st)"
        out=$W/$(output "$c")
        left=$(cd "$W" && ls -A | grep -vx "$(output "$c")")
        [ -z "$left" ] || { md_fail "$what: left behind: $left"; bad=$((bad + 1)); }
        if [ "$sig" = TERM ]; then
            case $st in
            0 | 143) ;;
            1) head -n 1 "$T/err" | grep -q '^mdimg:' ||
                   { md_fail "$what: status 1 without an mdimg: message"; bad=$((bad + 1)); } ;;
            *) md_fail "$what: unexpected status: $(head -n 2 "$T/err")"; bad=$((bad + 1)) ;;
            esac
        fi
        case $c in
        create | build)
            if [ ! -e "$out" ]; then
                absent=$((absent + 1))
            elif cmp -s "$out" "$T/ref-$c"; then
                done_n=$((done_n + 1))
            else
                md_fail "$what: $(output "$c") exists but differs from a complete run"
                bad=$((bad + 1))
            fi ;;
        cp)
            if cmp -s "$out" "$T/base.img"; then
                absent=$((absent + 1))
            elif cmp -s "$out" "$T/ref-cp"; then
                done_n=$((done_n + 1))
            else
                md_fail "$what: the image is neither the old nor the new one"
                bad=$((bad + 1))
                e2fsck -fn "$out?offset=$OFF" >/dev/null 2>&1 || md_fail "$what: and e2fsck -fn finds errors"
            fi ;;
        esac
        n=$((n + 1))
    done
    [ $bad = 0 ] && md_ok "$c: $RUNS interrupted runs: $absent left no output (or the old image), $done_n the complete one, nothing else"
    [ $absent -gt 0 ] || echo "note: $c: no run was interrupted before it finished (the delays were too long)"
done
md_done PASS
