"""What users read: the per-model run summary and the field-level plan.

Colour only on a terminal and never when NO_COLOR is set (https://no-color.org); CI logs stay plain.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from dbt_stripe_sync.plan import SyncPlan

COLUMNS = ("created", "updated", "deleted", "archived", "skipped", "rejected", "api_calls")
_STATUS_COLOUR = {"success": "32", "partial": "33", "blocked": "31", "error": "31", "skipped": "2"}
_ACTION_COLOUR = {"create": "32", "update": "33", "restore": "33", "replace": "35", "delete": "31"}
_ACTION_COLOUR["reject"] = "31"


@dataclass
class SyncSummary:
    model: str
    object: str
    status: str  # success | partial | blocked | error | skipped
    counts: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    duration_s: float = 0.0
    message: str | None = None
    rejected_rows: list[tuple[str, str]] = field(default_factory=list)
    earlier_rejected: list[tuple[str, str]] = field(default_factory=list)  # still rejected from past runs


def use_colour(out: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def _paint(text: str, code: str | None, on: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if on and code else text


def _without_prefix(model: str, message: str) -> str:
    """A message that already names its model (a SyncAborted, say) is not prefixed twice."""
    prefix = f"{model}: "
    while message.startswith(prefix):
        message = message[len(prefix) :]
    return message


def print_summary(out: TextIO, summaries: Sequence[SyncSummary]) -> None:
    if not summaries:
        out.write("No model with a stripe_sync block was selected.\n")
        return
    colour = use_colour(out)
    width = max(len("model"), *(len(s.model) for s in summaries))
    head = f"{'model':<{width}}  {'object':<12} {'status':<8} " + " ".join(f"{c:>9}" for c in COLUMNS)
    out.write(_paint(head + f" {'unchanged':>9}", "1", colour) + "\n")
    out.write("-" * (len(head) + 10) + "\n")
    for s in summaries:
        cells = " ".join(f"{s.counts.get(c, 0):>9}" for c in COLUMNS)
        status = _paint(f"{s.status:<8}", _STATUS_COLOUR.get(s.status), colour)
        out.write(f"{s.model:<{width}}  {s.object:<12} {status} {cells} {s.unchanged:>9}\n")
    for s in summaries:
        if s.message:
            out.write(f"\n{s.model}: {_without_prefix(s.model, s.message)}\n")
        for key, reason in s.rejected_rows[:10]:
            out.write(f"  {s.model} row {key}: {reason}\n")
        extra = s.counts.get("rejected", 0) - min(len(s.rejected_rows), 10)
        if extra > 0:
            out.write(f"  ... and {extra} more rejected rows (see last_error in the ledger)\n")


def print_plan(out: TextIO, plans: Sequence[SyncPlan], sample: int = 5) -> None:
    if not plans:
        out.write("No model with a stripe_sync block was selected.\n")
        return
    colour = use_colour(out)
    for plan in plans:
        counts = plan.counts()
        summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n) or "nothing to do"
        out.write(
            _paint(f"\n{plan.config.model} -> Stripe {plan.config.object} ({plan.config.mode})", "1", colour)
            + f": {summary}; {plan.unchanged} unchanged of {plan.model_rows} rows\n"
        )
        if plan.blocked:
            out.write(_paint(f"  BLOCKED: {_without_prefix(plan.config.model, plan.blocked)}", "31", colour))
            out.write("\n")
        for w in plan.warnings:
            out.write(f"  warning: {w}\n")
        data = plan.to_dict(sample=sample)
        for row in data["sample"]:
            target = f" {row['stripe_id']}" if row["stripe_id"] else ""
            note = f"  ({row['reason']})" if row["reason"] else ""
            action = _paint(f"{row['action']:<8}", _ACTION_COLOUR.get(row["action"]), colour)
            out.write(f"  {action} row {row['key']}{target}{note}\n")
            for path, ba in row["fields"].items():
                drift = ""
                if "ledger" in ba and ba["ledger"] != ba["before"]:
                    drift = _paint(f"  (drift: last synced {_show(ba['ledger'])})", "33", colour)
                out.write(f"      {path}: {_show(ba['before'])} -> {_show(ba['after'])}{drift}\n")


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
