"""The Python API for orchestrators (Airflow, Dagster, Prefect): `run(...)` and `plan(...)` return
the run report (`RunReport`) instead of printing an exit code.

    import dbt_stripe_sync
    report = dbt_stripe_sync.run(project_dir="analytics", select=["tag:billing"], target="prod")
    report.raise_for_status()   # fail the task when a sync failed or rows were rejected

Invalid configuration or usage raises (`UsageError`, `ConfigError`) before anything is sent.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from dbt_stripe_sync.run_report import RunReport


def run(
    project_dir: str | os.PathLike[str] = ".",
    select: Sequence[str] | str | None = None,
    target: str | None = None,
    vars: Mapping[str, Any] | None = None,
    *,
    profiles_dir: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    log: TextIO | None = None,
    progress: bool = False,
) -> RunReport:
    """Sync the selected models to Stripe; the summary goes to `log` (default: discarded)."""
    return _perform("run", project_dir, select, target, vars, profiles_dir, output, log, progress)


def plan(
    project_dir: str | os.PathLike[str] = ".",
    select: Sequence[str] | str | None = None,
    target: str | None = None,
    vars: Mapping[str, Any] | None = None,
    *,
    profiles_dir: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    log: TextIO | None = None,
    progress: bool = False,
) -> RunReport:
    """What a run would do, as a report of predicted counts (`status` partial when rows would be
    rejected); `report.plans` holds every planned row. Sends nothing, writes nothing."""
    return _perform("plan", project_dir, select, target, vars, profiles_dir, output, log, progress)


def _perform(
    command: str,
    project_dir: str | os.PathLike[str],
    select: Sequence[str] | str | None,
    target: str | None,
    vars: Mapping[str, Any] | None,
    profiles_dir: str | os.PathLike[str] | None,
    output: str | os.PathLike[str] | None,
    log: TextIO | None,
    progress: bool,
) -> RunReport:
    from dbt_stripe_sync.engine import Invocation, perform
    from dbt_stripe_sync.secrets import install_log_filter

    install_log_filter("", "dbt_stripe_sync", "stripe")
    selectors = (select,) if isinstance(select, str) else tuple(select or ())
    inv = Invocation(
        command=command,
        project_dir=os.fspath(project_dir),
        profiles_dir=os.fspath(profiles_dir)
        if profiles_dir is not None
        else os.environ.get("DBT_PROFILES_DIR"),
        target=target or os.environ.get("DBT_TARGET"),
        select=selectors,
        vars=dict(vars or {}),
        output=os.fspath(output) if output is not None else None,
        progress=progress,
    )
    _, report = perform(inv, log or io.StringIO())
    assert report is not None
    return report
