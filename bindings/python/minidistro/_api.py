# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Pythonic layer over _capi: contexts, trees, images, filesystems, the
disk pipeline, EXTLINUX, unified kernel images, the QEMU runner and the
one-call distro builder.  Every fallible call raises minidistro.Error (an
OSError) with the errno and the context's message."""
import ctypes
import os
import stat as _stat
import weakref

from . import _capi as C
from ._lib import (Progress, capi, cstr, fileno, fspath, make_error, ms, options, size_of,
                   strv, struct_dict, text)

_byref = ctypes.byref


class _Handle:
    """An owned C handle plus a reference on its context (so that the
    context's message can be read whatever the order objects are closed in)."""

    _free = None        # name of the C function that frees the handle

    def __init__(self, ctx, ptr, owned=True, parent=None):
        self._ctx = ctx
        self._ctxp = capi().md_ctx_ref(ctx._ptr)
        self._ptr = ptr
        self._owned = owned
        self._parent = parent   # keeps an owning object (a disk for its trees) alive

    def _call(self, name, *args, progress=None):
        """Call @name; raise Error with the context's message if it fails."""
        return _call(self._ctxp, name, *args, progress=progress)

    def _alive(self):
        if not self._ptr:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._ptr

    def close(self):
        """Free the handle (idempotent)."""
        if self._ptr is not None and self._owned and self._free:
            getattr(capi(), self._free)(self._ptr)
        self._ptr = None
        if self._ctxp is not None:
            capi().md_ctx_unref(self._ctxp)
            self._ctxp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _call(ctxp, name, *args, progress=None):
    lib = capi()
    if ctxp:
        lib.md_ctx_clear_error(ctxp)
    r = getattr(lib, name)(*args)
    if progress is not None:
        progress.reraise()
    if isinstance(r, int) and r < 0:
        msg = text(lib.md_ctx_errmsg(ctxp)) if ctxp else ""
        raise make_error(r, msg or text(lib.md_strerror(r)), name)
    return r


def _attr(mode=0, uid=0, gid=0, mtime=None):
    """An md_attr (mode 0: the default for the type; mtime None: the epoch)."""
    a = options(C.md_attr, "md_attr_init")
    a.mode, a.uid, a.gid = mode, uid, gid
    if mtime is not None:
        a.mtime = int(mtime)
    return a


def _flag(on, bit):
    return bit if on else 0


class Stat:
    """A filled md_ext_stat / md_fat_stat / md_fat_info: its fields as
    attributes (new C fields appear here by themselves)."""

    def __init__(self, st):
        self.__dict__.update(struct_dict(st))

    def is_dir(self):
        return _stat.S_ISDIR(self.mode)

    def is_file(self):
        return _stat.S_ISREG(self.mode)

    def is_symlink(self):
        return _stat.S_ISLNK(self.mode)

    def __repr__(self):
        return "Stat(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"


# ---- context --------------------------------------------------------------------------------

class Context(_Handle):
    """A libminidistro context: error messages, logging, the epoch.

        with minidistro.Context(epoch=0) as ctx:
            tree = ctx.tree()

    @epoch: seconds since 1970 (overrides SOURCE_DATE_EPOCH; see
    md_ctx_set_epoch()).  @log: a callable log(priority, message) receiving
    messages up to @log_level (MD_LOG_*)."""

    def __init__(self, epoch=None, log=None, log_level=C.MD_LOG_INFO):
        lib = capi()
        p = ctypes.POINTER(C.md_ctx)()
        r = lib.md_ctx_new(_byref(p))
        if r < 0:
            raise make_error(r, text(lib.md_strerror(r)) +
                             " (is SOURCE_DATE_EPOCH a non-negative number?)", "md_ctx_new")
        self._ptr, self._ctx, self._ctxp, self._owned, self._parent = p, self, None, True, None
        self._log_cb = None
        if epoch is not None:
            self.epoch = epoch
        if log is not None:
            self.set_log(log, log_level)

    def close(self):
        """Drop the context (objects made from it keep it alive as long as they live)."""
        if self._ptr is not None:
            capi().md_ctx_free(self._ptr)
            self._ptr = None

    def _call(self, name, *args, progress=None):
        return _call(self._alive(), name, *args, progress=progress)

    @property
    def errmsg(self):
        """The message of the last failed call ("" when none)."""
        return text(capi().md_ctx_errmsg(self._alive()))

    @property
    def epoch(self):
        """The epoch (SOURCE_DATE_EPOCH or set here), None when none is set."""
        lib = capi()
        return lib.md_ctx_get_epoch(self._alive()) if lib.md_ctx_has_epoch(self._ptr) else None

    @epoch.setter
    def epoch(self, value):
        self._call("md_ctx_set_epoch", self._alive(), int(value))

    def set_log(self, fn, max_priority=C.MD_LOG_INFO):
        """Send log messages of @max_priority and above (MD_LOG_*) to
        fn(priority, message); None turns logging off."""
        if fn is None:
            self._log_cb = None
            capi().md_ctx_set_log_fn(self._alive(), C.md_log_fn(), None, 0)
            return

        def cb(_ud, prio, msg):
            try:
                fn(prio, text(msg))
            except Exception:  # noqa: BLE001 - a logger must not unwind C frames
                pass
        self._log_cb = C.md_log_fn(cb)
        capi().md_ctx_set_log_fn(self._alive(), self._log_cb, None, max_priority)

    # -- factories --
    def tree(self):
        """A new empty Tree."""
        p = ctypes.POINTER(C.md_tree)()
        self._call("md_tree_new", self._alive(), _byref(p))
        return Tree(self, p)

    def create_image(self, path, size, force=False):
        """A new sparse image of @size bytes (int or "64M") at @path, written
        under a temporary name until Image.commit(); closing it uncommitted
        deletes it."""
        o = options(C.md_image_create_opts, "md_image_create_opts_init",
                    flags=_flag(force, C.MD_IMAGE_FORCE))
        p = ctypes.POINTER(C.md_image)()
        self._call("md_image_create", self._alive(), fspath(path), size_of(size), _byref(o),
                   _byref(p))
        return Image(self, p)

    def open_image(self, path, readonly=False, wait=False, atomic=False):
        """Open an existing image (locked while open).  With @atomic the
        changes go to a copy that Image.commit() renames over the image."""
        flags = (_flag(readonly, C.MD_IMAGE_RDONLY) | _flag(wait, C.MD_IMAGE_WAIT) |
                 _flag(atomic, C.MD_IMAGE_ATOMIC))
        p = ctypes.POINTER(C.md_image)()
        self._call("md_image_open", self._alive(), fspath(path), flags, _byref(p))
        return Image(self, p)

    def disk(self, size=0, table=None, seed=None, disk_id=None, headroom=None):
        """A new Disk description (the image pipeline); see Disk."""
        p = ctypes.POINTER(C.md_disk)()
        self._call("md_disk_new", self._alive(), _byref(p))
        d = Disk(self, p)
        if size:
            d.set_size(size)
        if table is not None or seed is not None or disk_id is not None:
            d.set_table(table if table is not None else "gpt", seed=seed, disk_id=disk_id)
        if headroom is not None:
            d.set_headroom(headroom)
        return d

    def extlinux_config(self, default=None, timeout=None, prompt=None, serial=None):
        """A new ExtlinuxConfig (an extlinux.conf builder); serial=(port, baud)."""
        p = ctypes.POINTER(C.md_extlinux_config)()
        self._call("md_extlinux_config_new", self._alive(), _byref(p))
        cfg = ExtlinuxConfig(self, p)
        if timeout is not None:
            cfg.set_timeout(timeout)
        if prompt is not None:
            cfg.set_prompt(prompt)
        if serial is not None:
            cfg.set_serial(*serial)
        if default is not None:
            cfg.set_default(default)
        return cfg

    def boot(self, disk=None, kernel=None, initrd=None, append=None, memory=None,
             interface="virtio", accel="auto", firmware="bios", snapshot=False, readonly=False,
             panic_check=True, echo=None, qemu=None, extra_args=(), ovmf_code=None,
             ovmf_vars=None):
        """Start QEMU on @disk and/or @kernel (+ @initrd, @append) and return
        a Boot for expect/send/wait.  @echo: a file object or descriptor
        the serial output is copied to.  @accel: auto, tcg or kvm;
        @firmware: bios, uefi or auto; @interface: virtio or ide."""
        keep = []
        o = options(C.md_boot_opts, "md_boot_opts_init")
        o.disk, o.kernel, o.initrd = fspath(disk), fspath(kernel), fspath(initrd)
        o.append, o.qemu = cstr(append), fspath(qemu)
        if memory:
            o.memory_mib = int(memory)
        o.disk_if = _choice("interface", interface, {"virtio": C.MD_BOOT_IF_VIRTIO,
                                                     "ide": C.MD_BOOT_IF_IDE})
        o.accel = _choice("accel", accel, {"auto": C.MD_BOOT_ACCEL_AUTO,
                                           "tcg": C.MD_BOOT_ACCEL_TCG,
                                           "kvm": C.MD_BOOT_ACCEL_KVM})
        o.firmware = _choice("firmware", firmware, _FIRMWARE)
        o.flags |= (_flag(snapshot, C.MD_BOOT_SNAPSHOT) | _flag(readonly, C.MD_BOOT_READONLY) |
                    _flag(not panic_check, C.MD_BOOT_NO_PANIC_CHECK))
        if echo is not None:
            o.flags |= C.MD_BOOT_ECHO
            o.echo_fd = fileno(echo)
        if extra_args:
            arr, o.extra_args = strv(extra_args, cstr)
            keep.append(arr)
        o.ovmf_code, o.ovmf_vars = fspath(ovmf_code), fspath(ovmf_vars)
        p = ctypes.POINTER(C.md_boot)()
        self._call("md_boot_start", self._alive(), _byref(o), _byref(p))
        return Boot(self, p, echo)

    # -- one-shot calls --
    def kernel_release(self, kernel):
        """The release string of bzImage @kernel ("6.1.0-18-amd64"); also a check
        that it is one."""
        buf = ctypes.create_string_buffer(256)
        self._call("md_kernel_release", self._alive(), fspath(kernel), buf, len(buf))
        return text(buf.value)

    def write_uki(self, path, kernel, initrds=(), cmdline=None, os_release=None,
                  os_release_text=None, stub=None):
        """Write a unified kernel image (EFI stub + kernel + initrds + command line)."""
        o = options(C.md_uki_opts, "md_uki_opts_init")
        o.kernel, o.stub, o.os_release = fspath(kernel), fspath(stub), fspath(os_release)
        o.cmdline, o.os_release_text = cstr(cmdline), cstr(os_release_text)
        keep = None
        if initrds:
            keep, o.initrds = strv([initrds] if isinstance(initrds, (str, bytes, os.PathLike))
                                   else initrds)
        self._call("md_uki_write", self._alive(), fspath(path), _byref(o))
        del keep

    def build_distro(self, output, kernel=None, busybox=None, root="initramfs", table=None,
                     size=0, kernel_config=None, modules_dir=None, hostname=None, append=None,
                     initramfs_output=None, overlays=(), modules=(), compression="auto",
                     force=False, no_modules=False, rootfs=None, initrd=None,
                     root_password=None, free=None, progress=None, boot="bios", efi_stub=None,
                     esp_size=0, sync=True):
        """A complete bootable image in one call (md_distro_build(); what
        `mdimg build` does): the BusyBox system, or a distribution's @rootfs.
        @root: initramfs or disk; @table: mbr or gpt (None: gpt for uefi and
        hybrid, else mbr); @boot: bios (EXTLINUX), uefi (an EFI System
        partition holding a unified kernel image) or hybrid (both);
        @efi_stub: the stub for the UKI; @esp_size: bytes or "8M" (0: what
        the UKI needs); @free (with @rootfs and no size): bytes, "64M" or
        "25%"; @progress(done, total) per phase; @sync=False: the image is not
        flushed to stable storage at the end (MD_DISTRO_NO_SYNC)."""
        keep = []
        o = options(C.md_distro_opts, "md_distro_opts_init")
        o.output, o.kernel, o.busybox = fspath(output), fspath(kernel), fspath(busybox)
        o.kernel_config, o.modules_dir = fspath(kernel_config), fspath(modules_dir)
        o.hostname, o.append = cstr(hostname), cstr(append)
        o.initramfs_output, o.rootfs, o.initrd = (fspath(initramfs_output), fspath(rootfs),
                                                  fspath(initrd))
        o.root_password = cstr(root_password)
        o.root = _choice("root", root, {"initramfs": C.MD_DISTRO_ROOT_INITRAMFS,
                                        "disk": C.MD_DISTRO_ROOT_DISK})
        o.boot = _choice("boot", boot, {"bios": C.MD_DISTRO_BOOT_BIOS, "uefi": C.MD_DISTRO_BOOT_UEFI,
                                        "hybrid": C.MD_DISTRO_BOOT_HYBRID})
        if table is None:
            table = "mbr" if o.boot == C.MD_DISTRO_BOOT_BIOS else "gpt"
        o.table = self._table(table)
        o.efi_stub = fspath(efi_stub)
        o.esp_size = size_of(esp_size)
        o.size = size_of(size)
        if compression != "auto":
            o.compression = self._compression(compression)
        o.flags |= _flag(force, C.MD_DISTRO_FORCE) | _flag(no_modules, C.MD_DISTRO_NO_MODULES)
        o.flags |= _flag(not sync, C.MD_DISTRO_NO_SYNC)
        if overlays:
            arr, o.overlays = strv(overlays)
            keep.append(arr)
        if modules:
            arr, o.modules = strv(modules, cstr)
            keep.append(arr)
        if free is not None:
            o.free_bytes, o.free_percent = _free(free)
        prog = Progress(progress)
        prog.install(o)
        self._call("md_distro_build", self._alive(), _byref(o), progress=prog)

    # -- names --
    def _table(self, table):
        if isinstance(table, int):
            return table
        v = ctypes.c_uint32()
        self._call("md_table_from_name", self._alive(), cstr(table), _byref(v))
        return v.value

    def _compression(self, name):
        if isinstance(name, int):
            return name
        v = ctypes.c_int32()
        self._call("md_compress_from_name", self._alive(), cstr(name or "none"), _byref(v))
        return v.value

    def _fs_type(self, name):
        if isinstance(name, int):
            return name
        v = ctypes.c_int32()
        self._call("md_fs_type_from_name", self._alive(), cstr(name), _byref(v))
        return v.value


_FIRMWARE = {"bios": C.MD_BOOT_FIRMWARE_BIOS, "uefi": C.MD_BOOT_FIRMWARE_UEFI,
             "auto": C.MD_BOOT_FIRMWARE_AUTO}


def _choice(what, value, names):
    if isinstance(value, int):
        return value
    try:
        return names[value]
    except KeyError:
        raise ValueError(f"{what}: '{value}' is not one of {', '.join(names)}") from None


def _free(free):
    """A computed size's free space: (bytes, percent)."""
    if isinstance(free, str) and free.endswith("%"):
        return 0, int(free[:-1])
    return size_of(free), 0


# ---- trees ----------------------------------------------------------------------------------

_NODES = {"chr": C.MD_NODE_CHR, "blk": C.MD_NODE_BLK, "fifo": C.MD_NODE_FIFO,
          "sock": C.MD_NODE_SOCK}
_SOURCES = {"auto": C.MD_SOURCE_AUTO, "host": C.MD_SOURCE_HOST, "archive": C.MD_SOURCE_ARCHIVE,
            "spec": C.MD_SOURCE_SPEC, "busybox": C.MD_SOURCE_BUSYBOX}


def _host_opts(prefix=None, keep_owner=False, keep_mtime=False, hardlinks=True, xattrs=False,
               root=True):
    o = options(C.md_host_opts, "md_host_opts_init")
    o.prefix = fspath(prefix)
    o.flags = (_flag(keep_owner, C.MD_HOST_KEEP_OWNER) | _flag(keep_mtime, C.MD_HOST_KEEP_MTIME) |
               _flag(not hardlinks, C.MD_HOST_NO_HARDLINKS) | _flag(xattrs, C.MD_HOST_XATTRS) |
               _flag(not root, C.MD_HOST_NO_ROOT))
    return o


class Tree(_Handle):
    """A tree of file entries: what every source fills and every sink
    (cpio, ext, FAT) writes.  Attributes: mode (0: the type's default),
    uid, gid, mtime (None: the context's epoch)."""

    _free = "md_tree_free"

    def __len__(self):
        return capi().md_tree_count(self._alive())

    def __contains__(self, path):
        return bool(self._call("md_tree_contains", self._alive(), fspath(path)))

    # single entries
    def add_dir(self, path, **attr):
        self._call("md_tree_add_dir", self._alive(), fspath(path), _byref(_attr(**attr)))

    def add_file(self, path, host_path, **attr):
        """A regular file whose contents are read from @host_path when written."""
        self._call("md_tree_add_file", self._alive(), fspath(path), fspath(host_path),
                   _byref(_attr(**attr)))

    def add_data(self, path, data, **attr):
        """A regular file holding @data (bytes, or str as UTF-8)."""
        data = data.encode() if isinstance(data, str) else bytes(data)
        self._call("md_tree_add_data", self._alive(), fspath(path), data, len(data),
                   _byref(_attr(**attr)))

    def add_symlink(self, path, target, **attr):
        self._call("md_tree_add_symlink", self._alive(), fspath(path), fspath(target),
                   _byref(_attr(**attr)))

    def add_hardlink(self, path, target):
        self._call("md_tree_add_hardlink", self._alive(), fspath(path), fspath(target))

    def add_node(self, path, kind, major=0, minor=0, **attr):
        """A device node, FIFO or socket: @kind chr, blk, fifo or sock."""
        self._call("md_tree_add_node", self._alive(), fspath(path), _choice("kind", kind, _NODES),
                   major, minor, _byref(_attr(**attr)))

    def set_xattr(self, path, name, value):
        value = value.encode() if isinstance(value, str) else bytes(value)
        self._call("md_tree_set_xattr", self._alive(), fspath(path), cstr(name), value, len(value))

    def remove(self, path):
        self._call("md_tree_remove", self._alive(), fspath(path))

    # sources
    def add_host(self, directory, prefix=None, keep_owner=False, keep_mtime=False,
                 hardlinks=True, xattrs=False, root=True):
        """The contents of host directory @directory (under @prefix)."""
        o = _host_opts(prefix, keep_owner, keep_mtime, hardlinks, xattrs, root)
        self._call("md_tree_add_host", self._alive(), fspath(directory), _byref(o))

    def add_spec(self, spec, base_dir=None):
        """A gen_init_cpio spec file; relative locations from @base_dir (default:
        the spec's directory)."""
        self._call("md_tree_add_spec", self._alive(), fspath(spec), fspath(base_dir))

    def add_spec_text(self, spec_text, name="<spec>", base_dir=None):
        """A spec given as text; @name is used in messages."""
        b = cstr(spec_text)
        self._call("md_tree_add_spec_buf", self._alive(), b, len(b), cstr(name), fspath(base_dir))

    def add_archive(self, archive):
        """Every entry of an archive libarchive reads (cpio, tar, ...; any compression)."""
        self._call("md_tree_add_archive", self._alive(), fspath(archive))

    def add_source(self, path, kind="auto", **host_opts):
        """One source by kind (auto: a directory or an archive; host, archive,
        spec, busybox), as the mdimg commands take them."""
        o = _host_opts(**host_opts)
        self._call("md_tree_add_source", self._alive(), _choice("kind", kind, _SOURCES),
                   fspath(path), _byref(o))

    def add_busybox(self, busybox, init=None, no_init=False):
        """A BusyBox system from a static busybox binary; @init: a host file
        used as /init instead of the built-in one."""
        o = options(C.md_busybox_opts, "md_busybox_opts_init")
        o.init_path = fspath(init)
        o.flags |= _flag(no_init, C.MD_BUSYBOX_NO_INIT)
        self._call("md_tree_add_busybox", self._alive(), fspath(busybox), _byref(o))

    def add_kmods(self, modules_dir, names, kernel_config=None, release=None, optional=False):
        """Kernel modules @names and their dependencies; returns the number of files added."""
        o = options(C.md_kmods_opts, "md_kmods_opts_init")
        o.kernel_config, o.release = fspath(kernel_config), cstr(release)
        o.flags |= _flag(optional, C.MD_KMODS_OPTIONAL)
        arr, p = strv(names, cstr)
        r = self._call("md_tree_add_kmods", self._alive(), fspath(modules_dir), p, _byref(o))
        del arr
        return r

    def add_distro_files(self, hostname=None):
        """The minidistro /init and /etc (on top of add_busybox(no_init=True))."""
        self._call("md_tree_add_distro_files", self._alive(), cstr(hostname))

    # sinks
    def write_cpio(self, out, compression="none", level=None, progress=None, threads=0):
        """Write the tree as a newc cpio archive (an initramfs) to @out: a
        path (replaced atomically), or a descriptor / file object.
        @compression: none, gzip, xz, zstd or lz4; @threads: compression
        threads (0: one per online CPU; the bytes are the same for any)."""
        o = options(C.md_cpio_opts, "md_cpio_opts_init")
        o.compression = self._ctx._compression(compression)
        if level is not None:
            o.level = level
        o.threads = threads
        prog = Progress(progress)
        prog.install(o)
        if isinstance(out, int) or hasattr(out, "fileno"):
            self._call("md_cpio_write_fd", self._alive(), fileno(out), _byref(o), progress=prog)
        else:
            self._call("md_cpio_write", self._alive(), fspath(out), _byref(o), progress=prog)


# ---- images ---------------------------------------------------------------------------------

class Partition:
    """One entry of a Probe: number (0: the whole disk), start, size, type,
    type_name, bootable, attrs, name, uuid, fs_type, fs_label, fs_uuid."""

    def __init__(self, probe, idx):
        lib = capi()
        self.number = lib.md_probe_number(probe, idx)
        self.start = lib.md_probe_start(probe, idx)
        self.size = lib.md_probe_size(probe, idx)
        self.type = text(lib.md_probe_type(probe, idx))
        self.type_name = text(lib.md_probe_type_name(probe, idx))
        self.bootable = bool(lib.md_probe_flags(probe, idx) & C.MD_PART_BOOTABLE)
        self.attrs = lib.md_probe_attrs(probe, idx)
        self.name = text(lib.md_probe_name(probe, idx))
        self.uuid = text(lib.md_probe_uuid(probe, idx))
        self.fs_type = text(lib.md_probe_fs_type(probe, idx))
        self.fs_label = text(lib.md_probe_fs_label(probe, idx))
        self.fs_uuid = text(lib.md_probe_fs_uuid(probe, idx))

    def __repr__(self):
        return "Partition(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"


class Probe:
    """What libblkid sees in an image: table ("dos", "gpt" or None), id,
    whole (the whole disk: its filesystem, if unpartitioned), partitions;
    json (the md_probe_to_json() text)."""

    def __init__(self, ptr):
        lib = capi()
        try:
            self.table = text(lib.md_probe_table(ptr))
            self.id = text(lib.md_probe_table_id(ptr))
            n = lib.md_probe_count(ptr)
            self.whole = Partition(ptr, 0)
            self.partitions = [Partition(ptr, i) for i in range(1, n + 1)]
            js = ctypes.c_char_p()
            r = lib.md_probe_to_json(ptr, _byref(js))
            if r < 0:
                raise make_error(r, text(lib.md_strerror(r)), "md_probe_to_json")
            self.json = text(js.value)
            lib.free(ctypes.cast(js, ctypes.c_void_p))
        finally:
            lib.md_probe_free(ptr)


class Image(_Handle):
    """A raw disk image file (Context.create_image(), Context.open_image())."""

    _free = "md_image_free"

    def __init__(self, ctx, ptr):
        super().__init__(ctx, ptr)
        self._open_fs = weakref.WeakSet()   # closed before the image: they borrow it

    def close(self):
        """Close the open filesystems on it, then the image (an uncommitted
        created image is deleted)."""
        for fs in list(self._open_fs):
            fs.close()
        super().close()

    def _child(self, fs):
        self._open_fs.add(fs)
        return fs

    @property
    def path(self):
        """Where data goes now (a temporary name until commit())."""
        return os.fsdecode(capi().md_image_path(self._alive()))

    @property
    def name(self):
        """The image's final path."""
        return os.fsdecode(capi().md_image_name(self._alive()))

    @property
    def size(self):
        return capi().md_image_size(self._alive())

    @property
    def readonly(self):
        return bool(capi().md_image_is_rdonly(self._alive()))

    def commit(self):
        """Publish a created image (rename into place), or an atomic copy."""
        self._call("md_image_commit", self._alive())

    def resize(self, size):
        self._call("md_image_resize", self._alive(), size_of(size))

    def usage(self):
        """(apparent size, allocated bytes)."""
        a, b = ctypes.c_uint64(), ctypes.c_uint64()
        self._call("md_image_usage", self._alive(), _byref(a), _byref(b))
        return a.value, b.value

    def partition_range(self, partno):
        """(offset, size) in bytes of partition @partno (0: the whole image)."""
        off, size = ctypes.c_uint64(), ctypes.c_uint64()
        self._call("md_image_partition_range", self._alive(), partno, _byref(off), _byref(size))
        return off.value, size.value

    def add_partition(self, spec=None, *, size=0, percent=0, type=None, bootable=False,
                      name=None, uuid=None):
        """Queue a partition for write_table(): a spec ("rest:linux:bootable",
        "64M:efi:name=ESP") or the fields of md_part_opts."""
        if spec is not None:
            self._call("md_image_add_partition_spec", self._alive(), cstr(spec))
            return
        o = _part_opts(size, percent, type, bootable, name, uuid)
        self._call("md_image_add_partition", self._alive(), _byref(o))

    def write_table(self, table="gpt", seed=None, disk_id=None):
        """Write the queued partitions: @table gpt or mbr; ids from @seed (or
        the epoch), or @disk_id."""
        o = _table_opts(self._ctx, table, seed, disk_id)
        self._call("md_image_write_table", self._alive(), _byref(o))

    def set_bootable(self, partno):
        self._call("md_image_set_bootable", self._alive(), partno)

    def default_partition(self):
        """The partition an ext filesystem goes on when none is named."""
        v = ctypes.c_uint32()
        self._call("md_image_default_partition", self._alive(), _byref(v))
        return v.value

    def default_fat_partition(self):
        """The partition a FAT filesystem goes on when none is named (the ESP)."""
        v = ctypes.c_uint32()
        self._call("md_image_default_fat_partition", self._alive(), _byref(v))
        return v.value

    def probe(self):
        """A Probe of the image (libblkid)."""
        p = ctypes.POINTER(C.md_probe)()
        self._call("md_image_probe", self._alive(), _byref(p))
        return Probe(p)

    def format_ext(self, part=0, fs_type="ext4", **opts):
        """Make an ext2/3/4 filesystem on partition @part (0: the whole image)
        and return it open.  @opts: the fields of md_ext_format_opts (label,
        uuid, features, block_size, inode_size, inode_count, inode_ratio,
        reserved_percent, journal_blocks)."""
        o = _ext_opts(self._ctx, fs_type, **opts)
        p = ctypes.POINTER(C.md_ext)()
        self._call("md_ext_format", self._alive(), part, _byref(o), _byref(p))
        return self._child(Ext(self._ctx, p, parent=self))

    def open_ext(self, part=0, readonly=False):
        p = ctypes.POINTER(C.md_ext)()
        self._call("md_ext_open", self._alive(), part, _flag(readonly, C.MD_EXT_RDONLY), _byref(p))
        return self._child(Ext(self._ctx, p, parent=self))

    def format_fat(self, part=0, fat_type="vfat", **opts):
        """Make a FAT filesystem (vfat: the type by size; fat12, fat16, fat32)
        and return it open.  @opts: cluster_size, label, volume_id, oem_name."""
        o = _fat_opts(self._ctx, fat_type, **opts)
        p = ctypes.POINTER(C.md_fat)()
        self._call("md_fat_format", self._alive(), part, _byref(o), _byref(p))
        return self._child(Fat(self._ctx, p, parent=self))

    def open_fat(self, part=0, readonly=False):
        p = ctypes.POINTER(C.md_fat)()
        self._call("md_fat_open", self._alive(), part, _flag(readonly, C.MD_FAT_RDONLY),
                   _byref(p))
        return self._child(Fat(self._ctx, p, parent=self))

    def install_extlinux(self, part=0, config=None, **opts):
        """Install EXTLINUX into the ext filesystem on @part.  @config: the
        extlinux.conf text or an ExtlinuxConfig (None: keep the existing one).
        @opts: dir, syslinux_dir, extlinux_bin, modules, no_mbr, raid, stupid."""
        o, keep = _extlinux_opts(config, **opts)
        self._call("md_extlinux_install", self._alive(), part, _byref(o))
        del keep


def _part_opts(size=0, percent=0, type=None, bootable=False, name=None, uuid=None):
    o = options(C.md_part_opts, "md_part_opts_init")
    o.size, o.percent = size_of(size), percent
    o.type, o.name, o.uuid = cstr(type), cstr(name), cstr(uuid)
    o.flags |= _flag(bootable, C.MD_PART_BOOTABLE)
    return o


def _table_opts(ctx, table="gpt", seed=None, disk_id=None):
    o = options(C.md_table_opts, "md_table_opts_init")
    o.type = ctx._table(table)
    if seed is not None:
        o.flags |= C.MD_TABLE_SEED
        o.seed = seed
    o.disk_id = cstr(disk_id)
    return o


def _ext_opts(ctx, fs_type="ext4", label=None, uuid=None, features=None, reserved_percent=None,
              **numbers):
    o = options(C.md_ext_format_opts, "md_ext_format_opts_init")
    o.fs_type = ctx._fs_type(fs_type)
    o.label, o.uuid, o.features = cstr(label), cstr(uuid), cstr(features)
    if reserved_percent is not None:
        o.reserved_percent = reserved_percent
    for k, v in numbers.items():
        if k not in C.md_ext_format_opts.C_TYPES or k in ("version", "flags"):
            raise TypeError(f"format_ext: unknown option {k!r}")
        setattr(o, k, v)
    return o


def _fat_opts(ctx, fat_type="vfat", cluster_size=0, label=None, volume_id=None, oem_name=None):
    o = options(C.md_fat_format_opts, "md_fat_format_opts_init")
    o.fat_type = ctx._fs_type(fat_type)
    o.cluster_size = cluster_size
    o.label, o.volume_id, o.oem_name = cstr(label), cstr(volume_id), cstr(oem_name)
    return o


def _extlinux_opts(config=None, dir=None, syslinux_dir=None, extlinux_bin=None, modules=(),
                   no_mbr=False, raid=False, stupid=False):
    keep = []
    o = options(C.md_extlinux_opts, "md_extlinux_opts_init")
    o.dir, o.syslinux_dir, o.extlinux_bin = fspath(dir), fspath(syslinux_dir), fspath(extlinux_bin)
    if isinstance(config, ExtlinuxConfig):
        config = config.render()
    o.config_text = cstr(config)
    if modules:
        arr, o.modules = strv(modules, cstr)
        keep.append(arr)
    o.flags |= (_flag(no_mbr, C.MD_EXTLINUX_NO_MBR) | _flag(raid, C.MD_EXTLINUX_RAID) |
                _flag(stupid, C.MD_EXTLINUX_STUPID))
    return o, keep


class _Listing:
    """md_ext_list_fn / md_fat_list_fn collecting (name, Stat) pairs."""

    def __init__(self, cbtype):
        self.items, self.exc = [], None
        self.c = cbtype(self._cb)

    def _cb(self, _ud, name, st):
        try:
            self.items.append((text(name), Stat(st.contents)))
            return 0
        except BaseException as e:  # noqa: B902
            self.exc = e
            return -1


class _Filesystem(_Handle):
    """What Ext and Fat share: reading back."""

    _stat_type = None
    _prefix = None

    def _fn(self, verb):
        return f"md_{self._prefix}_{verb}"

    def stat(self, path):
        """A Stat of @path (symlinks not followed)."""
        st = self._stat_type()
        st.version = 1
        self._call(self._fn("stat_path"), self._alive(), fspath(path), _byref(st))
        return Stat(st)

    def ls(self, path="/"):
        """[(name, Stat)] of directory @path, sorted by name."""
        lst = _Listing(self._list_fn)
        try:
            self._call(self._fn("list"), self._alive(), fspath(path), lst.c, None)
        finally:
            if lst.exc is not None:
                raise lst.exc
        return lst.items

    def read(self, path):
        """The contents of regular file @path (bytes)."""
        data, size = ctypes.c_void_p(), ctypes.c_size_t()
        self._call(self._fn("read_file"), self._alive(), fspath(path), _byref(data), _byref(size))
        try:
            return ctypes.string_at(data, size.value)
        finally:
            capi().free(data)

    def extract(self, path, out):
        """Copy regular file @path to @out: a host path (written atomically),
        or a descriptor / file object."""
        if isinstance(out, int) or hasattr(out, "fileno"):
            self._call(self._fn("extract_fd"), self._alive(), fspath(path), fileno(out))
        else:
            self._call(self._fn("extract_file"), self._alive(), fspath(path), fspath(out))


class Ext(_Filesystem):
    """An open ext2/3/4 filesystem in an Image.  close() writes the pending
    metadata; discard() drops it (after a failure)."""

    _free = "md_ext_free"
    _stat_type = C.md_ext_stat
    _list_fn = C.md_ext_list_fn
    _prefix = "ext"

    def close(self):
        """Write pending metadata and close (raises on a failed flush)."""
        if self._ptr is not None:
            p, self._ptr = self._ptr, None
            try:
                _call(self._ctxp, "md_ext_close", p)
            finally:
                super().close()
        else:
            super().close()

    def discard(self):
        super().close()

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:
            self.discard()
        else:
            self.close()

    def populate(self, tree, target=None, progress=None):
        """Copy @tree into the filesystem (below @target), merging."""
        o = options(C.md_ext_populate_opts, "md_ext_populate_opts_init")
        o.target = fspath(target)
        prog = Progress(progress)
        prog.install(o)
        self._call("md_ext_populate", self._alive(), tree._alive(), _byref(o), progress=prog)

    def mkdir(self, path, **attr):
        self._call("md_ext_mkdir", self._alive(), fspath(path), _byref(_attr(**attr)))

    def write_file(self, path, data, **attr):
        data = data.encode() if isinstance(data, str) else bytes(data)
        self._call("md_ext_write_file", self._alive(), fspath(path), data, len(data),
                   _byref(_attr(**attr)))

    def write_host_file(self, path, host_path, **attr):
        self._call("md_ext_write_host_file", self._alive(), fspath(path), fspath(host_path),
                   _byref(_attr(**attr)))

    def exists(self, path):
        return bool(self._call("md_ext_exists", self._alive(), fspath(path)))

    def readlink(self, path):
        p = ctypes.c_char_p()
        self._call("md_ext_readlink", self._alive(), fspath(path), _byref(p))
        try:
            return os.fsdecode(p.value)
        finally:
            capi().free(ctypes.cast(p, ctypes.c_void_p))


class Fat(_Filesystem):
    """An open FAT filesystem in an Image."""

    _free = "md_fat_free"
    _stat_type = C.md_fat_stat
    _list_fn = C.md_fat_list_fn
    _prefix = "fat"

    def populate(self, tree, skip_special=False, progress=None):
        """Fill the (empty) filesystem with the directories and files of @tree."""
        o = options(C.md_fat_populate_opts, "md_fat_populate_opts_init")
        o.flags |= _flag(skip_special, C.MD_FAT_SKIP_SPECIAL)
        prog = Progress(progress)
        prog.install(o)
        self._call("md_fat_populate", self._alive(), tree._alive(), _byref(o), progress=prog)

    def info(self):
        """A Stat-like object of md_fat_info (fat_type, cluster_size, label, ...)."""
        i = C.md_fat_info()
        i.version = C.MD_FAT_INFO_VERSION
        self._call("md_fat_get_info", self._alive(), _byref(i))
        return Stat(i)


# ---- EXTLINUX config ------------------------------------------------------------------------

class ExtlinuxConfig(_Handle):
    """An extlinux.conf builder (Context.extlinux_config())."""

    _free = "md_extlinux_config_free"

    def set_default(self, label):
        self._call("md_extlinux_config_set_default", self._alive(), cstr(label))

    def set_timeout(self, deciseconds):
        self._call("md_extlinux_config_set_timeout", self._alive(), deciseconds)

    def set_prompt(self, prompt):
        self._call("md_extlinux_config_set_prompt", self._alive(), 1 if prompt else 0)

    def set_serial(self, port, baud):
        self._call("md_extlinux_config_set_serial", self._alive(), port, baud)

    def add_entry(self, label, kernel, initrd=None, append=None):
        """A LABEL entry; @initrd a path or a list of paths."""
        if initrd is not None and not isinstance(initrd, (str, bytes)):
            initrd = ",".join(os.fsdecode(i) for i in initrd)
        self._call("md_extlinux_config_add_entry", self._alive(), cstr(label), fspath(kernel),
                   fspath(initrd), cstr(append))

    def render(self):
        """The extlinux.conf text."""
        t = ctypes.c_char_p()
        self._call("md_extlinux_config_render", self._alive(), _byref(t))
        return text(t.value)


# ---- the disk pipeline ----------------------------------------------------------------------

class DiskFilesystem:
    """A filesystem of a Disk: its index, its tree (owned by the disk: fill
    it with the Tree calls) and, after Disk.write(), its partition."""

    def __init__(self, disk, index, tree):
        self.disk, self.index, self.tree = disk, index, tree

    @property
    def partition(self):
        return capi().md_disk_fs_partition(self.disk._alive(), self.index)

    def set_extlinux(self, config=None, **opts):
        """Install EXTLINUX here once populated (see Image.install_extlinux())."""
        self.disk.set_extlinux(self.index, config, **opts)


class Disk(_Handle):
    """The image pipeline: describe the disk (size, table, partitions,
    filesystems with their trees, boot loader) and write() it in one go."""

    _free = "md_disk_free"
    AUTO = C.MD_DISK_PART_AUTO

    def __init__(self, ctx, ptr):
        super().__init__(ctx, ptr)
        self._trees = []

    def close(self):
        for t in self._trees:
            t._ptr = None     # owned by the disk
        super().close()

    def set_size(self, size):
        """Image size (int or "64M"); 0: computed from the contents."""
        self._call("md_disk_set_size", self._alive(), size_of(size))

    @property
    def size(self):
        return capi().md_disk_size(self._alive())

    def set_headroom(self, headroom):
        """Free space a computed size leaves: bytes, "64M" or "25%"."""
        b, pct = _free(headroom)
        self._call("md_disk_set_headroom", self._alive(), b, pct)

    def set_table(self, table="gpt", seed=None, disk_id=None):
        o = _table_opts(self._ctx, table, seed, disk_id)
        self._call("md_disk_set_table", self._alive(), _byref(o))

    @property
    def table(self):
        return text(capi().md_table_name(capi().md_disk_table(self._alive())))

    def add_partition(self, spec=None, **opts):
        """A partition: a spec ("rest:linux:bootable") or md_part_opts fields."""
        if spec is not None:
            self._call("md_disk_add_partition_spec", self._alive(), cstr(spec))
            return
        o = _part_opts(**opts)
        self._call("md_disk_add_partition", self._alive(), _byref(o))

    @property
    def partition_count(self):
        return capi().md_disk_partition_count(self._alive())

    @property
    def fs_count(self):
        return capi().md_disk_fs_count(self._alive())

    def add_ext(self, part=AUTO, fs_type="ext4", **opts):
        """An ext filesystem on @part (AUTO: chosen when the table is
        written) made with md_ext_format_opts fields @opts; returns a
        DiskFilesystem whose tree fills it."""
        o = _ext_opts(self._ctx, fs_type, **opts)
        t = ctypes.POINTER(C.md_tree)()
        idx = self._call("md_disk_add_ext", self._alive(), part, _byref(o), _byref(t))
        return self._fs(idx, t)

    def add_fat(self, part=AUTO, fat_type="vfat", **opts):
        """A FAT filesystem (AUTO: on the EFI System partition); see add_ext()."""
        o = _fat_opts(self._ctx, fat_type, **opts)
        t = ctypes.POINTER(C.md_tree)()
        idx = self._call("md_disk_add_fat", self._alive(), part, _byref(o), _byref(t))
        return self._fs(idx, t)

    def _fs(self, idx, t):
        tree = Tree(self._ctx, t, owned=False, parent=self)
        self._trees.append(tree)
        return DiskFilesystem(self, idx, tree)

    def set_extlinux(self, index, config=None, **opts):
        o, keep = _extlinux_opts(config, **opts)
        self._call("md_disk_set_extlinux", self._alive(), index, _byref(o))
        del keep

    def write(self, path, force=False, progress=None, sync=True):
        """Build the image at @path (published only when complete).
        sync=False: no flush to stable storage at the end (MD_DISK_NO_SYNC)."""
        o = options(C.md_disk_write_opts, "md_disk_write_opts_init")
        o.flags |= _flag(force, C.MD_DISK_FORCE)
        o.flags |= _flag(not sync, C.MD_DISK_NO_SYNC)
        prog = Progress(progress)
        prog.install(o)
        self._call("md_disk_write", self._alive(), fspath(path), _byref(o), progress=prog)


# ---- boot -----------------------------------------------------------------------------------

class Boot(_Handle):
    """A QEMU run (Context.boot()): expect() output, send() input, wait()
    for the power-off.  Timeouts are in seconds (None or 0: none)."""

    _free = "md_boot_free"

    def __init__(self, ctx, ptr, echo=None):
        super().__init__(ctx, ptr)
        self._echo = echo   # the file object must outlive the run

    def expect(self, s, timeout=60):
        """Wait until @s appears in the serial output after the last match."""
        self._call("md_boot_expect", self._alive(), cstr(s), ms(timeout))

    def send(self, s):
        """Type @s (add "\\n" to run a command)."""
        self._call("md_boot_send", self._alive(), cstr(s))

    def wait(self, timeout=None):
        """Wait for QEMU to exit; its exit status (0: a clean power-off)."""
        st = ctypes.c_int(-1)
        self._call("md_boot_wait", self._alive(), ms(timeout), _byref(st))
        return st.value

    def kill(self):
        self._call("md_boot_kill", self._alive())

    def interactive(self, in_fd=0, out_fd=1, timeout=None):
        """Relay the console until QEMU exits: (quit by Ctrl-A x, exit status)."""
        st = ctypes.c_int(-1)
        r = self._call("md_boot_interactive", self._alive(), fileno(in_fd), fileno(out_fd),
                       ms(timeout), _byref(st))
        return bool(r), st.value

    def tail(self, lines=20):
        """The last @lines lines of output (and QEMU's stderr), for reports."""
        return text(capi().md_boot_tail(self._alive(), lines))

    @property
    def pid(self):
        return capi().md_boot_pid(self._alive())

    @property
    def accel(self):
        return {C.MD_BOOT_ACCEL_TCG: "tcg", C.MD_BOOT_ACCEL_KVM: "kvm"}.get(
            capi().md_boot_accel(self._alive()))

    @property
    def firmware(self):
        return {v: k for k, v in _FIRMWARE.items()}.get(capi().md_boot_firmware(self._alive()))


# ---- functions without a context -------------------------------------------------------------

def version():
    """The library's version string."""
    return text(capi().md_version())


def version_number():
    return capi().md_version_number()


def parse_size(s):
    """A size string ("64M": powers of 1024) in bytes."""
    return size_of(s)


def quote(s, style="text"):
    """@s quoted for output: style "json" (a JSON string literal) or "text"."""
    st = _choice("style", style, {"json": C.MD_QUOTE_JSON, "text": C.MD_QUOTE_TEXT})
    p = ctypes.c_char_p()
    _call(None, "md_quote", cstr(s), st, _byref(p))
    try:
        return text(p.value)
    finally:
        capi().free(ctypes.cast(p, ctypes.c_void_p))


def compress_levels(compression):
    """(min, max, default) level of a codec ("gzip", ... or MD_COMPRESS_*)."""
    if not isinstance(compression, int):
        v = ctypes.c_int32()
        _call(None, "md_compress_from_name", None, cstr(compression), _byref(v))
        compression = v.value
    lo, hi, de = ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int32()
    _call(None, "md_compress_levels", compression, _byref(lo), _byref(hi), _byref(de))
    return lo.value, hi.value, de.value
