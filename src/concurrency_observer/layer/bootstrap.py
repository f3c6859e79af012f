"""Entry point of the extension inside Lambda; the launcher runs it with ``python3 -I -S -B``.

The launcher runs the first python3 on PATH without checking its version (a second interpreter
start at every cold start would cost as much as the extension). This file checks it instead, so
it must stay parseable by any python3 a runtime may have (and by Python 2.7): no f-strings, no
annotations, nothing newer than the 3.10 check. Too old: the runtime's own /var/lang/bin/python3
if it is another one, else the bash fallback. Whatever happens, this process is replaced, never
ended: an extension that exits before SHUTDOWN fails every invoke of the function.
"""

import os
import sys

MINIMUM = (3, 10)
LAMBDA_PYTHON = "/var/lang/bin/python3"
TRIED_LAMBDA_PYTHON = "--tried-var-lang"  # third argument: /var/lang/bin/python3 was too old too

here = os.path.dirname(os.path.abspath(__file__))
name = sys.argv[1] if len(sys.argv) > 1 else "concurrency-observer"


def _same_file(first, second):
    # type: (str, str) -> bool
    try:
        return os.path.samefile(first, second)
    except (OSError, TypeError, ValueError):
        return False


if sys.version_info < MINIMUM:
    tried = TRIED_LAMBDA_PYTHON in sys.argv[2:]
    if (
        not tried
        and os.access(LAMBDA_PYTHON, os.X_OK)
        and not _same_file(sys.executable or "", LAMBDA_PYTHON)
    ):
        os.execv(  # noqa: S606 (the runtime's own interpreter, a fixed path)
            LAMBDA_PYTHON,
            [LAMBDA_PYTHON, "-I", "-S", "-B", os.path.abspath(__file__), name, TRIED_LAMBDA_PYTHON],
        )
    # Back to the launcher, past its python3 search: the bash fallback takes over.
    launcher = os.path.join(here, "..", "extensions", name)
    if not os.access(launcher, os.X_OK):
        launcher = os.path.join(here, "..", "extensions", "concurrency-observer")
    os.execv("/bin/sh", ["/bin/sh", launcher, "--no-python"])  # noqa: S606 (our own launcher)

# -I keeps the script's directory off sys.path; the code lives beside this file.
sys.path.insert(0, here)

from concurrency_observer.extension.main import main  # noqa: E402 (after the version check)

main()
