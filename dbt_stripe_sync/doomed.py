"""Objects a run deletes, as every sync planned after their delete was decided must see them.

Deletes are sent last, dependents first (a subscription is cancelled, with its proration, before its
customer is deleted). A sequential run would have deleted each object at its own sync's turn, so a
sync planned later must not build on one that is about to go:
- a reference to it (`sync:` from the other sync's ledger, `by: email` from a look-up) is unresolved,
  and the row is rejected as it would be once the object is gone — no subscription is created for a
  customer the same run deletes;
- a row of a later sync of the same object that binds to it (a customer matched by email, a product
  by its chosen ID) takes it over instead: the object moved from one model to the other, so it is
  kept, updated by its new row, and the old row is retired like a re-key (nothing is deleted). A
  delete there would leave the new row's ledger pointing at a deleted object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffRow
from dbt_stripe_sync.plan import Change
from dbt_stripe_sync.planner import Lookups

BINDS = frozenset({"update", "adopt", "skip"})  # a row tied to an existing object (skip: insert mode)


@dataclass
class _Doomed:
    config: SyncConfig
    change: Change
    cancel: Callable[[Change], None]  # drops the planned delete and retires its row instead


@dataclass
class Doomed:
    """The run's planned deletes, by Stripe ID, and the objects rows of this run bound to."""

    shared_objects: frozenset[str] = frozenset()  # object types more than one sync of the run syncs
    _by_id: dict[str, list[_Doomed]] = field(default_factory=dict)  # several syncs may delete one object
    _bound: dict[str, tuple[SyncConfig, str]] = field(default_factory=dict)  # id -> (sync, row key)

    def add(self, config: SyncConfig, deletes: Iterable[Change], cancel: Callable[[Change], None]) -> None:
        """Register a sync's planned deletes; one of an object a row of another sync of the same kind
        bound to earlier in this run is not a delete but a move (its row is retired at once)."""
        for change in list(deletes):
            if change.action != "delete" or not change.stripe_id:
                continue
            bound = self._bound.get(change.stripe_id)
            if bound is not None and bound[0].object == config.object and bound[0] is not config:
                cancel(retired(change, bound[0], bound[1]))
                continue
            self._by_id.setdefault(change.stripe_id, []).append(_Doomed(config, change, cancel))

    def __bool__(self) -> bool:
        return bool(self._by_id)

    def rows(self, rows: Sequence[DiffRow]) -> list[DiffRow]:
        """The rows with `sync:` references to doomed objects unresolved."""
        if not self._by_id:
            return list(rows)
        return [
            replace(r, refs={t: (None if i in self._by_id else i) for t, i in r.refs.items()})
            if any(i in self._by_id for i in r.refs.values())
            else r
            for r in rows
        ]

    def lookups(self, config: SyncConfig, lookups: Lookups) -> Lookups:
        """`by: email` references of a sync of another object resolve to no doomed customer. (A customers
        sync matches by email with the same look-ups: what it binds to is taken over, `hand_over`.)"""
        if not self._by_id or config.object == "customer" or not lookups.by_email:
            return lookups
        doomed = self._by_id
        by_email = {e: [c for c in cs if c.get("id") not in doomed] for e, cs in lookups.by_email.items()}
        return replace(lookups, by_email=by_email)

    def hand_over(self, config: SyncConfig, changes: Iterable[Change]) -> None:
        """A row of `config` bound to a doomed object of its own kind takes the object over; the objects
        rows bind to are remembered when another sync of the run syncs the same kind (`add`)."""
        track = config.object in self.shared_objects
        if not self._by_id and not track:
            return
        for change in changes:
            if change.action not in BINDS or not change.stripe_id:
                continue
            doomed = self._by_id.get(change.stripe_id, [])
            others = [d for d in doomed if d.config.object == config.object and d.config is not config]
            if others:  # every other model's delete of it is dropped, not only the last planned
                kept = [d for d in doomed if d.config is config]
                if kept:
                    self._by_id[change.stripe_id] = kept
                else:
                    del self._by_id[change.stripe_id]
                for d in others:
                    d.cancel(retired(d.change, config, change.key))
            elif track:
                self._bound[change.stripe_id] = (config, change.key)


def retired(delete: Change, to: SyncConfig, key: str) -> Change:
    """The delete of a row whose object another model's row took over, as the retirement of the row."""
    return Change(
        key=delete.key,
        action="rekey",
        stripe_id=delete.stripe_id,
        ledger=delete.ledger,
        reason=f"moved: {delete.stripe_id} is now synced by {to.model} (row {key}); nothing is deleted",
    )


def cancel_in(deletes: list[Change], record: Callable[[Change], Any]) -> Callable[[Change], None]:
    """A `cancel` for `Doomed.add`: the delete leaves `deletes` and its retirement is recorded."""

    def cancel(retirement: Change) -> None:
        kept = [c for c in deletes if c.key != retirement.key]
        deletes[:] = kept
        record(retirement)

    return cancel
