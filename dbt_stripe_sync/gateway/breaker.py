"""A run-wide circuit breaker: when Stripe is down or unreachable, stop within seconds, not minutes.

One breaker per StripeGateway, fed by every attempt of every request on every thread:
- a success (any HTTP answer that is not a fresh 5xx) closes the streak;
- failures are connection errors, timeouts and fresh (not replayed) 5xx answers.
The circuit opens, for the rest of the gateway's life, on the first of:
- `unreachable_after` consecutive failures that never connected (refused, DNS, connect timeout):
  nothing is listening, more retries cannot help;
- `failures_to_open` consecutive failures of any kind;
- at least 2 consecutive failures spanning `open_after_s` seconds (from the start of the streak's
  first attempt), e.g. a Stripe that accepts connections but never answers.
It also opens on the first 401 (`key_refused`): a refused API key fails every request alike.
Once open, `wait()` returns at once (backoff sleeps are cut short) and `check()` raises
StripeUnavailableError, so no further network call is made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .errors import StripeUnavailableError

REAL_API_HOST = "api.stripe.com"
FAILURES_TO_OPEN = 8
UNREACHABLE_AFTER = 3
OPEN_AFTER_S = 15.0


class CircuitBreaker:
    def __init__(
        self,
        api_base: str,
        *,
        api_base_env: str | None,
        failures_to_open: int = FAILURES_TO_OPEN,
        unreachable_after: int = UNREACHABLE_AFTER,
        open_after_s: float = OPEN_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures_to_open < 1 or unreachable_after < 1 or open_after_s <= 0:
            raise ValueError("breaker thresholds must be positive")
        self.api_base = api_base
        self.api_base_env = api_base_env
        self.failures_to_open = failures_to_open
        self.unreachable_after = unreachable_after
        self.open_after_s = open_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._opened = threading.Event()
        self._reason: str | None = None
        self._streak = 0
        self._unreachable_streak = 0
        self._streak_since: float | None = None  # start of the oldest attempt in the failure streak
        self._last_success: float | None = None

    # -- state ------------------------------------------------------------------------------------
    @property
    def reason(self) -> str | None:
        """Why the circuit opened (a complete, user-facing sentence), or None while it is closed."""
        with self._lock:
            return self._reason

    @property
    def is_open(self) -> bool:
        return self._opened.is_set()

    def check(self) -> None:
        """Raise StripeUnavailableError when the circuit is open."""
        if self._opened.is_set():
            raise StripeUnavailableError(self.reason or "Stripe is unavailable")

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; return True early (at once) when the circuit is or becomes open."""
        if seconds <= 0:
            return self._opened.is_set()
        return self._opened.wait(seconds)

    # -- feeding it -------------------------------------------------------------------------------
    def record_success(self) -> None:
        with self._lock:
            self._streak = self._unreachable_streak = 0
            self._streak_since = None
            self._last_success = self._clock()

    def record_failure(self, detail: str, *, connected: bool, started_at: float) -> None:
        """One failed attempt: `connected` False when it never reached the server."""
        with self._lock:
            if self._reason is not None:
                return
            now = self._clock()
            self._streak += 1
            self._unreachable_streak = 0 if connected else self._unreachable_streak + 1
            if self._streak_since is None:
                self._streak_since = started_at
            since = self._streak_since
            if self._unreachable_streak >= self.unreachable_after:
                self._open(self._unreachable_message(detail))
            elif self._streak >= self.failures_to_open or (
                self._streak >= 2 and now - since >= self.open_after_s
            ):
                self._open(self._failing_message(detail, now - since))

    def key_refused(self, detail: str) -> None:
        """Stripe answered 401: the API key itself is refused, so every request of the run would be
        too. Open at once rather than spend a refused request per row."""
        with self._lock:
            if self._reason is None:
                self._open(
                    f"Stripe refused the API key ({detail}); check the key in STRIPE_API_KEY (or the "
                    "variable named by vars.dbt_stripe_sync.api_key_env) and that it belongs to the account "
                    "and mode you meant. Stopped sending for this run; unsent writes stay pending."
                )

    def _open(self, reason: str) -> None:
        self._reason = reason
        self._opened.set()

    # -- messages ---------------------------------------------------------------------------------
    def _where(self) -> str:
        if self.api_base_env:
            return f"{self.api_base} ({self.api_base_env})"
        return self.api_base

    def _hint(self) -> str:
        if self.api_base_env:
            return f"; check that the server {self.api_base_env} points to is running"
        if REAL_API_HOST in self.api_base:
            return "; STRIPE_API_BASE is not set — set it to your emulator/localstripe URL if you meant one"
        return ""

    def _unreachable_message(self, detail: str) -> str:
        tries = f"({self._streak} attempts in a row; last: {detail})"
        if not self.api_base_env and REAL_API_HOST in self.api_base:
            head = f"{REAL_API_HOST} is unreachable {tries}"
        else:
            head = f"cannot reach Stripe at {self._where()} {tries}"
        return head + self._hint() + ". Stopped sending for this run; unsent writes stay pending."

    def _failing_message(self, detail: str, span_s: float) -> str:
        return (
            f"Stripe at {self._where()} failed {self._streak} requests in a row over {span_s:.0f}s "
            f"(last: {detail}){self._hint()}. Stopped sending for this run; unsent writes stay pending."
        )
