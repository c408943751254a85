"""Client-side models of Stripe's rate and concurrency limiters, with an injectable clock (for
deterministic tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


# Stripe's documented default per endpoint ("each named API operation", e.g. `POST /v1/customers` and
# `POST /v1/customers/{id}` are two endpoints), in requests per second.
ENDPOINT_RATE = 25.0
# Requests are paced at this share of each limit: Stripe counts arrivals in its own windows, and
# network jitter bunches evenly spaced requests together; 4 % headroom keeps 429s well under 1 %.
PACING_SHARE = 0.96
# Stripe documents a concurrency limiter without a number. Little's law: requests in flight needed
# = rate x latency; 0.5 s covers Stripe's typical write latency with room to spare.
IN_FLIGHT_PER_RATE_S = 0.5
MIN_IN_FLIGHT = 4
MAX_IN_FLIGHT = 64

_LITERAL_SEGMENTS = frozenset({"search"})


def endpoint_template(method: str, path: str) -> str:
    """`POST /v1/customers/cus_123` -> `POST /v1/customers/{id}`: Stripe's unit of per-endpoint limits.

    In `/v1/<collection>/<id>/<action>/<id>`, every second segment after the collection is an object
    id (products may carry any id the caller chose, so ids are recognised by position, not prefix).
    """
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    out = parts[:2]  # "v1", collection
    for i, seg in enumerate(parts[2:]):
        out.append("{id}" if i % 2 == 0 and seg not in _LITERAL_SEGMENTS else seg)
    return f"{method.upper()} /" + "/".join(out)


class StripeLimiter:
    """Stripe's limiters, modelled client-side: a global budget (by key mode), one budget per endpoint,
    search's own, and a bounded number of requests in flight. Each budget is paced at PACING_SHARE of
    its limit. Thread-safe; `clock`/`sleep` are injectable for deterministic tests."""

    def __init__(
        self,
        global_limit: float,
        *,
        endpoint_limit: float = ENDPOINT_RATE,
        search_limit: float = SEARCH_RATE,
        max_in_flight: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, value in (("rate", global_limit), ("endpoint", endpoint_limit), ("search", search_limit)):
            if value <= 0:
                raise ValueError(f"{name} limit must be positive, got {value}")
        self.global_limit = float(global_limit)
        self.endpoint_limit = float(endpoint_limit)
        self.search_limit = float(search_limit)
        if max_in_flight is None:
            max_in_flight = round(min(self.global_limit, self.endpoint_limit * 4) * IN_FLIGHT_PER_RATE_S)
            max_in_flight = max(MIN_IN_FLIGHT, min(MAX_IN_FLIGHT, max_in_flight))
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self._clock, self._sleep = clock, sleep
        self._global = self._bucket(self.global_limit)
        self._search = self._bucket(self.search_limit)
        self._endpoints: dict[str, TokenBucket] = {}
        self._endpoints_lock = threading.Lock()
        self._in_flight = threading.BoundedSemaphore(max_in_flight)

    def _bucket(self, limit: float) -> TokenBucket:
        return TokenBucket(limit * PACING_SHARE, clock=self._clock, sleep=self._sleep)

    def endpoint_bucket(self, endpoint: str) -> TokenBucket:
        with self._endpoints_lock:
            bucket = self._endpoints.get(endpoint)
            if bucket is None:
                bucket = self._endpoints[endpoint] = self._bucket(self.endpoint_limit)
            return bucket

    def pace(self, method: str, path: str) -> float:
        """Wait until the request fits every budget that applies; return the time waited.

        The narrowest budgets are waited for first and the global one last, so what leaves here
        arrives at the global budget in real time order and never exceeds it.
        """
        waited = 0.0
        if path.rstrip("/").endswith("/search"):
            waited += self._search.acquire()
        waited += self.endpoint_bucket(endpoint_template(method, path)).acquire()
        waited += self._global.acquire()
        return waited

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Hold one of the `max_in_flight` slots for the duration of an HTTP attempt."""
        with self._in_flight:
            yield
