"""lean_os stands in for os before the first /event/next: it must give what os gives."""

from __future__ import annotations

import os
import posixpath
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from concurrency_observer.extension import lean_os

paths = st.text(alphabet="/ab.", max_size=12)


@given(paths)
def test_basename_and_dirname_are_posixpaths(path: str) -> None:
    assert lean_os.basename(path) == posixpath.basename(path)
    assert lean_os.dirname(path) == posixpath.dirname(path)


@given(paths)
def test_absolute_joins_relative_paths_to_the_working_directory(path: str) -> None:
    absolute = lean_os.absolute(path)
    assert absolute.startswith("/")
    assert posixpath.normpath(absolute) == posixpath.abspath(path)


def test_the_environment_is_os_environs_even_with_undecodable_bytes() -> None:
    """In a child with a value that is not UTF-8: the same text as os.environ, surrogates and
    all."""
    code = (
        "import os; from concurrency_observer.extension import lean_os; "
        "assert lean_os.environ() == dict(os.environ); "
        "assert lean_os.environ()['ODD'] == os.environ['ODD'] != ''; "
        "assert lean_os.getenv('ODD') == os.environ['ODD']; "
        "assert lean_os.getenv('UNSET_HERE') is None"
    )
    env = {**os.environ, "ODD": "caf\udce9"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
