"""Test support for the results store: a bundle factory and store fixtures on SQLite and PostgreSQL.

Bundles follow docs/bundle-format.md; their pyperf files are written with pyperf's own API.

The PostgreSQL store comes from $CETBENCH_PG_URL, else from a throwaway server this module
starts (tests.support.pgserver) once per test process and stops at exit. Each test gets a database of
its own schema. Without a server the PostgreSQL cases skip, saying why; under CI (CI=true) or with
CETBENCH_REQUIRE_PG=1 they fail instead, so a CI run cannot pass while silently skipping them.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import random
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyperf
import pytest
from sqlalchemy.engine import make_url

from cetbench.results.bundle import slug
from cetbench.results.store import Store, open_store
from tests.support.pgserver import ENV_URL, PgServer, PgServerError

REPO = Path(__file__).resolve().parents[2]
START = dt.datetime(2026, 11, 25, 4, 34, tzinfo=dt.UTC)


@dataclass
class VariantSpec:
    name: str
    status: str = "measured"
    values: list[float] = field(default_factory=list)
    reason: str | None = None
    refused_by: str | None = None
    raw: list[dict[str, Any]] | None = None  # records for <slug>.raw.jsonl
    perf: dict[str, Any] | None = None  # the <slug>.perf.json document

    @property
    def workload(self) -> str:
        return self.name.split("[", 1)[0]

    @property
    def cet(self) -> str:
        return self.name.split("[", 1)[1].rstrip("]")

    @property
    def kind(self) -> str:
        return self.workload.split(".", 1)[0]

    @property
    def sample_cycles(self) -> list[float]:
        """Cycles per op of each sample: from the raw record each value was computed from."""
        key = "guest_cycles" if self.kind == "guest" else "tsc_ticks"
        by_value = {r["elapsed_ns"] / 1e9 / r["iterations"]: r[key] / r["iterations"] for r in self.raw or []}
        return [by_value[v] for v in self.values]


def measured(name: str, rng: random.Random, n: int = 12, base: float = 1e-7) -> VariantSpec:
    """A measured variant with `n` samples near `base` seconds per op, raw records and perf.

    As the runner does, each value is one native record's elapsed_ns / 1e9 / iterations, and
    the raw file also holds calibration records of a few iterations (with a large per-op cost).
    """
    guest = name.startswith("guest")

    def record(iterations: int, per_op: float) -> dict[str, Any]:
        elapsed = int(per_op * 1e9 * iterations)
        rec = {"iterations": iterations, "elapsed_ns": elapsed, "tsc_ticks": elapsed * 3 + rng.randrange(999),
               "cpu": 0}
        if guest:
            rec.update(guest_cycles=elapsed * 2 + rng.randrange(999), exits=iterations)
        return rec

    raw = [record(1 << k, base * 20) for k in range(6)]  # calibration
    values = []
    for _ in range(n):
        rec = record(100_000, base * (1 + rng.random() * 0.05))
        raw.append(rec)
        values.append(rec["elapsed_ns"] / 1e9 / rec["iterations"])
    event = "kvm:kvm_exit" if guest else "syscalls:sys_enter_getppid"
    perf = {  # as bench/perf_pass.py writes it (docs/bundle-format.md, "perf")
        "schema": 1, "available": True, "reason": None, "command": ["perf", "stat"], "returncode": 0,
        "ops_requested": 1_000_000, "ops": 1_000_000, "raw": "",
        "events": {
            event: {"count": 1_000_003, "per_op": 1.000003, "state": "counted", "note": None, "unit": None,
                    "running_pct": 100.0},
            "task-clock": {"count": 68.2, "per_op": 6.82e-05, "state": "counted", "note": None, "unit": "msec",
                           "running_pct": 100.0},
            "cycles": {"count": None, "per_op": None, "state": "not supported", "unit": None, "running_pct": None,
                       "note": "perf: <not supported>"},
            "x86_fpu:x86_fpu_regs_activated": {"count": 2_000_006, "per_op": 2.000006, "state": "counted",
                                               "note": None, "unit": None, "running_pct": 100.0,
                                               "from": "x86_fpu:*"},
        },
        "workload": {"iterations": 1_000_000, "elapsed_ns": 1},
    }
    return VariantSpec(name, values=values, raw=raw, perf=perf)


def standard_variants(seed: int, n: int = 12) -> list[VariantSpec]:
    rng = random.Random(seed)
    return [
        measured("host.syscall[shstk=off]", rng, n),
        measured("host.syscall[shstk=on]", rng, n, base=1.2e-7),
        measured("guest.vmexit.cpuid[cet=ibt+shstk]", rng, n, base=1.5e-6),
        VariantSpec("guest.vmexit.cpuid[cet=ibt]", "unsupported", reason="KVM does not offer IBT to guests",
                    refused_by="kvm"),
        VariantSpec("host.ctxsw[shstk=on]", "failed", reason="workload exited with status 139"),
    ]


def _write_pyperf(path: Path, name: str, values: list[float], host: str, started: dt.datetime) -> None:
    runs = []
    for i in range(0, len(values), 4):  # 4 values per worker process, like pyperf's defaults
        md = {"name": name, "unit": "second", "loops": 1000, "hostname": host,
              "date": (started + dt.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")}
        runs.append(pyperf.Run(values[i:i + 4], warmups=[(1000, values[i])], metadata=md, collect_metadata=False))
    pyperf.BenchmarkSuite([pyperf.Benchmark(runs)]).dump(str(path), replace=True)


def make_bundle(
    root: Path,
    run_id: str,
    variants: list[VariantSpec],
    started: dt.datetime = START,
    host: str = "testhost",
    kernel_label: str | None = "v6.18",
    kernel_build_id: str | None = "abc123",
    finished: bool = True,
    schema: int = 1,
) -> Path:
    """Write a run bundle directory as the runner does; returns `root`."""
    (root / "variants").mkdir(parents=True, exist_ok=True)
    entries: dict[str, Any] = {}
    for v in variants:
        entry: dict[str, Any] = {
            "workload": v.workload, "kind": v.kind, "cet": v.cet,
            "cet_on": not (v.cet.endswith("=off") or v.cet.endswith("=none")),
            "status": v.status, "reason": v.reason, "refused_by": v.refused_by, "unit": "second",
            "op": "getppid syscall" if v.kind == "host" else "CPUID exit", "emulated": False,
            "pyperf": None, "raw": None, "perf": None,
        }
        if v.status == "measured":
            s = slug(v.name)
            entry["pyperf"] = f"variants/{s}.pyperf.json"
            _write_pyperf(root / entry["pyperf"], v.name, v.values, host, started)
            if v.raw is not None:
                entry["raw"] = f"variants/{s}.raw.jsonl"
                (root / entry["raw"]).write_text("".join(json.dumps(r) + "\n" for r in v.raw))
            if v.perf is not None:
                entry["perf"] = f"variants/{s}.perf.json"
                (root / entry["perf"]).write_text(json.dumps(v.perf))
        entries[v.name] = entry
    manifest = {
        "schema": schema, "kind": "cetbench-run", "run_id": run_id,
        "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_utc": (started + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ") if finished else None,
        "host": {"hostname": host, "cpu_vendor": "GenuineIntel", "cpu_model_name": "Test CPU @ 3.00GHz",
                 "cpu_family": 6, "cpu_model": 143, "cpu_stepping": 8, "microcode": "0x2b000000",
                 "fingerprint": f"fp-{host}"},
        "kernel": {"release": "6.18.0-test", "version": "#1 SMP PREEMPT_DYNAMIC", "build_id": kernel_build_id,
                   "label": kernel_label},
        "suite": {"version": "0.1.0", "git_commit": "0123abcd"},
        "kvm": {"implementation": "kvm_intel", "hardware": True},
        "options": {"quick": True, "cpu": 0, "inject_cycles": 0, "perf": "auto", "only": None},
        "binaries": {},
        "probe": {},
        "variants": entries,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def make_bundles(parent: Path, count: int, samples: int = 8, prefix: str = "run",
                 labels: tuple[str, ...] = ("v6.18",)) -> list[Path]:
    """`count` small distinct bundles (2 measured variants + 1 unsupported each), their kernel labels
    taken in turn from `labels`."""
    out = []
    for i in range(count):
        rng = random.Random(i)
        variants = [
            measured("host.syscall[shstk=off]", rng, samples),
            measured("host.syscall[shstk=on]", rng, samples),
            VariantSpec("guest.vmexit.cpuid[cet=ibt]", "unsupported", reason="no IBT", refused_by="cpu"),
        ]
        run_id = f"{prefix}-{i:04d}"
        out.append(make_bundle(parent / run_id, run_id, variants, started=START + dt.timedelta(minutes=i),
                               kernel_label=labels[i % len(labels)]))
    return out


PYTEST_BENCH_MODULE = textwrap.dedent('''
    import time

    OPS = 1000

    def batch():
        time.sleep(0.001)

    def test_syscall_on(benchmark):
        benchmark.extra_info.update(variant="host.syscall[shstk=on]", ops_per_iteration=OPS,
                                    op="getppid syscall", kernel_label="v6.18")
        benchmark.pedantic(batch, rounds=5, iterations=1)

    def test_plain(benchmark):
        benchmark.pedantic(batch, rounds=3, iterations=2)
''')


def write_pytest_benchmark_json(directory: Path) -> Path:
    """A pytest-benchmark JSON file written by the real tool (pytest --benchmark-json) in `directory`."""
    (directory / "test_frontdoor_example.py").write_text(PYTEST_BENCH_MODULE)
    (directory / "pytest.ini").write_text("[pytest]\n")
    out = directory / "out.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={directory}",
         "-c", str(directory / "pytest.ini"), str(directory / "test_frontdoor_example.py"),
         f"--benchmark-json={out}"],
        check=True, capture_output=True, cwd=directory,
    )
    return out


# --- stores ---------------------------------------------------------------------------------

_PG: dict[str, str] = {}
_SERVER: list[PgServer] = []  # the server this process started, if it did


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("CETBENCH_REQUIRE_PG"):
        pytest.fail(f"PostgreSQL required here but unavailable: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


def pg_base_url() -> str:
    """URL of the PostgreSQL server for this test process (skips or fails without one)."""
    if "url" in _PG:
        return _PG["url"]
    if "unavailable" in _PG:
        _unavailable(_PG["unavailable"])
    url = os.environ.get(ENV_URL)
    if not url:
        try:
            server = PgServer.start()
        except PgServerError as exc:
            _PG["unavailable"] = str(exc)
            _unavailable(str(exc))
        atexit.register(server.stop)
        _SERVER.append(server)
        url = server.url
    _PG["url"] = url
    return url


def pg_own_server() -> PgServer:
    """The PostgreSQL server this test process started, for tests that restart it; skips (or fails, as
    pg_base_url does) without one, and skips when $CETBENCH_PG_URL names a server that is not ours."""
    pg_base_url()
    if not _SERVER:
        pytest.skip(f"${ENV_URL} names a server this test must not restart")
    return _SERVER[0]


def _admin(base: str) -> psycopg.Connection[Any]:
    return psycopg.connect(base, autocommit=True)


def new_pg_schema(base: str) -> str:
    """The URL of a fresh, empty schema on the server at `base` (cheaper than a database: ~0 s vs 0.25 s)."""
    name = f"cetbench_t_{uuid.uuid4().hex[:12]}"
    with _admin(base) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={name}"})
    return url.render_as_string(hide_password=False)


def drop_pg_schema(url: str) -> None:
    name = make_url(url).query["options"].split("=", 1)[1]
    base = make_url(url).difference_update_query(["options"]).render_as_string(hide_password=False)
    with _admin(base) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test."""
    url = new_pg_schema(pg_base_url())
    yield url
    drop_pg_schema(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def table_counts(store: Store) -> dict[str, int]:
    import sqlalchemy as sa

    from cetbench.results import schema

    with store.read() as conn:
        return {
            t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (schema.runs, schema.variants, schema.samples, schema.counters)
        }
