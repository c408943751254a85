"""dbt-stripe-sync: dbt-native reverse ETL to Stripe.

Python API for orchestrators: `dbt_stripe_sync.run(...)` and `dbt_stripe_sync.plan(...)` return a
`RunReport` (see `dbt_stripe_sync.api`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["RunReport", "SyncFailed", "__version__", "plan", "run"]


def __getattr__(name: str) -> Any:  # lazy: importing the package must not boot dbt
    if name in ("run", "plan"):
        from dbt_stripe_sync import api

        return getattr(api, name)
    if name in ("RunReport", "SyncFailed"):
        from dbt_stripe_sync import run_report

        return getattr(run_report, name)
    raise AttributeError(f"module 'dbt_stripe_sync' has no attribute {name!r}")
