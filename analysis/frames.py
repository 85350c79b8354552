"""Checks and derived columns on the sample frames of ``results.load`` (pure, no I/O).

The input contract: one row per sample with (among others) ``variant``, ``workload``, ``cet``,
``unit``, ``value`` (seconds per op), ``cycles`` (per op or NaN), ``emulated``, the kernel identity
columns and ``host_fingerprint``; optionally ``process`` (the worker process of the sample).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from cetbench.analysis.errors import AnalysisInputError, HostMismatchError, InvalidValueError, MixedUnitsError

#: Columns every analysis needs; ``results.load`` provides more.
REQUIRED_COLUMNS = (
    "run_id",
    "host_fingerprint",
    "kernel_release",
    "kernel_build_id",
    "kernel_label",
    "variant",
    "workload",
    "cet",
    "unit",
    "value",
    "emulated",
)

#: Name of the derived kernel-identity column added by :func:`with_kernel_column`.
KERNEL = "kernel"

#: The label of figures from a KVM that is not hardware virtualization (kvm_pvm), when the run
#: names no emulator; printed beside every such figure in every format.
EMULATED_KVM = "emulated KVM: not a hardware timing"


def emulation(frame: pd.DataFrame) -> str | None:
    """How a frame's samples were emulated, as every report labels them; None when none were.

    A run of the emulated lab names its emulator (`emulator`: "bochs 3.0 ..., cpu model tigerlake");
    a guest on a software KVM does not: it gets EMULATED_KVM.
    """
    if frame.empty:
        return None
    flagged = frame["emulated"].astype(bool).to_numpy()
    if not flagged.any():
        return None
    if "emulator" in frame.columns:
        names = sorted({str(e) for e in frame.loc[flagged, "emulator"].dropna() if str(e)})
        if names:
            return f"emulated: {'; '.join(names)}: not a hardware timing"
    return EMULATED_KVM


def require_columns(frame: pd.DataFrame, what: str, columns: Iterable[str] = REQUIRED_COLUMNS) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AnalysisInputError(f"{what}: missing column(s) {', '.join(missing)}")


def validate_samples(frames: dict[str, pd.DataFrame]) -> str | None:
    """Reject values no analysis can use; return the one unit all frames share.

    ``frames`` maps a role ("baseline", "candidate", "samples") to its frame, so messages say
    where the bad data is.  Raises :class:`MixedUnitsError` when units differ anywhere (seconds
    cannot be compared with anything else) and :class:`InvalidValueError` naming the variants
    that carry NaN, infinite or non-positive values (a time per op is always > 0), or infinite or
    non-positive cycles (NaN cycles mean "unknown" and are allowed).
    """
    units: dict[str, set[str]] = {}
    for role, frame in frames.items():
        require_columns(frame, role)
        present = frame["unit"].unique()
        if len(present) == 1:  # the usual case: skip the per-variant breakdown on big frames
            units.setdefault(str(present[0]), set())
        else:
            for unit, variants in frame.groupby("unit", sort=True)["variant"].unique().items():
                units.setdefault(str(unit), set()).update(str(v) for v in variants)
        bad = _bad_value_mask(frame)
        if bad.any():
            names = sorted(set(frame.loc[bad, "variant"].astype(str)))
            raise InvalidValueError(
                f"{role}: NaN, infinite or non-positive values in variant(s): {', '.join(names)}"
            )
    if len(units) > 1:
        for frame in frames.values():
            for unit, variants in frame.groupby("unit", sort=True)["variant"].unique().items():
                units[str(unit)].update(str(v) for v in variants)
        detail = "; ".join(f"{u}: {', '.join(sorted(v))}" for u, v in sorted(units.items()))
        raise MixedUnitsError(f"mixed units cannot be compared ({detail})")
    return next(iter(units), None)


def _bad_value_mask(frame: pd.DataFrame) -> np.ndarray:
    values = frame["value"].to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values) | (values <= 0)
    if "cycles" in frame.columns:
        cycles = frame["cycles"].to_numpy(dtype=float, na_value=np.nan)
        bad |= np.isinf(cycles) | (cycles <= 0)
    return bad


def check_same_host(baseline: pd.DataFrame, candidate: pd.DataFrame, force: bool) -> bool:
    """Refuse to compare different CPUs unless forced; return whether they differ."""
    base_fp = _fingerprints(baseline)
    cand_fp = _fingerprints(candidate)
    differ = bool(base_fp and cand_fp) and (base_fp != cand_fp or len(base_fp) > 1)
    if differ and not force:
        raise HostMismatchError(
            "baseline and candidate come from different CPUs or hosts "
            f"(host_fingerprint baseline: {', '.join(sorted(base_fp))}; "
            f"candidate: {', '.join(sorted(cand_fp))}); pass force=True to compare anyway"
        )
    return differ


def check_single_host(frame: pd.DataFrame, what: str, force: bool) -> bool:
    """Refuse a series that mixes CPUs unless forced; return whether it does."""
    fingerprints = sorted(_fingerprints(frame))
    if len(fingerprints) > 1 and not force:
        raise HostMismatchError(
            f"{what} mixes samples from different CPUs or hosts (host_fingerprint: "
            f"{', '.join(fingerprints)}); pass force=True to analyse them together"
        )
    return len(fingerprints) > 1


def _fingerprints(frame: pd.DataFrame) -> set[str]:
    return {str(f) for f in frame["host_fingerprint"].dropna().unique()}


def kernel_identity(label: object, release: object, build_id: object) -> str:
    """One kernel build's name: the user's label if set, else release plus build-id."""
    if _present(label):
        return str(label)
    name = str(release) if _present(release) else "unknown-kernel"
    return f"{name}+{build_id}" if _present(build_id) else name


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and value != ""


def with_kernel_column(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame plus a categorical ``kernel`` column naming each sample's kernel build.

    Computed once per distinct (label, release, build-id) rather than per row: the frames can
    hold millions of samples.
    """
    columns = ["kernel_label", "kernel_release", "kernel_build_id"]
    grouped = frame.groupby(columns, dropna=False, sort=False)
    codes = grouped.ngroup().to_numpy()
    names = [kernel_identity(*key) for key in grouped.size().index]
    categories = list(dict.fromkeys(names))
    remap = np.array([categories.index(n) for n in names], dtype=np.int64)
    kernel = pd.Categorical.from_codes(remap[codes], categories=pd.Index(categories))
    return frame.assign(**{KERNEL: kernel})



def process_medians(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per worker process: the median value (and cycles) of its samples.

    The values of one pyperf worker share its address layout, page placement and moment on a
    host whose speed drifts, so they vary several times less within a process than between
    processes (measured: ~0.6 % against ~1.5 % on host.syscall).  Tests that took each value as
    independent would read that shared component as signal (pseudo-replication); the process
    is the unit of replication.  Rows without a process (inputs that do not say, such as
    pytest-benchmark) stay units of their own.
    """
    if frame.empty or "process" not in frame.columns:
        return frame
    process = frame["process"].to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(process)
    process[missing] = -1.0 - np.arange(int(missing.sum()))  # each its own group
    keys = [frame["run_id"].to_numpy(), frame["variant"].to_numpy(), process]
    codes = pd.MultiIndex.from_arrays(keys).factorize()[0]
    _, first = np.unique(codes, return_index=True)
    numbers = {"value": frame["value"].to_numpy(dtype=np.float64)}
    if "cycles" in frame.columns:
        numbers["cycles"] = frame["cycles"].to_numpy(dtype=np.float64, na_value=np.nan)
    medians = pd.DataFrame(numbers).groupby(codes, sort=True).median()
    out = frame.take(first).reset_index(drop=True)
    for column in numbers:
        out[column] = medians[column].to_numpy()
    return out
