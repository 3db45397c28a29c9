# SPDX-License-Identifier: LGPL-2.1-or-later
"""image (files, tables, probing), ext and fat (format, populate, read
back), extlinux: judged by sfdisk, blkid, e2fsck, debugfs, mtools, fsck.fat."""
import errno
import os
import unittest

import minidistro
from support import TestCase, blkid, need, run, sfdisk_json

GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


class ImageTest(TestCase):
    def test_create_table_probe(self):
        path = self.tmp / "disk.img"
        img = self.ctx.create_image(path, "64M")
        self.assertFalse(path.exists())                   # a temporary name until commit
        self.assertEqual(img.name, str(path))
        img.add_partition("16M:efi:name=ESP")
        img.add_partition(size=0, type="linux", bootable=True, name="root")
        img.write_table("gpt", seed=42)
        img.commit()
        self.assertTrue(path.exists())
        self.assertEqual(img.path, str(path))
        self.assertEqual(img.size, 64 << 20)
        self.assertEqual(img.partition_range(1), (1 << 20, 16 << 20))
        self.assertEqual(img.default_fat_partition(), 1)
        self.assertEqual(img.default_partition(), 2)
        pr = img.probe()
        img.close()
        t = sfdisk_json(path)
        self.assertEqual(t["label"], "gpt")
        self.assertEqual(len(t["partitions"]), 2)
        p1, p2 = t["partitions"]
        self.assertEqual((p1["start"], p1["size"], p1["type"], p1["name"]),
                         (2048, 32768, GPT_ESP, "ESP"))
        self.assertEqual((p2["type"], p2["name"], p2.get("attrs")), (GPT_LINUX, "root", "LegacyBIOSBootable"))
        self.assertEqual(pr.table, "gpt")
        self.assertEqual(pr.id.upper(), t["id"].upper())
        self.assertEqual([p.number for p in pr.partitions], [1, 2])
        self.assertEqual(pr.partitions[1].start, p2["start"] * 512)
        self.assertEqual(pr.partitions[1].size, p2["size"] * 512)
        self.assertEqual(pr.partitions[1].uuid.upper(), p2["uuid"].upper())
        self.assertTrue(pr.partitions[1].bootable)
        self.assertFalse(pr.partitions[0].bootable)
        self.assertIn('"table":"gpt"', pr.json.replace(" ", ""))
        # the same seed, the same ids
        img2 = self.ctx.create_image(self.tmp / "disk2.img", 64 << 20)
        img2.add_partition("16M:efi:name=ESP")
        img2.add_partition("rest:linux:bootable,name=root")
        img2.write_table("gpt", seed=42)
        img2.commit()
        img2.close()
        t2 = sfdisk_json(self.tmp / "disk2.img")
        self.assertEqual((t2["id"], [(p["uuid"], p["start"], p["size"]) for p in t2["partitions"]]),
                         (t["id"], [(p["uuid"], p["start"], p["size"]) for p in t["partitions"]]))

    def test_errors_and_open(self):
        path = self.tmp / "x.img"
        path.write_bytes(b"")
        with self.assertRaises(FileExistsError) as cm:
            self.ctx.create_image(path, "1M")
        self.assertError(cm.exception, errno.EEXIST)
        with self.assertRaises(minidistro.Error) as cm:
            self.ctx.create_image(self.tmp / "odd.img", 1000)
        self.assertError(cm.exception, errno.EINVAL)
        img = self.ctx.create_image(path, "8M", force=True)
        img.add_partition("rest:linux")
        with self.assertRaises(minidistro.Error) as cm:
            img.add_partition("10X:linux")
        self.assertError(cm.exception, errno.EINVAL, "10X")
        img.write_table("mbr")
        img.commit()
        img.close()
        with self.ctx.open_image(path, readonly=True) as ro:
            self.assertTrue(ro.readonly)
            with self.assertRaises(minidistro.Error) as cm:
                ro.partition_range(3)
            self.assertError(cm.exception, errno.ENOENT)
        with self.ctx.open_image(path) as rw:
            rw.resize("16M")
            apparent, allocated = rw.usage()
            self.assertEqual(apparent, 16 << 20)
            self.assertLess(allocated, 1 << 20)           # sparse
            rw.set_bootable(1)
        self.assertEqual(sfdisk_json(path)["partitions"][0].get("bootable"), True)
        with self.assertRaises(FileNotFoundError):
            self.ctx.open_image(self.tmp / "none.img")
        # a created image closed without commit leaves nothing
        img = self.ctx.create_image(self.tmp / "gone.img", "1M")
        img.close()
        self.assertEqual(sorted(os.listdir(self.tmp)), ["x.img"])


class ExtTest(TestCase):
    def test_format_populate_read(self):
        path = self.tmp / "ext.img"
        src = self.tmp / "src"
        (src / "etc").mkdir(parents=True)
        (src / "etc" / "fstab").write_text("# nothing\n")
        t = self.ctx.tree()
        t.add_host(src)
        t.add_data("usr/bin/tool", b"#!/bin/sh\n", mode=0o755, uid=10, gid=20)
        t.add_symlink("bin", "usr/bin")
        img = self.ctx.create_image(path, "32M")
        img.add_partition("rest:linux")
        img.write_table("mbr")
        seen = []
        with img.format_ext(1, "ext4", label="pyroot", uuid="01234567-89ab-cdef-0123-456789abcdef") as fs:
            fs.populate(t, progress=lambda d, tot: seen.append(d))
            fs.mkdir("var/log/py", mode=0o700)
            fs.write_file("etc/hostname", "python\n")
            fs.write_host_file("etc/fstab.copy", src / "etc" / "fstab", mode=0o600)
            self.assertTrue(fs.exists("etc/hostname"))
            self.assertFalse(fs.exists("etc/nothing"))
            self.assertEqual(fs.readlink("bin"), "usr/bin")
            st = fs.stat("usr/bin/tool")
            self.assertEqual((st.mode & 0o7777, st.uid, st.gid, st.size), (0o755, 10, 20, 10))
            self.assertTrue(st.is_file())
            self.assertTrue(fs.stat("var/log/py").is_dir())
            self.assertEqual([n for n, _ in fs.ls("/")],
                             ["bin", "etc", "lost+found", "usr", "var"])
            self.assertEqual(fs.read("etc/hostname"), b"python\n")
            with self.assertRaises(FileNotFoundError) as cm:
                fs.read("etc/nothing")
            self.assertError(cm.exception, errno.ENOENT, "etc/nothing")
            fs.extract("usr/bin/tool", self.tmp / "tool.out")
            with open(self.tmp / "tool.fd", "wb") as f:
                fs.extract("etc/hostname", f)
        self.assertTrue(seen)
        img.commit()
        off = img.partition_range(1)[0]
        img.close()
        self.assertEqual((self.tmp / "tool.out").read_bytes(), b"#!/bin/sh\n")
        self.assertEqual((self.tmp / "tool.fd").read_bytes(), b"python\n")
        tags = blkid(path, off)
        self.assertEqual((tags.get("TYPE"), tags.get("LABEL"), tags.get("UUID")),
                         ("ext4", "pyroot", "01234567-89ab-cdef-0123-456789abcdef"))
        run("e2fsck", "-fn", f"{path}?offset={off}")
        dev = f"{path}?offset={off}"
        self.assertEqual(run("debugfs", "-R", "cat /etc/hostname", dev), "python\n")
        self.assertEqual(run("debugfs", "-R", "cat /etc/fstab.copy", dev), "# nothing\n")
        self.assertIn("Mode:  0700", run("debugfs", "-R", "stat /var/log/py", dev))
        # read-only open: writes refused
        with self.ctx.open_image(path, readonly=True) as ro, ro.open_ext(1, readonly=True) as fs:
            with self.assertRaises(minidistro.Error) as cm:
                fs.write_file("x", b"")
            self.assertError(cm.exception, errno.EROFS)

    def test_too_small(self):
        img = self.ctx.create_image(self.tmp / "s.img", "8M")
        with img.format_ext(0, "ext2") as fs:
            t = self.ctx.tree()
            t.add_data("big", b"\1" * (16 << 20))
            with self.assertRaises(minidistro.Error) as cm:
                fs.populate(t)
            self.assertError(cm.exception, errno.ENOSPC)
        with self.assertRaises(minidistro.Error) as cm:
            img.format_ext(0, "ext9")
        self.assertError(cm.exception, errno.EINVAL, "ext9")
        img.close()


class FatTest(TestCase):
    def test_format_populate_read(self):
        need("mdir")
        path = self.tmp / "esp.img"
        t = self.ctx.tree()
        t.add_data("EFI/BOOT/BOOTX64.EFI", b"MZ stub")
        t.add_data("loader/A long name.conf", b"timeout 0\n")
        img = self.ctx.create_image(path, "40M")
        img.add_partition("rest:efi")
        img.write_table("gpt", seed=1)
        with img.format_fat(img.default_fat_partition(), "vfat", label="esp",
                            volume_id="1234-ABCD") as fat:
            fat.populate(t)
            info = fat.info()
            self.assertEqual((info.fat_type, info.label, info.volume_id), (16, "ESP", 0x1234ABCD))
            self.assertEqual(fat.read("efi/boot/bootx64.efi"), b"MZ stub")   # case-insensitive
            self.assertEqual([n for n, _ in fat.ls("/loader")], ["A long name.conf"])
            st = fat.stat("EFI/BOOT/BOOTX64.EFI")
            self.assertEqual((st.size, st.short_name), (7, "BOOTX64.EFI"))
            with self.assertRaises(minidistro.Error) as cm:
                fat.populate(t)
            self.assertError(cm.exception, errno.ENOTEMPTY)
        img.commit()
        off = img.partition_range(1)[0]
        img.close()
        tags = blkid(path, off)
        self.assertEqual((tags.get("TYPE"), tags.get("LABEL"), tags.get("UUID")), ("vfat", "ESP", "1234-ABCD"))
        image = f"{path}@@{off}"
        self.assertIn("A long name.conf", run("mdir", "-i", image, "::/loader"))
        self.assertEqual(run("mtype", "-i", image, "::/EFI/BOOT/BOOTX64.EFI"), "MZ stub")

    def test_special_files_refused(self):
        t = self.ctx.tree()
        t.add_symlink("link", "target")
        img = self.ctx.create_image(self.tmp / "f.img", "8M")
        with img.format_fat(0) as fat:
            with self.assertRaises(minidistro.Error) as cm:
                fat.populate(t)
            self.assertError(cm.exception, errno.EINVAL, "link")
            fat.populate(t, skip_special=True)
            self.assertEqual(fat.ls("/"), [])
        img.close()


class ExtlinuxTest(TestCase):
    def test_install(self):
        for f in ("/usr/bin/extlinux", "/usr/lib/syslinux/mbr/mbr.bin"):
            if not os.path.exists(f):
                raise AssertionError(f"{f} missing (extlinux, syslinux-common)") \
                    if os.environ.get("CI") == "true" else unittest.SkipTest(f)
        cfg = self.ctx.extlinux_config(timeout=10, serial=(0, 115200))
        cfg.add_entry("linux", "/boot/vmlinuz", initrd=["/boot/a.img", "/boot/b.img"],
                      append="console=ttyS0")
        cfg.add_entry("rescue", "/boot/vmlinuz", append="single")
        cfg.set_default("rescue")
        text = cfg.render()
        self.assertIn("DEFAULT rescue", text)
        self.assertIn("INITRD /boot/a.img,/boot/b.img", text)
        with self.assertRaises(minidistro.Error) as cm:
            cfg.add_entry("two words", "/boot/vmlinuz")
        self.assertError(cm.exception, errno.EINVAL)
        with self.assertRaises(minidistro.Error) as cm:
            cfg.set_timeout(36000)
        self.assertError(cm.exception, errno.EINVAL)
        path = self.tmp / "boot.img"
        img = self.ctx.create_image(path, "32M")
        img.add_partition("rest:linux:bootable")
        img.write_table("mbr")
        t = self.ctx.tree()
        for f in ("vmlinuz", "a.img", "b.img"):
            t.add_data("boot/" + f, b"stand-in " + f.encode())
        with img.format_ext(1, "ext4") as fs:
            fs.populate(t)
        # a config naming a missing file is refused before anything is written
        with self.assertRaises(FileNotFoundError) as cm:
            img.install_extlinux(1, config="DEFAULT x\nLABEL x\n  LINUX /boot/none\n")
        self.assertError(cm.exception, errno.ENOENT, "/boot/none")
        img.install_extlinux(1, config=cfg)
        img.commit()
        off = img.partition_range(1)[0]
        img.close()
        dev = f"{path}?offset={off}"
        self.assertEqual(run("debugfs", "-R", "cat /boot/syslinux/extlinux.conf", dev), text)
        self.assertIn("ldlinux.sys", run("debugfs", "-R", "ls -l /boot/syslinux", dev))
        run("e2fsck", "-fn", dev)
        with open("/usr/lib/syslinux/mbr/mbr.bin", "rb") as f:
            mbr = f.read()[:440]
        with open(path, "rb") as f:
            self.assertEqual(f.read(440), mbr)


if __name__ == "__main__":
    unittest.main()
