"""The lab's emulated CET CPU: bochs 3.0 built from Debian trixie's source package with our XRSTORS fix.

Why a source build: Debian's bochs 3.0 binary restores CET state wrongly (XRSTORS compacted offsets,
fixed upstream after 3.0; bochs-xrstors-compacted-offsets.patch says what and where), needs trixie's C
library and carries the debugger; bochs 3.1 (sid) dies in early boot and 2.7 (Debian 12) enumerates no
XSS components. The build is headless (`--with-nogui`, no debugger, no plugins) and cached under a
hash of everything that decides its output: the source tarballs' hashes, the patches, the configure
flags and the compiler. The BIOS images come from Debian's bochsbios and vgabios packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cetbench.lab.apt import PrivateApt, private_apt, unpack
from cetbench.lab.debian import DebPackage, newest, source_files
from cetbench.lab.errors import ArchiveError, EmulatorBuildError
from cetbench.lab.paths import lab_cache_root

SOURCE_PACKAGE = "bochs"
SOURCE_VERSION = "3.0+dfsg-1"  # the version our patch is written for; 3.1 dies in early boot
SOURCE_SUITE = "trixie"
BIOS_PACKAGES = ("bochsbios", "vgabios")
CPU_MODEL = "tigerlake"  # bochs's CPU model with SHSTK, IBT, VMX (EPT, VPID) and XSAVES with CET_U/CET_S
PATCH = Path(__file__).resolve().parent / "bochs-xrstors-compacted-offsets.patch"
CONFIGURE_FLAGS = (
    "--enable-x86-64", "--enable-vmx=2", "--enable-cet", "--enable-avx", "--enable-evex",
    "--enable-protection-keys", "--enable-smp", "--with-nogui", "--enable-all-optimizations", "--enable-pci",
    "--enable-cdrom", "--disable-debugger", "--disable-plugins", "--disable-docbook",
    # show-ips logs from a SIGALRM handler and takes the log mutex: a boot that logs often (unknown
    # MSRs) deadlocks there now and then, bochs idle on a futex until the boot timeout.
    "--disable-show-ips",
)


@dataclass(frozen=True)
class Emulator:
    binary: Path  # bin/bochs
    share: Path  # BXSHARE (keymaps and the like)
    rom: Path  # system BIOS (bochsbios' BIOS-bochs-latest)
    vga_rom: Path  # VGA BIOS (vgabios' vgabios.bin)
    version: str  # Debian source version, 3.0+dfsg-1
    patched: bool  # with cetbench's XRSTORS fix
    build: dict[str, object] = field(compare=False, default_factory=dict)  # build.json: hashes, flags, times
    bios_packages: tuple[DebPackage, ...] = ()

    @property
    def description(self) -> str:
        fix = "with cetbench's XRSTORS fix" if self.patched else "without the XRSTORS fix"
        return f"bochs {self.version} {fix}, cpu model {CPU_MODEL}"

    @property
    def build_s(self) -> float | None:
        value = self.build.get("build_s")
        return float(value) if isinstance(value, (int, float)) else None

    def to_json(self) -> dict[str, object]:
        return {"description": self.description, "version": self.version, "patched": self.patched,
                "cpu_model": CPU_MODEL, "build": self.build, "bios_packages": [p.to_json() for p in self.bios_packages]}


def _compiler() -> tuple[str, str]:
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise EmulatorBuildError(f"C++ compiler '{cxx}' not found, needed to build bochs: install g++ "
                                 "(Debian/Ubuntu: apt-get install g++ make) or set CXX")
    if shutil.which("make") is None:
        raise EmulatorBuildError("make not found, needed to build bochs: install make")
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    return cxx, (out.splitlines() or [cxx])[0]


def build_key(tarballs: dict[str, str], patches: list[bytes], flags: tuple[str, ...], compiler: str) -> str:
    """The cache key of a bochs build: what decides its output, nothing else."""
    h = hashlib.sha256()
    h.update(json.dumps({"tarballs": tarballs, "flags": flags, "compiler": compiler}, sort_keys=True).encode())
    for p in patches:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:20]


def _run(cmd: list[str], cwd: Path, log: Path, what: str, env: dict[str, str] | None = None) -> None:
    with log.open("ab") as out:
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise EmulatorBuildError(f"bochs build: {what} failed (exit {proc.returncode}); log {log}: "
                                 + " | ".join(tail))


def _build(src: dict[str, Path], dest: Path, patched: bool, cxx: str, jobs: int, log: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=".bochs-build-", dir=dest.parent) as tmp:
        tree, prefix = Path(tmp) / "src", Path(tmp) / "install"
        tree.mkdir()
        orig = next(p for name, p in src.items() if ".orig." in name)
        debian = next(p for name, p in src.items() if ".debian." in name)
        _run(["tar", "-xf", str(orig), "--strip-components=1", "-C", str(tree)], tree, log, "unpacking")
        _run(["tar", "-xf", str(debian), "-C", str(tree)], tree, log, "unpacking debian/")
        series = (tree / "debian" / "patches" / "series").read_text().splitlines()
        for name in (s.split("#", 1)[0].strip() for s in series):
            if name:
                _run(["patch", "-p1", "-s", "-i", str(tree / "debian" / "patches" / name)], tree, log,
                     f"Debian patch {name}")
        if patched:
            _run(["patch", "-p1", "-i", str(PATCH)], tree, log, f"our patch {PATCH.name}")
        times["unpack_s"] = time.monotonic() - t0
        env = {**os.environ, "CXX": cxx}
        _run(["./configure", f"--prefix={prefix}", *CONFIGURE_FLAGS], tree, log, "configure", env)
        times["configure_s"] = time.monotonic() - t0 - times["unpack_s"]
        _run(["make", f"-j{jobs}"], tree, log, "make", env)
        _run(["make", "install"], tree, log, "make install", env)
        times["build_s"] = time.monotonic() - t0
        try:
            os.rename(prefix, dest)
        except OSError:
            if not (dest / "bin" / "bochs").exists():
                raise
    return times


def _bios(apt: PrivateApt, cache: Path) -> tuple[Path, Path, tuple[DebPackage, ...]]:
    index = apt.index(prefixes=BIOS_PACKAGES, suites=(SOURCE_SUITE,)).get(SOURCE_SUITE, [])
    stanzas = [newest(index, name) for name in BIOS_PACKAGES]
    missing = [n for n, st in zip(BIOS_PACKAGES, stanzas, strict=True) if st is None]
    if missing:
        raise ArchiveError(f"{SOURCE_SUITE} has no {', '.join(missing)} (the BIOS images bochs boots)")
    key = "_".join(f"{st['Package']}-{st['Version']}" for st in stanzas if st)
    dest = cache / "bios" / key
    packages = []
    for st in stanzas:
        assert st is not None
        deb, pkg = apt.download(st, SOURCE_SUITE, cache / "debs")
        packages.append(pkg)
        if not (dest / "done").exists():
            unpack(deb, dest)
    (dest / "done").write_text(json.dumps([p.to_json() for p in packages]))
    rom = dest / "usr/share/bochs/BIOS-bochs-latest"
    vga = dest / "usr/share/vgabios/vgabios.bin"
    if not (rom.exists() and vga.exists()):
        raise ArchiveError(f"{key}: no {rom.name} or {vga.name} in the packages")
    return rom, vga, tuple(packages)


def cached_emulator(cache: Path | None = None, patched: bool = True) -> Emulator | None:
    """The emulator as already built into the cache (no archive, no build), or None."""
    return _cached(cache or lab_cache_root(), patched, _compiler()[1])


def _cached(cache: Path, patched: bool, compiler: str) -> Emulator | None:
    """A build and BIOS already in the cache for this patch and compiler, found without the archive."""
    patch_sha = hashlib.sha256(PATCH.read_bytes()).hexdigest() if patched else None
    builds = []
    for info_path in (cache / "bochs").glob(f"{SOURCE_VERSION}-{'fixed' if patched else 'unpatched'}-*/build.json"):
        info = json.loads(info_path.read_text())
        # the configure flags too: a build made with other flags (e.g. show-ips, which deadlocks) is not this one
        if (info.get("patch_sha256") == patch_sha and info.get("compiler") == compiler
                and info.get("configure") == list(CONFIGURE_FLAGS)):
            builds.append((info_path.stat().st_mtime, info_path.parent, info))
    bios = sorted((cache / "bios").glob("*/done"), key=lambda p: p.stat().st_mtime)
    if not builds or not bios:
        return None
    _, dest, info = max(builds, key=lambda b: b[0])
    root = bios[-1].parent
    packages = tuple(DebPackage(**p) for p in json.loads(bios[-1].read_text()))
    return Emulator(binary=dest / "bin" / "bochs", share=dest / "share" / "bochs",
                    rom=root / "usr/share/bochs/BIOS-bochs-latest", vga_rom=root / "usr/share/vgabios/vgabios.bin",
                    version=SOURCE_VERSION, patched=patched, build=info, bios_packages=packages)


def get_emulator(cache: Path | None = None, apt: PrivateApt | None = None, patched: bool = True,
                 jobs: int | None = None) -> Emulator:
    """bochs 3.0 (with our fix unless `patched` is False, for A/B checks) and its BIOS, built or fetched
    into the lab cache once. Without the archive, a build already in the cache is used."""
    cache = cache or lab_cache_root()
    apt = apt or private_apt(cache)
    cxx, compiler = _compiler()
    try:
        warning = apt.ensure_index()
        sources = apt.index("Sources", (SOURCE_PACKAGE,), (SOURCE_SUITE,)).get(SOURCE_SUITE, [])
    except ArchiveError as exc:
        found = _cached(cache, patched, compiler)
        if found is None:
            raise ArchiveError(f"cannot get the {SOURCE_PACKAGE} {SOURCE_VERSION} source package to build the "
                               f"emulator: {exc}; build it once while online (tools/install-lab)") from exc
        return found
    stanza = newest(sources, SOURCE_PACKAGE, SOURCE_VERSION)
    if stanza is None:
        raise ArchiveError(f"{SOURCE_SUITE} has no source package {SOURCE_PACKAGE} {SOURCE_VERSION}"
                           + (f" ({warning})" if warning else ""))
    tarballs = {f: h for f, h in source_files(stanza).items() if not f.endswith(".dsc")}
    patches = [PATCH.read_bytes()] if patched else []
    key = build_key(tarballs, patches, CONFIGURE_FLAGS, compiler)
    dest = cache / "bochs" / f"{SOURCE_VERSION}-{'fixed' if patched else 'unpatched'}-{key}"
    info_path = dest / "build.json"
    if not info_path.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = {f: apt.download_source_file(stanza, f, h, cache / "src") for f, h in tarballs.items()}
        log = dest.parent / f"{dest.name}.log"
        log.write_text("")
        times = _build(src, dest, patched, cxx, jobs or os.cpu_count() or 1, log)
        info = {"source": f"{SOURCE_PACKAGE} {SOURCE_VERSION} ({SOURCE_SUITE})", "tarballs": tarballs,
                "patch": PATCH.name if patched else None,
                "patch_sha256": hashlib.sha256(patches[0]).hexdigest() if patches else None,
                "configure": list(CONFIGURE_FLAGS), "compiler": compiler, "key": key,
                **{k: round(v, 1) for k, v in times.items()}}
        info_path.write_text(json.dumps(info, indent=1))
        log.unlink(missing_ok=True)
    rom, vga, bios_packages = _bios(apt, cache)
    return Emulator(binary=dest / "bin" / "bochs", share=dest / "share" / "bochs", rom=rom, vga_rom=vga,
                    version=SOURCE_VERSION, patched=patched, build=json.loads(info_path.read_text()),
                    bios_packages=bios_packages)
