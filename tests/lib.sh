# Shared prelude of the QEMU end-to-end tests, sourced with
#   . "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
# (meson sets MD_TESTDIR to this directory).  A missing tool or kernel skips
# the test with exit 77, meson's skip code.  The functions set the variables
# they name; they run in the caller's shell so that md_skip can exit it.

md_skip() {
    echo "SKIP: $*"
    exit 77
}

# QEMU: the path of qemu-system-x86_64.
md_need_qemu() {
    QEMU=$(command -v qemu-system-x86_64 || true)
    [ -n "$QEMU" ] || md_skip "qemu-system-x86_64 not installed"
}

# BUSYBOX: an executable busybox (the guest's whole userland).
md_need_busybox() {
    BUSYBOX=
    for _md_b in /bin/busybox /usr/bin/busybox; do
        [ -x "$_md_b" ] && { BUSYBOX=$_md_b; break; }
    done
    [ -n "$BUSYBOX" ] || md_skip "no busybox"
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
    [ -n "$KERNEL" ] && [ -r "$KERNEL" ] || md_skip "no readable /boot/vmlinuz-*"
}

# T: a new directory /tmp/NAME.XXXXXX, removed on exit.
md_tmpdir() {
    T=$(mktemp -d "/tmp/$1.XXXXXX")
    trap 'rm -rf "$T"' EXIT
}
