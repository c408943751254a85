"""`plan --against stripe`: before-values read from Stripe itself, not from the ledger.

The Stripe objects of the plan's changed rows are read (products in batches of 100 with
`GET /v1/products?ids[]=`; Stripe has no batched read for the other objects, so one GET each),
each sent field's "before" becomes Stripe's current value, and a field whose Stripe value differs
from what the tool last sent is reported as drift (changed in the dashboard, say). A Connect row's
object is read in the row's connected account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.payload import from_json
from dbt_stripe_sync.plan import SyncPlan
from dbt_stripe_sync.plan_view import natural_key
from dbt_stripe_sync.stripe_objects import adapter_for
from dbt_stripe_sync.tagging import TAG_KEY

_BATCHED = {"product": ("/v1/products", 100)}
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


def read_objects(gw: StripeGateway, object_type: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    if object_type in _BATCHED:
        path, size = _BATCHED[object_type]
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            page = gw.request("get", path, {"ids": chunk, "limit": size})
            found.update({o["id"]: o for o in page.get("data", [])})
        return found
    adapter = adapter_for(object_type)
    for stripe_id in ids:
        obj = adapter.retrieve(gw, stripe_id)
        if obj is not None:
            found[stripe_id] = obj
    return found


def value_at(obj: Mapping[str, Any], path: str) -> Any:
    """The value of a flat field path (`address.city`, `items[0].price`) in a Stripe object; an
    expanded object stands for its ID, a list object for its `data`."""
    current: Any = obj
    for name, index in _STEP.findall(path):
        if isinstance(current, Mapping) and current.get("object") == "list":
            current = current.get("data")
        if name:
            if not isinstance(current, Mapping) or name not in current:
                return None
            current = current[name]
        else:
            if not isinstance(current, list) or int(index) >= len(current):
                return None
            current = current[int(index)]
    if isinstance(current, Mapping) and "id" in current and "object" in current:
        return current["id"]
    return current


def _same(a: Any, b: Any) -> bool:
    return a == b or (a is not None and b is not None and str(a) == str(b))


def against_stripe(gw: StripeGateway, plan: SyncPlan) -> SyncPlan:
    """The plan with Stripe's current values as `before` and drift noted in warnings."""
    targets = [
        c for c in plan.changes if c.stripe_id and c.action in ("update", "restore", "replace", "delete")
    ]
    if not targets:
        return plan
    # Stripe Connect: each object is read inside the account the row writes to (an ID means nothing
    # outside its account, and the same chosen product ID can exist in several)
    objects: dict[tuple[str | None, str], dict[str, Any]] = {}
    for account in sorted({c.account for c in targets}, key=lambda a: a or ""):
        ids = sorted({c.stripe_id for c in targets if c.stripe_id and c.account == account})
        with gw.scope(plan.config.name), gw.acting_for(account):
            found = read_objects(gw, plan.config.object, ids)
        objects.update({(account, stripe_id): obj for stripe_id, obj in found.items()})
    changes, drift = [], []
    for ch in plan.changes:
        obj = objects.get((ch.account, ch.stripe_id or "")) if ch in targets else None
        if obj is None:
            if ch in targets:
                drift.append(f"row {ch.key}: {ch.stripe_id} is not in Stripe any more")
            changes.append(ch)
            continue
        last_sent = from_json(ch.ledger.payload_json) if ch.ledger and ch.ledger.payload_json else {}
        before = {path: value_at(obj, path) for path in ch.params}
        changes.append(replace(ch, before=before, ledger_before={p: last_sent.get(p) for p in ch.params}))
        for path, sent in sorted(last_sent.items()):
            if path.endswith(TAG_KEY) or path in ch.params:
                continue
            now = value_at(obj, path)
            if not _same(now, sent):
                drift.append(
                    f"row {ch.key}: {path} is {now!r} in Stripe but was synced as {sent!r} (changed outside "
                    "dbt-stripe-sync; re-sent only when the row changes, or with run --full-refresh)"
                )
        for path in ch.params:
            if path in last_sent and not _same(before[path], last_sent[path]):
                drift.append(
                    f"row {ch.key}: {path} is {before[path]!r} in Stripe, synced as {last_sent[path]!r}"
                )
    drift.sort(key=lambda w: natural_key(w.split(":", 1)[0]))
    return replace(plan, changes=tuple(changes), warnings=(*plan.warnings, *(f"drift: {d}" for d in drift)))
