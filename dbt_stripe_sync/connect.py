"""Stripe Connect: which connected account each row is written to, and the rules that keep it there.

A sync names its account with `account: acct_…` (every row) or `account: {column: …}` (per row).
Everything about a row then happens inside that account: requests carry `Stripe-Account`, matching
(email look-ups, `ids[]` batches), tag look-ups and `sync:` / `by: email` references only see that
account's objects, and the ledger remembers the account (`stripe_account`). Stripe objects cannot move
between accounts, so a row whose account changes is rejected with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffRow
from dbt_stripe_sync.plan import Change

ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,64}$")


def looks_like_account(value: Any) -> bool:
    """Whether `value` has the shape of a Stripe account ID (acct_ then letters and digits)."""
    return isinstance(value, str) and bool(ACCOUNT_ID.match(value))


def wanted_account(config: SyncConfig, row: DiffRow) -> Any:
    """The raw account value a row asks for (None: the platform itself)."""
    if config.account is None:
        return None
    if config.account.id is not None:
        return config.account.id
    value = row.values.get(config.account.column or "")
    return value.strip() if isinstance(value, str) else value


def bound_account(row: DiffRow) -> str | None:
    """The account holding the Stripe object the ledger binds this row to (None: none, or the platform)."""
    entry = row.ledger
    if entry is None or not entry.stripe_id or entry.status == L.DELETED:
        return None
    return entry.stripe_account


def is_bound(row: DiffRow) -> bool:
    entry = row.ledger
    return entry is not None and bool(entry.stripe_id) and entry.status != L.DELETED


def account_problem(config: SyncConfig, row: DiffRow) -> str | None:
    """Why this row cannot be written to its account (bad value, or the account changed), else None."""
    if config.account is None or row.change == "deleted":
        return None
    value = wanted_account(config, row)
    column = config.account.column
    if value is None or value == "":
        return (
            f"column `{column}` (account) is null: this sync writes each row into the connected account "
            "that column names — fill it in the model or filter the row out"
        )
    if not looks_like_account(value):
        where = f"column `{column}`" if column else "account"
        return (
            f"{where} holds {value!r}, which is not a Stripe account ID (acct_ followed by letters and "
            "digits) — fix the value in the model"
        )
    if is_bound(row) and bound_account(row) != value:
        old = bound_account(row) or "the platform account"
        return (
            f"account changed from {old} to {value}: Stripe objects cannot move between accounts, so "
            f"{row.ledger.stripe_id if row.ledger else 'its object'} stays in {old}; give the row a new "
            "primary key to create it in the new account (the old key then leaves the model)"
        )
    return None


def row_account(config: SyncConfig, row: DiffRow) -> str | None:
    """The account a row's writes go to: a row leaving the model is deleted where its object lives."""
    if row.change == "deleted":
        return row.ledger.stripe_account if row.ledger else None
    if account_problem(config, row) is not None:
        return None  # rejected before sending: nothing is sent anywhere
    value = wanted_account(config, row)
    return value if isinstance(value, str) else None


REJECTED_GROUP = "\x00rejected"  # rows rejected for their account: planned with no look-ups


def group_rows(config: SyncConfig, rows: Iterable[DiffRow]) -> dict[str | None, list[DiffRow]]:
    """Rows by the account they are planned in; rows with an account problem in REJECTED_GROUP."""
    groups: dict[str | None, list[DiffRow]] = {}
    for row in rows:
        bad = account_problem(config, row) is not None
        groups.setdefault(REJECTED_GROUP if bad else row_account(config, row), []).append(row)
    return groups


def interleave(changes: Sequence[Change]) -> list[Change]:
    """Round-robin over accounts (order kept within each), so every batch holds writes for many
    accounts and each account's own rate limit is used in parallel."""
    queues: dict[str | None, list[Change]] = {}
    for change in changes:
        queues.setdefault(change.account, []).append(change)
    if len(queues) <= 1:
        return list(changes)
    out: list[Change] = []
    lists = list(queues.values())
    for i in range(max(len(q) for q in lists)):
        out += [q[i] for q in lists if i < len(q)]
    return out


def entry_account(entry: L.LedgerEntry, change: Change) -> str | None:
    """The account a ledger row records: where its object lives once bound, else where it is written."""
    if entry.stripe_id and entry.status != L.DELETED:
        return entry.stripe_account
    return change.account
