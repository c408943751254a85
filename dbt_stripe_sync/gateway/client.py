"""StripeGateway: the only component that sends HTTP requests to Stripe."""

from __future__ import annotations

import contextvars
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.secrets import install_log_filter, key_mode, register_secret

from .errors import StripeRequestError
from .locks import KeyedLocks
from .rate_limit import LIVE_MODE_RATE, SEARCH_RATE, TEST_MODE_RATE, TokenBucket
from .retry import (
    Backoff,
    is_replay_safe,
    parse_retry_after,
    should_retry_connection_error,
    should_retry_response,
)
from .stats import GatewayStats
from .transport import RawResponse, SdkTransport, TransportError

logger = logging.getLogger(__name__)
_METHODS = frozenset({"get", "post", "delete"})
_PAGE_SIZE = 100
_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar("stripe_gateway_scope", default=None)


@dataclass(frozen=True)
class ResponseMeta:
    method: str
    path: str
    status: int
    request_id: str | None


# Responses of the calls made inside `capture_responses()` (Request-Id and status of each, successes
# included; a failure's Request-Id is on StripeRequestError). Minimal until the gateway exposes it.
_responses: contextvars.ContextVar[list[ResponseMeta] | None] = contextvars.ContextVar(
    "stripe_gateway_responses", default=None
)


@contextmanager
def capture_responses() -> Iterator[list[ResponseMeta]]:
    """Collect the final response of every call made in this block (in this thread/context)."""
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
        rate_limit: float | None = None,
        search_rate_limit: float = SEARCH_RATE,
        max_retries: int = 8,
        timeout_s: float = 30.0,
        max_backoff_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        api_key = api_key.strip() if isinstance(api_key, str) else api_key
        self.mode = key_mode(api_key)  # raises InvalidApiKeyError without echoing the key
        register_secret(api_key)
        install_log_filter(__name__, "dbt_stripe_sync.gateway", "stripe")
        if max_retries < 0 or timeout_s <= 0 or max_backoff_s < 0:
            raise ValueError("max_retries must be >= 0, timeout_s > 0 and max_backoff_s >= 0")
        if rate_limit is None:
            rate_limit = LIVE_MODE_RATE if self.mode == "live" else TEST_MODE_RATE
        self.max_retries = max_retries
        self._sleep = sleep
        self._transport = SdkTransport(api_key, api_base=api_base, timeout_s=timeout_s)
        self._limiter = TokenBucket(rate_limit, clock=clock, sleep=sleep)
        self._search_limiter = TokenBucket(search_rate_limit, clock=clock, sleep=sleep)
        self._backoff = Backoff(max_backoff_s=max_backoff_s, rng=rng)
        self._locks = KeyedLocks()
        self._stats = GatewayStats()

    # -- public API -------------------------------------------------------------------------------

    @property
    def stats(self) -> GatewayStats:
        return self._stats

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Attribute calls made inside this block (in this thread/context) to `name`."""
        token = _scope.set(name)
        try:
            yield
        finally:
            _scope.reset(token)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        lock_key: str | None = None,
    ) -> dict[str, Any]:
        """Send one API call (retrying as Stripe advises) and return the decoded JSON object.

        Calls with the same `lock_key` never run concurrently. Raises StripeRequestError.
        """
        method = method.lower()
        if method not in _METHODS:
            raise ValueError(f"unsupported HTTP method {method!r}")
        if not path.startswith("/v1/") or "://" in path:
            raise ValueError(f"path must be an API path starting with /v1/, got {path!r}")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
            raise ValueError("idempotency_key must be 1-255 characters (Stripe's limit)")
        with self._locks.hold(lock_key):
            return self._send_with_retries(method, path, params, idempotency_key)

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
        self, method: str, path: str, params: Mapping[str, Any] | None, idempotency_key: str | None
    ) -> dict[str, Any]:
        scope = _scope.get()
        is_search = path.rstrip("/").endswith("/search")
        retry = 0
        while True:
            if is_search:
                self._search_limiter.acquire()
            self._limiter.acquire()
            attempt = retry + 1
            try:
                resp = self._transport.send(method, path, params, idempotency_key)
            except TransportError as e:
                self._stats.record_attempt(method, None, scope)
                retryable = should_retry_connection_error(
                    transient=e.transient, method=method, idempotency_key=idempotency_key
                )
                if retryable and retry < self.max_retries:
                    self._wait_before_retry(retry, None, method, path, f"connection error ({e})", scope)
                    retry += 1
                    continue
                note = (
                    ""
                    if retryable or not e.transient
                    else "; outcome unknown, not retried (no idempotency key)"
                )
                raise StripeRequestError(
                    f"{method.upper()} {path} failed after {attempt} attempt(s): {e}{note}",
                    retryable=retryable,
                    attempts=attempt,
                ) from None

            self._stats.record_attempt(method, resp.status, scope)
            request_id = resp.headers.get("request-id")
            logger.info(
                "Stripe %s %s -> %s (%s, request %s)", method.upper(), path, resp.status, scope or "-",
                request_id or "-", extra={"sync": scope, "request_id": request_id},
            )  # fmt: skip
            body = _decode(resp)
            if 200 <= resp.status < 300 and body is not None:
                captured = _responses.get()
                if captured is not None:
                    captured.append(ResponseMeta(method, path, resp.status, request_id))
                return body
            if 200 <= resp.status < 300:  # 2xx with a broken body: treat like a lost response
                retryable = should_retry_connection_error(
                    transient=True, method=method, idempotency_key=idempotency_key
                )
                reason = "invalid JSON in a successful response"
            else:
                retryable = should_retry_response(
                    resp.status, resp.headers, method=method, idempotency_key=idempotency_key
                )
                reason = f"HTTP {resp.status}"
            if retryable and retry < self.max_retries:
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                self._wait_before_retry(retry, retry_after, method, path, reason, scope)
                retry += 1
                continue
            error = _error_from_response(resp, body, retryable=retryable, attempts=attempt)
            if resp.status >= 500 and not retryable and not is_replay_safe(method, idempotency_key):
                error.message += "; outcome unknown, not retried (no idempotency key)"
            raise error

    def _wait_before_retry(
        self, retry: int, retry_after: float | None, method: str, path: str, reason: str, scope: str | None
    ) -> None:
        delay = self._backoff.delay(retry, retry_after)
        self._stats.record_retry(scope)
        logger.info(
            "Stripe %s %s: %s; retry %d/%d in %.2fs", method.upper(), path, reason, retry + 1,
            self.max_retries, delay,
        )  # fmt: skip
        if delay > 0:
            self._sleep(delay)


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
