"""The run report: what `run --output` writes, what a `json` alert posts, what the Python API returns.

Its JSON shape is a contract (shared/design.md, "Run report"); `to_dict()` produces exactly it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dbt_stripe_sync.report import SyncSummary

COUNT_KEYS = ("created", "updated", "deleted", "archived", "skipped", "rejected", "unchanged")
FAILED_SYNC = frozenset({"blocked", "error"})


class SyncFailed(Exception):
    """Raised by `RunReport.raise_for_status()` when a sync failed or rows were rejected."""

    def __init__(self, report: RunReport) -> None:
        self.report = report
        bad = [s for s in report.syncs if s.status not in ("success", "skipped")]
        lines = [f"{s.model}: {s.status}" + (f" — {s.message}" if s.message else "") for s in bad]
        super().__init__(f"dbt-stripe-sync run {report.status}: " + "; ".join(lines))


@dataclass(frozen=True)
class RejectedRow:
    key: str
    reason: str


@dataclass(frozen=True)
class SyncReport:
    model: str
    object: str
    status: str  # success | partial | blocked | error | skipped
    counts: dict[str, int]
    api_calls: int
    duration_s: float
    message: str | None
    rejected_rows: tuple[RejectedRow, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "object": self.object,
            "status": self.status,
            "counts": {k: self.counts.get(k, 0) for k in COUNT_KEYS},
            "api_calls": self.api_calls,
            "duration_s": self.duration_s,
            "message": self.message,
            "rejected_rows": [{"key": r.key, "reason": r.reason} for r in self.rejected_rows],
        }


@dataclass(frozen=True)
class RunReport:
    """The outcome of one `run` (or, from `plan`, the predicted outcome: nothing was sent)."""

    run_id: str
    status: str  # success | partial | failed
    started_at: dt.datetime
    finished_at: dt.datetime
    syncs: tuple[SyncReport, ...]
    plans: tuple[dict[str, Any], ...] = field(default=())  # plan(): every planned row, per sync
    error: str | None = None  # the run stopped before syncing (lock busy, stale model, ...): why

    @property
    def exit_code(self) -> int:
        """The CLI's exit code for this outcome: 0 everything synced, 1 otherwise."""
        return 0 if self.status == "success" else 1

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def raise_for_status(self) -> RunReport:
        """For orchestrators: raise SyncFailed unless every sync succeeded; return self otherwise."""
        if not self.ok:
            raise SyncFailed(self)
        return self

    def sync(self, model: str) -> SyncReport:
        for s in self.syncs:
            if s.model == model:
                return s
        raise KeyError(
            f"no sync for model {model!r} in this report ({', '.join(x.model for x in self.syncs)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "syncs": [s.to_dict() for s in self.syncs],
            **({"error": self.error} if self.error is not None else {}),
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def write(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2)
            fh.write("\n")


def overall_status(statuses: Sequence[str]) -> str:
    """success: every sync succeeded (or was skipped because its dbt model failed, as dbt reports);
    failed: no sync got anything through; partial: in between."""
    ran = [s for s in statuses if s != "skipped"]
    if all(s == "success" for s in ran):
        return "success"
    if ran and all(s in FAILED_SYNC for s in ran):
        return "failed"
    return "partial"


def sync_report(s: SyncSummary) -> SyncReport:
    counts = {k: int(s.counts.get(k, 0)) for k in COUNT_KEYS if k != "unchanged"}
    counts["unchanged"] = s.unchanged
    return SyncReport(
        model=s.model,
        object=s.object,
        status=s.status,
        counts=counts,
        api_calls=int(s.counts.get("api_calls", 0)),
        duration_s=round(s.duration_s, 3),
        message=s.message,
        rejected_rows=tuple(RejectedRow(str(k), r) for k, r in s.rejected_rows),
    )


def build_report(
    run_id: str,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    summaries: Sequence[SyncSummary],
    plans: Sequence[dict[str, Any]] = (),
) -> RunReport:
    syncs = tuple(sync_report(s) for s in summaries)
    return RunReport(
        run_id=run_id,
        status=overall_status([s.status for s in syncs]),
        started_at=started_at,
        finished_at=finished_at,
        syncs=syncs,
        plans=tuple(plans),
    )


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat().replace("+00:00", "Z")
