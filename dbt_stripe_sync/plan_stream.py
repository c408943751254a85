"""`plan` of one sync in flat memory: the diff is read in chunks, each chunk matched and planned, and
only a digest (counts, a sample, what the caller asked to keep) stays behind.

Each change is planned exactly as `planner.build_plan` plans it for the whole diff (the same
`_plan_row` / `_plan_delete` / `_rekey`), because the chunks arrive in the order build_plan visits
rows: every row still in the model first, in key order, then the deleted rows (`deleted_last` in
macros/diff.sql). What build_plan keeps for the whole diff is kept here across chunks, bounded:
- the emails seen as match values (a second row with the same email is rejected) only for emails
  that appear more than once in the model, found in SQL (`repeated_values_sql`);
- the re-keys (rare), and, from the first deleted row on, which of their old keys left the model;
- the customer directory's look-ups: the account is listed at most once for the sync, and its
  absences are forgotten once the sync is planned (as `gather` does for a whole diff);
- `bind`'s per-sync questions (is the ledger empty, the scan for tagged objects), asked once.
The delete guard needs only counts: deletes planned, rows in the model, live objects.
"""

from __future__ import annotations

from typing import Any

from dbt_stripe_sync.binding import bind
from dbt_stripe_sync.config.model import SyncConfig
from dbt_stripe_sync.diff import DiffResult, stream_diff
from dbt_stripe_sync.full_refresh import refreshed_ledger_sql
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.matching import directory_for, gather
from dbt_stripe_sync.plan import Change, Upcoming
from dbt_stripe_sync.plan_digest import Keep, PlanDigest
from dbt_stripe_sync.planner import _delete_guard, _plan_delete, _plan_row, _rekey
from dbt_stripe_sync.progress import Progress
from dbt_stripe_sync.stripe_objects import adapter_for
from dbt_stripe_sync.warehouse import Warehouse


def stream_plan(
    prep: Any,  # engine.Prepared
    config: SyncConfig,
    gw: StripeGateway,
    store: StateStore | None,
    ledger_relation: str,
    progress: Progress,
    keep: Keep,
    upcoming: Upcoming | None = None,
) -> PlanDigest:
    """The digest of what `run` would do for `config` (a platform sync; Connect syncs are planned
    whole, per account), as engine._make_plan + build_plan would plan it."""
    relation = prep.relations[config.model]
    refresh = prep.full_refresh and store is not None
    with progress.phase(f"{config.model}: diff in the warehouse"):
        stream = stream_diff(
            prep.wh,
            config,
            relation,
            refreshed_ledger_sql(store) if refresh and store is not None else ledger_relation,
            include_deletes=config.delete == "delete" and config.mode == "upsert" and not prep.full_refresh,
            retry_rejected=prep.settings.retry_rejected,
        )
        repeated = repeated_match_values(prep.wh, config, relation)
    adapter = adapter_for(config.object)
    live = store.count_live(config.name) if store is not None else 0
    token = "plan" if prep.full_refresh else None
    digest = PlanDigest(config, keep)
    seen_match: dict[str, str] = _OnlyRepeated(repeated)
    rekeyed: dict[str, tuple[str, str]] = {}
    once: dict[str, Any] = {}
    left: set[str] | None = None  # old keys of re-keys whose rows left the model (from the deletes)
    olds: set[str] = set()
    calls = changed_rows = 0
    with progress.phase(f"{config.model}: matching and planning changed rows"):
        for chunk in stream.chunks:
            part = DiffResult(rows=chunk, model_rows=stream.model_rows)
            lookups = gather(config, part, gw, store, forget_absences=False)
            lookups = bind(config, adapter, part, gw, store, relation, lookups, once)
            calls += lookups.calls
            changes: list[Change] = []
            for row in chunk:
                if row.change == "deleted":
                    if left is None:  # every row still in the model is planned: re-keys are known
                        olds = {old for old, _ in rekeyed.values()}
                        left = set()
                    if row.key in olds:
                        left.add(row.key)
                    changes.append(_plan_delete(config, adapter, row, rekeyed))
                else:
                    changed_rows += 1
                    changes.append(
                        _plan_row(
                            config, adapter, prep.settings, row, lookups, seen_match, rekeyed, token, upcoming
                        )
                    )
            digest.add(changes)
            progress.advance(len(chunk))
    # a re-keyed row whose old key is not in the diff (delete: nothing) is retired all the same
    digest.add(
        _rekey(config, old, new, stripe_id, None)
        for stripe_id, (old, new) in rekeyed.items()
        if old not in (left or ())
    )
    if config.object == "customer":  # this sync may create customers: "none with this email" expires
        directory_for(gw).forget_absences()
    model_rows = stream.model_rows
    guard = _delete_guard(config, prep.settings, digest.count("delete"), model_rows, live)
    digest.finish(model_rows, live, max(model_rows - changed_rows, 0), guard, ())
    digest.lookup_calls = calls
    return digest


def repeated_match_values(wh: Warehouse, config: SyncConfig, relation: str) -> frozenset[str]:
    """Match emails that more than one row of the model carries: the only ones the planner must
    remember across rows (a second row with one is rejected). Found in SQL, not by holding every email."""
    if config.match is None or config.match.field != "email" or not config.match.column:
        return frozenset()
    _, rows = wh.query(wh.macro("repeated_values_sql", model_relation=relation, column=config.match.column))
    return frozenset(str(v) for (v,) in rows)


class _OnlyRepeated(dict):  # type: ignore[type-arg]
    """build_plan's `seen_match` that remembers only values known to repeat: a value seen once is never
    looked up again, so forgetting it changes no outcome."""

    def __init__(self, repeated: frozenset[str]) -> None:
        super().__init__()
        self.repeated = repeated

    def __setitem__(self, key: str, value: str) -> None:
        if key in self.repeated:
            super().__setitem__(key, value)
