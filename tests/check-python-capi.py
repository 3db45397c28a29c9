#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Check the Python package's thin layer (bindings/python/minidistro/_capi.py)
against the C headers, with the C compiler as the judge:

  1. _capi.py is what bindings/python/gen_capi.py makes from the headers now
     (a field or function added in C cannot be missing in Python);
  2. every struct: sizeof and the offset and size of every field, as the
     compiler lays them out, equal ctypes' layout;
  3. every prototype: the C type recorded for it is the function's type
     (__builtin_types_compatible_p), and each parameter's and the return
     value's ctypes type has the C type's size and signedness;
  4. every callback type: the same for its C function pointer type;
  5. every constant's value equals the compiler's;
  6. the functions are exactly lib/libminidistro.sym's exports.
The library is not loaded (so that this also runs in sanitizer builds).

    check-python-capi.py SRCDIR BUILDDIR TMPDIR
"""
import ctypes
import os
import re
import subprocess
import sys

src, build, tmp = sys.argv[1:4]
sys.path.insert(0, os.path.join(src, "bindings", "python"))
from minidistro import _capi as C  # noqa: E402  (the module only declares types)

fails = []


def fail(msg):
    fails.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


# 1 -------------------------------------------------------------------------------------------
r = subprocess.run([sys.executable, os.path.join(src, "bindings", "python", "gen_capi.py"),
                    "--check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   universal_newlines=True)
if r.returncode != 0:
    fail("bindings/python/minidistro/_capi.py is not what gen_capi.py makes from the headers "
         "(run bindings/python/gen_capi.py and commit the result):\n" + r.stdout[-6000:])
else:
    print("ok: _capi.py is up to date with the headers")

# the C program --------------------------------------------------------------------------------
INTS = {ctypes.c_int, ctypes.c_uint, ctypes.c_int32, ctypes.c_uint32, ctypes.c_int64,
        ctypes.c_uint64, ctypes.c_size_t, ctypes.c_uint16, ctypes.c_uint8, ctypes.c_char}



lines = ["#include <stddef.h>", "#include <stdio.h>", "#include <libminidistro/minidistro.h>",
         "int main(void) {"]
expect = []   # (key, value from ctypes)


def p(key, fmt, expr):
    lines.append(f'    printf("%s {fmt}\\n", "{key}", {expr});')


for st in C.STRUCTS:
    name = st.__name__
    p(f"sizeof {name}", "%zu", f"sizeof({name})")
    expect.append((f"sizeof {name}", str(ctypes.sizeof(st))))
    for fname, ftype in st._fields_:
        p(f"offsetof {name}.{fname}", "%zu", f"offsetof({name}, {fname})")
        p(f"sizeof {name}.{fname}", "%zu", f"sizeof((({name} *)0)->{fname})")
        expect.append((f"offsetof {name}.{fname}", str(getattr(st, fname).offset)))
        expect.append((f"sizeof {name}.{fname}", str(getattr(st, fname).size)))


def type_checks(key, ctype_c, ct):
    """sizeof (and for integers signedness) of C type text @ctype_c vs ctypes @ct."""
    if ct is None:
        if ctype_c != "void":
            fail(f"{key}: ctypes None for C type {ctype_c}")
        return
    p(f"sizeof {key}", "%zu", f"sizeof({ctype_c})")
    expect.append((f"sizeof {key}", str(ctypes.sizeof(ct))))
    if ct in INTS and ct is not ctypes.c_char:
        p(f"signed {key}", "%d", f"(int)(({ctype_c})-1 < ({ctype_c})0)")
        expect.append((f"signed {key}", "1" if ct(-1).value < 0 else "0"))


asserts = []
for fn, (ret_c, params_c, names) in C.SIGNATURES.items():
    restype, argtypes = C.PROTOTYPES[fn]
    sig = f"{ret_c} (*)({', '.join(params_c) or 'void'})"
    asserts.append(f'_Static_assert(__builtin_types_compatible_p(__typeof__(&{fn}), {sig}), '
                   f'"{fn}: the type gen_capi.py read is not {sig}");')
    if len(argtypes) != len(params_c):
        fail(f"{fn}: {len(argtypes)} ctypes arguments for {len(params_c)} C parameters")
        continue
    type_checks(f"{fn}.return", ret_c, restype)
    for pname, pc, ct in zip(names, params_c, argtypes):
        type_checks(f"{fn}.{pname}", pc, ct)
for cb, sig in C.CALLBACK_C_TYPES.items():
    asserts.append(f'_Static_assert(__builtin_types_compatible_p({cb}, {sig}), "{cb}");')
    cbt = getattr(C, cb)
    ret_c, params_c = re.match(r"^(.*?) \(\*\)\((.*)\)$", sig).groups()
    type_checks(f"{cb}.return", ret_c, cbt._restype_)
    for i, (pc, ct) in enumerate(zip([x.strip() for x in params_c.split(",")], cbt._argtypes_)):
        type_checks(f"{cb}.{i}", pc, ct)

for name in C.CONSTANTS:
    v = getattr(C, name)
    if isinstance(v, str):
        p(f"const {name}", "%s", name)
        expect.append((f"const {name}", v))
    else:
        p(f"const {name}", "%lld", f"(long long)({name})")
        expect.append((f"const {name}", str(v)))
lines.append("    return 0;\n}")
prog = os.path.join(tmp, "capi.c")
with open(prog, "w") as f:
    f.write("\n".join(lines[:3] + asserts + lines[3:]) + "\n")
exe = os.path.join(tmp, "capi")
cc = subprocess.run(["cc", "-std=gnu11", "-Wall", "-Werror", "-I", os.path.join(src, "include"),
                     "-I", os.path.join(build, "include"), "-o", exe, prog],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
if cc.returncode != 0:
    fail(f"the layout/prototype program ({prog}) does not compile:\n{cc.stdout[-6000:]}")
else:
    print(f"ok: {len(C.SIGNATURES)} prototypes and {len(C.CALLBACK_C_TYPES)} callback types "
          "are the headers' (checked by the compiler)")
    out = subprocess.run([exe], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    got = {}
    for line in out.splitlines():
        k2 = " ".join(line.split(" ")[:2])
        got[k2] = line[len(k2) + 1:]
    bad = 0
    for key, want in expect:
        if got.get(key) != want:
            fail(f"{key}: C says {got.get(key)!r}, ctypes {want!r}")
            bad += 1
    if not bad:
        print(f"ok: {len(C.STRUCTS)} structs ({sum(len(s._fields_) for s in C.STRUCTS)} fields), "
              f"parameter types and {len(C.CONSTANTS)} constants equal the compiler's "
              f"({len(expect)} values)")

# 6 -------------------------------------------------------------------------------------------
with open(os.path.join(src, "lib", "libminidistro.sym")) as f:
    sym = f.read()
sym = re.sub(r"/\*.*?\*/", "", sym, flags=re.S)
listed = set(re.findall(r"^\s*(md_\w+);", sym.split("global:", 1)[1].split("local:", 1)[0], re.M))
declared = set(C.PROTOTYPES)
if listed - declared:
    fail("exported but not in _capi.PROTOTYPES: " + ", ".join(sorted(listed - declared)))
if declared - listed:
    fail("declared MD_API in a header but not exported by lib/libminidistro.sym: " +
         ", ".join(sorted(declared - listed)))
if listed == declared:
    print(f"ok: the {len(listed)} prototypes are exactly the exports of libminidistro.sym")

sys.exit(1 if fails else 0)
