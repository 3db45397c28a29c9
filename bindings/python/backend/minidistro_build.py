# SPDX-License-Identifier: LGPL-2.1-or-later
"""The PEP 517 (and PEP 660) build backend of the minidistro package.

A wheel is a zip file with the package's files and a few metadata files;
the package is pure Python, so this is all a backend has to do.  Why not
setuptools: the package must install offline into a fresh venv with
`pip install --no-index --no-build-isolation`.  A fresh venv has setuptools
(up to Python 3.11), but setuptools before 70.1 cannot build a wheel
without the separate `wheel` package, which a fresh venv lacks and the
package index may not be reachable for; Debian 12's venvs have setuptools
66.  This backend needs nothing but the standard library, so the install
works wherever pip does (also on Python 3.12+, whose venvs have no
setuptools at all).

Wheels are reproducible: files in sorted order, fixed timestamps.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "minidistro"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _project():
    """name, version, description, requires-python, license of [project]."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        raw = f.read()
    try:
        import tomllib  # Python 3.11+
        p = tomllib.loads(raw.decode())["project"]
        lic = p.get("license", {}).get("text", "")
    except ImportError:  # a minimal reader of the simple [project] table above
        section = raw.decode().split("[project]", 1)[1].split("\n[", 1)[0]
        p = dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]*)"', section, re.M))
        m = re.search(r'^license\s*=\s*\{\s*text\s*=\s*"([^"]*)"', section, re.M)
        lic = m.group(1) if m else ""
    return p["name"], p["version"], p.get("description", ""), p.get("requires-python", ""), lic


def _metadata():
    name, version, summary, requires, lic = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             f"Summary: {summary}"]
    if requires:
        lines.append(f"Requires-Python: {requires}")
    if lic:
        lines.append(f"License: {lic}")
    readme = os.path.join(ROOT, "README.md")
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = "\n" + f.read()
    return "\n".join(lines) + "\n" + body


def _dist_info(name, version):
    return f"{name}-{version}.dist-info"


def _package_files():
    out = []
    pkg = os.path.join(ROOT, PACKAGE)
    for d, dirs, files in os.walk(pkg):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py") or f == "py.typed":
                full = os.path.join(d, f)
                out.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), full))
    return out


def _write_wheel(wheel_directory, files):
    """files: [(archive name, bytes)] without the dist-info RECORD."""
    name, version = _project()[:2]
    di = _dist_info(name, version)
    files = list(files) + [
        (f"{di}/METADATA", _metadata().encode()),
        (f"{di}/WHEEL", b"Wheel-Version: 1.0\nGenerator: minidistro_build\n"
                        b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{di}/top_level.txt", f"{PACKAGE}\n".encode()),
    ]
    record = []
    for arc, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arc},sha256={digest},{len(data)}")
    record.append(f"{di}/RECORD,,")
    files.append((f"{di}/RECORD", ("\n".join(record) + "\n").encode()))
    whl = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, whl), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in files:
            info = zipfile.ZipInfo(arc, ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return whl


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- PEP 517 ----------------------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    name, version = _project()[:2]
    di = os.path.join(metadata_directory, _dist_info(name, version))
    os.makedirs(di, exist_ok=True)
    with open(os.path.join(di, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    return os.path.basename(di)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [(arc, _read(full)) for arc, full in _package_files()])


def build_sdist(sdist_directory, config_settings=None):
    name, version = _project()[:2]
    base = f"{name}-{version}"
    members = ["pyproject.toml", "README.md", "backend/minidistro_build.py"]
    members += [arc for arc, _ in _package_files()]
    out = os.path.join(sdist_directory, base + ".tar.gz")
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as t:
        pkg_info = _metadata().encode()
        for arc, data in [("PKG-INFO", pkg_info)] + [(m, _read(os.path.join(ROOT, m)))
                                                     for m in members
                                                     if os.path.exists(os.path.join(ROOT, m))]:
            ti = tarfile.TarInfo(f"{base}/{arc}")
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
            t.addfile(ti, io.BytesIO(data))
    return base + ".tar.gz"


# ---- PEP 660: pip install -e ------------------------------------------------------------------

def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    return prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """A wheel holding only a .pth file that puts this source tree on sys.path."""
    return _write_wheel(wheel_directory, [(f"_{PACKAGE}_editable.pth", (ROOT + "\n").encode())])
