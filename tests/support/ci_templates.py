"""Read the shell lines out of the CI templates (ci/), and the cetbench commands in those lines.

No YAML parser is a dependency of the project, so this is not one. It reads only what the
templates use for their commands: block lists under a few keys (`script:`, `steps:`, ...), one
command per item, plain or quoted on one line. Anything else where a command could hide (a block
scalar `|`, an item continued on the next line, a plain item that YAML would read as a mapping
because of ": ", a tab) is refused rather than guessed at, so a template cannot pass by being
misread. Jenkinsfiles: the string of each `sh` step.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import click

_ITEM = re.compile(r"^(?P<indent> *)- (?P<value>.*)$")
_KEY = re.compile(r"^(?P<indent> *)(?:- )?(?P<key>[A-Za-z_][\w-]*):\s*(?:#.*)?$")


class TemplateError(Exception):
    """A template this reader will not guess about."""


def yaml_list_items(text: str, keys: tuple[str, ...]) -> list[str]:
    """The scalar items of the block lists under any of `keys`, in order."""
    if "\t" in text:
        raise TemplateError("a tab in YAML")
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        key = _KEY.match(lines[i])
        i += 1
        if not key or key["key"] not in keys:
            continue
        # a key given with "- " starts its mapping two columns further in
        base = len(key["indent"]) + (2 if lines[i - 1].lstrip().startswith("- ") else 0)
        while i < len(lines):
            line = lines[i]
            if not line.strip() or line.lstrip().startswith("#"):
                i += 1
                continue
            item = _ITEM.match(line)
            if item is None or len(item["indent"]) < base:
                if len(line) - len(line.lstrip()) > base:
                    raise TemplateError(f"line {i + 1}: an item continued on the next line")
                break
            out.append(_scalar(item["value"], i + 1))
            i += 1
    return out


def _scalar(value: str, line: int) -> str:
    value = value.strip()
    if value[:1] in "|>":
        raise TemplateError(f"line {line}: a block scalar; write one command per item")
    if value[:1] == "'":
        end = _closing(value, "'", line)
        return value[1:end].replace("''", "'")
    if value[:1] == '"':
        end = _closing(value, '"', line)
        return bytes(value[1:end], "utf-8").decode("unicode_escape")
    if value[:1] in "*&!{[%@`," or re.search(r": |:$", value) or " #" in value:
        raise TemplateError(f"line {line}: YAML would not read {value!r} as a plain string; quote it")
    return value


def _closing(value: str, quote: str, line: int) -> int:
    i = 1
    while i < len(value):
        if value[i] == quote and quote == "'" and value[i + 1:i + 2] == "'":
            i += 2
            continue
        if value[i] == "\\" and quote == '"':
            i += 2
            continue
        if value[i] == quote:
            rest = value[i + 1:].strip()
            if rest and not rest.startswith("#"):
                raise TemplateError(f"line {line}: text after the closing quote: {rest!r}")
            return i
        i += 1
    raise TemplateError(f"line {line}: no closing {quote}")


_SH = re.compile(r"\bsh\s*(?:\((?P<args>(?:[^()'\"]|'[^']*'|\"[^\"]*\")*)\)|(?P<bare>'[^'\n]*'|\"[^\"\n]*\"))")
_STRING = re.compile(r"(?:script:\s*)?(?P<s>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")


@dataclass(frozen=True)
class ShStep:
    script: str
    groovy_interpolated: bool  # a double-quoted Groovy string: Groovy, not the shell, expands "$..."


def jenkins_sh_steps(text: str) -> list[ShStep]:
    """The script of every `sh '...'` and `sh(..., script: '...')` step."""
    steps = []
    for match in _SH.finditer(text):
        if match["bare"]:
            literal = match["bare"]
        else:
            args = match["args"]
            named = re.search(r"script:\s*('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", args)
            first = _STRING.search(args)
            if not (named or first):
                raise TemplateError(f"an sh step without a literal script: sh({args})")
            literal = named.group(1) if named else first["s"]  # type: ignore[index]
        body = re.sub(r"\\(.)", r"\1", literal[1:-1])
        steps.append(ShStep(body, literal.startswith('"')))
    return steps


_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", ";;", "|&"}
_REDIRECTS = {">", ">>", "<", "2>", ">&", "<&", "&>"}


def cetbench_commands(line: str) -> list[list[str]]:
    """The argument lists of the `cetbench` commands in one shell line (the program named
    cetbench or a path ending in /cetbench), without the program itself."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    commands: list[list[str]] = []
    current: list[str] = []
    skip_next = False
    for token in [*tokens, ";"]:
        if skip_next:
            skip_next = False
            continue
        if token in _REDIRECTS:
            skip_next = True
            continue
        if token in _SEPARATORS:
            words = [w for w in current if not re.match(r"^[A-Za-z_]\w*=", w)] if current else []
            while words and words[0] in ("exec", "time", "!", "then", "do", "else"):
                words = words[1:]
            if words and words[0].rsplit("/", 1)[-1] == "cetbench":
                commands.append(words[1:])
            current = []
            continue
        current.append(token)
    return commands


def check_against_cli(group: click.Group, args: list[str]) -> str:
    """Check a command line against the real click tree: the (sub)command exists, every option
    exists for it, literal values of choice options are among the choices. Returns the command's
    path (e.g. "ci", "bisect run"); raises AssertionError saying what is wrong."""
    command: click.Command = group
    path = []
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"cetbench {' '.join(path)}: no subcommand"
        name = rest.pop(0)
        assert name in command.commands, f"cetbench has no command {' '.join([*path, name])!r}"
        command = command.commands[name]
        path.append(name)
    options = {opt: p for p in command.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)}
    options.setdefault("--help", None)  # type: ignore[arg-type]
    while rest:
        token = rest.pop(0)
        if not token.startswith("-") or token == "-":
            continue  # a positional argument
        name, eq, value = token.partition("=")
        assert name in options, f"cetbench {' '.join(path)} has no option {name}"
        param = options[name]
        if param is None or param.is_flag:
            assert not eq, f"cetbench {' '.join(path)} {name} takes no value"
            continue
        if not eq:
            assert rest, f"cetbench {' '.join(path)} {name} needs a value"
            value = rest.pop(0)
        if isinstance(param.type, click.Choice) and "$" not in value:
            assert value in param.type.choices, f"cetbench {' '.join(path)} {name} {value}: not one of " \
                                                f"{', '.join(map(str, param.type.choices))}"
    return " ".join(path)
