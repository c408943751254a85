"""Friendly configuration errors: every problem of a block, one line each, never a traceback."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROOT = "stripe_sync"
# Children of these keys are user-chosen names (Stripe paths), shown as `fields['address.line1']`.
_USER_KEYED = ("fields", "references")


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a model's `stripe_sync` block."""

    model: str
    key: str  # where, e.g. "stripe_sync.fields['address.line_1']"
    message: str  # what is wrong
    hint: str | None = None  # what would be right, e.g. "did you mean 'address.line1'?"

    def __str__(self) -> str:
        line = f"{self.model}: {self.key}: {self.message}"
        return f"{line} — {self.hint}" if self.hint else line


class ConfigError(ValueError):
    """Invalid `stripe_sync` configuration; carries every problem found."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems: list[ConfigProblem] = list(dict.fromkeys(problems))
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def key_path(*segments: Any) -> str:
    """`key_path("fields", "address.line1")` -> `stripe_sync.fields['address.line1']`."""
    out = ROOT
    for i, seg in enumerate(segments):
        if isinstance(seg, int) and not isinstance(seg, bool):
            out += f"[{seg}]"
        elif i == 1 and segments[0] in _USER_KEYED:
            out += f"['{seg}']"
        else:
            out += f".{seg}"
    return out


def did_you_mean(suggestion: str | None) -> str | None:
    return f"did you mean '{suggestion}'?" if suggestion else None


def describe_type(value: Any) -> str:
    """A YAML user's name for a value's type (never a Python repr)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__} value"


def quoted_list(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)
