"""What KVM offers a guest, read through the ioctls a VMM uses, judged by KVM's own CET rule."""

from __future__ import annotations

from typing import Any

from cetbench import arch
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


def _verdict(sup: dict[str, bool]) -> str:
    offered = [n.upper() for n in ("shstk", "ibt") if sup[n]]
    absent = [(n.upper(), f) for n, f in (("shstk", arch.CPUID_SHSTK), ("ibt", arch.CPUID_IBT)) if not sup[n]]
    missing_xss = [n for n in ("CET_U", "CET_S") if not sup[f"xss_{n.lower()}"]]
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


def probe_kvm(native: dict[str, Any] | None, native_error: str | None, view: HostView) -> dict[str, Any]:
    impl = implementation(view)
    out: dict[str, Any] = {
        "device": "/dev/kvm",
        "present": view.exists("dev/kvm"),
        "openable": False,
        "error": None,
        "api_version": None,
        "implementation": impl,
        "hardware": (impl in HARDWARE_KVM) if impl else None,
        "supported": {"shstk": None, "ibt": None, "xsaves": None, "xss_cet_u": None, "xss_cet_s": None},
        "offers_shstk": False,
        "offers_ibt": False,
        "verdict": "",
        "unknown": {},
    }
    kvm = (native or {}).get("kvm")
    if not out["present"]:
        out["error"] = "/dev/kvm: No such file or directory"
    elif kvm is None:
        out["error"] = native_error or "the native KVM reader returned nothing"
        out["unknown"]["supported"] = out["error"]
    elif kvm.get("error"):
        out["error"] = kvm["error"]
    if out["error"]:
        out["verdict"] = f"KVM unusable: {out['error']}"
        return out
    assert kvm is not None
    out["openable"] = True
    out["api_version"] = kvm.get("api_version")
    leaves = leaves_from_native(kvm.get("supported_cpuid", []))
    sup = {
        "shstk": bit(leaves, arch.CPUID_SHSTK) or False,
        "ibt": bit(leaves, arch.CPUID_IBT) or False,
        "xsaves": bit(leaves, arch.CPUID_XSAVES) or False,
        "xss_cet_u": bit(leaves, arch.CPUID_XSS_CET_U) or False,
        "xss_cet_s": bit(leaves, arch.CPUID_XSS_CET_S) or False,
    }
    out["supported"] = sup
    out["offers_shstk"], out["offers_ibt"] = sup["shstk"], sup["ibt"]
    out["verdict"] = _verdict(sup)
    return out
