"""Deletes of objects another row is still bound to: the object moved, it is not deleted.

Within one run, a row that binds to an object another model deletes takes it over (doomed.py). Across
runs that decision can be lost: the run that took it over was killed after the new row's update and
before the deletes, the old model's delete was blocked by its guard and goes out later, the new model
was synced alone (`run -s`), or with `--full-refresh` (no deletes inferred). The next run would then
delete an object whose new row's ledger still says `synced` to it, and every later run would report
that row unchanged.

So before any delete is sent (and in `plan`, so it predicts the run), the ledger is asked, in SQL,
for live rows (synced, pending, failed) of any sync, selected or not, bound to the same Stripe ID and
not deleted by this run themselves. Such a delete becomes the retirement of its row (`rekey`,
"moved: ..."), as an in-run takeover does. A delete cannot be taken back; keeping is the safe side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.plan import Change
from dbt_stripe_sync.warehouse import Warehouse

_LIVE = (L.SYNCED, L.PENDING, L.FAILED)
_BATCH = 500  # Stripe IDs per look-up query

Bound = dict[tuple[str, str], tuple[str, str]]  # (sync, key) of a delete -> (sync, key) still bound


def bound_elsewhere(wh: Warehouse, ledger_relation: str, deletes: Mapping[str, Sequence[Change]]) -> Bound:
    """Each planned delete (by sync name) whose object a live ledger row of another row is bound to,
    with that row; rows this run deletes too do not count."""
    ids = sorted({c.stripe_id for cs in deletes.values() for c in cs if c.stripe_id})
    if not ids:
        return {}
    deleting = {(sync, c.key) for sync, cs in deletes.items() for c in cs}
    holders: dict[str, list[tuple[str, str]]] = {}
    p = wh.placeholder
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        sql = (
            f"select sync_name, source_key, stripe_id from {ledger_relation} as bound_rows "
            f"where stripe_id in ({', '.join([p] * len(batch))}) "
            f"and status in ({', '.join([p] * len(_LIVE))}) order by sync_name, source_key"
        )
        _, rows = wh.query(sql, [*batch, *_LIVE])
        for sync_name, source_key, stripe_id in rows:
            holders.setdefault(str(stripe_id), []).append((str(sync_name), str(source_key)))
    found: Bound = {}
    for sync, changes in deletes.items():
        for c in changes:
            others = [
                h for h in holders.get(c.stripe_id or "", []) if h != (sync, c.key) and h not in deleting
            ]
            if others:
                found[(sync, c.key)] = others[0]
    return found


def moved(delete: Change, holder: tuple[str, str]) -> Change:
    """The delete of a row whose object `holder` is still synced to, as the retirement of the row."""
    return Change(
        key=delete.key,
        action="rekey",
        stripe_id=delete.stripe_id,
        ledger=delete.ledger,
        reason=(
            f"moved: {delete.stripe_id} is still synced by {holder[0]} row {holder[1]}; nothing is deleted"
        ),
    )


def split(sync: str, deletes: Sequence[Change], found: Bound) -> tuple[list[Change], list[Change]]:
    """The deletes still to send, and the retirements of those whose object is bound elsewhere."""
    send = [c for c in deletes if (sync, c.key) not in found]
    retired = [moved(c, found[(sync, c.key)]) for c in deletes if (sync, c.key) in found]
    return send, retired
