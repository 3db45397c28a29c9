# SPDX-License-Identifier: LGPL-2.1-or-later
"""Finding and loading libminidistro.so.0, errors, and the helpers every
wrapper uses (paths, strings, callbacks)."""
import ctypes
import errno as _errno
import os
import subprocess
import threading

from . import _capi

SONAME = "libminidistro.so.0"


def find_library():
    """The library to load: $LIBMINIDISTRO (a path), else SONAME in the
    libdir `pkg-config --variable=libdir libminidistro` names, else SONAME
    for the dynamic loader to find (LD_LIBRARY_PATH, ld.so.cache)."""
    env = os.environ.get("LIBMINIDISTRO")
    if env:
        return env
    try:
        r = subprocess.run(["pkg-config", "--variable=libdir", "libminidistro"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True, timeout=30, check=False)
        libdir = r.stdout.strip() if r.returncode == 0 else ""
        if libdir and os.path.exists(os.path.join(libdir, SONAME)):
            return os.path.join(libdir, SONAME)
    except (OSError, subprocess.SubprocessError):
        pass
    return SONAME


class CAPI:
    """The loaded library with every prototype of _capi.PROTOTYPES applied:
    `capi().md_ctx_new(...)`.  A function the loaded library lacks (an older
    library than these bindings) raises NotImplementedError when called."""

    def __init__(self, path):
        self.path = path
        self.dll = ctypes.CDLL(path)
        self.missing = []
        for name, (restype, argtypes) in _capi.PROTOTYPES.items():
            try:
                f = getattr(self.dll, name)
            except AttributeError:
                self.missing.append(name)
                continue
            f.restype = restype
            f.argtypes = argtypes
            setattr(self, name, f)
        libc = ctypes.CDLL(None)
        self.free = libc.free
        self.free.argtypes = [ctypes.c_void_p]
        self.free.restype = None

    def __getattr__(self, name):
        if name in _capi.PROTOTYPES:
            raise NotImplementedError(f"{name} is not in {self.path} (an older libminidistro?)")
        raise AttributeError(name)


_capi_lock = threading.Lock()
_loaded = None


def capi():
    """The library, loaded on first use (see find_library())."""
    global _loaded
    with _capi_lock:
        if _loaded is None:
            path = find_library()
            try:
                _loaded = CAPI(path)
            except OSError as e:
                raise ImportError(f"minidistro: cannot load {path}: {e} (set LIBMINIDISTRO to "
                                  f"the library's path, or LD_LIBRARY_PATH)") from e
        return _loaded


# ---- errors ---------------------------------------------------------------------------------

class Error(OSError):
    """A libminidistro call failed.  `errno` is the (positive) errno value,
    `strerror` the context's message ("spec.txt:3: unknown type 'fiel'"),
    or the errno's name when the library left none; `function` is the C
    function that failed.  For the common errno values the exception is also
    an instance of the matching builtin (FileNotFoundError, FileExistsError,
    PermissionError, IsADirectoryError, NotADirectoryError, TimeoutError)."""

    function = None

    def __str__(self):
        return f"[Errno {self.errno}] {self.function}: {self.strerror}" if self.function \
            else super().__str__()


class CancelledError(Error):
    """-ECANCELED: a progress or listing callback asked to stop."""


_SUBCLASSES = {}
for _code, _builtin in ((_errno.ENOENT, FileNotFoundError), (_errno.EEXIST, FileExistsError),
                        (_errno.EACCES, PermissionError), (_errno.EPERM, PermissionError),
                        (_errno.EISDIR, IsADirectoryError), (_errno.ENOTDIR, NotADirectoryError),
                        (_errno.ETIMEDOUT, TimeoutError)):
    _SUBCLASSES[_code] = type(_builtin.__name__.replace("Error", "") + "Error",
                              (Error, _builtin), {"__module__": "minidistro"})
_SUBCLASSES[_errno.ECANCELED] = CancelledError


def make_error(err, message, function=None):
    err = abs(err)
    cls = _SUBCLASSES.get(err, Error)
    e = cls(err, message)
    e.function = function
    return e


def strerror(err):
    """Name of an errno value (positive or negative), as md_strerror()."""
    return capi().md_strerror(int(err)).decode()


# ---- conversions ------------------------------------------------------------------------------

def fspath(p):
    """str, bytes or os.PathLike (pathlib) -> bytes for the C API; None stays None."""
    if p is None:
        return None
    return os.fsencode(p)


def cstr(s):
    """A text argument (not a path): str or bytes -> bytes; None stays None."""
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return str(s).encode("utf-8", "surrogateescape")


def text(b):
    """bytes from the library -> str (undecodable bytes kept as surrogates)."""
    if b is None:
        return None
    return b.decode("utf-8", "surrogateescape")


def strv(items, conv=fspath):
    """A NULL-terminated `const char *const *` array (kept alive by the caller)."""
    items = [conv(i) for i in items]
    arr = (ctypes.c_char_p * (len(items) + 1))(*items, None)
    return arr, ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p))


def fileno(f):
    """An int descriptor, or an object with fileno()."""
    if isinstance(f, int):
        return f
    if hasattr(f, "flush"):
        f.flush()
    return f.fileno()


def size_of(value):
    """A size in bytes: an int, or a string md_parse_size() reads ("64M")."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    v = ctypes.c_uint64()
    r = capi().md_parse_size(cstr(value), ctypes.byref(v))
    if r < 0:
        raise make_error(r, f"'{value}' is not a size (examples: 512, 64M, 2G)", "md_parse_size")
    return v.value


def ms(seconds):
    """Seconds (int or float; None or 0: forever) -> the C API's milliseconds."""
    if not seconds:
        return 0
    return max(1, int(seconds * 1000))


class Progress:
    """A Python callable `fn(done, total)` as an md_progress_fn.  A true
    return value cancels (-ECANCELED); an exception raised by `fn` cancels
    too and is raised again by the wrapper after the C call returns."""

    def __init__(self, fn):
        self.fn, self.exc = fn, None
        self.c = _capi.md_progress_fn(self._call) if fn is not None else None

    def _call(self, _userdata, done, total):
        try:
            return 1 if self.fn(done, total) else 0
        except BaseException as e:  # noqa: B902 - carried across the C frames
            self.exc = e
            return 1

    def install(self, opts):
        if self.c is not None:
            opts.progress = self.c

    def reraise(self):
        if self.exc is not None:
            exc, self.exc = self.exc, None
            raise exc


def options(cls, init_name, **fields):
    """A versioned options struct filled by its md_*_opts_init() (version and
    defaults from the library, nothing hard-coded), then @fields."""
    o = cls()
    getattr(capi(), init_name)(ctypes.byref(o))
    for k, v in fields.items():
        if v is not None:
            setattr(o, k, v)
    return o


def struct_dict(st, skip=("version",)):
    """The fields of a filled-in struct as a dict (char arrays as str)."""
    out = {}
    for name, _t in st._fields_:
        if name in skip:
            continue
        v = getattr(st, name)
        out[name] = text(v) if isinstance(v, bytes) else v
    return out
