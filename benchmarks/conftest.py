"""Shared state for the pytest-benchmark front door: one probe and plan per session."""

from __future__ import annotations

import pytest

from cetbench.pytest_frontdoor import Session, session


@pytest.fixture(scope="session")
def run() -> Session:
    return session()
