"""What each CET mechanism costs per time it is paid, fitted jointly over the variants of one build
(pure, no I/O).

Model, per host and kernel build: a variant's median time per op is its workload's own cost plus,
for each mechanism, the number of times per op the variant pays it (from its perf counts, e.g.
guest FPU loads with a live CET_USER component) times that mechanism's cost:

    time(v) = base(workload(v)) + sum over m of count(v, m) * cost(m)

fitted by least squares. A mechanism is identified only when the variants measured tell it apart
from everything else in the model (its column is not a combination of the others: in practice, an
isolating pair of one workload whose counts of it differ); otherwise its cost is refused with the
reason and the pair to measure. Intervals: percentile bootstrap over worker processes (each
variant's process medians resampled, the model refitted; fixed seed). Written here because no
library fits a design matrix this small with a bootstrap over its own unit of replication.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cetbench.analysis.errors import AnalysisInputError
from cetbench.analysis.frames import KERNEL, emulation, process_medians, validate_samples, with_kernel_column
from cetbench.workloads.mechanisms import Mechanism
from cetbench.workloads.variants import kind_of, parse


@dataclass(frozen=True)
class MechanismCost:
    host_fingerprint: str
    kernel: str
    mechanism: str
    what: str
    #: seconds per time the mechanism is paid, and its interval; None when not identified
    seconds: float | None
    low: float | None
    high: float | None
    #: why it is not identified (and what to measure), or None
    reason: str | None
    #: the measured variants that pay it (count per op not 0); the fit contrasts them with the rest
    informed_by: tuple[str, ...]
    emulated: str | None  # the emulation label, None for hardware


@dataclass(frozen=True)
class Residual:
    host_fingerprint: str
    kernel: str
    variant: str
    observed: float  # median seconds per op
    fitted: float


@dataclass(frozen=True)
class Excluded:
    variant: str
    reason: str


@dataclass(frozen=True)
class CostModelResult:
    costs: tuple[MechanismCost, ...]
    residuals: tuple[Residual, ...]
    excluded: tuple[Excluded, ...]
    confidence: float
    seed: int
    n_resamples: int


def cost_model(
    samples: pd.DataFrame,
    counts: pd.DataFrame,
    mechanisms: Sequence[Mechanism],
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> CostModelResult:
    """Fit every mechanism's cost per host and kernel build of ``samples``.

    ``counts`` has columns variant, event, per_op (event specs as the mechanisms name them; a
    variant missing a count its mechanisms need is left out of the fit, with the reason).
    """
    validate_samples({"samples": samples})
    if samples.empty:
        raise AnalysisInputError("no samples to fit mechanism costs from")
    frame = with_kernel_column(process_medians(samples))
    per_op = _counts_by_variant(counts)
    costs: list[MechanismCost] = []
    residuals: list[Residual] = []
    excluded: list[Excluded] = []
    rng = np.random.default_rng(seed)
    for (fingerprint, kernel), group in frame.groupby(["host_fingerprint", KERNEL], sort=True, observed=True):
        where = (str(fingerprint), str(kernel))
        c, r, e = _fit_build(where, group, per_op, mechanisms, rng, n_resamples, confidence)
        costs += c
        residuals += r
        excluded += e
    return CostModelResult(tuple(costs), tuple(residuals), tuple(excluded), confidence, seed, n_resamples)


def _counts_by_variant(counts: pd.DataFrame) -> dict[str, dict[str, float]]:
    if counts.empty:
        return {}
    finite = counts[np.isfinite(counts["per_op"].astype(float))]
    medians = finite.groupby(["variant", "event"])["per_op"].median().reset_index()
    out: dict[str, dict[str, float]] = {}
    for variant, event, value in medians.itertuples(index=False):
        out.setdefault(str(variant), {})[str(event)] = float(value)
    return out


def _fit_build(
    where: tuple[str, str],
    group: pd.DataFrame,
    per_op: Mapping[str, Mapping[str, float]],
    mechanisms: Sequence[Mechanism],
    rng: np.random.Generator,
    n_resamples: int,
    confidence: float,
) -> tuple[list[MechanismCost], list[Residual], list[Excluded]]:
    kinds = {str(v): kind_of(str(w)) for v, w in group.groupby("variant", observed=True)["workload"].first().items()}
    relevant = [m for m in mechanisms if any(k in m.kinds for k in kinds.values())]
    rows, names, excluded = [], [], []
    for variant, kind in sorted(kinds.items()):
        name = parse(variant, strict=False)
        counts = per_op.get(variant, {})
        row = [m.per_op(name, counts) if kind in m.kinds else 0.0 for m in relevant]
        missing = [m.counted_by[0] for m, x in zip(relevant, row, strict=True) if x is None]
        if missing:
            excluded.append(Excluded(variant, f"no count per op of {', '.join(sorted(set(missing)))}"))
            continue
        rows.append([float(x) for x in row if x is not None])
        names.append(variant)
    emulated = emulation(group)
    if not names:
        reason = "no variant of this build has the counts the mechanisms are priced from"
        return [_refused(where, m, reason, (), emulated) for m in relevant], [], excluded
    workloads = [str(group.loc[group["variant"] == v, "workload"].iloc[0]) for v in names]
    base_names = sorted(set(workloads))
    base = np.array([[1.0 if w == b else 0.0 for b in base_names] for w in workloads])
    x = np.array(rows, dtype=np.float64).reshape(len(names), len(relevant))
    identified, refused = _identify(base, x, relevant, names, workloads)
    design = np.hstack([base, x[:, identified]])
    values = [group.loc[group["variant"] == v, "value"].to_numpy(np.float64) for v in names]
    y = np.array([np.median(v) for v in values])
    pinv = np.linalg.pinv(design)
    beta = pinv @ y
    boot = _bootstrap_medians(values, rng, n_resamples) @ pinv.T  # (resamples, parameters)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    costs = []
    for j, m in enumerate(relevant):
        informed = tuple(n for n, col in zip(names, x[:, j], strict=True) if col != 0.0)
        if j in identified:
            k = len(base_names) + identified.index(j)
            costs.append(MechanismCost(*where, m.id, m.what, float(beta[k]), float(low[k]), float(high[k]),
                                       None, informed, emulated))
        else:
            costs.append(_refused(where, m, refused[j], informed, emulated))
    fitted = design @ beta
    residuals = [Residual(*where, n, float(o), float(f)) for n, o, f in zip(names, y, fitted, strict=True)]
    return costs, residuals, excluded


def _identify(base: np.ndarray, x: np.ndarray, mechanisms: Sequence[Mechanism], names: Sequence[str],
              workloads: Sequence[str]) -> tuple[list[int], dict[int, str]]:
    """The mechanism columns the design can estimate, and why each other one cannot be."""
    identified: list[int] = []
    refused: dict[int, str] = {}
    for j, m in enumerate(mechanisms):
        column = x[:, j]
        if not column.any():
            refused[j] = "no measured variant pays it (its count per op is 0 everywhere)"
            continue
        others = np.hstack([base, x[:, identified]])
        with_it = np.hstack([others, column[:, None]])
        if np.linalg.matrix_rank(with_it) == np.linalg.matrix_rank(others):
            refused[j] = _why_not(m)
            continue
        identified.append(j)
    # A column kept early can become a combination of later ones only if they are combinations
    # of it; the loop adds a column only when it raises the rank, so the kept set is independent.
    return identified, refused


def _why_not(m: Mechanism) -> str:
    if m.isolated_by is None:
        return "nothing software can switch it: it is part of every op's baseline, so no pair of variants isolates it"
    return (f"no two measured variants of one workload differ in how often they pay it: measure an isolating "
            f"pair along the `{m.isolated_by}` axis (docs/mechanisms.md)")


def _refused(where: tuple[str, str], m: Mechanism, reason: str, informed: tuple[str, ...],
             emulated: str | None) -> MechanismCost:
    return MechanismCost(*where, m.id, m.what, None, None, None, reason, informed, emulated)


def _bootstrap_medians(values: Sequence[np.ndarray], rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, variants): each variant's median of a resample of its process medians."""
    out = np.empty((n, len(values)))
    for i, v in enumerate(values):
        idx = rng.integers(0, v.size, size=(n, v.size))
        out[:, i] = np.median(v[idx], axis=1)
    return out
