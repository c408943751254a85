"""What `plan` hands on: the whole plan as JSON, its predicted outcome as a run report, and the rows
earlier syncs of the plan will create (so a chained `sync:` reference is planned as the run applies it)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.plan import Change, Upcoming
from dbt_stripe_sync.plan_digest import PlanDigest
from dbt_stripe_sync.plan_view import natural_key
from dbt_stripe_sync.report import SyncSummary
from dbt_stripe_sync.run_report import RunReport
from dbt_stripe_sync.stripe_objects import adapter_for


def upcoming_creates(plans: Sequence[PlanDigest]) -> Upcoming:
    """What earlier plans will create (or bind by tag), per account (None: the platform); the result
    is the platform's view, `in_account` gives a connected account's. Each plan kept them when a later
    sync references it (`keep.creates`)."""
    keys: dict[str | None, dict[str, dict[str, str]]] = {}
    emails: dict[str | None, dict[str, str]] = {}
    for plan in plans:
        model = plan.config.model
        for account, key, will_be in plan.created():
            keys.setdefault(account, {}).setdefault(model, {})[key] = will_be
        for (account, email), key in plan.created_emails().items():
            emails.setdefault(account, {}).setdefault(email, f"{model} row {key}")
    views = {
        account: Upcoming(keys=keys.get(account, {}), emails=emails.get(account, {}))
        for account in {*keys, *emails}
    }
    platform = views.get(None, Upcoming())
    return Upcoming(keys=platform.keys, emails=platform.emails, accounts=views)


def creates_needed(configs: Sequence[SyncConfig], index: int) -> bool:
    """Whether a later sync of the plan references the rows `configs[index]` creates."""
    config = configs[index]
    for later in configs[index + 1 :]:
        for ref in later.references:
            if ref.sync == config.model or (ref.by == "email" and config.object == "customer"):
                return True
    return False


def write_whole_plan(path: str, plans: Sequence[PlanDigest], sample: int, report: RunReport) -> None:
    """`plan --output`: the run report's shape (design.md), predicted — `run_id`, `command`, `status`,
    `started_at`, `finished_at`, `syncs[]` with `counts`, `rejected_rows`, ... — each sync adding the
    plan itself: `mode`, `model_rows`, `actions` (count per planned action), `blocked`, `warnings`,
    `rows` (every planned row) and `sample` (the rows the terminal showed). `plans` is the same
    content in the layout earlier versions wrote (kept for readers of it). Rows are written one by one
    from the digests' files, never all held at once."""
    token = uuid.uuid4().hex  # a placeholder no value of the plan can equal
    detail: dict[str, dict[str, Any]] = {}
    legacy = []
    for i, p in enumerate(plans):
        data = p.to_dict(sample=sample)
        sample_rows = data.pop("sample")
        data["rows"] = [f"{token}:{i}"] if p.total else []
        data["sample"] = sample_rows
        legacy.append(data)
        detail[p.config.model] = data
    as_dict = report.to_dict()
    syncs = []
    for s in as_dict["syncs"]:
        data = detail.get(s["model"])
        if data is not None:
            s = {**s, **{k: v for k, v in data.items() if k not in s and k != "counts"}}
            s["actions"] = data["counts"]
        syncs.append(s)
    head = {k: v for k, v in as_dict.items() if k != "syncs"}
    text = json.dumps({**head, "command": "plan", "syncs": syncs, "plans": legacy}, indent=2, default=str)
    with open(path, "w", encoding="utf-8") as fh:
        for n, line in enumerate(text.split("\n")):
            if n:
                fh.write("\n")
            stripped = line.lstrip(" ")
            if not stripped.startswith(f'"{token}:'):
                fh.write(line)
                continue
            pad = line[: len(line) - len(stripped)]
            for r, row in enumerate(plans[int(stripped[len(token) + 2 : -1])].rows()):
                fh.write((",\n" if r else "") + pad)
                fh.write(json.dumps(row, indent=2, default=str).replace("\n", "\n" + pad))


def plan_summaries(plans: Sequence[PlanDigest]) -> list[SyncSummary]:
    """The predicted outcome of each plan, in the run report's terms."""
    summaries = []
    for p in plans:
        c = p.counts()
        status = "blocked" if p.blocked else "partial" if c["reject"] else "success"
        if p.blocked:  # the run sends and records nothing for it: it counts nothing either
            c = dict.fromkeys(c, 0)
        # what the run will report: a price's delete is always an archive (a product's depends on
        # its prices at send time, so it stays a predicted delete)
        archives = adapter_for(p.config.object).always_archives
        summaries.append(
            SyncSummary(
                p.config.model,
                p.config.object,
                status,
                counts={
                    "created": c["create"],
                    "updated": c["update"] + c["restore"] + c["replace"],
                    "deleted": 0 if archives else c["delete"],
                    "archived": c["delete"] if archives else 0,
                    "skipped": c["skip"],
                    "rejected": c["reject"],
                    "api_calls": p.lookup_calls,
                },
                # an adopted row is bound with nothing to send: the run counts it unchanged
                unchanged=p.unchanged + c.get("adopt", 0),
                message=p.blocked,
                rejected_rows=p.rejected_rows(),
            )
        )
    return summaries


def with_earlier_rejects(
    digest: PlanDigest, store: StateStore | None, ledger_relation: str, model_relation: str
) -> None:
    """Add to the plan the rows earlier runs rejected that it does not retry (their data did not
    change), still in the model, as `reject` rows, `(rejected earlier) <reason>`, instead of
    `unchanged`: the run counts them as rejected and exits 1, so the plan predicts exactly that.
    `ledger_relation` is the ledger as plan reads it (an older ledger, not migrated by a plan, lacks
    newer columns)."""
    if store is None or digest.blocked:
        return
    p = store.wh.placeholder
    key = store.wh.quote(digest.config.primary_key)
    _, rows = store.wh.query(
        f"select source_key, last_error, stripe_id, stripe_account from {ledger_relation} as ledger "
        f"where sync_name = {p} and status = {p} "
        f"and source_key in (select cast({key} as varchar(4000)) from {model_relation})",
        [digest.config.name, L.REJECTED],
    )
    retried = digest.retried_rejects()
    earlier = [
        Change(str(k), "reject", stripe_id=sid, account=account, reason=_earlier(error))
        for k, error, sid, account in sorted(rows, key=lambda r: natural_key(str(r[0])))
        if str(k) not in retried
    ]
    if earlier:
        digest.add(earlier)
        digest.unchanged = max(digest.unchanged - len(earlier), 0)


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
    found = [(str(k), _earlier(e)) for k, e in rows]
    return sorted(found, key=lambda r: natural_key(r[0]))


def _earlier(error: str | None) -> str:
    return f"(rejected earlier) {error or 'no reason recorded'}"
