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
  delete there would leave the new row's ledger pointing at a deleted object. (A products or prices
  "delete" that Stripe turns into an archive is dropped the same way: the object stays active.)
  The taking row writes its own tag (`metadata.dbt_stripe_sync`, tagging.py): an update carries it, an
  adopt becomes a tag-only update; an object bound before its delete was planned is re-tagged after
  the deletes (`retags`). An insert-mode skip never writes to the object, its tag included;
- a plain-column Stripe ID (a price's `product: product_id`) naming a doomed object is unresolved as
  well (`unresolve_plain`): one sync after another, the object would be gone and the write refused.
`plan` applies the same rules in the same order (plan_doomed.py), so it predicts what `run` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffRow
from dbt_stripe_sync.plan import Change
from dbt_stripe_sync.planner import Lookups, Unresolved
from dbt_stripe_sync.tagging import TAG_KEY, object_tag
from dbt_stripe_sync.waves import plain_id_paths

# drops a planned delete: (its row's retirement, the taking row's sync and key). `run` records the
# retirement once the taking row's write landed (run_syncs.py); `plan` predicts it does
Cancel = Callable[[Change, str, str], None]
BINDS = frozenset({"update", "adopt", "skip"})  # a row tied to an existing object (skip: insert mode)
SENDS = frozenset({"create", "update", "restore", "replace"})  # writes that name other objects' IDs
TAG = f"metadata.{TAG_KEY}"


@dataclass(frozen=True)
class Retag:
    """An object a row of an earlier sync bound to, taken over from a model whose delete was planned
    later: its tag is rewritten to the row's once the deletes are done."""

    config: SyncConfig
    key: str
    stripe_id: str


@dataclass(frozen=True)
class Checkpoint:
    by_id: dict[str, list[_Doomed]]
    retags: list[Retag]


@dataclass
class _Doomed:
    config: SyncConfig
    change: Change
    cancel: Cancel  # drops the planned delete and retires its row instead


@dataclass
class Doomed:
    """The run's planned deletes, by Stripe ID, and the objects rows of this run bound to."""

    shared_objects: frozenset[str] = frozenset()  # object types more than one sync of the run syncs
    _by_id: dict[str, list[_Doomed]] = field(default_factory=dict)  # several syncs may delete one object
    # id -> (sync's index in _syncs, row key, action): ints and strings only, so the garbage collector
    # stops tracking the tuples (a plan binds every changed row of a sync of a shared kind)
    _bound: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    _syncs: list[SyncConfig] = field(default_factory=list)
    retags: list[Retag] = field(default_factory=list)  # tags to rewrite after the deletes (`add`)
    _undo: list[str | tuple[str, tuple[int, str, str]]] | None = None  # `checkpoint`: _bound before

    def checkpoint(self) -> Checkpoint:
        """What `rollback` restores: `plan` hands a sync's changes over as they are planned, before it
        knows whether the sync's delete guard blocks it (`run` sends nothing for a blocked sync). Deletes
        are few, so they are copied; the objects rows bound to are journaled from here on."""
        self._undo = []
        return Checkpoint({i: list(ds) for i, ds in self._by_id.items()}, list(self.retags))

    def commit(self) -> None:
        """Keep what happened since the checkpoint (the journal is let go)."""
        self._undo = None

    def rollback(self, to: Checkpoint) -> None:
        """Undo what happened since `to` (the cancels it made are the caller's to undo)."""
        self._by_id, self.retags = to.by_id, to.retags
        for step in reversed(self._undo or []):
            if isinstance(step, str):  # bound since the checkpoint
                self._bound.pop(step, None)
            else:
                self._bound[step[0]] = step[1]
        self._undo = None

    def add(self, config: SyncConfig, deletes: Iterable[Change], cancel: Cancel) -> None:
        """Register a sync's planned deletes; one of an object a row of another sync of the same kind
        bound to earlier in this run is not a delete but a move (its row is retired at once)."""
        for change in list(deletes):
            if change.action != "delete" or not change.stripe_id:
                continue
            if self.taken_here(config, change):
                bound = self._bound[change.stripe_id]
                to = self._syncs[bound[0]]
                cancel(retired(change, to, bound[1]), to.name, bound[1])
                rewrites = bound[2] in ("update", "adopt")  # an insert-mode skip never writes to it
                if rewrites and not any(r.stripe_id == change.stripe_id for r in self.retags):
                    self.retags.append(Retag(to, bound[1], change.stripe_id))
                continue
            self._by_id.setdefault(change.stripe_id, []).append(_Doomed(config, change, cancel))

    def taken_here(self, config: SyncConfig, change: Change) -> bool:
        """Whether `add` turns this delete into an in-run takeover: a row of another sync of the same
        kind bound to its object earlier in this run (whether or not that row's write has landed yet)."""
        bound = self._bound.get(change.stripe_id) if change.stripe_id else None
        to = self._syncs[bound[0]] if bound is not None else None
        return to is not None and to.object == config.object and to is not config

    @classmethod
    def for_syncs(cls, configs: Iterable[SyncConfig]) -> Doomed:
        """An empty registry for a run (or plan) of `configs`: it tracks the objects rows bind to for
        the kinds of object more than one of them syncs."""
        kinds = Counter(c.object for c in configs)
        return cls(frozenset(k for k, n in kinds.items() if n > 1))

    @property
    def has_deletes(self) -> bool:
        """Whether syncs planned so far delete anything (what later syncs must be checked against).
        Explicit, not `__bool__`: `doomed or Doomed()` once threw an empty registry away."""
        return bool(self._by_id)

    def unresolve_plain(self, config: SyncConfig, changes: Sequence[Change]) -> list[Change]:
        """The changes, a write naming a doomed object in a plain-column ID field (a price's
        `product: product_id`) rejected as unresolved: one sync after another, that object is gone
        first and Stripe refuses the write. Retried every run, like an unresolved `sync:` reference."""
        if not self._by_id:
            return list(changes)
        paths = plain_id_paths(config)
        if not paths:
            return list(changes)
        return [self._unresolved(config, c, paths) if c.action in SENDS else c for c in changes]

    def _unresolved(self, config: SyncConfig, change: Change, paths: Sequence[str]) -> Change:
        for path in paths:
            named = change.params.get(path)
            doomed = self._by_id.get(named) if isinstance(named, str) else None
            if doomed:
                d = doomed[0]
                reason = Unresolved(
                    f"{path}: Stripe {d.config.object} {named} is deleted by this run ({d.config.model} "
                    f"row {d.change.key} left the model); it is retried on every run — name a "
                    f"{d.config.object} that stays, or filter the row out"
                )
                return Change(
                    key=change.key, action="reject", full=change.full, reason=reason, ledger=change.ledger
                )
        return change

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

    def _index(self, config: SyncConfig) -> int:
        for i, known in enumerate(self._syncs):
            if known is config:
                return i
        self._syncs.append(config)
        return len(self._syncs) - 1

    def hand_over(self, config: SyncConfig, changes: Sequence[Change]) -> list[Change]:
        """The changes, a row of `config` bound to a doomed object of its own kind taking the object
        over (with its own tag, `retagged`); the objects rows bind to are remembered when another sync
        of the run syncs the same kind (`add`)."""
        track = config.object in self.shared_objects
        if not self._by_id and not track:
            return list(changes)
        out = list(changes)
        by_id, bound, undo = self._by_id, self._bound, self._undo  # a plan's every row passes here
        me = self._index(config) if track else -1
        for i, change in enumerate(out):
            sid = change.stripe_id
            if not sid or change.action not in BINDS:
                continue
            doomed = by_id.get(sid)
            others = doomed and [
                d for d in doomed if d.config.object == config.object and d.config is not config
            ]
            if others:  # every other model's delete of it is dropped, not only the last planned
                kept = [d for d in doomed if d.config is config]  # type: ignore[union-attr]
                if kept:
                    by_id[sid] = kept
                else:
                    del by_id[sid]
                for d in others:
                    d.cancel(retired(d.change, config, change.key), config.name, change.key)
                out[i] = retagged(config, change, others[0])
            elif track:
                if undo is not None:  # a string for a new key: not tracked by the garbage collector
                    was = bound.get(sid)
                    undo.append(sid if was is None else (sid, was))
                bound[sid] = (me, change.key, change.action)
        return out


def retirement(delete: Change, reason: str) -> Change:
    """A planned delete that is not sent, as the retirement of its row (the ledger marks it deleted;
    the object stays, with whoever holds it now)."""
    return Change(
        key=delete.key, action="rekey", stripe_id=delete.stripe_id, ledger=delete.ledger, reason=reason
    )


def retired(delete: Change, to: SyncConfig, key: str) -> Change:
    """The delete of a row whose object another model's row took over, as the retirement of the row."""
    return retirement(
        delete, f"moved: {delete.stripe_id} is now synced by {to.model} (row {key}); nothing is deleted"
    )


def retagged(config: SyncConfig, change: Change, old: _Doomed) -> Change:
    """A taking-over row's change writing the row's own tag over the old model's: an update sends it
    with its fields, an adopt (nothing else to send) becomes a tag-only update. An insert-mode skip
    is left alone: insert mode never writes to an object already in Stripe."""
    if change.action not in ("update", "adopt") or change.params.get(TAG):
        return change
    tag = object_tag(config.name, change.key)
    before = {**change.before, TAG: object_tag(old.config.name, old.change.key)}
    if change.action == "update":
        return replace(change, params={**change.params, TAG: tag}, before=before)
    return replace(
        change,
        action="update",
        params={TAG: tag},
        before=before,
        idempotency_key=retag_key(config, change.key, change.stripe_id, change.row_hash),
        reason=f"{change.reason or 'bound'}; taken over: its tag now names this row",
    )


def retag_key(config: SyncConfig, key: str, stripe_id: str | None, row_hash: str | None) -> str:
    from dbt_stripe_sync.planner import idempotency_key

    return idempotency_key(config.name, key, f"retag:{stripe_id}", row_hash, 0)


def cancel_in(deletes: list[Change], record: Callable[[Change, str, str], Any]) -> Cancel:
    """A `cancel` for `Doomed.add`: the delete leaves `deletes`; its retirement goes to `record`, with
    the taking row's sync and key."""

    def cancel(retirement: Change, sync: str, key: str) -> None:
        kept = [c for c in deletes if c.key != retirement.key]
        deletes[:] = kept
        record(retirement, sync, key)

    return cancel
