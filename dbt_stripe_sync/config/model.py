"""Typed, immutable sync configuration built from a model's `stripe_sync` meta block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ObjectName = Literal["customer", "product", "price", "subscription", "invoice", "quote", "invoice_item"]
Mode = Literal["upsert", "update", "insert"]
OBJECTS: tuple[str, ...] = (
    "customer",
    "product",
    "price",
    "subscription",
    "invoice",
    "quote",
    "invoice_item",
)
MODES: tuple[str, ...] = ("upsert", "update", "insert")


@dataclass(frozen=True)
class Match:
    """How a row finds an existing Stripe object: a Stripe field (`email` or `id`) read from a column."""

    field: str
    column: str | None


@dataclass(frozen=True)
class Reference:
    """A Stripe ID field filled by look-up: by customer email (API) or through another sync's ledger (SQL)."""

    target: str  # Stripe field path, e.g. "customer" or "items[0].price"
    column: str  # model column holding the look-up value
    by: str | None = None  # "email"
    sync: str | None = None  # name of another synced model


@dataclass(frozen=True)
class Account:
    """Stripe Connect: the connected account a sync writes to (one for every row, or per row)."""

    id: str | None = None  # acct_...: every row
    column: str | None = None  # model column holding each row's acct_...


@dataclass(frozen=True)
class FieldMapping:
    """One Stripe field path fed by one model column (`address.line1 <- street`)."""

    path: str
    column: str


@dataclass(frozen=True)
class SyncConfig:
    model: str  # dbt model name
    unique_id: str  # dbt unique_id, e.g. model.my_project.stripe_customers
    object: str  # one of OBJECTS
    mode: str  # one of MODES
    primary_key: str
    match: Match | None
    fields: tuple[FieldMapping, ...]
    references: tuple[Reference, ...] = ()
    on_null: str = "skip"  # skip | clear
    delete: str = "nothing"  # nothing | delete
    # object-specific options (validated per object), e.g. on_price_change, void_finalized,
    # proration_behavior, move_subscriptions
    options: dict[str, Any] = field(default_factory=dict)
    account: Account | None = None  # Stripe Connect; None = the platform's own account
    # the state (ledger) writing this sync, tagged on what it creates (tagging.py); set by the engine
    state_marker: str = ""

    @property
    def name(self) -> str:
        """The sync's name: the model name (unique within a dbt project)."""
        return self.model

    def columns(self) -> list[str]:
        """Every model column this sync reads, primary key first, without repeats."""
        cols = [self.primary_key]
        if self.match and self.match.column:
            cols.append(self.match.column)
        cols += [f.column for f in self.fields]
        cols += [r.column for r in self.references]
        if self.account is not None and self.account.column:
            cols.append(self.account.column)
        return list(dict.fromkeys(cols))
