#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""minidistro.py: the same as examples/minidistro.c, from Python through the
C ABI with ctypes (no bindings to compile).  Shows the conventions that make
libminidistro usable from any language: opaque handles, int returns with the
message on the context, versioned options structs filled by *_opts_init(),
callbacks with a userdata pointer.

    python3 minidistro.py [--lib PATH] [--boot] IMAGE KERNEL [initramfs|disk] [mbr|gpt]

The library is found via --lib, $LIBMINIDISTRO, or the loader's search path
("libminidistro.so.0").
"""
import ctypes
import os
import sys

c_char_p_p = ctypes.POINTER(ctypes.c_char_p)
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)

MD_DISTRO_ROOT_INITRAMFS, MD_DISTRO_ROOT_DISK = 0, 1
MD_TABLE_MBR, MD_TABLE_GPT = 1, 2
MD_DISTRO_FORCE = 0x1
MD_BOOT_ECHO = 0x2


class DistroOpts(ctypes.Structure):
    """struct md_distro_opts (include/libminidistro/md-distro.h), version 2."""
    _fields_ = [
        ("version", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("output", ctypes.c_char_p),
        ("kernel", ctypes.c_char_p),
        ("kernel_config", ctypes.c_char_p),
        ("modules_dir", ctypes.c_char_p),
        ("busybox", ctypes.c_char_p),
        ("hostname", ctypes.c_char_p),
        ("append", ctypes.c_char_p),
        ("initramfs_output", ctypes.c_char_p),
        ("overlays", c_char_p_p),
        ("modules", c_char_p_p),
        ("size", ctypes.c_uint64),
        ("root", ctypes.c_uint32),
        ("table", ctypes.c_uint32),
        ("compression", ctypes.c_int32),
        ("reserved", ctypes.c_uint32),
        ("progress", PROGRESS_FN),
        ("userdata", ctypes.c_void_p),
        ("rootfs", ctypes.c_char_p),
        ("initrd", ctypes.c_char_p),
        ("root_password", ctypes.c_char_p),
        ("free_bytes", ctypes.c_uint64),
        ("free_percent", ctypes.c_uint32),
        ("reserved2", ctypes.c_uint32),
    ]


class BootOpts(ctypes.Structure):
    """struct md_boot_opts (include/libminidistro/md-boot.h), version 2.

    md_boot_opts_init() fills the whole version-2 struct, so the layout here
    must be the current one (a version-1 struct is accepted by md_boot_start(),
    but only when filled without md_boot_opts_init())."""
    _fields_ = [
        ("version", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("qemu", ctypes.c_char_p),
        ("disk", ctypes.c_char_p),
        ("disk_if", ctypes.c_uint32),
        ("memory_mib", ctypes.c_uint32),
        ("kernel", ctypes.c_char_p),
        ("initrd", ctypes.c_char_p),
        ("append", ctypes.c_char_p),
        ("accel", ctypes.c_uint32),
        ("echo_fd", ctypes.c_int32),
        ("extra_args", c_char_p_p),
        ("firmware", ctypes.c_uint32),  # version 2
        ("reserved", ctypes.c_uint32),
        ("ovmf_code", ctypes.c_char_p),
        ("ovmf_vars", ctypes.c_char_p),
    ]


class MdError(Exception):
    pass


class Lib:
    def __init__(self, path=None):
        self.c = ctypes.CDLL(path or os.environ.get("LIBMINIDISTRO") or "libminidistro.so.0")
        c = self.c
        c.md_version.restype = ctypes.c_char_p
        c.md_strerror.restype = ctypes.c_char_p
        c.md_strerror.argtypes = [ctypes.c_int]
        c.md_ctx_new.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        c.md_ctx_free.argtypes = [ctypes.c_void_p]
        c.md_ctx_errmsg.restype = ctypes.c_char_p
        c.md_ctx_errmsg.argtypes = [ctypes.c_void_p]
        c.md_kernel_release.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.c_size_t]
        c.md_distro_opts_init.argtypes = [ctypes.POINTER(DistroOpts)]
        c.md_distro_build.argtypes = [ctypes.c_void_p, ctypes.POINTER(DistroOpts)]
        c.md_boot_opts_init.argtypes = [ctypes.POINTER(BootOpts)]
        c.md_boot_start.argtypes = [ctypes.c_void_p, ctypes.POINTER(BootOpts),
                                    ctypes.POINTER(ctypes.c_void_p)]
        c.md_boot_expect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32]
        c.md_boot_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        c.md_boot_wait.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_int)]
        c.md_boot_tail.restype = ctypes.c_char_p
        c.md_boot_tail.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        c.md_boot_free.argtypes = [ctypes.c_void_p]
        self.ctx = ctypes.c_void_p()
        self.check(c.md_ctx_new(ctypes.byref(self.ctx)), "md_ctx_new")

    def check(self, r, what):
        if r < 0:
            msg = self.ctx and self.c.md_ctx_errmsg(self.ctx).decode()
            raise MdError(f"{what}: {msg or self.c.md_strerror(r).decode()}")
        return r

    def version(self):
        return self.c.md_version().decode()

    def kernel_release(self, kernel):
        buf = ctypes.create_string_buffer(128)
        self.check(self.c.md_kernel_release(self.ctx, kernel.encode(), buf, len(buf)), kernel)
        return buf.value.decode()

    def build(self, output, kernel, root="initramfs", table="mbr", size=64 << 20,
              overlays=(), progress=None):
        o = DistroOpts()
        self.c.md_distro_opts_init(ctypes.byref(o))  # version + defaults, no hard-coding
        o.output, o.kernel = output.encode(), kernel.encode()
        o.root = MD_DISTRO_ROOT_DISK if root == "disk" else MD_DISTRO_ROOT_INITRAMFS
        o.table = MD_TABLE_GPT if table == "gpt" else MD_TABLE_MBR
        o.size, o.flags = size, MD_DISTRO_FORCE
        arr = (ctypes.c_char_p * (len(overlays) + 1))(*[d.encode() for d in overlays], None)
        if overlays:
            o.overlays = ctypes.cast(arr, c_char_p_p)
        cb = PROGRESS_FN(lambda _ud, done, total: progress(done, total) or 0) if progress else None
        if cb:
            o.progress = cb  # kept alive by `cb` until the call returns
        self.check(self.c.md_distro_build(self.ctx, ctypes.byref(o)), "md_distro_build")

    def boot_and_run(self, image, command):
        bo = BootOpts()
        self.c.md_boot_opts_init(ctypes.byref(bo))
        bo.disk = image.encode()
        bo.flags |= MD_BOOT_ECHO
        bo.echo_fd = sys.stdout.fileno()
        b = ctypes.c_void_p()
        self.check(self.c.md_boot_start(self.ctx, ctypes.byref(bo), ctypes.byref(b)), "boot")
        try:
            status = ctypes.c_int(-1)
            for step in (lambda: self.c.md_boot_expect(b, b"minidistro: Linux", 240000),
                         lambda: self.c.md_boot_expect(b, b"# ", 120000),
                         lambda: self.c.md_boot_send(b, command.encode() + b"; poweroff\n"),
                         lambda: self.c.md_boot_wait(b, 120000, ctypes.byref(status))):
                r = step()
                if r < 0:
                    sys.stderr.write(self.c.md_boot_tail(b, 20).decode(errors="replace") + "\n")
                    self.check(r, "boot")
            return status.value
        finally:
            self.c.md_boot_free(b)

    def close(self):
        self.c.md_ctx_free(self.ctx)
        self.ctx = None


def main(argv):
    lib_path, boot = None, False
    while argv and argv[0].startswith("--"):
        if argv[0] == "--lib" and len(argv) > 1:
            lib_path, argv = argv[1], argv[2:]
        elif argv[0] == "--boot":
            boot, argv = True, argv[1:]
        else:
            break
    if not 2 <= len(argv) <= 4:
        print(__doc__.strip().splitlines()[-4], file=sys.stderr)
        print("usage: minidistro.py [--lib PATH] [--boot] IMAGE KERNEL [initramfs|disk] [mbr|gpt]",
              file=sys.stderr)
        return 2
    image, kernel = argv[0], argv[1]
    root = argv[2] if len(argv) > 2 else "initramfs"
    table = argv[3] if len(argv) > 3 else "mbr"
    lib = Lib(lib_path)
    try:
        release = lib.kernel_release(kernel)
        print(f"libminidistro {lib.version()} (python): building {image} for Linux {release} "
              f"({root} root, {table})")
        steps = []
        lib.build(image, kernel, root, table, progress=lambda d, t: steps.append(d))
        print(f"built {image} in {len(steps)} steps")
        if boot:
            status = lib.boot_and_run(image, "echo hello from python on $(uname -n)")
            print(f"\nQEMU exited with status {status}")
            return 0 if status == 0 else 1
    except MdError as e:
        print(f"minidistro.py: {e}", file=sys.stderr)
        return 1
    finally:
        lib.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
