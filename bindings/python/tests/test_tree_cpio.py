# SPDX-License-Identifier: LGPL-2.1-or-later
"""tree (entries and sources) and cpio (the newc sink, codecs, progress),
read back with cpio(1), bsdtar and the codecs' own tools."""
import errno
import os
import tarfile
import unittest

import minidistro
from support import TestCase, busybox, need, run, run_bytes


def cpio_list(path):
    """{name: (mode string, uid:gid, size or "major,minor", link target)} from
    `cpio -itv --numeric-uid-gid`."""
    out = {}
    for line in run("cpio", "-itv", "--numeric-uid-gid", "--quiet", "-F", path).splitlines():
        f = line.split()
        if f[0][0] in "cb":
            size, rest = f[4] + f[5], f[6:]
        else:
            size, rest = f[4], f[5:]
        name = rest[3]
        out[name] = (f[0], f[2] + ":" + f[3], size, rest[5] if len(rest) > 5 else None)
    return out


class TreeTest(TestCase):
    def make_host(self):
        d = self.tmp / "host"
        (d / "etc").mkdir(parents=True)
        (d / "etc" / "motd").write_text("hello\n")
        os.chmod(d / "etc" / "motd", 0o600)
        (d / "bin").mkdir()
        os.symlink("../etc/motd", d / "bin" / "motd-link")
        os.link(d / "etc" / "motd", d / "etc" / "motd.hard")
        return d

    def test_entries_and_sources(self):
        t = self.ctx.tree()
        host = self.make_host()
        t.add_host(host)                              # a pathlib.Path
        t.add_host(str(host), prefix="opt/copy")      # a str
        spec = self.tmp / "devices.list"
        (self.tmp / "payload").write_bytes(b"spec file data")
        spec.write_text("dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\n"
                        "file /payload payload 0640 1 2\nslink /sh /bin/busybox 0777 0 0\n")
        t.add_spec(spec)
        t.add_dir("srv", mode=0o750, uid=7, gid=8)
        t.add_data("etc/hostname", "py\n", mode=0o644)
        t.add_symlink("link", "etc/hostname")
        t.add_hardlink("etc/hostname.2", "etc/hostname")
        t.add_node("dev/null", "chr", 1, 3, mode=0o666)
        t.add_node("run/fifo", "fifo")
        self.assertIn("etc/motd", t)
        self.assertIn("/opt/copy/etc/motd", t)
        self.assertNotIn("etc/nothing", t)
        t.remove("opt/copy/bin")
        self.assertNotIn("opt/copy/bin/motd-link", t)
        out = self.tmp / "t.cpio"
        t.write_cpio(out)
        ls = cpio_list(out)
        self.assertEqual(len(ls), len(t) + 1, ls)          # + the root "."
        # hard links: newc stores the data with the last name of the group
        self.assertEqual(ls["etc/motd"][:3], ("-rw-------", "0:0", "0"))
        self.assertEqual(ls["etc/motd.hard"][:3], ("-rw-------", "0:0", "6"))
        self.assertEqual(ls["bin/motd-link"][3], "../etc/motd")
        self.assertEqual(ls["dev/console"][0], "crw-------")
        self.assertEqual(ls["payload"][:3], ("-rw-r-----", "1:2", "14"))
        self.assertEqual(ls["srv"][:2], ("drwxr-x---", "7:8"))
        self.assertEqual(ls["dev/null"][0], "crw-rw-rw-")
        self.assertEqual(ls["dev/null"][2], "1,3")
        self.assertEqual(ls["run/fifo"][0][0], "p")
        self.assertEqual(ls["link"][3], "etc/hostname")
        self.assertEqual(ls["opt/copy/etc/motd.hard"][:3], ("-rw-------", "0:0", "6"))
        self.assertNotIn("opt/copy/bin", ls)
        # contents, extracted by cpio itself
        x = self.tmp / "x"
        x.mkdir()
        # regular files only: device nodes need root to extract
        run("cpio", "-idm", "--quiet", "-F", out.resolve(), "-D", x, "payload", "etc/*")
        self.assertEqual((x / "payload").read_bytes(), b"spec file data")
        self.assertEqual((x / "etc" / "hostname.2").read_text(), "py\n")
        self.assertEqual(os.stat(x / "etc" / "hostname").st_ino, os.stat(x / "etc" / "hostname.2").st_ino)
        self.assertEqual(os.stat(x / "etc" / "motd").st_ino, os.stat(x / "etc" / "motd.hard").st_ino)

    def test_archive_and_source_kinds(self):
        src = self.tmp / "rootfs.tar.gz"
        data = b"from a tarball\n"
        with tarfile.open(src, "w:gz") as tf:
            ti = tarfile.TarInfo("usr/share/doc/README")
            ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), 0o640, 5, 6, 1000
            import io
            tf.addfile(ti, io.BytesIO(data))
        t = self.ctx.tree()
        t.add_archive(src)
        t.add_source(self.make_host(), kind="auto", keep_owner=False)
        t.add_source(src, kind="archive")
        out = self.tmp / "a.cpio"
        t.write_cpio(out)
        ls = cpio_list(out)
        self.assertEqual(ls["usr/share/doc/README"][:3], ("-rw-r-----", "5:6", str(len(data))))
        self.assertIn("etc/motd", ls)
        with self.assertRaises(ValueError):
            t.add_source(src, kind="nonsense")
        with self.assertRaises(minidistro.Error) as cm:
            t.add_source(src, kind=99)                    # a raw MD_SOURCE_* value
        self.assertError(cm.exception, errno.EINVAL)

    def test_bad_spec_line(self):
        spec = self.tmp / "bad.list"
        spec.write_text("dir /ok 0755 0 0\n# comment\nfiel /x /y 0644 0 0\n")
        t = self.ctx.tree()
        with self.assertRaises(minidistro.Error) as cm:
            t.add_spec(spec)
        self.assertError(cm.exception, errno.EINVAL, f"{spec}:3:", "fiel")
        with self.assertRaises(minidistro.Error) as cm:
            t.add_spec_text("nod /dev/x 0600 0 0 q 1 1\n", name="inline.list")
        self.assertError(cm.exception, errno.EINVAL, "inline.list:1:")
        with self.assertRaises(FileNotFoundError) as cm:
            t.add_spec(self.tmp / "missing.list")
        self.assertError(cm.exception, errno.ENOENT, "missing.list")

    def test_busybox(self):
        t = self.ctx.tree()
        t.add_busybox(busybox())
        self.assertIn("bin/sh", t)
        self.assertIn("init", t)
        t2 = self.ctx.tree()
        t2.add_busybox(busybox(), no_init=True)
        self.assertNotIn("init", t2)
        with self.assertRaises(minidistro.Error) as cm:
            t2.add_busybox("/etc/passwd")
        self.assertError(cm.exception, errno.ENOEXEC, "/etc/passwd")
        out = self.tmp / "bb.cpio"
        t.write_cpio(out)
        ls = cpio_list(out)
        self.assertEqual(ls["bin/sh"][3], "/bin/busybox")
        self.assertEqual(ls["init"][0], "-rwxr-xr-x")


class CpioTest(TestCase):
    def tree(self):
        t = self.ctx.tree()
        t.add_data("big", os.urandom(300000))
        t.add_data("etc/x", b"x" * 1000)
        return t

    def test_codecs(self):
        t = self.tree()
        plain = self.tmp / "plain.cpio"
        t.write_cpio(plain)
        want = cpio_list(plain)
        for codec, tool in (("gzip", "gzip"), ("xz", "xz"), ("zstd", "zstd"), ("lz4", "lz4")):
            with self.subTest(codec=codec):
                out = self.tmp / f"i.{codec}"
                t.write_cpio(out, compression=codec, level=minidistro.compress_levels(codec)[0])
                run(tool, "-t", out)
                raw = run_bytes(tool, "-dc", out)
                (self.tmp / "dec.cpio").write_bytes(raw)
                self.assertEqual(cpio_list(self.tmp / "dec.cpio"), want)
        # the thread count changes nothing in the bytes
        for codec in ("gzip", "zstd"):
            a, b = self.tmp / f"t1.{codec}", self.tmp / f"t2.{codec}"
            t.write_cpio(a, compression=codec, threads=1)
            t.write_cpio(b, compression=codec, threads=2)
            self.assertEqual(a.read_bytes(), b.read_bytes())
        # more than 256 are clamped, not an error
        t.write_cpio(self.tmp / "t1000.zstd", compression="zstd", threads=1000)
        self.assertEqual((self.tmp / "t1000.zstd").read_bytes(), (self.tmp / "t1.zstd").read_bytes())
        with self.assertRaises(minidistro.Error) as cm:
            t.write_cpio(self.tmp / "bad", compression="rar")
        self.assertError(cm.exception, errno.EINVAL, "rar")
        with self.assertRaises(minidistro.Error) as cm:
            t.write_cpio(self.tmp / "bad", compression="gzip", level=42)
        self.assertError(cm.exception, errno.EINVAL)
        self.assertFalse((self.tmp / "bad").exists())

    def test_fd_and_determinism(self):
        t = self.tree()
        with open(self.tmp / "fd.cpio", "wb") as f:
            f.write(b"")
            t.write_cpio(f)
        t.write_cpio(self.tmp / "path.cpio")
        raw = (self.tmp / "fd.cpio").read_bytes()
        self.assertEqual(raw[:6], b"070701")
        self.assertEqual(raw.rstrip(b"\0"), (self.tmp / "path.cpio").read_bytes().rstrip(b"\0"))
        need("bsdtar")
        self.assertIn("big", run("bsdtar", "-tf", self.tmp / "fd.cpio").split())

    def test_progress_and_cancel(self):
        t = self.tree()
        calls = []
        t.write_cpio(self.tmp / "p.cpio", progress=lambda d, tot: calls.append((d, tot)))
        self.assertTrue(calls)
        self.assertEqual(calls[-1][0], calls[-1][1])
        self.assertEqual(calls[-1][1], 301000)
        with self.assertRaises(minidistro.CancelledError) as cm:
            t.write_cpio(self.tmp / "c.cpio", progress=lambda d, tot: d > 0)
        self.assertError(cm.exception, errno.ECANCELED)
        self.assertFalse((self.tmp / "c.cpio").exists())

        class Boom(Exception):
            pass

        def boom(done, total):
            raise Boom("from the callback")
        with self.assertRaises(Boom):
            t.write_cpio(self.tmp / "e.cpio", progress=boom)
        self.assertFalse((self.tmp / "e.cpio").exists())


if __name__ == "__main__":
    unittest.main()
