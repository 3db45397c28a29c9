#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Each mdimg command's man page (docs/man/*.scd) agrees with its --help:

  - there is one page per command and disk subcommand, and no other;
  - SYNOPSIS is the --help "Usage:" block (whitespace aside);
  - the options are the same: every -x / --long option --help mentions is in
    the page's option sections (OPTIONS, SOURCES, COMMANDS, ...: not the
    prose, examples and references, which may name other programs'
    options), and every option those sections mention is in --help;
  - the commands (subcommands) --help lists are the page's.

    check-man.py MDIMG MANDIR
"""
import os
import re
import subprocess
import sys

mdimg, mandir = sys.argv[1:3]
fails = []


def fail(msg):
    fails.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def help_of(cmd):
    r = subprocess.run([mdimg] + cmd + ["--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    if r.returncode != 0:
        fail(f"mdimg {' '.join(cmd)} --help: exit {r.returncode}")
    return r.stdout


def listed(text, header):
    """Names in the block after a line "HEADER:" (two-space indented 'name  text' lines)."""
    m = re.search(r"^" + header + r":\n((?:  \S.*\n)+)", text, re.M)
    return [l.split()[0] for l in m.group(1).splitlines()] if m else []


def squash(s):
    return " ".join(s.split())


def plain(scd):
    """scdoc source -> text: markup and escapes removed."""
    s = re.sub(r"\\(.)", lambda m: "\0" + m.group(1), scd)   # protect escapes
    s = s.replace("*", "")
    s = re.sub(r"(?<!\w)_|_(?!\w)", "", s)
    return s.replace("\0", "")


OPT = re.compile(r"(?<![\w/-])(--[a-z][a-z0-9-]*|-[A-Za-z])(?![\w-])")

top = help_of([])
commands = listed(top, "Commands")
disk_sub = listed(help_of(["disk"]), "Subcommands")
if len(commands) < 5 or len(disk_sub) < 3:
    fail(f"could not read the command lists of --help: {commands} {disk_sub}")
pages = {"mdimg": []}
for c in commands:
    pages[f"mdimg-{c}"] = [c]
for s in disk_sub:
    pages[f"mdimg-disk-{s}"] = ["disk", s]
have = {f[:-len(".1.scd")] for f in os.listdir(mandir) if f.endswith(".1.scd")}
for p in sorted(set(pages) - have):
    fail(f"no man page docs/man/{p}.1.scd for 'mdimg {' '.join(pages[p])}'")
for p in sorted(have - set(pages)):
    fail(f"docs/man/{p}.1.scd is not the page of any command --help lists")

checked = 0
for page, cmd in sorted(pages.items()):
    if page not in have:
        continue
    with open(os.path.join(mandir, page + ".1.scd"), encoding="utf-8") as f:
        scd = f.read()
    h = help_of(cmd)
    name = "mdimg " + " ".join(cmd) if cmd else "mdimg"
    # SYNOPSIS
    m = re.search(r"^# SYNOPSIS\n\n```\n(.*?)```", scd, re.M | re.S)
    usage = re.search(r"^Usage: (.*?)(?:\n\n|\Z)", h, re.M | re.S)
    if not m:
        fail(f"{page}: no SYNOPSIS block (# SYNOPSIS then a ``` block)")
    elif not usage:
        fail(f"{name} --help has no 'Usage:' block")
    elif squash(m.group(1)) != squash(usage.group(1)):
        fail(f"{page}: SYNOPSIS differs from '{name} --help':\n  page: {squash(m.group(1))}\n"
             f"  help: {squash(usage.group(1))}")
    # options: those of the page's option sections (prose, examples and
    # references may name other programs' options)
    text = plain("\n".join(sec for sec in re.split(r"^(?=# )", scd, flags=re.M)
                           if not re.match(r"# (NAME|SYNOPSIS|DESCRIPTION|NOTES|EXAMPLES|"
                                           r"SEE ALSO|ENVIRONMENT|EXIT STATUS)\b", sec)))
    in_help, in_page = set(OPT.findall(h)), set(OPT.findall(text))
    if in_help - in_page:
        fail(f"{page}: options in '{name} --help' but not in the page: "
             f"{' '.join(sorted(in_help - in_page))}")
    if in_page - in_help:
        fail(f"{page}: options in the page but not in '{name} --help': "
             f"{' '.join(sorted(in_page - in_help))}")
    # command lists
    for header in ("Commands", "Subcommands"):
        for c in listed(h, header):
            if not re.search(r"^\*" + re.escape(c) + r"\*$", scd, re.M):
                fail(f"{page}: '{c}' ({header.lower()} of '{name} --help') is not an entry of the page")
    checked += 1
if not fails:
    print(f"ok: {checked} man pages agree with --help (synopsis, options, commands)")
sys.exit(1 if fails else 0)
