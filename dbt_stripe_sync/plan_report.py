"""What `plan` hands on: the whole plan as JSON, its predicted outcome as a run report, and the rows
earlier syncs of the plan will create (so a chained `sync:` reference is planned as the run applies it)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.plan import Upcoming
from dbt_stripe_sync.plan_digest import PlanDigest
from dbt_stripe_sync.plan_view import natural_key
from dbt_stripe_sync.report import SyncSummary


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


def write_whole_plan(path: str, plans: Sequence[PlanDigest], sample: int) -> None:
    """`plan --output`: every planned row (`rows`), plus the sample the terminal showed, written row by
    row — the text `json.dump(..., indent=2, default=str)` gives for the whole plan held at once."""
    token = uuid.uuid4().hex  # a placeholder no value of the plan can equal
    doc = []
    for i, p in enumerate(plans):
        data = p.to_dict(sample=sample)
        sample_rows = data.pop("sample")
        data["rows"] = [f"{token}:{i}"] if p.total else []
        data["sample"] = sample_rows
        doc.append(data)
    text = json.dumps({"plans": doc}, indent=2, default=str)
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
                rejected_rows=p.rejected_rows(),
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
