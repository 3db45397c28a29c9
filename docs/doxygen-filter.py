#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Doxygen INPUT_FILTER for include/libminidistro/*.h (docs/Doxyfile.in).

The headers' comments are written for people reading the header: `@name`
refers to a parameter (as gtk-doc does), members and #defines are explained
in a trailing `/* ... */`, and the text holds <, >, \\ and % freely.  Doxygen
reads `@name` as a command, ignores plain comments and parses < > \\ % as
markup, so this filter rewrites, in the text it reads only:
  - `@word` in a doc comment -> `\\p word` (a parameter reference), except
    Doxygen's own commands listed in KEEP;
  - a trailing `/* ... */` after a member or a #define -> `/**< ... */`;
  - < > & \\ % inside doc comments -> escaped, so that they print as written
    (not inside "double quotes", which Doxygen prints as they are).
Line numbers are kept.
"""
import re
import sys

KEEP = {"param", "return", "returns", "retval", "brief", "note", "see", "ref", "p", "c",
        "code", "endcode", "warning", "since", "deprecated"}


def escape_part(body):
    body = body.replace("\\", "\\\\")
    body = re.sub(r"([<>&%])", r"\\\1", body)
    return re.sub(r"(?<![\w@])@([A-Za-z_]\w*)",
                  lambda m: m.group(0) if m.group(1) in KEEP else r"\p " + m.group(1), body)


def escape(body):
    """Escape outside "quoted strings", which Doxygen prints verbatim."""
    parts = re.split(r'("[^"\n]*")', body)
    return "".join(p if i % 2 else escape_part(p) for i, p in enumerate(parts))


def doc(m):
    opening, body = m.group(1), m.group(2)
    return opening + escape(body) + "*/"


def main(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # trailing comments of members (`...;  /* x */`) and of #defines become member docs
    text = re.sub(r"(;[ \t]*)/\*(?!\*)", r"\1/**<", text)
    text = re.sub(r"(^#define[ \t]+\w+[ \t]+[^\n]*?[^ \t\n/])([ \t]+)/\*(?!\*)", r"\1\2/**<",
                  text, flags=re.M)
    text = re.sub(r"(/\*\*<?)(.*?)\*/", doc, text, flags=re.S)
    sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1])
