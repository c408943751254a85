"""Check and coerce decoded request parameters against the SDK's generated parameter types.

Which parameters exist, their types, enums and required-ness come from `stripe_catalog`, which
reads `stripe.params.<Object><Operation>Params`. Form values arrive as strings, so this module
also turns them into ints, bools and lists. An empty string is kept as "" (Stripe's "unset").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from dbt_stripe_sync.emulator.errors import (
    StripeError,
    empty_value,
    invalid,
    missing_parameter,
    unknown_parameter,
)
from dbt_stripe_sync.emulator.metadata import check_metadata
from dbt_stripe_sync.stripe_catalog import ParamSpec, operation_params

_INT = re.compile(r"^-?\d+$")
_ALWAYS_ALLOWED = frozenset({"expand"})


def param_name(path: tuple[str, ...]) -> str:
    """("items", "0", "price") -> "items[0][price]" (Stripe's spelling in error messages)."""
    return path[0] + "".join(f"[{p}]" for p in path[1:])


def specs_for(object_name: str, operation: str) -> Mapping[str, ParamSpec]:
    return operation_params(object_name, operation)


def warm_up() -> None:
    """Introspect every route's SDK parameter types in the background (about 0.5 s, once per process)."""
    from dbt_stripe_sync.emulator.resources import ROUTES

    def load() -> None:
        for route in ROUTES:
            if route.catalog is not None:
                specs_for(*route.catalog)

    threading.Thread(target=load, name="stripe-emulator-warm-up", daemon=True).start()


def validate(
    params: Mapping[str, Any],
    specs: Mapping[str, ParamSpec],
    *,
    not_unsettable: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Return coerced params or raise the StripeError Stripe would answer with."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        spec = specs.get(key)
        if spec is None:
            if key in _ALWAYS_ALLOWED:
                out[key] = _as_list(value, (key,))
                continue
            raise unknown_parameter(key)
        if value == "" and key in not_unsettable:
            raise empty_value(key)
        out[key] = coerce(value, spec, (key,))
    for key, spec in specs.items():
        if spec.required and key not in params:
            raise missing_parameter(key)
    return out


def _as_list(value: Any, path: tuple[str, ...]) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    if isinstance(value, str):
        return [value]
    raise invalid(
        f"Invalid array: {param_name(path)}", param=param_name(path), code="parameter_invalid_array"
    )


def coerce(value: Any, spec: ParamSpec, path: tuple[str, ...]) -> Any:
    name = param_name(path)
    if value == "":
        if spec.emptyable or spec.kind in ("string", "any"):
            return ""
        if spec.required:
            raise empty_value(name)
        if spec.kind in ("object", "array", "map", "union"):
            return ""
        raise empty_value(name)
    kind = spec.kind
    if kind == "union":
        return _coerce_union(value, spec, path)
    if kind in ("string", "any"):
        if kind == "string" and not isinstance(value, str):
            raise invalid(f"Invalid string: {name}", param=name, code="parameter_invalid_string")
        return value
    if kind in ("integer", "number", "boolean", "enum") and not isinstance(value, str):
        raise invalid(f"Invalid {kind}: {name}", param=name, code=f"parameter_invalid_{kind}")
    if kind == "integer":
        if not _INT.match(value):
            raise invalid(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
        return int(value)
    if kind == "number":
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise invalid(f"Invalid decimal: {value}", param=name, code="parameter_invalid_decimal") from None
        if not number.is_finite():
            raise invalid(f"Invalid decimal: {value}", param=name, code="parameter_invalid_decimal")
        return str(number)
    if kind == "boolean":
        if value not in ("true", "false"):
            raise invalid(f"Invalid boolean: {value}", param=name, code="parameter_invalid_boolean")
        return value == "true"
    if kind == "enum":
        if value not in spec.enum:
            allowed = ", ".join(spec.enum[:-1]) + (
                f", or {spec.enum[-1]}" if len(spec.enum) > 1 else spec.enum[0]
            )
            raise invalid(
                f"Invalid {name}: must be one of {allowed}", param=name, code="parameter_invalid_enum"
            )
        return value
    if kind == "array":
        items = _as_list(value, path)
        item_spec = spec.items or ParamSpec("any")
        return [coerce(v, item_spec, (*path, str(i))) for i, v in enumerate(items)]
    if kind == "map":
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {name}", param=name, code="parameter_invalid_hash")
        value_spec = spec.items or ParamSpec("any")
        coerced = {k: coerce(v, value_spec, (*path, k)) if v != "" else "" for k, v in value.items()}
        if path[-1] == "metadata":
            check_metadata(coerced, name)
        return coerced
    if kind == "object":
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {name}", param=name, code="parameter_invalid_hash")
        out: dict[str, Any] = {}
        for key, sub in value.items():
            field = spec.fields.get(key)
            if field is None:
                raise unknown_parameter(param_name((*path, key)))
            out[key] = coerce(sub, field, (*path, key))
        for key, field in spec.fields.items():
            if field.required and key not in value:
                raise missing_parameter(param_name((*path, key)))
        return out
    return value


def _structural_match(value: Any, spec: ParamSpec) -> bool:
    if isinstance(value, dict):
        return spec.kind in ("object", "map", "any") or (
            spec.kind == "array" and all(k.isdigit() for k in value)
        )
    if isinstance(value, list):
        return spec.kind in ("array", "any")
    return spec.kind not in ("object", "map", "array")


def _coerce_union(value: Any, spec: ParamSpec, path: tuple[str, ...]) -> Any:
    candidates = [alt for alt in spec.alternatives if _structural_match(value, alt)] or list(
        spec.alternatives
    )
    first_error: StripeError | None = None
    for alt in candidates:
        try:
            return coerce(value, alt, path)
        except StripeError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error
