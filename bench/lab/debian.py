"""Debian archive formats, pure: deb822 stanzas, version ordering, and picking a kernel's packages.

No I/O here, so the resolution rules are tested on fake indexes (tests/test_lab_units.py).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Stanza = dict[str, str]

#: The kernel release the lab needs at least: KVM's CET virtualization (SHSTK, IBT) landed in 6.18.
MIN_KERNEL = (6, 18)
KERNEL_META = "linux-image-amd64"  # Debian's metapackage for the newest generic amd64 kernel


@dataclass(frozen=True)
class DebPackage:
    """One binary package as the lab used it: exact version and the hash it was checked against."""

    name: str
    version: str
    sha256: str
    filename: str  # the .deb's file name
    size: int
    suite: str | None = None  # where it was resolved; None for a .deb given on disk

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "filename": self.filename,
                "size": self.size, "suite": self.suite}


def parse_stanzas(text: str, prefixes: tuple[str, ...] | None = None) -> list[Stanza]:
    """deb822 paragraphs (Packages, Sources, `apt-cache show`) as dicts; continuation lines are kept,
    joined with newlines. With `prefixes`, only paragraphs whose first line is `Package: <name>` with a
    name starting with one of them (a suite's Packages index holds ~70000; the lab needs a few)."""
    out: list[Stanza] = []
    for block in re.split(r"\n[ \t]*\n", text):
        if prefixes is not None and not block.lstrip("\n").startswith(tuple(f"Package: {p}" for p in prefixes)):
            continue
        fields: Stanza = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t"):
                if key is not None:
                    fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            out.append(fields)
    return out


def _order(c: str) -> int:
    if c in string.digits:
        return 0
    if c in string.ascii_letters:
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's lib/dpkg/version.c verrevcmp: non-digit runs by _order, then digit runs numerically."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and a[i] not in string.digits) or (j < len(b) and b[j] not in string.digits):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i] in string.digits and j < len(b) and b[j] in string.digits:
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i] in string.digits:
            return 1
        if j < len(b) and b[j] in string.digits:
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_version(v: str) -> tuple[int, str, str]:
    epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    return int(epoch or 0), upstream, revision


def compare_versions(a: str, b: str) -> int:
    """<0, 0, >0 as `dpkg --compare-versions a lt|eq|gt b`."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return ea - eb
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def kernel_numbers(text: str) -> tuple[int, ...]:
    """(7, 2, 13) from a kernel release or package version: 7.2.13+deb14-amd64, 7.2.13-1, 6.19.6-2~bpo13+1."""
    m = re.match(r"\s*(?:\d+:)?(\d+(?:\.\d+)*)", text)
    return tuple(int(x) for x in m.group(1).split(".")) if m else ()


def new_enough(text: str, minimum: tuple[int, ...] = MIN_KERNEL) -> bool:
    nums = kernel_numbers(text)
    return bool(nums) and nums[: len(minimum)] >= minimum


def newest(stanzas: Iterable[Stanza], name: str, version: str | None = None) -> Stanza | None:
    """The newest stanza of package `name` (exactly `version` when given)."""
    best: Stanza | None = None
    for st in stanzas:
        if st.get("Package") != name or (version is not None and st.get("Version") != version):
            continue
        if best is None or compare_versions(st.get("Version", ""), best.get("Version", "")) > 0:
            best = st
    return best


_PIN = re.compile(r"^(linux-[a-z0-9.+~-]+)\s*\(=\s*([^)\s]+)\s*\)$")


def pinned_linux_deps(stanza: Stanza) -> list[tuple[str, str]]:
    """The `linux-*` dependencies pinned to one version (`linux-binary-REL (= 7.2.13-1)`): the parts of
    one kernel build. Alternatives (`initramfs-tools | dracut`) and unpinned ones are host tools."""
    out = []
    for dep in stanza.get("Depends", "").replace("\n", " ").split(","):
        dep = dep.strip()
        if "|" in dep:
            continue
        m = _PIN.match(dep)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def kernel_package_set(index: Mapping[str, list[Stanza]], suite: str | None, root_name: str,
                       root_version: str | None = None) -> list[tuple[str, Stanza]]:
    """The packages of one kernel build, as (suite, stanza): start at `root_name` (the newest of `suite`,
    or of any suite when None; exactly `root_version` when given) and follow exact-version `linux-*`
    dependencies. Raises LookupError naming what is missing."""
    suites = [suite] if suite is not None else list(index)
    start: tuple[str, Stanza] | None = None
    for s in suites:
        st = newest(index.get(s, []), root_name, root_version)
        if st is not None and (start is None or compare_versions(st["Version"], start[1]["Version"]) > 0):
            start = (s, st)
    if start is None:
        where = f"suite {suite}" if suite else f"suites {', '.join(index) or '(none)'}"
        want = f"{root_name}={root_version}" if root_version else root_name
        raise LookupError(f"no package {want} in {where}")
    found: dict[str, tuple[str, Stanza]] = {}
    todo = [start]
    while todo:
        s, st = todo.pop()
        if st["Package"] in found:
            continue
        found[st["Package"]] = (s, st)
        for name, version in pinned_linux_deps(st):
            # A kernel's parts come from one source upload: look in its suite first, then anywhere.
            dep = newest(index.get(s, []), name, version)
            dep_suite = s
            if dep is None:
                for other, stanzas in index.items():
                    dep = newest(stanzas, name, version)
                    if dep is not None:
                        dep_suite = other
                        break
            if dep is None:
                raise LookupError(f"{st['Package']} {st['Version']} needs {name} (= {version}), which no suite has")
            todo.append((dep_suite, dep))
    return sorted(found.values(), key=lambda p: p[1]["Package"])


def newest_kernel_meta(stanzas: Iterable[Stanza], minimum: tuple[int, ...] = MIN_KERNEL) -> Stanza | None:
    """The newest linux-image-amd64 of a suite whose kernel is at least `minimum`."""
    return newest((st for st in stanzas if new_enough(st.get("Version", ""), minimum)), KERNEL_META)


def source_files(stanza: Stanza) -> dict[str, str]:
    """file name -> sha256 from a Sources stanza's Checksums-Sha256 field."""
    out = {}
    for line in stanza.get("Checksums-Sha256", "").splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[2]] = parts[0]
    return out
