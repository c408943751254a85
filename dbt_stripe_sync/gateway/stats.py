"""Exact, thread-safe accounting of HTTP attempts, overall and per scope."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class CallCounts:
    """Counts at one instant. `requests` is every HTTP attempt sent, retries included."""

    requests: int = 0
    retries: int = 0
    connection_errors: int = 0
    by_method: Mapping[str, int] = field(default_factory=dict)
    by_status: Mapping[int, int] = field(default_factory=dict)


class _Counter:
    __slots__ = ("by_method", "by_status", "connection_errors", "requests", "retries")

    def __init__(self) -> None:
        self.requests = 0
        self.retries = 0
        self.connection_errors = 0
        self.by_method: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()

    def freeze(self) -> CallCounts:
        return CallCounts(
            self.requests,
            self.retries,
            self.connection_errors,
            MappingProxyType(dict(self.by_method)),
            MappingProxyType(dict(self.by_status)),
        )


class GatewayStats:
    """Live counters. Attribute reads return current totals; `for_scope` returns one scope's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = _Counter()
        self._scopes: dict[str, _Counter] = {}

    def _targets(self, scope: str | None) -> list[_Counter]:
        if scope is None:
            return [self._total]
        return [self._total, self._scopes.setdefault(scope, _Counter())]

    def record_attempt(self, method: str, status: int | None, scope: str | None) -> None:
        with self._lock:
            for c in self._targets(scope):
                c.requests += 1
                c.by_method[method] += 1
                if status is None:
                    c.connection_errors += 1
                else:
                    c.by_status[status] += 1

    def record_retry(self, scope: str | None) -> None:
        with self._lock:
            for c in self._targets(scope):
                c.retries += 1

    def snapshot(self) -> CallCounts:
        with self._lock:
            return self._total.freeze()

    def for_scope(self, name: str) -> CallCounts:
        with self._lock:
            c = self._scopes.get(name)
            return c.freeze() if c else CallCounts()

    def scopes(self) -> dict[str, CallCounts]:
        with self._lock:
            return {name: c.freeze() for name, c in self._scopes.items()}

    @property
    def requests(self) -> int:
        return self.snapshot().requests

    @property
    def retries(self) -> int:
        return self.snapshot().retries

    @property
    def connection_errors(self) -> int:
        return self.snapshot().connection_errors

    @property
    def by_method(self) -> Mapping[str, int]:
        return self.snapshot().by_method

    @property
    def by_status(self) -> Mapping[int, int]:
        return self.snapshot().by_status
