"""Run the in-warehouse diff of one sync and read back only the rows that need work."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.errors import SyncAborted
from dbt_stripe_sync.ledger import LedgerEntry, entry_from_row
from dbt_stripe_sync.warehouse import Warehouse


@dataclass(frozen=True)
class DiffRow:
    key: str
    change: str  # new | changed | retry | reappeared | deleted
    row_hash: str | None
    values: dict[str, Any]  # column -> warehouse value; empty for deleted rows
    refs: dict[str, str | None]  # reference target path -> Stripe ID from another sync's ledger
    ledger: LedgerEntry | None


@dataclass(frozen=True)
class DiffResult:
    rows: list[DiffRow]
    model_rows: int


def fingerprint(config: SyncConfig) -> str:
    """Hash of everything in the config that shapes a payload: changing the mapping re-sends rows."""
    shape = {
        "object": config.object,
        "mode": config.mode,  # a new mode re-plans every row (unchanged payloads cost no API call)
        "fields": [(f.path, f.column) for f in config.fields],
        "references": [(r.target, r.column, r.by, r.sync) for r in config.references],
        "match": [config.match.field, config.match.column] if config.match else None,
        "on_null": config.on_null,
        "options": config.options,
    }
    if config.account is not None:  # a new account re-plans every row (and rejects the moves)
        shape["account"] = [config.account.id, config.account.column]
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_diff(
    wh: Warehouse,
    config: SyncConfig,
    model_relation: str,
    ledger_relation: str,
    *,
    include_deletes: bool,
    retry_rejected: bool,
) -> DiffResult:
    _check_keys(wh, config, model_relation)
    columns = config.columns()
    sync_refs = [r for r in config.references if r.sync]
    sql = wh.macro(
        "diff_sql",
        model_relation=model_relation,
        ledger_relation=ledger_relation,
        sync_name=config.name,
        key_column=config.primary_key,
        columns=columns,
        fingerprint=fingerprint(config),
        references=[{"sync": r.sync, "column": r.column} for r in sync_refs],
        include_deletes=include_deletes,
        retry_rejected=retry_rejected,
        account=_account_sql(config, columns),
    )
    names, rows = wh.query(sql)
    index = {n.lower(): i for i, n in enumerate(names)}
    out: list[DiffRow] = []
    for row in rows:
        change = row[index["_dss_change"]]
        out.append(
            DiffRow(
                key=row[index["_dss_key"]],
                change=change,
                row_hash=row[index["_dss_hash"]],
                values={} if change == "deleted" else {c: row[index[f"c{i}"]] for i, c in enumerate(columns)},
                refs={r.target: row[index[f"r{i}"]] for i, r in enumerate(sync_refs)},
                ledger=entry_from_row(names, row, prefix="_l_"),
            )
        )
    _, count = wh.query(wh.macro("count_sql", model_relation=model_relation))
    return DiffResult(rows=out, model_rows=int(count[0][0]))


def _account_sql(config: SyncConfig, columns: list[str]) -> dict[str, Any]:
    """How the diff SQL reads a row's account, so `sync:` references resolve within that account:
    {"literal": "acct_…"}, {"column_index": i} (the i-th selected column), or {} (the platform)."""
    if config.account is None:
        return {}
    if config.account.id is not None:
        return {"literal": config.account.id}
    return {"column_index": columns.index(config.account.column or "")}


def _check_keys(wh: Warehouse, config: SyncConfig, model_relation: str) -> None:
    """A primary key that is null or repeated would make rows overwrite each other in Stripe."""
    _, bad = wh.query(wh.macro("key_check_sql", model_relation=model_relation, key_column=config.primary_key))
    if not bad:
        return
    shown = ", ".join("null" if k is None else f"{k!r} ({n} rows)" for k, n in bad)
    raise SyncAborted(
        f"{config.model}: primary_key `{config.primary_key}` must be unique and not null, but found {shown}; "
        "fix the model (or choose another primary_key) — nothing was sent for this model"
    )
