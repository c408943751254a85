"""Open a target's state tables for reading (history, report): the warehouse, and the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dbt_stripe_sync.errors import UsageError
from dbt_stripe_sync.ledger import StateStore
from dbt_stripe_sync.settings import load_settings
from dbt_stripe_sync.warehouse import Warehouse


@contextmanager
def existing_state(
    project_dir: str, profiles_dir: str | None, target: str | None, cli_vars: dict[str, Any]
) -> Iterator[StateStore]:
    """The target's state store; a usage error when nothing has been synced from it yet."""
    wh = Warehouse.open(project_dir, profiles_dir, target, cli_vars)
    try:
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
