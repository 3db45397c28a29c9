#!/bin/sh
# A bounded run of one libFuzzer target (suites fuzz and robustness; built
# with -Dfuzz=true): make-corpus.sh generates the seed corpus, then the
# target runs for MD_FUZZ_TIME seconds (default 60) over it.  A crash, a
# leak, an UBSan report, an input slower than MD_FUZZ_INPUT_TIMEOUT seconds
# (default 30) or more than 2 GiB of memory fails the test; the input that
# did it is kept as BUILD/tests/fuzz/TARGET-out/crash-... (README.md says how
# to reproduce and minimise it).
# Usage: run-fuzz.sh FUZZ_EXE TARGET
set -u
. "${MD_TESTDIR:-$(dirname "$0")/..}/lib.sh"
exe=$1 target=$2
here=${MD_TESTDIR:-$(cd "$(dirname "$0")/.." && pwd)}/fuzz
out=${MD_BUILDDIR:-.}/tests/fuzz/$target-out
rm -rf "$out"
mkdir -p "$out/seeds" "$out/corpus"
"$here/make-corpus.sh" "$target" "$out/seeds" || md_die "make-corpus.sh $target failed"
nseeds=$(find "$out/seeds" -type f | wc -l)
[ "$nseeds" -gt 0 ] || md_die "make-corpus.sh $target made no seeds"
dict=
[ -f "$here/$target.dict" ] && dict="-dict=$here/$target.dict"
# Files the targets write go to a tmpfs when there is one.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    TMPDIR=/dev/shm
    export TMPDIR
fi
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS
echo "fuzz-$target: $nseeds seeds, ${MD_FUZZ_TIME:-60} s"
# shellcheck disable=SC2086
"$exe" -max_total_time="${MD_FUZZ_TIME:-60}" -timeout="${MD_FUZZ_INPUT_TIMEOUT:-30}" \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/" $dict \
    ${MD_FUZZ_ARGS:-} "$out/corpus" "$out/seeds" >"$out/log" 2>&1
st=$?
# fork mode with -ignore_crashes=1 exits 0 after a crash: the inputs it kept say
found=$(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) | wc -l)
if [ "$st" = 0 ] && [ "$found" = 0 ]; then
    tail -n 25 "$out/log"
    md_done "fuzz-$target: no crash in ${MD_FUZZ_TIME:-60} s"
fi
cat "$out/log" >&2
ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* 2>/dev/null >&2 || true
md_die "fuzz-$target found a failure (status $st, $found input(s) kept in $out/)"
