"""`cetbench bisect`: find the commit of a kernel tree that brought a regression of one variant.

The driver walks one revision at a time through four stages, saving its state (a JSON file,
written atomically) before each stage starts, so a reboot, a kill or a crash at any point leaves a
state the next invocation resumes from:

    build    check the revision out and run the build hook (build and install it)
    reboot   run the reboot hook; after a real reboot the boot id tells that it happened
    measure  run the variant N times on the booted build and compare with the good end's runs
    mark     good / bad / skip (inconclusive) to git bisect, which names the next revision

The good end is measured first (its runs are the baseline), then the bad end, which must show
the regression against it; only then does git bisect start. Measuring and comparing are given by
the caller (`Lab`), so this module knows git, hooks and the state, not the store.

The build hook's contract: it runs in the tree with HEAD at the revision, and these variables:
CETBENCH_BISECT_REV (the commit), CETBENCH_BISECT_PHASE (good, bad or bisect),
CETBENCH_BISECT_TREE, CETBENCH_BISECT_STATE and CETBENCH_BISECT_RUN_ARGS, a file it may write
extra `cetbench run` options into (shell-like quoting, e.g. `--cpu 3`), used for that revision's
runs. Exit 0: built and installed; 125: this revision cannot be built (it is skipped, as with
`git bisect run`); anything else stops the bisect, state kept. The reboot hook boots the
installed build: it either never returns (the machine reboots; run `cetbench bisect run` at
boot) or returns 0 once the build is live.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import shlex
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cetbench.bisect_git import BisectInputError, BisectStopped, Outcome, Tree, VariantNotMeasured, run_hook
from cetbench.results.bundle import atomic_write

__all__ = ["BisectInputError", "BisectStopped", "Judgement", "Lab", "State", "Step", "VariantNotMeasured", "load",
           "reset", "start", "step"]

KIND = "cetbench-bisect"
SCHEMA = 1
MARKER = "cetbench-bisect"  # in the tree's git directory: the id of the bisect that owns the tree
SKIP_EXIT = 125


@dataclass(frozen=True)
class Judgement:
    verdict: str  # regression | improvement | no change | inconclusive
    change: float | None = None
    reason: str | None = None


class Lab(Protocol):
    def measure(self, label: str, run_args: list[str]) -> list[str]:
        """Run the variant on the booted build; the run ids."""

    def judge(self, baseline: list[str], candidate: list[str]) -> Judgement:
        """The variant's verdict, candidate runs against baseline runs."""

    def check_run_args(self, run_args: list[str]) -> None:
        """Raise BisectInputError when the build hook wrote options the runs cannot take."""


@dataclass
class Step:
    rev: str
    phase: str  # good | bad | bisect
    run_ids: list[str]
    verdict: str | None  # None: not measured (the build hook skipped the revision)
    change: float | None
    reason: str | None
    mark: str = ""  # good | bad | skip, once given


@dataclass
class State:
    id: str
    tree: str
    good: str
    bad: str
    variant: str
    build_hook: list[str]
    reboot_hook: list[str]
    #: How to measure and compare (runs, pyperf configuration, floor, ...), as the caller gave them.
    options: dict[str, Any]
    #: Where the tree was before the bisect: `reset` returns it there.
    original: str
    phase: str = "good"  # good | bad | bisect | done
    stage: str = "build"  # build | reboot | measure | mark
    current: str = ""
    run_args: list[str] = field(default_factory=list)
    boot_id: str | None = None
    baseline_runs: list[str] = field(default_factory=list)
    pending: Step | None = None
    steps: list[Step] = field(default_factory=list)
    outcome: str | None = None  # found | no regression | only skipped left
    first_bad: str | None = None
    candidates: list[str] = field(default_factory=list)

    @property
    def bisection_steps(self) -> int:
        return sum(1 for s in self.steps if s.phase == "bisect")


def load(path: Path) -> State:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BisectInputError(f"no bisect state at {path} (cetbench bisect start first)") from None
    except (OSError, ValueError) as exc:
        raise BisectInputError(f"{path} is not a readable bisect state: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("schema") != SCHEMA:
        raise BisectInputError(f"{path} is not a cetbench bisect state")
    try:
        fields = {k: v for k, v in doc.items() if k not in ("kind", "schema")}
        fields["steps"] = [Step(**s) for s in fields.get("steps", [])]
        fields["pending"] = Step(**fields["pending"]) if fields.get("pending") else None
        return State(**fields)
    except TypeError as exc:
        raise BisectInputError(f"{path} is not a cetbench bisect state: {exc}") from None


def save(path: Path, state: State) -> None:
    doc = {"kind": KIND, "schema": SCHEMA, **dataclasses.asdict(state)}
    atomic_write(path, (json.dumps(doc, indent=1) + "\n").encode())


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One driver per state file: a step at boot and a person's step never interleave."""
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BisectInputError(f"another cetbench bisect is running on {path}") from None
        yield


def _owner(tree: Tree) -> str | None:
    marker = tree.path(MARKER)
    return marker.read_text().strip() if marker.exists() else None


def start(path: Path, tree_dir: Path, good: str, bad: str, variant: str, build_hook: list[str],
          reboot_hook: list[str], options: dict[str, Any]) -> State:
    """Check everything that can be checked before the first build, and write the state."""
    tree = Tree.open(tree_dir)
    if path.exists():
        old = load(path)
        if old.phase != "done":
            raise BisectInputError(f"{path} holds a bisect in progress ({old.variant} in {old.tree}): finish it, "
                                   "or `cetbench bisect reset` first")
    if tree.bisecting():
        owner = _owner(tree)
        raise BisectInputError(f"{tree.root} is being bisected already ("
                               + (f"cetbench bisect {owner}" if owner else "git bisect log shows it")
                               + "): reset that bisect first")
    if tree.dirty():
        raise BisectInputError(f"{tree.root} has uncommitted changes: commit or stash them first")
    good_sha, bad_sha = tree.commit(good), tree.commit(bad)
    if good_sha == bad_sha or not tree.is_ancestor(good_sha, bad_sha):
        raise BisectInputError(f"good {good} must be an ancestor of bad {bad}")
    state = State(id=uuid.uuid4().hex, tree=str(tree.root), good=good_sha, bad=bad_sha, variant=variant,
                  build_hook=build_hook, reboot_hook=reboot_hook, options=options, original=tree.where(),
                  current=good_sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(path, state)
    atomic_write(tree.path(MARKER), f"{state.id}\n".encode())
    return state


def _tree_of(path: Path, state: State) -> Tree:
    tree = Tree.open(Path(state.tree))
    if state.phase != "done" and _owner(tree) != state.id:
        raise BisectInputError(f"{path} is from another bisect: {tree.root} is not being bisected by it "
                               "(`cetbench bisect reset` of that state, then start again)")
    if state.phase == "bisect" and state.stage != "mark" and not tree.bisecting():
        raise BisectInputError(f"{tree.root} is no longer in git bisect (was it reset?): start again")
    return tree


def step(path: Path, lab: Lab, say: Callable[[str], None]) -> State:
    """Go on from where the state stands to the next reboot (or the end): measure the booted
    build, mark it, build the next revision and run the reboot hook. Returns the state."""
    with _locked(path):
        state = load(path)
        tree = _tree_of(path, state)
        while state.phase != "done":
            if state.stage == "reboot":
                if _reboot(path, state, tree):
                    return state
            elif state.stage == "measure":
                _measure(state, lab, say)
            elif state.stage == "mark":
                _mark(state, tree, say)
            else:
                _build(path, state, tree, lab, say)
            save(path, state)
        return state


def _env(path: Path, state: State, tree: Tree) -> dict[str, str]:
    return {"CETBENCH_BISECT_REV": state.current, "CETBENCH_BISECT_PHASE": state.phase,
            "CETBENCH_BISECT_TREE": str(tree.root), "CETBENCH_BISECT_STATE": str(path),
            "CETBENCH_BISECT_RUN_ARGS": str(path.with_name(path.name + ".run-args"))}


def _build(path: Path, state: State, tree: Tree, lab: Lab, say: Callable[[str], None]) -> None:
    tree.checkout(state.current)
    env = _env(path, state, tree)
    args_file = Path(env["CETBENCH_BISECT_RUN_ARGS"])
    args_file.write_text("")
    say(f"{state.phase} {tree.describe(state.current)}: building")
    code = run_hook(state.build_hook, tree.root, env)
    if code == SKIP_EXIT and state.phase == "bisect":
        state.pending = Step(state.current, state.phase, [], None, None, "the build hook could not build it (125)")
        state.stage = "mark"
        return
    if code != 0:
        raise BisectStopped(f"the build hook failed for {state.phase} {state.current[:12]} (exit {code}); the state "
                            "is kept: fix it and run `cetbench bisect run` again")
    run_args = shlex.split(args_file.read_text())
    lab.check_run_args(run_args)
    state.run_args, state.boot_id, state.stage = run_args, boot_id(), "reboot"


def _reboot(path: Path, state: State, tree: Tree) -> bool:
    """Whether this invocation is done (the reboot hook returned: the build is live, go on in a
    new step). After a real reboot the boot id differs and measuring goes on at once."""
    if state.boot_id is not None and boot_id() != state.boot_id:
        state.stage = "measure"
        return False
    code = run_hook(state.reboot_hook, tree.root, _env(path, state, tree))
    if code != 0:
        raise BisectStopped(f"the reboot hook failed (exit {code}); the state is kept: run `cetbench bisect run` "
                            "again")
    state.stage = "measure"
    save(path, state)
    return True


def _measure(state: State, lab: Lab, say: Callable[[str], None]) -> None:
    try:
        run_ids = lab.measure(f"bisect-{state.current[:12]}", state.run_args)
    except VariantNotMeasured as exc:
        if state.phase != "bisect":
            raise
        state.pending = Step(state.current, state.phase, [], None, None, str(exc))
        state.stage = "mark"
        return
    judged = Judgement("baseline") if state.phase == "good" else lab.judge(state.baseline_runs, run_ids)
    state.pending = Step(state.current, state.phase, run_ids, judged.verdict, judged.change, judged.reason)
    state.stage = "mark"
    change = "" if judged.change is None else f" {judged.change * 100:+.1f} %"
    say(f"{state.phase} {state.current[:12]}: {len(run_ids)} run(s), {judged.verdict}{change}")


def _mark(state: State, tree: Tree, say: Callable[[str], None]) -> None:
    done = state.pending
    assert done is not None
    if state.phase == "good":
        done.mark, state.baseline_runs = "good", done.run_ids
        state.phase, state.current, state.stage = "bad", state.bad, "build"
    elif state.phase == "bad":
        done.mark = "bad" if done.verdict == "regression" else "good"
        if done.verdict == "regression":
            _advance(state, tree.bisect_start(state.bad, state.good))
        else:
            state.phase, state.outcome = "done", "no regression"
    else:
        done.mark = {"regression": "bad", "improvement": "good", "no change": "good"}.get(done.verdict or "", "skip")
        _advance(state, tree.bisect_mark(done.mark, done.rev))
    say(f"{done.phase} {done.rev[:12]}: marked {done.mark}" + (f" ({done.reason})" if done.reason else ""))
    state.steps.append(done)
    state.pending = None


def _advance(state: State, outcome: Outcome) -> None:
    if outcome.first_bad:
        state.phase, state.outcome, state.first_bad = "done", "found", outcome.first_bad
    elif outcome.next is None:
        state.phase, state.outcome, state.candidates = "done", "only skipped left", list(outcome.candidates)
    else:
        state.phase, state.current, state.stage = "bisect", outcome.next, "build"


def conclusion(state: State) -> str:
    """The answer in one line; raises BisectStopped when there is none."""
    if state.outcome == "no regression":
        bad = state.steps[-1]
        change = "" if bad.change is None else f" ({bad.change * 100:+.1f} %)"
        raise BisectStopped(f"no regression of {state.variant} between good {state.good[:12]} and bad "
                            f"{state.bad[:12]}: the bad end is {bad.verdict}{change} against the good end, nothing "
                            "to bisect")
    if state.outcome == "only skipped left":
        raise BisectStopped(f"only skipped revisions are left: the first bad commit is one of "
                            f"{', '.join(c[:12] for c in state.candidates)}")
    tree = Tree.open(Path(state.tree))
    assert state.first_bad is not None
    return (f"first bad commit: {state.first_bad} {tree.describe(state.first_bad).split(' ', 1)[-1]} "
            f"({len(state.steps)} revisions measured: the good and bad ends and {state.bisection_steps} bisection "
            "steps)")


def reset(path: Path) -> State:
    """End the bisect: git bisect reset, the tree back where it was, the state file removed."""
    with _locked(path):
        state = load(path)
        tree = Tree.open(Path(state.tree))
        if _owner(tree) == state.id:
            if tree.bisecting():
                tree.bisect_reset(state.original)
            else:
                tree.git("checkout", "--quiet", state.original)
            tree.path(MARKER).unlink(missing_ok=True)
        for leftover in (path, path.with_name(path.name + ".run-args")):
            leftover.unlink(missing_ok=True)
    path.with_name(path.name + ".lock").unlink(missing_ok=True)
    return state
