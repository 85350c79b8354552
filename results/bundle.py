"""Write run bundles (docs/bundle-format.md): a directory with manifest.json and per-variant files.

Every file is written atomically (temporary file, fsync, rename, fsync of the directory), so a run
killed at any instant, SIGKILL included, leaves a bundle whose manifest is whole and whose measured
variants are intact; variants not finished stay `pending` and `--resume` completes them.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = 1
KIND = "cetbench-run"
MANIFEST = "manifest.json"
STATUSES = ("measured", "unsupported", "failed", "pending")


class BundleError(Exception):
    """A directory is not a usable bundle for what was asked; the message says why in one line."""


def slug(variant: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", variant).rstrip("_")


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def atomic_write_json(path: Path, doc: Any) -> None:
    atomic_write(path, (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode())


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{root}: not a cetbench bundle (no {MANIFEST})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: unreadable manifest: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise BundleError(f"{path}: not a cetbench run manifest")
    if not isinstance(doc.get("schema"), int) or doc["schema"] > SCHEMA:
        raise BundleError(f"{path}: manifest schema {doc.get('schema')} is newer than this cetbench ({SCHEMA})")
    return doc


class Bundle:
    """A bundle being written. The manifest in memory is the truth; `save()` publishes it."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest

    @classmethod
    def create(cls, root: Path, manifest: dict[str, Any]) -> Bundle:
        if root.exists():
            if (root / MANIFEST).exists():
                raise BundleError(f"{root} already holds a run; use --resume {root} to complete it")
            if not root.is_dir() or any(root.iterdir()):
                raise BundleError(f"{root} exists and is not an empty directory or a cetbench bundle")
        try:
            (root / "variants").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BundleError(f"cannot create {root}: {exc.strerror}") from None
        if not os.access(root, os.W_OK):
            raise BundleError(f"{root} is not writable")
        bundle = cls(root, {"schema": SCHEMA, "kind": KIND, **manifest})
        bundle.save()
        return bundle

    @classmethod
    def open_for_resume(cls, root: Path) -> Bundle:
        manifest = read_manifest(root)
        if not os.access(root, os.W_OK):
            raise BundleError(f"{root} is not writable")
        (root / "variants").mkdir(exist_ok=True)
        return cls(root, manifest)

    def save(self) -> None:
        atomic_write_json(self.root / MANIFEST, self.manifest)

    def variant_path(self, variant: str, suffix: str) -> Path:
        return self.root / "variants" / f"{slug(variant)}.{suffix}"

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def set_variant(self, name: str, **fields: Any) -> None:
        entry = self.manifest["variants"][name]
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"bad status {fields['status']!r}")
        entry.update(fields)
        self.save()

    def remove_leftovers(self) -> None:
        """Delete what an interrupted writer left: temporary and partial files (every name this module
        and the runner give them starts with a dot). The manifest never names them."""
        for directory in (self.root, self.root / "variants"):
            for path in directory.glob(".*"):
                if path.is_file():
                    path.unlink(missing_ok=True)

    def pending(self) -> list[str]:
        """Variants still to run: pending ones, and measured ones whose pyperf file is missing."""
        out = []
        for name, entry in self.manifest["variants"].items():
            if entry["status"] == "pending":
                out.append(name)
            elif entry["status"] == "measured" and not (self.root / str(entry.get("pyperf"))).is_file():
                out.append(name)
        return out
