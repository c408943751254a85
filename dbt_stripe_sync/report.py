"""What users read: the per-model run summary and the field-level plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from dbt_stripe_sync.plan import SyncPlan

COLUMNS = ("created", "updated", "deleted", "archived", "skipped", "rejected", "api_calls")


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


def print_summary(out: TextIO, summaries: Sequence[SyncSummary]) -> None:
    if not summaries:
        out.write("No model with a stripe_sync block was selected.\n")
        return
    width = max(len("model"), *(len(s.model) for s in summaries))
    head = f"{'model':<{width}}  {'object':<12} {'status':<8} " + " ".join(f"{c:>9}" for c in COLUMNS)
    out.write(head + f" {'unchanged':>9}\n")
    out.write("-" * (len(head) + 10) + "\n")
    for s in summaries:
        cells = " ".join(f"{s.counts.get(c, 0):>9}" for c in COLUMNS)
        out.write(f"{s.model:<{width}}  {s.object:<12} {s.status:<8} {cells} {s.unchanged:>9}\n")
    for s in summaries:
        if s.message:
            out.write(f"\n{s.model}: {s.message}\n")
        for key, reason in s.rejected_rows[:10]:
            out.write(f"  {s.model} row {key}: {reason}\n")
        extra = s.counts.get("rejected", 0) - min(len(s.rejected_rows), 10)
        if extra > 0:
            out.write(f"  ... and {extra} more rejected rows (see last_error in the ledger)\n")


def print_plan(out: TextIO, plans: Sequence[SyncPlan], sample: int = 5) -> None:
    if not plans:
        out.write("No model with a stripe_sync block was selected.\n")
        return
    for plan in plans:
        counts = plan.counts()
        summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n) or "nothing to do"
        out.write(
            f"\n{plan.config.model} -> Stripe {plan.config.object} ({plan.config.mode}): {summary}; "
            f"{plan.unchanged} unchanged of {plan.model_rows} rows\n"
        )
        if plan.blocked:
            out.write(f"  BLOCKED: {plan.blocked}\n")
        for w in plan.warnings:
            out.write(f"  warning: {w}\n")
        data = plan.to_dict(sample=sample)
        for row in data["sample"]:
            target = f" {row['stripe_id']}" if row["stripe_id"] else ""
            note = f"  ({row['reason']})" if row["reason"] else ""
            out.write(f"  {row['action']:<8} row {row['key']}{target}{note}\n")
            for path, ba in row["fields"].items():
                out.write(f"      {path}: {_show(ba['before'])} -> {_show(ba['after'])}\n")


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
