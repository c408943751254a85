"""JSON Schema (Draft 2020-12) of the `stripe_sync` block's shape, with friendly error translation.

Only the shape lives here; rules that depend on the Stripe object (match fields, field paths, which
options apply) are in `objects.py`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import ConfigProblem, describe_type, did_you_mean, key_path, quoted_list
from .model import MODES, OBJECTS

_COLUMN: dict[str, Any] = {"type": "string", "minLength": 1, "description": "a model column name"}

OPTION_VALUES: dict[str, dict[str, Any]] = {
    "on_price_change": {"enum": ["replace", "reject"]},
    "move_subscriptions": {"type": "boolean"},
    "proration_behavior": {"enum": ["create_prorations", "none", "always_invoice"]},
    "void_finalized": {"type": "boolean"},
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "stripe_sync",
    "type": "object",
    "required": ["object", "mode", "primary_key"],
    "additionalProperties": False,
    "properties": {
        "object": {"enum": list(OBJECTS)},
        "mode": {"enum": list(MODES)},
        "primary_key": _COLUMN,
        "match": {
            "type": "object",
            "required": ["field", "column"],
            "additionalProperties": False,
            "properties": {"field": {"type": "string", "minLength": 1}, "column": _COLUMN},
        },
        "fields": {"type": "object", "additionalProperties": _COLUMN},
        "references": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["column"],
                "additionalProperties": False,
                "properties": {
                    "by": {"enum": ["email"]},
                    "sync": {"type": "string", "minLength": 1},
                    "column": _COLUMN,
                },
                "oneOf": [{"required": ["by"]}, {"required": ["sync"]}],
            },
        },
        "on_null": {"enum": ["skip", "clear"]},
        # Stripe Connect: the connected account written to, for every row or per row from a column
        "account": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "object",
                    "required": ["column"],
                    "additionalProperties": False,
                    "properties": {"column": _COLUMN},
                },
            ]
        },
        "delete": {"enum": ["nothing", "delete"]},
        **OPTION_VALUES,
    },
}

TOP_LEVEL_KEYS: tuple[str, ...] = tuple(SCHEMA["properties"])

_REQUIRED_HELP: dict[str, str] = {
    "object": f"which Stripe object this model syncs: one of {quoted_list(OBJECTS)}",
    "mode": f"one of {quoted_list(MODES)}",
    "primary_key": "the model column that identifies a row (unique, not null)",
    "field": "the Stripe field to match on, e.g. 'email' or 'id'",
    "column": "the model column holding the value",
}

_SHAPE_HINTS: dict[str | None, str] = {
    "match": "write `match: {field: email, column: <column>}`",
    "fields": "write one Stripe field per line: `fields: {name: full_name, address.city: city}`",
    "references": "write `references: {customer: {by: email, column: <column>}}`",
    "reference": "write `{by: email, column: <column>}` or `{sync: <model name>, column: <column>}`",
    "account": "write `account: acct_123` (one connected account) or `account: {column: <column>}` (per row)",
}

_VALIDATOR = Draft202012Validator(SCHEMA)


def check_shape(model: str, block: Any) -> list[ConfigProblem]:
    """Every shape problem of `block`, translated into plain words."""
    if not isinstance(block, Mapping):
        return [
            ConfigProblem(
                model,
                key_path(),
                f"must be a mapping of settings, got {describe_type(block)}",
                "write e.g. `stripe_sync: {object: customer, mode: upsert, primary_key: id, fields: {...}}`",
            )
        ]
    problems: list[ConfigProblem] = []
    errors = sorted(_VALIDATOR.iter_errors(dict(block)), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        problems.extend(_translate(model, error))
    return problems


def _translate(model: str, error: ValidationError) -> list[ConfigProblem]:
    path = list(error.absolute_path)
    key = key_path(*path)
    value = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    validator = error.validator
    if validator == "additionalProperties":
        return _unknown_keys(model, path, value, schema)
    if validator == "required":
        return _missing_keys(model, path, value, schema)
    if validator == "enum":
        return [_bad_enum(model, key, value, list(schema.get("enum", [])))]
    if validator == "type":
        expected = schema.get("type")
        what = {"string": "a string", "object": "a mapping", "boolean": "true or false"}.get(str(expected))
        what = what or str(expected)
        if schema is _COLUMN or schema.get("description") == _COLUMN["description"]:
            what = "a column name (a string)"
        hint = _SHAPE_HINTS.get(path[0] if len(path) == 1 else None) if path else None
        if len(path) == 2 and path[0] == "references":
            hint = _SHAPE_HINTS["reference"]
        return [ConfigProblem(model, key, f"must be {what}, got {describe_type(value)}", hint)]
    if validator == "minLength":
        return [ConfigProblem(model, key, "must not be empty")]
    if validator == "oneOf" and path == ["account"]:
        if isinstance(value, Mapping):
            extras = [str(k) for k in value if k != "column"]
            what = f"unknown key {quoted_list(extras)}" if extras else "`column` is required (a column name)"
            return [ConfigProblem(model, key, f"{what}: a per-row account is `{{column: <column>}}`")]
        return [
            ConfigProblem(
                model,
                key,
                f"must be an account ID or {{column: ...}}, got {describe_type(value)}",
                _SHAPE_HINTS["account"],
            )
        ]
    if validator == "oneOf":
        if not isinstance(value, Mapping):
            return []  # already reported as "must be a mapping"
        return [
            ConfigProblem(
                model,
                key,
                "a reference needs exactly one of `by` and `sync`",
                "use `by: email` (customer look-up) or `sync: <model name>` (another synced model)",
            )
        ]
    return [ConfigProblem(model, key, "is not valid here")]


def _unknown_keys(model: str, path: list[Any], value: Any, schema: Mapping[str, Any]) -> list[ConfigProblem]:
    allowed = list(schema.get("properties", {}))
    extras = [k for k in value if k not in allowed] if isinstance(value, Mapping) else []
    problems = []
    for extra in extras:
        close = difflib.get_close_matches(str(extra), allowed, n=1, cutoff=0.6)
        hint = did_you_mean(close[0]) if close else f"allowed keys: {quoted_list(allowed)}"
        problems.append(ConfigProblem(model, key_path(*path, str(extra)), "unknown key", hint))
    return problems


def _missing_keys(model: str, path: list[Any], value: Any, schema: Mapping[str, Any]) -> list[ConfigProblem]:
    present = value if isinstance(value, Mapping) else {}
    return [
        ConfigProblem(model, key_path(*path, name), "is required", _REQUIRED_HELP.get(name))
        for name in schema.get("required", [])
        if name not in present
    ]


def _bad_enum(model: str, key: str, value: Any, allowed: list[Any]) -> ConfigProblem:
    names = [str(a) for a in allowed]
    if not isinstance(value, str):
        return ConfigProblem(model, key, f"must be one of {quoted_list(names)}, got {describe_type(value)}")
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.5)
    noun = "Stripe object" if key.endswith(".object") else "value"
    return ConfigProblem(
        model,
        key,
        f"unknown {noun} '{value}'; allowed: {quoted_list(names)}",
        did_you_mean(close[0]) if close else None,
    )
