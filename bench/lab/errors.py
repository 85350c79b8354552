"""The lab's errors: each message is one line a user can act on."""

from __future__ import annotations


class LabError(RuntimeError):
    """The emulated CET lab could not be set up or run."""


class ArchiveError(LabError):
    """A package could not be had from the Debian archive (network, mirror, or the archive moved on)."""


class KernelRefused(LabError):
    """A kernel that cannot run the lab: too old, or built without the CET and KVM options it needs."""


class EmulatorBuildError(LabError):
    """bochs could not be built from Debian's source package."""
