"""How a planned row is shown: keys in natural order, only the leaf fields whose value changes."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

_NUMBER = re.compile(r"(\d+)")


def natural_key(key: str) -> tuple[Any, ...]:
    """Sort key putting `2` before `10` and `row2` before `row10` (text otherwise)."""
    if key.isascii() and key.isdigit():  # the common key, sorted for every planned row: no regex
        return ((0, int(key), ""),)
    return tuple(
        (0, int(part), "") if part.isdecimal() else (1, 0, part) for part in _NUMBER.split(key) if part
    )


def leaf_changes(
    params: Mapping[str, Any], before: Mapping[str, Any], ledger: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """{path: {before, after}} for each leaf value that changes: a nested object or list sent whole
    (as Stripe replaces it) shows only its changed members, never `address.country: 'US' -> 'US'`.
    With `ledger` (plan --against stripe), each leaf also says what the tool last sent."""
    out: dict[str, dict[str, Any]] = {}
    for path, after in params.items():
        last = ledger.get(path) if ledger is not None else None
        for leaf, old, new in _leaves(path, before.get(path), after):
            if old != new:
                out[leaf] = {"before": old, "after": new}
                if ledger is not None:
                    out[leaf]["ledger"] = last if leaf == path else _leaf_of(last, leaf[len(path) :])
    return out


def _leaf_of(value: Any, rest: str) -> Any:
    for part in rest.replace("[", ".").replace("]", "").strip(".").split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _leaves(path: str, old: Any, new: Any) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(new, Mapping) and (old is None or isinstance(old, Mapping)):
        old = old or {}
        for k in sorted({*new, *old}, key=str):
            yield from _leaves(f"{path}.{k}", old.get(k), new.get(k))
        return
    if isinstance(new, list) and isinstance(old, list) and len(old) == len(new):
        for i, (o, n) in enumerate(zip(old, new, strict=True)):
            yield from _leaves(f"{path}[{i}]", o, n)
        return
    yield path, old, new
