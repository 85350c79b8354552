"""The lab's boot medium: an isolinux ISO with Debian's kernel and an initramfs the suite writes itself.

The initramfs comes in two archives the kernel unpacks one after the other: the base (static busybox,
the init script and agent, static builds of the suite's native programs and the guest image, the kvm
modules decompressed, the kernel config) cached by a hash of its contents, and the job file of one run.
The cpio (newc) writer is here, so no cpio binary is needed; the ISO is made with xorriso.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import shutil
import stat
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cetbench.lab.errors import LabError
from cetbench.lab.kernel import Kernel
from cetbench.lab.paths import lab_cache_root
from cetbench.native import GUEST_IMAGE, Programs
from cetbench.workloads.build import WORKLOADS_DIR, BuiltProgram, build

#: Native programs in the image, static, in BIN_DIR; the guest image goes to GUEST_DIR.
PROGRAMS = ("host_syscall", "host_ctxswitch", "host_signal", "linux_vmexit_cpuid", "linux_vmexit_pio", "cetbench-vmm",
            "cetbench-probe", "cetbench-lab-agent", "test_shstk_violation")
BIN_DIR = "bin"
GUEST_DIR = "lib/cetbench"
MODULE_DIR = "lib/modules"  # agent.h LAB_KVM_INTEL_KO
JOB_FILE = "etc/cetbench/jobs"  # workloads/lab/init
INIT_SCRIPT = WORKLOADS_DIR / "lab" / "init"
#: Load order and where each module sits below the kernel's modules directory (without .ko* suffix).
MODULES = (("irqbypass", "kernel/virt/lib/irqbypass"), ("kvm", "kernel/arch/x86/kvm/kvm"),
           ("kvm-intel", "kernel/arch/x86/kvm/kvm-intel"),
           ("msr", "kernel/arch/x86/kernel/msr"))  # /dev/cpu/N/msr: the probe reads the host's IA32_XSS
#: The serial console, no KASLR or timer checks, and the prototype's determinism: bochs seeds RDRAND/RDSEED
#: from the host clock, so hiding them and user address randomisation makes per-op counts repeat exactly.
KERNEL_CMDLINE = ("console=ttyS0,115200 mitigations=off nokaslr tsc=reliable no_timer_check "
                  "clearcpuid=rdrand,rdseed norandmaps")
ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")  # Debian package isolinux
LDLINUX_C32 = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")  # Debian package syslinux-common
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))  # Debian package busybox-static
HOST_TOOLS_HINT = "install busybox-static xorriso isolinux syslinux-common (tools/install-lab does, as root)"
KEEP_ISOS = 8  # ISOs kept in the cache (one per job list); older ones are removed


class Newc:
    """The cpio 'newc' format the kernel unpacks (Documentation/driver-api/early-userspace/buffer-format.rst),
    root-owned, mtime 0, so the same contents give the same bytes."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", nlink: int = 1, rdev: tuple[int, int] = (0, 0)) -> None:
        namez = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(namez), 0)
        self.ino += 1
        self.buf.write(b"070701" + "".join(f"{v:08x}" for v in fields).encode() + namez)
        self.buf.write(b"\0" * (-(110 + len(namez)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self.buf.write(b"\0" * (-self.buf.tell() % 512))
        return self.buf.getvalue()


def is_static_elf(data: bytes) -> bool:
    """An ELF64 executable with no PT_INTERP program header (needs no dynamic loader)."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def _busybox() -> bytes:
    for path in BUSYBOX_CANDIDATES:
        if path.exists():
            data = path.read_bytes()
            if is_static_elf(data):
                return data
    raise LabError(f"no statically linked busybox at {' or '.join(map(str, BUSYBOX_CANDIDATES))}: {HOST_TOOLS_HINT}")


def decompress_module(base: Path) -> tuple[bytes, str]:
    """The module at `base`.ko[.xz|.gz|.zst] as a plain .ko (busybox insmod and finit_module without
    MODULE_INIT_COMPRESSED_FILE want that); the signature is inside and still verifies."""
    for suffix in (".ko", ".ko.xz", ".ko.gz", ".ko.zst"):
        path = base.with_name(base.name + suffix)
        if not path.exists():
            continue
        raw = path.read_bytes()
        if suffix == ".ko.xz":
            return lzma.decompress(raw), path.name
        if suffix == ".ko.gz":
            return gzip.decompress(raw), path.name
        if suffix == ".ko.zst":
            if shutil.which("zstd") is None:
                raise LabError(f"{path.name} is zstd-compressed: install zstd")
            return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout, path.name
        return raw, path.name
    raise LabError(f"kernel has no module {base.name} under {base.parent}")


class ImagePrograms(Programs):
    """The suite's programs as the lab image holds them: `variant_command(variant, ImagePrograms(), ...)`
    writes a variant's command with paths inside the guest."""

    def __init__(self) -> None:
        super().__init__()
        self._static: dict[str, BuiltProgram] = {}

    def host_build(self, name: str) -> BuiltProgram:
        if name not in self._static:
            self._static[name] = build(name, static=True)
        return self._static[name]

    def get(self, name: str) -> BuiltProgram:
        built = self.host_build(name)
        if name == GUEST_IMAGE:
            return BuiltProgram(name, Path("/", GUEST_DIR, built.path.name), Path("/", GUEST_DIR, built.elf.name),
                                built.sha256)
        if name not in PROGRAMS:
            raise LabError(f"program {name} is not in the lab image (bench/lab/image.py PROGRAMS)")
        path = Path("/", BIN_DIR, name)
        return BuiltProgram(name, path, path, built.sha256)

    def hashes(self) -> dict[str, str]:
        return {n: b.sha256 for n, b in self._static.items()}


def image_path(name: str) -> str:
    """Where program `name` is inside the image (for argv of a LabJob)."""
    return str(ImagePrograms().get(name).path)


def base_files(kernel: Kernel, programs: ImagePrograms) -> dict[str, tuple[bytes, int]]:
    """In-image path -> (contents, mode) of everything but the job file."""
    files: dict[str, tuple[bytes, int]] = {
        "init": (INIT_SCRIPT.read_bytes(), 0o755),
        f"{BIN_DIR}/busybox": (_busybox(), 0o755),
        f"boot/config-{kernel.release}": (kernel.config.read_bytes(), 0o644),
    }
    for name in PROGRAMS:
        files[f"{BIN_DIR}/{name}"] = (programs.host_build(name).path.read_bytes(), 0o755)
    guest = programs.host_build(GUEST_IMAGE)
    for path in (guest.path, guest.elf):
        files[f"{GUEST_DIR}/{path.name}"] = (path.read_bytes(), 0o644)
    for name, rel in MODULES:
        data, _ = decompress_module(kernel.modules_dir / rel)
        files[f"{MODULE_DIR}/{name}.ko"] = (data, 0o644)
    return files


def cpio_of(files: dict[str, tuple[bytes, int]], with_skeleton: bool) -> bytes:
    archive = Newc()
    dirs = {str(Path(p).parent) for p in files} - {"."}
    if with_skeleton:
        dirs |= {"dev", "proc", "sys", "tmp", "run", "etc"}
    every = {str(parent) for d in dirs for parent in [Path(d), *Path(d).parents]} - {"."}
    for d in sorted(every):
        archive.dir(d)
    if with_skeleton:
        archive.symlink(f"{BIN_DIR}/sh", "busybox")
        archive.chardev("dev/console", 5, 1)  # init's stdio before devtmpfs is mounted
    for path in sorted(files):
        data, mode = files[path]
        archive.file(path, data, mode)
    return archive.finish()


def contents_hash(files: dict[str, tuple[bytes, int]]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(f"{path}\0{files[path][1]:o}\0{hashlib.sha256(files[path][0]).hexdigest()}\n".encode())
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class LabImage:
    iso: Path
    key: str  # hash of everything on the ISO
    kernel_release: str
    cmdline: str
    contents: dict[str, str]  # in-image path -> sha256 (the job file included)


def _iso(kernel: Kernel, initrds: list[Path], cmdline: str, iso: Path) -> None:
    for tool in (ISOLINUX_BIN, LDLINUX_C32):
        if not tool.exists():
            raise LabError(f"{tool} missing: {HOST_TOOLS_HINT}")
    if shutil.which("xorriso") is None:
        raise LabError(f"xorriso missing: {HOST_TOOLS_HINT}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "isolinux").mkdir()
        shutil.copy(ISOLINUX_BIN, root / "isolinux" / "isolinux.bin")
        shutil.copy(LDLINUX_C32, root / "isolinux" / "ldlinux.c32")
        shutil.copy(kernel.vmlinuz, root / "vmlinuz")
        for initrd in initrds:
            shutil.copy(initrd, root / initrd.name)
        # isolinux loads several initrds one after the other; the kernel unpacks each in turn.
        names = ",".join(f"/{p.name}" for p in initrds)
        (root / "isolinux" / "isolinux.cfg").write_text(
            f"default lab\nprompt 0\ntimeout 0\nlabel lab\n  kernel /vmlinuz\n  append initrd={names} {cmdline}\n")
        tmp_iso = iso.with_name(iso.name + ".tmp")
        cmd = ["xorriso", "-as", "mkisofs", "-quiet", "-o", str(tmp_iso), "-b", "isolinux/isolinux.bin",
               "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
               "-R", "-J", "-V", "CETBENCH_LAB", str(root)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LabError(f"xorriso failed: {proc.stderr.strip()[-300:]}")
        tmp_iso.rename(iso)


def _prune(images: Path, pattern: str, keep: Path, count: int) -> None:
    """Remove all but the `count` newest entries matching `pattern` (`keep` always stays)."""
    found = sorted((p for p in images.glob(pattern) if p != keep), key=lambda p: p.stat().st_mtime)
    for old in found[: max(0, len(found) - (count - 1))]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def build_image(kernel: Kernel, job_file: str, cache: Path | None = None, cmdline: str = KERNEL_CMDLINE,
                programs: ImagePrograms | None = None) -> LabImage:
    """The ISO that boots `kernel` and runs `job_file` (bench/lab/jobs.py encode_jobs), from the cache
    when these exact contents were built before."""
    images = (cache or lab_cache_root()) / "images"
    images.mkdir(parents=True, exist_ok=True)
    programs = programs or ImagePrograms()
    base = base_files(kernel, programs)
    base_key = contents_hash(base)
    base_path = images / f"base-{base_key}.cpio.gz"
    if not base_path.exists():
        tmp = base_path.with_name(base_path.name + ".tmp")
        tmp.write_bytes(gzip.compress(cpio_of(base, with_skeleton=True), compresslevel=6, mtime=0))
        tmp.rename(base_path)
    jobs = {JOB_FILE: (job_file.encode(), 0o644)}
    contents = {p: hashlib.sha256(d).hexdigest() for p, (d, _) in {**base, **jobs}.items()}
    loader = hashlib.sha256(ISOLINUX_BIN.read_bytes()).hexdigest() if ISOLINUX_BIN.exists() else None
    key = hashlib.sha256(json.dumps([contents, kernel.vmlinuz_sha256, cmdline, loader], sort_keys=True).encode()
                         ).hexdigest()[:20]
    out = images / f"iso-{key}"
    iso = out / "lab.iso"
    if not iso.exists():
        out.mkdir(exist_ok=True)
        jobs_path = out / "jobs.cpio"
        jobs_path.write_bytes(cpio_of(jobs, with_skeleton=False))
        _iso(kernel, [base_path, jobs_path], cmdline, iso)
        (out / "image.json").write_text(json.dumps({"kernel": kernel.release, "cmdline": cmdline,
                                                    "contents": contents}, indent=1))
    out.touch()
    base_path.touch()
    _prune(images, "iso-*", out, KEEP_ISOS)
    _prune(images, "base-*.cpio.gz", base_path, KEEP_ISOS)
    return LabImage(iso=iso, key=key, kernel_release=kernel.release, cmdline=cmdline, contents=contents)
