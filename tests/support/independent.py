"""Independent readers of this machine's CET facts, so tests can check the probe against the
machine rather than against the probe's own output: CPUID through a few bytes of machine code
called with ctypes, and KVM_GET_SUPPORTED_CPUID through fcntl.ioctl."""

from __future__ import annotations

import ctypes
import fcntl
import gzip
import mmap
import os
import struct

# push rbx; mov eax,edi; mov ecx,esi; mov r8,rdx; cpuid;
# mov [r8],eax; mov [r8+4],ebx; mov [r8+8],ecx; mov [r8+12],edx; pop rbx; ret
_CPUID_CODE = bytes.fromhex("53 89f8 89f1 4989d0 0fa2 418900 41895804 41894808 4189500c 5b c3".replace(" ", ""))


def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
    buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    buf.write(_CPUID_CODE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    fn = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32))(addr)
    out = (ctypes.c_uint32 * 4)()
    fn(leaf, subleaf, out)
    result = (out[0], out[1], out[2], out[3])
    del fn
    return result


KVM_GET_SUPPORTED_CPUID = 0xC008AE05  # _IOWR(KVMIO=0xAE, 0x05, struct kvm_cpuid2 header of 8 bytes)
_ENTRY = struct.Struct("<7I3I")  # function, index, flags, eax, ebx, ecx, edx, padding[3]


def kvm_supported_cpuid() -> dict[tuple[int, int], tuple[int, int, int, int]]:
    nent = 256
    buf = bytearray(struct.pack("<II", nent, 0) + bytes(_ENTRY.size * nent))
    fd = os.open("/dev/kvm", os.O_RDWR)
    try:
        fcntl.ioctl(fd, KVM_GET_SUPPORTED_CPUID, buf)
    finally:
        os.close(fd)
    (count,) = struct.unpack_from("<I", buf)
    out = {}
    for i in range(count):
        f, idx, _flags, a, b, c, d, *_ = _ENTRY.unpack_from(buf, 8 + i * _ENTRY.size)
        out[(f, idx)] = (a, b, c, d)
    return out


def kernel_config(name: str) -> str | None:
    try:
        text = gzip.decompress(open("/proc/config.gz", "rb").read()).decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"CONFIG_{name}="):
            return line.split("=", 1)[1]
    return "n"
