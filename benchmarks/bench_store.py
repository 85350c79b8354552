"""How fast the store takes bundles in and gives samples out (a script, not a test).

    python benchmarks/bench_store.py [--template BUNDLE] [--bundles 1000] [--samples 2000000]
                                     [--store URL] [--keep DIR]

Makes `--bundles` run bundles from a template bundle (by default a real one, written now by
`cetbench run --quick`; a synthetic one if that cannot run here), with the samples spread over
the template's measured variants: each copy gets a new run id and start time and new values
(the template's, resampled with noise), written in the template's pyperf layout, with one raw
record per value as the runner writes them. Then ingests them all into a fresh store (SQLite in
a temporary directory unless --store) and loads every sample into one DataFrame, printing both
times. Goals on the 2-core reference machine: ingest <= 30 s, load <= 5 s.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from cetbench.results.bundle import slug
from cetbench.results.ingest import ingest_paths
from cetbench.results.query import load
from cetbench.results.store import open_store

ITERATIONS = 262_144  # loops per value, as pyperf calibrates for a ~100 ns op


def real_template(workdir: Path) -> Path | None:
    """A bundle from a quick real run on this host, or None if the runner cannot run here."""
    out = workdir / "template"
    done = subprocess.run(
        [sys.executable, "-m", "cetbench", "run", "--quick", "--out", str(out)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
    )
    manifest = out / "manifest.json"
    if done.returncode != 0 or not manifest.exists():
        print(f"(no real template: cetbench run --quick said: {done.stderr.strip()[-300:]})")
        return None
    if not any(v["status"] == "measured" for v in json.loads(manifest.read_text())["variants"].values()):
        return None
    return out


def synthetic_template(workdir: Path) -> Path:
    """A template shaped like a full run on a CET host: host and guest variants, some unsupported."""
    root = workdir / "template"
    (root / "variants").mkdir(parents=True)
    variants: dict[str, Any] = {}
    for workload, axis, settings in (
        ("host.syscall", "shstk", ("off", "on")), ("host.ctxswitch", "shstk", ("off", "on")),
        ("host.signal", "shstk", ("off", "on")), ("guest.vmexit.cpuid", "cet", ("none", "shstk", "ibt+shstk")),
        ("guest.vmexit.io", "cet", ("none", "shstk", "ibt+shstk")),
    ):
        for setting in settings:
            name = f"{workload}[{axis}={setting}]"
            s = slug(name)
            measured = setting != "ibt+shstk"
            variants[name] = {
                "workload": workload, "kind": workload.split(".")[0], "cet": f"{axis}={setting}",
                "cet_on": setting not in ("off", "none"), "status": "measured" if measured else "unsupported",
                "reason": None if measured else "KVM does not offer IBT to guests",
                "refused_by": None if measured else "kvm", "unit": "second", "op": "one op", "emulated": False,
                "pyperf": f"variants/{s}.pyperf.json" if measured else None,
                "raw": f"variants/{s}.raw.jsonl" if measured else None, "perf": None,
            }
            if measured:
                bench = {"metadata": {"name": name, "unit": "second", "loops": ITERATIONS},
                         "runs": [{"metadata": {"date": "2026-11-25 04:50:59.0"}, "values": [1e-7 * (1 + i / 100)],
                                   "warmups": [[ITERATIONS, 1.1e-7]]} for i in range(20)]}
                doc = {"version": "1.0", "metadata": {"hostname": "lab1", "cpu_model_name": "Test CPU"},
                       "benchmarks": [bench]}
                (root / variants[name]["pyperf"]).write_text(json.dumps(doc))
    manifest = {
        "schema": 1, "kind": "cetbench-run", "run_id": "template", "started_utc": "2026-11-25T04:50:58Z",
        "finished_utc": "2026-11-25T04:55:58Z",
        "host": {"hostname": "lab1", "cpu_model_name": "Test CPU", "fingerprint": "0123456789abcdef"},
        "kernel": {"release": "6.18.0", "version": "#1 SMP", "build_id": "ab" * 20, "label": None},
        "suite": {"version": "0.1.0", "git_commit": None}, "kvm": {"implementation": "kvm_intel", "hardware": True},
        "options": {"quick": False}, "binaries": {}, "probe": {}, "variants": variants,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


class BundleMaker:
    """Copies of a template bundle with new ids, times and values."""

    def __init__(self, template: Path, samples_per_bundle: int) -> None:
        self.template = template
        self.manifest = json.loads((template / "manifest.json").read_text())
        self.measured = [n for n, v in self.manifest["variants"].items() if v["status"] == "measured"]
        self.per_variant = max(1, samples_per_bundle // len(self.measured))
        self.pyperf = {n: json.loads((template / self.manifest["variants"][n]["pyperf"]).read_text())
                       for n in self.measured}

    def make(self, root: Path, index: int, rng: random.Random) -> None:
        (root / "variants").mkdir(parents=True)
        manifest = copy.deepcopy(self.manifest)
        started = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=index)
        manifest["run_id"] = f"{started:%Y%m%dT%H%M%SZ}-{manifest['host'].get('hostname')}-{index:06x}"
        manifest["started_utc"] = f"{started:%Y-%m-%dT%H:%M:%SZ}"
        manifest["finished_utc"] = f"{started + dt.timedelta(minutes=5):%Y-%m-%dT%H:%M:%SZ}"
        manifest["kernel"]["label"] = f"v6.{18 + index // 100}"
        for name in self.measured:
            entry = manifest["variants"][name]
            doc = copy.deepcopy(self.pyperf[name])
            bench = doc["benchmarks"][0]
            template_values = [v for run in bench["runs"] for v in run.get("values", [])]
            run_meta = next((r.get("metadata", {}) for r in bench["runs"] if r.get("values")), {})
            per_run = max(1, len(next((r["values"] for r in bench["runs"] if r.get("values")), [1])))
            raw, values = [], []
            for _ in range(self.per_variant):
                elapsed = int(rng.choice(template_values) * (1 + rng.gauss(0, 0.02)) * 1e9 * ITERATIONS)
                raw.append({"iterations": ITERATIONS, "elapsed_ns": elapsed,
                            "tsc_ticks": int(elapsed * 2.6), "cpu": 0})
                values.append(elapsed / 1e9 / ITERATIONS)
            bench["runs"] = [{"metadata": run_meta, "values": values[i:i + per_run],
                              "warmups": [[ITERATIONS, values[i]]]} for i in range(0, len(values), per_run)]
            (root / entry["pyperf"]).write_text(json.dumps(doc))
            if entry.get("raw"):
                (root / entry["raw"]).write_text("".join(json.dumps(r) + "\n" for r in raw))
            if entry.get("perf"):
                (root / entry["perf"]).write_bytes((self.template / entry["perf"]).read_bytes())
        (root / "manifest.json").write_text(json.dumps(manifest, indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", type=Path, help="a run bundle to copy (default: a quick real run)")
    parser.add_argument("--bundles", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=2_000_000, help="samples in all bundles together")
    parser.add_argument("--store", help="store URL (default: a fresh SQLite file)")
    parser.add_argument("--keep", type=Path, help="work directory to use and keep (default: temporary)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cetbench-bench-store-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        template = args.template or real_template(work) or synthetic_template(work)
        maker = BundleMaker(template, args.samples // args.bundles)
        print(f"template {template}: {len(maker.measured)} measured variant(s) of "
              f"{len(maker.manifest['variants'])}; {maker.per_variant} samples each per bundle")
        t0 = time.perf_counter()
        rng = random.Random(1)
        paths = []
        for i in range(args.bundles):
            paths.append(work / "bundles" / f"b{i:05d}")
            maker.make(paths[-1], i, rng)
        print(f"generated {args.bundles} bundles in {time.perf_counter() - t0:.1f} s")

        url = args.store or f"sqlite:///{work / 'store.sqlite'}"
        with open_store(url) as store:
            t0 = time.perf_counter()
            report = ingest_paths(store, paths)
            ingest_s = time.perf_counter() - t0
            if not report.ok:
                print(f"ingest errors: {[e.message for e in report.errors[:3]]}")
                return 1
            t0 = time.perf_counter()
            frame = load(store)
            load_s = time.perf_counter() - t0
        print(f"store {store.display_url}")
        print(f"ingest: {report.count('ingested')} bundles, {sum(r.samples for r in report.results):,} samples "
              f"in {ingest_s:.1f} s (goal <= 30 s)")
        print(f"load:   {len(frame):,} rows x {len(frame.columns)} columns in {load_s:.1f} s (goal <= 5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
