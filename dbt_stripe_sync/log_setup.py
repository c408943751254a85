"""Logging: plain text by default, one JSON object per line with `--log-format json` (as dbt's flag).

Records may carry `sync`, `key`, `request_id` and `outcome` (passed as `extra=`); the JSON form keeps
them as fields. Secrets are redacted by the filter `secrets.install_log_filter` puts on the loggers,
and once more here, on the final text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

from dbt_stripe_sync.secrets import redact_all

LOG_FORMATS = ("text", "json")
_EXTRA_FIELDS = ("sync", "key", "request_id", "outcome")
_state = {"format": "text"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_all(record.getMessage()),
        }
        for name in _EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["exc"] = redact_all(self.formatException(record.exc_info))
        return json.dumps(data, default=str)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_all(super().format(record))


def setup(verbose: bool, log_format: str = "text") -> None:
    """Configure the root logger for a CLI invocation (replacing handlers a previous one installed)."""
    _state["format"] = log_format
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dss", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._dss = True  # type: ignore[attr-defined]
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def json_logs() -> bool:
    return _state["format"] == "json"


def emit_error(message: str) -> None:
    """An error line on stderr, as JSON under `--log-format json`."""
    if json_logs():
        record = {"ts": dt.datetime.now(dt.timezone.utc).isoformat(), "level": "error", "msg": message}
        print(json.dumps(record), file=sys.stderr)
    else:
        print(message, file=sys.stderr)
