"""Compile the native workloads with the system C compiler into a cache keyed by content.

The key is a hash of every source and header a recipe names, its flags and the compiler's own
version line, so a change to any of them rebuilds and nothing stale is ever run. Builds happen in a
private temporary directory that is renamed into place, so two processes building at once both end up
with a complete program (the loser of the rename race discards its copy).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cetbench.workloads.recipes import RECIPES, Recipe
from cetbench.workloads.table import guest_header

#: Headers written from Python tables at build time, so a list the C code needs exists once.
GENERATED: dict[str, Callable[[], str]] = {"guest/workload_list.h": guest_header}

WORKLOADS_DIR = Path(__file__).resolve().parent


class BuildError(RuntimeError):
    """A native program could not be built; the message is one line a user can act on."""


@dataclass(frozen=True)
class BuiltProgram:
    name: str
    path: Path  # what to run or load: the executable, or the flat image for guests
    elf: Path  # the linked ELF (same as path for executables): symbols for fault reports
    sha256: str  # hash of `path`, recorded in run manifests


def cache_root() -> Path:
    override = os.environ.get("CETBENCH_BUILD_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cetbench" / "build"


def compiler() -> str:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise BuildError(
            f"C compiler '{cc}' not found: install one (Debian/Ubuntu: apt-get install gcc; "
            "Fedora: dnf install gcc) or set CC"
        )
    return cc


@lru_cache(maxsize=8)
def _compiler_identity(cc: str) -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else cc


#: Linker flags of the static profile: programs that run where no C library is installed (the emulated
#: lab's initramfs). Same sources and compile flags as the normal build.
STATIC_LDFLAGS = ("-static",)


def _ldflags(recipe: Recipe, static: bool) -> tuple[str, ...]:
    # A flat guest image is freestanding and static already: both profiles are the same program.
    if static and not recipe.flat_binary and "-static" not in recipe.ldflags:
        return (*recipe.ldflags, *STATIC_LDFLAGS)
    return recipe.ldflags


def recipe_hash(recipe: Recipe, cc: str, static: bool = False) -> str:
    h = hashlib.sha256()
    h.update(repr((recipe.name, recipe.cflags, _ldflags(recipe, static), recipe.flat_binary)).encode())
    h.update(_compiler_identity(cc).encode())
    for rel in recipe.generated:
        h.update(rel.encode())
        h.update(GENERATED[rel]().encode())
    for rel in sorted({*recipe.sources, *recipe.headers, *filter(None, [recipe.linker_script])}):
        path = WORKLOADS_DIR / rel
        h.update(rel.encode())
        try:
            h.update(path.read_bytes())
        except OSError as exc:
            raise BuildError(f"{recipe.name}: source {rel} unreadable: {exc.strerror}") from exc
    return h.hexdigest()[:20]


def _run(cmd: list[str], recipe: Recipe) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip()[:300])
        raise BuildError(f"{recipe.name}: build failed: {first}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _output_names(recipe: Recipe) -> tuple[str, str]:
    elf = recipe.name + (".elf" if recipe.flat_binary else "")
    return elf, (recipe.name + ".bin" if recipe.flat_binary else elf)


def build(name: str, static: bool = False) -> BuiltProgram:
    """Return the built program `name`, compiling it first if the cache lacks this exact version.
    `static`: link it statically (its own cache entry), for a machine without our C library."""
    try:
        recipe = RECIPES[name]
    except KeyError:
        raise BuildError(f"no native recipe named {name!r}; known: {', '.join(sorted(RECIPES))}") from None
    cc = compiler()
    ldflags = _ldflags(recipe, static)
    profile = "-static" if ldflags != recipe.ldflags else ""
    final = cache_root() / f"{name}{profile}-{recipe_hash(recipe, cc, static)}"
    elf_name, out_name = _output_names(recipe)
    if not (final / out_name).exists():
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=final.parent) as tmp:
            staging = Path(tmp) / "out"
            staging.mkdir()
            for rel in recipe.generated:
                header = staging / "include" / rel
                header.parent.mkdir(parents=True, exist_ok=True)
                header.write_text(GENERATED[rel]())
            cmd = [cc, *recipe.cflags, f"-I{staging / 'include'}", f"-I{WORKLOADS_DIR}"]
            cmd += [str(WORKLOADS_DIR / s) for s in recipe.sources]
            if recipe.linker_script:
                cmd.append(f"-Wl,-T,{WORKLOADS_DIR / recipe.linker_script}")
            cmd += ["-o", str(staging / elf_name), *ldflags]
            _run(cmd, recipe)
            if recipe.flat_binary:
                _run(["objcopy", "-O", "binary", str(staging / elf_name), str(staging / out_name)], recipe)
            try:
                os.rename(staging, final)
            except OSError:
                if not (final / out_name).exists():  # not a lost race: a real failure
                    raise
    return BuiltProgram(name, final / out_name, final / elf_name, _sha256(final / out_name))


def elf_symbols(elf: Path) -> dict[str, int]:
    """Symbol name -> address of a built ELF, from binutils' nm (installed with the compiler)."""
    proc = subprocess.run(["nm", str(elf)], capture_output=True, text=True, check=True)
    return {parts[2]: int(parts[0], 16) for parts in (ln.split() for ln in proc.stdout.splitlines()) if len(parts) == 3}
