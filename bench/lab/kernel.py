"""The lab's guest kernel: Debian's own build, by suite, package or a path on disk, cached by version.

`get_kernel("sid")` takes the newest linux-image-amd64 of sid that is at least 6.18 and every package
of that build (exact-version `linux-*` dependencies: linux-binary/-modules/-base in the split layout,
one big linux-image in the older one); `get_kernel("linux-image-7.2.13+deb14-amd64")` that package
(newest version in any configured suite, or `NAME=VERSION`); `get_kernel("/some/dir")` a directory of
.deb files or an unpacked kernel, for offline use. A kernel that cannot run the lab is refused with
the config lines that say why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cetbench.lab import apt as apt_mod
from cetbench.lab.apt import PrivateApt, private_apt, sha256_file, unpack
from cetbench.lab.debian import (
    KERNEL_META,
    MIN_KERNEL,
    DebPackage,
    Stanza,
    kernel_package_set,
    new_enough,
    newest,
    newest_kernel_meta,
)
from cetbench.lab.errors import ArchiveError, KernelRefused, LabError
from cetbench.lab.paths import lab_cache_root

#: Kernel options the lab needs (Documentation/arch/x86/shstk.rst; arch/x86/Kconfig; arch/x86/kvm/Kconfig),
#: with the values that satisfy each.
REQUIRED_CONFIG: dict[str, tuple[str, ...]] = {
    "X86_USER_SHADOW_STACK": ("y",),
    "X86_KERNEL_IBT": ("y",),
    "KVM_INTEL": ("y", "m"),
}
#: Parts of the modules tree the lab image uses; the rest of a kernel's modules is not kept in the cache.
KEPT_MODULE_DIRS = ("kernel/arch/x86/kvm", "kernel/virt", "kernel/arch/x86/kernel")  # the last: msr.ko
OFFLINE_HINT = ("to work offline, give the kernel as a path: a directory holding that kernel's .deb files "
                "(linux-image-*, and linux-binary-*/linux-modules-* where Debian splits them) or an unpacked "
                "kernel (a directory with boot/vmlinuz-RELEASE or usr/lib/modules/RELEASE/vmlinuz)")


@dataclass(frozen=True)
class Kernel:
    release: str  # uname -r of the kernel: 7.2.13+deb14-amd64
    vmlinuz: Path
    modules_dir: Path  # .../modules/RELEASE (kernel/arch/x86/kvm/*.ko* below it)
    config: Path
    origin: str  # "suite" | "package" | "path"
    spec: str  # what was asked for: sid, linux-image-..., or the path
    vmlinuz_sha256: str
    root: Path  # the unpacked kernel (a lab cache directory, or the path given)
    packages: tuple[DebPackage, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def source(self) -> str:
        """Where it came from, in words: `sid: linux-image-amd64 7.2.13-1` or `path /x`."""
        if self.origin == "path":
            return f"path {self.spec}"
        meta = next((p for p in self.packages if p.name == KERNEL_META), None)
        head = next((p for p in self.packages if p.name.startswith(("linux-image-", "linux-binary-"))
                     and p.name != KERNEL_META), None)
        shown = meta or head
        what = f"{shown.name} {shown.version}" if shown else "?"
        return f"{self.spec}: {what}"

    def to_json(self) -> dict[str, object]:
        return {"release": self.release, "origin": self.origin, "spec": self.spec, "source": self.source,
                "vmlinuz_sha256": self.vmlinuz_sha256, "packages": [p.to_json() for p in self.packages],
                "warnings": list(self.warnings)}


def spec_kind(spec: str, suites: tuple[str, ...] = apt_mod.DEFAULT_SUITES) -> str:
    """"suite", "package" or "path"; raises LabError for anything else."""
    if spec in suites:
        return "suite"
    if "/" in spec or spec.startswith(".") or os.path.exists(spec):
        return "path"
    if re.fullmatch(r"linux-[a-z0-9.+~-]+(=[A-Za-z0-9.+~:-]+)?", spec):
        return "package"
    raise LabError(f"kernel {spec!r} is neither a suite ({', '.join(suites)}), a package name (linux-image-...) "
                   "nor an existing path")


def config_line(config_text: str, name: str) -> str | None:
    """The line of the config that sets CONFIG_<name> (`=...` or `# ... is not set`), if any."""
    for line in config_text.splitlines():
        if line.startswith(f"CONFIG_{name}=") or line.strip() == f"# CONFIG_{name} is not set":
            return line.strip()
    return None


def check_kernel(release: str, config_text: str, minimum: tuple[int, ...] = MIN_KERNEL) -> None:
    """Refuse (KernelRefused, quoting the config) a kernel that cannot run the lab."""
    problems = []
    if not new_enough(release, minimum):
        header = next((ln.strip() for ln in config_text.splitlines() if ln.startswith("# Linux/")), None)
        said = f' (config: "{header}")' if header else ""
        problems.append(f"Linux {release} is older than {'.'.join(map(str, minimum))}, the first with KVM's "
                        f"CET support{said}")
    for name, accepted in REQUIRED_CONFIG.items():
        line = config_line(config_text, name)
        value = line.split("=", 1)[1].strip('"') if line and "=" in line else "n"
        if value not in accepted:
            want = " or ".join(f"CONFIG_{name}={v}" for v in accepted)
            problems.append(f'needs {want}, config says "{line}"' if line else f"needs {want}, config has no "
                            f"CONFIG_{name} line")
    if problems:
        raise KernelRefused(f"kernel {release} cannot run the CET lab: " + "; ".join(problems))


def locate(root: Path) -> tuple[str, Path, Path, Path]:
    """(release, vmlinuz, modules dir, config) of an unpacked Debian kernel: the classic layout
    (boot/vmlinuz-REL, boot/config-REL, lib/modules/REL) or the split one (usr/lib/modules/REL/{vmlinuz,config})."""
    found = [(p, p.name.removeprefix("vmlinuz-")) for p in sorted((root / "boot").glob("vmlinuz-*"))]
    for base in ("usr/lib/modules", "lib/modules"):
        found += [(p, p.parent.name) for p in sorted((root / base).glob("*/vmlinuz"))]
    releases = sorted({rel for _, rel in found})
    if len(releases) != 1:
        what = (f"kernels {', '.join(releases)}" if releases
                else "no kernel (boot/vmlinuz-* or usr/lib/modules/*/vmlinuz)")
        raise LabError(f"{root}: expected one kernel, found {what}")
    vmlinuz, release = found[0]
    modules = next((root / b / release for b in ("usr/lib/modules", "lib/modules") if (root / b / release).is_dir()),
                   None)
    config = next((c for c in (root / "boot" / f"config-{release}", root / "usr/lib/modules" / release / "config",
                               root / "lib/modules" / release / "config") if c.exists()), None)
    if modules is None or config is None:
        missing = "its modules (lib/modules/REL)" if modules is None else "its config (boot/config-REL)"
        raise LabError(f"{root}: kernel {release} without {missing}: give every package of the kernel")
    return release, vmlinuz, modules, config


def _prune(src: Path, dest: Path) -> None:
    """Move the files the lab uses from an unpacked kernel at `src` into `dest`, same relative paths."""
    _, vmlinuz, modules, config = locate(src)
    keep = [vmlinuz, config, *modules.glob("modules.*"), *vmlinuz.parent.glob("System.map*")]
    for sub in KEPT_MODULE_DIRS:
        keep += [p for p in (modules / sub).rglob("*") if p.is_file()]
    for path in keep:
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)


def _load(root: Path, spec: str, origin: str, packages: tuple[DebPackage, ...],
          warnings: tuple[str, ...] = ()) -> Kernel:
    release, vmlinuz, modules, config = locate(root)
    check_kernel(release, config.read_text(errors="replace"))
    return Kernel(release=release, vmlinuz=vmlinuz, modules_dir=modules, config=config, origin=origin, spec=spec,
                  vmlinuz_sha256=sha256_file(vmlinuz), root=root, packages=packages, warnings=warnings)


def _cached(dest: Path, spec: str, origin: str, warnings: tuple[str, ...], *, any_kept: bool = False) -> Kernel | None:
    """The kernel unpacked at `dest`, or None when absent or pruned to other module dirs than the lab
    now uses (it is unpacked again from its .debs); `any_kept` takes it as it is (a path given by hand)."""
    meta = dest / "kernel.json"
    if not meta.exists():
        return None
    recorded = json.loads(meta.read_text())
    if not any_kept and tuple(recorded.get("kept", ())) != KEPT_MODULE_DIRS:
        return None
    packages = tuple(DebPackage(**p) for p in recorded["packages"])
    return _load(dest / "root", spec, origin, packages, warnings)


def _install(debs: list[tuple[Path, DebPackage]], dest: Path) -> None:
    """Unpack the .debs, keep what the lab uses under dest/root, record the packages (atomically)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}-", dir=dest.parent) as tmp:
        full, staged = Path(tmp) / "full", Path(tmp) / "out"
        for deb, _ in debs:
            unpack(deb, full)
        _prune(full, staged / "root")
        (staged / "kernel.json").write_text(json.dumps(
            {"packages": [p.to_json() for _, p in debs], "kept": list(KEPT_MODULE_DIRS)}, indent=1))
        if (dest / "kernel.json").exists():  # an older pruning: replaced whole, never merged
            os.rename(dest, Path(tmp) / "stale")
        try:
            os.rename(staged, dest)
        except OSError:
            if not (dest / "kernel.json").exists():
                raise


def _cache_key(packages: list[DebPackage]) -> str:
    """`RELEASE_VERSION` of the build (the image or binary package names the release)."""
    for p in packages:
        m = re.fullmatch(r"linux-(?:image|binary)-(\d.*)", p.name)
        if m and p.name != KERNEL_META and not m.group(1).endswith("-unsigned"):
            return f"{m.group(1)}_{p.version}"
    digest = hashlib.sha256("".join(sorted(p.sha256 for p in packages)).encode()).hexdigest()[:16]
    return f"debs-{digest}"


def _resolve(apt: PrivateApt, spec: str, kind: str) -> list[tuple[str, Stanza]]:
    # A suite's kernel is resolved in that suite alone (a build's parts are one upload); a package anywhere.
    index = apt.index(prefixes=("linux-",), suites=(spec,) if kind == "suite" else None)
    if kind == "suite":
        meta = newest_kernel_meta(index.get(spec, []))
        if meta is None:
            any_meta = newest(index.get(spec, []), KERNEL_META)
            newest_there = f" (its newest is {any_meta['Version']})" if any_meta else ""
            raise KernelRefused(f"suite {spec} has no {KERNEL_META} of Linux >= {'.'.join(map(str, MIN_KERNEL))}"
                                f"{newest_there}: the lab needs KVM's CET support")
        return kernel_package_set(index, spec, KERNEL_META, meta["Version"])
    name, _, version = spec.partition("=")
    return kernel_package_set(index, None, name, version or None)


def _from_archive(spec: str, kind: str, cache: Path, apt: PrivateApt) -> Kernel:
    wanted = f"{KERNEL_META} of {spec}" if kind == "suite" else spec
    try:
        warning = apt.ensure_index()
        resolved = _resolve(apt, spec, kind)
    except (ArchiveError, LookupError) as exc:
        raise ArchiveError(f"cannot get {wanted}: {exc}; {OFFLINE_HINT}") from exc
    warnings = (warning,) if warning else ()
    stanzas_pkgs = [DebPackage(st["Package"], st["Version"], st["SHA256"], Path(st["Filename"]).name,
                               int(st.get("Size", 0)), suite) for suite, st in resolved]
    dest = cache / "kernels" / _cache_key(stanzas_pkgs)
    cached = _cached(dest, spec, kind, warnings)
    if cached is not None:
        return cached
    debs = []
    for suite, st in resolved:
        try:
            debs.append(apt.download(st, suite, cache / "debs"))
        except ArchiveError as exc:
            raise ArchiveError(f"{exc}; {OFFLINE_HINT}") from exc
    _install(debs, dest)
    return _load(dest / "root", spec, kind, tuple(p for _, p in debs), warnings)


def _deb_fields(deb: Path) -> tuple[str, str]:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"], capture_output=True, text=True,
                         check=False).stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    if "Package" not in fields:
        raise LabError(f"{deb}: not a readable .deb")
    return fields["Package"], fields["Version"]


def _from_path(path: Path, cache: Path) -> Kernel:
    spec = str(path)
    if not path.exists():
        raise LabError(f"kernel path {path} does not exist")
    debs = [path] if path.is_file() else sorted(path.glob("*.deb"))
    if path.is_file() and path.suffix != ".deb":
        raise LabError(f"kernel path {path}: a file must be a .deb; else give a directory")
    if not debs:
        # One of the lab cache's own kernel directories (or its root/): the packages are recorded there.
        for meta_dir in (path, path.parent):
            if (meta_dir / "kernel.json").exists() and (meta_dir / "root").is_dir():
                cached = _cached(meta_dir, spec, "path", (), any_kept=True)
                assert cached is not None
                return cached
        return _load(path, spec, "path", ())
    packages = []
    for deb in debs:
        name, version = _deb_fields(deb)
        packages.append((deb, DebPackage(name, version, sha256_file(deb), deb.name, deb.stat().st_size, None)))
    builds = sorted({m.group(1) for _, p in packages if (m := re.fullmatch(r"linux-(?:image|binary)-(\d.*)", p.name))})
    if len(builds) > 1:
        raise LabError(f"{path} holds the .debs of several kernels ({', '.join(builds)}): give one kernel's .debs")
    dest = cache / "kernels" / _cache_key([p for _, p in packages])
    cached = _cached(dest, spec, "path", ())
    if cached is not None:
        return cached
    _install(packages, dest)
    return _load(dest / "root", spec, "path", tuple(p for _, p in packages))


def get_kernel(spec: str, cache: Path | None = None, apt: PrivateApt | None = None) -> Kernel:
    """The kernel `spec` names (a suite, a package, or a path), fetched and unpacked into the lab cache
    once per version. Raises KernelRefused for a kernel that cannot run the lab, ArchiveError when a
    package cannot be had (the message names it and says how to work offline), LabError otherwise."""
    cache = cache or lab_cache_root()
    apt = apt or private_apt(cache)
    kind = spec_kind(spec, apt.suites)
    if kind == "path":
        return _from_path(Path(spec).expanduser().resolve(), cache)
    return _from_archive(spec, kind, cache, apt)

