"""Just enough YAML to write the AsyncAPI document without a YAML library: block mappings and
sequences of JSON values. Strings that could read as anything else are double-quoted (JSON's
quoting is valid YAML); prose goes in block scalars, so the file stays pleasant to review."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

WIDTH = 96
# Plain scalars that YAML 1.1 readers (PyYAML) would take for something other than a string.
_SPECIAL = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_.,/ -]*")
_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


def dump(document: dict[str, Any]) -> str:
    return "".join(f"{line}\n" for line in _mapping(document, 0))


def _is_plain(text: str, pattern: re.Pattern[str]) -> bool:
    return bool(pattern.fullmatch(text)) and text.lower() not in _SPECIAL and text[-1] != " "


def _key(key: str) -> str:
    return key if _is_plain(key, _PLAIN_KEY) else json.dumps(key, ensure_ascii=False)


def _mapping(node: dict[str, Any], indent: int) -> list[str]:
    lines = []
    for key, value in node.items():
        lines += _entry(f"{' ' * indent}{_key(key)}:", value, indent)
    return lines


def _sequence(node: list[Any], indent: int) -> list[str]:
    lines = []
    for value in node:
        if isinstance(value, dict) and value:
            block = _mapping(value, indent + 2)
            lines += [f"{' ' * indent}- {block[0].lstrip()}", *block[1:]]
        else:
            lines += _entry(f"{' ' * indent}-", value, indent)
    return lines


def _entry(head: str, value: Any, indent: int) -> list[str]:
    """`head` (a `key:` or a `-`) followed by `value`, whose nested lines go at `indent` + 2."""
    if isinstance(value, dict) and value:
        return [head, *_mapping(value, indent + 2)]
    if isinstance(value, list) and value:
        return [head, *_sequence(value, indent + 2)]
    if isinstance(value, str):
        block = _block(value, indent + 2)
        if block is not None:
            return [f"{head} {block[0]}", *block[1:]]
    return [f"{head} {_scalar(value)}"]


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value if _is_plain(value, _PLAIN) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value)


def _block(text: str, indent: int) -> list[str] | None:
    """`text` as a literal (with line breaks) or folded (long) block scalar, if it reads back
    exactly; None for a string better written inline."""
    pad = " " * indent
    if "\n" in text:
        lines = text.removesuffix("\n").split("\n")
        if any(line != line.strip() or not line for line in lines[:1]) or any(
            line != line.rstrip() for line in lines
        ):
            return None
        return [
            "|" if text.endswith("\n") else "|-",
            *(f"{pad}{line}" if line else "" for line in lines),
        ]
    if len(text) + indent <= WIDTH:
        return None
    wrapped = textwrap.wrap(text, WIDTH - indent, break_long_words=False, break_on_hyphens=False)
    if " ".join(wrapped) != text or any(line != line.strip() for line in wrapped):
        return None
    return [">-", *(f"{pad}{line}" for line in wrapped)]
