"""QEMU for the Linux guests (linux.* workloads): which one, how it is started, what it can offer.

A lab host brings its own QEMU (>= 10.2 for CET: the x86 CPU model's `cet-ss` and `cet-ibt` features,
and the XSS bits behind them). Where the system's QEMU is missing or too old, QEMU is taken from the
Debian archive (trixie-backports) with the libraries and loader of its suite, unpacked into the lab
cache through the lab's private apt, never installed: it runs as `ld-linux --library-path LIBS qemu`.

Which QEMU, in order: $CETBENCH_QEMU (a qemu-system-x86_64), the system's when it knows cet-ss, the
archive copy in the cache, the system's (an old one still runs the CET-off variants).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cetbench.lab.apt import PrivateApt, private_apt, unpack
from cetbench.lab.errors import ArchiveError, LabError
from cetbench.lab.paths import lab_cache_root

BINARY = "qemu-system-x86_64"
ENV_QEMU = "CETBENCH_QEMU"
#: QEMU's names for the CET features of its x86 CPU model (target/i386/cpu.c, QEMU >= 10.2), by the
#: suite's feature names (workloads/variants.py).
CET_FLAGS = {"shstk": "cet-ss", "ibt": "cet-ibt"}
#: The archive copy: its suite, the suite of the libraries and loader it is built against, its packages.
ARCHIVE_SUITE, LIBRARY_SUITE = "trixie-backports", "trixie"
ARCHIVE_PACKAGES = ("qemu-system-x86", "qemu-system-common", "qemu-system-data", "seabios")
MARKER = "qemu.json"  # in the cache's qemu/ folder: what install_qemu unpacked
MEMORY_MB = 1024


@dataclass(frozen=True)
class Qemu:
    binary: Path
    origin: str  # "env" | "system" | "archive"
    #: what runs the binary: () for a system QEMU, the loader and library path for an archive copy
    loader: tuple[str, ...] = ()
    data_dirs: tuple[Path, ...] = ()  # -L: firmware (SeaBIOS, option ROMs)
    env: dict[str, str] = field(default_factory=dict)
    packages: tuple[str, ...] = ()  # name=version of an archive copy

    @property
    def argv(self) -> list[str]:
        return [*self.loader, str(self.binary), *(a for d in self.data_dirs for a in ("-L", str(d)))]

    def _output(self, *args: str) -> str:
        try:
            proc = subprocess.run([*self.argv, *args], capture_output=True, text=True, errors="replace",
                                  timeout=60, check=False, env={**os.environ, **self.env})
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LabError(f"{self.binary} {' '.join(args)}: {exc}") from exc
        if proc.returncode != 0:
            raise LabError(f"{self.binary} {' '.join(args)} exited {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()[-300:]}")
        return proc.stdout

    @cached_property
    def version(self) -> str:
        """`11.1.3 (Debian 1:11.1.3+ds-2~bpo13+1)`, from --version."""
        first = self._output("--version").splitlines()[0]
        return first.removeprefix("QEMU emulator version ").strip()

    @cached_property
    def cpu_features(self) -> frozenset[str]:
        """Every feature name `-cpu help` lists (the ones `-cpu MODEL,NAME=on` accepts)."""
        text = self._output("-cpu", "help")
        tail = text.split("Recognized CPUID flags:", 1)[-1]
        return frozenset(tail.split())

    def knows(self, feature: str) -> bool:
        return CET_FLAGS[feature] in self.cpu_features

    @property
    def description(self) -> str:
        where = {"env": f"${ENV_QEMU}", "system": "the system's", "archive": f"Debian {ARCHIVE_SUITE}, unpacked"}
        return f"QEMU {self.version} ({where[self.origin]})"

    def to_json(self) -> dict[str, object]:
        return {"binary": str(self.binary), "origin": self.origin, "version": self.version,
                "package": next((p for p in self.packages if p.startswith("qemu-system-x86=")), None),
                "libraries": len(self.packages), "description": self.description}


def cpu_option(model: str, features: frozenset[str], knows: frozenset[str]) -> str:
    """`-cpu` for a vCPU offering exactly `features` of CET: each CET flag QEMU knows is set on or off
    (a host CPU model would otherwise pass the host's CET through), and `enforce` makes QEMU refuse,
    in its own words, a feature the accelerator cannot give instead of dropping it silently."""
    parts = [model]
    for feature, flag in CET_FLAGS.items():
        if feature in features or flag in knows:
            parts.append(f"{flag}={'on' if feature in features else 'off'}")
    return ",".join([*parts, "enforce"])


def machine(qemu: Qemu, accel: str, features: frozenset[str], memory_mb: int = MEMORY_MB) -> list[str]:
    """QEMU and the machine: one vCPU offering exactly `features` of CET, no default devices, no display."""
    model = "host" if accel == "kvm" else "max"
    return [*qemu.argv, "-accel", accel, "-cpu", cpu_option(model, features, qemu.cpu_features),
            "-smp", "1", "-m", str(memory_mb), "-nodefaults", "-no-user-config", "-display", "none"]


def command(qemu: Qemu, accel: str, features: frozenset[str], iso: Path, serial_log: Path,
            memory_mb: int = MEMORY_MB) -> list[str]:
    """The QEMU command line that boots the lab ISO headless, the serial console to a file, exiting
    when the guest powers off."""
    return [*machine(qemu, accel, features, memory_mb), "-no-reboot", "-serial", f"file:{serial_log}",
            "-cdrom", str(iso), "-boot", "d"]


def cpu_refusal(qemu: Qemu, accel: str, features: frozenset[str]) -> str | None:
    """QEMU's words if it refuses this vCPU on `accel`, found in a fraction of a second: the machine is
    built paused (-S), which realizes the vCPU (and `enforce` checks it), then QMP asks QEMU to quit."""
    argv = [*machine(qemu, accel, features, 64), "-S", "-qmp", "stdio"]
    try:
        proc = subprocess.run(argv, input='{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n', text=True,
                              capture_output=True, errors="replace", timeout=60, check=False,
                              env={**os.environ, **qemu.env})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{qemu.binary}: {exc}") from exc
    if proc.returncode == 0:
        return None
    return refusal(proc.stderr) or f"QEMU exited {proc.returncode}: {proc.stderr.strip()[-300:]}"


def refusal(stderr: str) -> str | None:
    """QEMU's words when it refused the CPU it was asked for (the accelerator cannot give a feature, or
    this QEMU does not know it), else None."""
    lines = [ln.strip().removeprefix(f"{BINARY}: ").removeprefix("warning: ") for ln in stderr.splitlines()
             if ln.strip()]
    said = [ln for ln in lines if re.search(r"doesn't support requested feature|not found|can't apply global|"
                                            r"requested features", ln)]
    return "; ".join(dict.fromkeys(said)) if said else None


def _system(path: str | None, origin: str) -> Qemu | None:
    return Qemu(Path(path), origin) if path and Path(path).is_file() else None


def archive_copy(cache: Path | None = None) -> Qemu | None:
    """The archive copy install_qemu unpacked, if any (no network)."""
    marker = (cache or lab_cache_root()) / "qemu" / MARKER
    try:
        data = json.loads(marker.read_text())
        root = Path(data["root"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    libs = root / "usr" / "lib" / "x86_64-linux-gnu"
    loader = libs / "ld-linux-x86-64.so.2"
    binary = root / "usr" / "bin" / BINARY
    if not (loader.exists() and binary.exists()):
        return None
    return Qemu(binary, "archive", (str(loader), "--library-path", f"{libs}:{root / 'lib' / 'x86_64-linux-gnu'}"),
                (root / "usr" / "share" / "qemu", root / "usr" / "share" / "seabios"),
                {"QEMU_MODULE_DIR": str(libs / "qemu")}, tuple(data.get("packages", ())))


def find_qemu(cache: Path | None = None) -> Qemu | str:
    """The QEMU to use (see the module docstring), or why there is none."""
    env = os.environ.get(ENV_QEMU)
    if env:
        return _system(env, "env") or f"${ENV_QEMU}={env} is not a file"
    system = _system(shutil.which(BINARY), "system")
    try:
        if system is not None and system.knows("shstk"):
            return system
    except LabError:
        system = None
    archived = archive_copy(cache)
    if archived is not None:
        return archived
    if system is not None:
        return system
    return (f"no QEMU: {BINARY} is not on PATH and the lab cache has no copy from Debian {ARCHIVE_SUITE} "
            "(tools/install-lab fetches one)")


def _closure(apt: PrivateApt) -> list[tuple[str, str]]:
    """(package, version) of QEMU from the archive suite and every library it needs from the library
    suite, as apt resolves it against an empty system (the private tree's dpkg status is empty)."""
    wanted = [f"{p}/{ARCHIVE_SUITE}" for p in ARCHIVE_PACKAGES]
    out = apt.run("apt-get", "install", "-s", "-q", "--no-install-recommends",
                  "-o", f"APT::Default-Release={LIBRARY_SUITE}", *wanted)
    found = re.findall(r"^Inst (\S+) \((\S+) ", out, re.MULTILINE)
    # Libraries, the loader (libc6) and QEMU's own packages; not the maintainer-script tools apt adds.
    return [(n, v) for n, v in found if n.startswith("lib") or n.startswith("qemu-") or n == "seabios"]


def install_qemu(cache: Path | None = None, apt: PrivateApt | None = None) -> Qemu:
    """Download and unpack QEMU from the Debian archive into the lab cache (cached by package set)."""
    cache = cache or lab_cache_root()
    apt = apt or private_apt(cache)
    apt.ensure_index()
    packages = _closure(apt)
    if not any(n == "qemu-system-x86" for n, _ in packages):
        raise ArchiveError(f"apt resolved no qemu-system-x86 from {ARCHIVE_SUITE}")
    key = hashlib.sha256(json.dumps(sorted(packages)).encode()).hexdigest()[:16]
    folder = cache / "qemu"
    root = folder / f"root-{key}"
    marker = folder / MARKER
    pinned = [f"{n}={v}" for n, v in packages]
    if not root.exists():
        index: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
        for suite, stanzas in apt.index(suites=(ARCHIVE_SUITE, LIBRARY_SUITE)).items():
            for st in stanzas:
                index.setdefault((st["Package"], st["Version"]), (suite, st))
        tmp = folder / f".root-{key}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        absent = [f"{n} {v}" for n, v in packages if (n, v) not in index]
        if absent:
            raise ArchiveError(f"not in the {ARCHIVE_SUITE}/{LIBRARY_SUITE} index: {', '.join(absent)}")
        wanted = [(index[p][1], index[p][0]) for p in packages]
        for deb, _ in apt.download_many(wanted, folder / "debs"):
            unpack(deb, tmp)
        tmp.rename(root)
        for old in folder.glob("root-*"):
            if old != root:
                shutil.rmtree(old, ignore_errors=True)
    marker.write_text(json.dumps({"root": str(root), "packages": pinned}, indent=1))
    found = archive_copy(cache)
    if found is None:
        raise LabError(f"the unpacked QEMU in {root} has no {BINARY} or loader")
    found.version  # noqa: B018  (runs it once: a broken copy fails here, at install time)
    return found
