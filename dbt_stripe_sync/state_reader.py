"""Open a target's state tables for reading (history, report): the warehouse, and the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dbt_stripe_sync import project as P
from dbt_stripe_sync.errors import UsageError
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.run_lock import StateLockBusy
from dbt_stripe_sync.selection import SelectionArgs
from dbt_stripe_sync.settings import load_settings
from dbt_stripe_sync.warehouse import Warehouse, file_lock_holder


@contextmanager
def existing_state(
    project_dir: str, profiles_dir: str | None, target: str | None, cli_vars: dict[str, Any]
) -> Iterator[StateStore]:
    """The target's state store; a usage error when nothing has been synced from it yet."""
    wh = Warehouse.open(project_dir, profiles_dir, target, cli_vars)
    try:
        _probe(wh)
        settings = load_settings({"dbt_stripe_sync": wh.vars}, cli_vars)
        store = StateStore(wh, settings.state_schema_for(wh.target.schema))
        if not store.exists():
            raise UsageError(
                f"no dbt-stripe-sync state in schema {store.schema} for target {wh.target.name}: "
                "nothing has been synced from it yet (run `dbt-stripe-sync` first)"
            )
        yield store
    finally:
        wh.close()


def _probe(wh: Warehouse) -> None:
    """Open the database now (adapters open it lazily): an embedded DuckDB file a run holds is said
    so, not as DuckDB's raw lock error. Not waited for: a run can hold it for hours."""
    try:
        wh.query("select 1")
    except Exception as exc:
        held = file_lock_holder(exc)
        if held is None:
            raise
        raise StateLockBusy(
            f"the warehouse file is in use by another process ({held}): a dbt-stripe-sync run or dbt "
            "holds it, and DuckDB lets one process open a database file at a time. Try again once it "
            "has finished (the run's summary, or `history` then, shows what it did)"
        ) from None


def chosen_syncs(store: StateStore, selectors: Sequence[str]) -> tuple[str, ...]:
    """The syncs `-s` names for history and report: a sync recorded in the state tables by its name
    (also a model since removed from the project), anything else as dbt selects it (`tag:stripe`,
    `stripe_customers+`, `stripe_*`) among the project's annotated models. A selector that names
    nothing is an error, not an empty listing."""
    if not selectors:
        return ()
    _, rows = store.wh.query(f"select distinct sync_name from {store.runs} as recorded_runs", [])
    recorded = {str(r[0]) for r in rows}
    names = {s for s in selectors if s in recorded}
    rest = tuple(s for s in selectors if s not in recorded)
    if rest:
        wh = store.wh
        project = P.load_project(wh.manifest, wh.target_path, wh.target.name)
        try:
            names |= {n.name for n in P.select(project, wh.config, SelectionArgs(select=rest))}
        except UsageError as exc:
            shown = ", ".join(sorted(recorded)) or "none yet"
            raise UsageError(f"{exc} (syncs with recorded runs: {shown})") from None
    return tuple(sorted(names))
