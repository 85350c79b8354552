"""Set up the emulated CET lab (tools/install-lab, run by `make test`): host tools, bochs, BIOS, a kernel,
the static programs, and QEMU for the Linux guests when the system has none that knows CET, all into the
lab cache. Idempotent: a second run finds everything cached.

    python -m cetbench.lab.install [--kernel SPEC]... [--no-host-tools]

Records what it set up in <lab cache>/installed.json, which the lab boot test reads so that it never
downloads or builds anything itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cetbench.lab.bochs import Emulator, get_emulator
from cetbench.lab.errors import LabError
from cetbench.lab.image import PROGRAMS, ImagePrograms
from cetbench.lab.kernel import Kernel, get_kernel
from cetbench.lab.paths import lab_cache_root
from cetbench.lab.qemu import find_qemu, install_qemu
from cetbench.native import GUEST_IMAGE
from cetbench.workloads.build import BuildError

DEFAULT_KERNEL = "sid"  # newest Debian kernel; 7.x has kvm_intel's `cet` parameter
#: Debian packages of the host tools, from the system's own suite: the image (busybox-static, xorriso,
#: isolinux, syslinux-common), the bochs build (g++, make, patch, xz-utils), and the C library's static
#: archive for the static workload builds (libc6-dev).
HOST_PACKAGES = ("busybox-static", "xorriso", "isolinux", "syslinux-common", "cpio", "g++", "make", "patch",
                 "xz-utils", "libc6-dev")
MARKER = "installed.json"


def missing_host_packages(packages: tuple[str, ...] = HOST_PACKAGES) -> list[str]:
    if shutil.which("dpkg-query") is None:
        return []  # not Debian-like: the build steps name what they miss
    missing = []
    for pkg in packages:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True,
                             check=False).stdout
        if "install ok installed" not in out:
            missing.append(pkg)
    return missing


def install_host_packages() -> str:
    """Install missing host tools with the system's own apt (its own suite only). Returns what was done."""
    missing = missing_host_packages()
    if not missing:
        return "host tools present"
    if os.geteuid() != 0:
        raise LabError(f"host tools missing: {' '.join(missing)} (not root: apt-get install them)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=False, env=env, stdout=subprocess.DEVNULL)
    proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"apt-get install {' '.join(missing)} failed: {proc.stderr.strip()[-300:]}")
    return f"installed {' '.join(missing)}"


def emulator_to_json(e: Emulator) -> dict[str, Any]:
    return {"binary": str(e.binary), "share": str(e.share), "rom": str(e.rom), "vga_rom": str(e.vga_rom),
            "version": e.version, "patched": e.patched, "build": e.build}


def emulator_from_json(d: dict[str, Any]) -> Emulator:
    return Emulator(binary=Path(d["binary"]), share=Path(d["share"]), rom=Path(d["rom"]), vga_rom=Path(d["vga_rom"]),
                    version=d["version"], patched=d["patched"], build=d.get("build", {}))


def _marker(cache: Path | None) -> dict[str, Any] | str:
    marker = (cache or lab_cache_root()) / MARKER
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return f"the lab is not set up ({marker} missing or unreadable): run tools/install-lab"
    return data if isinstance(data, dict) else f"{marker} is not a JSON object: run tools/install-lab"


def installed_kernel(cache: Path | None = None) -> Kernel | str:
    """The kernel install set up (the lab's, and the Linux guests'), without any network; or why not."""
    data = _marker(cache)
    if isinstance(data, str):
        return data
    try:
        return get_kernel(str(data["kernel_dir"]), cache)
    except (LabError, KeyError) as exc:
        return f"the installed kernel is unusable ({exc}): run tools/install-lab"


def installed(cache: Path | None = None) -> tuple[Kernel, Emulator] | str:
    """What install set up, as (kernel, emulator), read without any network; or why not (a string)."""
    data = _marker(cache)
    if isinstance(data, str):
        return data
    emulator = emulator_from_json(data["emulator"])
    if not emulator.binary.exists():
        return f"{emulator.binary} missing: run tools/install-lab"
    kernel = installed_kernel(cache)
    return kernel if isinstance(kernel, str) else (kernel, emulator)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", action="append", help=f"suite, package or path (default {DEFAULT_KERNEL}); repeatable")
    ap.add_argument("--no-host-tools", action="store_true", help="do not apt-get install missing host tools")
    ap.add_argument("--with-unpatched", action="store_true",
                    help="also build bochs without our XRSTORS fix (the boot test then shows the SSP check catch it)")
    a = ap.parse_args(argv)
    cache = lab_cache_root()
    timings: dict[str, float] = {}
    last = [time.monotonic()]

    def step(name: str) -> None:
        now = time.monotonic()
        timings[name] = round(now - last[0], 1)
        last[0] = now
        print(f"install-lab: {name}: {timings[name]} s", flush=True)

    try:
        if not a.no_host_tools:
            print(f"install-lab: {install_host_packages()}")
            step("host tools")
        emulator = get_emulator(cache)
        step("bochs and BIOS")
        if a.with_unpatched:
            get_emulator(cache, patched=False)
            step("bochs without the fix")
        kernels = [get_kernel(spec, cache) for spec in (a.kernel or [DEFAULT_KERNEL])]
        step("kernel")
        programs = ImagePrograms()
        for name in (*PROGRAMS, GUEST_IMAGE):
            programs.host_build(name)
        step("static programs")
        qemu = find_qemu(cache)
        if isinstance(qemu, str) or not qemu.knows("shstk"):
            qemu = install_qemu(cache)
        step("qemu")
    except (LabError, BuildError) as exc:
        print(f"install-lab: {exc}", file=sys.stderr)
        return 1
    (cache / MARKER).write_text(json.dumps({"kernel_dir": str(kernels[0].root), "kernel": kernels[0].to_json(),
                                            "emulator": emulator_to_json(emulator), "qemu": qemu.to_json(),
                                            "timings_s": timings}, indent=1))
    print(f"install-lab: {emulator.description}; kernel {kernels[0].release} ({kernels[0].source}); "
          f"bochs build took {emulator.build_s} s when it was built; {qemu.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
