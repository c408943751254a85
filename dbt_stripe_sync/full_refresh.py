"""`run --full-refresh` / `plan --full-refresh`: every row of the selected syncs is planned again as
if never synced — yet matched through the ledger, so known objects are updated with their whole
payload, never created twice — and no deletes are inferred.

The diff sees the ledger with its payload hashes blanked, so every row that Stripe holds counts as
changed; the ledger's Stripe IDs, statuses and last payloads stay, so matching, immutable-field
checks and `sync:` references work as in any run."""

from __future__ import annotations

from dbt_stripe_sync.ledger import StateStore

BLANKED = ("payload_hash", "attempt_hash", "payload_quick_hash")
NOTICE = (
    "Full refresh: every row of the selected syncs is re-sent as if never synced — objects Stripe "
    "already holds are updated with the whole payload (never duplicated), and no deletes are inferred.\n"
)


def refreshed_ledger_sql(store: StateStore) -> str:
    """The ledger as a subquery, payload hashes blanked."""
    cols = []
    for name, type_ in store.wh.macro("ledger_columns"):
        quoted = store.wh.quote(name)
        cols.append(f"cast(null as {type_}) as {quoted}" if name in BLANKED else quoted)
    return f"(select {', '.join(cols)} from {store.ledger} as refreshed_ledger)"
