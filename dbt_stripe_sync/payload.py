"""Rows to Stripe payloads: value coercion by the SDK's parameter types, nesting, field-level diffs.

A payload is kept flat (`{"address.line1": "1 Main St", "metadata.plan": "pro"}`) so that it can be
compared field by field with what Stripe last accepted, stored as JSON in the ledger, and shown in
a plan; `nest` turns it into the nested params the SDK sends.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from dbt_stripe_sync.stripe_catalog import ParamSpec, resolve_path

FlatPayload = dict[str, Any]
CLEAR = ""  # Stripe unsets a field (and deletes a metadata key) when sent an empty string


class CoercionError(ValueError):
    """A value that cannot become the Stripe field's type; the message says what was expected."""


@lru_cache(maxsize=16384)
def field_spec(object_name: str, path: str) -> ParamSpec | None:
    """The type of a field path on create, or on update for update-only fields."""
    return resolve_path(object_name, "create", path) or resolve_path(object_name, "update", path)


# ---- scalar forms -----------------------------------------------------------------------------
def stable_string(value: Any) -> str:
    """One stable text form per value, so metadata does not flap between runs or warehouses."""
    if type(value) is str:  # the common case first
        return value
    exact = _EXACT_TYPES.get(type(value))  # a date, an int, a flag, a Decimal: no isinstance chain
    if exact is not None:
        return exact(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
            return value.isoformat(timespec="seconds") + "Z"
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"))
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


# The text of values of exactly these types (a subclass takes stable_string's general path).
_EXACT_TYPES: dict[type, Callable[[Any], str]] = {
    dt.date: dt.date.isoformat,
    int: int.__repr__,
    bool: lambda value: "true" if value else "false",
    Decimal: lambda value: format(value, "f"),
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (Decimal, dt.date, dt.datetime)):
        return stable_string(value)
    return value


def _as_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise CoercionError("expected a whole number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, dt.datetime):  # Stripe timestamps are Unix seconds
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp())
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp())
    if isinstance(value, (Decimal, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise CoercionError(f"expected a whole number, got {value!r}")
        if value != int(value):
            raise CoercionError(f"expected a whole number, got {stable_string(value)}")
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise CoercionError(f"expected a whole number, got {_show(value)}")


def _as_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    raise CoercionError(f"expected true or false, got {_show(value)}")


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                raise CoercionError('expected a list (a JSON array such as ["en", "fr"])') from None
            if isinstance(parsed, list):
                return parsed
    raise CoercionError(f"expected a list (an array column or a JSON array), got {_show(value)}")


def _as_object(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise CoercionError('expected an object (a JSON object such as {"key": "value"})') from None
        if isinstance(parsed, dict):
            return parsed
    raise CoercionError(f"expected an object (a struct/map column or a JSON object), got {_show(value)}")


def _show(value: Any) -> str:
    text = stable_string(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def coerce(value: Any, spec: ParamSpec | None) -> Any:
    """Turn a warehouse value into what the Stripe parameter takes (JSON-safe, stable)."""
    if spec is None or spec.kind in {"any"}:
        return _jsonable(value) if isinstance(value, (list, tuple, dict)) else stable_string(value)
    kind = spec.kind
    if kind == "string":
        return value if type(value) is str else stable_string(value)
    if kind == "integer":
        return _as_integer(value)
    if kind == "number":
        if isinstance(value, bool):
            raise CoercionError("expected a number, got a boolean")
        try:
            number = Decimal(stable_string(value))
        except Exception:
            raise CoercionError(f"expected a number, got {_show(value)}") from None
        if not number.is_finite():
            raise CoercionError(f"expected a finite number, got {_show(value)}")
        return stable_string(number.normalize()) if number != number.to_integral() else str(int(number))
    if kind == "boolean":
        return _as_boolean(value)
    if kind == "enum":
        text = stable_string(value)
        if text not in spec.enum:
            allowed = ", ".join(spec.enum[:12]) + (", ..." if len(spec.enum) > 12 else "")
            raise CoercionError(f"{_show(value)} is not one of: {allowed}")
        return text
    if kind == "array":
        items = _as_list(value)
        return [coerce(v, spec.items) for v in items]
    if kind in {"object", "map"}:
        obj = _as_object(value)
        if kind == "map":
            return {str(k): stable_string(v) for k, v in obj.items()}
        return {k: coerce(v, spec.fields.get(k)) for k, v in obj.items()}
    if kind == "union":
        errors = []
        for alt in spec.alternatives:
            try:
                return coerce(value, alt)
            except CoercionError as exc:
                errors.append(str(exc))
        raise CoercionError(" or ".join(dict.fromkeys(errors)))
    return stable_string(value)


def converter(object_name: str, path: str) -> Callable[[Any], Any]:
    """`coerce` for one field path with everything that depends only on the path decided once: the
    parameter type is looked up here, not per row, and a string field (most of them) takes a fast path."""
    spec = field_spec(object_name, path)
    if spec is not None and spec.kind == "string":
        return to_string
    if spec is not None and spec.kind in _PARSED_KINDS:
        return _remembering(spec)
    return lambda value: coerce(value, spec)


def to_string(value: Any) -> Any:
    """The converter of a string field (the planner passes a text value through without calling it)."""
    return value if type(value) is str else stable_string(value)


# Kinds whose text values are parsed (JSON arrays and objects, numbers, flags, enums): a column
# repeats few distinct texts ('["en","fr"]'), so each text is coerced once per field path.
_PARSED_KINDS = frozenset({"array", "object", "map", "union", "enum", "boolean", "number", "integer"})
_REMEMBERED_TEXTS = 1024  # distinct texts remembered per field path


def _remembering(spec: ParamSpec) -> Callable[[Any], Any]:
    """`coerce` for one spec, remembering its result per text value (only text: equal values of other
    types may render differently, Decimal('1.0') and Decimal('1.00')). A list or dict result is
    copied on the way out, so no two payloads share one. Errors are not remembered."""
    seen: dict[str, tuple[Any, Callable[[Any], Any] | None]] = {}  # text -> (result, how to copy it)

    def convert(value: Any) -> Any:
        if type(value) is not str:
            return coerce(value, spec)
        known = seen.get(value)
        if known is None:
            result = coerce(value, spec)
            known = (result, _copier(result))
            if len(seen) < _REMEMBERED_TEXTS:
                seen[value] = known
        result, copy_of = known
        return result if copy_of is None else copy_of(result)

    return convert


def _copier(value: Any) -> Callable[[Any], Any] | None:
    """None for a value safe to share (text, a number, a flag), else a copy that shares nothing."""
    if type(value) is list or type(value) is dict:
        items = value.values() if type(value) is dict else value
        nested = any(type(v) is list or type(v) is dict for v in items)
        if nested:
            return copy.deepcopy
        return list.copy if type(value) is list else dict.copy  # copy.copy's result, without its dispatch
    return None


# ---- nesting and diffs -------------------------------------------------------------------------
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_path(path: str) -> list[str | int]:
    """`items[0].price` -> ["items", 0, "price"]."""
    return [name if name else int(index) for name, index in _TOKEN.findall(path)]


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat paths to the nested params Stripe takes: lists for [n] indexes, dicts for dots."""
    root: dict[str, Any] = {}
    for path, value in flat.items():
        parts = split_path(path)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt: Any = value if last else ({} if isinstance(parts[i + 1], str) else [])
            if isinstance(part, int):
                while len(node) <= part:
                    node.append(None)
                if last or node[part] is None:
                    node[part] = nxt if last else (node[part] or nxt)
                node = node[part]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, nxt)
    return root


def group_of(path: str) -> str:
    """The top-level field a path belongs to (`address.line1` -> `address`)."""
    group = _GROUPS.get(path)
    if group is None:
        group = str(split_path(path)[0])
        if len(_GROUPS) < _GROUPS_KEPT:  # a sync's paths are few: each is parsed once
            _GROUPS[path] = group
    return group


_GROUPS: dict[str, str] = {}
_GROUPS_KEPT = 4096


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> FlatPayload:
    """Fields of `after` to send so Stripe ends equal to it.

    Metadata keys are merged by Stripe, so they go one by one. Any other nested object (an
    address, `recurring`) or list is replaced by Stripe as a whole, so a change to one of its
    sub-fields sends all of its sub-fields. An indexed entry that is gone (`items[1].price` now
    null) shrinks its list, which is a change too: the rest of the list is sent.
    """
    changed_groups: set[str] = {group_of(p) for p in before if "[" in p and p not in after}
    out: FlatPayload = {}
    for path, value in after.items():
        if before.get(path, _ABSENT) == value:
            continue
        if path.startswith("metadata."):
            out[path] = value
        else:
            changed_groups.add(group_of(path))
    for path, value in after.items():
        if not path.startswith("metadata.") and group_of(path) in changed_groups:
            out[path] = value
    return out


_ABSENT = object()


def to_json(flat: Mapping[str, Any]) -> str:
    return json.dumps(flat, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def from_json(text: str | None) -> FlatPayload:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
