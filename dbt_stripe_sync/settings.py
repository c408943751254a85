"""Project-wide settings, read from dbt vars (`vars: dbt_stripe_sync: {...}`) and the environment."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from dbt_stripe_sync.errors import UsageError

VARS_KEY = "dbt_stripe_sync"


@dataclass(frozen=True)
class Settings:
    api_key_env: str = "STRIPE_API_KEY"
    state_schema: str | None = None  # default: <target schema>_stripe_sync
    max_delete_fraction: float = 0.5  # refuse a plan deleting more than this share of a sync's objects
    allow_empty_model_deletes: bool = False  # an empty model deletes nothing unless this is set
    live_targets: tuple[str, ...] = ()  # dbt targets allowed to use live keys
    rate_limit: float | None = None  # requests/s; default by key: 25 test, 100 live
    search_rate_limit: float = 20.0
    endpoint_rate_limit: float | None = None  # requests/s per endpoint (method + path); default 25 (Stripe's)
    concurrency: int | None = None  # writes in flight; default: what the rate limits can use (rate x latency)
    batch_size: int = 100  # rows per ledger checkpoint
    stream_min_rows: int = 20_000  # `run` plans and sends a model this large a chunk at a time (0: always)
    max_retries: int = 8
    request_timeout_s: float = 30.0
    retry_rejected: bool = False  # re-send rows rejected by pre-send checks on every run, not only on change
    idempotency_window_hours: float = 24.0  # Stripe keeps keys at least 24 h
    tag_created_objects: bool = True  # put metadata[dbt_stripe_sync] = "<sync>:<key>" on created objects
    lock_wait_s: float = 60.0  # how long a run waits for another run holding the state schema
    lock_lease_s: float = 600.0  # a lease not renewed for this long is taken over (non-PostgreSQL)
    changelog_retention_days: int = 90  # stripe_sync_changelog rows older than this are pruned by each run
    alerts: tuple[Any, ...] = ()  # [{url_env, format: slack|json, on: failure|always}], checked by alerts.py

    def state_schema_for(self, target_schema: str) -> str:
        return self.state_schema or f"{target_schema}_stripe_sync"


def load_settings(project_vars: Mapping[str, Any], cli_vars: Mapping[str, Any] | None = None) -> Settings:
    merged: dict[str, Any] = {}
    for source in (project_vars, cli_vars or {}):
        block = source.get(VARS_KEY) if isinstance(source, Mapping) else None
        if block is None:
            continue
        if not isinstance(block, Mapping):
            raise UsageError(f"vars.{VARS_KEY} must be a mapping of settings, got {type(block).__name__}")
        merged.update(block)
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in merged.items():
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else f"; known settings: {', '.join(known)}"
            raise UsageError(f"vars.{VARS_KEY}.{key}: unknown setting{hint}")
        values[key] = _coerce(key, value, Settings.__dataclass_fields__[key].default)
    schema = values.get("state_schema")
    if schema is not None and not _PLAIN_NAME.fullmatch(schema):
        raise UsageError(
            f"vars.{VARS_KEY}.state_schema: {schema!r} is not a plain schema name; use letters, digits "
            "and underscores (it is created and queried on every warehouse), e.g. analytics_stripe_sync"
        )
    return Settings(**values)


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


def _coerce(key: str, value: Any, default: Any) -> Any:
    where = f"vars.{VARS_KEY}.{key}"
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in {"true", "false"}:
                    raise ValueError
                return value.lower() == "true"
            return bool(value)
        if isinstance(default, tuple):
            return tuple([value] if isinstance(value, str) else value)
        if key in POSITIVE:
            return _positive(where, value, POSITIVE[key])
        floats = {"max_delete_fraction", "lock_wait_s"}
        if isinstance(default, float) or key in floats:
            number = float(value)
            if not math.isfinite(number) or number < 0 or (key == "max_delete_fraction" and number > 1):
                raise ValueError
            return number
        if isinstance(default, int) or key == "concurrency":
            number = int(value)
            if number < 0 or (number < 1 and key not in {"max_retries", "stream_min_rows"}):
                raise ValueError
            return number
        return None if value is None else str(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: invalid value {value!r} (default: {default!r})") from None


# Settings that must be a finite number above zero (0 would never send, or wait forever): the fix shown.
POSITIVE: dict[str, str] = {
    "rate_limit": "requests per second to the whole account, e.g. 25 (test mode) or 100 (live)",
    "endpoint_rate_limit": "requests per second to one endpoint, e.g. 25 (Stripe's limit)",
    "search_rate_limit": "requests per second to Stripe search, e.g. 20 (Stripe's limit)",
    "request_timeout_s": "seconds to wait for one Stripe response, e.g. 30",
}


def _positive(where: str, value: Any, meaning: str) -> float:
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isfinite(number) and number > 0:
        return number
    raise UsageError(
        f"{where}: invalid value {value!r}: it must be a number above 0 ({meaning}); "
        "remove the setting to use the default"
    )


def api_key(settings: Settings) -> str | None:
    return os.environ.get(settings.api_key_env) or None
