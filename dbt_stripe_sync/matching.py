"""The I/O that planning needs: which Stripe objects the changed rows match, found with list calls."""

from __future__ import annotations

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffResult
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.planner import Lookups
from dbt_stripe_sync.stripe_objects.customer import find_by_email


def emails_to_look_up(config: SyncConfig, diff: DiffResult) -> set[str]:
    """Match emails of rows not yet tied to a Stripe object, and every `by: email` reference value."""
    emails: set[str] = set()
    by_email_match = config.match is not None and config.match.field == "email" and config.match.column
    for row in diff.rows:
        if row.change == "deleted":
            continue
        unbound = row.ledger is None or not row.ledger.stripe_id or row.ledger.status == L.DELETED
        if by_email_match and unbound:
            value = row.values.get(config.match.column)  # type: ignore[union-attr]
            if value is not None:
                emails.add(str(value))
        for ref in config.references:
            if ref.by == "email" and row.values.get(ref.column) is not None:
                emails.add(str(row.values[ref.column]))
    return emails


def ids_to_look_up(config: SyncConfig, diff: DiffResult) -> list[str]:
    """Match IDs of rows not yet tied to a Stripe object (whether each exists decides create vs update)."""
    if config.match is None or config.match.field != "id" or not config.match.column:
        return []
    ids: set[str] = set()
    for row in diff.rows:
        unbound = row.ledger is None or not row.ledger.stripe_id or row.ledger.status == L.DELETED
        if row.change != "deleted" and unbound and row.values.get(config.match.column) is not None:
            ids.add(str(row.values[config.match.column]))
    return sorted(ids)


def gather(
    config: SyncConfig, diff: DiffResult, gw: StripeGateway | None, store: StateStore | None
) -> Lookups:
    from dbt_stripe_sync.stripe_objects import adapter_for

    emails = emails_to_look_up(config, diff)
    ids = ids_to_look_up(config, diff)
    if not (emails or ids) or gw is None:
        return Lookups()
    before = gw.stats.for_scope(config.name).requests
    with gw.scope(config.name):
        found = find_by_email(gw, emails) if emails else {}
        existing = adapter_for(config.object).existing_ids(gw, ids) if ids else None
    calls = gw.stats.for_scope(config.name).requests - before
    claimed: dict[str, str] = {}
    if store is not None and config.object == "customer" and store.exists():
        ids = {c["id"] for matches in found.values() for c in matches[:1]}
        claimed = store.keys_of_stripe_ids(config.name, ids)
    return Lookups(
        by_email=found,
        claimed=claimed,
        calls=calls,
        existing_ids=None if existing is None else frozenset(existing),
    )
