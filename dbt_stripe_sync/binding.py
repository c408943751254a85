"""Which Stripe object each changed row belongs to, where the ledger alone cannot say.

- Ledger gaps: a sync with no ledger rows (its first run, or a dropped state schema) may still own
  objects in Stripe; they are found by their tag and bound, never created again (adoption.py).
- Re-keys: a row matching (by email or ID) an object that the ledger binds to a key no longer in
  the model takes that object over; the old key is retired and nothing is deleted.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dbt_stripe_sync import adoption
from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffResult
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.planner import Lookups
from dbt_stripe_sync.stripe_objects.base import StripeObject


def _unbound(row) -> bool:
    return row.change != "deleted" and (
        row.ledger is None or not row.ledger.stripe_id or row.ledger.status == L.DELETED
    )


def bind(
    config: SyncConfig,
    adapter: StripeObject,
    diff: DiffResult,
    gw: StripeGateway | None,
    store: StateStore | None,
    model_relation: str,
    lookups: Lookups,
    once: dict[str, Any] | None = None,
) -> Lookups:
    """`once`: when `diff` is one chunk of a sync, a dict kept across its chunks, so what concerns the
    whole sync (is its ledger empty, the scan for tagged objects) is asked once, not per chunk."""
    once = {} if once is None else once
    unbound = [r for r in diff.rows if _unbound(r)]
    adopted: dict[str, dict] = {}
    calls = 0
    matched_on_email = config.match is not None and config.match.field == "email"
    if "ledger_empty" not in once:
        once["ledger_empty"] = store is None or store.count_rows(config.name) == 0
    ledger_empty = once["ledger_empty"]
    # Rows matched on email or on a Stripe ID column find their object that way; every other row
    # was bound only by the ledger, so without it the tag is the only way back to the object.
    matched_on_id = config.match is not None and config.match.field == "id" and bool(config.match.column)
    if gw is not None and unbound and ledger_empty and not matched_on_email and not matched_on_id:
        if "tagged" not in once:
            before = gw.stats.for_scope(config.name).requests
            with gw.scope(config.name):
                once["tagged"] = adoption.scan(gw, adapter, config.name)
            calls = gw.stats.for_scope(config.name).requests - before
        adopted = adoption.adopt_by_key(
            adapter.name, once["tagged"], config.name, [r.key for r in unbound], config.state_marker
        )

    matched: set[str] = set()
    if matched_on_email:
        column = config.match.column  # type: ignore[union-attr]
        for row in unbound:
            found = lookups.by_email.get(str(row.values.get(column)), [])
            if found:
                matched.add(found[0]["id"])
    elif config.match is not None and config.match.field == "id" and config.match.column:
        matched = {str(r.values[config.match.column]) for r in unbound if r.values.get(config.match.column)}
    owners = (
        store.owners(config.name, matched, model_relation, config.primary_key)
        if store is not None and matched
        else {}
    )
    return replace(
        lookups,
        adopted=adopted,
        claimed={sid: key for sid, (key, _) in owners.items()},
        departed=frozenset(key for key, present in owners.values() if not present),
        calls=lookups.calls + calls,
    )
