"""What the probe establishes about a host, typed: facts only, no decisions (those are plan.py).

The JSON form (`to_json`) is the stable probe document of the README ("Probe fields"): run
manifests embed it and CI reads it, so field names and order here are that contract. A fact the
probe cannot establish is None, with the reason in its section's `unknown` map.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = 1


@dataclass(frozen=True)
class CpuFacts:
    vendor: str | None
    family: int | None
    model: int | None
    stepping: int | None
    model_name: str | None
    microcode: str | None
    shstk: bool | None
    ibt: bool | None
    xsaves: bool | None
    xss_cet_u: bool | None
    xss_cet_s: bool | None
    raw: dict[str, str | None] = field(default_factory=dict)
    #: The host kernel's IA32_XSS (hex), read through /dev/cpu/0/msr; None (with the reason in
    #: `unknown`) without root or the msr module. KVM switches it around every entry of a guest
    #: whose XSS differs (docs/mechanisms.md §5).
    xss: str | None = None
    unknown: dict[str, str] = field(default_factory=dict)

    @property
    def is_amd(self) -> bool:
        return self.vendor == "AuthenticAMD"


@dataclass(frozen=True)
class KernelFacts:
    release: str | None
    version: str | None
    build_id: str | None
    cmdline: dict[str, str | bool | None]  # the boot options that matter: value, True (flag), None (absent)
    config: dict[str, str | None]  # "source" and each CONFIG_ name as y/m/n/unknown
    cpuinfo_flags: dict[str, bool | None]
    unknown: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KvmSupported:
    """KVM_GET_SUPPORTED_CPUID's CET bits."""

    shstk: bool | None = None
    ibt: bool | None = None
    xsaves: bool | None = None
    xss_cet_u: bool | None = None
    xss_cet_s: bool | None = None


@dataclass(frozen=True)
class KvmFacts:
    device: str
    present: bool
    openable: bool
    error: str | None
    api_version: int | None
    implementation: str | None  # kvm_intel, kvm_amd, kvm_pvm, ...
    hardware: bool | None  # hardware virtualization (VMX/SVM): only then are guest timings hardware timings
    supported: KvmSupported
    offers_shstk: bool
    offers_ibt: bool
    verdict: str
    unknown: dict[str, str] = field(default_factory=dict)
    #: The KVM module's parameters as /sys/module/<implementation>/parameters shows them.
    parameters: dict[str, str] = field(default_factory=dict)
    #: Why this process cannot reload the KVM module with other parameters; None when it can.
    reload_refusal: str | None = None

    @property
    def emulated(self) -> bool:
        """Guests run on a KVM that is not hardware virtualization: their timings are emulation's."""
        return self.hardware is False


@dataclass(frozen=True)
class PerfEvent:
    counts: bool
    state: str  # counted | not supported | not counted | unavailable
    note: str | None
    expands_to: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PerfFacts:
    binary: str | None
    version: str | None
    paranoid: int | None
    usable: bool
    events: dict[str, PerfEvent] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NoiseFacts:
    cpus: int
    governor: str | None
    boost: bool | None
    smt: bool | None
    isolated_cpus: str | None
    load_avg: list[float] | None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QemuFacts:
    """QEMU for the Linux guests (linux.* variants) as this host would run it (bench/probe_qemu.py)."""

    qemu: str | None  # its description; None when there is none
    accel: str  # kvm | tcg
    accel_reason: str | None  # why TCG, when it is
    #: per CET offer of the vCPU ("ibt", "shstk", "ibt+shstk"): QEMU's words refusing it, None when accepted
    refusals: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None  # why there is no QEMU to use


@dataclass(frozen=True)
class HostFacts:
    cpu: CpuFacts
    kernel: KernelFacts
    kvm: KvmFacts
    perf: PerfFacts
    noise: NoiseFacts
    qemu: QemuFacts | None = None  # None: not probed (a fixture host, the lab's guest)
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        return {"schema": doc.pop("schema"), **doc}
