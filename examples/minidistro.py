#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""minidistro.py: build a bootable BusyBox disk image with the minidistro
Python package (bindings/python: ctypes over libminidistro.so.0) and,
optionally, boot it in QEMU and run one command.  The same as
examples/minidistro.c and `mdimg build`: with the same inputs and
SOURCE_DATE_EPOCH the three write the same bytes.

    minidistro.py -o OUT --kernel PATH [--busybox PATH] [--root initramfs|disk]
                  [--table mbr|gpt] [--size SIZE] [--overlay DIR]... [--boot]

The package is imported from the installed copy, else from ../bindings/python
next to this file; the library from $LIBMINIDISTRO, pkg-config's libdir or the
dynamic loader (see `pydoc minidistro`).
"""
import argparse
import os
import sys

# This file is called minidistro.py too: its own directory must not shadow the package.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
try:
    import minidistro
except ImportError:
    sys.path.insert(0, os.path.join(HERE, "..", "bindings", "python"))
    import minidistro


def boot_and_run(ctx, image, command):
    """Boot @image, wait for the shell, run @command, power off; QEMU's exit status."""
    with ctx.boot(disk=image, echo=sys.stdout) as vm:
        try:
            vm.expect("minidistro: Linux", timeout=240)
            vm.expect("# ", timeout=120)
            vm.send(command + "; poweroff\n")
            vm.expect("hello from", timeout=60)
            return vm.wait(timeout=120)
        except minidistro.Error:
            sys.stderr.write("last serial lines:\n" + vm.tail(20) + "\n")
            raise


def main(argv):
    ap = argparse.ArgumentParser(prog="minidistro.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", required=True, help="the image to create (replaced)")
    ap.add_argument("--kernel", required=True, help="x86 bzImage to boot")
    ap.add_argument("--busybox", help="static BusyBox binary (default: /bin/busybox)")
    ap.add_argument("--root", choices=("initramfs", "disk"), default="initramfs",
                    help="run from RAM (default) or switch_root to the ext4 partition")
    ap.add_argument("--table", choices=("mbr", "gpt"), default="mbr",
                    help="partition table (default mbr)")
    ap.add_argument("-s", "--size", default="64M", help="image size (default 64M)")
    ap.add_argument("--overlay", action="append", default=[],
                    help="copy DIR's contents over the system (repeatable)")
    ap.add_argument("--boot", action="store_true", help="boot the image and run a command")
    a = ap.parse_args(argv)

    try:
        with minidistro.Context() as ctx:
            # reading the release is also the check that the kernel is a bzImage
            release = ctx.kernel_release(a.kernel)
            print(f"libminidistro {minidistro.version()} (python): building {a.output} for "
                  f"Linux {release} ({a.root} root, {a.table})")
            steps = []
            ctx.build_distro(a.output, kernel=a.kernel, busybox=a.busybox, root=a.root,
                             table=a.table, size=a.size, overlays=a.overlay, force=True,
                             progress=lambda done, total: steps.append(done))
            print(f"built {a.output} in {len(steps)} steps")
            if a.boot:
                status = boot_and_run(ctx, a.output, "echo hello from python on $(uname -n)")
                print(f"\nQEMU exited with status {status}")
                return 0 if status == 0 else 1
    except minidistro.Error as e:
        print(f"minidistro.py: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
