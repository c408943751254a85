"""Alerts for a `run` that stopped before syncing: the state lock or the warehouse file was busy, a
model was edited without `dbt run`, the warehouse refused a query, the configuration is invalid.

Such a run has no per-sync outcome, so its report (the `json` alert body, the Slack text) carries an
`error` with the reason and `status: failed`. The alert settings come from the loaded settings when
the run got that far, else straight from `vars` in dbt_project.yml and `--vars` (the warehouse may be
what failed). Sending never changes the exit code: problems are returned as warning lines.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dbt_stripe_sync.alerts import Alert, parse_alerts, send_alerts
from dbt_stripe_sync.ledger import utcnow
from dbt_stripe_sync.run_report import RunReport
from dbt_stripe_sync.secrets import redact_all
from dbt_stripe_sync.settings import VARS_KEY


def failure_reason(exc: BaseException) -> str:
    """The reason as the CLI prints it (secrets redacted)."""
    from dbt_stripe_sync.config.errors import ConfigError
    from dbt_stripe_sync.errors import DssError

    if isinstance(exc, ConfigError):
        return redact_all("invalid stripe_sync configuration (nothing was sent): " + str(exc))
    if isinstance(exc, DssError):
        return redact_all(str(exc))
    return redact_all(f"{type(exc).__name__}: {exc}")


def failure_report(exc: BaseException, started: Any) -> RunReport:
    return RunReport(
        run_id=uuid.uuid4().hex,
        status="failed",
        started_at=started,
        finished_at=utcnow(),
        syncs=(),
        error=failure_reason(exc),
    )


def configured_alerts(
    project_dir: str, cli_vars: Mapping[str, Any], loaded: Sequence[Any] | None
) -> list[Alert]:
    """The alerts to send; `loaded` is `Settings.alerts` when settings were loaded. An alert list that
    cannot be read (it is what is invalid, say) gives no alerts: there is nothing sound to send to."""
    raw = loaded if loaded is not None else _raw_alerts(project_dir, cli_vars)
    try:
        return parse_alerts(raw)
    except Exception:
        return []


def alert_start_failure(
    exc: BaseException,
    started: Any,
    project_dir: str,
    cli_vars: Mapping[str, Any],
    loaded: Sequence[Any] | None,
) -> list[str]:
    """Send the due alerts for a run that stopped with `exc`; the problem lines of those not sent."""
    alerts = configured_alerts(project_dir, cli_vars, loaded)
    if not alerts:
        return []
    return send_alerts(alerts, failure_report(exc, started))


def _raw_alerts(project_dir: str, cli_vars: Mapping[str, Any]) -> list[Any]:
    alerts: Any = []
    for source in (_project_vars(project_dir), cli_vars):
        block = source.get(VARS_KEY) if isinstance(source, Mapping) else None
        if isinstance(block, Mapping) and "alerts" in block:
            alerts = block["alerts"]
    return alerts if isinstance(alerts, list) else []


def _project_vars(project_dir: str) -> Mapping[str, Any]:
    try:
        import yaml

        data = yaml.safe_load((Path(project_dir) / "dbt_project.yml").read_text(encoding="utf-8"))
    except Exception:  # no readable project file: only --vars can name alerts
        return {}
    found = data.get("vars") if isinstance(data, Mapping) else None
    return found if isinstance(found, Mapping) else {}
