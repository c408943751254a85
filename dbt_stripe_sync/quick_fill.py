"""`run` fills the null quick hashes of a sync's ledger once (macros/quick_fill.sql).

A ledger written before payload_quick_hash existed keeps it null on every row until that row changes,
so an upgraded user's diff computes the md5 of every row on every run (the quick hash's speed-up never
comes). Before its diff, `run` gives each synced row whose payload_hash is still the md5 of its model
row the quick hash the diff would have written with it. Only a speed hint is written, never anything
that decides a send: a row filled is one the md5 already finds unchanged, and a quick hash that does
not match is ignored by the diff. So a crash at any point loses nothing, and the fill is bounded: one
cheap look for a null (stops at the first) on a ledger that has none, which is every ledger after the
first upgraded run; nothing at all where the warehouse has no quick hash (PostgreSQL).
"""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import row_hash_args
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.warehouse import Warehouse


def before_diff(prep: Any, config: SyncConfig, store: StateStore) -> None:
    """`run`'s hook (engine._streamer_for), under the state lock, before the sync's diff: fill its
    ledger's quick hashes unless a full refresh re-sends every row anyway. `prep`: engine.Prepared."""
    if not prep.full_refresh:
        fill_quick_hashes(prep.wh, config, prep.relations[config.model], store.ledger)


def fill_quick_hashes(wh: Warehouse, config: SyncConfig, model_relation: str, ledger_relation: str) -> bool:
    """Fill the sync's null quick hashes whose md5 matches; True if it ran the fill."""
    update = wh.macro("quick_fill_sql", **row_hash_args(config, model_relation, ledger_relation))
    if update is None:
        return False  # no quick hash on this warehouse
    needed = wh.macro("quick_fill_needed_sql", ledger_relation=ledger_relation, sync_name=config.name)
    _, found = wh.query(needed)
    if not found:
        return False
    with wh.transaction():
        wh.execute(update)
    return True
