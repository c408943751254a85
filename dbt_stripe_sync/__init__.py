"""dbt-stripe-sync: dbt-native reverse ETL to Stripe.

Python API for orchestrators: `dbt_stripe_sync.run(...)` and `dbt_stripe_sync.plan(...)` return a
`RunReport` (see `dbt_stripe_sync.api` and docs/orchestrators.md).
"""

from __future__ import annotations

import types
from typing import Any

__version__ = "0.1.0"
__all__ = ["RunReport", "SyncFailed", "__version__", "plan", "run"]


def run(*args: Any, **kwargs: Any) -> Any:
    """Sync the selected models; returns the RunReport. See `dbt_stripe_sync.api.run`."""
    from dbt_stripe_sync import api

    return api.run(*args, **kwargs)


class _CallablePlanModule(types.ModuleType):
    """`dbt_stripe_sync.plan` is both the module of the plan's data types and the API call
    `dbt_stripe_sync.plan(...)`: the submodule of that name would otherwise shadow the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from dbt_stripe_sync import api

        return api.plan(*args, **kwargs)


from dbt_stripe_sync import plan  # noqa: E402 - after __version__, which the submodules may read

plan.__class__ = _CallablePlanModule


def __getattr__(name: str) -> Any:  # lazy: importing the package must not boot dbt
    if name in ("RunReport", "SyncFailed"):
        from dbt_stripe_sync import run_report

        return getattr(run_report, name)
    raise AttributeError(f"module 'dbt_stripe_sync' has no attribute {name!r}")
