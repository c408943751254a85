"""The request log: every API and `/_emulator` call, with secrets redacted from params."""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

_SECRET_VALUE = re.compile(r"^(sk|rk|pk|whsec)_(test|live)_", re.IGNORECASE)
_SECRET_KEYS = frozenset({"api_key", "password", "secret", "client_secret", "number", "cvc", "token"})
REDACTED = "[redacted]"


def redact(value: Any, key: str = "") -> Any:
    if key.lower() in _SECRET_KEYS:
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and _SECRET_VALUE.match(value):
        return REDACTED
    return value


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        entry["params"] = redact(entry.get("params") or {})
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
