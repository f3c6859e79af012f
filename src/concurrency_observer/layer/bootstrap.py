"""Entry point of the extension inside Lambda; the launcher runs it with ``python3 -I -S -B``.

The launcher runs /var/lang/bin/python3 (Lambda's Python runtimes) without checking its version:
a second interpreter start at every cold start would cost as much as the extension. This file
checks it instead, so it must stay parseable by any python3 a runtime may have (and by Python
2.7): no f-strings, no annotations, nothing newer than the 3.10 check. Too old: back to the
launcher, which tries the python3 on PATH (``--path-python``, with a probe bounded in time) and
then the bash fallback (``--no-python``). The same when the extension cannot even be imported
(a broken interpreter or standard library). Whatever happens, this process is replaced, never
ended: an extension that exits before SHUTDOWN fails every invoke of the function.

Arguments: the extension's name, then ``lambda`` or ``path``: which interpreter the launcher ran.

Started by the shell front door instead (``--handoff ...`` follows, see
``concurrency_observer/extension/handoff.py``), the front door registered already and is this
process's parent: then a Python too old or unable to import the extension exits (``TOO_OLD``,
``CANNOT_IMPORT``), and the front door tries the next interpreter or serves the events itself.
"""

# posix, not os: os and what it loads cost about 1 ms of every cold start, and posix (what os
# wraps on Linux) is built in and loaded already (concurrency_observer/extension/lean_os.py).
import posix
import sys

MINIMUM = (3, 10)
TOO_OLD = 3  # exit statuses the front door reads: try the next python3, else the shell engine
CANNOT_IMPORT = 4

X_OK = 1  # access()'s mode for "may execute", as os.X_OK
script = __file__ if __file__.startswith("/") else posix.getcwd() + "/" + __file__
here = script[: script.rfind("/")]
name = sys.argv[1] if len(sys.argv) > 1 else "concurrency-observer"
started_as = sys.argv[2] if len(sys.argv) > 2 else "path"
handed_off = "--handoff" in sys.argv


def back_to_launcher():
    # type: () -> None
    """Replace this process with the launcher, past the interpreter just tried."""
    launcher = here + "/../extensions/" + name
    if not posix.access(launcher, X_OK):
        launcher = here + "/../extensions/concurrency-observer"
    # Lambda's python3 was the first choice: the one on PATH is next; after it, bash.
    next_step = "--path-python" if started_as == "lambda" else "--no-python"
    posix.execv("/bin/sh", ["/bin/sh", "-p", launcher, next_step])


if sys.version_info < MINIMUM:
    if handed_off:
        sys.exit(TOO_OLD)
    back_to_launcher()

# -I keeps the script's directory off sys.path; the code lives beside this file.
sys.path.insert(0, here)

try:  # after the version check; an interpreter that cannot load its standard library's parts
    from concurrency_observer.extension.main import main
except Exception:
    if handed_off:
        sys.exit(CANNOT_IMPORT)
    back_to_launcher()

main()
