"""Idempotency keys: the first response to a POST is replayed for the same key.

The same key with different parameters is Stripe's 400 `idempotency_error`; a key whose
request is still running is a 409 `idempotency_key_in_use`. Keys expire after `ttl_s`
(Stripe keeps them at least 24 h) or on demand, to test recovery after Stripe forgot them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dbt_stripe_sync.emulator.errors import StripeError


@dataclass
class SavedResponse:
    fingerprint: str
    status: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    saved_at: float = 0.0
    done: bool = False


class IdempotencyCache:
    def __init__(self, ttl_s: float = 86400.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, SavedResponse] = {}

    def begin(self, key: str, fingerprint: str) -> SavedResponse | None:
        """Claim `key` for a new request, or return the saved response to replay."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.done and self.clock() - entry.saved_at > self.ttl_s:
                entry = None
            if entry is None:
                self._entries[key] = SavedResponse(fingerprint=fingerprint)
                return None
            if entry.fingerprint != fingerprint:
                shown = key.split("\x1f")[-1]  # keys are stored per account as "<acct>\x1f<key>"
                raise StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were "
                    f"first used with. Try using a key other than '{shown}' if you meant to execute a "
                    "different request.",
                    type="idempotency_error",
                )
            if not entry.done:
                raise StripeError(
                    409,
                    "There is currently another in-progress request using this Stripe-Idempotency-Key. "
                    "Please try again later.",
                    code="idempotency_key_in_use",
                    should_retry=True,
                )
            return entry

    def finish(self, key: str, status: int, body: bytes, headers: dict[str, str], request_id: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.status, entry.body, entry.headers, entry.request_id = status, body, headers, request_id
            entry.saved_at = self.clock()
            entry.done = True

    def abandon(self, key: str) -> None:
        """Forget a claim whose request did not execute (validation error, injected fault)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.done:
                del self._entries[key]

    def expire_all(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries = {k: v for k, v in self._entries.items() if not v.done}
            return count - len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
