"""Secret handling: API-key validation, masking, and redaction of registered secrets from text and logs.

Anything that may reach a log line, an exception message or a report should pass through
`redact_all`, and every process that holds a Stripe key should `register_secret` it first
(`StripeGateway` does this itself).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Literal

__all__ = [
    "InvalidApiKeyError",
    "SecretRedactingFilter",
    "install_log_filter",
    "key_mode",
    "mask_key",
    "redact",
    "redact_all",
    "register_secret",
    "registered_secret_count",
]

_KEY_RE = re.compile(r"^(?P<prefix>(?:sk|rk)_(?P<mode>test|live)_)(?P<body>[A-Za-z0-9]{4,})$")
_PREFIX_RE = re.compile(r"^[a-z]{2,5}_(?:test|live)_")
# Shorter values would redact ordinary words; real secrets are much longer.
_MIN_SECRET_LEN = 8

_lock = threading.Lock()
_registry: set[str] = set()


class InvalidApiKeyError(ValueError):
    """The value is not a usable Stripe secret/restricted key. The message never contains the key."""


def key_mode(key: str) -> Literal["test", "live"]:
    """Return "test" or "live" for a Stripe secret (sk_) or restricted (rk_) key; raise otherwise."""
    if not isinstance(key, str) or not key:
        raise InvalidApiKeyError("Stripe API key is empty or not a string")
    if key != key.strip():
        raise InvalidApiKeyError("Stripe API key has leading/trailing whitespace")
    match = _KEY_RE.match(key)
    if match:
        return "live" if match.group("mode") == "live" else "test"
    if key.startswith(("pk_test_", "pk_live_")):
        raise InvalidApiKeyError(
            "Stripe API key is a publishable key (pk_...); "
            "a secret (sk_...) or restricted (rk_...) key is needed"
        )
    raise InvalidApiKeyError(
        "Stripe API key is malformed: expected sk_test_, sk_live_, rk_test_ or rk_live_ followed by "
        f"letters and digits (got a value of {len(key)} characters)"
    )


def mask_key(key: str) -> str:
    """Display form of a key: its prefix and last 4 characters only, e.g. "sk_test_…abcd"."""
    if not key:
        return "…"
    m = _PREFIX_RE.match(key)
    prefix = m.group(0) if m else ""
    rest = key[len(prefix) :]
    if len(rest) < 12:  # too short to reveal any of it safely
        return f"{prefix}…"
    return f"{prefix}…{rest[-4:]}"


def _replacement(secret: str) -> str:
    return mask_key(secret) if _PREFIX_RE.match(secret) else "[REDACTED]"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in `text` (longest first, so overlaps are fully covered)."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _replacement(secret))
    return text


def register_secret(value: str) -> None:
    """Remember a secret so `redact_all` and `SecretRedactingFilter` strip it everywhere."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _registry.add(value)


def registered_secret_count() -> int:
    with _lock:
        return len(_registry)


def redact_all(text: str) -> str:
    """Redact every registered secret from `text`."""
    with _lock:
        secrets = tuple(_registry)
    return redact(text, secrets)


class SecretRedactingFilter(logging.Filter):
    """Rewrites log records so no registered secret survives in msg, args, exception or stack text.

    The message is rendered (msg % args) and redacted eagerly, because args may be arbitrary objects
    whose str() contains a secret.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            rendered = record.getMessage()
        except Exception:  # a broken format string must not let the raw args through
            rendered = f"{record.msg!s} {record.args!r}"
        record.msg = redact_all(rendered)
        record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact_all(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_all(record.stack_info)
        return True


_install_lock = threading.Lock()


def install_log_filter(*logger_names: str) -> None:
    """Attach one `SecretRedactingFilter` to each named logger (idempotent).

    Logger filters only see records created on that exact logger, so name every logger that may
    log secrets (e.g. the gateway's and the Stripe SDK's "stripe").
    """
    with _install_lock:
        for name in logger_names:
            lg = logging.getLogger(name)
            if not any(isinstance(f, SecretRedactingFilter) for f in lg.filters):
                lg.addFilter(SecretRedactingFilter())
