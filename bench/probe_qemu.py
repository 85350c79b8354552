"""Probe QEMU for the Linux guests: which one, which accelerator, and whether it accepts each CET vCPU.

Asking costs a few QEMU starts of a fraction of a second each (bench/lab/qemu.py cpu_refusal: the
machine built paused, then quit), so the plan can record a CET-on linux.* variant unsupported in QEMU's
own words before anything boots, and `cetbench probe` shows it.
"""

from __future__ import annotations

from cetbench.facts import KvmFacts, QemuFacts
from cetbench.lab.errors import LabError

#: The CET offers a Linux guest's vCPU can make (the vcet axis's values with CET on).
OFFERS = ("ibt", "shstk", "ibt+shstk")


def qemu_accel(kvm: KvmFacts) -> tuple[str, str | None]:
    """The accelerator QEMU runs a Linux guest with here, and why not KVM when it is TCG. KVM needs
    hardware virtualization: on a software KVM (kvm_pvm) QEMU did not boot a Debian kernel."""
    if not kvm.openable:
        return "tcg", f"KVM unusable: {kvm.error}"
    if kvm.emulated:
        return "tcg", f"{kvm.implementation} runs guests without VMX/SVM: QEMU uses TCG"
    return "kvm", None


def probe_qemu(kvm: KvmFacts) -> QemuFacts:
    from cetbench.lab.qemu import cpu_refusal, find_qemu

    accel, why = qemu_accel(kvm)
    found = find_qemu()
    if isinstance(found, str):
        return QemuFacts(None, accel, why, error=found)
    try:
        refusals = {offer: cpu_refusal(found, accel, frozenset(offer.split("+"))) for offer in OFFERS}
        return QemuFacts(found.description, accel, why, refusals)
    except LabError as exc:
        return QemuFacts(None, accel, why, error=f"{found.binary} does not run: {exc}")
