"""When to retry a Stripe call, and how long to wait first.

Rules (from Stripe's documentation on errors, idempotency and rate limits):
- `Stripe-Should-Retry: false` always wins (no retry); `true` means retry (Stripe says it is safe).
- 429 (rate_limit, lock_timeout) and 409 (idempotency key in-flight conflict): Stripe did not apply
  the request, so retrying is always safe.
- 5xx and network errors/timeouts: the outcome is unknown. Safe to repeat only for GET/DELETE, or a
  POST that carries an idempotency key (Stripe then replays instead of re-executing).
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections.abc import Mapping

BASE_DELAY_S = 0.5
# A server asking for more than this is treated as asking for this much; it keeps a run bounded.
MAX_RETRY_AFTER_S = 60.0


def is_replay_safe(method: str, idempotency_key: str | None) -> bool:
    """True when sending the request twice cannot apply it twice."""
    return method != "post" or bool(idempotency_key)


def should_retry_response(
    status: int, headers: Mapping[str, str], *, method: str, idempotency_key: str | None
) -> bool:
    hint = headers.get("stripe-should-retry", "").strip().lower()
    if hint == "false":
        return False
    if hint == "true":
        return True
    if status in (409, 429):
        return True
    if status >= 500:
        return is_replay_safe(method, idempotency_key)
    return False


def should_retry_connection_error(*, transient: bool, method: str, idempotency_key: str | None) -> bool:
    """`transient` is False for errors a retry cannot fix (TLS verification, local misconfiguration)."""
    return transient and is_replay_safe(method, idempotency_key)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


class Backoff:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**retry)), at least Retry-After."""

    def __init__(
        self, *, max_backoff_s: float, base_s: float = BASE_DELAY_S, rng: random.Random | None = None
    ) -> None:
        self.max_backoff_s = max_backoff_s
        self.base_s = base_s
        self._rng = rng or random.Random()
        self._lock = threading.Lock()  # Random is not documented as thread-safe

    def delay(self, retry_number: int, retry_after_s: float | None = None) -> float:
        """Delay before retry number `retry_number` (0 for the first retry)."""
        ceiling = min(self.max_backoff_s, self.base_s * (2 ** min(retry_number, 30)))
        with self._lock:
            jittered = self._rng.uniform(0.0, ceiling)
        if retry_after_s is not None:
            return max(jittered, retry_after_s)
        return jittered
