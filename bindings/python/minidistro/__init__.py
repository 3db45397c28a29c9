# SPDX-License-Identifier: LGPL-2.1-or-later
"""minidistro: build bootable Linux images without root, from Python.

Bindings for libminidistro over its C ABI with ctypes (standard library
only, nothing to compile).  Two layers:

  minidistro.C       the thin layer, generated from the C headers: every
                     constant (C.MD_COMPRESS_GZIP), options struct
                     (C.md_cpio_opts) and prototype, 1:1
  minidistro.lib()   the loaded library with those prototypes applied
  the rest           the Pythonic layer:

    import minidistro
    with minidistro.Context() as ctx:
        tree = ctx.tree()
        tree.add_busybox("/bin/busybox")
        tree.add_host("overlay")
        tree.write_cpio("initrd.gz", compression="gzip")

Every failing call raises minidistro.Error, an OSError whose errno is the
library's (EINVAL, ENOENT, ...) and whose strerror is the context's
message (e.g. "devices.list:3: unknown type 'fiel'").  Paths may be str,
bytes or pathlib objects; progress callbacks are callables (done, total)
that cancel by returning a true value.

The library is found through $LIBMINIDISTRO (a path), then
`pkg-config --variable=libdir libminidistro`, then the dynamic loader
(LD_LIBRARY_PATH, the system's libraries).
"""
from . import _capi as C
from ._api import (Boot, Context, Disk, DiskFilesystem, Ext, ExtlinuxConfig, Fat, Image,
                   Partition, Probe, Stat, Tree, compress_levels, parse_size, quote, version,
                   version_number)
from ._lib import CancelledError, Error, capi as lib, find_library, strerror

__version__ = "0.1.0"

__all__ = ["C", "lib", "find_library", "Error", "CancelledError", "strerror", "Context", "Tree",
           "Image", "Probe", "Partition", "Ext", "Fat", "Stat", "ExtlinuxConfig", "Disk",
           "DiskFilesystem", "Boot", "version", "version_number", "parse_size", "quote",
           "compress_levels"]
