"""The immutable plan of one sync: what each changed row will do in Stripe, and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.ledger import LedgerEntry

# Actions that call Stripe, and those that only touch the ledger.
API_ACTIONS = frozenset({"create", "update", "restore", "delete", "replace"})
LEDGER_ONLY_ACTIONS = frozenset({"reject", "skip", "noop", "forget", "adopt", "rekey", "wait"})
# The actions a plan counts (`SyncPlan.counts`, the digest of a streamed plan), in their order.
COUNTED = (
    "create",
    "update",
    "restore",
    "replace",
    "delete",
    "adopt",
    "rekey",
    "wait",
    "reject",
    "skip",
    "noop",
)


_NEW: Any = object()  # a Change field left out: a new empty dict (the field's default_factory)


@dataclass(frozen=True)
class Upcoming:
    """Rows that syncs planned earlier in the same `plan` will create (or bind to an object found by its
    tag): a run does that before the later syncs are planned, so a reference to one resolves then
    (shown, not rejected, by `plan`). Stripe Connect: a reference resolves only inside the row's own
    account, so each account has its own view (`in_account`)."""

    keys: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # sync -> key -> what it will be
    emails: Mapping[str, str] = field(default_factory=dict)  # customer email -> "model row key"
    accounts: Mapping[str | None, Upcoming] = field(default_factory=dict)  # account -> its own view

    def in_account(self, account: str | None) -> Upcoming:
        return self.accounts.get(account) or Upcoming()

    def by_sync(self, sync: str, key: Any) -> str | None:
        return self.keys.get(sync, {}).get(str(key))

    def by_email(self, email: Any) -> str | None:
        row = self.emails.get(str(email))
        return f"(after {row} is created)" if row else None


@dataclass(frozen=True, init=False)
class Change:
    key: str  # the row's primary key, as text
    # create | update | restore | delete | replace: sent to Stripe;
    # reject | skip | noop | forget | adopt (bound to an object found by its tag) | rekey (the ledger
    # entry moves to a new key) | wait (a pending write goes first): the ledger only
    action: str
    stripe_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # flat fields to send
    full: dict[str, Any] = field(default_factory=dict)  # flat mapped payload: the ledger's after success
    before: dict[str, Any] = field(default_factory=dict)  # previous values of the sent fields
    row_hash: str | None = None
    idempotency_key: str | None = None
    reason: str | None = None  # why rejected/skipped, or a note (adopted, delete translation)
    ledger: LedgerEntry | None = None  # the row's ledger entry before this run
    account: str | None = None  # Stripe Connect: the connected account written to (None: the platform)
    # plan --against stripe: `before` holds Stripe's current values, this what the tool last sent
    ledger_before: dict[str, Any] | None = None
    # rekey within a sync: the key of the row the object moved to (the old row is retired once that
    # row's update has landed: run_syncs._settle_takeovers)
    moved_to: str | None = None
    # the diff row's quick hash, written to the ledger with row_hash as payload_quick_hash (DiffRow)
    quick_hash: int | None = None

    def __init__(
        self,
        key: str,
        action: str,
        stripe_id: str | None = None,
        params: dict[str, Any] = _NEW,
        full: dict[str, Any] = _NEW,
        before: dict[str, Any] = _NEW,
        row_hash: str | None = None,
        idempotency_key: str | None = None,
        reason: str | None = None,
        ledger: LedgerEntry | None = None,
        account: str | None = None,
        ledger_before: dict[str, Any] | None = None,
        moved_to: str | None = None,
        quick_hash: int | None = None,
    ) -> None:
        """The dataclass's own __init__, with every field set in one write: a frozen dataclass sets each
        field through object.__setattr__ (~1 us of a planned row; a plan makes a Change per row).
        Still frozen: assigning a field afterwards raises. tests/unit/test_planner.py
        (test_change_init_matches_its_fields) holds this signature to the fields."""
        self.__dict__.update(
            key=key,
            action=action,
            stripe_id=stripe_id,
            params={} if params is _NEW else params,
            full={} if full is _NEW else full,
            before={} if before is _NEW else before,
            row_hash=row_hash,
            idempotency_key=idempotency_key,
            reason=reason,
            ledger=ledger,
            account=account,
            ledger_before=ledger_before,
            moved_to=moved_to,
            quick_hash=quick_hash,
        )

    @property
    def calls_stripe(self) -> bool:
        return self.action in API_ACTIONS


@dataclass(frozen=True)
class SyncPlan:
    config: SyncConfig
    changes: tuple[Change, ...]
    model_rows: int
    live_objects: int
    unchanged: int
    blocked: str | None = None  # a guard tripped: nothing of this sync is applied
    warnings: tuple[str, ...] = ()
    lookup_calls: int = 0  # read calls spent matching rows while planning

    def counts(self) -> dict[str, int]:
        c = Counter(ch.action for ch in self.changes)
        return {a: c[a] for a in COUNTED}

    def to_dict(self, sample: int | None = 5) -> dict[str, Any]:
        """The plan as JSON-ready data: counts plus a field-level before -> after (changed leaves only)
        for a sample of rows per action, or for every row when sample is None (`rows` then)."""
        from dbt_stripe_sync.plan_view import leaf_changes, natural_key

        shown: dict[str, int] = Counter()
        rows = []
        for ch in sorted(self.changes, key=lambda c: natural_key(c.key)):
            if sample is not None and shown[ch.action] >= sample:
                continue
            shown[ch.action] += 1
            rows.append(
                {
                    "key": ch.key,
                    "action": ch.action,
                    "stripe_id": ch.stripe_id,
                    "reason": ch.reason,
                    "account": ch.account,  # Stripe Connect: the account written to; None: the platform
                    "fields": leaf_changes(ch.params, ch.before, ch.ledger_before),
                }
            )
        return {
            "model": self.config.model,
            "object": self.config.object,
            "mode": self.config.mode,
            "model_rows": self.model_rows,
            "unchanged": self.unchanged,
            "counts": self.counts(),
            "blocked": self.blocked,
            "warnings": list(self.warnings),
            "sample" if sample is not None else "rows": rows,
        }
