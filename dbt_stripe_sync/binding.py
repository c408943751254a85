"""Which Stripe object each changed row belongs to, where the ledger alone cannot say.

- Ledger gaps: a sync with no ledger rows (its first run, or a dropped state schema) may still own
  objects in Stripe; they are found by their tag and bound, never created again (adoption.py).
- Re-keys: a row matching (by email or ID) an object that the ledger binds to a key no longer in
  the model takes that object over; the old key is retired and nothing is deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from dbt_stripe_sync import adoption
from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffResult
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.planner import Lookups
from dbt_stripe_sync.row_chunk import RowChunk
from dbt_stripe_sync.stripe_objects.base import StripeObject


def _unbound(row) -> bool:
    return row.change != "deleted" and (
        row.ledger is None or not row.ledger.stripe_id or row.ledger.status == L.DELETED
    )


def _unbound_rows(diff: DiffResult) -> tuple[list[str], Callable[[str], Sequence[Any]]]:
    """The keys of the rows not yet tied to a Stripe object, and a column's values of those rows (None
    where a row has none); read from the columns of a row_chunk.RowChunk."""
    rows = diff.rows
    if isinstance(rows, RowChunk):
        if rows.bare:
            return list(rows.keys), rows.column
        mask = rows.unbound()
        keys = [k for k, u in zip(rows.keys, mask, strict=True) if u]
        return keys, lambda c: [v for v, u in zip(rows.column(c), mask, strict=True) if u]
    unbound = [r for r in rows if _unbound(r)]
    return [r.key for r in unbound], lambda c: [r.values.get(c) for r in unbound]


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
    unbound, unbound_values = _unbound_rows(diff)  # keys, and values of a column
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
            adapter.name, once["tagged"], config.name, unbound, config.state_marker
        )

    matched: set[str] = set()
    if matched_on_email and lookups.by_email:  # no email found in Stripe: nothing matched
        by_email = lookups.by_email
        for value in unbound_values(config.match.column):  # type: ignore[union-attr,arg-type]
            found = by_email.get(str(value), [])
            if found:
                matched.add(found[0]["id"])
    elif config.match is not None and config.match.field == "id" and config.match.column:
        matched = {str(v) for v in unbound_values(config.match.column) if v}
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
