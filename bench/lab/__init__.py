"""The emulated CET lab: Debian's own CET-capable kernel booted on bochs 3.0 `tigerlake`, the suite's
native programs inside, results back over the serial console (docs/lab.md).

    kernel = get_kernel("sid")                      # or a package name, or a path for offline use
    run = run_lab(kernel, [LabJob("a", ("/bin/host_syscall", "--iterations", "1000", "--shstk", "on"),
                                  events=("syscalls:sys_enter_getppid",))], workdir)
    run.result("a").record, run.result("a").counts

Everything the lab needs is fetched or built into the lab cache (bench/lab/paths.py) on first use.
"""

from cetbench.lab.bochs import Emulator, get_emulator
from cetbench.lab.errors import ArchiveError, EmulatorBuildError, KernelRefused, LabError
from cetbench.lab.image import ImagePrograms, image_path
from cetbench.lab.jobs import JobResult, LabJob
from cetbench.lab.kernel import Kernel, get_kernel
from cetbench.lab.probe_tree import lab_host_facts, write_probe_tree
from cetbench.lab.run import LabRun, run_lab

__all__ = [
    "ArchiveError", "Emulator", "EmulatorBuildError", "ImagePrograms", "JobResult", "Kernel", "KernelRefused",
    "LabError", "LabJob", "LabRun", "get_emulator", "get_kernel", "image_path", "lab_host_facts", "run_lab",
    "write_probe_tree",
]
