"""Client-side pacing for Stripe's rate and concurrency limiters, with an injectable clock (for
deterministic tests).

Stripe's request rate limiter is a token bucket per budget (its engineering blog, "Scaling your API
with rate limiters"; modelled by the emulator's `RateBucket`): the server's bucket holds one second's
worth of requests and refills at the documented limit. The client paces each budget with a token
bucket of its own that is both slower and shallower than the server's — PACING_SHARE of the limit,
bursts of at most PACING_BURST_SHARE of it — so the unused part of the server's depth absorbs
requests that leave on time but arrive late and bunch up (network and thread-scheduling jitter, or
a wait for an in-flight slot after pacing): no request is refused as long as none is delayed by more
than (limit - burst - 1) / (PACING_SHARE x limit) s — 0.48 s at a limit of 25, 0.49 s at 100
(tests/unit/test_rate_limit_model.py). The budgets are this process's view of the account: another
client using the same account at the same time spends the same buckets at Stripe.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Stripe's documented per-account limits, in requests per second.
TEST_MODE_RATE = 25.0
LIVE_MODE_RATE = 100.0
SEARCH_RATE = 20.0


def _rate_and_burst(rate: float, burst: float | None) -> tuple[float, float]:
    """A budget's rate (per second, > 0) and burst (>= 1; default 1: evenly paced)."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    burst = float(burst) if burst is not None else 1.0
    if burst < 1:
        raise ValueError("burst must be at least 1")
    return float(rate), burst


class TokenBucket:
    """Allows `rate` acquisitions per second on average, with bursts of at most `burst` (default 1:
    evenly paced, one every 1/rate s).

    The generic cell rate algorithm: `_tat` is when the bucket would be full again, and a call
    may go at `_tat - (burst - 1) / rate` at the earliest. A call reserves its time slot under the lock
    and sleeps until it outside the lock, so waiting threads are served in arrival order without
    busy-waiting. StripeLimiter reserves one slot in several buckets at once with `_earliest`/`_take`.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.burst = _rate_and_burst(rate, burst)
        self._interval = 1.0 / self.rate
        self._tolerance = (self.burst - 1.0) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = -math.inf  # full

    def _earliest(self, now: float) -> float:
        """The earliest time from `now` at which a call fits the bucket (caller holds the lock)."""
        return max(now, self._tat - self._tolerance)

    def _take(self, at: float) -> None:
        """Book one call at `at` (>= `_earliest`; caller holds the lock)."""
        self._tat = max(self._tat, at) + self._interval

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            at = self._earliest(now)
            self._take(at)
            return at - now

    def acquire(self) -> float:
        """Block until a token is available; return the time waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


class SlotCalendar:
    """A budget shared by requests booked for different times — the account's global budget — paced
    like TokenBucket (`rate` a second, bursts of at most `burst`) but kept as a calendar of time slots,
    one request each, rather than one "full again at" time.

    A request takes the first free slot at or after the time it is due, so a request booked for later
    (held back a second by its own busy endpoint) leaves the slots before it free for one due now: with a
    single "full again at" time, that booking would push every other endpoint's request, a planning read
    included, back by the same second. Burst credit is the free slots of the last (burst - 1) / rate s:
    in any window of L s at most rate x L + burst requests leave, as with TokenBucket. Not thread-safe
    on its own: StripeLimiter calls it under its lock.
    """

    _PRUNE_AT = 512  # booked slots kept before the past ones are dropped

    def __init__(self, rate: float, *, burst: float | None = None) -> None:
        self.rate, self.burst = _rate_and_burst(rate, burst)
        self._interval = 1.0 / self.rate
        self._credit_slots = math.floor(self.burst - 1.0)
        self._booked: set[int] = set()

    def book(self, due: float, now: float) -> float:
        """Book the first free slot for a request due at `due` (>= `now`); return when it may leave."""
        earliest = math.ceil(due * self.rate - 1e-9) - self._credit_slots
        slot = earliest
        while slot in self._booked:
            slot += 1
        self._booked.add(slot)
        if len(self._booked) > self._PRUNE_AT:  # slots older than any credit are spent for good
            floor = math.ceil(now * self.rate - 1e-9) - self._credit_slots
            self._booked = {b for b in self._booked if b >= floor}
        return max(due, slot * self._interval)


# Stripe's documented default per endpoint ("each named API operation", e.g. `POST /v1/customers` and
# `POST /v1/customers/{id}` are two endpoints), in requests per second.
ENDPOINT_RATE = 25.0
# Each budget is paced at this share of its limit (the sustained rate) ...
PACING_SHARE = 0.99
# ... with bursts of at most this share of it: the rest of the server's one-second bucket, about half
# a second of requests, absorbs late arrivals that bunch up (see the module docstring).
PACING_BURST_SHARE = 0.5
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
    search's own, and a bounded number of requests in flight. Each budget is paced at
    PACING_SHARE of its limit with bursts of PACING_BURST_SHARE of it (at least 1): a TokenBucket per
    endpoint and for search, a SlotCalendar for the global budget. Thread-safe;
    `clock`/`sleep` are injectable for deterministic tests."""

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
        self._lock = threading.Lock()  # books one time slot in every budget a request needs, at once
        self._global = SlotCalendar(
            self.global_limit * PACING_SHARE, burst=_burst(self.global_limit)
        )  # shared by every endpoint: requests booked later must not hold back those due now
        self._search = self._bucket(self.search_limit)
        self._endpoints: dict[str, TokenBucket] = {}
        self._endpoints_lock = threading.Lock()
        self._in_flight = threading.BoundedSemaphore(max_in_flight)

    def _bucket(self, limit: float) -> TokenBucket:
        return TokenBucket(limit * PACING_SHARE, burst=_burst(limit), clock=self._clock, sleep=self._sleep)

    def endpoint_bucket(self, endpoint: str) -> TokenBucket:
        with self._endpoints_lock:
            bucket = self._endpoints.get(endpoint)
            if bucket is None:
                bucket = self._endpoints[endpoint] = self._bucket(self.endpoint_limit)
            return bucket

    def pace(self, method: str, path: str) -> float:
        """Wait until the request fits every budget that applies; return the time waited.

        One time slot is booked in all of them at once — the earliest that fits each — so every
        budget's bookings are the times requests really leave, never a time a request then spends
        waiting for another budget (which would let them bunch up at Stripe's bucket for that budget).
        The global budget is a SlotCalendar, so that booking does not hold back other endpoints.
        """
        buckets = [self.endpoint_bucket(endpoint_template(method, path))]
        if path.rstrip("/").endswith("/search"):
            buckets.append(self._search)
        with self._lock:
            now = self._clock()
            at = self._global.book(max(bucket._earliest(now) for bucket in buckets), now)
            for bucket in buckets:
                bucket._take(at)
        wait = at - now
        if wait > 0:
            self._sleep(wait)
        return wait

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Hold one of the `max_in_flight` slots for the duration of an HTTP attempt."""
        with self._in_flight:
            yield


def _burst(limit: float) -> float:
    return max(1.0, math.floor(limit * PACING_BURST_SHARE))
