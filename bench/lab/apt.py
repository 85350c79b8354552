"""apt with a private configuration: the lab's only way to the Debian archive.

Its own sources list, lists, cache and state directories live under the lab cache; the system's apt
sources and dpkg database are never read for packages nor changed, and nothing is installed: packages
are downloaded (`apt-get download`, checked against the signed index) and unpacked with `dpkg-deb -x`.
The mirror is the one the system's own sources name, so a site's mirror or proxy keeps working.
"""

from __future__ import annotations

import getpass
import hashlib
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from cetbench.lab.debian import DebPackage, Stanza, parse_stanzas
from cetbench.lab.errors import ArchiveError

DEFAULT_SUITES = ("trixie", "trixie-backports", "sid")
SOURCE_SUITES = ("trixie",)  # bochs 3.0's source package (bench/lab/bochs.py)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SYSTEM_SOURCES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d")
APT_HELPER = "/usr/lib/apt/apt-helper"
#: An index younger than this is used as is: `apt-get update` costs seconds and the archive moves slowly.
INDEX_MAX_AGE_S = 6 * 3600.0


def detect_mirror(texts: Iterable[str]) -> str | None:
    """The first Debian mirror (a URI ending in /debian, not -security) in sources.list texts, one-line
    or deb822 format."""
    for text in texts:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "URIs:":
                uris = words[1:]
            elif words[0] in ("deb", "deb-src"):
                uris = [w for w in words[1:] if "://" in w][:1]
            else:
                continue
            for uri in uris:
                if uri.rstrip("/").endswith("/debian") and "security" not in uri:
                    return uri.rstrip("/")
    return None


def system_mirror() -> str:
    texts = []
    for entry in SYSTEM_SOURCES:
        path = Path(entry)
        files = sorted(path.glob("*.list")) + sorted(path.glob("*.sources")) if path.is_dir() else [path]
        for f in files:
            try:
                texts.append(f.read_text(errors="replace"))
            except OSError:
                continue
    return detect_mirror(texts) or DEFAULT_MIRROR


def sources_list(mirror: str, suites: Iterable[str], source_suites: Iterable[str], keyring: str) -> str:
    lines = ["# cetbench lab: private apt sources (bench/lab/apt.py); the system's apt is not used"]
    for suite in suites:
        lines.append(f"deb [signed-by={keyring}] {mirror} {suite} main")
        if suite in source_suites:
            lines.append(f"deb-src [signed-by={keyring}] {mirror} {suite} main")
    return "\n".join(lines) + "\n"


def apt_options(root: Path, user: str) -> list[str]:
    """Every directory apt would otherwise take from the system, redirected under `root`."""
    pairs = {
        "Dir::Etc::SourceList": root / "etc" / "sources.list",
        "Dir::Etc::SourceParts": "/dev/null",
        "Dir::Etc::Preferences": root / "etc" / "preferences",
        "Dir::Etc::PreferencesParts": "/dev/null",
        "Dir::State": root / "state",
        "Dir::State::status": root / "state" / "dpkg-status",
        "Dir::Cache": root / "cache",
        "Debug::NoLocking": "1",
        "APT::Architecture": "amd64",
        "APT::Architectures::": "amd64",
        "Acquire::Languages": "none",
        # apt drops to the _apt user to download; the private tree belongs to whoever runs the lab.
        "APT::Sandbox::User": user,
    }
    out = []
    for key, value in pairs.items():
        out += ["-o", f"{key}={value}"]
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("E:", "Err:", "W:"))]
    return (errors or lines or ["no output"])[0][:300]


class PrivateApt:
    def __init__(self, root: Path, suites: tuple[str, ...] = DEFAULT_SUITES,
                 source_suites: tuple[str, ...] = SOURCE_SUITES, mirror: str | None = None,
                 keyring: str = DEFAULT_KEYRING) -> None:
        self.root = root
        self.suites = suites
        self.source_suites = source_suites
        self.mirror = (mirror or system_mirror()).rstrip("/")
        self.keyring = keyring
        self._index: dict[str, dict[str, list[Stanza]]] = {}
        self._targets: str | None = None  # `apt-get indextargets` builds apt's whole cache: seconds

    def configure(self) -> None:
        for d in ("etc", "state/lists/partial", "cache/archives/partial"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        status = self.root / "state" / "dpkg-status"
        if not status.exists():
            status.write_text("")  # nothing is ever installed through this tree
        (self.root / "etc" / "preferences").write_text("")
        wanted = sources_list(self.mirror, self.suites, self.source_suites, self.keyring)
        path = self.root / "etc" / "sources.list"
        if not path.exists() or path.read_text() != wanted:
            path.write_text(wanted)

    def command(self, tool: str, *args: str) -> list[str]:
        return [tool, *apt_options(self.root, getpass.getuser()), *args]

    def run(self, tool: str, *args: str, cwd: Path | None = None, timeout: float = 900.0) -> str:
        self.configure()
        try:
            proc = subprocess.run(self.command(tool, *args), cwd=cwd, capture_output=True, text=True,
                                  errors="replace", timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ArchiveError(f"{tool} {' '.join(args)}: {exc}") from exc
        if proc.returncode != 0:
            raise ArchiveError(f"{tool} {' '.join(args)}: {_first_error(proc.stderr or proc.stdout)}")
        return proc.stdout

    def _lists_age(self) -> float | None:
        lists = list((self.root / "state" / "lists").glob("*Packages*"))
        return time.time() - min(p.stat().st_mtime for p in lists) if lists else None

    def update(self) -> None:
        # apt-get update exits 0 even when a source failed; its "Err:"/"W:" lines say so.
        out = self.run("apt-get", "update", "-q")
        self._index.clear()
        self._targets = None
        bad = [ln for ln in out.splitlines() if ln.startswith("Err:")]
        if bad:
            raise ArchiveError(f"apt-get update: {bad[0][:300]}")

    def ensure_index(self, max_age_s: float = INDEX_MAX_AGE_S) -> str | None:
        """Fresh enough package lists: updated when missing or older than `max_age_s`. When the archive
        cannot be reached but older lists exist, those are used and the returned warning says so."""
        self.configure()
        age = self._lists_age()
        if age is not None and age < max_age_s:
            return None
        try:
            self.update()
        except ArchiveError as exc:
            if age is None:
                raise ArchiveError(f"the Debian archive at {self.mirror} cannot be reached ({exc})") from exc
            return f"using package lists {age / 3600:.1f} h old: {exc}"
        return None

    def index(self, identifier: str = "Packages", prefixes: tuple[str, ...] | None = None,
              suites: tuple[str, ...] | None = None) -> dict[str, list[Stanza]]:
        """suite -> stanzas of its main/amd64 Packages (or Sources) index, from the private lists; with
        `prefixes`, only packages whose names start so, with `suites` only those suites (each list is
        tens of MB). The host's apt.conf may keep lists compressed (lz4 here): apt says where they are
        and apt-helper decompresses them."""
        key = f"{identifier}:{','.join(prefixes or ())}:{','.join(suites or ())}"
        if key in self._index:
            return self._index[key]
        if self._targets is None:
            self._targets = self.run("apt-get", "indextargets", "--format", "$(FILENAME)\t$(RELEASE)\t$(IDENTIFIER)")
        out: dict[str, list[Stanza]] = {}
        for line in self._targets.splitlines():
            parts = line.split("\t")
            if len(parts) != 3 or parts[2] != identifier or not Path(parts[0]).exists():
                continue
            if suites is not None and parts[1] not in suites:
                continue
            text = subprocess.run([APT_HELPER, "cat-file", parts[0]], capture_output=True, text=True,
                                  errors="replace", check=True).stdout
            out.setdefault(parts[1], []).extend(parse_stanzas(text, prefixes))
        self._index[key] = out
        return out

    def download(self, stanza: Stanza, suite: str | None, dest: Path) -> tuple[Path, DebPackage]:
        """The .deb of `stanza` in `dest` (kept there as a download cache), its sha256 checked against
        the index."""
        name, version, want = stanza["Package"], stanza["Version"], stanza["SHA256"]
        target = dest / Path(stanza["Filename"]).name
        dest.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and sha256_file(target) == want):
            try:
                self.run("apt-get", "download", "-q", f"{name}={version}", cwd=dest)
            except ArchiveError as exc:
                raise ArchiveError(f"could not download {name} {version} from {self.mirror}: {exc}") from exc
        # apt-get download names the file name_version_arch.deb with the epoch kept (colon escaped as
        # %3a); the index's Filename has no epoch: the download takes the index's name.
        escaped = dest / f"{name}_{version.replace(':', '%3a')}_{stanza.get('Architecture', 'amd64')}.deb"
        if not target.exists() and escaped.exists():
            escaped.rename(target)
        if not target.exists():
            raise ArchiveError(f"apt-get download {name}={version} left no {target.name}")
        got = sha256_file(target)
        if got != want:
            target.unlink()
            raise ArchiveError(f"{target.name}: sha256 {got} is not the index's {want}")
        return target, DebPackage(name, version, got, target.name, target.stat().st_size, suite)

    def download_many(self, wanted: Sequence[tuple[Stanza, str | None]], dest: Path) -> list[tuple[Path, DebPackage]]:
        """download() of each (stanza, suite), fetching every missing one with a single apt-get call (one
        call per package costs seconds each)."""
        dest.mkdir(parents=True, exist_ok=True)
        missing = [f"{st['Package']}={st['Version']}" for st, _ in wanted
                   if not ((dest / Path(st["Filename"]).name).exists()
                           and sha256_file(dest / Path(st["Filename"]).name) == st["SHA256"])]
        if missing:
            self.run("apt-get", "download", "-q", *missing, cwd=dest)
        return [self.download(st, suite, dest) for st, suite in wanted]

    def download_source_file(self, stanza: Stanza, filename: str, sha256: str, dest: Path) -> Path:
        """One file of a source package, checked against the signed Sources index (apt-get source would
        refuse the whole package when its .dsc is missing from the mirror, as bochs 3.0+dfsg-1's is)."""
        target = dest / filename
        dest.mkdir(parents=True, exist_ok=True)
        if target.exists() and sha256_file(target) == sha256:
            return target
        uri = f"{self.mirror}/{stanza['Directory']}/{filename}"
        proc = subprocess.run(self.command(APT_HELPER, "download-file", uri, str(target), f"SHA256:{sha256}"),
                              capture_output=True, text=True, errors="replace", check=False)
        if proc.returncode != 0 or not target.exists() or sha256_file(target) != sha256:
            target.unlink(missing_ok=True)
            raise ArchiveError(f"could not download {filename} from {uri}: "
                               f"{_first_error(proc.stderr or proc.stdout)}")
        return target


_SHARED: dict[Path, PrivateApt] = {}


def private_apt(cache: Path) -> PrivateApt:
    """The lab cache's private apt, one instance per process (its index is read once)."""
    root = cache / "apt"
    if root not in _SHARED:
        _SHARED[root] = PrivateApt(root)
    return _SHARED[root]


def unpack(deb: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ArchiveError(f"dpkg-deb -x {deb.name}: {_first_error(proc.stderr)}")
