"""Decode Stripe's bracket form encoding (`address[line1]=x`, `items[0][price]=p`, `expand[]=a`).

Values stay strings; arrays arrive as dicts with digit keys (or lists for `[]`) and are turned
into lists by the contract, which knows from the SDK types whether a parameter is an array.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from dbt_stripe_sync.emulator.errors import invalid

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SUB = re.compile(r"\[([^\[\]]*)\]")


def parse_key(key: str) -> list[str]:
    """`items[0][price]` -> ["items", "0", "price"]; `expand[]` -> ["expand", ""]."""
    m = _KEY.match(key)
    if not m:
        raise invalid(f"Invalid parameter name: {key}", param=key)
    return [m.group(1), *_SUB.findall(m.group(2))]


def decode(body: str) -> dict[str, Any]:
    """Decode a urlencoded query string or body into nested dicts/lists of strings."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        _insert(result, parse_key(key), value, key)
    return result


def _insert(target: dict[str, Any], parts: list[str], value: str, raw_key: str) -> None:
    node: Any = target
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":
            if not isinstance(node, list):
                raise invalid(f"Invalid array: {raw_key}", param=raw_key)
            if last:
                node.append(value)
                return
            node.append({})
            node = node[-1]
            continue
        if not isinstance(node, dict):
            raise invalid(f"Invalid hash: {raw_key}", param=raw_key)
        if last:
            if isinstance(node.get(part), (dict, list)):
                raise invalid(f"Invalid parameter: {raw_key} is both a value and a hash", param=raw_key)
            node[part] = value
            return
        nxt = parts[i + 1]
        existing = node.get(part)
        if existing is None:
            node[part] = [] if nxt == "" else {}
        elif isinstance(existing, str):
            raise invalid(f"Invalid parameter: {raw_key} is both a value and a hash", param=raw_key)
        node = node[part]
