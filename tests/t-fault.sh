#!/bin/sh
# Fault injection (suite robustness): the main mdimg commands run under the
# LD_PRELOAD shim tests/fault/fault.c, which fails the Nth malloc, write,
# fsync, rename or open (MD_FAULT=FAMILY:N; and every write from the Nth on,
# write:N+, as on a full disk), for N = 1, 2, ... up to the
# number of calls the command makes (counted by a run with N = 0; above
# MD_FAULT_MAX_RUNS runs, default 100, the first half are dense and the rest
# step up geometrically; MD_FAULT_ALL=1 runs every N).  For every N:
#   - exit status 0 or 1: no signal, no sanitizer report, no hang (timeout);
#   - on status 1 a message on stderr starting with "mdimg:";
#   - on failure no output file and no temporary file (.NAME.XXXXXX) left;
#     an existing image byte for byte unchanged when nothing was written
#     before the failed call, and e2fsck -fn clean in every case; the file
#     `disk cp` replaces holds its old or its new contents, never neither;
#   - on success the output equal to a run without faults, or, when a fault
#     was absorbed, still right: the same cpio listing, an e2fsck-clean image
#     (listed as a note);
#   - with an ASan build of mdimg ($MDIMG from -Db_sanitize=address,undefined,
#     gcc's shared runtime) no leak (LeakSanitizer) and no UBSan report.  A
#     build without ASan checks everything but leaks: CI's ASan variant is the
#     stronger check.  (clang links its runtime into the program, where the
#     shim cannot reach malloc: such an mdimg is a skip.)
# Checked with independent tools: cmp, e2fsck, debugfs, gzip, cpio.
# Each failed check is listed once per command, family and check, with the
# values of N that failed it; reproduce one with
#   MD_FAULT=malloc:60 LD_PRELOAD=BUILD/tests/fault/libmd-fault.so mdimg ...
# (MD_FAULT_LOG=FILE MD_FAULT_BACKTRACE=1 says where the fault fired).
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
MDIMG=${MDIMG:-mdimg}
SHIM=${MD_FAULT_SHIM:-${MD_BUILDDIR:-.}/tests/fault/libmd-fault.so}
for t in e2fsck debugfs gzip cpio cmp timeout sort awk; do
    md_need_tool "$t"
done
[ -r "$SHIM" ] || md_die "no fault shim at $SHIM (set MD_FAULT_SHIM)"
md_tmpdir t-fault
W=$T/w                    # the work directory: only the command's outputs
FINDINGS=$T/findings      # CMD|FAMILY|CHECK|N|DETAIL
: > "$FINDINGS"
SOURCE_DATE_EPOCH=1700000000
export SOURCE_DATE_EPOCH
MAX_RUNS=${MD_FAULT_MAX_RUNS:-100}
TIMEOUT=${MD_FAULT_TIMEOUT:-30}
PART_OFFSET=1048576       # --part rest: the first partition starts at 1 MiB

asan=0
if command -v ldd >/dev/null 2>&1 && ldd "$MDIMG" 2>/dev/null | grep -q 'libasan'; then
    asan=1
    mkdir -p "$T/san"
    ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0:exitcode=86:log_path=$T/san/asan
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87:log_path=$T/san/ubsan
    # The shim's backtrace() makes glibc dlopen() its unwinder when the first
    # fault fires; LeakSanitizer then reports the dynamic loader's own list of
    # that object's dependencies (dl-deps.c) as leaked, in every faulty run.
    # Not ours, and not a fault's: suppressed.
    printf 'leak:_dl_map_object_deps\n' > "$T/lsan.supp"
    LSAN_OPTIONS=suppressions=$T/lsan.supp:print_suppressions=0
    export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
    echo "note: $MDIMG has ASan: leaks and UBSan reports are checked"
else
    echo "note: $MDIMG has no ASan (gcc's): leaks are not checked; run with" \
        "MDIMG=BUILD-ASAN/tools/mdimg for that (CI's ASan variant is the stronger check)"
fi

# ---- inputs -------------------------------------------------------------------
mkdir -p "$T/src/etc" "$T/src/bin" "$T/src/usr/lib" "$T/src2/opt/sub"
seq 1 5000 > "$T/src/etc/data"
echo old > "$T/src/etc/x"
ln -s ../etc/data "$T/src/bin/link"
ln "$T/src/etc/data" "$T/src/usr/lib/hard"
for i in 1 2 3 4 5 6 7 8; do echo "$i" > "$T/src/usr/lib/f$i"; done
seq 1 20000 > "$T/src2/opt/big"
echo small > "$T/src2/opt/sub/small"
ln -s big "$T/src2/opt/link"
seq 1 3000 > "$T/newfile"
"$MDIMG" -q disk create "$T/base.img" --size 32M --table mbr --part rest:linux:bootable \
    --fs ext4 "$T/src" || md_die "making the base image failed"
e2fsck -fn "$T/base.img?offset=$PART_OFFSET" > "$T/fsck.txt" 2>&1 ||
    { cat "$T/fsck.txt" >&2; md_die "the base image is not e2fsck-clean"; }

# The commands: NAME, its output (in $W), whether it works on a copy of the
# base image.
cmd_args() {
    case $1 in
    initramfs) echo "initramfs -o out.cpio -c gzip $T/src" ;;
    create) echo "disk create new.img --size 32M --table mbr --part rest:linux:bootable --fs ext4 $T/src" ;;
    cp) echo "disk cp $T/newfile img:/etc/x" ;;
    populate) echo "disk populate img $T/src2" ;;
    esac
}
cmd_output() {
    case $1 in
    initramfs) echo out.cpio ;;
    create) echo new.img ;;
    *) echo img ;;
    esac
}

# prepare CMD: an empty work directory (with a copy of the base image).
prepare() {
    rm -rf "$W"
    mkdir "$W"
    case $1 in
    cp | populate) cp --sparse=always "$T/base.img" "$W/img" ;;
    esac
}

# run CMD [MD_FAULT]: run the command in $W; sets st (exit status).
run() {
    prepare "$1"
    rm -f "$T/flog"
    # shellcheck disable=SC2046
    if [ -n "${2:-}" ]; then
        (cd "$W" && timeout -s KILL "$TIMEOUT" env LD_PRELOAD="$SHIM" MD_FAULT="$2" \
            MD_FAULT_LOG="$T/flog" MD_FAULT_BACKTRACE=1 "$MDIMG" -q $(cmd_args "$1") > "$T/out" 2> "$T/err")
    else
        (cd "$W" && timeout -s KILL "$TIMEOUT" "$MDIMG" -q $(cmd_args "$1") > "$T/out" 2> "$T/err")
    fi
    st=$?
}

# finding CMD FAMILY CHECK N DETAIL
finding() {
    printf '%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" "$(printf '%s' "$5" | tr '\n|' '  ' | cut -c1-300)" >> "$FINDINGS"
}

# ext_file IMG PATH: the contents of PATH in the filesystem (debugfs).
ext_file() {
    debugfs -R "cat $2" "$1?offset=$PART_OFFSET" 2>/dev/null
}

# nlist COUNT: the values of N to run.
nlist() {
    if [ "$1" -le "$MAX_RUNS" ] || [ "${MD_FAULT_ALL:-}" = 1 ]; then
        seq 1 "$1"
        return
    fi
    dense=$((MAX_RUNS / 2))
    seq 1 "$dense"
    awk -v a="$dense" -v c="$1" -v k=$((MAX_RUNS - dense)) 'BEGIN {
        r = exp(log(c / a) / k); x = a; p = a
        for (i = 1; i <= k; i++) { x *= r; n = int(x + 0.5); if (n > p && n <= c) { print n; p = n } }
        if (p < c) print c }'
}

# upstream: the known bug of a library below us the fault ran into, told
# by the first frame of the fired fault's backtrace outside the shim and the
# allocator (and by libarchive's own message); empty when it is not one of
# them.  These are documented in tests/README.md, and listed, not failed.
# $st is the status the crash would have without ASan (asan_status).
upstream() {
    [ -s "$T/flog" ] || return 0
    # ASan's backtrace() interceptor is a frame of the shim's too
    frames=$(sed -n '/^fired/,/^count/p' "$T/flog" | grep -v 'libmd-fault\|libasan\|^fired\|^count' | head -n 2)
    frame=$(printf '%s\n' "$frames" | head -n 1)
    case $frame in
    *"(ext2fs_extent_open2+"*)
        echo "libext2fs: ext2fs_extent_open2() uses handle->path without checking its allocation (e2fsprogs lib/ext2fs/extent.c, 1.47.0 to 1.47.4)" ;;
    *"(ext2fs_create_inode_cache+"*)
        echo "libext2fs: ext2fs_create_inode_cache() frees the uninitialised inode pointers of its cache after a failed allocation (lib/ext2fs/inode.c)" ;;
    *"(rb_get_new_extent+"* | *"libext2fs.so"*"(+0x"*)
        # rb_get_new_extent() is static: without debug symbols an unnamed
        # libext2fs frame, told by its abort()
        if [ "$st" = 134 ]; then
            echo "libext2fs: its rb-tree bitmaps call abort() when an allocation fails (lib/ext2fs/blkmap64_rb.c rb_get_new_extent)"
        fi ;;
    *"libfdisk.so"*)
        echo "libfdisk: a failed allocation in fdisk_new_context() ends in an assertion in fdisk_deinit_label() (libfdisk/src/context.c)" ;;
    *"libarchive.so"*)
        if grep -q 'Fatal Internal Error in libarchive: Out of memory' "$T/err"; then
            echo "libarchive: archive_string calls exit(1) when an allocation fails (libarchive/archive_string.c __archive_errx)"
        elif [ "$st" = 139 ] && printf '%s\n' "$frames" | sed -n 2p | grep -q '(archive_write_add_filter_\|(archive_write_open'; then
            echo "libarchive: __archive_write_allocate_filter() uses the result of calloc() unchecked (libarchive/archive_write.c)"
        fi ;;
    esac
}

# asan_status: for a run that ASan ended (status 86), the status the crash
# would have had without it (139 for a SEGV or BUS it caught, 134 for a bad
# free, which glibc aborts on); else $st.
asan_status() {
    if [ "$asan" = 1 ] && [ "$st" = 86 ]; then
        if grep -qs 'AddressSanitizer: \(SEGV\|BUS\)' "$T"/san/asan*; then
            echo 139
            return
        elif grep -qs 'AddressSanitizer: attempting \(free\|double-free\)' "$T"/san/asan*; then
            echo 134
            return
        fi
    fi
    echo "$st"
}

# upstream_leak: the known leak of a library below us a fault ran into:
# ext2fs_create_inode_cache() leaks its cache when the allocation of its
# buffer fails (its error path frees the cache only at a reference count it
# has not set yet).  Told by the fired fault's first frame and the leaked
# blocks' allocating frames, all in that function.
upstream_leak() {
    frame=$(sed -n '/^fired/,/^count/p' "$T/flog" 2>/dev/null |
        grep -v 'libmd-fault\|libasan\|^fired\|^count' | head -n 1)
    case $frame in
    *"(ext2fs_create_inode_cache+"*) ;;
    *) return 0 ;;
    esac
    grep -A3 'Direct leak\|Indirect leak' "$1" | grep '#2 ' | grep -vq 'ext2fs_create_inode_cache' && return 0
    echo "libext2fs: ext2fs_create_inode_cache() leaks its cache when its buffer cannot be allocated (lib/ext2fs/inode.c)"
}

# check CMD FAMILY N: every check of one faulty run (after run).
check() {
    c=$1 f=$2 n=$3 out=$(cmd_output "$1")
    fired=0 writes=0 all_writes=
    if [ -s "$T/flog" ]; then
        fired=$(grep -c '^fired' "$T/flog")
        writes=$(sed -n 's/^fired .* writes=\([0-9]*\)$/\1/p' "$T/flog" | head -n 1)
        all_writes=$(sed -n 's/^count .* writes \([0-9]*\)$/\1/p' "$T/flog")
    fi
    # a crash or a silent exit 1 inside a known bug of a library below us
    # (under ASan a SEGV is its report and status 86: told as 139)
    bug=
    st0=$st st=$(asan_status)
    if [ "$st" = 134 ] || [ "$st" = 139 ] || { [ "$st" = 1 ] && ! head -n 1 "$T/err" | grep -q '^mdimg:'; }; then
        bug=$(upstream)
    fi
    st=$st0
    if [ -n "$bug" ]; then
        # ASan's report of it is the bug, not a finding
        [ "$st" != 86 ] || rm -f "$T"/san/asan*
        echo "$c $f:$n: $bug (status $st)" >> "$T/upstream"
        # the other checks still hold: no output or temporary file left, the
        # image unchanged or e2fsck-clean
        st=1
        printf 'mdimg: (upstream) %s\n' "$bug" > "$T/err"
    fi
    case $st in
    0 | 1) ;;
    137) finding "$c" "$f" "hang (killed after $TIMEOUT s)" "$n" "" ;;
    86 | 87) ;; # the sanitizer log below says what
    *) if [ "$st" -gt 128 ]; then
           finding "$c" "$f" "killed by signal $((st - 128))" "$n" "$(tail -n 3 "$T/err")"
       else
           finding "$c" "$f" "exit status $st" "$n" "$(head -n 2 "$T/err")"
       fi ;;
    esac
    if [ "$asan" = 1 ]; then
        for s in "$T"/san/*; do
            [ -f "$s" ] || continue
            if grep -q 'LeakSanitizer' "$s"; then
                lbug=$(upstream_leak "$s")
                if [ -n "$lbug" ]; then
                    echo "$c $f:$n: $lbug (a leak)" >> "$T/upstream"
                else
                    finding "$c" "$f" "leak (LeakSanitizer)" "$n" "$(grep -m1 -A4 'Direct leak\|Indirect leak' "$s" | grep -v '^ *#[0-3] .*\(malloc\|calloc\|realloc\|libmd-fault\)' | head -n 4)"
                fi
            else
                finding "$c" "$f" "sanitizer report" "$n" "$(grep -m1 -E 'ERROR|runtime error' "$s") $(grep -m1 -E '#[0-9]+ .* in md_' "$s")"
            fi
            rm -f "$s"
        done
    fi
    if [ "$st" = 1 ]; then
        head -n 1 "$T/err" | grep -q '^mdimg:' ||
            finding "$c" "$f" "status 1 without an 'mdimg:' message on stderr" "$n" "$(head -c 200 "$T/err")"
    fi
    # whatever is in $W besides the output (when it is expected) is left over
    left=$(cd "$W" && ls -A | grep -vx "$out")
    [ -z "$left" ] || finding "$c" "$f" "leftover file" "$n" "$left"
    if [ "$st" != 0 ]; then
        case $c in
        initramfs | create)
            [ ! -e "$W/$out" ] || finding "$c" "$f" "output $out left after a failure" "$n" "" ;;
        cp | populate)
            if [ "$writes" = 0 ] && ! cmp -s "$W/img" "$T/base.img"; then
                finding "$c" "$f" "image changed although nothing was written before the failure" "$n" \
                    "${all_writes:-?} writes in all: after the failed call"
            fi
            if ! e2fsck -fn "$W/img?offset=$PART_OFFSET" > "$T/fsck.txt" 2>&1; then
                finding "$c" "$f" "e2fsck -fn errors after the failure" "$n" "$(grep -v '^e2fsck\|^Pass\|^$' "$T/fsck.txt" | head -n 3)"
            fi
            if [ "$c" = cp ]; then
                got=$(ext_file "$W/img" /etc/x | head -c 20 | tr '\n' ' ')
                [ "$got" = "old " ] || ext_file "$W/img" /etc/x | cmp -s - "$T/newfile" ||
                    finding "$c" "$f" "/etc/x neither old nor new after the failure" "$n" "$got"
            fi ;;
        esac
    elif [ -f "$T/ref-$c" ] && ! cmp -s "$W/$out" "$T/ref-$c"; then
        # an absorbed fault: the output may differ (a directory grown
        # differently) but must still be right
        case $c in
        initramfs)
            if ! gzip -dc "$W/$out" | cpio -it --quiet 2> /dev/null | LC_ALL=C sort > "$T/list" ||
                ! cmp -s "$T/list" "$T/ref-list"; then
                finding "$c" "$f" "exit 0 after the fault, but the archive does not list as without faults" "$n" ""
            else
                echo "$c $f:$n: exit 0 after the fault; the archive differs but lists the same" >> "$T/notes"
            fi ;;
        *)
            if ! e2fsck -fn "$W/$out?offset=$PART_OFFSET" > "$T/fsck.txt" 2>&1; then
                finding "$c" "$f" "exit 0 after the fault, but e2fsck -fn finds errors" "$n" "$(grep -v '^e2fsck\|^Pass\|^$' "$T/fsck.txt" | head -n 3)"
            else
                echo "$c $f:$n: exit 0 after the fault; the image differs from a run without faults, e2fsck-clean" >> "$T/notes"
            fi ;;
        esac
    fi
}

# ---- the runs ---------------------------------------------------------------------
total_runs=0
for c in initramfs create cp populate; do
    # references: two runs without faults must agree (the epoch is fixed)
    run "$c"
    [ "$st" = 0 ] || { cat "$T/err" >&2; md_die "$c fails without faults (status $st)"; }
    cp --sparse=always "$W/$(cmd_output "$c")" "$T/ref-$c"
    if [ "$c" = initramfs ]; then
        gzip -dc "$T/ref-$c" | cpio -it --quiet | LC_ALL=C sort > "$T/ref-list"
        grep -qx 'usr/lib/hard' "$T/ref-list" || md_die "the archive lacks usr/lib/hard: $(cat "$T/ref-list")"
    fi
    run "$c"
    cmp -s "$W/$(cmd_output "$c")" "$T/ref-$c" || {
        echo "note: $c is not deterministic: its successful faulty runs are not compared"
        rm -f "$T/ref-$c"
    }
    for f in malloc write write+ fsync rename open; do
        # write+: every write from the Nth on fails, as on a full disk
        fam=${f%+} sticky=${f#"$fam"}
        run "$c" "$fam:0"
        [ "$st" = 0 ] || { cat "$T/err" >&2; md_die "$c fails under the shim with N = 0 (status $st)"; }
        calls=$(sed -n "s/^count $fam \([0-9]*\) .*/\1/p" "$T/flog")
        [ -n "$calls" ] || md_die "$c $f: the shim wrote no count (is $SHIM loaded?)"
        if [ "$f" = malloc ] && [ "$calls" = 0 ]; then
            md_skip_env "the shim cannot reach $MDIMG's malloc (a sanitizer runtime linked into it, as clang does)"
        fi
        runs=0
        for n in $(nlist "$calls"); do
            run "$c" "$fam:$n$sticky"
            check "$c" "$f" "$n"
            runs=$((runs + 1))
        done
        # one past the last call: the fault no longer fires and all is well
        run "$c" "$fam:$((calls + 1))$sticky"
        check "$c" "$f" "$((calls + 1))"
        grep -q '^fired' "$T/flog" && finding "$c" "$f" "call count changed between runs" "$((calls + 1))" ""
        [ "$st" = 0 ] || finding "$c" "$f" "fails although the fault did not fire" "$((calls + 1))" "$(head -n 1 "$T/err")"
        total_runs=$((total_runs + runs + 1))
        bad=$(grep -c "^$c|$f|" "$FINDINGS" || true)
        if [ "$bad" = 0 ]; then
            md_ok "$c $f: $calls calls, $runs faulty runs, every check passed"
        else
            echo "$c $f: $calls calls, $runs faulty runs, $bad failed checks"
        fi
    done
done

# ---- the findings, one line per command, family and check ------------------------
sort -t'|' -k1,1 -k2,2 -k3,3 -k4,4n "$FINDINGS" | awk -F'|' '
    function flush() {
        if (key == "") return
        if (inrange) ns = ns "-" last
        printf "%s %s: %s for N = %s%s\n", c, f, chk, ns, (detail != "" ? " (N = " first ": " detail ")" : "")
    }
    {
        k = $1 "|" $2 "|" $3
        if (k != key) { flush(); key = k; c = $1; f = $2; chk = $3; ns = $4; first = $4; detail = $5; cnt = 1; last = $4 + 0; inrange = 0; next }
        if ($4 + 0 == last + 1) { inrange = 1 } else { if (inrange) ns = ns "-" last; ns = ns "," $4; inrange = 0 }
        last = $4 + 0
    }
    END { flush() }' > "$T/summary"
if [ -s "$T/upstream" ]; then
    echo "known bugs of the libraries below us, hit by a fault (documented in tests/README.md):"
    sed 's/^[^:]*:[0-9]*: //' "$T/upstream" | sort | uniq -c | sed 's/^/  /'
    sed 's/^/    /' "$T/upstream"
fi
if [ -s "$T/notes" ]; then
    echo "notes (faults absorbed with a correct result):"
    sed 's/^/  /' "$T/notes"
fi
while IFS= read -r line; do
    md_fail "$line"
done < "$T/summary"
md_done "t-fault: $total_runs faulty runs of 4 commands, no failed check"
