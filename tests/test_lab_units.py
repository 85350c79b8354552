"""The emulated CET lab's host side without the emulator: private apt configuration, kernel resolution on
a fake archive index, refusal of kernels that cannot run the lab, the bochsrc, the job file, the serial
protocol (good, cut, mixed and panic logs), the initramfs writer, and probe files as a host tree."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from pathlib import Path

import pytest

from cetbench import arch
from cetbench.lab import apt, debian, image, jobs, kernel, probe_tree, run, serial
from cetbench.lab.bochs import Emulator, build_key
from cetbench.lab.boot import bochsrc
from cetbench.lab.errors import ArchiveError, KernelRefused, LabError
from cetbench.probe_kernel import parse_build_id

# ---- private apt ----------------------------------------------------------------------------------


def test_mirror_comes_from_the_systems_own_sources_never_security():
    deb822 = "Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: x\n\n" \
             "Types: deb\n# comment\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    one_line = "deb [arch=amd64] http://ftp.example.org/debian bookworm main\n"
    assert apt.detect_mirror([deb822, one_line]) == "http://mirror.example/debian"
    assert apt.detect_mirror(["# deb http://x/debian sid main\n", one_line]) == "http://ftp.example.org/debian"
    assert apt.detect_mirror(["deb https://packages.cloud.google.com/apt cloud main\n"]) is None


def test_sources_list_has_every_suite_and_source_only_where_asked():
    text = apt.sources_list("http://m/debian", ("trixie", "trixie-backports", "sid"), ("trixie",), "/k.gpg")
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert lines == [
        "deb [signed-by=/k.gpg] http://m/debian trixie main",
        "deb-src [signed-by=/k.gpg] http://m/debian trixie main",
        "deb [signed-by=/k.gpg] http://m/debian trixie-backports main",
        "deb [signed-by=/k.gpg] http://m/debian sid main",
    ]


def test_apt_options_redirect_every_system_directory(tmp_path):
    opts = apt.apt_options(tmp_path, "someone")
    pairs = dict(o.split("=", 1) for o in opts[1::2])
    assert all(flag == "-o" for flag in opts[::2])
    assert pairs["Dir::Etc::SourceList"] == str(tmp_path / "etc" / "sources.list")
    assert pairs["Dir::Etc::SourceParts"] == "/dev/null"  # the system's sources.list.d is never read
    assert pairs["Dir::Etc::PreferencesParts"] == "/dev/null"
    for key in ("Dir::State", "Dir::State::status", "Dir::Cache"):
        assert pairs[key].startswith(str(tmp_path)), key
    assert pairs["APT::Sandbox::User"] == "someone"


def test_private_apt_writes_its_tree_and_nothing_else(tmp_path):
    a = apt.PrivateApt(tmp_path / "apt", mirror="http://m/debian/")
    a.configure()
    assert a.mirror == "http://m/debian"
    assert (tmp_path / "apt/etc/sources.list").read_text().count("deb [signed-by=") == 3
    assert (tmp_path / "apt/state/dpkg-status").read_text() == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["apt"]


# ---- Debian versions and kernel resolution on a fake index ----------------------------------------


@pytest.mark.parametrize(("a", "b", "sign"), [
    ("7.2.13-1", "7.2.9-1", 1), ("6.19.6-2~bpo13+1", "6.19.6-2", -1), ("1:1.0", "2.0", 1),
    ("7.3.4-1~bpo13+1", "7.2.13-1", 1), ("1.0", "1.0-0", 0), ("1.0a", "1.0", 1), ("1.0~rc1", "1.0", -1),
])
def test_debian_version_order(a, b, sign):
    got = debian.compare_versions(a, b)
    assert (got > 0) - (got < 0) == sign


def stanza(name, version, depends="", filename=None):
    return {"Package": name, "Version": version, "Depends": depends, "SHA256": "0" * 64, "Size": "1",
            "Filename": filename or f"pool/main/l/linux/{name}_{version}_amd64.deb"}


def split_kernel(abi, version):
    """The newer Debian layout: a meta image package pinned to binary, modules and base packages."""
    return [
        stanza("linux-image-amd64", version, f"linux-image-{abi} (= {version}), linux-base-amd64 (= {version})"),
        stanza(f"linux-image-{abi}", version,
               f"linux-binary-{abi} (= {version}), linux-modules-{abi} (= {version}), "
               "initramfs-tools (>= 0.120) | linux-initramfs-tool, kmod"),
        stanza(f"linux-binary-{abi}", version, f"linux-base-{abi} (= {version})"),
        stanza(f"linux-modules-{abi}", version),
        stanza(f"linux-base-{abi}", version),
        stanza("linux-base-amd64", version),
    ]


FAKE_INDEX = {
    "trixie": [stanza("linux-image-amd64", "6.12.48-1", "linux-image-6.12.48+deb13-amd64 (= 6.12.48-1)"),
               stanza("linux-image-6.12.48+deb13-amd64", "6.12.48-1")],
    "trixie-backports": [
        *split_kernel("7.0.4+deb13-amd64", "7.0.4-1~bpo13+1"),
        *split_kernel("7.3.4+deb13-amd64", "7.3.4-1~bpo13+1"),
        # the older layout: one big image package
        stanza("linux-image-6.18.5+deb13-amd64", "6.18.5-1~bpo13+1"),
    ],
    "sid": split_kernel("7.2.13+deb14-amd64", "7.2.13-1"),
}


def names(resolved):
    return [(suite, st["Package"], st["Version"]) for suite, st in resolved]


def test_newest_kernel_of_a_suite_and_every_package_of_its_build():
    meta = debian.newest_kernel_meta(FAKE_INDEX["trixie-backports"])
    assert meta is not None and meta["Version"] == "7.3.4-1~bpo13+1"
    got = debian.kernel_package_set(FAKE_INDEX, "trixie-backports", "linux-image-amd64", meta["Version"])
    assert [n for _, n, _ in names(got)] == [
        "linux-base-7.3.4+deb13-amd64", "linux-base-amd64", "linux-binary-7.3.4+deb13-amd64",
        "linux-image-7.3.4+deb13-amd64", "linux-image-amd64", "linux-modules-7.3.4+deb13-amd64"]
    assert {v for _, _, v in names(got)} == {"7.3.4-1~bpo13+1"}  # never a part of the 7.0.4 build


def test_a_suite_without_a_new_enough_kernel_has_none():
    assert debian.newest_kernel_meta(FAKE_INDEX["trixie"]) is None  # 6.12 < 6.18


def test_a_package_name_resolves_in_any_suite_and_the_old_layout_alone():
    got = debian.kernel_package_set(FAKE_INDEX, None, "linux-image-6.18.5+deb13-amd64")
    assert names(got) == [("trixie-backports", "linux-image-6.18.5+deb13-amd64", "6.18.5-1~bpo13+1")]
    got = debian.kernel_package_set(FAKE_INDEX, None, "linux-image-7.2.13+deb14-amd64", "7.2.13-1")
    assert {s for s, _, _ in names(got)} == {"sid"}


def test_a_missing_pinned_part_is_named():
    index = {"sid": [stanza("linux-image-amd64", "7.2.13-1", "linux-image-7.2.13+deb14-amd64 (= 7.2.13-1)")]}
    with pytest.raises(LookupError, match=r"needs linux-image-7.2.13\+deb14-amd64 \(= 7.2.13-1\)"):
        debian.kernel_package_set(index, "sid", "linux-image-amd64")
    with pytest.raises(LookupError, match=r"no package linux-image-9\.9-amd64"):
        debian.kernel_package_set(index, None, "linux-image-9.9-amd64")


def test_stanzas_and_source_checksums_parse():
    text = ("Package: bochs\nVersion: 3.0+dfsg-1\nDirectory: pool/main/b/bochs\nChecksums-Sha256:\n"
            " aa 10 bochs_3.0+dfsg-1.dsc\n bb 20 bochs_3.0+dfsg.orig.tar.xz\n\nPackage: other\nVersion: 1\n")
    st = debian.parse_stanzas(text)
    assert [s["Package"] for s in st] == ["bochs", "other"]
    assert debian.source_files(st[0]) == {"bochs_3.0+dfsg-1.dsc": "aa", "bochs_3.0+dfsg.orig.tar.xz": "bb"}


@pytest.mark.parametrize(("spec", "kind"), [
    ("sid", "suite"), ("trixie-backports", "suite"), ("linux-image-7.2.13+deb14-amd64", "package"),
    ("linux-image-amd64=7.2.13-1", "package"), ("./kernels/x", "path"), ("/tmp", "path"),
])
def test_kernel_spec_kinds(spec, kind):
    assert kernel.spec_kind(spec) == kind


def test_an_unknown_kernel_spec_says_what_is_accepted():
    with pytest.raises(LabError, match=r"neither a suite .* a package name .* nor an existing path"):
        kernel.spec_kind("bookworm-of-doom")


class OfflineApt(apt.PrivateApt):
    """A private apt whose archive cannot be reached."""

    def run(self, tool, *args, cwd=None, timeout=900.0):
        raise ArchiveError("Err:1 http://m/debian sid InRelease: Could not resolve 'm'")


def test_no_archive_names_the_package_and_how_to_work_offline(tmp_path):
    with pytest.raises(ArchiveError) as err:
        kernel.get_kernel("sid", cache=tmp_path, apt=OfflineApt(tmp_path / "apt", mirror="http://m/debian"))
    msg = str(err.value)
    assert "linux-image-amd64 of sid" in msg and "cannot be reached" in msg
    assert "directory holding that kernel's .deb files" in msg and "unpacked kernel" in msg
    assert "\n" not in msg


# ---- refusing kernels that cannot run the lab ------------------------------------------------------

GOOD_CONFIG = ("# Linux/x86 7.2.13 Kernel Configuration\nCONFIG_X86_KERNEL_IBT=y\nCONFIG_X86_USER_SHADOW_STACK=y\n"
               "CONFIG_KVM_INTEL=m\n")


def test_a_cet_kernel_passes():
    kernel.check_kernel("7.2.13+deb14-amd64", GOOD_CONFIG)


def test_an_old_kernel_is_refused_quoting_its_config_header():
    cfg = GOOD_CONFIG.replace("7.2.13", "6.12.48")
    with pytest.raises(KernelRefused, match=r'Linux 6.12.48\+deb13-amd64 is older than 6.18.*'
                                            r'"# Linux/x86 6.12.48 Kernel Configuration"'):
        kernel.check_kernel("6.12.48+deb13-amd64", cfg)


def test_a_kernel_without_cet_or_kvm_intel_is_refused_with_the_lines():
    cfg = ("# Linux/x86 6.18.0 Kernel Configuration\n# CONFIG_X86_USER_SHADOW_STACK is not set\n"
           "CONFIG_X86_KERNEL_IBT=y\n")
    with pytest.raises(KernelRefused) as err:
        kernel.check_kernel("6.18.0", cfg)
    msg = str(err.value)
    assert 'needs CONFIG_X86_USER_SHADOW_STACK=y, config says "# CONFIG_X86_USER_SHADOW_STACK is not set"' in msg
    assert "needs CONFIG_KVM_INTEL=y or CONFIG_KVM_INTEL=m, config has no CONFIG_KVM_INTEL line" in msg
    assert "X86_KERNEL_IBT" not in msg


def unpacked_kernel(root: Path, release: str, config: str, split: bool = True) -> Path:
    if split:
        mods = root / "usr/lib/modules" / release
        mods.mkdir(parents=True)
        (mods / "vmlinuz").write_bytes(b"kernel")
        (mods / "config").write_text(config)
    else:
        (root / "boot").mkdir(parents=True)
        (root / "boot" / f"vmlinuz-{release}").write_bytes(b"kernel")
        (root / "boot" / f"config-{release}").write_text(config)
        mods = root / "lib/modules" / release
        mods.mkdir(parents=True)
    for sub in ("kernel/arch/x86/kvm/kvm.ko.xz", "kernel/drivers/net/big.ko.xz"):
        (mods / sub).parent.mkdir(parents=True, exist_ok=True)
        (mods / sub).write_bytes(b"module")
    return root


@pytest.mark.parametrize("split", [True, False])
def test_a_kernel_path_in_either_layout(tmp_path, split):
    root = unpacked_kernel(tmp_path / "k", "7.2.13+deb14-amd64", GOOD_CONFIG, split)
    k = kernel.get_kernel(str(root), cache=tmp_path / "cache")
    assert (k.release, k.origin, k.root) == ("7.2.13+deb14-amd64", "path", root)
    assert k.vmlinuz.read_bytes() == b"kernel" and k.config.read_text() == GOOD_CONFIG
    assert (k.modules_dir / "kernel/arch/x86/kvm/kvm.ko.xz").exists()


def test_a_kernel_cached_with_fewer_modules_than_the_lab_uses_is_unpacked_again(tmp_path):
    import shutil
    import subprocess
    release = "7.2.13+deb14-amd64"
    tree = unpacked_kernel(tmp_path / "pkg", release, GOOD_CONFIG)
    msr_ko = Path("usr/lib/modules", release, "kernel/arch/x86/kernel/msr.ko.xz")
    (tree / msr_ko).parent.mkdir(parents=True)
    (tree / msr_ko).write_bytes(b"msr module")
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(f"Package: linux-image-{release}\nVersion: 7.2.13-1\n"
                                             "Architecture: amd64\nMaintainer: t <t@t>\nDescription: t\n")
    (tmp_path / "debs").mkdir()
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(tree), str(tmp_path / "debs" / "k.deb")], check=True,
                   capture_output=True)
    first = kernel.get_kernel(str(tmp_path / "debs"), cache=tmp_path / "cache")
    cached = first.root.parent
    assert (first.root / msr_ko).read_bytes() == b"msr module"
    assert not (first.root / "usr/lib/modules" / release / "kernel/drivers").exists()  # pruned
    # as an older cetbench left it: pruned to fewer module dirs, with no record of which
    meta = json.loads((cached / "kernel.json").read_text())
    (cached / "kernel.json").write_text(json.dumps({"packages": meta["packages"]}))
    shutil.rmtree(first.root / "usr/lib/modules" / release / "kernel/arch/x86/kernel")
    again = kernel.get_kernel(str(tmp_path / "debs"), cache=tmp_path / "cache")
    assert again.root == first.root and (again.root / msr_ko).read_bytes() == b"msr module"
    assert json.loads((cached / "kernel.json").read_text())["kept"] == list(kernel.KEPT_MODULE_DIRS)


def test_a_kernel_path_without_cet_is_refused(tmp_path):
    root = unpacked_kernel(tmp_path / "k", "7.2.13+deb14-amd64", GOOD_CONFIG.replace("IBT=y", "IBT=n"))
    with pytest.raises(KernelRefused, match='CONFIG_X86_KERNEL_IBT=y, config says "CONFIG_X86_KERNEL_IBT=n"'):
        kernel.get_kernel(str(root), cache=tmp_path / "cache")


def test_the_cache_keeps_only_what_the_lab_uses(tmp_path):
    src = unpacked_kernel(tmp_path / "full", "7.2.13+deb14-amd64", GOOD_CONFIG)
    kernel._prune(src, tmp_path / "kept")
    kept = sorted(str(p.relative_to(tmp_path / "kept")) for p in (tmp_path / "kept").rglob("*") if p.is_file())
    base = "usr/lib/modules/7.2.13+deb14-amd64"
    assert kept == [f"{base}/config", f"{base}/kernel/arch/x86/kvm/kvm.ko.xz", f"{base}/vmlinuz"]


# ---- emulator, boot medium, bochsrc ----------------------------------------------------------------


def test_bochs_build_key_changes_with_each_input():
    base = ({"a.tar.xz": "11"}, [b"patch"], ("--with-nogui",), "g++ 12")
    key = build_key(*base)
    assert key == build_key(*base)
    assert key != build_key({"a.tar.xz": "12"}, *base[1:])
    assert key != build_key(base[0], [b"patch2"], *base[2:])
    assert key != build_key(base[0], [], *base[2:])  # the unpatched build never shares a cache entry
    assert key != build_key(*base[:2], ("--with-nogui", "--enable-debugger"), base[3])
    assert key != build_key(*base[:3], "g++ 13")


def test_our_bochs_patch_says_what_it_fixes_and_where_upstream_did():
    from cetbench.lab.bochs import PATCH
    text = PATCH.read_text()
    header = text[: text.index("--- a/")]
    assert "XCOMP_BV" in header and "f59ff867d" in header and "cpu/xsave.cc" in header


def test_bochsrc_is_the_headless_lab_configuration(tmp_path):
    emu = Emulator(binary=Path("/b/bin/bochs"), share=Path("/b/share"), rom=Path("/r/BIOS-bochs-latest"),
                   vga_rom=Path("/r/vgabios.bin"), version="3.0+dfsg-1", patched=True)
    rc = bochsrc(emu, Path("/i/lab.iso"), Path("/w/serial.log"), Path("/w/bochs.log"))
    lines = set(rc.splitlines())
    for want in ("display_library: nogui", "cpu: model=tigerlake, count=1, ips=100000000",
                 "memory: guest=1024, host=1024", "pci: enabled=1, chipset=i440fx",
                 'ata0-master: type=cdrom, path="/i/lab.iso", status=inserted', "boot: cdrom",
                 'com1: enabled=1, mode=file, dev="/w/serial.log"', "panic: action=fatal",
                 'romimage: file="/r/BIOS-bochs-latest", options=fastboot'):
        assert want in lines, want
    assert any(ln.startswith("clock: sync=none, time0=") for ln in lines)
    assert not any("debug" in ln and "action" not in ln for ln in lines)


def test_kernel_cmdline_has_the_console_and_the_determinism_options():
    words = image.KERNEL_CMDLINE.split()
    for w in ("console=ttyS0,115200", "mitigations=off", "nokaslr", "tsc=reliable", "no_timer_check",
              "clearcpuid=rdrand,rdseed", "norandmaps"):
        assert w in words


def read_newc(data: bytes) -> dict[str, tuple[int, bytes]]:
    """An independent reader of the newc format: name -> (mode, data)."""
    out, pos = {}, 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, data[pos: pos + size])
        pos = (pos + size + 3) & ~3


def test_initramfs_archive_holds_files_dirs_and_console(tmp_path):
    files = {"bin/busybox": (b"\x7fELF...", 0o755), "etc/cetbench/jobs": (b"job a\n", 0o644)}
    got = read_newc(image.cpio_of(files, with_skeleton=True))
    assert got["bin/busybox"] == (0o100755, b"\x7fELF...")
    assert got["etc/cetbench/jobs"][1] == b"job a\n"
    assert got["etc/cetbench"][0] & 0o170000 == 0o040000
    assert got["dev/console"][0] & 0o170000 == 0o020000
    assert got["bin/sh"] == (0o120777, b"busybox")
    assert image.cpio_of(files, True) == image.cpio_of(dict(reversed(files.items())), True)  # reproducible


def elf64(*p_types: int) -> bytes:
    """A minimal ELF64 header followed by program headers of the given types."""
    header = bytearray(64)
    header[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", header, 0x20, 64)  # e_phoff
    struct.pack_into("<HH", header, 0x36, 56, len(p_types))  # e_phentsize, e_phnum
    return bytes(header) + b"".join(struct.pack("<I", t) + bytes(52) for t in p_types)


def test_static_busybox_check_reads_the_program_headers():
    pt_load, pt_interp = 1, 3
    assert image.is_static_elf(elf64(pt_load, pt_load))
    assert not image.is_static_elf(elf64(pt_load, pt_interp))
    assert not image.is_static_elf(b"#!/bin/sh\n")


def test_modules_are_decompressed_for_insmod(tmp_path):
    import lzma
    (tmp_path / "kvm.ko.xz").write_bytes(lzma.compress(b"ELF-module"))
    (tmp_path / "irqbypass.ko.gz").write_bytes(gzip.compress(b"ELF-2"))
    assert image.decompress_module(tmp_path / "kvm") == (b"ELF-module", "kvm.ko.xz")
    assert image.decompress_module(tmp_path / "irqbypass") == (b"ELF-2", "irqbypass.ko.gz")
    with pytest.raises(LabError, match="no module kvm-intel"):
        image.decompress_module(tmp_path / "kvm-intel")


def test_image_programs_give_paths_inside_the_image():
    from cetbench.native import variant_command
    from cetbench.workloads.table import by_name
    cmd = variant_command(by_name("guest.vmexit.pio[cet=ibt+shstk]"), image.ImagePrograms(), cpu=0)
    assert cmd[:5] == ["/bin/cetbench-vmm", "--guest", "/lib/cetbench/cetbench-guest.bin", "--workload", "pio"]
    assert image.image_path("host_syscall") == "/bin/host_syscall"
    assert image.JOB_FILE == "etc/cetbench/jobs"
    init = image.INIT_SCRIPT.read_text()
    assert f"J=/{image.JOB_FILE}" in init
    agent_h = (image.WORKLOADS_DIR / "lab" / "agent.h").read_text()
    assert f'"/{image.MODULE_DIR}/kvm-intel.ko"' in agent_h


# ---- job file -------------------------------------------------------------------------------------


def test_job_file_encodes_every_field():
    text = jobs.encode_jobs([
        jobs.LabJob("a", ("/bin/x", "--opt", "two words"), events=("kvm:kvm_exit if exit_reason == 10",
                                                                    "kvm:kvm_fpu"), timeout_s=2.5,
                    kvm_intel={"cet": "0"}),
        jobs.LabJob("b", ("/bin/y",), kvm_intel={}),
    ])
    assert text.splitlines() == [
        "job a", "timeout 2.5", "kvm_intel cet=0", "event kvm:kvm_exit", "filter exit_reason == 10",
        "event kvm:kvm_fpu", "arg /bin/x", "arg --opt", "arg two words", "end",
        "job b", "timeout 60", "kvm_intel", "arg /bin/y", "end",
    ]


@pytest.mark.parametrize(("job", "why"), [
    (jobs.LabJob("a", ("bin/x",)), "absolute path"),
    (jobs.LabJob("a", ("/bin/x", "line\nbreak")), "newlines"),
    (jobs.LabJob("a", ("/bin/x",), events=("kvm_exit",)), "subsys:name"),
    (jobs.LabJob("a", ("/bin/x",), events=("kvm:kvm_exit if ",)), "subsys:name"),
    (jobs.LabJob("a", ("/bin/x",), events=("kvm:a", "kvm:a")), "twice"),
    (jobs.LabJob("a", ("/bin/x",), kvm_intel={"cet": "0 nested=1"}), "single words"),
    (jobs.LabJob("a b", ("/bin/x",)), "job id"),
])
def test_job_file_refuses_what_the_agent_could_not_read(job, why):
    with pytest.raises(LabError, match=why):
        jobs.encode_jobs([job])


def test_duplicate_job_ids_are_refused():
    with pytest.raises(LabError, match="unique: a"):
        jobs.encode_jobs([jobs.LabJob("a", ("/bin/x",)), jobs.LabJob("a", ("/bin/y",))])


# ---- serial protocol ------------------------------------------------------------------------------


def framed(kind: str, obj: dict) -> str:
    body = json.dumps(obj, separators=(",", ":"))
    return f"{serial.TAG} {kind} {zlib.crc32(body.encode()):08x} {body}"


JOB_A = jobs.LabJob("a", ("/bin/x",), events=("kvm:kvm_exit if exit_reason == 10",))
JOB_B = jobs.LabJob("b", ("/bin/y",))
RESULT_A = {"id": "a", "index": 1, "exit_code": 0, "signal": None, "timed_out": False, "guest_s": 0.5,
            "record": '{"iterations": 10, "cet_active": "ibt+shstk"}', "output_tail": ["x"],
            "counts": {"kvm:kvm_exit if exit_reason == 10": 12}, "event_errors": {}, "error": None,
            "kvm_intel": {"cet": "Y"}}


def test_framed_lines_are_found_among_kernel_messages():
    log = "\r\n".join([
        "[    0.000000] Linux version 7.2.13",
        framed("mark", {"name": "init-start", "uptime": 1.9}),
        "[    5.1] some kernel line" + framed("start", {"id": "a", "index": 1}),  # glued to kernel text
        framed("job", RESULT_A),
        "",
    ])
    got = serial.parse_serial(log)
    assert [ln.kind for ln in got.lines] == ["mark", "start", "job"]
    assert got.garbled == [] and got.panic is None
    result = jobs.result_from_line(JOB_A, got.lines[2].data, None)
    assert result.record == {"iterations": 10, "cet_active": "ibt+shstk"}
    assert result.counts == {"kvm:kvm_exit if exit_reason == 10": 12}  # keyed as the LabJob gave it
    assert result.kvm_intel == {"cet": "Y"} and result.error is None


def test_a_cut_or_mixed_line_is_garbled_never_half_read():
    good = framed("job", RESULT_A)
    cut = good[: len(good) // 2]
    mixed = good[:60] + "[ 7.0] kvm: message" + good[60:]
    flipped = good.replace('"exit_code":0', '"exit_code":1')  # same length, CRC no longer matches
    got = serial.parse_serial("\n".join([cut, mixed, flipped, f"{serial.TAG} job nothex {{}}"]) + "\n")
    assert got.lines == []
    assert [g.line_no for g in got.garbled] == [1, 2, 3, 4]
    assert all("CRC" in g.why for g in got.garbled[:3])


def test_results_of_a_lab_that_panicked_mid_job():
    log = "\n".join([
        framed("start", {"id": "a", "index": 0}), framed("job", {**RESULT_A, "index": 0}),
        framed("start", {"id": "b", "index": 1}),
        "[   12.3] Kernel panic - not syncing: Fatal exception in interrupt",
        "[   12.3] ---[ end Kernel panic - not syncing: Fatal exception in interrupt ]---",
    ])
    got = serial.parse_serial(log)
    assert got.panic == "Kernel panic - not syncing: Fatal exception in interrupt"
    ended = "the guest kernel panicked"
    c = jobs.LabJob("c", ("/bin/z",))
    a, b, c_result = run.collect_results([JOB_A, JOB_B, c], got.lines, [], ended)
    assert a.exit_code == 0 and a.error is None  # finished before the panic: kept
    assert b.exit_code is None and b.error == f"the lab ended during this job: {ended}"
    assert c_result.error == f"not run: the lab ended before this job ({ended})"


def test_a_garbled_result_line_is_blamed_on_its_job():
    log = "\n".join([framed("start", {"id": "a", "index": 0}), framed("job", {**RESULT_A, "index": 0})[:-9]]) + "\n"
    got = serial.parse_serial(log)
    (a,) = run.collect_results([JOB_A], got.lines, got.garbled, None)
    assert a.error == "its result line (serial log line 2) was garbled: CRC mismatch: the line was cut or mixed"


def test_json_nested_too_deep_or_with_a_huge_integer_is_garbled_not_raised():
    # Found by the lab fuzz target: a CRC that checks out over JSON the parser gives up on (RecursionError,
    # or ValueError beyond 4300 digits, not a JSONDecodeError) escaped the follower.
    deep = "[" * 100_000 + "]" * 100_000
    body = '{"name":"a","uptime":' + "9" * 5000 + "}"
    log = "\n".join([f"{serial.TAG} mark {zlib.crc32(b.encode()):08x} {b}" for b in (deep, body)]) + "\n"
    got = serial.parse_serial(log)
    assert got.lines == []
    assert [(g.line_no, g.why.split(":")[0]) for g in got.garbled] == [(1, "not JSON"), (2, "not JSON")]
    assert "nested too deep" in got.garbled[0].why


def test_panic_words_inside_an_agent_line_are_not_a_kernel_panic():
    # Found by the lab fuzz target: a workload printing the words (kept in output_tail) ended the lab as a panic.
    said = framed("job", {**RESULT_A, "output_tail": ["Kernel panic - not syncing: what the test prints"]})
    assert serial.parse_serial(said + "\n").panic is None
    # a real panic glued before an agent line, or cut into one, is still one
    glued = "[ 9.1] Kernel panic - not syncing: Fatal exception " + framed("mark", {"name": "x", "uptime": 1})
    assert serial.parse_serial(glued + "\n").panic == "Kernel panic - not syncing: Fatal exception"
    cut = said[:60] + "\n[ 9.1] Kernel panic - not syncing: Oops\n"
    assert serial.parse_serial(cut).panic == "Kernel panic - not syncing: Oops"


@pytest.mark.parametrize("index", [True, -1, "1", 1.0, None, [1]])
def test_a_job_line_without_a_job_index_is_garbled_and_blamed_on_the_job(index):
    # Found by the lab fuzz target: `"index": true` was job 1's result (a bool is an int to isinstance).
    log = "\n".join([framed("start", {"id": "a", "index": 1}), framed("job", {**RESULT_A, "index": index})]) + "\n"
    got = serial.parse_serial(log)
    assert [ln.kind for ln in got.lines] == ["start"] and got.garbled[0].line_no == 2
    (_, a) = run.collect_results([JOB_B, JOB_A], got.lines, got.garbled, None)
    assert a.error == f"its result line (serial log line 2) was garbled: its job index {index!r} is not a number >= 0"


def file_line(obj: dict) -> str:
    return framed("file", obj)


@pytest.mark.parametrize(("obj", "why"), [
    ({"path": "", "data": "x"}, "is not a file name"),
    ({"path": 5, "data": "x"}, "is not a file name"),
    ({"path": "/etc/hostname", "data": "x"}, "not a relative path"),
    ({"path": "proc/../../x", "data": "x"}, "not a relative path"),
    ({"path": "proc//cpuinfo", "data": "x"}, "not a relative path"),
    ({"path": "a\x00b", "data": "x"}, "a character the agent does not send"),
    ({"path": "\udcff", "data": "x"}, "a character the agent does not send"),
    ({"path": "x" * 300, "data": "x"}, "too long or too deep"),
    ({"path": "/".join(["d"] * 2000), "data": "x"}, "too long or too deep"),
    ({"path": "boot/config-7.2", "data": "x"}, "the guest's /boot is never sent"),
    ({"path": "proc/cpuinfo", "data": 5}, "not text"),
    ({"path": "proc/cpuinfo", "exists": "yes"}, "not true or false"),
    ({"path": "sys/kernel/notes", "encoding": "text", "data": "GNU"}, "is not hex"),
    ({"path": "dev/cpu/0/msr", "offset": 2**64, "data": "00" * 8}, "is not in 0..0x1fff"),
    ({"path": "dev/cpu/0/msr", "offset": True, "data": "00" * 8}, "is not in 0..0x1fff"),
    ({"path": "dev/cpu/0/msr", "offset": "0xda0", "data": "00" * 8}, "is not in 0..0x1fff"),
    ({"path": "dev/cpu/0/msr", "offset": 0xDA0, "data": "00"}, "only sent with the 8 bytes of an MSR"),
    ({"path": "proc/cpuinfo", "offset": 0, "data": "00" * 8}, "only sent with the 8 bytes of an MSR"),
])
def test_a_file_line_the_probe_tree_cannot_hold_is_garbled_never_written(tmp_path, obj, why):
    # Found by the lab fuzz target: such paths raised out of write_bundle (NUL, ENAMETOOLONG, RecursionError
    # in mkdir, non-hex for fromhex, an offset of 2^64 for ljust) or lost the whole run to one LabError.
    got = serial.parse_serial(file_line({"path": "proc/cmdline", "data": "ro\n"}) + "\n" + file_line(obj) + "\n")
    assert [g.line_no for g in got.garbled] == [2] and why in got.garbled[0].why
    files = run.probe_files_from(got.lines, _kernel(tmp_path))
    probe_tree.write_probe_tree(files, tmp_path / "tree")
    assert sorted(files) == ["boot/config-7.2.13+deb14-amd64", "proc/cmdline"]


def test_a_file_where_another_line_put_a_directory_is_garbled(tmp_path):
    lines = [file_line({"path": "proc/cpuinfo", "data": "x"}), file_line({"path": "proc", "data": "y"}),
             file_line({"path": "proc/cpuinfo/z", "data": "z"}), file_line({"path": "proc/cpuinfo", "data": "again"})]
    got = serial.parse_serial("\n".join(lines) + "\n")
    assert [(g.line_no, g.why) for g in got.garbled] == [
        (2, "proc is a directory (serial log line 1), not a file"),
        (3, "proc/cpuinfo is a file (serial log line 1), not a directory")]
    files = run.probe_files_from(got.lines, _kernel(tmp_path))
    probe_tree.write_probe_tree(files, tmp_path / "tree")
    assert files["proc/cpuinfo"] == "again"  # the same file twice: the later line, as before


def _kernel(tmp_path):
    config = tmp_path / "config"
    config.write_text(GOOD_CONFIG)
    return kernel.Kernel(release="7.2.13+deb14-amd64", vmlinuz=tmp_path / "vmlinuz", modules_dir=tmp_path,
                         config=config, origin="path", spec=str(tmp_path), vmlinuz_sha256="0", root=tmp_path)


def test_an_incremental_follower_sees_each_line_once_even_split_mid_line():
    text = framed("mark", {"name": "a", "uptime": 1}) + "\n" + framed("mark", {"name": "b", "uptime": 2}) + "\n"
    f = serial.SerialFollower()
    seen = []
    for i in range(0, len(text), 7):
        seen += [ln.data["name"] for ln in f.feed(text[i:i + 7], float(i))]
    assert seen == ["a", "b"] and f.garbled == []


def test_a_killed_machines_last_line_without_newline_is_read():
    f = serial.SerialFollower()
    assert f.feed(framed("mark", {"name": "x", "uptime": 1})) == []
    assert [ln.kind for ln in f.finish()] == ["mark"]


@pytest.mark.parametrize(("change", "why"), [
    ({"exit_code": "0"}, "exit_code is '0', not an exit status 0-255 or null"),
    ({"exit_code": True}, "exit_code is True, not an exit status 0-255 or null"),
    ({"signal": -3}, "signal is -3, not a signal number or null"),
    ({"timed_out": "yes"}, "timed_out is 'yes', not true or false"),
    ({"guest_s": float("nan")}, "guest_s is nan, not seconds or null"),
    ({"record": {"iterations": 1}}, "record is {'iterations': 1}, not the workload's JSON line as text, or null"),
    ({"output_tail": [1, None]}, "output_tail is [1, None], not a list of lines"),
    ({"counts": {"kvm:kvm_exit if exit_reason == 10": float("nan")}}, "counts is {'kvm:kvm_exit if exit_reason"),
    ({"counts": {"kvm:kvm_exit if exit_reason == 10": 2**64}}, "not counts (0 to 2^64-1) by event"),
    ({"counts": {"kvm:kvm_exit if exit_reason == 10": -1}}, "not counts (0 to 2^64-1) by event"),
    ({"counts": {"kvm:kvm_exit if exit_reason == 10": 1.5}}, "not counts (0 to 2^64-1) by event"),
    ({"counts": []}, "counts is [], not counts"),
    ({"counts": {"nonsuch:event": 5}}, "it counts 'nonsuch:event', an event the job did not ask for"),
    ({"event_errors": {"kvm:kvm_exit if exit_reason == 10": None}}, "event_errors is {"),
    ({"kvm_intel": {"cet": 1}}, "kvm_intel is {'cet': 1}, not kvm_intel's parameters or null"),
    ({"error": []}, "error is [], not a message or null"),
    ({"id": "b"}, "it is the result of job 'b'"),
])
def test_a_job_line_the_agent_never_writes_fails_its_job_naming_the_line(change, why):
    # Found by the lab fuzz target: int() of a NaN count raised out of the reader, and wrong types (a
    # kvm_intel value of null, a count of 1.5 or "12") went into the job's result as they were.
    r = jobs.result_from_line(JOB_A, {**RESULT_A, **change}, 1.0, line_no=7)
    assert r.error is not None and r.error.startswith(
        "its result line (serial log line 7) is not what the lab agent writes: ")
    assert why in r.error
    assert (r.exit_code, r.record, r.counts, r.output_tail, r.kvm_intel) == (None, None, {}, [], None)


def test_a_job_line_with_fields_missing_or_added_is_read():
    # what the agent writes for a job it could not start: id (maybe null), index and the error
    r = jobs.result_from_line(JOB_A, {"id": None, "index": 1, "error": "cannot load job 1: no such file"}, None)
    assert (r.error, r.exit_code, r.counts) == ("cannot load job 1: no such file", None, {})
    r = jobs.result_from_line(JOB_A, {**RESULT_A, "new_in_a_later_agent": [1, 2]}, None)
    assert r.error is None and r.exit_code == 0


def test_two_result_lines_for_one_job_that_differ_fail_it():
    first = framed("job", {**RESULT_A, "index": 0})
    other = framed("job", {**RESULT_A, "index": 0, "exit_code": 1})
    log = "\n".join([framed("start", {"id": "a", "index": 0}), first, first, other]) + "\n"
    (a,) = run.collect_results([JOB_A], serial.parse_serial(log).lines, [], None)
    assert a.error == "two result lines that differ (serial log lines 2 and 4): the lab agent writes one"
    (a,) = run.collect_results([JOB_A], serial.parse_serial("\n".join([first, first])).lines, [], None)
    assert a.error is None and a.exit_code == 0  # the same line twice (a console that repeated it)


def test_a_job_without_a_result_in_a_lab_that_finished_names_its_start_line():
    log = "\n".join([framed("mark", {"name": "x", "uptime": 1}), framed("start", {"id": "a", "index": 0})]) + "\n"
    (a,) = run.collect_results([JOB_A], serial.parse_serial(log).lines, [], None)
    assert a.error == "no result line after its start (serial log line 2)"


def test_signal_and_event_errors_become_the_jobs_error():
    data = {**RESULT_A, "exit_code": None, "signal": 11, "counts": {},
            "event_errors": {"kvm:kvm_exit if exit_reason == 10": "perf_event_open: EACCES"}}
    r = jobs.result_from_line(JOB_A, data, 1.0)
    assert r.error == "kvm:kvm_exit if exit_reason == 10: perf_event_open: EACCES; killed by signal 11"
    assert r.signal == 11 and r.wall_s == 1.0


# ---- probe files as a host tree -------------------------------------------------------------------


def test_probe_files_become_a_tree_the_host_probe_reads(tmp_path):
    notes = bytes.fromhex("04000000" "08000000" "03000000") + b"GNU\0" + bytes.fromhex("0123456789abcdef")
    files = {
        "proc/sys/kernel/osrelease": "7.2.13+deb14-amd64\n",
        "proc/sys/kernel/version": "#1 SMP PREEMPT_DYNAMIC Debian 7.2.13-1\n",
        "proc/cmdline": "console=ttyS0,115200 mitigations=off\n",
        "proc/cpuinfo": "processor\t: 0\nflags\t\t: fpu ibt user_shstk\n\n",
        "sys/kernel/notes": notes.hex(),
        "boot/config-7.2.13+deb14-amd64": GOOD_CONFIG,
        "sys/module/kvm_intel/parameters/cet": "Y\n",
        "dev/kvm": "",
    }
    view = probe_tree.write_probe_tree(files, tmp_path)
    assert parse_build_id(view.read_bytes("sys/kernel/notes")[0] or b"") == "0123456789abcdef"
    from cetbench.probe_kernel import probe_kernel
    k = probe_kernel(view)
    assert (k.release, k.build_id) == ("7.2.13+deb14-amd64", "0123456789abcdef")
    assert k.config[arch.CONFIG_USER_SHSTK] == "y" and k.config[arch.CONFIG_KERNEL_IBT] == "y"
    assert k.cpuinfo_flags == {"user_shstk": True, "ibt": True, "shstk": False}
    assert k.cmdline["mitigations"] == "off"
    assert view.exists("dev/kvm") and view.is_dir("sys/module/kvm_intel")
    assert probe_tree.cpu_count(files) == 1


def test_msrs_the_agent_dumps_are_read_by_the_host_probe_at_their_index(tmp_path):
    from cetbench.probe_cpu import read_msr

    def msr(index: int, value: int, line_no: int) -> serial.LabLine:
        return serial.LabLine("file", {"path": "dev/cpu/0/msr", "encoding": "hex", "offset": index,
                                "data": value.to_bytes(8, "little").hex()}, line_no)

    config = tmp_path / "config"
    config.write_text(GOOD_CONFIG)
    k = kernel.Kernel(release="7.2.13+deb14-amd64", vmlinuz=tmp_path / "vmlinuz", modules_dir=tmp_path,
                      config=config, origin="path", spec=str(tmp_path), vmlinuz_sha256="0", root=tmp_path)
    files = run.probe_files_from([msr(arch.MSR_IA32_XSS, 0x1800, 1), msr(0x10, 0x1234, 2)], k)
    view = probe_tree.write_probe_tree(files, tmp_path / "tree")
    assert read_msr(view, arch.MSR_IA32_XSS) == (0x1800, None)  # the later, lower MSR did not clobber it
    assert read_msr(view, 0x10) == (0x1234, None)
    assert read_msr(view, 0x6A0)[0] == 0  # what the agent did not dump reads as 0, never as an error


def test_probe_file_paths_cannot_leave_the_tree(tmp_path):
    for bad in ("../etc/passwd", "/etc/passwd", "proc/../../x"):
        with pytest.raises(LabError, match="not a relative path"):
            probe_tree.write_probe_tree({bad: "x"}, tmp_path / "t")


# ---- the suite's variants as lab jobs -------------------------------------------------------------


def lab_result(job_id, exit_code=0, record=None, counts=None, error=None):
    return jobs.JobResult(id=job_id, exit_code=exit_code, record=record, counts=counts or {}, output_tail=[],
                          error=error)


def test_variant_jobs_count_only_exact_tracepoints_at_two_sizes():
    from cetbench.lab import suite
    from cetbench.workloads.mechanisms import PL3_SSP_WRITE, TASK_CETU_LIVE_SAVE
    from cetbench.workloads.table import by_name
    v = by_name("host.ctxswitch[shstk=on]")
    got = suite.tracepoints(v)
    # its key event (which the perf pass counts under x86_fpu:*) and the mechanisms' filtered tracepoints;
    # no perf software or hardware event, no glob
    assert got == ("x86_fpu:x86_fpu_regs_deactivated", PL3_SSP_WRITE, TASK_CETU_LIVE_SAVE)
    one, two = suite.variant_jobs([v])
    assert one.argv[0] == "/bin/host_ctxswitch" and ("--shstk", "on") == one.argv[one.argv.index("--shstk"):][:2]
    assert one.argv[-2:] == ("--iterations", "1000") and two.argv[-2:] == ("--iterations", "2000")


def test_lab_outcomes_follow_the_native_protocol_and_never_file_cet_off_as_on():
    from cetbench.lab import suite
    from cetbench.workloads.table import by_name
    v = by_name("host.syscall[shstk=on]")
    ok = {"iterations": 1000, "shstk": "on"}
    assert suite.variant_outcome(v, lab_result("a", record=ok)).status == "measured"
    wrong = suite.variant_outcome(v, lab_result("a", record={**ok, "shstk": "off"}))
    assert wrong.status == "failed" and "shstk=off although the variant asks shstk=on" in (wrong.reason or "")
    refused = suite.variant_outcome(v, lab_result("a", 3, {"unsupported": "kernel refused", "refused_by": "kernel"}))
    assert (refused.status, refused.reason, refused.refused_by) == ("unsupported", "kernel refused", "kernel")
    lost = suite.variant_outcome(v, lab_result("a", None, error="the lab ended during this job: panic"))
    assert lost.status == "failed" and "panic" in (lost.reason or "")
    rows = suite.summarize([v], sizes(v, {"e:x": 1003}, {"e:x": 2003}))
    assert rows[0].outcome.status == "measured" and rows[0].per_op == {"e:x": 1.0}


def sizes(v, one_counts, two_counts, one=None, two=None):
    """The results of a host variant's two jobs (1000 and 2000 ops)."""
    def record(n):
        return {"iterations": n, "elapsed_ns": 5 * n, "tsc_ticks": 9 * n, "shstk": "on"}
    return {f"{v.name}x1": lab_result("1", record=one or record(1000), counts=one_counts),
            f"{v.name}x2": lab_result("2", record=two or record(2000), counts=two_counts)}


@pytest.mark.parametrize(("field", "value", "why"), [
    ("iterations", 5, "its record says iterations=5, the job asked for 2000"),
    ("iterations", True, "its record says iterations=True, the job asked for 2000"),
    ("iterations", "2000", "its record says iterations='2000', the job asked for 2000"),
    ("elapsed_ns", "on", "its record says elapsed_ns='on', not a time in ns > 0"),
    ("elapsed_ns", 0, "its record says elapsed_ns=0, not a time in ns > 0"),
    ("tsc_ticks", [1], "its record says tsc_ticks=[1], not a count >= 0"),
])
def test_a_measured_record_that_gives_no_time_per_op_fails_the_variant(field, value, why):
    # Found by the lab fuzz target: such a record was measured, then made an empty pyperf benchmark (an
    # uncaught ValueError out of write_bundle) or a raw record the bundle reader refuses (the run lost).
    from cetbench.lab import suite
    from cetbench.workloads.table import by_name
    v = by_name("host.syscall[shstk=on]")
    bad = {"iterations": 2000, "elapsed_ns": 10_000, "tsc_ticks": 18_000, "shstk": "on", field: value}
    (row,) = suite.summarize([v], sizes(v, {"e:x": 1003}, {"e:x": 2003}, two=bad))
    assert (row.outcome.status, row.outcome.reason, row.per_op) == ("failed", why, {})


def test_an_event_the_2n_run_counted_less_of_is_not_counted_and_says_why():
    # Found by the lab fuzz target: a negative count per op went into perf.json and the store refused the run.
    from cetbench.lab import bundle, suite
    from cetbench.workloads.table import by_name
    v = by_name("host.syscall[shstk=on]")
    (row,) = suite.summarize([v], sizes(v, {"e:x": 1003, "e:y": 40}, {"e:x": 2003, "e:y": 38}))
    assert row.outcome.status == "measured" and row.per_op == {"e:x": 1.0}
    assert row.uncounted == {"e:y": "the 2000-op run counted fewer (38) than the 1000-op run (40)"}
    doc = bundle._perf_doc(row, 1000)
    assert doc["events"]["e:y"] == {"count": None, "per_op": None, "state": "not counted",
                                    "note": row.uncounted["e:y"], "unit": None, "running_pct": None}
    assert doc["requested"] == ["e:x", "e:y"]


class FakeIndexApt(apt.PrivateApt):
    """A private apt whose archive is FAKE_INDEX (downloads are not reached in these tests)."""

    def ensure_index(self, max_age_s=0.0):
        return None

    def index(self, identifier="Packages", prefixes=None, suites=None):
        return {s: v for s, v in FAKE_INDEX.items() if suites is None or s in suites}


def test_a_suite_whose_kernels_are_all_too_old_is_refused_not_blamed_on_the_network(tmp_path):
    with pytest.raises(KernelRefused, match=r"suite trixie has no linux-image-amd64 of Linux >= 6\.18 "
                                            r"\(its newest is 6\.12\.48-1\)"):
        kernel.get_kernel("trixie", cache=tmp_path, apt=FakeIndexApt(tmp_path / "apt", mirror="http://m/debian"))


def test_a_nul_or_lone_surrogate_from_the_guest_is_written_escaped_and_the_run_ingests(tmp_path):
    # Found by the lab fuzz target: a workload record's "\ud800" in its CET state went into the variant's
    # reason, and the store refused the whole lab run; a NUL in the guest's osrelease, or in an agent's
    # error, the same.
    import random

    from cetbench.lab.bundle import storable
    from cetbench.results.ingest import ingest_paths
    from cetbench.results.store import open_store
    from tests.support import fuzz_lab

    assert storable({"a\x00": ["x\ud800y", 1, None]}) == {"a\\x00": ["x\\ud800y", 1, None]}
    tpl = fuzz_lab.LabTemplate.build(tmp_path / "tpl")
    segs = []
    for seg in tpl.segments:
        if seg.kind in ("file", "job") and (b"osrelease" in seg.data or seg.index == 1):
            data = json.loads(fuzz_lab._body(seg))
            if seg.kind == "file":
                data["data"] = "7.2\x00x\n"
            else:
                data["record"] = data["record"].replace('"shstk": "off"', '"shstk": "\\ud800"')
            seg = fuzz_lab.Segment(fuzz_lab.frame(seg.kind, json.dumps(data).encode()), seg.kind, seg.index)
        segs.append(seg)
    _, variants, root = fuzz_lab.read_lab(b"".join(s.data for s in segs), tpl, tmp_path / "x", random.Random(1))
    assert variants["host.syscall[shstk=off]"]["reason"] == (
        "workload ran with shstk=\\ud800 although the variant asks shstk=off")
    with open_store(f"sqlite:///{tmp_path / 'store.sqlite'}") as store:
        (result,) = ingest_paths(store, [root]).results
    assert result.status == "ingested", result.message
    assert json.loads((root / "manifest.json").read_text())["kernel"]["release"] == "7.2\\x00x"
