"""Pure planning: diff rows + look-ups -> an immutable SyncPlan. No I/O happens here.

`plan` renders the result; `run` hands it to the applier. Keeping the two apart (as sqlmesh does)
means a dry run is exactly the plan that a real run would apply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dbt_stripe_sync import ledger as L
from dbt_stripe_sync.adoption import values_in
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffResult, DiffRow
from dbt_stripe_sync.gc_pause import older_objects_frozen
from dbt_stripe_sync.payload import CLEAR, CoercionError, changed_fields, converter, from_json, to_string
from dbt_stripe_sync.plan import Change, SyncPlan, Upcoming
from dbt_stripe_sync.row_checks import row_problems
from dbt_stripe_sync.settings import Settings
from dbt_stripe_sync.stripe_objects.base import StripeObject
from dbt_stripe_sync.tagging import TAG_KEY, object_tag, tag_params


@dataclass(frozen=True)
class Lookups:
    """What matching found in Stripe before planning (the only I/O the plan depends on)."""

    by_email: Mapping[str, list[dict]] = field(default_factory=dict)  # email -> customers, oldest first
    claimed: Mapping[str, str] = field(default_factory=dict)  # stripe id -> key of the row synced to it
    calls: int = 0
    # match IDs known to exist in Stripe, when the adapter can batch that look-up (else None)
    existing_ids: frozenset[str] | None = None
    # source key -> the object this tool created for it, found by its tag (the ledger had no row)
    adopted: Mapping[str, dict] = field(default_factory=dict)
    # keys in `claimed` whose rows have left the model: a row matching their object is a re-key
    departed: frozenset[str] = frozenset()
    # stripe id -> the object as Stripe returned it while matching: the before-values of an update
    objects: Mapping[str, dict] = field(default_factory=dict)


def idempotency_key(
    sync_name: str, key: str, action: str, row_hash: str | None, attempt: int, state: str = ""
) -> str:
    """The base of a write's key, per write attempt: a new attempt after a definite failure gets
    another (Stripe would replay the failure). `state`: the state marker (tagging.py), so two
    targets on one account never replay each other's writes. The applier salts it with the run as
    it checkpoints the write (`Applier._own_key`), so a write repeating an earlier one is applied;
    a crash-and-resend reuses the key checkpointed with it."""
    raw = f"{sync_name}\x1f{key}\x1f{action}\x1f{row_hash}\x1f{attempt}" + (f"\x1f{state}" if state else "")
    return "dss_" + hashlib.sha256(raw.encode()).hexdigest()[:40]


# ---- rows to payloads ---------------------------------------------------------------------------
class Unresolved(str):
    """A problem that goes away once a referenced object exists (no synced row with that key, no
    customer with that email): a row rejected only for these is re-planned on every run until they
    resolve (its reject records no attempt hash, which the diff picks up), not only when it changes."""


def map_row(
    config: SyncConfig, row: DiffRow, email_ids: Mapping[str, list[dict]], upcoming: Upcoming | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The flat payload of a row, and the reasons it cannot be sent (empty when it can)."""
    flat: dict[str, Any] = {}
    problems: list[str] = []
    clear = config.on_null == "clear"
    values = row.values
    for path, column, convert in _fields_of(config):
        value = values.get(column)
        if value is None:
            if clear:
                flat[path] = CLEAR
        elif type(value) is str and convert is to_string:  # most values: a string for a string field
            flat[path] = value
        else:
            try:
                flat[path] = convert(value)
            except CoercionError as exc:
                problems.append(f"column `{column}` -> {path}: {exc}")
    if config.references:
        add_references(config, row, email_ids, upcoming, flat, problems)
    return flat, problems


def add_references(
    config: SyncConfig,
    row: DiffRow,
    email_ids: Mapping[str, list[dict]],
    upcoming: Upcoming | None,
    flat: dict[str, Any],
    problems: list[str],
) -> None:
    """map_row's second half: the Stripe IDs of the row's references, into `flat` (or `problems`)."""
    for ref in config.references:
        value = row.values.get(ref.column)
        if value is None:
            continue
        if ref.sync:
            stripe_id = row.refs.get(ref.target) or (upcoming and upcoming.by_sync(ref.sync, value))
            if not stripe_id:
                problems.append(
                    Unresolved(
                        f"{ref.target}: no {ref.sync} row with key {value!r} has been synced "
                        f"(column `{ref.column}`); it is retried when that row syncs"
                    )
                )
                continue
        else:
            found = email_ids.get(str(value), []) or [
                {"id": later} for later in [upcoming and upcoming.by_email(value)] if later
            ]
            if not found:
                problems.append(
                    Unresolved(
                        f"{ref.target}: no Stripe customer has email {str(value)!r} (column "
                        f"`{ref.column}`); it is retried on every run until a customer has that email"
                    )
                )
                continue
            stripe_id = found[0]["id"]
        flat[ref.target] = stripe_id


# A row's fields mapped with its chunk (chunk_mapping.py): (flat payload of the fields, coercion
# problems, True when row_problems is known to find nothing in the row's payload)
MappedFields = tuple[dict[str, Any], list[str], bool]

_FIELDS: dict[int, tuple[SyncConfig, list[tuple[str, str, Callable[[Any], Any]]]]] = {}


def _fields_of(config: SyncConfig) -> list[tuple[str, str, Callable[[Any], Any]]]:
    """(path, column, converter) per mapped field, worked out once per config (payload.converter)."""
    known = _FIELDS.get(id(config))
    if known is None or known[0] is not config:
        known = _FIELDS[id(config)] = (
            config,
            [(f.path, f.column, converter(config.object, f.path)) for f in config.fields],
        )
    return known[1]


def _match_value(config: SyncConfig, row: DiffRow) -> str | None:
    if config.match is None or config.match.column is None:
        return None
    value = row.values.get(config.match.column)
    return None if value is None else str(value)


# ---- the plan ----------------------------------------------------------------------------------
def build_plan(
    config: SyncConfig,
    adapter: StripeObject,
    settings: Settings,
    diff: DiffResult,
    lookups: Lookups,
    live_objects: int,
    full_refresh: str | None = None,  # a token unique to the run: re-send whole payloads (full_refresh.py)
    upcoming: Upcoming | None = None,  # `plan` only: rows earlier syncs of this plan will create
) -> SyncPlan:
    rows = len(diff.rows)  # dbt's objects not re-scanned per row (gc_pause.py), in a plan worth it
    with older_objects_frozen(rows, freeze=rows >= WHOLE_PLAN_FREEZE_ROWS):
        return _build_plan(config, adapter, settings, diff, lookups, live_objects, full_refresh, upcoming)


# A plan built whole freezes dbt's objects from this many rows on: the full collection first costs
# ~0.1-0.5 s on dbt's heap, and planning 10,000 changed rows (1 % of a 1M-row model) took longer
# frozen than not (benchmarks/README.md, the diff section); a smaller one (of gc_pause.MIN_ROWS rows
# or more) only spaces the collections out
WHOLE_PLAN_FREEZE_ROWS = 20_000
_MAP_ROWS = 5_000  # rows mapped column by column at a time (chunk_mapping.py)


def _build_plan(
    config: SyncConfig,
    adapter: StripeObject,
    settings: Settings,
    diff: DiffResult,
    lookups: Lookups,
    live_objects: int,
    full_refresh: str | None,
    upcoming: Upcoming | None,
) -> SyncPlan:
    changes: list[Change] = []
    warnings: list[str] = []
    seen_match: dict[str, str] = {}  # match value -> key of the first row using it in this plan
    rekeyed: dict[str, tuple[str, str]] = {}  # stripe id -> (old key, new key): moved, never deleted
    from dbt_stripe_sync.chunk_mapping import map_chunk  # it maps with this module's converters

    present = [row for row in diff.rows if row.change != "deleted"]
    for start in range(0, len(present), _MAP_ROWS):
        rows = present[start : start + _MAP_ROWS]
        mapped = map_chunk(config, rows) or [None] * len(rows)  # None: map_row maps each row
        changes += [
            _plan_row(
                config, adapter, settings, row, lookups, seen_match, rekeyed, full_refresh, upcoming, False, m
            )
            for row, m in zip(rows, mapped, strict=True)
        ]
    leaving = {row.key for row in diff.rows if row.change == "deleted"}
    for row in diff.rows:
        if row.change == "deleted":
            changes.append(_plan_delete(config, adapter, row, rekeyed))
    # a re-keyed row whose old key is not in the diff (delete: nothing) is retired all the same
    for stripe_id, (old, new) in rekeyed.items():
        if old not in leaving:
            changes.append(_rekey(config, old, new, stripe_id, None))
    return assemble(config, settings, diff, changes, live_objects, warnings, lookups.calls)


def assemble(
    config: SyncConfig,
    settings: Settings,
    diff: DiffResult,
    changes: list[Change],
    live_objects: int,
    warnings: list[str],
    lookup_calls: int,
) -> SyncPlan:
    """The plan of a whole sync from its planned changes, with the delete guard applied to all of them."""
    deletes = sum(1 for c in changes if c.action == "delete")
    changed_rows = sum(1 for r in diff.rows if r.change != "deleted")
    return SyncPlan(
        config=config,
        changes=tuple(changes),
        model_rows=diff.model_rows,
        live_objects=live_objects,
        unchanged=max(diff.model_rows - changed_rows, 0),
        blocked=_delete_guard(config, settings, deletes, diff.model_rows, live_objects),
        warnings=tuple(dict.fromkeys(warnings)),
        lookup_calls=lookup_calls,
    )


def _delete_guard(
    config: SyncConfig, settings: Settings, deletes: int, model_rows: int, live: int
) -> str | None:
    if not deletes:
        return None
    if model_rows == 0 and not settings.allow_empty_model_deletes:
        return (
            f"{config.model} is empty, so every one of its {deletes} Stripe objects would be deleted; "
            "if that is intended set vars.dbt_stripe_sync.allow_empty_model_deletes: true"
        )
    share = deletes / live if live else 1.0
    if share > settings.max_delete_fraction:
        return (
            f"{config.model} would delete {deletes} of its {live} Stripe objects ({_pct(share)}), more than "
            f"max_delete_fraction {_pct(settings.max_delete_fraction)}; check the model, or raise "
            "vars.dbt_stripe_sync.max_delete_fraction"
        )
    return None


def _pct(share: float) -> str:
    """60%, 0.5%, 12.5%: never a share rounded to a misleading 0%."""
    text = f"{share * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _rekey(config: SyncConfig, old: str, new: str, stripe_id: str, entry: L.LedgerEntry | None) -> Change:
    """The old key's ledger row is retired: its Stripe object now belongs to row `new`."""
    base = entry or L.LedgerEntry(sync_name=config.name, source_key=old, object_type=config.object)
    return Change(
        key=old,
        action="rekey",
        stripe_id=stripe_id,
        ledger=base.evolve(stripe_id=base.stripe_id or stripe_id),
        reason=f"re-keyed: {stripe_id} is now synced from row {new}; nothing is deleted",
        moved_to=new,
    )


def _wait(row: DiffRow) -> Change:
    entry = row.ledger
    return Change(
        key=row.key,
        action="wait",
        stripe_id=entry.stripe_id if entry else None,
        ledger=entry,
        reason="a write of this row is still pending from an earlier run: it is re-sent with its own "
        "idempotency key before anything new is planned for the row",
    )


def _plan_delete(
    config: SyncConfig, adapter: StripeObject, row: DiffRow, rekeyed: Mapping[str, tuple[str, str]]
) -> Change:
    entry = row.ledger
    assert entry is not None
    if entry.status == L.PENDING:
        return _wait(row)
    if entry.stripe_id and entry.stripe_id in rekeyed:  # a row still in the model matches it
        return _rekey(config, row.key, rekeyed[entry.stripe_id][1], entry.stripe_id, entry)
    if not entry.stripe_id:
        return Change(
            key=row.key, action="forget", ledger=entry, reason="left the model before it reached Stripe"
        )
    return Change(
        key=row.key,
        action="delete",
        stripe_id=entry.stripe_id,
        ledger=entry,
        reason=adapter.describe_delete(config),
        idempotency_key=idempotency_key(
            config.name, row.key, "delete", None, entry.attempts or 0, config.state_marker
        ),
    )


def _plan_row(
    config: SyncConfig,
    adapter: StripeObject,
    settings: Settings,
    row: DiffRow,
    lookups: Lookups,
    seen_match: dict[str, str],
    rekeyed: dict[str, tuple[str, str]],
    full_refresh: str | None = None,
    upcoming: Upcoming | None = None,
    defer: bool = False,
    mapped: MappedFields | None = None,
) -> Change | DeferredCreate:
    """The change of one row still in the model. `defer` (`plan`, which counts most creates and shows a
    few): a create is decided here exactly as always, but handed out as a DeferredCreate, built into
    its Change only when shown or kept. `mapped`: the row's fields mapped already, with a chunk of rows
    (chunk_mapping.py): map_row's first half, and whether row_problems is known to find nothing."""
    entry = row.ledger
    if entry is not None and entry.status == L.PENDING:
        return _wait(row)  # never re-planned under a new key while its write may have reached Stripe
    attempt = (entry.attempts or 0) if entry else 0
    if mapped is None:
        flat, problems = map_row(config, row, lookups.by_email, upcoming)
        clean = False
    else:
        flat, problems, clean = mapped
        if config.references:
            add_references(config, row, lookups.by_email, upcoming, flat, problems)
    match_value = _match_value(config, row)
    by_email = config.match is not None and config.match.field == "email"
    bound = entry is not None and bool(entry.stripe_id) and entry.status != L.DELETED
    if not clean:
        problems += row_problems(config.object, _sent(by_email, match_value, flat), creating=not bound)

    def settle(action: str, reason: str, stripe_id: str | None = None) -> Change:
        """A change that only touches the ledger: reject, skip or noop."""
        return Change(
            key=row.key,
            action=action,
            stripe_id=stripe_id,
            full=_sent(by_email, match_value, flat),  # the ledger keeps the match email: `by: email`
            # look-ups read it there
            row_hash=row.row_hash,
            reason=reason,
            ledger=entry,
            quick_hash=row.quick_hash,
        )

    def reject(reason: str) -> Change:
        return settle("reject", reason)

    if not bound and by_email and match_value is None:
        problems.append(
            f"column `{config.match.column}` is null: rows are matched to Stripe {config.object}s on "
            "email, so this row can be neither matched nor created without one — fill it in the model "
            "or filter the row out"
        )
    if problems:
        rejected = reject("; ".join(problems))
        waiting = all(isinstance(p, Unresolved) for p in problems)
        return replace(rejected, row_hash=None, quick_hash=None) if waiting else rejected

    # Which Stripe object does this row belong to?
    known_id = entry.stripe_id if entry and entry.status not in (L.DELETED,) else None
    note = None
    chosen_id = None  # an ID the model picks for the object it creates (products)
    adopted = lookups.adopted.get(row.key) if known_id is None else None
    rekey_from: str | None = None
    if adopted is not None:
        known_id = adopted["id"]
        note = f"found {known_id} by its tag (the ledger had no row for it): bound, not created again"
    if known_id is None and config.match is not None:
        if config.match.field == "id":
            known_id = match_value
            if match_value and lookups.existing_ids is not None and match_value not in lookups.existing_ids:
                known_id = None
                chosen_id = match_value if adapter.chosen_id else None
            owner = lookups.claimed.get(known_id) if known_id else None
            if owner is not None and owner != row.key:
                if owner not in lookups.departed:
                    return reject(f"Stripe {config.object} {known_id} is already synced from row {owner}")
                rekey_from = owner
        elif config.match.field == "email" and match_value:
            prior = seen_match.get(match_value)
            if prior is not None:
                return reject(
                    f"email {match_value!r} is also the match value of row {prior}; one Stripe "
                    "object cannot stand for two rows — make the model unique on it"
                )
            seen_match[match_value] = row.key
            found = lookups.by_email.get(match_value, [])
            if found:
                known_id = found[0]["id"]
                owner = lookups.claimed.get(known_id)
                if owner is not None and owner != row.key and owner not in lookups.departed:
                    return reject(
                        f"Stripe {config.object} {known_id} ({match_value}) is already synced from "
                        f"row {owner}"
                    )
                if owner is not None and owner != row.key:
                    rekey_from = owner
                note = f"matched existing {known_id} by email"
                if len(found) > 1:
                    note += f" (oldest of {len(found)} with this email)"
        if config.match.field == "email" and match_value and "email" not in flat:
            flat["email"] = match_value

    if config.mode == "insert":
        if entry and entry.stripe_id and entry.status not in (L.DELETED,):
            return settle("skip", "insert mode never updates", entry.stripe_id)
        if known_id:
            return settle("skip", f"already in Stripe as {known_id}; insert mode never updates", known_id)
        return _create(config, adapter, row, flat, attempt, entry, note, chosen_id, defer)

    if known_id is None:
        if config.mode == "update":
            what = (
                f"{config.match.field} {match_value!r}" if config.match and match_value else "a match value"
            )
            return reject(f"update mode: no Stripe {config.object} found for {what}")
        return _create(config, adapter, row, flat, attempt, entry, note, chosen_id, defer)

    # An update of a known object: send only what changed since Stripe last accepted this row.
    same_object = entry is not None and entry.stripe_id == known_id and entry.status != L.DELETED
    before = from_json(entry.payload_json) if same_object and entry else {}
    params = changed_fields(before, flat) if same_object else {k: v for k, v in flat.items()}
    if full_refresh and same_object:  # the whole payload, but create-only fields only when they changed
        params = {**{k: v for k, v in flat.items() if not adapter.immutable_fields({k: v})}, **params}
    if adopted is not None:  # what Stripe holds is the before: only real differences are sent
        same_object = True
        before = values_in(adopted, flat)
        params = changed_fields(before, flat)
        if not params:
            return settle("adopt", note, known_id)
    elif not same_object and known_id in lookups.objects:  # matched, not ours yet: Stripe's values
        before = values_in(lookups.objects[known_id], flat)
        params = changed_fields(before, flat)
        if not params and rekey_from is None:
            return settle("adopt", note or f"matched {known_id}: Stripe already holds these values", known_id)
    if rekey_from is not None:
        rekeyed[known_id] = (rekey_from, row.key)
        note = f"re-keyed from row {rekey_from} (same {config.match.field}): {note or known_id}"  # type: ignore[union-attr]
        params[f"metadata.{TAG_KEY}"] = object_tag(config.name, row.key)
    action = "update"
    if entry is not None and entry.status == L.ARCHIVED and same_object:
        action = "restore"
        params = {**params, **adapter.restore_params()}
    if not params:
        return settle("noop", "no Stripe field changed", known_id)
    if same_object:
        immutable = adapter.immutable_fields(params)
        if immutable:
            verdict, note_or_reason = adapter.plan_immutable_change(config, immutable)
            if verdict == "reject":
                return reject(note_or_reason)
            # "replace": Stripe needs a new object carrying the whole payload (a price's amount, say)
            action, note = "replace", note_or_reason
            params = {k: v for k, v in flat.items() if v != CLEAR}
            params = tag_params(params, config.name, row.key, config.state_marker)
    key_action = f"{action}:{full_refresh}" if full_refresh else action  # a refresh is a new write
    return Change(
        key=row.key,
        action=action,
        stripe_id=known_id,
        params=params,
        full=_sent(by_email, match_value, flat),  # with the match email, as a create keeps it: later
        # `by: email` look-ups find it
        before={k: before.get(k) for k in params},
        row_hash=row.row_hash,
        idempotency_key=idempotency_key(
            config.name, row.key, key_action, row.row_hash, attempt, config.state_marker
        ),
        reason=note,
        ledger=entry,
        quick_hash=row.quick_hash,
    )


def _sent(by_email: bool, match_value: str | None, flat: dict[str, Any]) -> dict[str, Any]:
    """What a row sends: its payload and, matched on email, the match email first (checked by
    row_problems, kept by the ledger). Made only when needed: a create outside `plan`'s sample never
    needs it. `_plan_row` adds the match email to `flat` itself (as "email", when missing) before
    settling a row, which leaves this dict as it was before: "email" first, with the same value."""
    return {"email": match_value, **flat} if by_email else flat


def _create(
    config: SyncConfig,
    adapter: StripeObject,
    row: DiffRow,
    flat: dict[str, Any],
    attempt: int,
    entry: L.LedgerEntry | None,
    note: str | None,
    chosen_id: str | None = None,
    defer: bool = False,
) -> Change | DeferredCreate:
    params = {k: v for k, v in flat.items() if v != CLEAR} if CLEAR in flat.values() else flat
    if chosen_id:
        params = {**params, "id": chosen_id}
    missing = adapter.required_problems(params, creating=True, config=config)
    if missing:
        return Change(
            key=row.key,
            action="reject",
            full=flat,
            row_hash=row.row_hash,
            ledger=entry,
            reason="; ".join(missing),
        )
    if defer:
        return DeferredCreate(config, row, flat, params, attempt, entry, note)
    return _built_create(config, row.key, row.row_hash, flat, params, attempt, entry, note, row.quick_hash)


def _built_create(
    config: SyncConfig,
    key: str,
    row_hash: str | None,
    flat: dict[str, Any],
    params: dict[str, Any],
    attempt: int,
    entry: L.LedgerEntry | None,
    note: str | None,
    quick_hash: int | None = None,
) -> Change:
    params = tag_params(params, config.name, key, config.state_marker)  # a copy: `params` may be `flat`
    return Change(
        key=key,
        action="create",
        params=params,
        full=flat,
        row_hash=row_hash,
        idempotency_key=idempotency_key(config.name, key, "create", row_hash, attempt, config.state_marker),
        reason=note,
        ledger=entry,
        quick_hash=quick_hash,
    )


class DeferredCreate:
    """A create decided in full (every check made, a reject already ruled out) whose Change is built
    only when asked: `plan` counts a million creates and shows five, and building each one (its tag,
    its sha256 idempotency key, a Change) was a third of planning it. `build()` gives exactly the Change
    `_create` returns without `defer`."""

    __slots__ = ("_args", "account", "key", "ledger")
    action = "create"
    stripe_id = None

    def __init__(
        self,
        config: SyncConfig,
        row: DiffRow,
        flat: dict[str, Any],
        params: dict[str, Any],
        attempt: int,
        entry: L.LedgerEntry | None,
        note: str | None,
    ) -> None:
        self.key = row.key
        self.ledger = entry
        self.account: str | None = None
        self._args = (config, row.row_hash, flat, params, attempt, note, row.quick_hash)

    @property
    def payload(self) -> dict[str, Any]:
        """The params the create sends, but for the tool's tag (added by `build`); not to be changed."""
        return self._args[3]

    # what a Change's readers look at before it is built (doomed.py: plain-column IDs in `params`)
    params = payload

    @property
    def full(self) -> dict[str, Any]:
        return self._args[2]

    def build(self) -> Change:
        config, row_hash, flat, params, attempt, note, quick_hash = self._args
        return _built_create(
            config, self.key, row_hash, flat, dict(params), attempt, self.ledger, note, quick_hash
        )
