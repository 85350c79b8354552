"""The CI templates in ci/: every cetbench command they run exists in the real command line with
the options they give it, each runs `cetbench ci --runs N` writing JUnit and the HTML report,
publishes both, takes the store's URL from a secret (never from the file), and fails the job on
a regression while exit 3 is only a warning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cetbench.cli import cli
from tests.support.ci_templates import (
    TemplateError,
    cetbench_commands,
    check_against_cli,
    jenkins_sh_steps,
    yaml_list_items,
)

CI = Path(__file__).resolve().parents[1] / "ci"
GITLAB, JENKINS, LAVA = CI / "gitlab-ci.yml", CI / "Jenkinsfile", CI / "lava-job.yaml"


def shell_lines(template: Path) -> list[str]:
    text = template.read_text()
    if template == JENKINS:
        steps = jenkins_sh_steps(text)
        assert not [s for s in steps if s.groovy_interpolated and "$" in s.script], "let the shell expand, not Groovy"
        return [s.script for s in steps]
    return yaml_list_items(text, ("script", "before_script", "after_script", "steps"))


@pytest.mark.parametrize("template", [GITLAB, JENKINS, LAVA], ids=lambda p: p.name)
def test_every_cetbench_command_of_the_template_exists_in_the_cli(template: Path) -> None:
    commands = [args for line in shell_lines(template) for args in cetbench_commands(line)]
    paths = [check_against_cli(cli, args) for args in commands]
    assert paths.count("ci") == 1, paths
    (ci,) = [args for args, path in zip(commands, paths, strict=True) if path == "ci"]
    assert "--runs" in ci and "--junit" in ci and "--mark-good" in ci
    assert ci[ci.index("--format") + 1] == "html" and "--output" in ci
    report, junit = ci[ci.index("--output") + 1], ci[ci.index("--junit") + 1]
    text = template.read_text()
    # both files are published, whatever the outcome
    assert text.count(report) >= 2 and text.count(junit) >= 2
    # the store comes from a secret: the file names the variable and holds no URL of a store
    assert "CETBENCH_STORE" in text and "postgresql://" not in text.replace("postgresql://USER:PASSWORD@HOST/DB", "")
    assert "--store" not in ci


def test_gitlab_fails_on_1_warns_on_3_and_publishes_always() -> None:
    text = GITLAB.read_text()
    assert re.search(r"allow_failure:\n\s+exit_codes:\n\s+- 3\n", text)
    assert re.search(r"artifacts:\n\s+when: always\n", text)
    assert re.search(r"reports:\n\s+junit: cetbench-junit\.xml", text)


def test_jenkins_fails_on_1_is_unstable_on_3_and_publishes_always() -> None:
    text = JENKINS.read_text()
    assert "CETBENCH_STORE = credentials('cetbench-store-url')" in text
    assert re.search(r"if \(rc == 3\) \{\s+unstable\(", text)
    assert re.search(r"else if \(rc == 1\) \{\s+error\(", text)
    assert re.search(r"else if \(rc != 0\) \{\s+error\(", text)
    always = text[text.index("post {"):]
    assert "junit " in always and "archiveArtifacts" in always and "cetbench-report.html" in always


def test_lava_records_the_outcome_and_reads_the_store_from_its_secrets() -> None:
    text = LAVA.read_text()
    assert re.search(r"^secrets:\n  CETBENCH_STORE: cetbench-store-url$", text, re.MULTILINE)
    lines = shell_lines(LAVA)
    assert any("/secrets" in line and "set -a" in line for line in lines)
    ci_line = next(i for i, line in enumerate(lines) if cetbench_commands(line) and " ci " in line)
    assert lines[ci_line].endswith("|| rc=$?")  # LAVA's script runs with set -e: keep the code
    outcomes = {code: result for line in lines
                for code, result in re.findall(r'\[ "\$rc" -eq (\d) \]; then lava-test-case cetbench-ci --result (\w+)',
                                               line)}
    assert outcomes == {"0": "pass", "1": "fail", "3": "skip"}
    assert any("lava-test-raise" in line for line in lines)


@pytest.mark.parametrize("bad", [
    "steps:\n  - |\n    cetbench ci --runs 2\n",
    "steps:\n  - echo a: b\n",
    "steps:\n  - cetbench ci\n    --runs 2\n",
    "steps:\n  - \"cetbench\" ci\n",
])
def test_the_reader_refuses_what_it_would_have_to_guess(bad: str) -> None:
    with pytest.raises(TemplateError):
        yaml_list_items(bad, ("steps",))


def test_the_checker_catches_a_wrong_command_option_or_choice() -> None:
    for args, wrong in ((["cii"], "no command"), (["ci", "--runz", "3"], "no option --runz"),
                        (["ci", "--format", "htm"], "not one of"), (["bisect"], "no subcommand"),
                        (["bisect", "run", "--quick"], "no option --quick")):
        with pytest.raises(AssertionError, match=wrong):
            check_against_cli(cli, args)
    assert cetbench_commands('x=1 .venv/bin/cetbench ci --runs "$N" > out || rc=$?; echo cetbench') == [
        ["ci", "--runs", "$N"]]
