#!/bin/sh
# Kernel config check test.
#  (b) the checker itself: it must fail, naming the symbol, when a fragment
#      symbol is missing from or forced into a .config, and pass otherwise;
#  (a) the cached kernel's final .config honours configs/minidistro.config.
# Exit 0 pass, 1 fail, 77 skip ((a) needs a kernel built by scripts/build-kernel;
# (b) always runs first, so a broken checker fails even without one).
set -u
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"

top=$(cd "$(dirname "$0")/.." && pwd)
bk=$top/scripts/build-kernel
frag=$top/configs/minidistro.config

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kcfgtest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# --- (b) the checker -------------------------------------------------------------

# A .config that honours the fragment exactly, plus unrelated noise.
{
    echo "# synthetic .config"
    grep -E '^CONFIG_[A-Za-z0-9_]+=' "$frag"
    echo "CONFIG_UNRELATED=y"
} >"$tmp/good.config"
[ "$(grep -c '^CONFIG_' "$tmp/good.config")" -gt 20 ] || md_die "fragment $frag looks empty"

"$bk" --check-config "$tmp/good.config" "$frag" 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; md_die "checker rejects a .config that honours the fragment"; }

# One required symbol dropped, as olddefconfig does when a dependency is unmet.
sed 's/^CONFIG_VIRTIO_BLK=y$/# CONFIG_VIRTIO_BLK is not set/' "$tmp/good.config" >"$tmp/dropped.config"
grep -q '^# CONFIG_VIRTIO_BLK is not set' "$tmp/dropped.config" || md_die "test setup: VIRTIO_BLK not in fragment"
if "$bk" --check-config "$tmp/dropped.config" "$frag" 2>"$tmp/err"; then
    md_die "checker accepted a .config without CONFIG_VIRTIO_BLK"
fi
grep -q 'CONFIG_VIRTIO_BLK' "$tmp/err" || { cat "$tmp/err" >&2; md_die "checker did not name CONFIG_VIRTIO_BLK"; }

# A symbol absent altogether (not even "is not set") must be named too.
grep -v '^CONFIG_EXT4_FS=' "$tmp/good.config" >"$tmp/absent.config"
if "$bk" --check-config "$tmp/absent.config" "$frag" 2>"$tmp/err"; then
    md_die "checker accepted a .config without CONFIG_EXT4_FS"
fi
grep -q 'CONFIG_EXT4_FS ' "$tmp/err" || { cat "$tmp/err" >&2; md_die "checker did not name CONFIG_EXT4_FS"; }

# A symbol the fragment turns off but something selected back on.
off=$(sed -n 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1/p' "$frag" | head -n 1)
if [ -n "$off" ]; then
    { cat "$tmp/good.config"; echo "$off=y"; } >"$tmp/forced.config"
    if "$bk" --check-config "$tmp/forced.config" "$frag" 2>"$tmp/err"; then
        md_die "checker accepted a .config with $off=y"
    fi
    grep -q "$off" "$tmp/err" || { cat "$tmp/err" >&2; md_die "checker did not name $off"; }
fi

# Missing file: an error, not a pass.
if "$bk" --check-config "$tmp/nonexistent" "$frag" 2>/dev/null; then
    md_die "checker accepted a missing .config"
fi
md_ok "checker fails on dropped, absent and forced-on symbols"

# --- (a) the cached kernel ----------------------------------------------------------

# environmental: scripts/test builds the kernel after the tool suite, so a
# first run on an empty cache has none yet (no package provides it)
if ! image=$("$bk" --query 2>/dev/null); then
    md_skip_env "no cached kernel yet (run scripts/build-kernel first)"
fi
cfg=$(dirname "$image")/config
[ -f "$cfg" ] || md_die "cached kernel $image has no config next to it"
"$bk" --check-config "$cfg" "$frag" || md_die "cached kernel's .config does not honour $frag"
md_ok "$cfg honours the fragment"
md_done
