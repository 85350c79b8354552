"""Consoles for every command: CI logs are read as often as terminals, so output that is not a
terminal (a pipe, a file, a CI log) is never cut to 80 columns."""

from __future__ import annotations

import shutil
import sys

from rich.console import Console

#: Width of output that is not a terminal: wide enough that no id, name or figure is cut (tables
#: take only the width they need).
UNBOUNDED = 1000


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=max(UNBOUNDED, shutil.get_terminal_size().columns), soft_wrap=False)


def one_line(text: str) -> str:
    """A message as one printable line: a name the user gave may hold a newline or a terminal escape (an
    error is one line), or bytes that are not UTF-8 (a path, an argument); each such character is shown
    escaped (\\n, \\x1b, \\udcff)."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
