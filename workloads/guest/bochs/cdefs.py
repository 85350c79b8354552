"""Integer constants of C sources (abi.h, cet_probe.c, boot.S), so Python never restates a number."""

from __future__ import annotations

import ast
import operator
import re
from functools import lru_cache
from pathlib import Path

GUEST_DIR = Path(__file__).resolve().parent.parent
ABI_H = GUEST_DIR / "abi.h"


@lru_cache(maxsize=1)
def abi() -> dict[str, int]:
    """Every integer #define and enum member of abi.h."""
    return c_constants(ABI_H)


@lru_cache(maxsize=4)
def c_constants(path: Path) -> dict[str, int]:
    """Integer #defines and enum members of a C file whose values are plain literals, shifts and ors
    (others, e.g. ones naming other macros, are left out)."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    pairs = re.findall(r"^#define\s+(\w+)\s+(\([^\n]*\)|[0-9][0-9a-fA-FxXuUlL]*)\s*$", text, re.M)
    for body in re.findall(r"enum\s+\w+\s*\{(.*?)\}", text, re.S):
        pairs += re.findall(r"(\w+)\s*=\s*([^,\n]+)", body)
    names: dict[str, int] = {}
    for name, expr in pairs:
        value = _eval_int(expr)
        if value is not None:
            names[name] = value
    return names


def _eval_int(expr: str) -> int | None:
    """Value of a C integer expression made of literals, parentheses, <<, + and |; None otherwise."""
    cleaned = re.sub(r"(?<=[0-9a-fA-F])[uUlL]+\b", "", expr.strip())
    try:
        tree = ast.parse(cleaned, mode="eval")
    except SyntaxError:
        return None
    ops = {ast.LShift: operator.lshift, ast.BitOr: operator.or_, ast.Add: operator.add}

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](value(node.left), value(node.right))
        raise ValueError(node)

    try:
        return value(tree.body)
    except ValueError:
        return None
