#!/bin/sh
# The public headers document the API and version its structs: every
# exported function has a doc comment (/** */) naming its errors and who owns
# what it returns; every public struct starts with uint32_t version and has
# MD_*_VERSION, MD_*_INIT and, for options, an exported *_init().
# tests/check-api-docs.py has the rules.
set -eu
. "${MD_TESTDIR:-$(dirname "$0")}/lib.sh"
md_need_tool python3
export PYTHONDONTWRITEBYTECODE=1
python3 "$MD_TESTDIR/check-api-docs.py" "$MD_SRCDIR" || md_die "the API documentation rules are broken (above)"
md_done
