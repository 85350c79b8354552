"""A throwaway kernel tree and hooks for the bisect tests.

The tree has one commit per index; from `first_bad` on, its file `delay` says how many cycles a
build of it adds per op. The build hook follows the contract of bench/bisect.py: it writes
`--inject-cycles <delay>` into $CETBENCH_BISECT_RUN_ARGS, so the runs of a revision carry the
slowdown its tree says, and logs what it built; the reboot hook does nothing (the "build" is live
at once). A file `fail-once` beside the hooks makes the next build of a bisect step fail, once.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

BUILD = """#!/bin/sh
echo "$CETBENCH_BISECT_PHASE $CETBENCH_BISECT_REV" >> "{log}"
if [ "$CETBENCH_BISECT_PHASE" = bisect ] && [ -e "{fail_once}" ]; then rm "{fail_once}"; exit 1; fi
echo "--inject-cycles $(cat delay)" > "$CETBENCH_BISECT_RUN_ARGS"
"""


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def make_tree(root: Path, commits: int, first_bad: int, delay: int) -> list[str]:
    """The tree's commits, oldest first; commit `first_bad` is where the delay enters."""
    root.mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    shas = []
    for i in range(commits):
        (root / "delay").write_text(f"{delay if i >= first_bad else 0}\n")
        (root / "log").write_text(f"change {i}\n")
        git(root, "add", "-A")
        git(root, "commit", "--quiet", "-m", f"commit {i}")
        shas.append(git(root, "rev-parse", "HEAD"))
    return shas


@dataclass(frozen=True)
class Hooks:
    build: Path
    reboot: Path
    log: Path
    fail_once: Path

    def built(self) -> list[tuple[str, str]]:
        """(phase, revision) of every build, in order."""
        if not self.log.exists():
            return []
        return [tuple(line.split()) for line in self.log.read_text().splitlines()]  # type: ignore[misc]


def make_hooks(folder: Path) -> Hooks:
    folder.mkdir(parents=True, exist_ok=True)
    hooks = Hooks(folder / "build", folder / "reboot", folder / "built.log", folder / "fail-once")
    hooks.build.write_text(BUILD.format(log=hooks.log, fail_once=hooks.fail_once))
    hooks.reboot.write_text("#!/bin/sh\nexit 0\n")
    for hook in (hooks.build, hooks.reboot):
        hook.chmod(0o755)
    return hooks
