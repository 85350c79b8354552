"""Headless Chromium for tests that look at a page as a person would (tools/install-chromium puts
Debian's chromium in place). Without a browser the test skips, saying why; under CI (CI=true)
it fails instead, so CI cannot pass while never opening the page."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

#: This machine's network is closed: without these, Chromium's own connections (updates, sync,
#: QUIC probes) fail and can stall it; the page itself fetches nothing.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    why = "no chromium on PATH (tools/install-chromium installs Debian's package as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"headless Chromium required under CI: {why}")
    pytest.skip(why)


def run(page: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Chromium on `page` with a fresh profile; `args` say what to do (--screenshot, --dump-dom)."""
    binary = chromium()
    with tempfile.TemporaryDirectory(prefix="cetbench-chromium-") as profile:
        proc = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc
