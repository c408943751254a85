"""`dbt-stripe-sync history [-s model] [--key KEY]`: recent runs per sync, or one row's operations,
read from the warehouse tables (stripe_sync_runs, stripe_sync_changelog). Reads only."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from dbt_stripe_sync.changelog import CHANGELOG_COLUMNS
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.state_reader import chosen_syncs, existing_state

RUN_COLUMNS = (
    "started_at",
    "sync_name",
    "status",
    "created",
    "updated",
    "deleted",
    "archived",
    "skipped",
    "rejected",
    "api_calls",
    "duration_s",
    "run_id",
)
OPERATION_COLUMNS = (
    "at",
    "sync_name",
    "action",
    "outcome",
    "stripe_id",
    "stripe_account",  # Stripe Connect: the account it went to (empty: the platform)
    "http_status",
    "request_id",
    "changed_fields",
    "error",
)


def show_history(
    project_dir: str,
    profiles_dir: str | None,
    target: str | None,
    cli_vars: dict[str, Any],
    *,
    models: Sequence[str] = (),
    key: str | None = None,
    limit: int = 20,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    with existing_state(project_dir, profiles_dir, target, cli_vars) as store:
        models = chosen_syncs(store, models)
        if key is not None:
            names, rows = operations(store, key, models, limit)
            title = f"Operations on row {key}" + (f" of {', '.join(models)}" if models else "")
            empty = f"No operation on row {key} is recorded (kept for changelog_retention_days)."
        else:
            names, rows = recent_runs(store, models, limit)
            title = "Recent runs" + (f" of {', '.join(models)}" if models else "")
            empty = "No run is recorded yet."
        out.write(title + " (newest first)\n")
        out.write(render_table(names, rows) if rows else empty + "\n")
        return 0


def _where_models(store: StateStore, models: Sequence[str], binds: list[Any]) -> str:
    if not models:
        return ""
    binds += list(models)
    return f" and sync_name in ({', '.join([store.wh.placeholder] * len(models))})"


def recent_runs(store: StateStore, models: Sequence[str], limit: int) -> tuple[list[str], list[tuple]]:
    binds: list[Any] = []
    cols = ", ".join(store.wh.quote(c) for c in RUN_COLUMNS)
    sql = (
        f"select {cols} from {store.runs} where 1 = 1{_where_models(store, models, binds)} "
        f"order by started_at desc, sync_name limit {int(limit)}"
    )
    return store.wh.query(sql, binds)


def operations(
    store: StateStore, key: str, models: Sequence[str], limit: int
) -> tuple[list[str], list[tuple]]:
    have = store.wh.columns_of(store.changelog)
    if have is None:
        return list(OPERATION_COLUMNS), []
    present = {c.lower() for c in have}  # a changelog of an older version lacks newer columns
    binds: list[Any] = [key]
    shown = [c for c in OPERATION_COLUMNS if c in CHANGELOG_COLUMNS and c in present]
    cols = ", ".join(store.wh.quote(c) for c in shown)
    sql = (
        f"select {cols} from {store.changelog} where source_key = {store.wh.placeholder}"
        f"{_where_models(store, models, binds)} order by {store.wh.quote('at')} desc limit {int(limit)}"
    )
    return store.wh.query(sql, binds)


def render_table(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(n), *(len(r[i]) for r in cells)) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    text = str(value)
    return text if len(text) <= 100 else text[:97] + "..."
