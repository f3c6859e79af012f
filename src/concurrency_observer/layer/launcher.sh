#!/bin/sh
# Lambda starts every executable in /opt/extensions at init; this file's name is the extension's name.
# The extension is stdlib-only Python: run the runtime's python3 isolated (-I: no user site, no
# PYTHON* variables, no script dir on sys.path), without site (-S: faster start) and without trying
# to write bytecode to the read-only /opt (-B).
# Parameter expansion, not dirname/basename: each of those forks a process at every cold start.
case "$0" in
    */*) extensions_dir="${0%/*}" ;;
    *) extensions_dir=. ;;
esac
code_dir="$extensions_dir/../concurrency-observer"
if ! command -v python3 >/dev/null 2>&1; then
    echo "[concurrency-observer] no python3 on PATH: this layer needs a Python 3.10+ Lambda runtime" >&2
    exit 1
fi
# The file name goes along: it is the name the extension must register under.
exec python3 -I -S -B "$code_dir/bootstrap.py" "${0##*/}"
