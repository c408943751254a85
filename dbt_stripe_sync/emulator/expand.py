"""`expand[]`: replace id strings by the objects they name, along dotted paths like `data.product`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from dbt_stripe_sync.emulator.errors import invalid

# Field name -> stored type of the object it references.
EXPANDABLE = {
    "customer": "customer",
    "product": "product",
    "price": "price",
    "default_price": "price",
    "subscription": "subscription",
    "invoice": "invoice",
    "latest_invoice": "invoice",
    "invoice_item": "invoiceitem",
}
MAX_DEPTH = 4
_RESPONSE_ONLY = frozenset({"total_count"})

Lookup = Callable[[str, str], dict[str, Any] | None]


def expand(obj: dict[str, Any], paths: list[str], lookup: Lookup) -> dict[str, Any]:
    """Return a copy of `obj` with each path expanded; unknown paths are Stripe's 400."""
    if not paths:
        return obj
    result = copy.deepcopy(obj)
    for path in paths:
        if path in _RESPONSE_ONLY:
            continue
        parts = path.split(".")
        if len(parts) > MAX_DEPTH:
            raise invalid(
                f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
                param="expand",
            )
        _expand_at(result, parts, path, lookup)
    return result


def _expand_at(node: Any, parts: list[str], path: str, lookup: Lookup) -> None:
    if isinstance(node, list):
        for item in node:
            _expand_at(item, parts, path, lookup)
        return
    if not isinstance(node, dict):
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    head, rest = parts[0], parts[1:]
    if head not in node:
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    value = node[head]
    if rest:
        if isinstance(value, str) and head in EXPANDABLE:
            value = node[head] = _resolve(head, value, lookup)
        if value is not None:
            _expand_at(value, rest, path, lookup)
        return
    if value is None or isinstance(value, dict):
        return
    if head not in EXPANDABLE or not isinstance(value, str):
        raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    node[head] = _resolve(head, value, lookup)


def _resolve(field: str, object_id: str, lookup: Lookup) -> Any:
    found = lookup(EXPANDABLE[field], object_id)
    return copy.deepcopy(found) if found is not None else object_id
