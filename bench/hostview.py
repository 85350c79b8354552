"""Read-only access to a host's /proc, /sys, /boot and /dev, rooted anywhere.

The probe reads everything through a HostView so that tests can point it at a fixture tree written
from the documented formats, and so that every unreadable file becomes a reason, never a crash.
"""

from __future__ import annotations

import os
from pathlib import Path


class HostView:
    def __init__(self, root: Path | str = "/") -> None:
        self.root = Path(root)

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def read_bytes(self, rel: str) -> tuple[bytes | None, str | None]:
        """(content, None) or (None, why it could not be read)."""
        try:
            return self.path(rel).read_bytes(), None
        except OSError as exc:
            return None, f"/{rel.lstrip('/')}: {exc.strerror or exc}"
        except ValueError:  # a NUL in the name (a name made of what a file said, as the lab guest's release)
            return None, f"/{rel.lstrip('/')!r}: not a file name (NUL)"

    def read_text(self, rel: str) -> tuple[str | None, str | None]:
        data, err = self.read_bytes(rel)
        if data is None:
            return None, err
        return data.decode("utf-8", "replace"), None

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self.path(rel))

    def is_dir(self, rel: str) -> bool:
        return self.path(rel).is_dir()

    def listdir(self, rel: str) -> list[str]:
        """Names in a directory, sorted; [] when it cannot be listed."""
        try:
            return sorted(os.listdir(self.path(rel)))
        except (OSError, ValueError):
            return []
