"""Deletes of objects another row is still bound to: the object moved, it is not deleted.

Within one run, a row that binds to an object another model deletes takes it over (doomed.py). Across
runs that decision can be lost: the run that took it over was killed after the new row's update and
before the deletes, the old model's delete was blocked by its guard and goes out later, the new model
was synced alone (`run -s`), or with `--full-refresh` (no deletes inferred). The next run would then
delete an object whose new row's ledger still says `synced` to it, and every later run would report
that row unchanged.

So before any delete is sent (and in `plan`, so it predicts the run), the ledger is asked, in SQL,
for rows of other syncs bound to the same Stripe ID. A row holds the object when
- its ledger status is live (synced, pending, failed) or rejected (its new values were refused, the
  object is still its own), or it is a pending write aimed at the object (a matched update killed
  before its outcome was recorded, or refused by Stripe, has no Stripe ID yet, only its target);
- its sync is still a model of the project (a removed or renamed model's rows hold nothing), and
  its row is still in that model — unless that sync's deletes were blocked in this run, whose model
  is in doubt (a row that left a `delete: nothing` model is left alone, it does not veto others);
- this run does not delete it itself.
A row bound to the object (synced, failed, rejected) takes it over: the delete becomes the retirement of
its own row (`rekey`, "moved: ..."), as an in-run takeover does. A row only aimed at it (pending, or
refused) may never bind to it — its email may change, it may leave — so the delete is held instead:
not sent, not retired, planned again by every run until that row binds (then it is retired) or stops
aiming at the object (then it is sent). A delete cannot be taken back; keeping is the safe side, and
holding keeps the delete's owner until someone else owns the object. Two rows of this run deleting one
object send one DELETE: the other row is retired as deleted with it.

`plan` reads the ledger as the last run left it. Of a sync it plans again (`replanned`), a refused row
is matched again by this plan (an in-run takeover, doomed.py, if it finds the same object), so its
stale target is not read; a pending write is finished first by the run (recovery), so it is shown as
the binding it becomes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.doomed import retirement
from dbt_stripe_sync.plan import Change
from dbt_stripe_sync.warehouse import Warehouse

_BATCH = 500  # Stripe IDs (or row keys) per look-up query
# a rejected row keeps its Stripe ID: its new values are refused, the object is still its own
_BINDING = (*L.LIVE, L.REJECTED)
# holders only aimed at the object (or taking it in a write that did not land), not bound to it: they
# hold a delete back, never retire it
AIMED = frozenset({"awaiting", "refused", "taking"})


@dataclass(frozen=True)
class SyncModel:
    """Where a sync of the project reads its rows: its model's relation and key column (None: its
    block does not say, so its rows are taken as present)."""

    relation: str
    primary_key: str | None


@dataclass(frozen=True)
class Holder:
    """A row bound to an object a delete is planned for: `how` is its ledger status (synced, pending,
    failed, rejected), or, for a row only aimed at it, "awaiting" (a matched row's first update, pending
    with no Stripe ID yet) or "refused" (that update refused by Stripe); or "deleting" (this run deletes
    it with another row) or "taking" (this run's takeover whose write did not land)."""

    sync: str
    key: str
    how: str

    @property
    def holds_back(self) -> bool:
        """Whether the delete waits (planned again next run) rather than being retired for good."""
        return self.how in AIMED


Bound = dict[tuple[str, str], Holder]  # (sync, key) of a delete -> the row that keeps it from sending


def bound_elsewhere(
    wh: Warehouse,
    ledger_relation: str,
    deletes: Mapping[str, Sequence[Change]],
    project: Mapping[str, SyncModel],
    doubted: Collection[str] = (),
    replanned: Collection[str] = (),
    recovered: Collection[str] | None = None,
) -> Bound:
    """Each planned delete (by sync name) that must not be sent, with the row that holds its object.
    `project`: every sync of the project (selected or not); `doubted`: syncs blocked by their delete
    guard or failed in this run, whose rows count as present even when they left their model;
    `replanned`: syncs `plan` plans again, whose refused rows' recorded targets it does not read;
    `recovered`: syncs whose pending writes `run` has finished by now (default: `replanned`), so `plan`
    shows an awaiting row there as the binding recovery makes of it."""
    recovered = replanned if recovered is None else recovered
    ids = sorted({c.stripe_id for cs in deletes.values() for c in cs if c.stripe_id})
    if not ids:
        return {}
    deleting = {(sync, c.key) for sync, cs in deletes.items() for c in cs}
    candidates = bound_rows(wh, ledger_relation, ids) + _pending_aimed_at(wh, ledger_relation, set(ids))
    candidates = [
        (s, k, sid, _as_replanned(how) if s in recovered else how)
        for s, k, sid, how in candidates
        if (s, k) not in deleting and s in project and not (how == "refused" and s in replanned)
    ]
    present = _still_in_models(wh, project, {(s, k) for s, k, _, _ in candidates if s not in doubted})
    holders: dict[str, list[Holder]] = {}
    for sync, key, stripe_id, how in sorted(set(candidates)):
        if sync in doubted or (sync, key) in present:
            holders.setdefault(stripe_id, []).append(Holder(sync, key, how))
    for found_here in holders.values():  # a row bound to the object first: it takes the delete over
        found_here.sort(key=lambda h: h.holds_back)
    found: Bound = {}
    senders: dict[str, tuple[str, str]] = {}  # stripe ID -> the one row of this run that deletes it
    for sync, changes in sorted(deletes.items()):
        for c in sorted(changes, key=lambda c: c.key):
            if not c.stripe_id:
                continue
            others = [h for h in holders.get(c.stripe_id, []) if (h.sync, h.key) != (sync, c.key)]
            if others:
                found[(sync, c.key)] = others[0]
            elif c.stripe_id in senders:
                found[(sync, c.key)] = Holder(*senders[c.stripe_id], "deleting")
            else:
                senders[c.stripe_id] = (sync, c.key)
    return found


def _as_replanned(how: str) -> str:
    """A holder of a sync `plan` plans again, as the run will find it once that sync has run."""
    return L.SYNCED if how == "awaiting" else how


def bound_rows(wh: Warehouse, ledger_relation: str, ids: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """(sync, key, Stripe ID, status) of every ledger row bound to one of `ids`."""
    ids = sorted(set(ids))
    p = wh.placeholder
    rows: list[tuple[str, str, str, str]] = []
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        sql = (
            f"select sync_name, source_key, stripe_id, status from {ledger_relation} as bound_rows "
            f"where stripe_id in ({', '.join([p] * len(batch))}) "
            f"and status in ({', '.join([p] * len(_BINDING))})"
        )
        _, found = wh.query(sql, [*batch, *_BINDING])
        rows += [(str(s), str(k), str(sid), str(st)) for s, k, sid, st in found]
    return rows


def _pending_aimed_at(wh: Warehouse, ledger_relation: str, ids: set[str]) -> list[tuple[str, str, str, str]]:
    """Writes with no Stripe ID yet whose target is one of `ids`: a matched update checkpointed, then
    killed (pending), or refused by Stripe (failed; applier._aimed_at). Few rows, read whole."""
    p = wh.placeholder
    _, found = wh.query(
        f"select sync_name, source_key, pending_json, status from {ledger_relation} as pending_rows "
        f"where status in ({p}, {p}) and stripe_id is null and pending_json is not null",
        [L.PENDING, L.FAILED],
    )
    rows = []
    for sync, key, pending, status in found:
        try:
            target = json.loads(str(pending)).get("stripe_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(target, str) and target in ids:
            rows.append((str(sync), str(key), target, "awaiting" if status == L.PENDING else "refused"))
    return rows


def _still_in_models(
    wh: Warehouse, project: Mapping[str, SyncModel], rows: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Those of `rows` (sync, key) still in their sync's model. A model whose relation does not exist
    or whose key is unknown cannot say: its rows count as present."""
    present: set[tuple[str, str]] = set()
    by_sync: dict[str, list[str]] = {}
    for sync, key in rows:
        by_sync.setdefault(sync, []).append(key)
    p = wh.placeholder
    for sync, keys in sorted(by_sync.items()):
        model = project[sync]
        if model.primary_key is None or wh.columns_of(model.relation) is None:
            present.update((sync, k) for k in keys)
            continue
        col = f"cast(m.{wh.quote(model.primary_key)} as varchar(4000))"
        keys.sort()
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            marks = ", ".join([p] * len(batch))
            _, found = wh.query(
                f"select distinct {col} from {model.relation} m where {col} in ({marks})", batch
            )
            present.update((sync, str(k)) for (k,) in found)
    return present


def moved(delete: Change, holder: Holder) -> Change:
    """The delete of a row whose object `holder` is bound to, as the retirement of the row."""
    sid, row = delete.stripe_id, f"{holder.sync} row {holder.key}"
    if holder.how == "deleting":
        return retirement(delete, f"{sid} is deleted once, by {row}")
    if holder.how == L.PENDING:
        return retirement(delete, f"moved: a write of {row} to {sid} is pending; nothing is deleted")
    if holder.how in (L.FAILED, L.REJECTED):
        why = "its last write was refused"
        return retirement(delete, f"moved: {sid} is still bound to {row} ({why}); nothing is deleted")
    return retirement(delete, f"moved: {sid} is still synced by {row}; nothing is deleted")


def hold_reason(delete: Change, holder: Holder) -> str:
    """Why a delete waits for a row only aimed at its object (`Holder.holds_back`)."""
    sid, row = delete.stripe_id, f"{holder.sync} row {holder.key}"
    if holder.how == "awaiting":
        return f"a write of {row} to {sid} is pending; the delete waits for its outcome"
    if holder.how == "taking":
        return (
            f"{row} took {sid} over in this run, but its write did not land; this row keeps {sid} until "
            "that write lands, or that row stops aiming at it"
        )
    return (
        f"{row} matched {sid}, and Stripe refused its update; the delete waits until that row binds "
        "to it (then it moved) or stops aiming at it"
    )


def split(
    sync: str, deletes: Sequence[Change], found: Bound
) -> tuple[list[Change], list[Change], list[Change]]:
    """The deletes still to send, the retirements of those whose object is bound elsewhere, and those
    held back (not sent, not retired: planned again next run) for a row only aimed at their object."""
    send, retired, held = [], [], []
    for c in deletes:
        holder = found.get((sync, c.key))
        if holder is None:
            send.append(c)
        elif holder.holds_back:
            held.append(c)
        else:
            retired.append(moved(c, holder))
    return send, retired, held


def vet(sync: str, checked: Sequence[Change], found: Bound) -> tuple[list[Change], set[str]]:
    """A sync's deletes checked before they doom their objects (run and plan alike): the retirements of
    those whose object another row is bound to (retired now, dooming nothing), and the keys of those
    whose object a pending write of another row is aimed at (kept for the final check, dooming nothing:
    the run cannot send them either way)."""
    _, retired, _ = split(sync, checked, found)
    awaited = {k for (s, k), h in found.items() if s == sync and h.how == "awaiting"}
    return retired, awaited


def held_note(sync: str, held: Sequence[Change], found: Bound, what: str = "delete(s)") -> str | None:
    """One line for the sync's summary (or plan warnings) on its held deletes, the first one named."""
    if not held:
        return None
    first = held[0]
    more = f" (and {len(held) - 1} more)" if len(held) > 1 else ""
    reason = hold_reason(first, found[(sync, first.key)])
    return f"{len(held)} {what} held back, planned again by the next run: row {first.key}: {reason}{more}"
