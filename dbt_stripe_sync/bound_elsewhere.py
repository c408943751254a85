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
Such a delete becomes the retirement of its row (`rekey`, "moved: ..."), as an in-run takeover does.
A delete cannot be taken back; keeping is the safe side. Two rows of this run deleting one object
send one DELETE: the other row is retired as deleted with it.
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


@dataclass(frozen=True)
class SyncModel:
    """Where a sync of the project reads its rows: its model's relation and key column (None: its
    block does not say, so its rows are taken as present)."""

    relation: str
    primary_key: str | None


@dataclass(frozen=True)
class Holder:
    """A row bound to an object a delete is planned for: `how` is its ledger status (synced, pending,
    failed, rejected), "refused" (a matched row whose first update Stripe refused) or "deleting" (this
    run deletes it with another row)."""

    sync: str
    key: str
    how: str


Bound = dict[tuple[str, str], Holder]  # (sync, key) of a delete -> the row that keeps it from sending


def bound_elsewhere(
    wh: Warehouse,
    ledger_relation: str,
    deletes: Mapping[str, Sequence[Change]],
    project: Mapping[str, SyncModel],
    doubted: Collection[str] = (),
) -> Bound:
    """Each planned delete (by sync name) that must not be sent, with the row that holds its object.
    `project`: every sync of the project (selected or not); `doubted`: syncs blocked by their delete
    guard or failed in this run, whose rows count as present even when they left their model."""
    ids = sorted({c.stripe_id for cs in deletes.values() for c in cs if c.stripe_id})
    if not ids:
        return {}
    deleting = {(sync, c.key) for sync, cs in deletes.items() for c in cs}
    candidates = _live_rows(wh, ledger_relation, ids) + _pending_aimed_at(wh, ledger_relation, set(ids))
    candidates = [
        (s, k, sid, how) for s, k, sid, how in candidates if (s, k) not in deleting and s in project
    ]
    present = _still_in_models(wh, project, {(s, k) for s, k, _, _ in candidates if s not in doubted})
    holders: dict[str, list[Holder]] = {}
    for sync, key, stripe_id, how in sorted(set(candidates)):
        if sync in doubted or (sync, key) in present:
            holders.setdefault(stripe_id, []).append(Holder(sync, key, how))
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


def _live_rows(wh: Warehouse, ledger_relation: str, ids: Sequence[str]) -> list[tuple[str, str, str, str]]:
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
            rows.append((str(sync), str(key), target, "pending" if status == L.PENDING else "refused"))
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
    """The delete of a row whose object `holder` keeps, as the retirement of the row."""
    sid, row = delete.stripe_id, f"{holder.sync} row {holder.key}"
    if holder.how == "deleting":
        return retirement(delete, f"{sid} is deleted once, by {row}")
    if holder.how == "pending":
        return retirement(delete, f"moved: a write of {row} to {sid} is pending; nothing is deleted")
    if holder.how == "refused":
        return retirement(delete, f"moved: {row} matched {sid} (its update is retried); nothing is deleted")
    if holder.how in (L.FAILED, L.REJECTED):
        why = "its last write was refused"
        return retirement(delete, f"moved: {sid} is still bound to {row} ({why}); nothing is deleted")
    return retirement(delete, f"moved: {sid} is still synced by {row}; nothing is deleted")


def split(sync: str, deletes: Sequence[Change], found: Bound) -> tuple[list[Change], list[Change]]:
    """The deletes still to send, and the retirements of those whose object is bound elsewhere."""
    send = [c for c in deletes if (sync, c.key) not in found]
    retired = [moved(c, found[(sync, c.key)]) for c in deletes if (sync, c.key) in found]
    return send, retired
