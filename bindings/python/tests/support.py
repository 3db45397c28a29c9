# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared helpers of the package's tests (run by tests/t-python.sh, which
installs the package into a fresh venv first).  Results are read back with
the standard tools (cpio, sfdisk, blkid, e2fsck, debugfs, mtools, objdump),
never with the package's own readers alone."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import minidistro

EPOCH = 1700000000


def need(tool):
    """The path of @tool; fail (CI) or skip without it, as tests/lib.sh does."""
    path = shutil.which(tool, path=os.environ.get("PATH", "") + ":/sbin:/usr/sbin")
    if path is None:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"{tool} is required but missing (scripts/setup should have "
                                 "installed it)")
        raise unittest.SkipTest(f"{tool} is missing")
    return path


def run(*argv, input=None, check=True):
    """Run a tool; its stdout (text)."""
    r = subprocess.run([need(argv[0])] + [os.fspath(a) for a in argv[1:]], input=input,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r.stdout


def run_bytes(*argv):
    r = subprocess.run([need(argv[0])] + [os.fspath(a) for a in argv[1:]],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        raise AssertionError(f"{argv}: exit {r.returncode}: {r.stderr.decode(errors='replace')}")
    return r.stdout


def sfdisk_json(img):
    return json.loads(run("sfdisk", "-J", img))["partitiontable"]


def blkid(img, offset=0):
    """blkid -p's tags of the filesystem at @offset."""
    out = run("blkid", "-p", "-o", "export", "-O", str(offset), img, check=False)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def kernel():
    """A bzImage: $MD_TEST_KERNEL (tests/t-python.sh finds one), else /boot's."""
    k = os.environ.get("MD_TEST_KERNEL")
    if not k:
        for cand in sorted(os.listdir("/boot")) if os.path.isdir("/boot") else []:
            if cand.startswith("vmlinuz-") and os.access("/boot/" + cand, os.R_OK):
                k = "/boot/" + cand
    if not k:
        if os.environ.get("CI") == "true":
            raise AssertionError("no kernel (MD_TEST_KERNEL, /boot/vmlinuz-*)")
        raise unittest.SkipTest("no kernel")
    return k


def busybox():
    for b in ("/bin/busybox", "/usr/bin/busybox"):
        if os.access(b, os.X_OK):
            return b
    if os.environ.get("CI") == "true":
        raise AssertionError("busybox is required (busybox-static)")
    raise unittest.SkipTest("busybox is missing")


class TestCase(unittest.TestCase):
    """A temporary directory self.tmp (a pathlib.Path) and a context self.ctx
    with a fixed epoch."""

    def setUp(self):
        import pathlib
        self._tmp = tempfile.TemporaryDirectory(prefix="md-py-")
        self.tmp = pathlib.Path(self._tmp.name)
        self.ctx = minidistro.Context(epoch=EPOCH)

    def tearDown(self):
        self.ctx.close()
        self._tmp.cleanup()

    def assertError(self, err, code, *fragments):
        """@err (an exception context's value) is a minidistro.Error with errno
        @code and a message holding every fragment."""
        self.assertIsInstance(err, minidistro.Error)
        self.assertIsInstance(err, OSError)
        self.assertEqual(err.errno, code, f"errno of {err!r}")
        for f in fragments:
            self.assertIn(f, err.strerror)
