"""The bisect driver with a lab that only pretends to measure (fast): the hook contract, resuming
from the state after a crash, skips, the answer when there is none, and bad input as one line
with exit 2 through the real command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cetbench import bisect as driver
from cetbench.bisect import BisectInputError, BisectStopped, Judgement
from cetbench.cli import main
from cetbench.cli.errors import exit_code_for
from tests.support.bisect import Hooks, git, make_hooks, make_tree

VARIANT = "host.syscall[shstk=off]"
OPTIONS = {"runs": 2}


class FakeLab:
    """Runs named after the revision's slowdown; a slowdown is a regression, an odd `noisy`
    revision is inconclusive, and `crash` makes measuring fail as a power cut would."""

    def __init__(self, crash: bool = False, noisy: set[str] | None = None) -> None:
        self.crash, self.noisy, self.measured = crash, noisy or set(), []  # type: ignore[var-annotated]

    def check_run_args(self, run_args: list[str]) -> None:
        if run_args[:1] != ["--inject-cycles"]:
            raise BisectInputError(f"unexpected run options {run_args}")

    def measure(self, label: str, run_args: list[str]) -> list[str]:
        if self.crash:
            raise RuntimeError("power cut")
        self.measured.append(label)
        return [f"{label}:{run_args[1]}:{i}" for i in range(2)]

    def judge(self, baseline: list[str], candidate: list[str]) -> Judgement:
        label, cycles, _ = candidate[0].split(":")
        if label.removeprefix("bisect-") in self.noisy:
            return Judgement("inconclusive", 0.3, "too noisy")
        return Judgement("regression", 9.0) if int(cycles) else Judgement("no change", 0.001)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[str]]:
    return tmp_path / "linux", make_tree(tmp_path / "linux", 10, first_bad=6, delay=3000)


@pytest.fixture
def hooks(tmp_path: Path) -> Hooks:
    return make_hooks(tmp_path / "hooks")


def _start(state: Path, tree: Path, good: str, bad: str, hooks: Hooks) -> driver.State:
    return driver.start(state, tree, good, bad, VARIANT, [str(hooks.build)], [str(hooks.reboot)], OPTIONS)


def _run(state: Path, lab: FakeLab) -> driver.State:
    while (s := driver.step(state, lab, lambda _: None)).phase != "done":
        pass
    return s


def test_the_driver_names_the_commit_the_tree_says(tree: tuple[Path, list[str]], hooks: Hooks, tmp_path: Path) -> None:
    root, shas = tree
    state = tmp_path / "bisect.json"
    _start(state, root, shas[0], shas[-1], hooks)
    done = _run(state, FakeLab())
    assert done.first_bad == shas[6]
    assert "commit 6" in driver.conclusion(done)
    assert [s.phase for s in done.steps[:2]] == ["good", "bad"]
    # every measured revision was built first, with the revision checked out, and only once
    assert [rev for _, rev in hooks.built()] == [s.rev for s in done.steps]
    assert 2 <= done.bisection_steps <= 4  # log2 of the 9 candidates, give or take one
    driver.reset(state)
    assert git(root, "rev-parse", "--abbrev-ref", "HEAD") == "main" and not state.exists()


def test_an_inconclusive_revision_is_skipped(tree: tuple[Path, list[str]], hooks: Hooks, tmp_path: Path) -> None:
    root, shas = tree
    state = tmp_path / "bisect.json"
    _start(state, root, shas[0], shas[-1], hooks)
    done = _run(state, FakeLab(noisy={shas[4][:12]}))  # git's first midpoint of commits 1..9
    assert done.first_bad == shas[6]
    assert [(s.verdict, s.mark) for s in done.steps if s.rev == shas[4]] == [("inconclusive", "skip")]


def test_a_crash_while_measuring_leaves_the_state_intact_and_resumes(
        tree: tuple[Path, list[str]], hooks: Hooks, tmp_path: Path) -> None:
    root, shas = tree
    state = tmp_path / "bisect.json"
    _start(state, root, shas[0], shas[-1], hooks)
    lab = FakeLab()
    for _ in range(3):  # build+boot good; measure good, build+boot bad; measure bad, start git bisect, ...
        driver.step(state, lab, lambda _: None)
    before = state.read_bytes()
    assert json.loads(before)["stage"] == "measure"
    with pytest.raises(RuntimeError, match="power cut"):
        driver.step(state, FakeLab(crash=True), lambda _: None)
    assert state.read_bytes() == before
    done = _run(state, lab)
    assert done.first_bad == shas[6]
    assert len(lab.measured) == len(set(lab.measured)) == len(done.steps)  # nothing measured twice


def test_a_failing_build_hook_stops_with_the_state_kept(
        tree: tuple[Path, list[str]], hooks: Hooks, tmp_path: Path) -> None:
    root, shas = tree
    state = tmp_path / "bisect.json"
    _start(state, root, shas[0], shas[-1], hooks)
    hooks.fail_once.touch()
    with pytest.raises(BisectStopped, match="build hook failed") as stopped:
        _run(state, FakeLab())
    assert exit_code_for(stopped.value) == 3
    assert driver.load(state).stage == "build"
    assert _run(state, FakeLab()).first_bad == shas[6]


def test_no_regression_between_the_ends_says_so_and_exits_3(
        tree: tuple[Path, list[str]], hooks: Hooks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        cetbench: Callable[..., Ran]) -> None:
    root, shas = tree
    state = tmp_path / "bisect.json"
    _start(state, root, shas[0], shas[5], hooks)  # both ends before the delay enters
    monkeypatch.setattr("cetbench.cli.bisect.StoreLab", lambda *_: FakeLab())
    line = one_line(cetbench("bisect", "run", "--state", str(state)), 3)
    assert line.startswith("cetbench: no regression of host.syscall[shstk=off] between good")
    assert "nothing to bisect" in line
    assert not (root / ".git" / "BISECT_START").exists()  # git bisect never started


@dataclass
class Ran:
    code: int | str | None
    out: str
    err: str


@pytest.fixture
def cetbench(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
             ) -> Callable[..., Ran]:
    """The command line in this process (main's exit-code rule included), as `cetbench ARGS`."""
    monkeypatch.setenv("CETBENCH_HOME", str(tmp_path / "home"))

    def call(*args: str) -> Ran:
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        said = capsys.readouterr()
        return Ran(exited.value.code, said.out, said.err)

    return call


def one_line(ran: Ran, code: int) -> str:
    assert ran.code == code, ran
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cetbench: "), ran.err
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(tree: tuple[Path, list[str]], hooks: Hooks, tmp_path: Path,
                                          cetbench: Callable[..., Ran]) -> None:
    root, shas = tree
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    args = ["bisect", "start", "--tree", str(root), "--good", shas[0], "--bad", shas[-1], "--variant", VARIANT]
    hook_args = ["--build-hook", str(hooks.build), "--reboot-hook", str(hooks.reboot)]
    assert "--build-hook" in one_line(cetbench(*args, "--state", str(first)), 2)  # no hooks
    assert "is not an executable file" in one_line(
        cetbench(*args, "--build-hook", str(tmp_path / "nosuch"), "--reboot-hook", str(hooks.reboot)), 2)
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "is not a git repository" in one_line(cetbench(*args[:2], "--tree", str(plain), *args[4:], *hook_args), 2)
    assert "must be an ancestor" in one_line(cetbench(*args[:4], "--good", shas[-1], "--bad", shas[0], *args[8:],
                                                      *hook_args), 2)
    assert "one variant name" in one_line(cetbench(*args[:8], "--variant", "host.*", *hook_args), 2)

    # a state file from another bisect: the tree moved on to a new bisect since
    assert cetbench(*args, *hook_args, "--state", str(first)).code == 0
    assert "in progress" in one_line(cetbench(*args, *hook_args, "--state", str(first)), 2)
    copy = tmp_path / "copy.json"
    copy.write_bytes(first.read_bytes())
    assert cetbench("bisect", "reset", "--state", str(first)).code == 0
    assert cetbench(*args, *hook_args, "--state", str(second)).code == 0
    assert "from another bisect" in one_line(cetbench("bisect", "step", "--state", str(copy)), 2)
    (tmp_path / "other.json").write_text('{"kind": "cetbench-run"}')
    assert "not a cetbench bisect state" in one_line(cetbench("bisect", "run", "--state", str(tmp_path / "other.json")),
                                                     2)
