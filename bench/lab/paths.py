"""Where the lab keeps what it downloads and builds (one cache, shared by every run)."""

from __future__ import annotations

import os
from pathlib import Path


def lab_cache_root() -> Path:
    """$CETBENCH_LAB_CACHE, else $XDG_CACHE_HOME/cetbench/lab, else ~/.cache/cetbench/lab (the same
    conventions as the native build cache, workloads/build.py)."""
    override = os.environ.get("CETBENCH_LAB_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cetbench" / "lab"
