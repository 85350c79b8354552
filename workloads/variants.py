"""The variant grammar: the one owner of what a variant name means.

A variant is a workload under one configuration. Its name reads `workload[axis=value,...]`:
`host.syscall[shstk=on]`, `guest.vmexit.pio[cet=ibt+shstk]`. An *axis* is one thing a variant
can vary (the host task's shadow stack, the CET a guest is offered, ...); adding one is one
`Axis(...)` in `AXES`: names, selection, CET-off partners, the native program's arguments and
the check of what a workload reports all follow from it.

Rules written only here:
- a name's axes appear in `AXES` order; an axis at its `default` is left out, so names stored
  before the axis existed keep meaning what they meant;
- a CET axis has an `off` value; a configuration is CET-on when any CET axis is not off, and its
  CET-off partner is the same configuration with every CET axis off (what `overhead` compares);
- a selection pattern is a glob where only `*` and `?` are wildcards: brackets are literal,
  since every name holds them (fnmatch would read `[shstk=on]` as a character class).

Standard library only: the runner, the store and analysis all import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

#: Workload kinds: where the op runs. A workload's name starts with its kind (`host.syscall`): `host` on
#: this host, `guest` in the micro-VM (cetbench-vmm on /dev/kvm), `linux` in a Linux guest under QEMU.
HOST, GUEST, LINUX = "host", "guest", "linux"


def kind_of(workload: str) -> str:
    """The kind of a workload, from its name (`guest.vmexit.pio` -> `guest`)."""
    return workload.split(".", 1)[0]

Config = tuple[tuple[str, str], ...]  # (axis, value) pairs in AXES order, defaults left out


class VariantNameError(ValueError):
    """A name that does not follow the grammar; the message says where."""


class UnknownVariantError(LookupError):
    """A name or pattern that names no variant; the message lists the known ones."""


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[str, ...]
    kinds: frozenset[str]  # workload kinds that have this axis
    meaning: str  # one line for help and reports
    #: CET axes only: the value with CET off. Any other value turns on the CET features it names
    #: (`on` names the axis itself; `ibt+shstk` names two).
    off: str | None = None
    #: Left out of names at this value (an axis added later keeps old names valid).
    default: str | None = None
    #: How the native program is told the value (`--shstk on`); None when the runner acts on it.
    native_flag: str | None = None
    #: The key of the native record that reports the value actually in effect: a measured
    #: record must show the value its variant asks for (a CET-on figure never taken with CET off).
    observed: str | None = None
    #: An optional axis may be absent from a name: then it is not set (the natural state of the
    #: configuration; nothing passed, nothing checked). Which of its values a workload measures is
    #: the workload's choice (`Workload.options`).
    optional: bool = False
    #: (axis, value or feature) another axis must have for this one to be set: ("cet", "shstk")
    #: (the cet axis turns on shstk), ("cet", "none"). It binds only in kinds that have that axis.
    requires: tuple[str, str] | None = None
    #: Variants setting this axis change the host (e.g. reload a kernel module) or only check the
    #: suite itself: they run only when a selection pattern names the axis, never as part of a
    #: broad pattern.
    opt_in: bool = False
    #: Values are whole numbers (any), not the listed names.
    numeric: bool = False

    def accepts(self, value: str) -> bool:
        return value.isdigit() if self.numeric else value in self.values

    @property
    def is_cet(self) -> bool:
        return self.off is not None

    def features(self, value: str) -> frozenset[str]:
        """The CET features a value of this axis turns on (subsets of {"shstk", "ibt"})."""
        if not self.is_cet or value == self.off:
            return frozenset()
        return frozenset({self.name}) if value == "on" else frozenset(value.split("+"))


AXES: tuple[Axis, ...] = (
    # A Linux guest's CET: what QEMU's vCPU offers, whether the guest kernel uses IBT, and (shstk, below)
    # whether the workload's task turns its shadow stack on. The runner acts on vcet and kibt.
    Axis("vcet", ("none", "ibt", "shstk", "ibt+shstk"), frozenset({LINUX}),
         "CET QEMU's vCPU offers the Linux guest (-cpu ...,cet-ibt=on,cet-ss=on,enforce); the guest kernel "
         "turns on kernel IBT and allows user shadow stacks when offered", off="none"),
    Axis("kibt", ("off",), frozenset({LINUX}),
         "the guest kernel booted with ibt=off: IBT offered by the vCPU, not used by the kernel (what honouring "
         "`ibt=off` costs or saves)", optional=True, requires=("vcet", "ibt")),
    Axis("shstk", ("off", "on"), frozenset({HOST, LINUX}),
         "user shadow stack of the workload's own task(s), enabled by the workload with arch_prctl",
         off="off", native_flag="--shstk", observed="shstk", requires=("vcet", "shstk")),
    Axis("cet", ("none", "ibt", "shstk", "ibt+shstk"), frozenset({GUEST}),
         "CET the micro-VM is offered in its CPUID and turns on itself (kernel IBT, user shadow stack)",
         off="none", native_flag="--cet", observed="cet_active"),
    # Isolating axes (docs/mechanisms.md): each turns one CET mechanism on or off, all else equal.
    Axis("cetu", ("live", "init", "off"), frozenset({GUEST}),
         "the guest's CET_USER state (U_CET, PL3_SSP) during the loop: live (set, as shstk leaves it), init "
         "(both 0: XSAVES skips the component), off (CET_U not in the guest's IA32_XSS)",
         optional=True, requires=("cet", "shstk"), native_flag="--cetu", observed="cetu"),
    Axis("kvmcet", ("0", "1"), frozenset({GUEST}),
         "kvm_intel's `cet` module parameter (Linux >= 7.1): 0 stops KVM loading CET state through the VMCS "
         "on every entry and exit; the runner reloads kvm_intel with it",
         optional=True, requires=("cet", "none"), opt_in=True),
    Axis("xss", ("host",), frozenset({GUEST}),
         "the guest's IA32_XSS set to the host's, so KVM writes no XSS around each entry and exit (the XSS "
         "confound, docs/mechanisms.md §5)", optional=True, requires=("cet", "shstk"), native_flag="--xss",
         observed="xss_mode"),
    # Self-validation: a known delay per op, so a pair of variants of one run differs by a known cost.
    Axis("inject", (), frozenset({HOST, GUEST}),
         "TSC cycles of dependent work the workload adds per op (a known difference, to check the suite)",
         optional=True, opt_in=True, numeric=True, native_flag="--inject-cycles", observed="inject_cycles"),
)
AXIS_BY_NAME = {a.name: a for a in AXES}


def axes_of(kind: str) -> tuple[Axis, ...]:
    return tuple(a for a in AXES if kind in a.kinds)


def names_axis(pattern: str, axis: Axis) -> bool:
    """Whether a selection pattern asks for an axis by name (how opt-in variants are chosen)."""
    return re.search(rf"(^|[\[,*?]){re.escape(axis.name)}=", pattern) is not None


@dataclass(frozen=True, order=True)
class VariantName:
    workload: str
    config: Config = field(default=())

    def __str__(self) -> str:
        return f"{self.workload}[{self.config_text}]"

    @property
    def config_text(self) -> str:
        return ",".join(f"{axis}={value}" for axis, value in self.config)

    def value(self, axis: str) -> str | None:
        """The value of `axis`: as named, else the axis's default (None when neither)."""
        named = dict(self.config).get(axis)
        known = AXIS_BY_NAME.get(axis)
        return named if named is not None else (known.default if known else None)

    @property
    def cet_features(self) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for axis, value in self.config:
            known = AXIS_BY_NAME.get(axis)
            if known is not None:
                out |= known.features(value)
        return out

    @property
    def cet_axes(self) -> tuple[str, ...]:
        return tuple(a for a, _ in self.config if a in AXIS_BY_NAME and AXIS_BY_NAME[a].is_cet)

    @property
    def opt_in_axes(self) -> tuple[Axis, ...]:
        """The opt-in axes this name sets (see `Axis.opt_in`)."""
        return tuple(AXIS_BY_NAME[a] for a, _ in self.config if a in AXIS_BY_NAME and AXIS_BY_NAME[a].opt_in)

    @property
    def cet_on(self) -> bool | None:
        """Whether CET is on; None when the name has no CET axis (a foreign name)."""
        return bool(self.cet_features) if self.cet_axes else None

    def with_values(self, **values: str) -> VariantName:
        pairs = dict(self.config)
        pairs.update(values)
        return replace(self, config=canonical(pairs))

    def off_partner(self) -> VariantName | None:
        """The same configuration with every CET axis off; None when this one is off already (or
        has no CET axis)."""
        if not self.cet_on:
            return None
        pairs = dict(self.config)
        pairs.update({a: off for a in self.cet_axes if (off := AXIS_BY_NAME[a].off) is not None})
        # an axis that needs CET on (cetu) has no meaning once it is off: the partner leaves it out
        kind = kind_of(self.workload)
        return replace(self, config=canonical({a: v for a, v in pairs.items() if _allowed(a, pairs, kind)}))

    def native_args(self) -> tuple[str, ...]:
        """The arguments that tell a native program this configuration."""
        out: list[str] = []
        for axis in AXES:
            value = self.value(axis.name)
            if axis.native_flag and value is not None:
                out += [axis.native_flag, value]
        return tuple(out)

    def wrong_state(self, record: dict[str, object]) -> str | None:
        """Why a native record does not show the configuration this variant asks for, or None.
        A CET-on figure taken with CET off would be a lie; so would an off figure with CET on."""
        for axis in AXES:
            value = self.value(axis.name)
            if axis.observed is None or value is None:
                continue
            seen = record.get(axis.observed)
            if seen is None:
                return f"the workload did not report its {axis.name} state ({axis.observed!r})"
            if str(seen) != value:
                return f"workload ran with {axis.name}={seen} although the variant asks {axis.name}={value}"
        return None


def canonical(pairs: dict[str, str]) -> Config:
    """Pairs in AXES order (unknown axes after them, sorted), defaults left out."""
    known = [(a.name, pairs[a.name]) for a in AXES if a.name in pairs and pairs[a.name] != a.default]
    unknown = sorted((k, v) for k, v in pairs.items() if k not in AXIS_BY_NAME)
    return (*known, *unknown)


_NAME = re.compile(r"(?P<workload>[^\[\]]+)\[(?P<config>[^\[\]]*)\]")


def parse(name: str, strict: bool = True) -> VariantName:
    """`host.syscall[shstk=on]` -> VariantName("host.syscall", (("shstk", "on"),)).

    strict: every axis must be declared and its value one of the axis's values (the suite's own
    names). Not strict (names from pyperf or pytest-benchmark files): any `key=value` parts
    (separated by `,` or `;`) are kept, and a name without brackets is a workload alone.
    """
    match = _NAME.fullmatch(name.strip())
    if match is None:
        if strict:
            raise VariantNameError(f"{name!r} is not a variant name (workload[axis=value,...])")
        return VariantName(name.strip())
    pairs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in re.split(r"[,;]", match["config"]))):
        axis, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not axis:
            if strict:
                raise VariantNameError(f"{name!r}: {part!r} is not axis=value")
            continue
        known = AXIS_BY_NAME.get(axis)
        if strict and (known is None or not known.accepts(value)):
            if known is None:
                raise VariantNameError(f"{name!r}: unknown axis {axis!r} (axes: {', '.join(AXIS_BY_NAME)})")
            takes = "a whole number" if known.numeric else "|".join(known.values)
            raise VariantNameError(f"{name!r}: {axis} takes {takes}, not {value!r}")
        if axis in pairs:
            raise VariantNameError(f"{name!r}: axis {axis!r} given twice")
        pairs[axis] = value
    if strict:
        for axis in pairs:
            if not _allowed(axis, pairs, kind_of(match["workload"].strip())):
                other, wanted = AXIS_BY_NAME[axis].requires or ("", "")
                raise VariantNameError(f"{name!r}: {axis} can be set only with {other}={wanted} "
                                       f"(or a {other} that turns {wanted} on)")
    return VariantName(match["workload"].strip(), canonical(pairs))


def configs_of(kind: str, options: dict[str, tuple[str, ...]] | None = None) -> list[Config]:
    """Every configuration of a workload: the product of its kind's axes' values, and of each
    optional axis the workload measures (`options`: axis -> the values it measures), absent or
    set, where the axis's `requires` holds."""
    out: list[dict[str, str]] = [{}]
    for axis in axes_of(kind):
        if axis.optional:
            values: tuple[str | None, ...] = (None, *(options or {}).get(axis.name, ()))
        else:
            values = axis.values
        out = [{**c, axis.name: v} if v is not None else c for c in out for v in values]
    return [canonical(c) for c in out if all(_allowed(a, c, kind) for a in c)]


def _allowed(axis: str, config: dict[str, str], kind: str) -> bool:
    known = AXIS_BY_NAME.get(axis)
    if known is None or known.requires is None or config.get(axis) == known.off:  # off needs nothing
        return True
    other, wanted = known.requires
    if kind not in AXIS_BY_NAME[other].kinds:  # host.*[shstk=on] needs no vCPU to offer it
        return True
    value = config.get(other)
    return value is not None and (value == wanted or wanted in AXIS_BY_NAME[other].features(value))


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob where only * and ? are wildcards; everything else, brackets included, is literal."""
    body = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"{body}\\Z")


def matching(names: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """The names (in their order) that match any of the patterns."""
    regexes = [glob_regex(p) for p in patterns]
    return [n for n in names if any(r.match(n) for r in regexes)]


def select(names: Sequence[str], patterns: Sequence[str] | None, what: str = "--only") -> list[str]:
    """The names matching any pattern, in their order (all when no pattern). A pattern that
    matches nothing raises UnknownVariantError naming the known names, so a typo never selects
    nothing."""
    if not patterns:
        return list(names)
    for pattern in patterns:
        if not matching(names, [pattern]):
            raise UnknownVariantError(f"{what} {pattern!r} matches no variant; known variants: {', '.join(names)}")
    return matching(names, patterns)
