"""Logging: plain text by default, one JSON object per line with `--log-format json` (as dbt's flag).

Records may carry `sync`, `key`, `request_id` and `outcome` (passed as `extra=`); the JSON form keeps
them as fields. Secrets are redacted by the filter `secrets.install_log_filter` puts on the loggers,
and once more here, on the final text.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from dbt_stripe_sync.secrets import redact_all

LOG_FORMATS = ("text", "json")
_EXTRA_FIELDS = ("sync", "key", "request_id", "outcome")
_state = {"format": "text"}
_row_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("dss_row_key", default=None)


@contextmanager
def row_context(key: str) -> Iterator[None]:
    """Log records made inside (an API call's, say) carry this row key."""
    token = _row_key.set(key)
    try:
        yield
    finally:
        _row_key.reset(token)


class _RowKeyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "key", None) is None:
            key = _row_key.get()
            if key is not None:
                record.key = key
        return True


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
        text = super().format(record)
        key = getattr(record, "key", None)
        if key is not None and f"row {key}" not in text:
            text += f" [row {key}]"
        return redact_all(text)


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
    handler.addFilter(_RowKeyFilter())
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def json_logs() -> bool:
    return _state["format"] == "json"


def emit_error(message: str) -> None:
    """An error line on stderr, as JSON under `--log-format json`."""
    emit_line("error", message)


def emit_warning(message: str, logger: str = "dbt_stripe_sync") -> None:
    """A warning line on stderr (`warning: ...`), as JSON under `--log-format json`."""
    emit_line("warning", f"warning: {message}", logger)


def emit_line(level: str, message: str, logger: str = "dbt_stripe_sync") -> None:
    """One line on stderr that does not go through `logging` (it must show whatever the log level):
    plain text, or under `--log-format json` one object with the keys every log line has."""
    if json_logs():
        print(json.dumps(json_record(level, logger, redact_all(message))), file=sys.stderr)
    else:
        print(message, file=sys.stderr)


def json_record(level: str, logger: str, message: str) -> dict[str, object]:
    """The keys every JSON log line carries: `ts`, `level`, `logger`, `msg`."""
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    return {"ts": now, "level": level, "logger": logger, "msg": message}
