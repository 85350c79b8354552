"""What a new user hit (issue: one owner per concept), each pinned by the behaviour that must hold:
one glob for every command, one line and exit 2 for bad input, whole ids and names when output
is not a terminal, one line per reason for variants with no numbers, an empty section that says
why, and the Python API taking a store URL."""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from cetbench import results
from tests.support.fuzz_oracle import check_cli
from tests.support.store import START, VariantSpec, make_bundle, measured, standard_variants

RUN_ID = "20261202T101112Z-a-rather-long-lab-host-name-0123456789-abcdef"


def cetbench(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as CI runs it: output to a pipe, an 80-column COLUMNS in the environment."""
    env = {k: v for k, v in os.environ.items() if k != "CETBENCH_STORE"}
    env.update(CETBENCH_HOME=str(home), COLUMNS="80")
    return subprocess.run([sys.executable, "-m", "cetbench", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cetbench: "), proc.stderr
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A data directory whose store holds three kernel builds of host.syscall (on and off), a run
    id too long for 80 columns, and a run where nothing CET-on was measured."""
    home = tmp_path / "home"
    bundles = []
    for i, label in enumerate(("v6.18", "v6.19", "v7.0")):
        rng = random.Random(i)
        specs = [measured("host.syscall[shstk=off]", rng), measured("host.syscall[shstk=on]", rng, base=1.2e-7)]
        bundles.append(make_bundle(tmp_path / f"b{i}", f"{RUN_ID}-{i}", specs, kernel_label=label,
                                   started=START + dt.timedelta(hours=i)))
    refused = [measured("host.signal[shstk=off]", random.Random(9), base=2e-6)] + [
        VariantSpec(f"host.{w}[shstk=on]", "unsupported", reason="kernel built without CONFIG_X86_USER_SHADOW_STACK",
                    refused_by="kernel") for w in ("syscall", "ctxswitch", "signal")]
    bundles.append(make_bundle(tmp_path / "off-only", "off-only-run", refused, kernel_label="no-cet",
                               started=START + dt.timedelta(hours=5)))
    ingest = cetbench(home, "ingest", *map(str, bundles))
    assert ingest.returncode == 0, ingest.stderr
    return home


def test_trend_selects_with_the_same_glob_as_run(home: Path) -> None:
    proc = cetbench(home, "trend", "--only", "host.syscall[shstk=*]", "--format", "text")
    assert proc.returncode == 0, proc.stderr
    assert "host.syscall[shstk=off]" in proc.stdout and "host.syscall[shstk=on]" in proc.stdout
    # and a pattern that matches nothing is one line naming what the store has
    line = one_line_error(cetbench(home, "trend", "--only", "host.nosuch[*]"), 2)
    assert "host.syscall[shstk=off]" in line


def test_python_api_takes_a_store_url(home: Path) -> None:
    url = f"sqlite:///{home / 'store.sqlite'}"
    frame = results.load(url, variants=["host.syscall[shstk=*]"])
    assert set(frame["variant"]) == {"host.syscall[shstk=off]", "host.syscall[shstk=on]"}
    counters = results.load_counters(url, run_ids=[f"{RUN_ID}-0"])
    assert "syscalls:sys_enter_getppid" in set(counters["event"])
    assert len(results.load_statuses(url, run_ids=["off-only-run"])) == 4


def test_list_keeps_whole_run_ids_in_a_pipe(home: Path) -> None:
    proc = cetbench(home, "list")
    assert proc.returncode == 0, proc.stderr
    for i in range(3):
        assert f"{RUN_ID}-{i}" in proc.stdout
    assert "…" not in proc.stdout


def test_compare_keeps_whole_variant_names_and_verdicts_in_a_pipe(home: Path) -> None:
    proc = cetbench(home, "compare", "--baseline", "v6.18", "--candidate", "v6.19")
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert "host.syscall[shstk=off]" in proc.stdout and "host.syscall[shstk=on]" in proc.stdout
    assert "…" not in proc.stdout


def test_overhead_with_nothing_to_pair_says_why_and_groups_the_reasons(home: Path) -> None:
    proc = cetbench(home, "overhead", "off-only-run")
    assert proc.returncode == 0, proc.stderr
    assert "no CET overhead to show: no CET-on variant was measured" in proc.stdout
    reason = "kernel built without CONFIG_X86_USER_SHADOW_STACK"
    lines = [ln for ln in proc.stdout.splitlines() if reason in ln]
    assert lines == [f"unsupported (kernel): {reason}: host.ctxswitch[shstk=on], host.signal[shstk=on], "
                     "host.syscall[shstk=on]"]


def test_resume_of_a_directory_that_is_not_a_bundle_is_one_line_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    line = one_line_error(cetbench(tmp_path / "home", "run", "--resume", str(junk)), 2)
    assert "not a cetbench bundle" in line and str(junk) in line


@pytest.mark.parametrize("args,code,words", [
    (("run", "--only", "host.nosuch*", "--no-store"), 2, "matches no variant; known variants: host.syscall"),
    (("explain", "host.syscall[shstk=maybe]"), 2, "shstk takes off|on"),
    (("ingest", "/nonexistent/bundle"), 2, "no such file or directory"),
    (("overhead", "--store", "postgresql://u:secret@127.0.0.1:1/x"), 3, "cannot reach store"),
    (("mark-good", "no-such-run"), 2, "no run 'no-such-run'"),
    (("compare", "--baseline", "nothing", "--candidate", "v6.18"), 2, "names no run"),
])
def test_bad_input_is_one_line_with_the_documented_code(home: Path, args: tuple[str, ...], code: int,
                                                        words: str) -> None:
    proc = cetbench(home, *args)
    if args[0] == "ingest":  # ingest reports each bad input on its line and exits 2
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr
        return
    line = one_line_error(proc, code)
    assert words in line and "secret" not in line


def test_run_summary_in_a_pipe_is_whole_and_has_one_line_per_reason(tmp_path: Path) -> None:
    from cetbench.plan import plan
    from cetbench.probe import collect
    from cetbench.workloads.table import select

    proc = cetbench(tmp_path / "home", "run", "--only", "host.syscall*", "--no-store", "--perf", "off",
                    *[f"--pyperf-arg={a}" for a in ("--processes", "1", "--values", "2", "--loops", "1000")])
    assert proc.returncode == 0, proc.stderr
    assert "host.syscall[shstk=off]" in proc.stdout and "…" not in proc.stdout
    decided = plan(collect(), select(["host.syscall*"]))
    for who, why in {r for d in decided.decisions for r in d.refusals}:
        names = [d.variant.name for d in decided.decisions if (who, why) in d.refusals]
        assert proc.stdout.count(f"unsupported ({who}): {why}: {', '.join(names)}") == 1


@pytest.mark.parametrize("argv,code,words", [
    (["compare", "--baseline", "v6.\udcff", "--candidate", "v6.18"], 2, "'v6.\\udcff' names no run"),
    (["mark-good", "run-\udcff"], 2, "no run 'run-\\udcff'"),
    (["list", "--host", "h\udcff"], 0, ""),
    (["trend", "--only", "host.\nsyscall*"], 2, "no stored samples of a variant matching host.\\nsyscall*"),
    (["ingest", "b-\udcff"], 0, ""),
])
def test_arguments_a_store_cannot_hold_end_as_one_line(tmp_path: Path, argv: list[str], code: int,
                                                       words: str) -> None:
    """Found by benchmarks/fuzz_inputs.py. Bytes that are not UTF-8 in an argument (Python holds them as
    surrogates) raised UnicodeEncodeError out of SQLite, and out of printing a bundle path; a newline in a
    pattern split the error line in two. Run in this process, with streams that encode as a real one's."""
    store = str(tmp_path / "store.sqlite")
    make_bundle(tmp_path / "b-\udcff", "odd-dir", standard_variants(seed=1, n=6))
    if argv[0] != "ingest":
        make_bundle(tmp_path / "b", "plain-dir", standard_variants(seed=1, n=6), kernel_label="v6.18")
        assert check_cli(["ingest", str(tmp_path / "b"), "--store", store], tmp_path).failure is None
    outcome = check_cli([*argv, "--store", store], tmp_path)
    assert (outcome.kind, outcome.failure) == (f"exit {code}", None), outcome
    assert words in outcome.detail, outcome.detail
