"""Entry point of the extension inside Lambda; the launcher runs it with ``python3 -I -S -B``."""

import os
import sys

if sys.version_info < (3, 10):  # the extension uses 3.10 syntax; say so instead of a SyntaxError
    found = ".".join(map(str, sys.version_info[:2]))
    sys.stderr.write(f"[concurrency-observer] needs Python 3.10 or newer, found {found}\n")
    sys.exit(1)

# -I keeps the script's directory off sys.path; the code lives beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from concurrency_observer.extension.main import main

main()
