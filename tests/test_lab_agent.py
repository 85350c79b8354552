"""The lab's in-guest agent (workloads/lab), run here on the host: it reads the job file bench/lab/jobs.py
writes, counts tracepoints over a job's process tree, and frames its lines so bench/lab/serial.py reads
them back (same CRC on both sides). The emulated lab itself is tests/test_lab_boot.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cetbench.lab.jobs import LabJob, encode_jobs, result_from_line
from cetbench.lab.serial import parse_serial
from cetbench.workloads.build import build


@pytest.fixture(scope="module")
def agent() -> Path:
    return build("cetbench-lab-agent").path


def run_agent(agent: Path, *args: str) -> str:
    return subprocess.run([str(agent), *args], capture_output=True, text=True, timeout=60, check=True).stdout


def run_jobs(agent: Path, jobs: list[LabJob], tmp_path: Path) -> list:
    job_file = tmp_path / "jobs"
    job_file.write_text(encode_jobs(jobs))
    assert run_agent(agent, "count", str(job_file)).strip() == str(len(jobs))
    out = "".join(run_agent(agent, "run", str(job_file), str(i)) for i in range(len(jobs)))
    parsed = parse_serial(out)
    assert parsed.garbled == []
    lines = {ln.data["index"]: ln for ln in parsed.lines if ln.kind == "job"}
    starts = [ln for ln in parsed.lines if ln.kind == "start"]
    assert len(starts) == len(jobs)
    return [result_from_line(job, lines[i].data, None) for i, job in enumerate(jobs)]


def test_counts_a_tracepoint_over_the_job_and_keeps_its_json(agent, tmp_path):
    prog = str(build("host_syscall").path)
    job = LabJob("sys", (prog, "--iterations", "1234"),
                 events=("syscalls:sys_enter_getppid", "raw_syscalls:sys_enter if id == 110"))
    (result,) = run_jobs(agent, [job], tmp_path)
    if result.error and "perf_event_open" in result.error:
        pytest.skip(f"tracepoints cannot be counted here: {result.error}")
    assert result.error is None, result
    assert result.exit_code == 0
    assert result.record is not None and result.record["iterations"] == 1234
    # Exactly the loop's getppid calls: counting starts at the exec, not in the agent's fork.
    assert result.counts == {"syscalls:sys_enter_getppid": 1234, "raw_syscalls:sys_enter if id == 110": 1234}


def test_counts_include_forked_children(agent, tmp_path):
    prog = str(build("host_ctxswitch").path)
    job = LabJob("ctx", (prog, "--iterations", "300", "--cpu", "-1"), events=("syscalls:sys_enter_read",))
    (result,) = run_jobs(agent, [job], tmp_path)
    if result.error and "perf_event_open" in result.error:
        pytest.skip(f"tracepoints cannot be counted here: {result.error}")
    assert result.exit_code == 0, result
    # parent and peer each read once per round trip
    assert result.counts["syscalls:sys_enter_read"] >= 600


def test_failures_each_have_a_reason(agent, tmp_path):
    jobs = [
        LabJob("no-such-program", ("/nonexistent/prog",)),
        LabJob("hang", ("/bin/sleep", "30"), timeout_s=0.5),
        LabJob("killed", ("/bin/sh", "-c", "kill -SEGV $$")),
        LabJob("bad-event", ("/bin/true",), events=("nosuch:event",)),
        LabJob("exit-4", ("/bin/sh", "-c", 'echo noise; echo \'{"error": "x"}\'; exit 4')),
    ]
    by_id = {r.id: r for r in run_jobs(agent, jobs, tmp_path)}
    assert "cannot run /nonexistent/prog" in (by_id["no-such-program"].error or "")
    assert by_id["no-such-program"].exit_code is None
    assert "timed out after 0.5 s of guest time" in (by_id["hang"].error or "")
    assert by_id["killed"].signal == 11 and "killed by signal 11" in (by_id["killed"].error or "")
    assert "no tracepoint nosuch:event" in (by_id["bad-event"].error or "")
    assert by_id["bad-event"].exit_code == 0  # the job still ran; only its count is missing
    # a workload's own failure is its exit code and JSON, not a lab error
    assert by_id["exit-4"].exit_code == 4 and by_id["exit-4"].error is None
    assert by_id["exit-4"].record == {"error": "x"}
    assert by_id["exit-4"].output_tail == ["noise", '{"error": "x"}']


def test_file_dump_round_trips_text_and_hex(agent, tmp_path):
    text = tmp_path / "t"
    text.write_bytes(b'tab\there "quoted" \\ \xc3\xa9\n')
    binary = tmp_path / "b"
    binary.write_bytes(bytes(range(256)))
    out = run_agent(agent, "dump", "text", str(text), str(tmp_path / "missing"))
    out += run_agent(agent, "dump", "hex", str(binary))
    out += run_agent(agent, "dump", "exists", str(binary), str(tmp_path / "missing"))
    files = [ln.data for ln in parse_serial(out).lines]
    assert files[0]["data"].encode("latin-1") == text.read_bytes()
    assert files[1]["path"] == str(tmp_path / "missing").lstrip("/") and "error" in files[1]
    assert bytes.fromhex(files[2]["data"]) == binary.read_bytes()
    assert [f["exists"] for f in files[3:]] == [True, False]


def test_settle_idles_after_the_start_line(agent, tmp_path):
    import time

    job_file = tmp_path / "jobs"
    job_file.write_text(encode_jobs([LabJob("s", ("/bin/true",), settle_s=0.6), LabJob("n", ("/bin/true",))]))
    t0 = time.monotonic()
    run_agent(agent, "run", str(job_file), "0")
    settled = time.monotonic() - t0
    t0 = time.monotonic()
    run_agent(agent, "run", str(job_file), "1")
    plain = time.monotonic() - t0
    assert settled >= 0.6 > plain
