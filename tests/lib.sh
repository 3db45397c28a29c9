# Shared prelude of the shell tests.  Every tests/*.sh sources it first:
#   . "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
# (meson sets MD_TESTDIR to this directory).  POSIX sh; the functions run in
# the caller's shell, so that they can exit it, and set the variables they
# name.  tests/README.md ("Writing a test") has the same conventions.
#
# Exit status (meson's): 0 pass, 77 skip, anything else fail.
#
# Reporting checks:
#   md_ok MSG      "ok: MSG" on stdout.
#   md_fail MSG    "FAIL: MSG" on stderr; counts the failure and returns, so
#                  that the test goes on and reports every failed check.  The
#                  count lives in a shell variable: a failure recorded in a
#                  subshell ( (...), $(...), a piped while loop) is lost with
#                  it.  Use md_die there.
#   md_die MSG     "FAIL: MSG" on stderr and exit 1 at once: for checks the
#                  rest of the test depends on, and in subshells (the exit
#                  status carries the failure out under set -e).
#   md_done [MSG]  the last line of every test: exit 1 with the count if any
#                  md_fail was recorded, else print MSG (if any) and exit 0.
# Context printed next to a failure (a log, a listing) goes to stderr too
# (cat FILE >&2): meson shows stdout and stderr apart.
#
# Skips.  A skip must say why, and is one of two kinds:
#   - something scripts/setup installs is missing (a tool, busybox, QEMU, a
#     kernel, the linux-source tarball, ...): md_need_tool, md_need_file,
#     md_need_qemu, md_need_busybox, md_need_kernel, or md_missing.  Outside
#     CI that is a skip; with CI=true in the environment it is a failure,
#     "FAIL (CI): X is required but missing (install PACKAGE; scripts/setup
#     should have)", since CI runs scripts/setup first.  When only some
#     checks need it: "if md_want_tool TOOL; then ...; fi" (md_missing_part
#     for what is not a tool): outside CI a note, and the test goes on
#     without those checks; in CI the same failure;
#   - the environment cannot run the test whatever is installed (not root for
#     a loop mount, no loop devices, no cached kernel yet): md_skip_env
#     REASON, a skip also in CI.
# A skip after a failed md_fail check is a failure: a skip never hides one.

MD_FAILS=0

md_ok() {
    echo "ok: $*"
}

md_fail() {
    echo "FAIL: $*" >&2
    MD_FAILS=$((MD_FAILS + 1))
}

md_die() {
    echo "FAIL: $*" >&2
    exit 1
}

md_done() {
    if [ "$MD_FAILS" != 0 ]; then
        echo "$MD_FAILS check(s) failed" >&2
        exit 1
    fi
    [ $# = 0 ] || echo "$*"
    exit 0
}

# md_skip_env REASON: the environment cannot run this test (a skip in CI too).
md_skip_env() {
    [ "$MD_FAILS" = 0 ] || md_die "$MD_FAILS check(s) failed before the skip: $*"
    echo "SKIP: $*"
    exit 77
}

# md_missing WHAT [PACKAGE]: WHAT, which scripts/setup installs (from the
# Debian package PACKAGE), is missing: skip, or fail when CI=true.
md_missing() {
    [ "$MD_FAILS" = 0 ] || md_die "$MD_FAILS check(s) failed before the skip: $1 is missing"
    if [ "${CI:-}" = true ]; then
        if [ -n "${2:-}" ]; then
            echo "FAIL (CI): $1 is required but missing (install $2; scripts/setup should have)" >&2
        else
            echo "FAIL (CI): $1 is required but missing" >&2
        fi
        exit 1
    fi
    echo "SKIP: $1 is missing${2:+ (install $2)}"
    exit 77
}

# md_missing_part WHAT [PACKAGE]: WHAT, which scripts/setup installs, is
# missing, and only some checks need it: fail when CI=true, else print a
# note and return 1, so that the test skips those checks and goes on.
md_missing_part() {
    if [ "${CI:-}" = true ]; then
        md_missing "$@"
    fi
    echo "note: $1 is missing${2:+ (install $2)}: the checks that need it are skipped"
    return 1
}

# md_expect CODE PATTERN CMD...: CMD exits with CODE and its stderr matches
# PATTERN (grep; '' for any); stdout in out.txt, stderr in err.txt.  Else a
# failure (the test goes on).  Keeps the caller's set -e.
md_expect() {
    _code=$1 _pat=$2
    shift 2
    case $- in *e*) _e=1; set +e ;; *) _e=0 ;; esac
    "$@" >out.txt 2>err.txt
    _rc=$?
    [ "$_e" = 1 ] && set -e
    [ "$_rc" = "$_code" ] || { cat err.txt >&2; md_fail "'$*' exited $_rc, expected $_code"; return 0; }
    [ -z "$_pat" ] || grep -q -- "$_pat" err.txt ||
        { cat err.txt >&2; md_fail "'$*': stderr lacks '$_pat'"; return 0; }
}

# md_want_tool TOOL [PACKAGE]: true if TOOL is on $PATH; else md_missing_part.
#   if md_want_tool python3; then ...checks with python3...; fi
md_want_tool() {
    command -v "$1" >/dev/null 2>&1 || md_missing_part "$1" "${2:-$(md_package_of "$1")}"
}

# md_package_of TOOL: the Debian package (in scripts/setup) with TOOL.
md_package_of() {
    case $1 in
    blkid) echo util-linux ;;
    losetup | mount) echo mount ;;
    sfdisk) echo fdisk ;;
    e2fsck | debugfs | dumpe2fs | mkfs.ext[234] | mke2fs) echo e2fsprogs ;;
    bsdcpio | bsdtar) echo libarchive-tools ;;
    xz) echo xz-utils ;;
    cc | make) echo build-essential ;;
    readelf) echo binutils ;;
    qemu-system-x86_64) echo qemu-system-x86 ;;
    sha256sum | od | du | sort | timeout) echo coreutils ;;
    cmp | diff) echo diffutils ;;
    find) echo findutils ;;
    awk) echo mawk ;;
    *) echo "$1" ;;
    esac
}

# md_need_tool TOOL [PACKAGE]: TOOL on $PATH (PACKAGE: md_package_of TOOL).
md_need_tool() {
    command -v "$1" >/dev/null 2>&1 || md_missing "$1" "${2:-$(md_package_of "$1")}"
}

# md_need_file PATH PACKAGE: a readable PATH.
md_need_file() {
    [ -r "$1" ] || md_missing "$1" "$2"
}

# QEMU: the path of qemu-system-x86_64.
md_need_qemu() {
    QEMU=$(command -v qemu-system-x86_64 || true)
    [ -n "$QEMU" ] || md_missing qemu-system-x86_64 qemu-system-x86
}

# BUSYBOX: an executable busybox (the guest's whole userland).
md_need_busybox() {
    BUSYBOX=
    for _md_b in /bin/busybox /usr/bin/busybox; do
        [ -x "$_md_b" ] && { BUSYBOX=$_md_b; break; }
    done
    [ -n "$BUSYBOX" ] || md_missing "busybox (/bin/busybox or /usr/bin/busybox)" busybox-static
}

# KERNEL: $MD_E2E_KERNEL, else the last readable /boot/vmlinuz-* (in glob
# order).
md_need_kernel() {
    KERNEL=${MD_E2E_KERNEL:-}
    if [ -z "$KERNEL" ]; then
        for _md_k in /boot/vmlinuz-*; do
            [ -r "$_md_k" ] && KERNEL=$_md_k
        done
    fi
    [ -n "$KERNEL" ] && [ -r "$KERNEL" ] ||
        md_missing "a readable kernel (${MD_E2E_KERNEL:-/boot/vmlinuz-*})" linux-image-cloud-amd64
}

# md_qemu_ovmf SECONDS IMG OUT ERR: the plain QEMU line that boots a UEFI disk
# image, no mdimg involved (q35, OVMF from $OVMF_CODE with a private copy of
# $OVMF_VARS, the image on virtio), in the background under a timeout, its
# serial input the FIFO $T/in (made here: open it for writing next, it
# blocks until then), output to OUT and ERR.  Sets QPID.
md_qemu_ovmf() {
    cp "$OVMF_VARS" "$T/vars.fd"
    rm -f "$T/in"
    mkfifo "$T/in"
    timeout "$1" "$QEMU" -machine q35 -accel tcg -m 256 -nodefaults -display none -serial stdio \
        -no-reboot \
        -drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE" \
        -drive "if=pflash,format=raw,file=$T/vars.fd" \
        -drive "file=$2,format=raw,if=virtio" <"$T/in" >"$3" 2>"$4" &
    QPID=$!
}

# md_wait_for FILE STRING SECONDS: poll FILE until it holds STRING (0), or
# until the QEMU of $QPID has exited without it or the time runs out (1).
md_wait_for() {
    _md_n=0
    while [ $_md_n -lt $(($3 * 10)) ]; do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        kill -0 "$QPID" 2>/dev/null || { grep -qF -- "$2" "$1"; return; }
        sleep 0.1
        _md_n=$((_md_n + 1))
    done
    return 1
}

# T: a new directory /tmp/NAME.XXXXXX, removed on exit.
md_tmpdir() {
    T=$(mktemp -d "/tmp/$1.XXXXXX")
    trap 'rm -rf "$T"' EXIT
}

# md_fat_tree DIR: the tree the FAT tests fill filesystems with (ASCII
# names): long names, nested directories, a 10 MB file, 8.3 names in upper,
# lower and mixed case, twelve names that share one short basis.
md_fat_tree() {
    mkdir -p "$1/EFI/BOOT" "$1/Nested/Deeper/Deepest level with a long name" "$1/lower" "$1/docs" \
        "$1/empty dir"
    printf 'MZ stub\n' >"$1/EFI/BOOT/BOOTX64.EFI"
    head -c 10000000 /dev/urandom >"$1/Nested/ten-megabytes.bin"
    printf 'upper\n' >"$1/README.TXT"
    printf 'lower\n' >"$1/lower/notes.txt"
    printf 'lower base\n' >"$1/lower/config.TXT"
    printf 'mixed\n' >"$1/lower/MixedCase.Txt"
    printf 'spaces\n' >"$1/docs/A file name with spaces.text"
    printf 'dots\n' >"$1/docs/archive.tar.gz"
    printf 'hidden\n' >"$1/docs/.hidden"
    printf 'deep\n' >"$1/Nested/Deeper/Deepest level with a long name/leaf"
    : >"$1/docs/empty"
    _md_i=1
    while [ $_md_i -le 12 ]; do
        printf '%s\n' $_md_i >"$1/docs/longfilename$_md_i.txt"
        _md_i=$((_md_i + 1))
    done
}
