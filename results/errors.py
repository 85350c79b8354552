"""Exceptions of the results store. Every message is safe to print: store URLs are masked."""

from __future__ import annotations


class StoreError(Exception):
    """The store cannot be used (bad URL, unreachable, not a store, wrong schema, ...)."""


class StoreUnavailable(StoreError):
    """The store URL cannot be opened or reached."""


class StoreSchemaTooNew(StoreError):
    """The store was written by a newer cetbench (its schema version is above ours)."""


class RunNotFound(StoreError):
    """No run with the given run id is in the store."""


class InputError(Exception):
    """One input (bundle, pyperf or pytest-benchmark file) is unreadable or inconsistent.

    `path` names the input given to ingest; `message` says which file inside it and what is wrong.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class InputSchemaTooNew(InputError):
    """A bundle written with a newer manifest schema than this cetbench reads."""
