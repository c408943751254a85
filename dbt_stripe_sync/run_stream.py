"""`run` of a large sync in flat memory: its diff is read, planned and sent a chunk at a time.

A sync whose model has at least `stream_min_rows` rows (a setting, 20,000 by default) is planned by
`plan_stream.planned_parts` (the chunked planning `plan` uses, so it plans what the whole-diff planner
plans) and its writes
join the send pipeline as they are planned: the pipeline asks for the next chunk's writes when the
sync's lane runs low, so about one chunk of planned changes is held at a time, not the whole diff.

The delete guard must hold before anything is sent ("nothing was sent for this model"), but a
streamed plan knows its deletes only at its end. It is checked up front against an upper bound —
every row that left the model counted as a delete — and when that bound would trip it the sync is
planned whole as before, so the guard decides on the exact count.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dbt_stripe_sync import diff as D
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.doomed import Doomed
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.plan import Change
from dbt_stripe_sync.plan_stream import StreamTotals, planned_parts
from dbt_stripe_sync.planner import _delete_guard
from dbt_stripe_sync.progress import Progress

Parts = Iterator[tuple[list[Change], int]]


def streamed_parts(
    prep: Any,  # engine.Prepared
    config: SyncConfig,
    gw: StripeGateway,
    store: StateStore,
    totals: StreamTotals,
    run_id: str,
    doomed: Doomed | None = None,
) -> Parts | None:
    """The sync's changes a chunk at a time, or None when it is to be planned whole (a small model, a
    Stripe Connect sync — planned per account —, or deletes that might trip the delete guard)."""
    if config.account is not None:
        return None
    relation = prep.relations[config.model]
    model_rows = D.model_row_count(prep.wh, relation)
    prep.row_counts[relation] = model_rows  # the diff that follows, streamed or whole, does not count again
    if model_rows < prep.settings.stream_min_rows:  # smaller ones are planned whole, in key order
        return None
    if _guard_might_trip(prep, config, store, relation, model_rows):
        return None
    # progress phases nest as a stack: a generator suspended inside one would corrupt it, so the
    # streamed planning reports no phases of its own (the sending phase counts its writes)
    return planned_parts(
        prep, config, gw, store, store.ledger, Progress(), totals, run_id=run_id, doomed=doomed, spool=True
    )


def _guard_might_trip(
    prep: Any, config: SyncConfig, store: StateStore, relation: str, model_rows: int
) -> bool:
    include_deletes = config.delete == "delete" and config.mode == "upsert" and not prep.full_refresh
    if not include_deletes:
        return False
    sql = D._diff_sql(prep.wh, config, relation, store.ledger, True, prep.settings.retry_rejected, "deleted")
    _, rows = prep.wh.query(f"select count(*) from ({sql}) leaving")
    at_most = int(rows[0][0])
    live = store.count_live(config.name)
    return _delete_guard(config, prep.settings, at_most, model_rows, live) is not None
