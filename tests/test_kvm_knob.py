"""bench/kvm_knob.py: a module parameter is set by reloading the module, checked, and restored."""

from __future__ import annotations

from pathlib import Path

import pytest

from cetbench import kvm_knob


@pytest.fixture
def fake_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """A /sys/module tree and a modprobe that records its calls and sets the parameter it loads with;
    `in use` in the module's refcnt makes `modprobe -r` fail as the kernel does with a VM running."""
    params = tmp_path / "kvm_intel" / "parameters"
    params.mkdir(parents=True)
    (params / "cet").write_text("Y\n")
    calls: list[tuple[str, ...]] = []

    def modprobe(*args: str) -> str | None:
        calls.append(args)
        if args[0] == "-r":
            return "modprobe: FATAL: Module kvm_intel is in use." if (tmp_path / "in-use").exists() else None
        for arg in args[1:]:
            name, _, value = arg.partition("=")
            (params / name).write_text({"0": "N", "1": "Y"}[value] + "\n")
        return None

    monkeypatch.setattr(kvm_knob, "SYS_MODULE", tmp_path)
    monkeypatch.setattr(kvm_knob, "_modprobe", modprobe)
    return calls


def test_a_parameter_is_reloaded_only_when_it_differs_and_restored(fake_host: list[tuple[str, ...]]) -> None:
    knobs = kvm_knob.Restorer()
    assert knobs.set("kvm_intel", "cet", "1") is None and fake_host == []  # already Y: no reload
    assert knobs.set("kvm_intel", "cet", "0") is None
    assert fake_host == [("-r", "kvm_intel"), ("kvm_intel", "cet=0")]
    assert kvm_knob.current("kvm_intel", "cet") == "N"
    assert knobs.restore() == []
    assert kvm_knob.current("kvm_intel", "cet") == "Y" and fake_host[-1] == ("kvm_intel", "cet=1")


def test_a_module_in_use_is_refused_in_modprobes_words(fake_host: list[tuple[str, ...]], tmp_path: Path) -> None:
    (tmp_path / "in-use").touch()
    err = kvm_knob.Restorer().set("kvm_intel", "cet", "0")
    assert err == "reloading kvm_intel with cet=0: modprobe: FATAL: Module kvm_intel is in use."
    assert kvm_knob.current("kvm_intel", "cet") == "Y"
