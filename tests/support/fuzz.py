"""The input fuzz harness: every input the suite reads, mutated, must end well (fuzz_oracle.py).

    fuzzer = Fuzzer(work_dir, templates, stores={"sqlite": new_sqlite_url, ...}, pg_base=url_or_None)
    tally = fuzzer.run(count=10_000, seed=1)

Case n draws everything from `random.Random(f"{seed}:{n}")`, so `Fuzzer.run(1, seed, first=n)` replays
it alone (with the same `only`). A case is one input of one target, chosen by weight (among `only`
when given):

- bundle files: a copy of a template bundle (hard links) with one file mutated: `manifest.json`, a
  variant's pyperf JSON, its raw records (raw.jsonl) or its perf counts (perf.json); manifests also get
  path escapes (`../`, absolute paths, symlinks out of the bundle). Each copy has its own run id.
- lone files: a plain pyperf suite file, a pytest-benchmark JSON file.
- store URLs: `open_store(url)` and `cetbench list --store URL` (loopback hosts only; SQLite files only
  under the work directory).
- CLI selections: run ids, kernel labels, build ids, hosts, variant patterns and orders given to
  compare/overhead/trend/report/mark-good/list/ingest, against a small store.
- the lab's result stream (fuzz_lab.py): the serial console of a lab boot as the in-guest agent writes
  it, mutated, read as a boot reads it, its jobs' results checked, written as a bundle and ingested.

Every file case is ingested into each store (SQLite, and PostgreSQL when given), through the public
`ingest_paths`. Stores are replaced every `epoch` cases so that counting rows stays cheap.

To fuzz a new input: write a function `(fuzzer, rng, n) -> list[(store name, Outcome)]` that builds
one mutated input from a template and feeds it through the suite's reader of that input (a file
through `fuzzer.ingest_everywhere`), and add it to TARGETS with a weight.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyperf
from sqlalchemy.engine import make_url

from cetbench.results.store import Store, open_store
from tests.support import fuzz_json
from tests.support.fuzz_lab import LabTemplate, lab_case
from tests.support.fuzz_oracle import IngestOracle, Outcome, check_cli, check_url
from tests.support.store import make_bundle, standard_variants, write_pytest_benchmark_json

SECRET = "Fuzz-S3cret-pw"


@dataclass(frozen=True)
class Templates:
    bundle: Path  # a finished run bundle
    pyperf: Path  # a plain pyperf suite file (several benchmarks)
    pytest_benchmark: Path  # a pytest-benchmark JSON file

    @classmethod
    def synthetic(cls, directory: Path) -> Templates:
        """A bundle from the test bundle writer (measured host and guest variants with raw records and
        perf counts, an unsupported and a failed one), and files written by the real pyperf and
        pytest-benchmark."""
        bundle = make_bundle(directory / "bundle", "template", standard_variants(seed=7))
        return cls(bundle, pyperf_suite_of(bundle, directory / "suite.json"),
                   write_pytest_benchmark_json(directory))


def pyperf_suite_of(bundle: Path, out: Path) -> Path:
    """One pyperf suite file holding the benchmarks of every measured variant of `bundle`."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    benches = [pyperf.BenchmarkSuite.load(str(bundle / v["pyperf"])).get_benchmarks()[0]
               for v in manifest["variants"].values() if v["status"] == "measured"]
    pyperf.BenchmarkSuite(benches).dump(str(out), replace=True)
    return out


@dataclass
class Failure:
    case: int
    target: str
    store: str
    mutation: str
    failure: str
    detail: str


@dataclass
class Tally:
    inputs: int = 0
    by_target: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)

    @property
    def uncaught(self) -> int:
        return sum(f.failure.startswith("uncaught") for f in self.failures)


StoreFactory = Callable[[], str]  # a URL of a new, empty store


class Fuzzer:
    def __init__(self, work: Path, templates: Templates, stores: dict[str, StoreFactory],
                 pg_base: str | None = None, epoch: int = 200, summaries: float = 0.1,
                 only: tuple[str, ...] = ()) -> None:
        self.work, self.templates, self.factories, self.epoch = work, templates, stores, epoch
        unknown = set(only) - {t[0] for t in TARGETS}
        if unknown:
            raise ValueError(f"no fuzz target {', '.join(sorted(unknown))}: the targets are "
                             f"{', '.join(t[0] for t in TARGETS)}")
        self.targets = [t for t in TARGETS if not only or t[0] in only]  # a case draws among these by weight
        self.summaries = summaries  # share of inputs whose accepted runs are also summarised
        self.pg_base = pg_base  # a throwaway server the URLs may reach (they may create tables in it)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.closed_port = int(sock.getsockname()[1])  # nothing listens once it is closed
        self.oracles: dict[str, IngestOracle] = {}
        self.manifest = json.loads((templates.bundle / "manifest.json").read_text())
        self.selection_store = str(work / "selection.sqlite")
        self.selection_words = _selection_store(work, self.selection_store)
        self.mutation = ""
        self._lab: LabTemplate | None = None

    def lab_template(self) -> LabTemplate:
        """The lab's serial log and what a clean read of it gives (built on the first lab case)."""
        if self._lab is None:
            self._lab = LabTemplate.build(self.work / "lab-template")
        return self._lab

    # --- running ---------------------------------------------------------------------------------

    def run(self, count: int, seed: int, first: int = 0,
            progress: Callable[[int], None] | None = None) -> Tally:
        tally = Tally()
        names = [t[0] for t in self.targets]
        weights = [t[1] for t in self.targets]
        try:
            for n in range(first, first + count):
                if (n - first) % self.epoch == 0:
                    self._new_stores()
                rng = random.Random(f"{seed}:{n}")
                i = rng.choices(range(len(self.targets)), weights)[0]
                self.mutation = ""
                results = self.targets[i][2](self, rng, n)
                tally.inputs += 1
                tally.by_target[names[i]] += 1
                for store, outcome in results:
                    tally.outcomes[outcome.kind] += 1
                    if outcome.failure:
                        tally.failures.append(Failure(n, names[i], store, self.mutation, outcome.failure,
                                                      outcome.detail))
                if progress:
                    progress(n - first + 1)
        finally:
            self._close_stores()
        return tally

    def _new_stores(self) -> None:
        self._close_stores()
        self.oracles = {name: IngestOracle(open_store(factory())) for name, factory in self.factories.items()}

    def _close_stores(self) -> None:
        for oracle in self.oracles.values():
            oracle.store.close()
        self.oracles = {}

    def ingest_everywhere(self, path: Path, names: tuple[str, ...], rng: random.Random) -> list[tuple[str, Outcome]]:
        """Ingest into every store; on the first, now and then, also summarise what was accepted."""
        summarise = rng.random() < self.summaries
        return [(name, oracle.check(path, names, summarise and i == 0))
                for i, (name, oracle) in enumerate(self.oracles.items())]

    @property
    def stores(self) -> dict[str, Store]:
        return {name: o.store for name, o in self.oracles.items()}


# --- bundle files ------------------------------------------------------------------------------

ESCAPES = ("../outside.json", "/etc/hostname", "variants/../../outside.json", "variants/../manifest.json", "",
           ".", "variants", "variants/", "variants/\x00x", "\ud800", "x" * 5000, "~/x", "file:///etc/hostname",
           "variants//nope.json", "variants/*.json", "\\..\\x", "variants/%2e%2e/x", "C:\\x")


def _copy_bundle(fz: Fuzzer, n: int) -> Path:
    root = fz.work / f"case-{n}"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(fz.templates.bundle, root, copy_function=os.link)  # files are replaced, never edited
    return root


def _replace(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)  # a hard link to the template: write a new file, not through it
    path.write_bytes(data)


def _file_names(manifest: dict) -> tuple[str, ...]:
    rels = [v.get(k) for v in manifest["variants"].values() for k in ("pyperf", "raw", "perf")]
    return ("manifest.json", *sorted({r for r in rels if isinstance(r, str)}))


def _named_files(manifest: bytes) -> tuple[str, ...]:
    """The paths a (mutated) manifest names for its variants' files, as far as it can be read."""
    try:
        doc = json.loads(manifest)
        return tuple(str(v.get(k)) for v in doc["variants"].values() for k in ("pyperf", "raw", "perf")
                     if isinstance(v, dict) and isinstance(v.get(k), str) and v.get(k))
    except Exception:  # unreadable: the error must then name manifest.json itself
        return ()


def _path_escape(fz: Fuzzer, rng: random.Random, root: Path, manifest: dict) -> tuple[bytes, tuple[str, ...]]:
    measured = [n for n, v in manifest["variants"].items() if v["status"] == "measured"]
    name = rng.choice(measured)
    key = rng.choice(("pyperf", "raw", "perf"))
    if rng.random() < 0.3 and manifest["variants"][name].get(key):  # a symlink out of the bundle
        outside = fz.work / "outside.json"
        if not outside.exists():
            shutil.copy(fz.templates.bundle / manifest["variants"][name]["pyperf"], outside)
        target = rng.choice((str(outside), "../outside.json", "/etc/hostname", "/proc/self/environ", "."))
        link = root / manifest["variants"][name][key]
        link.unlink()
        link.symlink_to(target)
        fz.mutation = "path escape (symlink)"
        return json.dumps(manifest).encode(), (manifest["variants"][name][key],)
    escape = rng.choice(ESCAPES)
    manifest["variants"][name][key] = escape
    fz.mutation = "path escape"
    return fuzz_json.dump(manifest), (repr(escape)[1:-1][:40],) if escape else ("variant",)


def bundle_case(which: str) -> Callable[[Fuzzer, random.Random, int], list[tuple[str, Outcome]]]:
    def case(fz: Fuzzer, rng: random.Random, n: int) -> list[tuple[str, Outcome]]:
        root = _copy_bundle(fz, n)
        manifest = json.loads(json.dumps(fz.manifest))
        manifest["run_id"] = f"fuzz-{n}"
        names = _file_names(manifest)
        data = json.dumps(manifest, indent=1).encode()
        if which == "manifest" and rng.random() < 0.12:
            data, extra = _path_escape(fz, rng, root, manifest)
            names += extra
        elif which == "manifest":
            data, fz.mutation = _maybe_mutate(rng, data)
        else:
            measured = [v[which] for v in manifest["variants"].values() if v["status"] == "measured" and v.get(which)]
            rel = rng.choice(measured)
            mutated, fz.mutation = (_mutate_jsonl if which == "raw" else _maybe_mutate)(
                rng, (root / rel).read_bytes())
            _replace(root / rel, mutated)
        _replace(root / "manifest.json", data)
        names += _named_files(data)
        try:
            return fz.ingest_everywhere(root, names, rng)
        finally:
            shutil.rmtree(root)

    return case


def _maybe_mutate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    if rng.random() < 0.03:  # a control: the template itself must ingest
        return data, "none"
    return fuzz_json.mutate(rng, data)


def _mutate_jsonl(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    lines = data.split(b"\n")
    roll = rng.random()
    if roll < 0.03:
        return data, "none"
    if roll < 0.55:  # one record mutated as a JSON document
        i = rng.randrange(len(lines))
        lines[i], what = fuzz_json.mutate(rng, lines[i] or b"{}")
        return b"\n".join(lines), f"record: {what}"
    if roll < 0.75:
        return rng.choice(fuzz_json.BYTE_MUTATIONS)(rng, data, None)
    i = rng.randrange(len(lines))
    op = rng.choice(("drop line", "duplicate line", "not an object", "blank lines", "no trailing newline"))
    if op == "drop line":
        del lines[i]
    elif op == "duplicate line":
        lines.insert(i, lines[i])
    elif op == "not an object":
        lines.insert(i, rng.choice((b"[1, 2]", b"null", b"5", b'"text"', b"true")))
    elif op == "blank lines":
        lines.insert(i, b"   \t ")
    else:
        return data.rstrip(b"\n"), op
    return b"\n".join(lines), op


# --- lone files ----------------------------------------------------------------------------------

def file_case(template: Callable[[Templates], Path]) -> Callable[[Fuzzer, random.Random, int],
                                                                  list[tuple[str, Outcome]]]:
    def case(fz: Fuzzer, rng: random.Random, n: int) -> list[tuple[str, Outcome]]:
        data, fz.mutation = _maybe_mutate(rng, template(fz.templates).read_bytes())
        path = fz.work / f"case-{n}.json"
        path.write_bytes(data)
        try:
            return fz.ingest_everywhere(path, ("JSON",), rng)
        finally:
            path.unlink()

    return case


# --- store URLs ----------------------------------------------------------------------------------

SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+asyncpg",
           "POSTGRESQL", "pg", "sqlite", "sqlite+pysqlite", "sqlite3", "mysql", "http", "file", "")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "", "127.0.0.1:notaport", "127.0.0.1:0", "127.0.0.1:99999",
            "127.0.0.1:-1", "127.0.0.1:")
QUERIES = ("", "?sslmode=disable", "?sslmode=bogus", "?connect_timeout=abc", "?connect_timeout=1",
           "?options=-csearch_path%3Dfuzz_url", "?application_name=%00", "?host=/nonexistent", "?foo=bar",
           "?options=", "?%zz", "?options=-cstatement_timeout%3D1", "?target_session_attrs=bogus",
           f"?password={SECRET}", f"?sslmode=bogus&password={SECRET}", "?timeout=abc")
ODD = ("", "@", ":", "/", "%", "%40", "%zz", "é", "\udcff", "a b", "x" * 300, "'", "?", "#")


def _url(fz: Fuzzer, rng: random.Random, n: int) -> str:
    scheme = rng.choice(SCHEMES)
    if rng.random() < 0.3:  # a plain path or a sqlite URL under the work directory
        name = rng.choice(("store.sqlite", "dir", "garbage.sqlite", "missing/x.sqlite", f"new-{n}.sqlite",
                           "é.sqlite", "\udcff.sqlite", "a b.sqlite", "x" * 300, ""))
        path = fz.work / "urls" / name
        return str(path) if rng.random() < 0.5 else f"sqlite:///{path}"
    user = rng.choice(("cetbench", "lab", "nobody_here", *ODD))
    password = rng.choice((SECRET, SECRET + "@x", SECRET + ":/", f"%{SECRET}"))
    reach = rng.random() < 0.5  # drawn always: a case replays alike with or without a server
    port = str(make_url(fz.pg_base).port) if fz.pg_base and reach else str(fz.closed_port)
    host = rng.choice(LOOPBACK)
    if ":" not in host.replace("[::1]", "") and host:
        host = f"{host}:{port}"
    database = rng.choice(("cetbench", "nosuchdb", "", *ODD))
    auth = rng.choice((f"{user}:{password}@", f"{user}@", "", f":{password}@"))
    url = f"{scheme}://{auth}{host}/{database}{rng.choice(QUERIES)}"
    if rng.random() < 0.3:
        mutated = _mutate_text(rng, url).replace("\x00", "")
        url = mutated if _loopback_only(mutated) else url
    return url


def _loopback_only(url: str) -> bool:
    """Whether every host the URL could make libpq contact is this machine (a mutation may have turned
    `localhost` into a name that would go to DNS)."""
    try:
        parsed = make_url(url)
    except Exception:  # open_store refuses it before connecting
        return True
    hosts = [parsed.host or ""]
    for key in ("host", "hostaddr"):
        value = parsed.query.get(key, ())
        hosts += [value] if isinstance(value, str) else list(value)
    return all(h in ("", "localhost", "::1", "[::1]") or h.startswith(("127.", "/")) for h in hosts)


def url_case(fz: Fuzzer, rng: random.Random, n: int) -> list[tuple[str, Outcome]]:
    (fz.work / "urls" / "dir").mkdir(parents=True, exist_ok=True)
    garbage = fz.work / "urls" / "garbage.sqlite"
    if not garbage.exists():
        garbage.write_bytes(b"not a database\n" * 200)
    url = _url(fz, rng, n)
    fz.mutation = "store URL"
    out = [("api", check_url(url, SECRET, fz.work / "urls"))]
    if rng.random() < 0.3:
        out.append(("cli", check_cli(["list", "--store", url], fz.work / "urls", SECRET)))
    return out


# --- CLI selections ------------------------------------------------------------------------------

def _selection_store(work: Path, url: str) -> list[str]:
    """A small store to select from: two kernel labels, two runs each; returns the words it knows."""
    from cetbench.results.ingest import ingest_paths

    work.mkdir(parents=True, exist_ok=True)
    words = ["version", "time", "host.*", "*[shstk=on]", "*", "testhost", "v6.18,v6.19"]
    paths = []
    for i, label in enumerate(("v6.18", "v6.18", "v6.19", "v6.19")):
        run_id = f"sel-{i}"
        root = work / "selection" / run_id
        if not root.exists():
            make_bundle(root, run_id, standard_variants(seed=i, n=6), kernel_label=label,
                        kernel_build_id=f"build-{label}")
        paths.append(root)
        words += [run_id, label, f"build-{label}"]
    words += [v.name for v in standard_variants(seed=0, n=1)]
    odd = work / "selection" / "sel-\udcff"  # a directory name in bytes that are not UTF-8
    if not odd.exists():
        make_bundle(odd, "sel-odd", standard_variants(seed=9, n=6))
    words.append(odd.name)
    with open_store(url) as store:
        assert ingest_paths(store, paths).ok
    return words


def _mutate_text(rng: random.Random, text: str) -> str:
    op = rng.randrange(9)
    if op == 0 and text:
        return text[: rng.randrange(len(text))]
    if op == 1:
        at = rng.randrange(len(text) + 1)
        return text[:at] + rng.choice(("*", "?", "[", "]", "%", "_", "'", '"', ";", "\\", ",", "\udcff", "é",
                                       "\t", "\n", "=", " ", "--", "-")) + text[at:]
    if op == 2:
        return rng.choice(fuzz_json.ODD_STRINGS).replace("\x00", "")
    if op == 3:
        return text * rng.choice((2, 50))
    if op == 4:
        return text.upper()
    if op == 5:
        return f" {text} "
    if op == 6:
        return "-" + text  # looks like an option
    return text


def selection_case(fz: Fuzzer, rng: random.Random, n: int) -> list[tuple[str, Outcome]]:
    def sel() -> str:
        return _mutate_text(rng, rng.choice(fz.selection_words))

    commands = (
        lambda: ["compare", "--baseline", sel(), "--candidate", sel(), "--format", "text"],
        lambda: ["compare", "--baseline", sel(), "--candidate", sel(), "--host", sel(), "--format", "json"],
        lambda: ["overhead", sel(), "--format", "json"],
        lambda: ["trend", "--only", sel(), "--order", sel(), "--format", "text"],
        lambda: ["report", "--candidate", sel(), "--format", "markdown"],
        lambda: ["report", "--baseline", sel(), "--candidate", sel(), "--format", "junit"],
        lambda: ["mark-good", sel()],
        lambda: ["list", "--host", sel(), "--json"],
        lambda: ["ingest", str(fz.work / "selection" / sel())],
    )
    argv = rng.choice(commands)()
    fz.mutation = f"selection: {argv[0]}"
    return [("cli", check_cli([*argv, "--store", fz.selection_store], fz.work))]


#: (name, weight, case): what one case fuzzes.
TARGETS: list[tuple[str, float, Callable[[Fuzzer, random.Random, int], list[tuple[str, Outcome]]]]] = [
    ("bundle manifest", 0.22, bundle_case("manifest")),
    ("bundle pyperf JSON", 0.15, bundle_case("pyperf")),
    ("raw records", 0.12, bundle_case("raw")),
    ("perf counts", 0.12, bundle_case("perf")),
    ("pyperf file", 0.13, file_case(lambda t: t.pyperf)),
    ("pytest-benchmark JSON", 0.13, file_case(lambda t: t.pytest_benchmark)),
    ("store URL", 0.06, url_case),
    ("CLI selection", 0.07, selection_case),
    ("lab result stream", 0.1, lab_case),
]
