"""Run the in-warehouse diff of one sync and read back only the rows that need work."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.errors import SyncAborted
from dbt_stripe_sync.gc_pause import collections_spaced
from dbt_stripe_sync.ledger import LEDGER_COLUMNS, LedgerEntry
from dbt_stripe_sync.warehouse import Warehouse


@dataclass(frozen=True, init=False)
class DiffRow:
    key: str
    change: str  # new | changed | retry | reappeared | deleted
    row_hash: str | None
    values: dict[str, Any]  # column -> warehouse value; empty for deleted rows
    refs: dict[str, str | None]  # reference target path -> Stripe ID from another sync's ledger
    ledger: LedgerEntry | None
    # the ledger's payload_quick_hash to write with row_hash (macros/diff.sql, quick_hash_sql); None where
    # the warehouse has no quick hash: the next diff then compares the row by row_hash alone
    quick_hash: int | None

    def __init__(
        self,
        key: str,
        change: str,
        row_hash: str | None,
        values: dict[str, Any],
        refs: dict[str, str | None],
        ledger: LedgerEntry | None,
        quick_hash: int | None = None,
    ) -> None:
        """The dataclass's own __init__ with the fields set in one write (a frozen dataclass sets each
        through object.__setattr__: ~1 us of a row read, one per diff row); still frozen afterwards."""
        fields = {"key": key, "change": change, "row_hash": row_hash, "values": values, "refs": refs}
        self.__dict__.update(fields, ledger=ledger, quick_hash=quick_hash)


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
    model_rows: int | None = None,
) -> DiffResult:
    """The sync's diff, whole, in key order. `model_rows`: the model's row count if the caller took it."""
    _check_keys(wh, config, model_relation)
    sql = _diff_sql(wh, config, model_relation, ledger_relation, include_deletes, retry_rejected, None)
    with collections_spaced():  # a tuple, a dict and a ledger entry per row (gc_pause.py)
        names, rows = wh.query(sql)
        read = _RowReader(config, names)
        out = read.chunk(rows)
    counted = model_row_count(wh, model_relation) if model_rows is None else model_rows
    return DiffResult(rows=out, model_rows=counted)


CHUNK_ROWS = 5_000  # diff rows read, matched and planned at a time by `plan`
# `plan` on a warehouse inside this process (its memory is ours) joins a sync's ledger this many
# rows at a time: the diff runs as ceil(ledger rows / PARTITION_ROWS) queries, each on one
# partition of the keys (`partition_sql`), so each hash join builds a part of the ledger only
PARTITION_ROWS = 250_000
PARTITIONED = ("duckdb",)


@dataclass(frozen=True)
class DiffStream:
    """The diff of one sync read in chunks (`plan`): only one chunk is held at a time, and the warehouse
    does not sort it (rows come in no particular order). Every row still in the model (`present`)
    comes before any row that left it (`deleted`, read only when `present` is exhausted)."""

    model_rows: int
    present: Iterator[list[DiffRow]]
    deleted: Iterator[list[DiffRow]]


def stream_diff(
    wh: Warehouse,
    config: SyncConfig,
    model_relation: str,
    ledger_relation: str,
    *,
    include_deletes: bool,
    retry_rejected: bool,
    chunk_rows: int | None = None,
    cap_memory: bool = True,
    model_rows: int | None = None,
    columnar: bool = False,
) -> DiffStream:
    """The rows `run_diff` would return, read through a cursor `chunk_rows` (CHUNK_ROWS) rows at a time.
    `cap_memory`: False when the caller goes on to write (`run`), which the cap is not meant for.
    `model_rows`: the model's row count if the caller took it. `columnar`: the rows still in the model
    come as row_chunk.RowChunks where they can (no `sync:` reference columns)."""
    size = chunk_rows or CHUNK_ROWS
    if cap_memory:
        wh.cap_memory()  # only reads from here on (embedded_memory.py)
    _check_keys(wh, config, model_relation)
    if model_rows is None:
        model_rows = model_row_count(wh, model_relation)
    args = (wh, config, model_relation, ledger_relation, include_deletes, retry_rejected)
    parts = partitions(wh, config, ledger_relation)

    def chunks(part: str) -> Iterator[list[DiffRow]]:
        read: _RowReader | None = None
        for partition in parts:
            for names, rows in wh.stream(_diff_sql(*args, part, partition), size):
                read = read or _RowReader(config, names)
                yield read.columnar(rows) if columnar and part == "present" else read.chunk(rows)  # type: ignore[misc]

    return DiffStream(model_rows, chunks("present"), chunks("deleted") if include_deletes else iter(()))


def partitions(wh: Warehouse, config: SyncConfig, ledger_relation: str) -> list[dict[str, int] | None]:
    """The partitions the streamed diff of `config` runs in: [None] (one query) unless the warehouse
    is in this process and the sync's ledger holds more than PARTITION_ROWS rows."""
    if wh.target.adapter_type not in PARTITIONED:
        return [None]
    p = wh.placeholder
    _, found = wh.query(
        f"select count(*) from {ledger_relation} as ledger_rows where sync_name = {p}", [config.name]
    )
    count = -(-int(found[0][0]) // PARTITION_ROWS)
    if count <= 1 or wh.macro("partition_sql", expression="k", count=count, index=0) is None:
        return [None]  # small, or a warehouse whose macros do not partition
    return [{"count": count, "index": i} for i in range(count)]


def model_row_count(wh: Warehouse, model_relation: str) -> int:
    _, count = wh.query(wh.macro("count_sql", model_relation=model_relation))
    return int(count[0][0])


def _diff_sql(
    wh: Warehouse,
    config: SyncConfig,
    model_relation: str,
    ledger_relation: str,
    include_deletes: bool,
    retry_rejected: bool,
    part: str | None,
    partition: dict[str, int] | None = None,
) -> str:
    kwargs: dict[str, Any] = {}
    if part is not None:  # passed only when wanted: a project's own override may predate the argument
        kwargs["part"] = part
    if partition is not None:
        kwargs["partition"] = partition
    return wh.macro(
        "diff_sql",
        **row_hash_args(config, model_relation, ledger_relation),
        include_deletes=include_deletes,
        retry_rejected=retry_rejected,
        **kwargs,
    )


def row_hash_args(config: SyncConfig, model_relation: str, ledger_relation: str) -> dict[str, Any]:
    """The arguments every macro hashing a sync's model rows as the diff does takes (diff_sql,
    quick_fill_sql): the same columns, fingerprint, references and account, so the same hash."""
    columns = config.columns()
    return {
        "model_relation": model_relation,
        "ledger_relation": ledger_relation,
        "sync_name": config.name,
        "key_column": config.primary_key,
        "columns": columns,
        "fingerprint": fingerprint(config),
        "references": [{"sync": r.sync, "column": r.column} for r in config.references if r.sync],
        "account": _account_sql(config, columns),
    }


class _RowReader:
    """Turns result rows of the diff SQL into DiffRows; column positions are worked out once."""

    def __init__(self, config: SyncConfig, names: Sequence[str]) -> None:
        index = {n.lower(): i for i, n in enumerate(names)}
        self.key = index["_dss_key"]
        self.change = index["_dss_change"]
        self.hash = index["_dss_hash"]
        self.quick = index.get("_dss_quick")  # absent from a project's own diff_sql made before it
        columns = config.columns()
        self.columns = tuple(columns)
        self.pick = _picker([index[f"c{i}"] for i in range(len(columns))])  # the row's column values
        self.refs = [(r.target, index[f"r{i}"]) for i, r in enumerate(r for r in config.references if r.sync)]
        self.ledger = [(c, index.get(f"_l_{c}")) for c in LEDGER_COLUMNS]
        self.ledger_key = index["_l_source_key"]
        positions = [index[f"c{i}"] for i in range(len(columns))]
        self.positions = positions
        consecutive = positions == list(range(positions[0], positions[-1] + 1)) if positions else False
        # the values as one slice of the row, and no references: a row with no ledger entry is read
        # inline by `chunk` (most rows of a large diff: a first sync's every row)
        self.span = (positions[0], positions[-1] + 1) if consecutive and not self.refs else None

    def chunk(self, rows: Sequence[Sequence[Any]]) -> list[DiffRow]:
        """The DiffRows of a chunk of result rows: each as `self(row)` reads it."""
        if self.span is None:
            return [self(row) for row in rows]
        first, end = self.span
        key, change, hash_, ledger_key, columns, quick = (
            self.key,
            self.change,
            self.hash,
            self.ledger_key,
            self.columns,
            self.quick,
        )
        new = object.__new__
        out = []
        for row in rows:
            if row[ledger_key] is not None or row[change] == "deleted":
                out.append(self(row))
                continue
            diff_row = new(DiffRow)
            diff_row.__dict__.update(  # as DiffRow.__init__ sets them (one write: it is frozen)
                key=row[key],
                change=row[change],
                row_hash=row[hash_],
                values=dict(zip(columns, row[first:end], strict=True)),
                refs={},
                ledger=None,
                quick_hash=None if quick is None else row[quick],
            )
            out.append(diff_row)
        return out

    def columnar(self, rows: Sequence[Sequence[Any]]) -> Sequence[DiffRow]:
        """The chunk as a row_chunk.RowChunk (its rows exactly those of `chunk`), or `chunk`'s list when
        the rows carry references or a deleted row is among them."""
        from dbt_stripe_sync.row_chunk import RowChunk

        if self.refs or not rows:
            return self.chunk(rows)
        cols = list(zip(*rows, strict=True))
        changes = cols[self.change]
        if "deleted" in changes:
            return self.chunk(rows)
        entries: list[LedgerEntry | None] = [None] * len(rows)
        ledger_keys = cols[self.ledger_key]
        if ledger_keys.count(None) != len(ledger_keys):
            for i, found in enumerate(ledger_keys):
                if found is not None:
                    row = rows[i]
                    entries[i] = LedgerEntry(**{c: None if j is None else row[j] for c, j in self.ledger})
        values = [cols[i] for i in self.positions]
        quicks = None if self.quick is None else cols[self.quick]
        return RowChunk(self.columns, cols[self.key], changes, cols[self.hash], values, entries, quicks)

    def __call__(self, row: Sequence[Any]) -> DiffRow:
        change = row[self.change]
        entry = None
        if row[self.ledger_key] is not None:
            entry = LedgerEntry(**{c: None if i is None else row[i] for c, i in self.ledger})
        return DiffRow(
            row[self.key],
            change,
            row[self.hash],
            {} if change == "deleted" else dict(zip(self.columns, self.pick(row), strict=True)),
            {target: row[i] for target, i in self.refs} if self.refs else {},
            entry,
            None if self.quick is None else row[self.quick],
        )


def _picker(positions: list[int]) -> Any:
    """The values at `positions` of a row, as a sequence: a slice when they are consecutive."""
    if not positions:
        return lambda row: ()
    first, last = positions[0], positions[-1]
    if positions == list(range(first, last + 1)):
        return lambda row: row[first : last + 1]
    return lambda row: [row[i] for i in positions]


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
