#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The public API's documentation and struct rules, read from the headers
(with bindings/python/gen_capi.py's reader, which refuses any construct it
does not know):

  1. every function lib/libminidistro.sym exports is declared MD_API in a
     public header, with a doc comment (/** ... */) right before it;
  2. a function returning int documents its errors ("Errors: ..." or the
     -E codes), unless it is a predicate/count that cannot fail (its comment
     says what 1/0/-1 mean, or that it returns 0);
  3. ownership: a function returning a pointer says whether it is borrowed
     (or static, or a reference the caller must drop); a function that hands
     out memory through a char ** / void ** parameter says who frees it (or
     how long it stays valid).  Pointer arguments are borrowed unless the
     comment says otherwise (md-common.h states the convention, also
     checked here);
  4. every public struct starts with `uint32_t version` and has
     MD_<NAME>_VERSION and MD_<NAME>_INIT; every struct a function takes
     as const input (options) has an exported <name>_init() for languages
     without macros.

    check-api-docs.py SRCDIR
"""
import os
import re
import sys

src = sys.argv[1]
sys.path.insert(0, os.path.join(src, "bindings", "python"))
import gen_capi  # noqa: E402

inc = os.path.join(src, "include", "libminidistro")
fails = []


def fail(msg):
    fails.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


headers = gen_capi.parse_all(inc)
funcs, structs = {}, {}
for h in headers:
    for it in h.items:
        if it[0] == "function":
            funcs[it[1]] = (h.name,) + it[2:]
        elif it[0] == "struct":
            structs[it[1]] = (h.name, it[2])
text = ""
for n in os.listdir(inc):
    if n.endswith(".h") or n.endswith(".h.in"):
        with open(os.path.join(inc, n), encoding="utf-8") as f:
            text += f.read()

with open(os.path.join(src, "lib", "libminidistro.sym"), encoding="utf-8") as f:
    sym = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
exported = set(re.findall(r"^\s*(md_\w+);", sym, re.M))

# 1
for name in sorted(exported):
    if name not in funcs:
        fail(f"{name} is exported but not declared MD_API in a public header")
    elif not funcs[name][3]:
        fail(f"{funcs[name][0]}: {name} has no doc comment (/** ... */) right before it")

# 2, 3
NO_FAIL = r"\b1 (if|when)\b|\bor -1\b|returns 0\b|NULL-safe \(returns 0\)"
ERRORS = r"Errors?\b|-E[A-Z]{2,}"
RET_OWN = r"[Bb]orrowed|static|never NULL|[Rr]eturns @\w+|reference|owned by|valid until"
OUT_OWN = r"free\(|free\(3\)|frees|md_\w+_free\(\)|owned by|valid until|[Bb]orrowed"
for name, (hname, ret, params, doc) in sorted(funcs.items()):
    if not doc:
        continue
    where = f"{hname}: {name}"
    if ret.c() == "int" and not re.search(ERRORS, doc) and not re.search(NO_FAIL, doc):
        fail(f"{where}: returns int but its comment names no errors (\"Errors: ...\")")
    if ret.is_pointer() and not re.search(RET_OWN, doc):
        fail(f"{where}: returns {ret.c()} but does not say who owns it (\"Borrowed\", static, ...)")
    for t, p in params:
        if len(t.ptrs) == 2 and t.base in ("char", "void") and not t.base_const \
                and not re.search(OUT_OWN, doc):
            fail(f"{where}: hands out memory through {t.c()}{p} but does not say who frees it")
common = open(os.path.join(inc, "md-common.h"), encoding="utf-8").read()
if not re.search(r"[Pp]ointer arguments are borrowed", common):
    fail("md-common.h does not state the convention that pointer arguments are borrowed")

# 4
inputs = {t.base for _, (_, _, params, _) in funcs.items() for t, _ in params
          if t.base in structs and t.base_const and len(t.ptrs) == 1}
for name, (hname, fields) in sorted(structs.items()):
    where = f"{hname}: {name}"
    if not fields or fields[0][1] != "version" or fields[0][0].c() != "uint32_t":
        fail(f"{where}: the first member is not `uint32_t version`")
    up = name.upper()
    for macro in (up + "_VERSION", up + "_INIT"):
        if not re.search(r"^#define " + macro + r"\b", text, re.M):
            fail(f"{where}: no {macro}")
    if name in inputs and name + "_init" not in exported:
        fail(f"{where}: an options struct without an exported {name}_init()")

if not fails:
    print(f"ok: {len(exported)} exported functions documented (errors, ownership); "
          f"{len(structs)} structs versioned ({len(inputs)} options structs with _init())")
sys.exit(1 if fails else 0)
