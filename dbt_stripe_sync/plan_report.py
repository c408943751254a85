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
    """What the plans' creates (and tag bindings) will make, per account (None: the platform); the
    result is the platform's view, `in_account` gives a connected account's."""
    keys: dict[str | None, dict[str, dict[str, str]]] = {}
    emails: dict[str | None, dict[str, str]] = {}
    for plan in plans:
        model = plan.config.model
        for c in plan.changes:
            if c.action == "create":
                will_be = f"(after {model} row {c.key} is created)"
            elif c.action == "adopt" and c.stripe_id:  # bound by the run before later syncs plan
                will_be = c.stripe_id
            else:
                continue
            keys.setdefault(c.account, {}).setdefault(model, {})[c.key] = will_be
            email = c.params.get("email") if plan.config.object == "customer" else None
            if email and c.action == "create":
                emails.setdefault(c.account, {}).setdefault(str(email), f"{model} row {c.key}")
    views = {
        account: Upcoming(keys=keys.get(account, {}), emails=emails.get(account, {}))
        for account in {*keys, *emails}
    }
    platform = views.get(None, Upcoming())
    return Upcoming(keys=platform.keys, emails=platform.emails, accounts=views)


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


def still_rejected(
    store: StateStore,
    sync_name: str,
    run_id: str,
    model_relation: str | None = None,
    key_column: str | None = None,
) -> list[tuple[str, str]]:
    """Rows an earlier run rejected that this run did not retry (their data did not change), with the
    reason, in natural key order: a rerun shows them instead of `rejected 0`. Given the model, only
    rows still in it: a rejected row filtered out of the model (as its reason may advise) is gone, not
    waiting."""
    p = store.wh.placeholder
    in_model = ""
    if model_relation is not None and key_column is not None:
        key = store.wh.quote(key_column)
        in_model = f" and source_key in (select cast({key} as varchar(4000)) from {model_relation})"
    _, rows = store.wh.query(
        f"select source_key, last_error from {store.ledger} where sync_name = {p} and status = {p} "
        f"and (run_id is null or run_id <> {p}){in_model}",
        [sync_name, L.REJECTED, run_id],
    )
    found = [(str(k), f"(rejected earlier) {e or 'no reason recorded'}") for k, e in rows]
    return sorted(found, key=lambda r: natural_key(r[0]))
