"""Where cetbench keeps things by default: the embedded data directory (XDG base directories)."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """`$CETBENCH_HOME`, else `$XDG_DATA_HOME/cetbench`, else `~/.local/share/cetbench`."""
    if os.environ.get("CETBENCH_HOME"):
        return Path(os.environ["CETBENCH_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cetbench"


def default_runs_dir() -> Path:
    return default_data_dir() / "runs"
