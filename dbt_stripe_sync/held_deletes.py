"""Deletes held back because a sync the run does not include still has live objects on them.

Deleting a Stripe customer cancels its subscriptions at once (no proration, no final invoice) and
removes its pending invoice items; deleting a draft invoice removes its items. A full run orders
this right — dependents first, each with what its own model asks for. When the dependent's model is
not selected (`run -s stripe_customers`), the run cannot do that, so the delete waits: it is planned
again by every run and goes through once the dependent's ledger no longer holds a live row on the
object (its model removed or re-pointed the row, and that sync ran), or once both models run
together. `plan` shows the same hold as a warning, so it predicts the run.

The dependents are found in SQL, from the ledger in the state schema: live rows of unselected syncs
whose last payload names the object's Stripe ID in its `customer` (or `invoice`) field — the field
every subscription, invoice, invoice item and quote (invoice item) names it by.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.plan import Change
from dbt_stripe_sync.secrets import redact_all
from dbt_stripe_sync.warehouse import Warehouse

# Objects whose delete in Stripe takes other objects with it.
CASCADING = frozenset({"customer", "invoice"})
_SHOWN = 5  # dependents named per held delete (the rest counted)


@dataclass(frozen=True)
class Held:
    """A delete of `key` (object `stripe_id`) that waits for these (sync, row key) dependents."""

    key: str
    stripe_id: str
    dependents: tuple[tuple[str, str], ...]

    def describe(self, model: str) -> str:
        syncs = sorted({s for s, _ in self.dependents})
        rows = ", ".join(f"{s} row {k}" for s, k in self.dependents[:_SHOWN])
        more = f" and {len(self.dependents) - _SHOWN} more" if len(self.dependents) > _SHOWN else ""
        return (
            f"row {self.key} ({self.stripe_id}): delete held back — {rows}{more} (not selected) is still "
            f"synced to it, and deleting it would make Stripe end that at once without what "
            f"{'/'.join(syncs)} asks for; run {model} together with {' '.join(syncs)} "
            f"(`-s {model} {' '.join(syncs)}`) to send it dependents first"
        )


def deletes_on(config: SyncConfig, full_refresh: bool) -> bool:
    """This sync may delete an object other syncs' rows hang on."""
    return (
        config.object in CASCADING
        and config.delete == "delete"
        and config.mode == "upsert"
        and not full_refresh
    )


def held_deletes(
    wh: Warehouse,
    ledger_relation: str,
    config: SyncConfig,
    model_relation: str,
    selected: Collection[str],
    project: Collection[str],
) -> list[Held]:
    """The rows of `config` that left its model and whose object live rows of unselected syncs of the
    project name (a removed model's rows hold nothing: it can never run again)."""
    p = wh.placeholder
    key = wh.quote(config.primary_key)
    names = sorted(set(selected) | {config.name})
    others = sorted(set(project) - set(names))
    if not others:
        return []
    ref = _json_text(wh, "o.payload_json", config.object)  # the field other objects name it by
    sql = (
        f"select d.source_key, d.stripe_id, o.sync_name, o.source_key from {ledger_relation} d "
        f"join {ledger_relation} o on {ref} = d.stripe_id "
        f"and o.sync_name in ({', '.join([p] * len(others))}) "
        f"and o.status in ({', '.join([p] * len(L.LIVE))}) "
        f"where d.sync_name = {p} and d.status = {p} and d.stripe_id is not null and not exists "
        f"(select 1 from {model_relation} m where cast(m.{key} as varchar(4000)) = d.source_key) "
        "order by d.source_key, o.sync_name, o.source_key"
    )
    _, rows = wh.query(sql, [*others, *L.LIVE, config.name, L.SYNCED])
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for source_key, stripe_id, sync_name, dep_key in rows:
        found.setdefault((str(source_key), str(stripe_id)), []).append((str(sync_name), str(dep_key)))
    return [Held(k, sid, tuple(deps)) for (k, sid), deps in found.items()]


def _json_text(wh: Warehouse, column: str, field: str) -> str:
    """SQL for the text at top-level `field` of a JSON text column (the payload's flat field paths):
    an equality join, not a scan of every payload for every deleted ID."""
    if wh.target.adapter_type == "duckdb":
        return f"json_extract_string({column}, '$.{field}')"
    return f"(cast({column} as json) ->> '{field}')"


def note(config: SyncConfig, held: Sequence[Held]) -> str:
    """One line for the run summary: how many deletes wait, and why (the first one named)."""
    first = held[0].describe(config.model)
    more = f" (and {len(held) - 1} more delete(s) held the same way)" if len(held) > 1 else ""
    return f"{len(held)} delete(s) held back, planned again by the next run: {first}{more}"


def hold_in_run(
    wh: Warehouse,
    ledger: str,
    config: SyncConfig,
    model_relation: str,
    selected: Collection[str],
    project: Collection[str],
    full_refresh: bool,
    deletes: list[Change],
) -> tuple[list[Change], str | None]:
    """The deletes to send now, and a note on those held back (None: none held). When the look-up
    fails every delete of the sync waits: a delete cannot be taken back."""
    if not deletes or not deletes_on(config, full_refresh):
        return deletes, None
    try:
        held = held_deletes(wh, ledger, config, model_relation, selected, project)
    except Exception as exc:  # reported; nothing irreversible is sent
        reason = redact_all(str(exc))[:200]
        return [], f"{len(deletes)} delete(s) held back: could not check other syncs' rows on them ({reason})"
    planned = {c.key for c in deletes}
    held = [h for h in held if h.key in planned]
    if not held:
        return deletes, None
    waiting = {h.key for h in held}
    return [c for c in deletes if c.key not in waiting], note(config, held)


def hold_in_plan(
    wh: Warehouse,
    ledger_relation: str,
    config: SyncConfig,
    model_relation: str,
    selected: Collection[str],
    project: Collection[str],
    full_refresh: bool,
    planned_deletes: int,
) -> list[Held]:
    """What `run` will hold back of a plan's deletes (shown as warnings; not counted as deleted)."""
    if not planned_deletes or not deletes_on(config, full_refresh):
        return []
    return held_deletes(wh, ledger_relation, config, model_relation, selected, project)[:planned_deletes]
