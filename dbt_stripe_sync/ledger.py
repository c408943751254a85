"""The ledger and runs tables in the warehouse: creation, migration, batched checkpoints.

One ledger row per (sync, source key) remembers the Stripe ID, the hash and fields of the last
payload Stripe accepted, and, while a write is in flight, the write itself (`pending_json`) and its
idempotency key, so that a run killed at any point can be finished by the next one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from dbt_stripe_sync import changelog as C
from dbt_stripe_sync.crashpoints import crashpoint
from dbt_stripe_sync.warehouse import Warehouse

LEDGER_TABLE = "stripe_sync_ledger"
RUNS_TABLE = "stripe_sync_runs"
BATCH_ROWS = 200  # rows per INSERT statement: well under every driver's bind-parameter limit

# statuses
SYNCED = "synced"  # Stripe holds the payload whose hash is payload_hash
PENDING = "pending"  # a write was checkpointed and may or may not have reached Stripe
FAILED = "failed"  # Stripe refused or could not be reached; retried on every run
REJECTED = "rejected"  # refused before sending (bad value, missing reference); retried when the row changes
DELETED = "deleted"  # the Stripe object was deleted, cancelled or voided
ARCHIVED = "archived"  # the Stripe object was archived (active=false)
LEFT = "left"  # the row left the model but Stripe's rules keep the object; reason in last_error
SKIPPED = "skipped"  # insert mode: the object already existed and is left alone
LIVE = (SYNCED, PENDING, FAILED)  # a row still bound to its object


@dataclass(frozen=True)
class LedgerEntry:
    sync_name: str
    source_key: str
    object_type: str | None = None
    stripe_id: str | None = None
    payload_hash: str | None = None
    payload_json: str | None = None
    status: str | None = None
    pending_op: str | None = None
    pending_json: str | None = None
    attempt_hash: str | None = None
    idempotency_key: str | None = None
    last_error: str | None = None
    attempts: int | None = 0
    first_synced_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    run_id: str | None = None
    stripe_account: str | None = None  # Stripe Connect: the account holding the object (None: the platform)
    # the diff's cheap filter (macros/diff.sql, quick_hash_sql): a 64-bit hash of the row's values and
    # of payload_hash, written with it; null where the warehouse has none or an older version wrote the row
    payload_quick_hash: int | None = None

    def evolve(self, **changes: Any) -> LedgerEntry:
        return replace(self, **changes)


LEDGER_COLUMNS = tuple(f.name for f in fields(LedgerEntry))


def entry_from_row(names: Sequence[str], row: Sequence[Any], prefix: str = "") -> LedgerEntry | None:
    values = {n[len(prefix) :]: v for n, v in zip(names, row, strict=False) if n.startswith(prefix)}
    if values.get("source_key") is None:
        return None
    return LedgerEntry(**{c: values.get(c) for c in LEDGER_COLUMNS})


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


class StateStore:
    """The ledger and runs tables of one state schema."""

    def __init__(self, warehouse: Warehouse, schema: str) -> None:
        self.wh = warehouse
        self.schema = schema
        self.ledger = warehouse.relation(schema, LEDGER_TABLE)
        self.runs = warehouse.relation(schema, RUNS_TABLE)
        self._strategy: str | None = None
        self.changelog = warehouse.relation(schema, C.CHANGELOG_TABLE)

    def exists(self) -> bool:
        return self.wh.columns_of(self.ledger) is not None

    def empty_ledger_sql(self) -> str:
        """A subquery shaped like the ledger with no rows, for plans made before any run."""
        cols = ", ".join(
            f"cast(null as {t}) as {self.wh.quote(n)}" for n, t in self.wh.macro("ledger_columns")
        )
        return f"(select {cols} where 1 = 0)"

    def readable_sql(self) -> str:
        """The ledger for reading without writing (`plan`): a ledger made by an older version lacks the
        newer columns until a run adds them, so they read as null."""
        have = {c.lower() for c in self.wh.columns_of(self.ledger) or []}
        wanted = list(self.wh.macro("ledger_columns"))
        if all(n.lower() in have for n, _ in wanted):
            return self.ledger
        cols = ", ".join(
            self.wh.quote(n) if n.lower() in have else f"cast(null as {t}) as {self.wh.quote(n)}"
            for n, t in wanted
        )
        return f"(select {cols} from {self.ledger} as older_ledger)"

    def ensure(self) -> None:
        """Create the state tables, and add columns that a newer version of this tool introduced.
        Tables that exist are only read (no schema or table DDL through dbt's macros): a run that
        finds its state in place, as every run but the first does, pays one cheap query per table."""
        present = {r: self.wh.columns_of(r) for r in (self.ledger, self.runs)}
        if None in present.values():
            self.wh.create_schema(self.schema)
            statements = self.wh.macro(
                "create_state_sql",
                ledger_relation=self.ledger,
                runs_relation=self.runs,
            )
            with self.wh.transaction():
                for sql in statements:
                    self.wh.execute(sql)
            present = {r: self.wh.columns_of(r) for r in present}
        for relation, macro in ((self.ledger, "ledger_columns"), (self.runs, "runs_columns")):
            have = {c.lower() for c in present[relation] or []}
            missing = [(n, t) for n, t in self.wh.macro(macro) if n.lower() not in have]
            if missing:
                with self.wh.transaction():
                    for name, type_ in missing:
                        self.wh.execute(
                            self.wh.macro("add_column_sql", relation=relation, name=name, type=type_)
                        )
        C.ensure_table(self.wh, self.changelog)

    # ---- reads --------------------------------------------------------------------------------
    def entries(self, sync_name: str, statuses: Iterable[str] | None = None) -> list[LedgerEntry]:
        cols = ", ".join(self.wh.quote(c) for c in LEDGER_COLUMNS)
        sql = f"select {cols} from {self.ledger} where sync_name = {self.wh.placeholder}"
        binds: list[Any] = [sync_name]
        if statuses:
            statuses = list(statuses)
            sql += f" and status in ({', '.join([self.wh.placeholder] * len(statuses))})"
            binds += statuses
        names, rows = self.wh.query(sql + " order by source_key", binds)
        return [e for e in (entry_from_row(names, r) for r in rows) if e is not None]

    def count_live(self, sync_name: str) -> int:
        """Objects this sync keeps in Stripe: the base of the delete-fraction guard."""
        p = self.wh.placeholder
        _, rows = self.wh.query(
            f"select count(*) from {self.ledger} where sync_name = {p} and stripe_id is not null "
            f"and status in ({p}, {p}, {p}, {p})",
            [sync_name, SYNCED, FAILED, REJECTED, PENDING],
        )
        return int(rows[0][0])

    def keys_of_stripe_ids(self, sync_name: str, stripe_ids: Iterable[str]) -> dict[str, str]:
        """stripe id -> source key, for the given ids this sync already keeps in Stripe."""
        ids = sorted(set(stripe_ids))
        out: dict[str, str] = {}
        p = self.wh.placeholder
        for start in range(0, len(ids), BATCH_ROWS):
            chunk = ids[start : start + BATCH_ROWS]
            _, rows = self.wh.query(
                f"select stripe_id, source_key from {self.ledger} where sync_name = {p} and status <> {p} "
                f"and stripe_id in ({', '.join([p] * len(chunk))})",
                [sync_name, DELETED, *chunk],
            )
            out.update({r[0]: r[1] for r in rows})
        return out

    def count_rows(self, sync_name: str) -> int:
        """Ledger rows of this sync in any status: 0 on its first run, or after the ledger was lost."""
        _, rows = self.wh.query(
            f"select count(*) from {self.ledger} where sync_name = {self.wh.placeholder}", [sync_name]
        )
        return int(rows[0][0])

    def owners(
        self, sync_name: str, stripe_ids: Iterable[str], model_relation: str, key_column: str
    ) -> dict[str, tuple[str, bool]]:
        """stripe id -> (source key the ledger binds it to, whether that key is still in the model)."""
        ids = sorted(set(stripe_ids))
        out: dict[str, tuple[str, bool]] = {}
        p = self.wh.placeholder
        key = self.wh.quote(key_column)
        for start in range(0, len(ids), BATCH_ROWS):
            chunk = ids[start : start + BATCH_ROWS]
            _, rows = self.wh.query(
                f"select l.stripe_id, l.source_key, m.k from {self.ledger} l "
                f"left join (select distinct cast({key} as varchar(4000)) as k from {model_relation}) m "
                f"on m.k = l.source_key where l.sync_name = {p} and l.status <> {p} "
                f"and l.stripe_id in ({', '.join([p] * len(chunk))})",
                [sync_name, DELETED, *chunk],
            )
            out.update({r[0]: (r[1], r[2] is not None) for r in rows})
        return out

    def pending_keys_not_in(self, sync_name: str, model_relation: str, key_column: str) -> set[str]:
        """Keys of this sync's pending writes whose row is no longer in the model."""
        key = self.wh.quote(key_column)
        p = self.wh.placeholder
        _, rows = self.wh.query(
            f"select source_key from {self.ledger} where sync_name = {p} and status = {p} and source_key "
            f"not in (select cast({key} as varchar(4000)) from {model_relation} where {key} is not null)",
            [sync_name, PENDING],
        )
        return {str(r[0]) for r in rows}

    def count_still_rejected(self, sync_name: str, run_id: str) -> int:
        """Rows rejected by an earlier run and not retried by this one (their data did not change)."""
        p = self.wh.placeholder
        _, rows = self.wh.query(
            f"select count(*) from {self.ledger} where sync_name = {p} and status = {p} "
            f"and (run_id is null or run_id <> {p})",
            [sync_name, REJECTED, run_id],
        )
        return int(rows[0][0])

    # ---- writes -------------------------------------------------------------------------------
    def write(
        self,
        entries: Sequence[LedgerEntry],
        crash_inside: str | None = None,
        changelog: Sequence[C.ChangelogRow] = (),
    ) -> None:
        """Upsert entries in batches of BATCH_ROWS: one `insert ... on conflict do update` each (atomic on
        its own), or a DELETE and a multi-row INSERT in one transaction (ledger_write_strategy); with the
        batch's changelog rows, written first."""
        if not entries and not changelog:
            return
        p = self.wh.placeholder
        cols = ", ".join(self.wh.quote(c) for c in LEDGER_COLUMNS)
        row_marks = "(" + ", ".join([p] * len(LEDGER_COLUMNS)) + ")"
        by_sync: dict[str, list[LedgerEntry]] = {}
        for e in entries:
            by_sync.setdefault(e.sync_name, []).append(e)
        on_conflict = self._write_strategy() == "on_conflict"
        keyed = ("sync_name", "source_key")
        updates = ", ".join(
            f"{self.wh.quote(c)} = excluded.{self.wh.quote(c)}" for c in LEDGER_COLUMNS if c not in keyed
        )
        with self.wh.transaction():
            # The changelog goes first: should a warehouse not hold the batch in one transaction (see
            # the note in test_changelog_never_loses_an_operation_after_a_crash), a crash can then
            # only repeat an operation's row (the rerun's replay, same idempotency key), never lose it.
            C.insert(self.wh, self.changelog, C.with_accounts(changelog, entries))
            for sync_name, group in by_sync.items():
                latest = {e.source_key: e for e in group}  # last write of a key wins
                items = list(latest.values())
                for start in range(0, len(items), BATCH_ROWS):
                    chunk = items[start : start + BATCH_ROWS]
                    if not on_conflict:
                        keys = [e.source_key for e in chunk]
                        self.wh.execute(
                            f"delete from {self.ledger} where sync_name = {p} and source_key in "
                            f"({', '.join([p] * len(keys))})",
                            [sync_name, *keys],
                        )
                    binds: list[Any] = []
                    for e in chunk:
                        binds += [getattr(e, c) for c in LEDGER_COLUMNS]  # fields are scalars: no copy
                    sql = f"insert into {self.ledger} ({cols}) values {', '.join([row_marks] * len(chunk))}"
                    if on_conflict:
                        sql += f" on conflict (sync_name, source_key) do update set {updates}"
                    self.wh.execute(sql, binds)
                    if crash_inside:
                        crashpoint(crash_inside)

    def _write_strategy(self) -> str:
        if self._strategy is None:
            self._strategy = str(self.wh.macro("ledger_write_strategy")).strip()
        return self._strategy

    def record_run(self, row: dict[str, Any]) -> None:
        names = list(row)
        p = self.wh.placeholder
        with self.wh.transaction():
            self.wh.execute(
                f"insert into {self.runs} ({', '.join(self.wh.quote(n) for n in names)}) "
                f"values ({', '.join([p] * len(names))})",
                [row[n] for n in names],
            )

    def update_run(self, row: dict[str, Any]) -> None:
        """Overwrite the row of (run_id, sync_name) that `record_run` wrote when the sync started."""
        names = [n for n in row if n not in ("run_id", "sync_name")]
        p = self.wh.placeholder
        with self.wh.transaction():
            self.wh.execute(
                f"update {self.runs} set {', '.join(f'{self.wh.quote(n)} = {p}' for n in names)} "
                f"where run_id = {p} and sync_name = {p}",
                [*(row[n] for n in names), row["run_id"], row["sync_name"]],
            )

    def close_interrupted_runs(self, changelog: str, run_id: str) -> None:
        """Rows of runs that stopped mid-sync (killed; the run lock says none is alive) become
        `interrupted`, with what the changelog says they did, so a killed run still shows in history."""
        p = self.wh.placeholder
        counts = ", ".join(
            f"{column} = (select count(*) from {changelog} c where c.run_id = r.run_id "
            f"and c.sync_name = r.sync_name and {where})"
            for column, where in _INTERRUPTED_COUNTS.items()
        )
        with self.wh.transaction():
            self.wh.execute(
                f"update {self.runs} as r set status = 'interrupted', {counts}, error = {p} "
                f"where r.status = 'running' and r.run_id <> {p}",
                [INTERRUPTED_NOTE, run_id],
            )


# What an interrupted run did, counted from its changelog rows.
_INTERRUPTED_COUNTS = {
    "created": "c.action = 'create' and c.outcome = 'ok'",
    "updated": "c.action in ('update', 'replace') and c.outcome = 'ok'",
    "deleted": "c.action in ('delete', 'cancel', 'void') and c.outcome = 'ok'",
    "archived": "c.action = 'archive' and c.outcome = 'ok'",
    "rejected": "c.outcome in ('rejected', 'failed')",
    "api_calls": "c.request_id is not null",
}


INTERRUPTED_NOTE = (
    "the run stopped before this sync finished (killed, or the machine went down); counts are from the "
    "changelog, and writes it left pending were finished by the next run"
)
