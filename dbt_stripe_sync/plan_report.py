"""What `plan` hands on: the whole plan as JSON, its predicted outcome as a run report, and the rows
earlier syncs of the plan will create (so a chained `sync:` reference is planned as the run applies it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.plan import Change, SyncPlan, Upcoming
from dbt_stripe_sync.plan_view import natural_key
from dbt_stripe_sync.report import SyncSummary
from dbt_stripe_sync.run_report import RunReport


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


def whole_plan(plans: Sequence[SyncPlan], sample: int, report: RunReport) -> dict[str, Any]:
    """`plan --output`: the run report's shape (design.md), predicted — `run_id`, `command`, `status`,
    `started_at`, `finished_at`, `syncs[]` with `counts`, `rejected_rows`, ... — each sync adding the
    plan itself: `mode`, `model_rows`, `actions` (count per planned action), `blocked`, `warnings`,
    `rows` (every planned row) and `sample` (the rows the terminal showed). `plans` is the same
    content in the layout earlier versions wrote (kept for readers of it)."""
    detail: dict[str, dict[str, Any]] = {}
    legacy = []
    for p in plans:
        data = p.to_dict(sample=None)
        data["sample"] = p.to_dict(sample=sample)["sample"]
        legacy.append(data)
        detail[p.config.model] = data
    syncs = []
    for s in report.to_dict()["syncs"]:
        data = detail.get(s["model"])
        if data is not None:
            s = {**s, **{k: v for k, v in data.items() if k not in s and k != "counts"}}
            s["actions"] = data["counts"]
        syncs.append(s)
    head = {k: v for k, v in report.to_dict().items() if k != "syncs"}
    return {**head, "command": "plan", "syncs": syncs, "plans": legacy}


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


def with_earlier_rejects(plan: SyncPlan, store: StateStore | None, ledger_relation: str) -> SyncPlan:
    """The plan with the rows earlier runs rejected that it does not retry (their data did not change)
    as `reject` rows, `(rejected earlier) <reason>`, instead of `unchanged`: the run counts them as
    rejected and exits 1, so the plan predicts exactly that. `ledger_relation` is the ledger as plan
    reads it (an older ledger, not migrated by a plan, lacks newer columns)."""
    if store is None or plan.blocked:
        return plan
    planned = {c.key for c in plan.changes}
    p = store.wh.placeholder
    _, rows = store.wh.query(
        f"select source_key, last_error, stripe_id, stripe_account from {ledger_relation} as ledger "
        f"where sync_name = {p} and status = {p}",
        [plan.config.name, L.REJECTED],
    )
    earlier = [
        Change(str(key), "reject", stripe_id=sid, account=account, reason=_earlier(error))
        for key, error, sid, account in sorted(rows, key=lambda r: natural_key(str(r[0])))
        if str(key) not in planned
    ]
    if not earlier:
        return plan
    return replace(plan, changes=(*plan.changes, *earlier), unchanged=max(plan.unchanged - len(earlier), 0))


def still_rejected(store: StateStore, sync_name: str, run_id: str) -> list[tuple[str, str]]:
    """Rows an earlier run rejected that this run did not retry (their data did not change), with the
    reason, in natural key order: a rerun shows them instead of `rejected 0`."""
    p = store.wh.placeholder
    _, rows = store.wh.query(
        f"select source_key, last_error from {store.ledger} where sync_name = {p} and status = {p} "
        f"and (run_id is null or run_id <> {p})",
        [sync_name, L.REJECTED, run_id],
    )
    found = [(str(k), _earlier(e)) for k, e in rows]
    return sorted(found, key=lambda r: natural_key(r[0]))


def _earlier(error: str | None) -> str:
    return f"(rejected earlier) {error or 'no reason recorded'}"
