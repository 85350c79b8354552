"""Host KVM module parameters a variant asks for (the `kvmcet` axis): reload the module with them,
check that they took, and put the original back afterwards.

A reload is refused by the kernel while any VM holds the module ("Module kvm_intel is in use"):
that refusal, in modprobe's words, makes the variant unsupported — it is never measured with the
parameter other than asked. Only `cetbench run` with a pattern naming the axis gets here (the
axis is opt-in, variants.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SYS_MODULE = Path("/sys/module")
#: sysfs prints bool parameters as Y/N; the variant names use 0/1
_SYSFS = {"0": "N", "1": "Y"}


def current(module: str, name: str) -> str | None:
    try:
        return (SYS_MODULE / module / "parameters" / name).read_text().strip()
    except OSError:
        return None


def _modprobe(*args: str) -> str | None:
    proc = subprocess.run(["modprobe", *args], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip() or proc.stdout.strip() or f"modprobe exited {proc.returncode}").splitlines()[-1]


def reload_with(module: str, name: str, value: str) -> str | None:
    """Make `module`'s parameter `name` equal `value` (0/1), reloading the module when it differs;
    None when it holds, else why not (modprobe's or sysfs's words)."""
    want = _SYSFS.get(value, value)
    if current(module, name) == want:
        return None
    err = _modprobe("-r", module) or _modprobe(module, f"{name}={value}")
    if err:
        return f"reloading {module} with {name}={value}: {err}"
    got = current(module, name)
    if got != want:
        return f"{module} reloaded but /sys/module/{module}/parameters/{name} reads {got!r}, not {want!r}"
    return None


class Restorer:
    """Remembers each parameter's first value so the host is left as it was found."""

    def __init__(self) -> None:
        self._original: dict[tuple[str, str], str] = {}

    def set(self, module: str, name: str, value: str) -> str | None:
        self._original.setdefault((module, name), current(module, name) or "")
        return reload_with(module, name, value)

    def restore(self) -> list[str]:
        """Put every changed parameter back; the problems, if any (a run reports them)."""
        problems = []
        for (module, name), value in self._original.items():
            back = {"Y": "1", "N": "0"}.get(value, value)
            if value and (err := reload_with(module, name, back)):
                problems.append(err)
        self._original.clear()
        return problems
