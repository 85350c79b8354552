"""Shared state for the pytest-benchmark front door: one probe per session."""

from __future__ import annotations

from typing import Any

import pytest

from cetbench.pytest_frontdoor import host_probe


@pytest.fixture(scope="session")
def probe() -> dict[str, Any]:
    return host_probe()
