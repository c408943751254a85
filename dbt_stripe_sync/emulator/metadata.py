"""Stripe's metadata rules: 50 keys, keys <= 40 chars without brackets, values <= 500 chars."""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.emulator.errors import invalid

MAX_KEYS = 50
MAX_KEY_LENGTH = 40
MAX_VALUE_LENGTH = 500


def check_metadata(metadata: dict[str, Any], param: str = "metadata") -> None:
    """Validate one request's metadata hash (before merging)."""
    for key, value in metadata.items():
        if len(key) > MAX_KEY_LENGTH:
            raise invalid(
                f"Metadata keys can have up to {MAX_KEY_LENGTH} characters. "
                f"The key `{key[:50]}` is too long.",
                param=f"{param}[{key}]",
            )
        if "[" in key or "]" in key:
            raise invalid(f"Metadata keys may not contain `[` or `]`: `{key}`.", param=f"{param}[{key}]")
        if not isinstance(value, str):
            raise invalid(
                f"Invalid string: {param}[{key}]", param=f"{param}[{key}]", code="parameter_invalid_string"
            )
        if len(value) > MAX_VALUE_LENGTH:
            raise invalid(
                f"Metadata values can have up to {MAX_VALUE_LENGTH} characters, but you passed in a value "
                f"that is {len(value)} characters.",
                param=f"{param}[{key}]",
            )
    _check_count(metadata, param)


def _check_count(metadata: dict[str, Any], param: str) -> None:
    if len([v for v in metadata.values() if v != ""]) > MAX_KEYS:
        raise invalid(
            f"Metadata can have up to {MAX_KEYS} keys, but you passed in {len(metadata)} keys.", param=param
        )


def merge_metadata(
    current: dict[str, str], update: dict[str, str] | str | None, param: str = "metadata"
) -> dict[str, str]:
    """Stripe's update semantics: keys merge, "" deletes a key, metadata="" clears everything."""
    if update is None:
        return current
    if update == "":
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    _check_count(merged, param)
    return merged
