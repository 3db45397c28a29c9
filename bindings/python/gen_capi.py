#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Generate minidistro/_capi.py, the thin 1:1 ctypes layer of the Python
package, from the public C headers (include/libminidistro/*.h).

    bindings/python/gen_capi.py            rewrite minidistro/_capi.py
    bindings/python/gen_capi.py --check    exit 1 (with a diff) if it is stale

The headers follow STYLE.md closely enough to be read without a C parser:
object-like #defines, opaque handles (typedef struct md_x md_x;), options
structs (typedef struct md_x { ... } md_x;), callback typedefs and MD_API
prototypes.  Anything else in a header is an error here, so that a new
construct is noticed instead of silently left out of the bindings.
tests/t-python-capi.sh checks the result against the C compiler: every
struct's size and field offsets, every prototype's type, every constant's
value.  Standard library only.
"""
import argparse
import difflib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INCLUDE = os.path.join(HERE, "..", "..", "include", "libminidistro")
DEFAULT_OUT = os.path.join(HERE, "minidistro", "_capi.py")

# C scalar types -> ctypes
SCALARS = {
    "int": "c_int",
    "unsigned int": "c_uint",
    "uint32_t": "c_uint32",
    "int32_t": "c_int32",
    "uint64_t": "c_uint64",
    "int64_t": "c_int64",
    "uint16_t": "c_uint16",
    "uint8_t": "c_uint8",
    "size_t": "c_size_t",
    "char": "c_char",
}

TOKEN = re.compile(r"\s*(?:([A-Za-z_]\w*)|(0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*)|(\"(?:[^\"\\]|\\.)*\")|(.))", re.S)


class HeaderError(Exception):
    pass


class CType:
    """A declarator's type: base name (without qualifiers) and, per pointer
    level, whether it is const; e.g. `const char *const *` is
    base='char', base_const=True, ptrs=[True, False]."""

    def __init__(self, base, base_const, ptrs, array=None):
        self.base, self.base_const, self.ptrs, self.array = base, base_const, ptrs, array

    def c(self):
        s = ("const " if self.base_const else "") + self.base
        if self.ptrs:
            s += " " + "".join("*const " if const else "*" for const in self.ptrs)
        return s.rstrip()

    def is_pointer(self):
        return bool(self.ptrs)


class Header:
    def __init__(self, name):
        self.name = name
        self.items = []   # ("const", name, value) ("opaque", name) ("struct", name, fields)
                          # ("callback", name, ret, params) ("function", name, ret, params, doc)


def split_top(tokens, sep):
    out, cur, depth = [], [], 0
    for t in tokens:
        if t in "({[":
            depth += 1
        elif t in ")}]":
            depth -= 1
        if t == sep and depth == 0:
            out.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        out.append(cur)
    return out


def parse_decl(tokens, where):
    """`const char *const *name[12]` -> (CType, name)."""
    tokens = list(tokens)
    array = None
    if len(tokens) >= 4 and tokens[-1] == "]" and tokens[-3] == "[":
        array = int(tokens[-2], 0)
        tokens = tokens[:-3]
    if not tokens or not re.match(r"[A-Za-z_]\w*$", tokens[-1]):
        raise HeaderError(f"{where}: cannot read declaration {' '.join(tokens)!r}")
    name = tokens[-1]
    ctype = parse_type(tokens[:-1], where)
    ctype.array = array
    return ctype, name


def parse_type(tokens, where):
    base, base_const, ptrs = [], False, []
    for t in tokens:
        if t == "const":
            if ptrs:
                ptrs[-1] = True
            else:
                base_const = True
        elif t == "*":
            ptrs.append(False)
        elif t in ("struct", "enum", "union", "volatile") or not re.match(r"[A-Za-z_]\w*$", t):
            raise HeaderError(f"{where}: unsupported type token {t!r} in {' '.join(tokens)!r}")
        elif ptrs:
            raise HeaderError(f"{where}: cannot read type {' '.join(tokens)!r}")
        else:
            base.append(t)
    if not base:
        raise HeaderError(f"{where}: no type in {' '.join(tokens)!r}")
    return CType(" ".join(base), base_const, ptrs)


def parse_params(tokens, where):
    if tokens == ["void"]:
        return []
    params = []
    for p in split_top(tokens, ","):
        if p == ["..."]:
            raise HeaderError(f"{where}: varargs are not allowed in the public API")
        params.append(parse_decl(p, where))
    return params


def tokenize(text, where):
    out, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        tok = m.group(0).strip()
        if tok:
            out.append(tok)
    return out


def parse_define(name, body, where, known):
    """Value of an object-like macro, or None when it is not a constant
    (brace initialisers, attributes, empty bodies)."""
    body = body.strip()
    if not body or "{" in body or "}" in body or "__attribute__" in body or body.startswith("extern"):
        return None
    if re.match(r'^"(?:[^"\\]|\\.)*"$', body):
        return body[1:-1].encode().decode("unicode_escape")
    expr = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", body)
    names = set(re.findall(r"\b[A-Za-z_]\w*", expr))
    if not names <= set(known) or not re.match(r"^[\w\s()+\-*|<>~]+$", expr):
        raise HeaderError(f"{where}: #define {name} {body}: not a constant this generator reads")
    return eval(expr, {"__builtins__": {}}, dict(known))  # only literals and known names


def parse_header(path, known):
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    hdr = Header(name)
    # Comments out first (each becomes blanks with its newlines, so offsets
    # and line numbers stay); remember where each doc comment (/** ... */) was.
    parts = re.split(r"(/\*.*?\*/|//[^\n]*)", text, flags=re.S)
    code, docs = "", {}
    for k, part in enumerate(parts):
        if k % 2:
            if part.startswith("/**") and not part.startswith("/**<"):
                docs[len(code)] = part
            code += re.sub(r"[^\n]", " ", part)
        else:
            code += part
    # Preprocessor lines (with continuations): constants are read, the lines blanked.
    out, pos = [], 0
    for m in re.finditer(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", code, flags=re.M):
        out.append(code[pos:m.start()])
        full = m.group(0).replace("\\\n", " ")
        d = re.match(r"\s*#\s*define\s+([A-Za-z_]\w*)(\(?)(.*)$", full, flags=re.S)
        if d and not d.group(2) and not d.group(1).endswith("_H"):
            where = f"{name}:{code.count(chr(10), 0, m.start()) + 1}"
            val = parse_define(d.group(1), d.group(3), where, known)
            if val is not None:
                known[d.group(1)] = val
                hdr.items.append(("const", d.group(1), val))
        out.append(re.sub(r"[^\n]", " ", m.group(0)))
        pos = m.end()
    out.append(code[pos:])
    code = re.sub(r"\bMD_(BEGIN|END)_DECLS\b", lambda m: " " * len(m.group(0)), "".join(out))
    # A doc comment belongs to the statement whose text starts right after it.
    stmts, start = [], 0
    depth = 0
    for pos, ch in enumerate(code):
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        elif ch == ";" and depth == 0:
            stmts.append((start, code[start:pos]))
            start = pos + 1
    if code[start:].strip() and tokenize(code[start:], name) not in (["MD_BEGIN_DECLS"], ["MD_END_DECLS"], []):
        rest = [t for t in tokenize(code[start:], name) if t not in ("MD_BEGIN_DECLS", "MD_END_DECLS")]
        if rest:
            raise HeaderError(f"{name}: text after the last declaration: {' '.join(rest)[:60]}")
    for start, stmt in stmts:
        line = code.count("\n", 0, start + len(stmt) - len(stmt.lstrip())) + 1
        where = f"{name}:{line}"
        toks = [t for t in tokenize(stmt, where) if t not in ("MD_BEGIN_DECLS", "MD_END_DECLS")]
        if not toks:
            continue
        lead = start + len(stmt) - len(stmt.lstrip())
        # the doc comment immediately before (only whitespace between)
        cands = [d for d in docs if d <= lead and not code[d:lead].strip()]
        doc = docs[max(cands)] if cands else None
        hdr.items.extend(parse_statement(toks, where, doc))
    return hdr


def parse_statement(toks, where, doc):
    if toks[0] == "typedef":
        t = toks[1:]
        if len(t) == 3 and t[0] == "struct" and t[1] == t[2]:
            return [("opaque", t[1])]
        if t[0] == "struct" and t[2] == "{" and t[-2] == "}":
            if t[1] != t[-1]:
                raise HeaderError(f"{where}: typedef struct {t[1]} ... {t[-1]}: names differ")
            fields = [parse_decl(f, where) for f in split_top(t[3:-2], ";") if f]
            return [("struct", t[1], fields)]
        if "(" in t and t[t.index("(") + 1] == "*":
            k = t.index("(")
            name = t[k + 2]
            if t[k + 3] != ")" or t[k + 4] != "(" or t[-1] != ")":
                raise HeaderError(f"{where}: cannot read callback typedef {' '.join(toks)!r}")
            return [("callback", name, parse_type(t[:k], where), parse_params(t[k + 5:-1], where))]
        raise HeaderError(f"{where}: unsupported typedef {' '.join(toks)!r}")
    if toks[0] == "MD_API":
        t = toks[1:]
        if "(" not in t or t[-1] != ")":
            raise HeaderError(f"{where}: MD_API without a prototype: {' '.join(toks)!r}")
        k = t.index("(")
        ret, name = parse_decl(t[:k], where)
        return [("function", name, ret, parse_params(t[k + 1:-1], where), doc)]
    raise HeaderError(f"{where}: unsupported declaration {' '.join(toks)!r} (public functions "
                      "are declared MD_API)")


def header_order(include_dir):
    """The headers in the order minidistro.h includes them."""
    with open(os.path.join(include_dir, "minidistro.h"), encoding="utf-8") as f:
        names = re.findall(r'#include\s+[<"](?:libminidistro/)?(md-[\w-]+\.h)[>"]', f.read())
    return [n for n in names if n != "md-version.h"]


def parse_all(include_dir):
    known, headers = {}, []
    for n in header_order(include_dir):
        headers.append(parse_header(os.path.join(include_dir, n), known))
    return headers


class Emitter:
    def __init__(self, headers):
        self.headers = headers
        self.structs, self.opaque, self.callbacks = set(), set(), set()
        for h in headers:
            for it in h.items:
                if it[0] == "struct":
                    self.structs.add(it[1])
                elif it[0] == "opaque":
                    self.opaque.add(it[1])
                elif it[0] == "callback":
                    self.callbacks.add(it[1])

    def ctypes_of(self, ct, where):
        base, depth = ct.base, len(ct.ptrs)
        if ct.array is not None:
            if base != "char" or depth:
                raise HeaderError(f"{where}: only char arrays are supported")
            return f"_c.c_char * {ct.array}"
        if depth == 0:
            if base == "void":
                return "None"
            if base in SCALARS:
                return "_c." + SCALARS[base]
            if base in self.callbacks or base in self.structs:
                return base
            raise HeaderError(f"{where}: unknown type {base}")
        if base == "char":
            inner = "_c.c_char_p"
        elif base == "void":
            inner = "_c.c_void_p"
        elif base in self.opaque or base in self.structs:
            inner = f"_c.POINTER({base})"
        elif base in SCALARS:
            inner = f"_c.POINTER(_c.{SCALARS[base]})"
        else:
            raise HeaderError(f"{where}: unknown type {base} *")
        for _ in range(depth - 1):
            inner = f"_c.POINTER({inner})"
        return inner

    def emit(self):
        o = ['# SPDX-License-Identifier: LGPL-2.1-or-later',
             '# Generated by bindings/python/gen_capi.py from include/libminidistro/*.h.',
             '# Do not edit: run bindings/python/gen_capi.py after changing a public header',
             '# (tests/t-python-capi.sh fails while this file is out of date).',
             '"""The thin layer: every constant, struct, callback type and function of',
             'the C API, 1:1, as ctypes declarations.  minidistro/__init__.py builds the',
             'Pythonic layer on it."""',
             'import ctypes as _c', '']
        consts, sigs, protos, ctypes_c = [], [], [], []
        for h in self.headers:
            o.append(f"# ---- {h.name} " + "-" * max(0, 66 - len(h.name)))
            for it in h.items:
                kind, name = it[0], it[1]
                where = f"{h.name}: {name}"
                if kind == "const":
                    o.append(f"{name} = {it[2]!r}")
                    consts.append(name)
                elif kind == "opaque":
                    o.append(f"\n\nclass {name}(_c.Structure):\n    \"\"\"opaque handle\"\"\"\n")
                elif kind == "callback":
                    args = ", ".join([self.ctypes_of(it[2], where)] +
                                     [self.ctypes_of(t, where) for t, _ in it[3]])
                    o.append(f"{name} = _c.CFUNCTYPE({args})")
                    ctypes_c.append((name, it[2].c() + " (*)(" +
                                     ", ".join(t.c() for t, _ in it[3]) + ")"))
                elif kind == "struct":
                    o.append(f"\n\nclass {name}(_c.Structure):")
                    o.append("    _fields_ = [")
                    for t, fname in it[2]:
                        o.append(f"        ({fname!r}, {self.ctypes_of(t, where + '.' + fname)}),")
                    o.append("    ]")
                    o.append("    C_TYPES = {" + ", ".join(
                        f"{fname!r}: {(t.c() + (f'[{t.array}]' if t.array is not None else ''))!r}"
                        for t, fname in it[2]) + "}\n")
                elif kind == "function":
                    ret, params = it[2], it[3]
                    protos.append(f"    {name!r}: ({self.ctypes_of(ret, where)}, [" +
                                  ", ".join(self.ctypes_of(t, where) for t, _ in params) + "]),")
                    sigs.append(f"    {name!r}: ({ret.c()!r}, [" +
                                ", ".join(repr(t.c()) for t, _ in params) + "], [" +
                                ", ".join(repr(p) for _, p in params) + "]),")
        o.append("\n# name: (restype, argtypes)")
        o.append("PROTOTYPES = {")
        o.extend(protos)
        o.append("}\n")
        o.append("# name: (C return type, C parameter types, parameter names), for the checks")
        o.append("SIGNATURES = {")
        o.extend(sigs)
        o.append("}\n")
        o.append("CALLBACK_C_TYPES = {" + ", ".join(f"{n!r}: {c!r}" for n, c in ctypes_c) + "}")
        o.append("STRUCTS = [" + ", ".join(
            it[1] for h in self.headers for it in h.items if it[0] == "struct") + "]")
        o.append("OPAQUE = [" + ", ".join(
            it[1] for h in self.headers for it in h.items if it[0] == "opaque") + "]")
        o.append("CONSTANTS = [")
        for i in range(0, len(consts), 4):
            o.append("    " + " ".join(f"{c!r}," for c in consts[i:i + 4]))
        o.append("]")
        return re.sub(r"\n{4,}", "\n\n\n", "\n".join(o)) + "\n"


def generate(include_dir):
    return Emitter(parse_all(include_dir)).emit()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--include", default=DEFAULT_INCLUDE, help="the public headers' directory")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="compare with --out instead of writing it; exit 1 with a diff if it differs")
    a = ap.parse_args(argv)
    try:
        text = generate(a.include)
    except HeaderError as e:
        print(f"gen_capi.py: {e}", file=sys.stderr)
        return 1
    if a.check:
        try:
            with open(a.out, encoding="utf-8") as f:
                old = f.read()
        except OSError as e:
            print(f"gen_capi.py: {e}", file=sys.stderr)
            return 1
        if old != text:
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), text.splitlines(True), a.out + " (committed)",
                a.out + " (from the headers)"))
            print(f"gen_capi.py: {a.out} is out of date: run bindings/python/gen_capi.py",
                  file=sys.stderr)
            return 1
        return 0
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
