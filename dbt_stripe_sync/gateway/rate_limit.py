"""Thread-safe token-bucket rate limiter with an injectable clock (for deterministic tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Stripe's documented per-account limits, in requests per second.
TEST_MODE_RATE = 25.0
LIVE_MODE_RATE = 100.0
SEARCH_RATE = 20.0


class TokenBucket:
    """Allows `rate` acquisitions per second on average, with bursts of at most `burst`.

    The default burst of 1 paces calls evenly (one every 1/rate s), so no 1-second window ever
    holds more than `rate` calls; a burst of B would allow up to B + rate calls in some window.
    Callers reserve a token under the lock (the balance may go negative) and sleep off the debt
    outside it, so waiting threads are served in arrival order without busy-waiting.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else 1.0
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._last = clock()

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        """Block until a token is available; return the time waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait
