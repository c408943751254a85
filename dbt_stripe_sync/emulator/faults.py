"""Injected faults, deterministic under a seed: latency, rate limits, 500s, dropped responses,
lock timeouts. Every API request draws the same number of random values in the same order, so
a given seed and request sequence always yield the same faults."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from dbt_stripe_sync.emulator.errors import StripeError


@dataclass(frozen=True)
class FaultConfig:
    latency_ms: float = 0
    rate_limit: float | None = None  # requests per second over all non-search API calls
    search_rate_limit: float | None = None  # requests per second on /search endpoints
    error_rate: float = 0.0  # share of API requests answered 500 (without being applied)
    drop_rate: float = 0.0  # share of writes applied but whose connection is dropped before the response
    lock_timeout_rate: float = 0.0  # share of writes answered 429 lock_timeout (without being applied)
    seed: int = 0
    rate_limited_rate: float = 0.0  # share of API requests answered 429 rate_limit (without being applied)
    # requests per second per endpoint (method + path template, e.g. `POST /v1/customers/{id}`), as
    # Stripe's default of 25; None = unlimited
    endpoint_rate_limit: float | None = 25.0
    # Stripe saves the result of a keyed POST that began executing, a 500 included, and replays it for
    # the same key: injected 500s without Stripe-Should-Retry on keyed POSTs are saved and replayed
    replay_errors: bool = True
    error_applied_rate: float = 0.0  # share of those saved 500s whose write was applied before the 500

    def __post_init__(self) -> None:
        rates = ("error_rate", "drop_rate", "lock_timeout_rate", "rate_limited_rate", "error_applied_rate")
        for name in rates:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for name in ("rate_limit", "search_rate_limit", "endpoint_rate_limit"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")


FAULT_FIELDS = tuple(f.name for f in fields(FaultConfig))


@dataclass(frozen=True)
class Draw:
    """The random decisions for one request (drawn even when the rates are 0, for determinism)."""

    error: bool
    should_retry: bool
    lock_timeout: bool
    drop: bool
    rate_limited: bool = False
    error_applied: bool = False  # a saved 500 on a keyed POST whose write was applied first


class RateBucket:
    """One of Stripe's rate budgets as Stripe's rate limiter counts it: a token bucket.

    Stripe's engineering blog ("Scaling your API with rate limiters", stripe.com/blog/rate-limiters,
    2017) describes its request rate limiter as a token bucket: each request takes a token from a
    bucket that is refilled at a steady rate, and a request that finds the bucket empty is refused
    with 429 (the post's sample code takes the refill rate and the bucket's depth as two settings).
    The rate-limits page (docs.stripe.com/rate-limits) publishes only the rate, in requests per second
    per account: 100 live / 25 test mode globally, 25 per endpoint unless noted, 20 for search. The
    depth is not published; this model reads "N requests per second" as a bucket of N tokens (one
    second's worth), full at first and refilled continuously at N per second, so N requests in one
    second pass however they bunch within it, and no longer stretch can average more than N per
    second. A refused request takes no token from that bucket.

    Unlike counting arrivals in 1-second windows, requests that arrive closer together than they
    were sent (network and scheduling jitter) are absorbed by what the bucket saved up, as at Stripe.
    """

    def __init__(self) -> None:
        self._tokens: float | None = None  # None: not used yet (full)
        self._last = 0.0

    def admit(self, limit: float | None, now: float) -> bool:
        """Take a token for a request arriving at `now` (monotonic seconds); False = 429."""
        if limit is None:
            return True
        capacity = max(limit, 1.0)
        tokens = capacity if self._tokens is None else self._tokens + max(0.0, now - self._last) * limit
        tokens = min(capacity, tokens)
        self._last = now
        if tokens < 1.0 - 1e-9:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True


class Faults:
    def __init__(
        self, config: FaultConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self.clock = clock  # when requests arrive, for the rate limits (tests may set a fake one)
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(f"faults-{config.seed}")
            # A stream of its own, so adding this fault left the other faults' draws under a seed unchanged.
            self._rate_limited_rng = random.Random(f"faults-rate-limited-{config.seed}")
            self._error_applied_rng = random.Random(f"faults-error-applied-{config.seed}")
            # Stripe's limits are per account (Connect: each connected account has its own): keyed by
            # the Stripe-Account acted for ("" = the platform itself)
            self._api_buckets: dict[str, RateBucket] = {}
            self._search_buckets: dict[str, RateBucket] = {}
            self._endpoint_buckets: dict[str, RateBucket] = {}

    def update(self, **changes: object) -> FaultConfig:
        unknown = set(changes) - set(FAULT_FIELDS)
        if unknown:
            raise TypeError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        new = replace(self.config, **changes)  # type: ignore[arg-type]
        self.configure(new)
        return new

    def check_rate(self, *, search: bool, endpoint: str | None = None, account: str | None = None) -> None:
        """Raise Stripe's 429 when the request exceeds a configured rate: search's own budget or the
        global one, and its endpoint's (`endpoint` like "POST /v1/customers/{id}"), each a RateBucket
        per account (`account`: the connected account acted for, None = the platform). The budgets
        are checked in that order, like limiters in sequence: a request its endpoint refuses has
        already taken its global token."""
        acct = account or ""
        with self._lock:
            now = self.clock()
            if search:
                ok = self._search_buckets.setdefault(acct, RateBucket()).admit(
                    self.config.search_rate_limit, now
                )
            else:
                ok = self._api_buckets.setdefault(acct, RateBucket()).admit(self.config.rate_limit, now)
            if ok and endpoint is not None and self.config.endpoint_rate_limit is not None:
                bucket = self._endpoint_buckets.setdefault(f"{acct} {endpoint}", RateBucket())
                ok = bucket.admit(self.config.endpoint_rate_limit, now)
        if not ok:
            raise rate_limited()

    def draw(self, *, write: bool) -> Draw:
        with self._lock:
            r = [self._rng.random() for _ in range(4)]
            limited = self._rate_limited_rng.random()
            applied = self._error_applied_rng.random()
            cfg = self.config
        return Draw(
            error=r[0] < cfg.error_rate,
            should_retry=r[1] < 0.5,
            lock_timeout=write and r[2] < cfg.lock_timeout_rate,
            drop=write and r[3] < cfg.drop_rate,
            rate_limited=limited < cfg.rate_limited_rate,
            error_applied=write and applied < cfg.error_applied_rate,
        )

    def sleep_latency(self) -> None:
        if self.config.latency_ms > 0:
            time.sleep(self.config.latency_ms / 1000.0)


def rate_limited() -> StripeError:
    return StripeError(
        429,
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        code="rate_limit",
    )


def injected_server_error(should_retry: bool) -> StripeError:
    return StripeError(
        500,
        "An unknown error occurred (injected by the emulator's --error-rate).",
        type="api_error",
        should_retry=True if should_retry else None,
    )


def lock_timeout(object_id: str | None) -> StripeError:
    what = f"object '{object_id}'" if object_id else "this object"
    return StripeError(
        429,
        f"This {what} cannot be accessed right now because another API request or Stripe process is "
        "currently accessing it. If you see this error intermittently, retry the request. If you see this "
        "error frequently and are making multiple concurrent requests to a single object, make your requests "
        "serially or at a lower rate.",
        code="lock_timeout",
        should_retry=True,
    )
