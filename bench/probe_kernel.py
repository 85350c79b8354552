"""Kernel identity and the kernel's CET configuration: release, build-id, boot options, config."""

from __future__ import annotations

import gzip
import shlex
import struct

from cetbench import arch
from cetbench.facts import KernelFacts
from cetbench.hostview import HostView

NT_GNU_BUILD_ID = 3  # elf.h: the note type of a GNU build ID
CMDLINE_OPTIONS = ("ibt", "nousershstk", "isolcpus", "nohz_full", "mitigations")


def parse_build_id(notes: bytes) -> str | None:
    """The GNU build ID from an ELF note section (/sys/kernel/notes), or None if absent."""
    offset = 0
    while offset + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, offset)
        offset += 12
        name = notes[offset : offset + namesz].rstrip(b"\0")
        offset += (namesz + 3) & ~3
        desc = notes[offset : offset + descsz]
        offset += (descsz + 3) & ~3
        if ntype == NT_GNU_BUILD_ID and name == b"GNU" and desc:
            return desc.hex()
    return None


def parse_cmdline(text: str) -> dict[str, str | bool | None]:
    """The boot options that matter to CET and to measurement noise. A flag option is True when
    present; a valued option is its value; an absent one is None."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    found: dict[str, str | bool | None] = dict.fromkeys(CMDLINE_OPTIONS)
    for word in words:
        if word == "--":  # what follows is init's arguments, not the kernel's
            break
        key, sep, value = word.partition("=")
        if key in found:
            found[key] = value if sep else True
    return found


def parse_config(text: str, names: tuple[str, ...]) -> dict[str, str]:
    """Each CONFIG_<name> as 'y', 'm' or 'n' ('is not set' and absence both mean n)."""
    values = dict.fromkeys(names, "n")
    for line in text.splitlines():
        for name in names:
            if line.startswith(f"CONFIG_{name}="):
                values[name] = line.split("=", 1)[1].strip().strip('"')
    return values


def cpuinfo_flags(view: HostView) -> tuple[set[str] | None, str | None]:
    text, err = view.read_text("proc/cpuinfo")
    if text is None:
        return None, err
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split()), None
    return None, "/proc/cpuinfo has no flags line"


def _read_config(view: HostView, release: str | None) -> tuple[str | None, str | None, str]:
    """(config text, where it came from, why unknown)."""
    data, err = view.read_bytes("proc/config.gz")
    if data is not None:
        try:
            return gzip.decompress(data).decode("utf-8", "replace"), "/proc/config.gz", ""
        except (OSError, EOFError) as exc:
            err = f"/proc/config.gz: not a readable gzip file ({exc})"
    tried = [err or "/proc/config.gz: absent"]
    if release and ("/" in release or "\0" in release):  # read from a file: never a path out of /boot
        tried.append(f"/boot/config-{release!r}: the release is not a file name")
    elif release:
        text, err2 = view.read_text(f"boot/config-{release}")
        if text is not None:
            return text, f"/boot/config-{release}", ""
        tried.append(err2 or f"/boot/config-{release}: absent")
    return None, None, "; ".join(tried)


def probe_kernel(view: HostView) -> KernelFacts:
    unknown: dict[str, str] = {}

    def text(rel: str, key: str) -> str | None:
        value, err = view.read_text(rel)
        if value is None:
            unknown[key] = err or rel
            return None
        return value.strip()

    release = text("proc/sys/kernel/osrelease", "release")
    version = text("proc/sys/kernel/version", "version")
    notes, err = view.read_bytes("sys/kernel/notes")
    build_id = parse_build_id(notes) if notes is not None else None
    if build_id is None:
        unknown["build_id"] = err or "/sys/kernel/notes holds no GNU build ID note"
    cmdline_text = text("proc/cmdline", "cmdline")
    cmdline = parse_cmdline(cmdline_text) if cmdline_text is not None else dict.fromkeys(CMDLINE_OPTIONS)

    names = (arch.CONFIG_USER_SHSTK, arch.CONFIG_KERNEL_IBT)
    config_text, source, why = _read_config(view, release)
    if config_text is None:
        config: dict[str, str] = dict.fromkeys(names, "unknown")
        unknown["config"] = why
    else:
        config = parse_config(config_text, names)

    flags, flags_err = cpuinfo_flags(view)
    wanted = (arch.CPUINFO_FLAG_USER_SHSTK, arch.CPUINFO_FLAG_IBT, arch.CPUINFO_FLAG_SHSTK)
    if flags is None:
        unknown["cpuinfo_flags"] = flags_err or "unreadable"
    cpuinfo = {f: (f in flags) if flags is not None else None for f in wanted}
    return KernelFacts(release=release, version=version, build_id=build_id, cmdline=cmdline,
                       config={"source": source, **config}, cpuinfo_flags=cpuinfo, unknown=unknown)
