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

REPO = Path(__file__).resolve().parent.parent


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname())[:32]
    return f"{stamp}-{host}-{secrets.token_hex(3)}"


def host_section(probe: dict[str, Any]) -> dict[str, Any]:
    cpu = probe["cpu"]
    ident = "|".join(str(cpu.get(k)) for k in ("vendor", "family", "model", "stepping", "model_name"))
    return {
        "hostname": socket.gethostname(),
        "cpu_vendor": cpu.get("vendor"),
        "cpu_model_name": cpu.get("model_name"),
        "cpu_family": cpu.get("family"),
        "cpu_model": cpu.get("model"),
        "cpu_stepping": cpu.get("stepping"),
        "microcode": cpu.get("microcode"),
        "fingerprint": hashlib.sha256(ident.encode()).hexdigest()[:16],
    }


def kernel_section(probe: dict[str, Any], label: str | None) -> dict[str, Any]:
    k = probe["kernel"]
    return {"release": k["release"], "version": k["version"], "build_id": k["build_id"], "label": label}


def suite_section() -> dict[str, Any]:
    commit = None
    if (REPO / ".git").exists():
        proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=False, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
        commit = proc.stdout.strip() or None
    return {"version": __version__, "git_commit": commit}


def kvm_section(probe: dict[str, Any]) -> dict[str, Any]:
    kvm = probe["kvm"]
    return {"implementation": kvm.get("implementation"), "hardware": kvm.get("hardware")}
