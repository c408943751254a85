"""What `plan` hands on: the whole plan as JSON, its predicted outcome as a run report, and the rows
earlier syncs of the plan will create (so a chained `sync:` reference is planned as the run applies it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.plan import SyncPlan, Upcoming
from dbt_stripe_sync.plan_view import natural_key
from dbt_stripe_sync.report import SyncSummary


def upcoming_creates(plans: Sequence[SyncPlan]) -> Upcoming:
    keys: dict[str, frozenset[str]] = {}
    emails: dict[str, str] = {}
    for plan in plans:
        created = [c for c in plan.changes if c.action == "create"]
        keys[plan.config.model] = frozenset(c.key for c in created)
        if plan.config.object == "customer":
            for c in created:
                email = c.params.get("email")
                if email:
                    emails.setdefault(str(email), f"{plan.config.model} row {c.key}")
    return Upcoming(keys=keys, emails=emails)


def whole_plan(plans: Sequence[SyncPlan], sample: int) -> dict[str, Any]:
    """`plan --output`: every planned row (`rows`), plus the sample the terminal showed."""
    out = []
    for p in plans:
        data = p.to_dict(sample=None)
        data["sample"] = p.to_dict(sample=sample)["sample"]
        out.append(data)
    return {"plans": out}


def plan_summaries(plans: Sequence[SyncPlan]) -> list[SyncSummary]:
    """The predicted outcome of each plan, in the run report's terms."""
    summaries = []
    for p in plans:
        c = p.counts()
        rejects = sorted(
            (ch for ch in p.changes if ch.action == "reject"), key=lambda ch: natural_key(ch.key)
        )
        status = "blocked" if p.blocked else "partial" if rejects else "success"
        summaries.append(
            SyncSummary(
                p.config.model,
                p.config.object,
                status,
                counts={
                    "created": c["create"],
                    "updated": c["update"] + c["restore"] + c["replace"],
                    "deleted": c["delete"],
                    "skipped": c["skip"],
                    "rejected": c["reject"],
                    "api_calls": p.lookup_calls,
                },
                unchanged=p.unchanged,
                message=p.blocked,
                rejected_rows=[(ch.key, ch.reason or "") for ch in rejects],
            )
        )
    return summaries


def still_rejected(store: StateStore, sync_name: str, run_id: str) -> list[tuple[str, str]]:
    """Rows an earlier run rejected that this run did not retry (their data did not change), with the
    reason, in natural key order: a rerun shows them instead of `rejected 0`."""
    p = store.wh.placeholder
    _, rows = store.wh.query(
        f"select source_key, last_error from {store.ledger} where sync_name = {p} and status = {p} "
        f"and (run_id is null or run_id <> {p})",
        [sync_name, L.REJECTED, run_id],
    )
    found = [(str(k), f"(rejected earlier) {e or 'no reason recorded'}") for k, e in rows]
    return sorted(found, key=lambda r: natural_key(r[0]))
