"""net.yaml parsing for a stranger's file: YAML 1.2 core scalars, no duplicate keys, bounded aliases.

PyYAML's safe_load follows YAML 1.1: `[1:20]` reads as 80 (base 60), `on`/`no` as booleans,
`012` as octal 10; it keeps the last of two equal keys; and an alias bomb (each anchor used
twice by the next) expands to billions of nodes, which a validator or an error message
walking it never finishes. load_yaml(text, where) scans the event stream first (depth, nodes
with every alias expanded) and only then builds Python objects, with the core schema's
null/bool/int/float and everything else a string.

Needs: the file's text. Guarantees: a dict/list/str/int/float/bool/None tree of at most
limits.MAX_YAML_NODES nodes (aliases counted expanded) and depth MAX_YAML_DEPTH, mapping keys
all strings and unique; any problem is an XnorgenError naming the line.
"""
from __future__ import annotations

import re

import yaml

from xnorgen import limits
from xnorgen.errors import XnorgenError


class _CoreLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader (libyaml's parser where installed) with the YAML 1.2 core schema's implicit types only."""


_CoreLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in [
        ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
        ("bool", r"true|True|TRUE|false|False|FALSE", list("tTfF")),
        ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", list("-+0123456789")),
        ("float", r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)",
         list("-+.0123456789"))]:
    _CoreLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(rf"^(?:{_pattern})$"), _first)


def _number(loader, node, parse):
    text = loader.construct_scalar(node)
    if len(text) > limits.MAX_NUMBER_CHARS:
        raise XnorgenError(f"line {node.start_mark.line + 1}", f"number of {len(text)} characters is too long")
    try:
        return parse(text)
    except ValueError:
        raise XnorgenError(f"line {node.start_mark.line + 1}", f"not a number: {text[:40]!r}") from None


def _int(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body.startswith("0o"):
        return sign * int(body[2:], 8)
    if body.startswith("0x"):
        return sign * int(body[2:], 16)
    return sign * int(body, 10)      # decimal, leading zeros included (no YAML 1.1 octal)


def _float(text: str) -> float:
    return float(text.lower().replace(".inf", "inf").replace(".nan", "nan"))


_CoreLoader.add_constructor("tag:yaml.org,2002:int", lambda ld, n: _number(ld, n, _int))
_CoreLoader.add_constructor("tag:yaml.org,2002:float", lambda ld, n: _number(ld, n, _float))
for _tag in ("timestamp", "binary", "set", "omap", "pairs"):     # explicit !!tags a net.yaml never needs
    _CoreLoader.yaml_constructors.pop(f"tag:yaml.org,2002:{_tag}", None)


def _scan_events(text: str, where: str) -> None:
    """Refuse deep nesting and alias expansion past the budget, from the event stream alone."""
    sizes: dict[str, int] = {}          # anchor -> nodes it expands to
    stack: list[list] = []              # open collections: [anchor, nodes so far]
    total = 0

    def add(n):
        nonlocal total
        total += n
        if stack:
            stack[-1][1] += n
        if total > limits.MAX_YAML_NODES:
            raise XnorgenError(where, f"more than {limits.MAX_YAML_NODES} YAML nodes (counting aliases "
                                      "expanded); is it an alias bomb?")

    for ev in yaml.parse(text, Loader=_CoreLoader):
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= limits.MAX_YAML_DEPTH:
                raise XnorgenError(where, f"nesting deeper than {limits.MAX_YAML_DEPTH} levels at line "
                                          f"{ev.start_mark.line + 1}")
            stack.append([ev.anchor, 1])
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, n = stack.pop()
            if anchor is not None:
                sizes[anchor] = n
            total -= n                  # counted again, as a whole, by its parent
            add(n)
        elif isinstance(ev, yaml.ScalarEvent):
            if ev.anchor is not None:
                sizes[ev.anchor] = 1
            add(1)
        elif isinstance(ev, yaml.AliasEvent):
            add(sizes.get(ev.anchor, 1))


def _check_keys(node, where: str) -> None:
    """Mapping keys are plain strings and unique (iterative; a node shared by aliases is seen once)."""
    todo, seen = [node], set()
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            keys = set()
            for k, v in n.value:
                line = k.start_mark.line + 1
                if not isinstance(k, yaml.ScalarNode) or k.tag != "tag:yaml.org,2002:str":
                    raise XnorgenError(f"{where}: line {line}", "mapping keys must be plain names")
                if k.value in keys:
                    raise XnorgenError(f"{where}: line {line}", f"duplicate key {k.value!r}")
                keys.add(k.value)
                todo.append(v)
        elif isinstance(n, yaml.SequenceNode):
            todo.extend(n.value)


def load_yaml(text: str, where: str):
    """The document's Python objects (see the module docstring for what is refused)."""
    try:
        _scan_events(text, where)
        node = yaml.compose(text, Loader=_CoreLoader)
        if node is None:
            return None
        _check_keys(node, where)
        loader = _CoreLoader(text)
        try:
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except XnorgenError as e:
        if e.where.startswith("line "):          # raised by a constructor, which knows no file name
            raise XnorgenError(f"{where}: {e.where}", e.what) from None
        raise
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        what = (getattr(e, "problem", None) or str(e)).strip().splitlines() or ["?"]
        raise XnorgenError(where, f"invalid YAML{at}: {what[0]}") from None
