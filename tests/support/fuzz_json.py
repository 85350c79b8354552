"""A seeded mutator of JSON documents (test support for the input fuzz harness, tests/support/fuzz.py).

A document is parsed into a tree whose objects keep their key order and may hold a key twice (an
`Obj`: a list of (key, value) pairs), so that mutations can write what `json.dumps` never would:
repeated keys, NaN, integers of 400 digits, nesting 10,000 deep. Each mutation returns the new
bytes and a short name of what it did; the same (document, seed) always gives the same bytes.

Mutations: truncation, a wrong type at any depth, a missing or an extra key, NaN/inf/negative/zero/
huge/tiny numbers, duplicate keys and list items, odd strings (NUL, lone surrogates, 100k chars),
deep nesting, non-UTF-8 bytes, and stacks of several of them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any


class Obj(list):  # type: ignore[type-arg]
    """A JSON object as (key, value) pairs: order kept, repeated keys allowed."""


class Raw(str):
    """A token written as is (a number JSON's encoder would not write, e.g. 400 digits)."""


Node = Any
Slot = tuple[Any, Any]  # (container, index in it): a place a node can be replaced


def parse(data: bytes) -> Node:
    return json.loads(data, object_pairs_hook=Obj)


def dump(node: Node) -> bytes:
    return _dump(node).encode("utf-8", "surrogatepass")


def _dump(node: Node) -> str:
    parts: list[str] = []
    stack: list[Any] = [node]
    # Iterative: documents nested 100,000 deep must serialise without a RecursionError.
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            parts.append(item.text)
        elif isinstance(item, Raw):
            parts.append(str(item))
        elif isinstance(item, Obj):
            stack.append(_Text("}"))
            for i, (key, value) in reversed(list(enumerate(item))):
                stack.append(value)
                stack.append(_Text(("," if i else "") + json.dumps(key) + ":"))
            stack.append(_Text("{"))
        elif isinstance(item, list):
            stack.append(_Text("]"))
            for i, value in reversed(list(enumerate(item))):
                stack.append(value)
                if i:
                    stack.append(_Text(","))
            stack.append(_Text("["))
        else:
            parts.append(json.dumps(item))  # NaN -> NaN, inf -> Infinity, as Python's json reads
    return "".join(parts)


class _Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def slots(node: Node) -> Iterator[Slot]:
    """Every replaceable place in the tree, parents before children (iterative)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Obj):
            for i, (_key, value) in enumerate(item):
                yield item, i
                stack.append(value)
        elif isinstance(item, list):
            for i, value in enumerate(item):
                yield item, i
                stack.append(value)


def get(slot: Slot) -> Node:
    container, i = slot
    return container[i][1] if isinstance(container, Obj) else container[i]


def put(slot: Slot, value: Node) -> None:
    container, i = slot
    if isinstance(container, Obj):
        container[i] = (container[i][0], value)
    else:
        container[i] = value


# --- values ----------------------------------------------------------------------------------

BAD_NUMBERS: tuple[Any, ...] = (
    float("nan"), float("inf"), float("-inf"), 0, -0.0, -1, -1e-7, 1e308, 5e-324, 1e-320, 2**63, 2**64 + 1,
    -(2**63) - 1, Raw("1" + "0" * 400), Raw("-" + "9" * 5000), Raw("1e400"), Raw("-1e-400"), 1.5,
)

ODD_STRINGS: tuple[str, ...] = (
    "", " ", "\x00", "a\x00b", "\ud800", "x\udcff", "\u2028", "\u202e", "\ufeff", "..", "/", "*", "?", "[", "]",
    "[]", "%", "_", "'", "\"", "\\", "é", "😀", "0", "1e400", "NaN", "null", "true", "1969-12-31T23:59:59Z",
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-13-45T99:99:99Z", "x" * 100_000,
    "host.syscall[shstk=on]", "host.syscall[shstk=on,shstk=off]", "a[b=1;b=2]", "measured", "second",
)


def random_scalar(rng: random.Random) -> Node:
    return rng.choice([None, True, False, 0, 1, -1, 3.5, rng.choice(BAD_NUMBERS), rng.choice(ODD_STRINGS),
                       "text", Raw("12345678901234567890123")])


def random_value(rng: random.Random, depth: int = 0) -> Node:
    roll = rng.random()
    if depth > 2 or roll < 0.6:
        return random_scalar(rng)
    if roll < 0.8:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return Obj((rng.choice(("a", "values", "name", "runs", "", "metadata")), random_value(rng, depth + 1))
               for _ in range(rng.randrange(3)))


def _type_of(node: Node) -> str:
    if isinstance(node, Obj):
        return "object"
    if isinstance(node, list):
        return "array"
    if isinstance(node, bool) or node is None:
        return repr(node)
    if isinstance(node, (int, float, Raw)):
        return "number"
    return "string"


def other_type(rng: random.Random, node: Node) -> Node:
    options: list[Node] = [None, True, 0, -3, 2.5, "text", "", [], [1, "a"], Obj(), Obj([("k", 1)]), Raw("1e999")]
    return rng.choice([o for o in options if _type_of(o) != _type_of(node)])


def nested(depth: int) -> Node:
    node: Node = 1
    for _ in range(depth):
        node = [node]
    return node


# --- mutations -------------------------------------------------------------------------------

Mutation = Callable[[random.Random, bytes, Node], tuple[bytes, str]]


def _pick(rng: random.Random, tree: Node, want: Callable[[Node], bool] = lambda n: True) -> Slot | None:
    found = [s for s in slots(tree) if want(get(s))]
    return rng.choice(found) if found else None


def _objects(tree: Node) -> list[Obj]:
    out = [tree] if isinstance(tree, Obj) else []
    out += [get(s) for s in slots(tree) if isinstance(get(s), Obj)]
    return out


def truncate(rng: random.Random, data: bytes, tree: Node) -> tuple[bytes, str]:
    cut = rng.randrange(len(data)) if data else 0
    return data[:cut], "truncation"


def wrong_type(rng: random.Random, data: bytes, tree: Node) -> tuple[bytes, str]:
    slot = _pick(rng, tree)
    if slot is None or rng.random() < 0.03:
        return dump(other_type(rng, tree)), "wrong type (root)"
    put(slot, other_type(rng, get(slot)))
    return dump(tree), "wrong type"


def missing_key(rng: random.Random, data: bytes, tree: Node) -> tuple[bytes, str]:
    objects = [o for o in _objects(tree) if o]
    if not objects:
        return wrong_type(rng, data, tree)
    target = rng.choice(objects)
    del target[rng.randrange(len(target))]
    return dump(tree), "missing key"


def extra_key(rng: random.Random, data: bytes, tree: Node) -> tuple[bytes, str]:
    objects = _objects(tree)
    if not objects:
        return wrong_type(rng, data, tree)
    target = rng.choice(objects)
    key = rng.choice(("extra", "", "\x00", "\ud800", "values", "x" * 300, "variants/../../etc", "measured"))
    target.insert(rng.randrange(len(target) + 1), (key, random_value(rng)))
    return dump(tree), "extra key"


def bad_number(rng: random.Random, data: bytes, tree: Node) -> tuple[bytes, str]:
    numeric = lambda n: isinstance(n, (int, float, Raw)) and not isinstance(n, bool)  # noqa: E731
    slot = _pick(rng, tree, numeric) or _pick(rng, tree)
    if slot is None:
        return dump(rng.choice(BAD_NUMBERS)), "bad number (root)"
    value = get(slot)
    choices = list(BAD_NUMBERS)
    if numeric(value) and not isinstance(value, Raw):
        try:
            choices += [-value, value * 1e300, value * 1e-300]
        except OverflowError:  # an int of 400 digits (a Raw, parsed again by a stacked mutation) has no float
            choices += [-value]
    put(slot, rng.choice(choices))
    return dump(tree), "bad number"


def duplicate(rng: random.Random, data: bytes, tree: Node) -> tuple[bytes, str]:
    objects = [o for o in _objects(tree) if o]
    lists = [get(s) for s in slots(tree) if isinstance(get(s), list) and not isinstance(get(s), Obj) and get(s)]
    if isinstance(tree, list) and not isinstance(tree, Obj) and tree:
        lists.append(tree)
    if objects and (not lists or rng.random() < 0.6):
        target = rng.choice(objects)
        i = rng.randrange(len(target))
        key, value = target[i]
        twin = value if rng.random() < 0.5 else random_value(rng)
        target.insert(rng.randrange(len(target) + 1), (key, twin))
        return dump(tree), "duplicate key"
    if lists:
        target = rng.choice(lists)
        target.insert(rng.randrange(len(target) + 1), rng.choice(target))
        return dump(tree), "duplicate item"
    return wrong_type(rng, data, tree)


def odd_string(rng: random.Random, data: bytes, tree: Node) -> tuple[bytes, str]:
    slot = _pick(rng, tree, lambda n: isinstance(n, str) and not isinstance(n, Raw)) or _pick(rng, tree)
    if slot is None:
        return dump(rng.choice(ODD_STRINGS)), "odd string (root)"
    put(slot, rng.choice(ODD_STRINGS))
    return dump(tree), "odd string"


def deep(rng: random.Random, data: bytes, tree: Node) -> tuple[bytes, str]:
    depth = rng.choice((50, 500, 5_000, 100_000))
    slot = _pick(rng, tree)
    if slot is None:
        return dump(nested(depth)), "deep nesting"
    put(slot, nested(depth))
    return dump(tree), "deep nesting"


NON_UTF8 = (b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80\x80", b"\xfe\xff", b"\xf4\x90\x80\x80")


def non_utf8(rng: random.Random, data: bytes, tree: Node) -> tuple[bytes, str]:
    if rng.random() < 0.5:  # inside a string value, where a decoder meets it mid-text
        at = [i for i in range(len(data)) if data[i:i + 1] == b'"']
        if at:
            pos = rng.choice(at) + 1
            return data[:pos] + rng.choice(NON_UTF8) + data[pos:], "non-UTF-8 bytes"
    pos = rng.randrange(len(data) + 1)
    return data[:pos] + rng.choice(NON_UTF8) + data[pos:], "non-UTF-8 bytes"


def flip(rng: random.Random, data: bytes, tree: Node) -> tuple[bytes, str]:
    if not data:
        return b"\x00", "byte flip"
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf), "byte flip"


TREE_MUTATIONS: tuple[Mutation, ...] = (wrong_type, missing_key, extra_key, bad_number, duplicate, odd_string, deep)
BYTE_MUTATIONS: tuple[Mutation, ...] = (truncate, non_utf8, flip)


def mutate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """One mutation of a JSON document's bytes (or, one time in ten, two to four stacked)."""
    rounds = 1 if rng.random() < 0.9 else rng.randrange(2, 5)
    names = []
    for _ in range(rounds):
        try:
            tree = parse(data)
        except (ValueError, RecursionError):  # not JSON (any more): mutate its bytes
            tree = None
        if tree is None or rng.random() < 0.2:
            data, name = rng.choice(BYTE_MUTATIONS)(rng, data, tree)
        else:
            data, name = rng.choice(TREE_MUTATIONS)(rng, data, tree)
        names.append(name)
    return data, names[0] if rounds == 1 else "stacked: " + ", ".join(names)
