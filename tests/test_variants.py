"""The variant grammar (workloads/variants.py) and the workload table built on it."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from cetbench.workloads import table, variants
from cetbench.workloads.variants import AXIS_BY_NAME, UnknownVariantError, VariantName, VariantNameError, parse

REPO = Path(__file__).resolve().parents[1]


def test_every_variant_name_round_trips_through_the_grammar() -> None:
    names = [v.name for v in table.all_variants()]
    assert len(names) == len(set(names))
    for v in table.all_variants():
        assert str(parse(v.name)) == v.name and parse(v.name) == v.id


@pytest.mark.parametrize("name,partner", [
    ("host.syscall[shstk=on]", "host.syscall[shstk=off]"),
    ("guest.vmexit.pio[cet=ibt+shstk]", "guest.vmexit.pio[cet=none]"),
    ("guest.vmexit.pio[cet=ibt]", "guest.vmexit.pio[cet=none]"),
    ("host.syscall[shstk=off]", None),
    ("guest.vmexit.pio[cet=none]", None),
])
def test_off_partner_turns_every_cet_axis_off(name: str, partner: str | None) -> None:
    found = parse(name).off_partner()
    assert (None if found is None else str(found)) == partner


def test_cet_features_and_native_arguments() -> None:
    pio = parse("guest.vmexit.pio[cet=ibt+shstk]")
    assert pio.cet_features == {"ibt", "shstk"} and pio.cet_on
    assert pio.native_args() == ("--cet", "ibt+shstk")
    host = parse("host.signal[shstk=on]")
    assert host.cet_features == {"shstk"} and host.native_args() == ("--shstk", "on")
    assert table.by_name("guest.vmexit.pio[cet=none]").native_args() == ("--workload", "pio", "--cet", "none")


def test_glob_keeps_brackets_literal_and_only_star_and_question_mark_wild() -> None:
    names = ["host.syscall[shstk=off]", "host.syscall[shstk=on]", "host.signal[shstk=on]", "hostXsyscall[s]"]
    assert variants.matching(names, ["host.syscall[shstk=*]"]) == names[:2]
    assert variants.matching(names, ["host.s?scall[shstk=o?]"]) == ["host.syscall[shstk=on]"]
    assert variants.matching(names, ["host.syscall[shstk=on]"]) == ["host.syscall[shstk=on]"]
    # `.` and `[...]` are not regular-expression or fnmatch syntax here
    assert variants.matching(names, ["host?syscall[s]"]) == ["hostXsyscall[s]"]
    assert variants.matching(names, ["host.syscall[s]"]) == []


def test_a_pattern_that_matches_nothing_names_the_known_variants() -> None:
    with pytest.raises(UnknownVariantError, match=r"--only 'nope\*' matches no variant; known variants: host"):
        table.select(["host.*", "nope*"])


@pytest.mark.parametrize("bad,why", [
    ("host.syscall", "not a variant name"),
    ("host.syscall[shstk]", "is not axis=value"),
    ("host.syscall[speed=fast]", "unknown axis 'speed'"),
    ("host.syscall[shstk=maybe]", "shstk takes off|on"),
    ("host.syscall[shstk=on,shstk=off]", "given twice"),
])
def test_strict_parse_says_what_is_wrong(bad: str, why: str) -> None:
    with pytest.raises(VariantNameError, match=re.escape(why)):
        parse(bad)
    with pytest.raises(UnknownVariantError, match=r"known: host\.syscall"):
        table.by_name(bad)


def test_foreign_names_parse_leniently() -> None:
    assert parse("mybench", strict=False) == VariantName("mybench")
    odd = parse("a[x=1;cet=ibt]", strict=False)
    assert odd.workload == "a" and odd.cet_on is True and odd.config_text == "cet=ibt,x=1"
    assert parse("b[x=1]", strict=False).cet_on is None  # no CET axis: unknown, not off


def test_wrong_state_refuses_a_record_that_does_not_show_the_asked_cet() -> None:
    on = parse("host.syscall[shstk=on]")
    assert on.wrong_state({"shstk": "on"}) is None
    assert "ran with shstk=off although the variant asks shstk=on" in str(on.wrong_state({"shstk": "off"}))
    assert "did not report its shstk state" in str(on.wrong_state({}))
    guest = parse("guest.vmexit.cpuid[cet=ibt]")
    assert guest.wrong_state({"cet_active": "ibt"}) is None
    assert guest.wrong_state({"cet_active": "none"}) is not None


def test_configs_of_each_kind_are_the_product_of_its_axes() -> None:
    assert variants.configs_of("host") == [(("shstk", "off"),), (("shstk", "on"),)]
    assert len(variants.configs_of("guest")) == len(AXIS_BY_NAME["cet"].values)


def test_guest_header_gives_each_code_one_unique_id_and_compiles(tmp_path: Path) -> None:
    codes = table.guest_codes()
    assert len({c.id for c in codes}) == len(codes) and len({c.name for c in codes}) == len(codes)
    header = table.guest_header()
    for code in codes:
        assert f"\t{code.enumerator} = {code.id}," in header
        assert f'X({code.enumerator}, "{code.name}", {code.ring}, {code.exit},' in header
    (tmp_path / "guest").mkdir()
    (tmp_path / "guest" / "workload_list.h").write_text(header)
    probe = tmp_path / "probe.c"
    probe.write_text('#include "guest/workload_list.h"\n'
                     '#define COUNT(...) + 1\n'
                     'static const char *const what[] = WORKLOAD_EXIT_WHAT;\n'
                     'int count(void) { return 0 GUEST_WORKLOADS(COUNT) + (int)(sizeof(what) / sizeof(what[0])); }\n')
    subprocess.run(["cc", "-c", "-Wall", "-Werror", f"-I{tmp_path}", str(probe), "-o", str(tmp_path / "p.o")],
                   check=True)


def test_no_module_imports_the_bare_folder_names() -> None:
    """Every import goes through the one installed name, cetbench."""
    bare = re.compile(r"^\s*(from|import) (bench|results|analysis|workloads)\b", re.M)
    offenders = [str(p.relative_to(REPO)) for folder in ("bench", "results", "analysis", "workloads", "tests",
                                                           "benchmarks")
                 for p in (REPO / folder).rglob("*.py") if bare.search(p.read_text())]
    assert offenders == []


def test_every_package_folder_is_installed() -> None:
    """pyproject's explicit package list maps every folder holding Python code."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = {folder: name for name, folder in config["package-dir"].items()}
    wanted = set()
    for top, name in mapped.items():
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / top)
            wanted.add(".".join([name, *rel.parts]))
    assert wanted <= set(config["packages"]), wanted - set(config["packages"])


def test_isolating_axes_pair_with_the_configuration_that_leaves_them_unset() -> None:
    names = {v.name for v in table.all_variants()}
    assert {"guest.vmexit.pio[cet=shstk,cetu=init]", "guest.vmexit.pio[cet=ibt+shstk,cetu=init]"} <= names
    assert "guest.vmexit.pio[cet=none,cetu=init]" not in names  # cetu needs shstk: nothing to isolate
    init = parse("guest.vmexit.pio[cet=shstk,cetu=init]")
    assert init.native_args() == ("--cet", "shstk", "--cetu", "init")
    assert str(init.off_partner()) == "guest.vmexit.pio[cet=none]"
    assert init.wrong_state({"cet_active": "shstk", "cetu": "init"}) is None
    assert "ran with cetu=live" in str(init.wrong_state({"cet_active": "shstk", "cetu": "live"}))
    assert parse("guest.vmexit.pio[cet=shstk]").wrong_state({"cet_active": "shstk"}) is None  # unset: no check
    with pytest.raises(VariantNameError, match="cetu can be set only with cet=shstk"):
        parse("guest.vmexit.pio[cet=ibt,cetu=init]")


def test_opt_in_variants_run_only_when_a_pattern_names_their_axis() -> None:
    knob = "guest.vmexit.cpuid[cet=none,kvmcet=0]"
    assert knob in {v.name for v in table.all_variants()}
    assert knob not in {v.name for v in table.select(None)}
    assert knob not in {v.name for v in table.select(["guest.*"])}
    assert {v.name for v in table.select(["*kvmcet=*"])} == {knob, "guest.vmexit.cpuid[cet=none,kvmcet=1]"}
    assert parse(knob).native_args() == ("--cet", "none")  # the runner, not the VMM, acts on it
