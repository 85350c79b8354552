"""git and the user's hooks for `cetbench bisect`, through subprocess without a shell.

git's own words are parsed only where git bisect reports its outcome; every call runs with the C
locale so those words do not change with the user's language.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class BisectInputError(Exception):
    """What the user gave cannot be bisected (not a repository, no such revision, a missing hook,
    a state file of another bisect); the message is one line."""


class BisectStopped(Exception):
    """The bisect cannot go on or has no answer (no regression between its ends, a hook that
    failed, only skipped revisions left); the message is one line and the state is kept."""


class VariantNotMeasured(BisectStopped):
    """The variant carries no numbers on the booted build (unsupported or failed): a revision in
    the middle is skipped; at an end the bisect stops."""


_ENV = {"LC_ALL": "C", "LANG": "C", "GIT_PAGER": "cat", "PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}
_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.MULTILINE)
_SHA = re.compile(r"^[0-9a-f]{40}$", re.MULTILINE)


@dataclass(frozen=True)
class Outcome:
    """Where git bisect stands after a mark: the next revision to test, the first bad commit, or
    the candidates when only skipped revisions are left."""

    next: str | None = None
    first_bad: str | None = None
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tree:
    root: Path

    @classmethod
    def open(cls, path: Path) -> Tree:
        if shutil.which("git") is None:
            raise BisectStopped("git is not installed")
        if not path.is_dir():
            raise BisectInputError(f"{path} is not a directory")
        proc = _git(path, "rev-parse", "--show-toplevel")
        if proc.returncode != 0:
            raise BisectInputError(f"{path} is not a git repository")
        return cls(Path(proc.stdout.strip()))

    def git(self, *args: str) -> str:
        """stdout of a git command that must succeed; its failure is one line with git's words."""
        proc = _git(self.root, *args)
        if proc.returncode != 0:
            words = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise BisectStopped(f"git {args[0]} in {self.root} failed: {words[-1] if words else proc.returncode}")
        return proc.stdout

    def commit(self, rev: str) -> str:
        proc = _git(self.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        if proc.returncode != 0:
            raise BisectInputError(f"{rev!r} is not a commit of {self.root}")
        return proc.stdout.strip()

    def is_ancestor(self, older: str, newer: str) -> bool:
        return _git(self.root, "merge-base", "--is-ancestor", older, newer).returncode == 0

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def where(self) -> str:
        """The branch checked out, else HEAD's commit: where `reset` returns the tree."""
        proc = _git(self.root, "symbolic-ref", "--quiet", "--short", "HEAD")
        return proc.stdout.strip() if proc.returncode == 0 else self.head()

    def describe(self, sha: str) -> str:
        return self.git("log", "-1", "--format=%h %s", sha).strip()

    def dirty(self) -> bool:
        return bool(self.git("status", "--porcelain", "--untracked-files=no").strip())

    def path(self, name: str) -> Path:
        """A file in the repository's git directory (e.g. git bisect's BISECT_START)."""
        return self.root / self.git("rev-parse", "--git-path", name).strip()

    def bisecting(self) -> bool:
        return self.path("BISECT_START").exists()

    def checkout(self, sha: str) -> None:
        if self.head() != sha:
            self.git("checkout", "--quiet", "--detach", sha)

    def bisect_start(self, bad: str, good: str) -> Outcome:
        return _outcome(self, _git(self.root, "bisect", "start", bad, good))

    def bisect_mark(self, term: str, sha: str) -> Outcome:
        # the revision is named, so marking again after a crash marks the same one
        return _outcome(self, _git(self.root, "bisect", term, sha))

    def bisect_reset(self, to: str) -> None:
        self.git("bisect", "reset", to)


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False,
                          env={**os.environ, **_ENV}, stdin=subprocess.DEVNULL)


def _outcome(tree: Tree, proc: subprocess.CompletedProcess[str]) -> Outcome:
    said = proc.stdout + proc.stderr
    if found := _FIRST_BAD.search(said):
        return Outcome(first_bad=found.group(1))
    if "only 'skip'ped commits left" in said:
        return Outcome(candidates=tuple(_SHA.findall(said)))
    if proc.returncode != 0:
        words = said.strip().splitlines()
        raise BisectStopped(f"git bisect failed: {words[-1] if words else proc.returncode}")
    return Outcome(next=tree.head())


def hook_command(text: str, what: str) -> list[str]:
    """A hook as its argument vector (shell-like quoting, no shell); its program must exist."""
    argv = shlex.split(text)
    if not argv:
        raise BisectInputError(f"the {what} hook is empty")
    program = argv[0]
    found = str(Path(program).resolve()) if "/" in program else shutil.which(program)
    if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
        raise BisectInputError(f"the {what} hook {program!r} is not an executable file")
    return [found, *argv[1:]]


def run_hook(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
    """Run a hook in the tree with the bisect's variables; its output goes where ours goes."""
    try:
        return subprocess.run(list(argv), cwd=cwd, env={**os.environ, **env}, check=False,
                              stdin=subprocess.DEVNULL).returncode
    except OSError as exc:
        raise BisectStopped(f"cannot run hook {argv[0]}: {exc.strerror}") from None
