# SPDX-License-Identifier: LGPL-2.1-or-later
"""disk (the image pipeline), uki, boot (with a stand-in QEMU), distro
(kernel release, modules, system files, the one-call build): judged by
sfdisk, blkid, e2fsck, debugfs, mtools, objdump and cpio."""
import errno
import os
import stat
import unittest

import minidistro
from support import TestCase, blkid, busybox, kernel, need, run, sfdisk_json

FAKE_QEMU = r"""#!/bin/sh
# a stand-in for qemu-system-x86_64: the mode is the argument after -name
mode=
while [ $# -gt 0 ]; do [ "$1" = -name ] && mode=$2; shift; done
case $mode in
hello)
  printf 'SeaBIOS\nbooting...\n# '
  read line
  printf '%s\ngot: %s\n' "$line" "$line"
  exit 0 ;;
silent)
  exec sleep 30 ;;
fail)
  printf 'partial\n'
  echo 'qemu: could not open disk' >&2
  exit 3 ;;
esac
"""


class DiskTest(TestCase):
    def test_pipeline(self):
        need("mdir")
        out = self.tmp / "pipe.img"
        d = self.ctx.disk(table="gpt", seed=7)
        d.add_partition("16M:efi:name=ESP")
        d.add_partition(size=0, type="linux", bootable=True, name="root")
        self.assertEqual((d.partition_count, d.table), (2, "gpt"))
        esp = d.add_fat(fat_type="vfat", label="ESP")
        root = d.add_ext(fs_type="ext4", label="root")
        self.assertEqual((esp.index, root.index, d.fs_count), (0, 1, 2))
        esp.tree.add_data("EFI/BOOT/BOOTX64.EFI", b"MZ")
        root.tree.add_data("etc/hostname", b"disk\n")
        root.tree.add_dir("home/user", uid=1000, gid=1000)
        calls = []
        d.write(out, progress=lambda done, total: calls.append((done, total)))
        self.assertEqual((esp.partition, root.partition), (1, 2))
        self.assertGreater(d.size, 0)
        self.assertTrue(calls)
        t = sfdisk_json(out)
        self.assertEqual([p["name"] for p in t["partitions"]], ["ESP", "root"])
        off1, off2 = (p["start"] * 512 for p in t["partitions"])
        self.assertEqual(blkid(out, off1).get("TYPE"), "vfat")
        self.assertEqual(blkid(out, off2).get("LABEL"), "root")
        run("e2fsck", "-fn", f"{out}?offset={off2}")
        self.assertEqual(run("debugfs", "-R", "cat /etc/hostname", f"{out}?offset={off2}"), "disk\n")
        self.assertIn("BOOTX64", run("mdir", "-i", f"{out}@@{off1}", "::/EFI/BOOT"))
        # the description can be written again; an existing file needs force
        with self.assertRaises(FileExistsError) as cm:
            d.write(out)
        self.assertError(cm.exception, errno.EEXIST)
        d.write(out, force=True)
        # without the final flush (MD_DISK_NO_SYNC): the same image all the same
        d.write(self.tmp / "nosync.img", sync=False)
        self.assertEqual(os.path.getsize(self.tmp / "nosync.img"), os.path.getsize(out))
        run("e2fsck", "-fn", f"{self.tmp / 'nosync.img'}?offset={off2}")
        d.close()
        with self.assertRaises(ValueError):
            root.tree.add_dir("x")                   # the tree belonged to the disk

    def test_computed_size_and_errors(self):
        d = self.ctx.disk(table="mbr")
        d.add_partition("rest:linux:bootable")
        fs = d.add_ext(label="auto")
        fs.tree.add_data("data", b"\0" * (5 << 20))
        d.set_headroom("4M")
        d.write(self.tmp / "auto.img")
        self.assertEqual(os.path.getsize(self.tmp / "auto.img"), d.size)
        self.assertLess(d.size, 64 << 20)
        bad = self.ctx.disk(table="mbr")
        bad.add_partition("rest:linux")
        bad.add_ext(part=2)
        with self.assertRaises(minidistro.Error) as cm:
            bad.write(self.tmp / "bad.img")
        self.assertError(cm.exception, errno.EINVAL)
        self.assertFalse((self.tmp / "bad.img").exists())
        with self.assertRaises(minidistro.Error) as cm:
            bad.set_extlinux(5)
        self.assertError(cm.exception, errno.EINVAL)


class UkiTest(TestCase):
    def test_uki(self):
        stub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
        if not os.path.exists(stub):
            if os.environ.get("CI") == "true":
                raise AssertionError(f"{stub} missing (systemd-boot-efi)")
            raise unittest.SkipTest(stub)
        k = kernel()
        initrd = self.tmp / "initrd"
        initrd.write_bytes(b"07070" + b"x" * 95)
        out = self.tmp / "linux.efi"
        self.ctx.write_uki(out, k, initrds=[initrd], cmdline="console=ttyS0",
                           os_release_text="NAME=py\n")
        sections = {}
        for line in run("objdump", "-h", out).splitlines():
            f = line.split()
            if f and f[0].isdigit():
                sections[f[1]] = int(f[2], 16)
        self.assertEqual(sections.get(".cmdline"), len("console=ttyS0"))
        self.assertEqual(sections.get(".initrd"), 100)
        self.assertEqual(sections.get(".linux"), os.path.getsize(k))
        self.assertEqual(sections.get(".osrel"), len("NAME=py\n"))
        with self.assertRaises(minidistro.Error) as cm:
            self.ctx.write_uki(self.tmp / "bad.efi", initrd)
        self.assertError(cm.exception, errno.EINVAL, str(initrd))
        self.assertFalse((self.tmp / "bad.efi").exists())


class BootTest(TestCase):
    def setUp(self):
        super().setUp()
        self.qemu = self.tmp / "qemu-fake"
        self.qemu.write_text(FAKE_QEMU)
        self.qemu.chmod(0o755)
        self.disk = self.tmp / "disk.img"
        self.disk.write_bytes(b"\0" * 4096)

    def boot(self, mode, **kw):
        return self.ctx.boot(disk=self.disk, qemu=self.qemu, accel="tcg",
                             extra_args=["-name", mode], **kw)

    def test_expect_send_wait(self):
        with open(self.tmp / "echo", "w") as echo, self.boot("hello", echo=echo) as vm:
            self.assertGreater(vm.pid, 0)
            self.assertEqual((vm.accel, vm.firmware), ("tcg", "bios"))
            vm.expect("booting")
            vm.expect("# ", timeout=10)
            vm.send("uname -a\n")
            vm.expect("got: uname -a", timeout=10)
            self.assertEqual(vm.wait(timeout=10), 0)
            self.assertIn("got: uname -a", vm.tail(5))
        self.assertIn("SeaBIOS", (self.tmp / "echo").read_text())

    def test_timeout_and_failure(self):
        with self.boot("silent") as vm:
            with self.assertRaises(TimeoutError) as cm:
                vm.expect("never", timeout=0.3)
            self.assertError(cm.exception, errno.ETIMEDOUT, "never")
            vm.kill()
            self.assertEqual(vm.wait(), 143)
        with self.boot("fail") as vm:
            with self.assertRaises(minidistro.Error) as cm:
                vm.expect("login:", timeout=10)
            self.assertError(cm.exception, errno.EPIPE, "login:")
            self.assertIn("qemu: could not open disk", vm.tail())
            self.assertEqual(vm.wait(), 3)
        with self.assertRaises(FileNotFoundError) as cm:
            self.ctx.boot(disk=self.disk, qemu=self.tmp / "no-qemu")
        self.assertError(cm.exception, errno.ENOENT, "no-qemu")
        with self.assertRaises(ValueError):
            self.ctx.boot(disk=self.disk, firmware="coreboot")


class DistroTest(TestCase):
    def test_kernel_release(self):
        k = kernel()
        rel = self.ctx.kernel_release(k)
        self.assertRegex(rel, r"^\d+\.\d+")
        with self.assertRaises(minidistro.Error) as cm:
            self.ctx.kernel_release("/etc/passwd")
        self.assertError(cm.exception, errno.ENOEXEC, "/etc/passwd", "not an x86 bzImage")

    def test_kmods_and_distro_files(self):
        mods = self.tmp / "mods" / "9.9.9-fake"
        (mods / "kernel" / "x").mkdir(parents=True)
        (mods / "modules.dep").write_text("kernel/x/a.ko: kernel/x/b.ko\nkernel/x/b.ko:\n")
        (mods / "modules.builtin").write_text("kernel/fs/ext4/ext4.ko\n")
        for m in ("a", "b"):
            (mods / "kernel" / "x" / f"{m}.ko").write_bytes(b"module " + m.encode())
        t = self.ctx.tree()
        t.add_busybox(busybox(), no_init=True)
        self.assertEqual(t.add_kmods(mods, ["a", "ext4"]), 2)
        with self.assertRaises(FileNotFoundError) as cm:
            t.add_kmods(mods, ["virtio_blk"])
        self.assertError(cm.exception, errno.ENOENT, "virtio_blk")
        self.assertEqual(t.add_kmods(mods, ["virtio_blk"], optional=True), 0)
        t.add_distro_files(hostname="pyhost")
        out = self.tmp / "sys.cpio"
        t.write_cpio(out)
        x = self.tmp / "x"
        x.mkdir()
        run("cpio", "-idm", "--quiet", "-F", out, "-D", x, "etc/*", "init")   # no nodes: not root
        self.assertEqual((x / "etc" / "hostname").read_text().strip(), "pyhost")
        self.assertEqual((x / "etc" / "minidistro" / "modules").read_text().split(),
                         ["/lib/modules/9.9.9-fake/kernel/x/b.ko",
                          "/lib/modules/9.9.9-fake/kernel/x/a.ko"])
        self.assertTrue(os.stat(x / "init").st_mode & stat.S_IXUSR)
        with self.assertRaises(minidistro.Error) as cm:
            t.add_distro_files(hostname="bad host")
        self.assertError(cm.exception, errno.EINVAL)

    def test_build_distro(self):
        k = kernel()
        out = self.tmp / "distro.img"
        overlay = self.tmp / "overlay"
        (overlay / "etc").mkdir(parents=True)
        (overlay / "etc" / "issue").write_text("built from python\n")
        phases = []
        self.ctx.build_distro(out, kernel=k, busybox=busybox(), root="disk", table="gpt",
                              size="64M", overlays=[overlay], initramfs_output=self.tmp / "i.img",
                              progress=lambda d, t: phases.append((d, t)))
        self.assertEqual(phases[-1][0], phases[-1][1])
        t = sfdisk_json(out)
        self.assertEqual(t["label"], "gpt")
        off = t["partitions"][0]["start"] * 512
        self.assertEqual(blkid(out, off).get("LABEL"), "minidistro")
        dev = f"{out}?offset={off}"
        run("e2fsck", "-fn", dev)
        self.assertEqual(run("debugfs", "-R", "cat /etc/issue", dev), "built from python\n")
        self.assertIn("root=LABEL=minidistro",
                      run("debugfs", "-R", "cat /boot/syslinux/extlinux.conf", dev))
        self.assertTrue((self.tmp / "i.img").stat().st_size > 0)
        with self.assertRaises(FileExistsError):
            self.ctx.build_distro(out, kernel=k)
        with self.assertRaises(minidistro.Error) as cm:
            self.ctx.build_distro(self.tmp / "bad.img", kernel=self.tmp / "overlay" / "etc" / "issue")
        self.assertError(cm.exception, errno.ENOEXEC, "issue")
        self.assertFalse((self.tmp / "bad.img").exists())
        with self.assertRaises(minidistro.CancelledError):
            self.ctx.build_distro(self.tmp / "c.img", kernel=k, progress=lambda d, t: True)
        self.assertFalse((self.tmp / "c.img").exists())

    def test_build_distro_uefi(self):
        """--boot uefi and hybrid through the package: a GPT whose first
        partition is a FAT16 ESP holding the UKI (fsck.fat, mtools, objdump
        judge it), hybrid with EXTLINUX on the root partition too."""
        k = kernel()
        for boot in ("uefi", "hybrid"):
            with self.subTest(boot=boot):
                out = self.tmp / f"{boot}.img"
                self.ctx.build_distro(out, kernel=k, busybox=busybox(), root="disk", size="96M",
                                      boot=boot)
                t = sfdisk_json(out)
                self.assertEqual(t["label"], "gpt")
                esp, root = t["partitions"][0], t["partitions"][1]
                self.assertEqual(esp["type"], "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
                off = esp["start"] * 512
                self.assertEqual(blkid(out, off).get("TYPE"), "vfat")
                part = self.tmp / "esp.fat"
                with open(out, "rb") as f, open(part, "wb") as g:
                    f.seek(off)
                    g.write(f.read(esp["size"] * 512))
                run("fsck.fat", "-n", part)
                self.assertIn("BOOTX64", run("mdir", "-i", part, "::/EFI/BOOT"))
                run("mcopy", "-i", part, "::/EFI/BOOT/BOOTX64.EFI", self.tmp / "uki.efi")
                sections = run("objdump", "-h", self.tmp / "uki.efi")
                for s in (".osrel", ".cmdline", ".initrd", ".linux"):
                    self.assertIn(s, sections)
                dev = f"{out}?offset={root['start'] * 512}"
                run("e2fsck", "-fn", dev)
                conf = run("debugfs", "-R", "stat /boot/syslinux/extlinux.conf", dev, check=False)
                self.assertEqual("Inode:" in conf, boot == "hybrid")
        with self.assertRaises(minidistro.Error) as cm:
            self.ctx.build_distro(self.tmp / "small.img", kernel=k, busybox=busybox(), boot="uefi",
                                  esp_size="1M")
        self.assertError(cm.exception, errno.ENOSPC)
        self.assertFalse((self.tmp / "small.img").exists())
        with self.assertRaises(ValueError):
            self.ctx.build_distro(self.tmp / "x.img", kernel=k, boot="coreboot")


if __name__ == "__main__":
    unittest.main()
