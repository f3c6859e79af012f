#!/bin/sh
# Lambda starts every executable in /opt/extensions at init; this file's name is the extension's
# name.
# It picks what runs, without starting any extra process (no version probe, no dirname/basename):
# - python3 >= 3.10 (the first python3 on PATH, else /var/lang/bin/python3): the full extension,
#   run isolated (-I: no user site, no PYTHON* variables, no script dir on sys.path), without site
#   (-S: faster start) and without writing bytecode to the read-only /opt (-B). bootstrap.py checks
#   the version itself and comes back here with --no-python when it is too old;
# - otherwise, and for SHUTDOWN only + emf where it is the cheaper one (docs/benchmarks.md): the
#   bash fallback, which records init and shutdown only (docs/runtimes.md);
# - no bash either: one line and an exit, the least harmful of two failures (see without_bash).
# Any exit before SHUTDOWN is an Extension.Crash that fails every invoke: but for that last case,
# this script never exits, it is replaced.
case "$0" in
    */*) extensions_dir="${0%/*}" ;;
    *) extensions_dir=. ;;
esac
code_dir="$extensions_dir/../concurrency-observer"
name="${0##*/}"

without_bash() {
    # No bash, no python: nothing here can speak HTTP, so nothing can register. Measured under the
    # emulator: an extension that never registers holds every init until the function timeout (each
    # invoke "Task timed out"); one that exits fails each invoke at once (Extension.Crash). Both are
    # fatal; failing fast costs the function least and this line says why (docs/runtimes.md).
    echo "[concurrency-observer] ERROR no python3 >= 3.10 and no bash:" \
        "this layer cannot run here, remove it" >&2
    exit 0
}

run_fallback() {
    if command -v bash >/dev/null 2>&1; then
        exec bash "$code_dir/fallback.sh" "$name"
    fi
    without_bash
}

if [ "${1:-}" = --no-python ]; then
    run_fallback
fi

# The choice for SHUTDOWN only + emf (CONCURRENCY_OBSERVER_ENGINE: auto, python or bash).
case "${CONCURRENCY_OBSERVER_ENGINE:-auto}" in
    [Bb][Aa][Ss][Hh]) run_fallback ;;
    [Pp][Yy][Tt][Hh][Oo][Nn]) ;;
    *)
        case "${CONCURRENCY_OBSERVER_SINK:-}/${CONCURRENCY_OBSERVER_EVENTS:-}" in
            [Ee][Mm][Ff]/[Ss][Hh][Uu][Tt][Dd][Oo][Ww][Nn]) run_fallback ;;
        esac
        ;;
esac

if command -v python3 >/dev/null 2>&1; then
    python=python3
elif [ -x /var/lang/bin/python3 ]; then
    python=/var/lang/bin/python3
else
    run_fallback
fi
# The file name goes along: it is the name the extension must register under.
exec "$python" -I -S -B "$code_dir/bootstrap.py" "$name"
