"""StripeGateway: the only component that sends HTTP requests to Stripe."""

from __future__ import annotations

import contextvars
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.secrets import install_log_filter, key_mode, redact_all, register_secret

from .breaker import CircuitBreaker
from .errors import StripeRequestError, StripeUnavailableError
from .locks import KeyedLocks
from .rate_limit import ENDPOINT_RATE, LIVE_MODE_RATE, SEARCH_RATE, TEST_MODE_RATE, StripeLimiter
from .retry import (
    Backoff,
    is_replay_safe,
    parse_retry_after,
    should_retry_connection_error,
    should_retry_response,
)
from .stats import GatewayStats
from .transport import HttpTransport, RawResponse, TransportError

logger = logging.getLogger(__name__)
_METHODS = frozenset({"get", "post", "delete"})
_PAGE_SIZE = 100
_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar("stripe_gateway_scope", default=None)
# Stripe Connect: the connected account (acct_...) that calls made in this context act for.
_account: contextvars.ContextVar[str | None] = contextvars.ContextVar("stripe_gateway_account", default=None)
_last_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stripe_gateway_last_request_id", default=None
)
# A single request (all its retries) gives up after this long; a run must end when Stripe does not.
MAX_REQUEST_TIME_S = 60.0


def last_request_id() -> str | None:
    """Stripe's `Request-Id` of the last response received in this thread/context (None if none).

    Set by every `request()` that got an HTTP answer, so right after a successful call it names that
    call (for changelogs: find it in Stripe's dashboard); a failed call carries its own in
    `StripeRequestError.request_id`.
    """
    return _last_request_id.get()


@dataclass(frozen=True)
class ResponseMeta:
    method: str
    path: str
    status: int
    request_id: str | None


# Responses of the calls made inside `capture_responses()`: the final answer of each call, success or
# error (Request-Id and status); a call that got no answer (connection error) leaves none.
_responses: contextvars.ContextVar[list[ResponseMeta] | None] = contextvars.ContextVar(
    "stripe_gateway_responses", default=None
)


def _capture(method: str, path: str, status: int, request_id: str | None) -> None:
    captured = _responses.get()
    if captured is not None:
        captured.append(ResponseMeta(method, path, status, request_id))


@contextmanager
def capture_responses() -> Iterator[list[ResponseMeta]]:
    """Collect the final response of every call made in this block (in this thread/context), errors
    included: a write the adapter settled after an error (a cancel of a subscription already
    cancelled) is then recorded with the error's status and Request-Id, not a later read's."""
    calls: list[ResponseMeta] = []
    token = _responses.set(calls)
    try:
        yield calls
    finally:
        _responses.reset(token)


class StripeGateway:
    """Rate-limited, retrying, per-object-serialised access to the Stripe API. Thread-safe.

    Every HTTP attempt (retries included) is counted in `stats`, globally and per `scope`.
    Note: scopes are context variables, which ThreadPoolExecutor workers do not inherit — enter
    `gateway.scope(...)` inside the submitted task (or submit `contextvars.copy_context().run`).
    """

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        api_base_env: str | None = None,
        rate_limit: float | None = None,
        endpoint_rate_limit: float | None = None,
        search_rate_limit: float = SEARCH_RATE,
        max_in_flight: int | None = None,
        max_retries: int = 8,
        timeout_s: float = 30.0,
        max_backoff_s: float = 8.0,
        max_request_time_s: float = MAX_REQUEST_TIME_S,
        sleep: Callable[[float], None] | None = None,
        pacing_sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """`rate_limit`, `endpoint_rate_limit`, `search_rate_limit`: the server's limits in requests/s
        (defaults: Stripe's — 25 test / 100 live, 25 per endpoint, 20 search); requests are paced just
        under each. `api_base_env`: the environment variable `api_base` came from (outage messages
        name it). `sleep` waits out backoffs only (default: a wait the circuit breaker cuts short);
        `pacing_sleep` the rate limiter's pauses (default time.sleep; inject it with `clock`)."""
        api_key = api_key.strip() if isinstance(api_key, str) else api_key
        self.mode = key_mode(api_key)  # raises InvalidApiKeyError without echoing the key
        register_secret(api_key)
        install_log_filter(__name__, "dbt_stripe_sync.gateway", "stripe")
        if max_retries < 0 or timeout_s <= 0 or max_backoff_s < 0 or max_request_time_s <= 0:
            raise ValueError(
                "max_retries must be >= 0, timeout_s > 0, max_backoff_s >= 0 and max_request_time_s > 0"
            )
        if rate_limit is None:
            rate_limit = LIVE_MODE_RATE if self.mode == "live" else TEST_MODE_RATE
        self.max_retries = max_retries
        self.max_request_time_s = max_request_time_s
        self._clock = clock
        self._sleep = sleep
        self._transport = HttpTransport(api_key, api_base=api_base, timeout_s=timeout_s)
        self.api_base = self._transport.api_base
        self._breaker = breaker or CircuitBreaker(
            self.api_base, api_base_env=api_base_env if api_base else None, clock=clock
        )
        self._limiter_args: dict[str, Any] = dict(
            endpoint_limit=endpoint_rate_limit or ENDPOINT_RATE,
            search_limit=search_rate_limit,
            max_in_flight=max_in_flight,
            clock=clock,
            sleep=pacing_sleep or time.sleep,
        )
        self._rate_limit = rate_limit
        self.limiter = StripeLimiter(rate_limit, **self._limiter_args)  # the platform account's budgets
        # Stripe limits each account separately, connected accounts included: one limiter each
        self._account_limiters: dict[str, StripeLimiter] = {}
        self._account_limiters_lock = threading.Lock()
        self._backoff = Backoff(max_backoff_s=max_backoff_s, rng=rng)
        self._locks = KeyedLocks()
        self._stats = GatewayStats()

    # -- public API -------------------------------------------------------------------------------

    @property
    def stats(self) -> GatewayStats:
        return self._stats

    @property
    def unavailable(self) -> str | None:
        """Why Stripe is considered unavailable for the rest of this gateway's life (the circuit
        breaker opened), or None. Once set, every request raises StripeUnavailableError at once."""
        return self._breaker.reason

    @property
    def max_in_flight(self) -> int:
        """How many requests may usefully be in flight at once: more would only queue here (the
        gateway's concurrency limiter, sized from the rate limits: rate x 0.5 s, 4..64)."""
        return self.limiter.max_in_flight

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Attribute calls made inside this block (in this thread/context) to `name`."""
        token = _scope.set(name)
        try:
            yield
        finally:
            _scope.reset(token)

    @contextmanager
    def acting_for(self, account: str | None) -> Iterator[None]:
        """Calls made inside this block (in this thread/context) act for connected account `account`
        (they carry `Stripe-Account`, and are paced by that account's own limits); None = the platform.
        """
        token = _account.set(account or None)
        try:
            yield
        finally:
            _account.reset(token)

    def limiter_for(self, account: str | None) -> StripeLimiter:
        """The budgets of one account: Stripe counts every account's requests separately, so calls for
        different connected accounts do not slow each other down."""
        if not account:
            return self.limiter
        with self._account_limiters_lock:
            limiter = self._account_limiters.get(account)
            if limiter is None:
                limiter = self._account_limiters[account] = StripeLimiter(
                    self._rate_limit, **self._limiter_args
                )
            return limiter

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        lock_key: str | None = None,
        stripe_account: str | None = None,
    ) -> dict[str, Any]:
        """Send one API call (retrying as Stripe advises) and return the decoded JSON object.

        Calls with the same `lock_key` never run concurrently. `stripe_account` sends the
        `Stripe-Account` header (Connect). Raises StripeRequestError (StripeUnavailableError once
        the circuit breaker has opened). `last_request_id()` then names the call's Request-Id.
        """
        method = method.lower()
        if method not in _METHODS:
            raise ValueError(f"unsupported HTTP method {method!r}")
        if not path.startswith("/v1/") or "://" in path:
            raise ValueError(f"path must be an API path starting with /v1/, got {path!r}")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
            raise ValueError("idempotency_key must be 1-255 characters (Stripe's limit)")
        if stripe_account is None:
            stripe_account = _account.get()
        if stripe_account is not None and not stripe_account.strip():
            raise ValueError("stripe_account must be a non-empty account id (acct_...)")
        self._breaker.check()
        with self._locks.hold(lock_key):
            return self._send_with_retries(method, path, params, idempotency_key, stripe_account)

    def list_all(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Yield every object of a list endpoint, paging by 100 with `starting_after`."""
        query = {**(params or {}), "limit": _PAGE_SIZE}
        while True:
            page = self.request("get", path, query)
            data = _page_data(page, path)
            yield from data
            if not page.get("has_more"):
                return
            if not data or "id" not in data[-1]:
                raise StripeRequestError(
                    f"pagination of {path} stalled: has_more without a cursor", status=200
                )
            query["starting_after"] = data[-1]["id"]

    def search_all(self, path: str, query: str) -> Iterator[dict[str, Any]]:
        """Yield every search result (`path` may be /v1/customers or /v1/customers/search)."""
        if not path.rstrip("/").endswith("/search"):
            path = path.rstrip("/") + "/search"
        params: dict[str, Any] = {"query": query, "limit": _PAGE_SIZE}
        seen_pages: set[str] = set()
        while True:
            page = self.request("get", path, params)
            yield from _page_data(page, path)
            next_page = page.get("next_page")
            if not page.get("has_more") or not next_page:
                return
            if next_page in seen_pages:
                raise StripeRequestError(f"search pagination of {path} repeated a page token", status=200)
            seen_pages.add(next_page)
            params["page"] = next_page

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> StripeGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------------

    def _send_with_retries(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        idempotency_key: str | None,
        stripe_account: str | None,
    ) -> dict[str, Any]:
        scope = _scope.get()
        is_write = method != "get"
        started = self._clock()
        retry = 0
        maybe_applied = False  # an attempt of this write may have been applied by Stripe
        limiter = self.limiter_for(stripe_account)
        while True:
            limiter.pace(method, path)
            self._raise_if_open(retry, maybe_applied)
            attempt = retry + 1
            attempt_started = self._clock()
            try:
                with limiter.in_flight():
                    resp = self._transport.send(method, path, params, idempotency_key, stripe_account)
            except TransportError as e:
                self._stats.record_attempt(method, None, scope)
                self._breaker.record_failure(
                    f"connection error: {e}", connected=e.connected, started_at=attempt_started
                )
                maybe_applied = maybe_applied or (is_write and e.connected)
                retryable = should_retry_connection_error(
                    transient=e.transient, method=method, idempotency_key=idempotency_key
                )
                delay = self._retry_delay(retry, None, started) if retryable else None
                if delay is not None:
                    self._raise_if_open(attempt, maybe_applied)
                    self._wait_before_retry(retry, delay, method, path, f"connection error ({e})", scope)
                    self._raise_if_open(attempt, maybe_applied)
                    self._stats.record_retry(scope)
                    retry += 1
                    continue
                note = (
                    ""
                    if retryable or not e.transient
                    else "; outcome unknown, not retried (no idempotency key)"
                )
                raise StripeRequestError(
                    f"{method.upper()} {path} failed after {attempt} attempt(s)"
                    f"{self._over_time_note(retryable, retry, started)}: {e}{note}",
                    retryable=retryable,
                    attempts=attempt,
                    outcome_unknown=maybe_applied,
                ) from None

            self._stats.record_attempt(method, resp.status, scope)
            _last_request_id.set(resp.headers.get("request-id"))
            request_id = resp.headers.get("request-id")
            replayed = resp.headers.get("idempotent-replayed", "").strip().lower() == "true"
            logger.info(
                "Stripe %s %s -> %s%s (%s, request %s)", method.upper(), path, resp.status,
                " replayed" if replayed else "", scope or "-", request_id or "-",
                extra={"sync": scope, "request_id": request_id},
            )  # fmt: skip
            if resp.status >= 500 and not replayed:
                self._breaker.record_failure(
                    f"HTTP {resp.status}", connected=True, started_at=attempt_started
                )
                maybe_applied = maybe_applied or is_write
            else:
                self._breaker.record_success()
            body = _decode(resp)
            if 200 <= resp.status < 300 and body is not None:
                _capture(method, path, resp.status, request_id)
                return body
            if resp.status >= 500 and replayed:
                # Stripe saved this 5xx for the idempotency key: the same key gets the same answer
                # until the key expires, so retrying is pointless. Whether the write was applied can
                # only be learned by looking the object up.
                error = _error_from_response(resp, body, retryable=True, attempts=attempt)
                error.outcome_unknown = error.replayed = True
                _capture(method, path, resp.status, request_id)
                error.message += (
                    "; Stripe replays this saved error for the idempotency key, so the outcome is "
                    "unknown: look the object up before re-sending under a new key"
                )
                raise error
            if 200 <= resp.status < 300:  # 2xx with a broken body: treat like a lost response
                maybe_applied = maybe_applied or is_write
                retryable = should_retry_connection_error(
                    transient=True, method=method, idempotency_key=idempotency_key
                )
                reason = "invalid JSON in a successful response"
            else:
                retryable = should_retry_response(
                    resp.status, resp.headers, method=method, idempotency_key=idempotency_key
                )
                reason = f"HTTP {resp.status}"
            delay = None
            if retryable:
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                delay = self._retry_delay(retry, retry_after, started)
            if delay is not None:
                self._raise_if_open(attempt, maybe_applied)
                self._wait_before_retry(retry, delay, method, path, reason, scope)
                self._raise_if_open(attempt, maybe_applied)
                self._stats.record_retry(scope)
                retry += 1
                continue
            error = _error_from_response(resp, body, retryable=retryable, attempts=attempt)
            error.outcome_unknown = maybe_applied
            if resp.status == 401:  # the key itself: every later request would be refused too
                self._breaker.key_refused(redact_all(f"HTTP 401: {error.message}")[:300])
            if resp.status >= 500 and not retryable and not is_replay_safe(method, idempotency_key):
                error.message += "; outcome unknown, not retried (no idempotency key)"
            error.message += self._over_time_note(retryable, retry, started)
            _capture(method, path, resp.status, request_id)
            raise error

    def _retry_delay(self, retry: int, retry_after: float | None, started: float) -> float | None:
        """The wait before the next attempt, or None when retries or the time budget are spent."""
        if retry >= self.max_retries:
            return None
        delay = self._backoff.delay(retry, retry_after)
        if self._clock() - started + delay > self.max_request_time_s:
            return None
        return delay

    def _over_time_note(self, retryable: bool, retry: int, started: float) -> str:
        if not retryable or retry >= self.max_retries:
            return ""
        return f" (gave up: retrying would pass the {self.max_request_time_s:.0f}s limit per request)"

    def _raise_if_open(self, attempts: int, maybe_applied: bool) -> None:
        reason = self._breaker.reason
        if reason is not None:
            raise StripeUnavailableError(reason, attempts=attempts, outcome_unknown=maybe_applied)

    def _wait_before_retry(
        self, retry: int, delay: float, method: str, path: str, reason: str, scope: str | None
    ) -> None:
        logger.info(
            "Stripe %s %s: %s; retry %d/%d in %.2fs", method.upper(), path, reason, retry + 1,
            self.max_retries, delay,
        )  # fmt: skip
        if self._sleep is not None:
            if delay > 0:
                self._sleep(delay)
        else:
            self._breaker.wait(delay)  # returns at once when the circuit opens


def _decode(resp: RawResponse) -> dict[str, Any] | None:
    try:
        value = json.loads(resp.body.decode("utf-8")) if resp.body else None
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _page_data(page: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    data = page.get("data")
    if not isinstance(data, list):
        raise StripeRequestError(f"{path} did not return a list object", status=200)
    return data


def _error_from_response(
    resp: RawResponse, body: Mapping[str, Any] | None, *, retryable: bool, attempts: int
) -> StripeRequestError:
    err = body.get("error") if body else None
    err = err if isinstance(err, Mapping) else {}
    message = err.get("message")
    if not message:
        snippet = resp.body[:200].decode("utf-8", "replace") if resp.body else "empty body"
        message = f"unexpected response: {snippet}"
    if attempts > 1:
        message = f"{message} (after {attempts} attempts)"
    return StripeRequestError(
        str(message),
        status=resp.status,
        code=err.get("code") or None,
        type=err.get("type") or None,
        param=err.get("param") or None,
        request_id=resp.headers.get("request-id"),
        retryable=retryable,
        attempts=attempts,
        json_body=body,
    )
