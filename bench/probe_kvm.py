"""What KVM offers a guest, read through the ioctls a VMM uses, judged by KVM's own CET rule."""

from __future__ import annotations

from typing import Any

from cetbench import arch
from cetbench.facts import KvmFacts, KvmSupported
from cetbench.hostview import HostView
from cetbench.probe_cpu import bit, leaves_from_native

# Module names under /sys/module that identify the KVM implementation; only the first two run
# guests on hardware virtualization (VMX/SVM), so only their timings are hardware timings.
KVM_IMPLEMENTATIONS = ("kvm_intel", "kvm_amd", "kvm_pvm")
HARDWARE_KVM = ("kvm_intel", "kvm_amd")

KVM_CET_RULE = (
    "KVM advertises SHSTK and IBT only when the host supports both CET_U and CET_S in IA32_XSS "
    "and XSAVES (Linux 6.18 kvm-x86-cet)"
)


def implementation(view: HostView) -> str | None:
    for name in KVM_IMPLEMENTATIONS:
        if view.is_dir(f"sys/module/{name}"):
            return name
    return None


def _verdict(sup: KvmSupported) -> str:
    offered = [n.upper() for n in ("shstk", "ibt") if getattr(sup, n)]
    absent = [(n.upper(), f) for n, f in (("shstk", arch.CPUID_SHSTK), ("ibt", arch.CPUID_IBT)) if not getattr(sup, n)]
    missing_xss = missing_xss_components(sup)
    if not absent:
        text = "KVM offers SHSTK and IBT"
    else:
        bits = " and ".join(f"{f.describe()}=0" for _, f in absent)
        names = " nor ".join(n for n, _ in absent) if not offered else absent[0][0]
        head = f"KVM offers {offered[0]} but not {names}" if offered else f"KVM offers neither {names}"
        text = f"{head}: KVM_GET_SUPPORTED_CPUID has {bits}"
        if missing_xss:
            text += f"; its supported XSS ({arch.CPUID_XSS_CET_U.describe()[:-4]}) lacks {' and '.join(missing_xss)}"
            text += f", and {KVM_CET_RULE}"
    if offered and missing_xss:
        text += f"; inconsistent with KVM's rule: {KVM_CET_RULE}"
    return text


def missing_xss_components(sup: KvmSupported) -> list[str]:
    """The CET XSS components KVM's supported CPUID lacks ("CET_U", "CET_S")."""
    return [n for n, have in (("CET_U", sup.xss_cet_u), ("CET_S", sup.xss_cet_s)) if not have]


def module_parameters(view: HostView, module: str | None) -> dict[str, str]:
    if module is None:
        return {}
    base = f"sys/module/{module}/parameters"
    out = {}
    for name in view.listdir(base):
        text, _ = view.read_text(f"{base}/{name}")
        if text is not None:
            out[name] = text.strip()
    return out


def reload_refusal(module: str | None, euid: int) -> str | None:
    """Why this process cannot reload `module` with other parameters (None: it can try)."""
    if module is None:
        return "no KVM module is loaded"
    if euid != 0:
        return f"reloading {module} needs root (modprobe -r {module}; modprobe {module} PARAM=...)"
    return None


def probe_kvm(native: dict[str, Any] | None, native_error: str | None, view: HostView, euid: int) -> KvmFacts:
    impl = implementation(view)
    params, refusal = module_parameters(view, impl), reload_refusal(impl, euid)
    present = view.exists("dev/kvm")
    hardware = (impl in HARDWARE_KVM) if impl else None
    unknown: dict[str, str] = {}
    kvm = (native or {}).get("kvm")
    error = None
    if not present:
        error = "/dev/kvm: No such file or directory"
    elif kvm is None:
        error = native_error or "the native KVM reader returned nothing"
        unknown["supported"] = error
    elif kvm.get("error"):
        error = kvm["error"]
    if error or kvm is None:
        return KvmFacts(device="/dev/kvm", present=present, openable=False, error=error, api_version=None,
                        implementation=impl, hardware=hardware, supported=KvmSupported(), offers_shstk=False,
                        offers_ibt=False, verdict=f"KVM unusable: {error}", unknown=unknown, parameters=params,
                        reload_refusal=refusal)
    leaves = leaves_from_native(kvm.get("supported_cpuid", []))
    sup = KvmSupported(
        shstk=bit(leaves, arch.CPUID_SHSTK) or False,
        ibt=bit(leaves, arch.CPUID_IBT) or False,
        xsaves=bit(leaves, arch.CPUID_XSAVES) or False,
        xss_cet_u=bit(leaves, arch.CPUID_XSS_CET_U) or False,
        xss_cet_s=bit(leaves, arch.CPUID_XSS_CET_S) or False,
    )
    return KvmFacts(device="/dev/kvm", present=True, openable=True, error=None, api_version=kvm.get("api_version"),
                    implementation=impl, hardware=hardware, supported=sup, offers_shstk=bool(sup.shstk),
                    offers_ibt=bool(sup.ibt), verdict=_verdict(sup), unknown=unknown, parameters=params,
                    reload_refusal=refusal)
