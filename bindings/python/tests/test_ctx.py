# SPDX-License-Identifier: LGPL-2.1-or-later
"""ctx: context, errors, epoch, logging, version, sizes, quoting."""
import errno
import json
import os
import subprocess
import sys
import unittest

import minidistro
from support import TestCase


class ContextTest(TestCase):
    def test_version(self):
        self.assertRegex(minidistro.version(), r"^\d+\.\d+\.\d+$")
        major, minor, patch = map(int, minidistro.version().split("."))
        self.assertEqual(minidistro.version_number(), major * 10000 + minor * 100 + patch)
        self.assertEqual(minidistro.__version__, minidistro.version())

    def test_epoch(self):
        self.assertEqual(self.ctx.epoch, 1700000000)
        self.ctx.epoch = 5
        self.assertEqual(self.ctx.epoch, 5)
        with self.assertRaises(minidistro.Error) as cm:
            self.ctx.epoch = -1
        self.assertError(cm.exception, errno.EINVAL)
        self.assertEqual(cm.exception.function, "md_ctx_set_epoch")

    def test_source_date_epoch(self):
        # the environment is read by md_ctx_new(): a malformed value is an error
        code = ("import minidistro, errno\n"
                "try:\n    minidistro.Context()\nexcept minidistro.Error as e:\n"
                "    print(e.errno == errno.EINVAL, e.function)\n"
                "else:\n    print('no error')\n")
        env = dict(os.environ, SOURCE_DATE_EPOCH="yesterday")
        out = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                             universal_newlines=True, check=True).stdout
        self.assertEqual(out.strip(), "True md_ctx_new")
        env["SOURCE_DATE_EPOCH"] = "1234"
        out = subprocess.run([sys.executable, "-c", "import minidistro; print(minidistro.Context().epoch)"],
                             env=env, stdout=subprocess.PIPE, universal_newlines=True,
                             check=True).stdout
        self.assertEqual(out.strip(), "1234")

    def test_errors_carry_errno_and_message(self):
        t = self.ctx.tree()
        with self.assertRaises(FileNotFoundError) as cm:
            t.add_host(self.tmp / "nonexistent")
        self.assertError(cm.exception, errno.ENOENT, str(self.tmp / "nonexistent"))
        self.assertEqual(self.ctx.errmsg, cm.exception.strerror)
        self.assertIn("md_tree_add_host", str(cm.exception))
        # the message is the new one, not left over from before
        with self.assertRaises(minidistro.Error) as cm:
            t.add_dir("a/../b")
        self.assertError(cm.exception, errno.EINVAL)
        self.assertNotIn("nonexistent", cm.exception.strerror)

    def test_strerror_and_sizes(self):
        self.assertEqual(minidistro.strerror(-errno.ENOENT), os.strerror(errno.ENOENT))
        self.assertEqual(minidistro.parse_size("64M"), 64 << 20)
        self.assertEqual(minidistro.parse_size("1KiB"), 1024)
        with self.assertRaises(minidistro.Error) as cm:
            minidistro.parse_size("lots")
        self.assertError(cm.exception, errno.EINVAL, "lots")

    def test_quote(self):
        q = minidistro.quote('a"b\n\x01', "json")
        self.assertEqual(json.loads(q), 'a"b\n\x01')   # judged by Python's JSON reader
        self.assertEqual(minidistro.quote("x\x1b[2J", "text"), "x\\x1b[2J")
        with self.assertRaises(ValueError):
            minidistro.quote("x", "yaml")

    def test_log_callback(self):
        seen = []
        self.ctx.set_log(lambda prio, msg: seen.append((prio, msg)), minidistro.C.MD_LOG_WARNING)
        t = self.ctx.tree()
        t.add_data("f", b"x")
        t.set_xattr("f", "user.test", b"1")
        t.write_cpio(self.tmp / "x.cpio")
        self.assertTrue(any(p == minidistro.C.MD_LOG_WARNING and "extended attributes" in m
                            for p, m in seen), seen)
        self.ctx.set_log(None)
        seen.clear()
        t.write_cpio(self.tmp / "y.cpio")
        self.assertEqual(seen, [])

    def test_objects_outlive_the_context(self):
        t = self.ctx.tree()
        self.ctx.close()
        t.add_data("still/works", b"1")       # the tree holds a reference on the context
        with self.assertRaises(minidistro.Error):
            t.add_dir("..")
        self.assertEqual(len(t), 2)
        t.close()
        with self.assertRaises(ValueError):
            len(t)

    def test_thin_layer(self):
        lib = minidistro.lib()
        self.assertEqual(lib.missing, [])
        o = minidistro.C.md_cpio_opts()
        lib.md_cpio_opts_init(o)
        self.assertEqual(o.version, minidistro.C.MD_CPIO_OPTS_VERSION)
        self.assertEqual(o.level, minidistro.C.MD_COMPRESS_LEVEL_DEFAULT)
        self.assertEqual(minidistro.compress_levels("gzip"), (1, 9, 6))


if __name__ == "__main__":
    unittest.main()
