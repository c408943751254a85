"""`stripe_sync_changelog`: one warehouse row per operation a run performed or refused.

Rows are collected while a batch is sent (`ChangelogRecorder`, thread-safe: writes run in a pool)
and inserted by `StateStore.write` in the same transaction as the batch's ledger rows, so the
changelog costs no extra round trip per row and never disagrees with the ledger after a crash.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import astuple, dataclass, fields, replace
from typing import Any

log = logging.getLogger("dbt_stripe_sync.changelog")

CHANGELOG_TABLE = "stripe_sync_changelog"
_ROWS_PER_INSERT = 200

# outcomes
OK, REJECTED, PENDING, FAILED = "ok", "rejected", "pending", "failed"

# What Stripe did (WriteResult.action) -> the changelog's action vocabulary.
_ACTION_OF_RESULT = {
    "created": "create",
    "updated": "update",
    "restored": "update",
    "replaced": "replace",
    "deleted": "delete",
    "archived": "archive",
    "cancelled": "cancel",
    "voided": "void",
    "left": "delete",
}
# What the plan meant to do (Change.action) -> the changelog's action, for failures.
_ACTION_OF_CHANGE = {"restore": "update"}


@dataclass(frozen=True)
class ChangelogRow:
    run_id: str
    sync_name: str
    source_key: str
    action: str  # create update delete archive cancel void replace adopt reject
    stripe_id: str | None
    outcome: str  # ok rejected pending failed
    changed_fields: str  # JSON list of the field paths sent
    idempotency_key: str | None
    request_id: str | None
    http_status: int | None
    error: str | None
    at: dt.datetime
    # Stripe Connect: the account the operation went to (None: the platform), from the row's ledger
    # entry written with it (`with_accounts`)
    stripe_account: str | None = None


CHANGELOG_COLUMNS = tuple(f.name for f in fields(ChangelogRow))


def action_of_result(result_action: str) -> str:
    return _ACTION_OF_RESULT.get(result_action, result_action)


def action_of_change(change_action: str) -> str:
    return _ACTION_OF_CHANGE.get(change_action, change_action)


def field_paths(params: dict[str, Any]) -> str:
    return json.dumps(sorted(params))


class ChangelogRecorder:
    """Collects the changelog rows of a run until the batch holding them is written."""

    def __init__(
        self,
        run_id: str,
        clock: Callable[[], dt.datetime],
        on_row: Callable[[ChangelogRow], None] | None = None,
    ) -> None:
        self.run_id = run_id
        self._clock = clock
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], list[ChangelogRow]] = {}
        self._on_row = on_row

    def record(
        self,
        sync_name: str,
        key: str,
        *,
        action: str,
        outcome: str,
        stripe_id: str | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        error: str | None = None,
    ) -> ChangelogRow:
        row = ChangelogRow(
            run_id=self.run_id,
            sync_name=sync_name,
            source_key=key,
            action=action,
            stripe_id=stripe_id,
            outcome=outcome,
            changed_fields=field_paths(params or {}),
            idempotency_key=idempotency_key,
            request_id=request_id,
            http_status=http_status,
            error=None if error is None else error[:2000],
            at=self._clock(),
        )
        with self._lock:
            self._rows.setdefault((sync_name, key), []).append(row)
        log.info(
            "%s row %s: %s %s%s (request %s)",
            sync_name,
            key,
            action,
            outcome,
            f" {stripe_id}" if stripe_id else "",
            request_id or "-",
            extra={"sync": sync_name, "key": key, "request_id": request_id, "outcome": outcome},
        )
        if self._on_row is not None:
            self._on_row(row)
        return row

    def take(self, sync_name: str, keys: Iterable[str]) -> list[ChangelogRow]:
        """The rows recorded for these keys, removed from the recorder (they are being written)."""
        out: list[ChangelogRow] = []
        with self._lock:
            for key in keys:
                out += self._rows.pop((sync_name, key), [])
        return out


def with_accounts(rows: Sequence[ChangelogRow], entries: Iterable[Any]) -> list[ChangelogRow]:
    """The rows with `stripe_account` set from the ledger entries written in the same batch (every
    operation's row is written with its key's entry, which holds the account it went to)."""
    accounts = {(e.sync_name, e.source_key): e.stripe_account for e in entries}
    return [
        r
        if r.stripe_account is not None
        else replace(r, stripe_account=accounts.get((r.sync_name, r.source_key)))
        for r in rows
    ]


# ---- SQL ------------------------------------------------------------------------------------------
def ensure_table(wh: Any, relation: str) -> None:
    """Create the changelog, and add columns a newer version of this tool introduced."""
    columns = wh.columns_of(relation)
    if columns is None:  # the first run on this schema: no DDL after that
        with wh.transaction():
            for sql in wh.macro("create_changelog_sql", changelog_relation=relation):
                wh.execute(sql)
        columns = wh.columns_of(relation)
    have = {c.lower() for c in columns or []}
    missing = [(n, t) for n, t in wh.macro("changelog_columns") if n.lower() not in have]
    if missing:
        with wh.transaction():
            for name, type_ in missing:
                wh.execute(wh.macro("add_column_sql", relation=relation, name=name, type=type_))


def insert(wh: Any, relation: str, rows: Sequence[ChangelogRow]) -> None:
    """Multi-row INSERTs with bound values; the caller holds the transaction (the ledger's)."""
    p = wh.placeholder
    cols = ", ".join(wh.quote(c) for c in CHANGELOG_COLUMNS)
    marks = "(" + ", ".join([p] * len(CHANGELOG_COLUMNS)) + ")"
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        binds: list[Any] = [value for row in chunk for value in astuple(row)]
        wh.execute(f"insert into {relation} ({cols}) values {', '.join([marks] * len(chunk))}", binds)


def prune(wh: Any, relation: str, retention_days: int, now: dt.datetime) -> None:
    """Drop rows older than the retention period (one statement per run)."""
    cutoff = now - dt.timedelta(days=retention_days)
    with wh.transaction():
        wh.execute(f"delete from {relation} where {wh.quote('at')} < {wh.placeholder}", [cutoff])
