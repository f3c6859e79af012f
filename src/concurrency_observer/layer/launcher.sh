#!/bin/sh -p
# Lambda starts every executable in /opt/extensions at init; this file's name is the extension's
# name.
# It starts the shell front door, fallback.sh: read by this process when this sh is bash, else
# with exec of bash -p (docs/runtimes.md, "Which program runs"). The front door registers with
# the Extensions API before any interpreter starts, then hands the identifier to the Python
# engine or serves the events itself (the bash engine). bash from PATH, else /bin/bash or
# /usr/bin/bash, where every Lambda image has it.
# Without bash (an image built on something like Alpine), the Python engine registers itself:
# - /var/lang/bin/python3 when it exists, run isolated (-I: no user site, no PYTHON* variables,
#   no script dir on sys.path), without site (-S: faster start) and without writing bytecode to
#   the read-only /opt (-B). bootstrap.py checks the version itself and comes back here with
#   --path-python when it is older than 3.10;
# - else the first python3 on PATH, once a probe bounded in time (probe_python) has seen it run
#   Python 3.10+: a python3 that is old, broken, prints junk or hangs costs at most that bound;
# - neither: one line and an exit, the least harmful of two failures (see without_bash).
# Any exit before SHUTDOWN is an Extension.Crash that fails every invoke: but for that last case,
# this script never exits, it is replaced.
#
# The environment is the function's, and a user's: nothing in it may program this shell. -p on
# the #! line keeps sh (bash, as /bin/sh is on Amazon Linux) from reading $ENV and $BASH_ENV,
# parsing $SHELLOPTS and $BASHOPTS and importing functions; what -p leaves is undone here before
# anything else runs. No value of the environment is ever evaluated, only compared.
IFS=' 	
'
unset -v EXECIGNORE FUNCNEST BASH_COMPAT CDPATH GLOBIGNORE TMOUT 2>/dev/null
case "$0" in
    */*) extensions_dir="${0%/*}" ;;
    *) extensions_dir=. ;;
esac
code_dir="$extensions_dir/../concurrency-observer"
name="${0##*/}"
lambda_python=/var/lang/bin/python3
probe_timeout_s=2 # how long a python3 from PATH may take to prove it runs Python 3.10+

# This sh is bash itself (Amazon Linux's /bin/sh is): this process reads the front door, one bash
# start less before Register (about 1 ms: docs/benchmarks.md), and before the functions below,
# which are for the other cases. fallback.sh leaves POSIX mode first thing and never returns.
# Only bash may read it: another sh would stop at its syntax and exit before Register, so the
# test is the running binary, never a variable the environment sets.
# /proc/self/exe, not /proc/$$/exe: $$ counts in this process's pid namespace, which the mounted
# /proc may not (local environments); /proc/self is what this very process reads. -ef is in dash
# and bash alike; the dot command's arguments are bash's, and only bash runs that line.
case "${1:-}" in
    --no-python | --path-python) ;; # bootstrap.py's way back: handled below
    *)
        # shellcheck disable=SC3013,SC2240,SC1091
        if { [ /proc/self/exe -ef /bin/bash ] || [ /proc/self/exe -ef /usr/bin/bash ]; } &&
            [ -r "$code_dir/fallback.sh" ]; then
            . "$code_dir/fallback.sh" "$name"
        fi
        ;;
esac

without_bash() {
    # No bash, no python: nothing here can speak HTTP, so nothing can register. Measured under the
    # emulator: an extension that never registers holds every init until the function timeout (each
    # invoke "Task timed out"); one that exits fails each invoke at once (Extension.Crash). Both are
    # fatal; failing fast costs the function least and this line says why (docs/runtimes.md).
    echo "[concurrency-observer] ERROR no python3 >= 3.10 and no bash:" \
        "this layer cannot run here, remove it" >&2
    exit 0
}

run_front_door() {
    # bash from PATH, else where every Lambda image has it (a PATH without /bin is the user's).
    if command -v bash >/dev/null 2>&1; then
        exec bash -p "$code_dir/fallback.sh" "$name"
    fi
    for bash in /bin/bash /usr/bin/bash; do
        if [ -x "$bash" ]; then
            exec "$bash" -p "$code_dir/fallback.sh" "$name"
        fi
    done
}

probe_python() {
    # probe_python PATH: whether PATH runs Python 3.10+ code, answered within $probe_timeout_s.
    # The exit status asked for (100-199, from this shell's pid) proves that it ran this line: a
    # failing or fake interpreter exits 0, 1, 127 or some constant. A watchdog kills a probe that
    # hangs. Costs one interpreter start, and only off the Lambda Python runtimes (they have
    # /var/lang/bin/python3). Its output goes nowhere: junk cannot reach the function's log.
    expected=$(($$ % 100 + 100))
    "$1" -I -S -c 'import sys; sys.exit(int(sys.argv[1]) if sys.version_info >= (3, 10) else 3)' \
        "$expected" </dev/null >/dev/null 2>&1 &
    probe=$!
    watchdog=''
    for sleep in /bin/sleep /usr/bin/sleep; do
        [ -x "$sleep" ] || continue
        (
            # Stopped by TERM when the probe ends first: take the sleep along, leave nothing.
            trap 'kill "$nap" 2>/dev/null; exit 0' TERM
            "$sleep" "$probe_timeout_s" &
            nap=$!
            wait "$nap" && kill -9 "$probe"
        ) </dev/null >/dev/null 2>&1 &
        watchdog=$!
        break
    done
    wait "$probe" 2>/dev/null # bash reports a killed job on stderr: not the function's log
    answer=$?
    if [ -n "$watchdog" ]; then
        kill "$watchdog" 2>/dev/null
        wait "$watchdog" # reaped here: the python3 this shell becomes would leave a zombie
    fi
    [ "$answer" = "$expected" ]
}

run_path_python() {
    # The first python3 on PATH, when it is not Lambda's (already tried) and passes the probe.
    python=$(command -v python3 2>/dev/null) || without_bash
    case "$python" in
        "$lambda_python" | '') without_bash ;;
    esac
    probe_python "$python" || without_bash
    # The file name goes along: it is the name the extension must register under.
    exec "$python" -I -S -B "$code_dir/bootstrap.py" "$name" path
}

case "${1:-}" in
    --no-python) without_bash ;; # bootstrap.py, started here without bash: no python3 worked
    --path-python) run_path_python ;; # /var/lang/bin/python3 was older than 3.10
esac

run_front_door
# No bash: the Python engine registers itself.
if [ -x "$lambda_python" ]; then
    exec "$lambda_python" -I -S -B "$code_dir/bootstrap.py" "$name" lambda
fi
run_path_python
