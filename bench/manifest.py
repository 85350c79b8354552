"""The facts a run manifest records about the host, kernel and suite (docs/bundle-format.md)."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cetbench import __version__
from cetbench.facts import HostFacts

REPO = Path(__file__).resolve().parent.parent


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname())[:32]
    return f"{stamp}-{host}-{secrets.token_hex(3)}"


def host_section(facts: HostFacts) -> dict[str, Any]:
    cpu = facts.cpu
    ident = "|".join(str(v) for v in (cpu.vendor, cpu.family, cpu.model, cpu.stepping, cpu.model_name))
    return {
        "hostname": socket.gethostname(),
        "cpu_vendor": cpu.vendor,
        "cpu_model_name": cpu.model_name,
        "cpu_family": cpu.family,
        "cpu_model": cpu.model,
        "cpu_stepping": cpu.stepping,
        "microcode": cpu.microcode,
        "fingerprint": hashlib.sha256(ident.encode()).hexdigest()[:16],
    }


def kernel_section(facts: HostFacts, label: str | None) -> dict[str, Any]:
    k = facts.kernel
    return {"release": k.release, "version": k.version, "build_id": k.build_id, "label": label}


def suite_section() -> dict[str, Any]:
    commit = None
    if (REPO / ".git").exists():
        proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=False, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
        commit = proc.stdout.strip() or None
    return {"version": __version__, "git_commit": commit}


def kvm_section(facts: HostFacts) -> dict[str, Any]:
    return {"implementation": facts.kvm.implementation, "hardware": facts.kvm.hardware}
