"""The rows `plan` only counts: plain creates, told apart from the rest of a chunk without planning them.

A first sync of a million rows is a million creates, of which `plan` shows five per action. Each was
planned row by row (`_plan_row`: its payload dict, its checks, a DeferredCreate, the digest's
bookkeeping), ~8 us a row. A row is a *plain create* when the planner can only create it, whatever
its values, as long as they pass the checks:

- the sync creates nothing conditionally: mode upsert or insert, no `sync:`/`by: email` references,
  no match on `id` (create vs bind depends on what exists), no field naming another Stripe object
  (`run`'s sieve may reject such a write, plan_doomed.py), and the object has no conditionally
  required fields (`required_problems` is the base one: never a problem);
- the row has no ledger entry, is not bound by its tag (`lookups.adopted`), every value passes the
  checks on sight (`MappedColumns.clean`), and, matched on email, has a match email that is found
  in Stripe for no customer and that no other row of the model carries (such rows go the full way).

Such a row is counted with its key (`PlanDigest.add_plain_creates`); the few rows the digest keeps
(the sample) are planned the full way, by `_plan_row`, when kept. The outcome is exactly what
planning every row gives (tests/unit/test_plain_creates.py compares the digests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dbt_stripe_sync.chunk_mapping import MappedColumns
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffRow
from dbt_stripe_sync.plan import Change
from dbt_stripe_sync.planner import Lookups
from dbt_stripe_sync.row_chunk import RowChunk
from dbt_stripe_sync.stripe_objects.base import StripeObject
from dbt_stripe_sync.waves import plain_id_paths

# (keys of the plain creates, the part of the plan, a Change of the i-th of them built the full way)
PlainSink = Callable[[list[str], int, Callable[[int], Change]], None]


def plain_lane(config: SyncConfig, adapter: StripeObject) -> bool:
    """Whether rows of `config` may be plain creates at all (the sync's conditions above)."""
    match = config.match
    return (
        config.mode in ("upsert", "insert")
        and not config.references
        and (match is None or match.field == "email")
        and type(adapter).required_problems is StripeObject.required_problems
        and not plain_id_paths(config)
    )


def split_plain(
    config: SyncConfig,
    rows: Sequence[DiffRow],
    mapped: MappedColumns,
    lookups: Lookups,
    repeated: frozenset[str],
) -> tuple[list[int], list[int]]:
    """(the chunk's plain creates, its other rows), as indices into `rows`. `repeated`: every match email
    that more than one row of the sync carries; a row with one is planned the full way (the first in
    key order keeps it), so a plain create's email is the only one of its kind and `_plan_row`'s
    record of it (`seen_match`) would never be consulted."""
    adopted = lookups.adopted
    clean = mapped.clean
    match = config.match
    if isinstance(rows, RowChunk):  # read as columns
        keys, ledgers, column_of = rows.keys, rows.ledgers, rows.column
    else:
        keys, ledgers = [r.key for r in rows], [r.ledger for r in rows]

        def column_of(column: str) -> list[Any]:
            return [row.values.get(column) for row in rows]

    if match is None:
        return _split(
            [e is None and c and k not in adopted for e, c, k in zip(ledgers, clean, keys, strict=True)]
        )
    column = match.column
    if not column:
        return [], list(range(len(rows)))
    found = lookups.by_email
    emails = [None if v is None else str(v) for v in column_of(column)]
    if not adopted and not any(found.values()):  # a first sync's usual chunk: no look-up to consult
        return _split(
            [
                e is None and c and email is not None and email not in repeated
                for e, c, email in zip(ledgers, clean, emails, strict=True)
            ]
        )
    return _split(
        [
            e is None
            and c
            and email is not None
            and email not in repeated
            and k not in adopted
            and not found.get(email)
            for e, c, email, k in zip(ledgers, clean, emails, keys, strict=True)
        ]
    )


def _split(plain: list[bool]) -> tuple[list[int], list[int]]:
    """(the indices where `plain` holds, the others)."""
    return [i for i, p in enumerate(plain) if p], [i for i, p in enumerate(plain) if not p]
