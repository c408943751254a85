"""The single place that speaks HTTP to Stripe: plain HTTP through urllib3, no private SDK API.

Stripe's v1 wire format is simple and public: form-encoded parameters with bracketed nesting
(`items[0][price]=...`, `metadata[k]=v`, booleans as `true`/`false`), `Authorization: Bearer <key>`,
`Stripe-Version`, `Idempotency-Key` and `Stripe-Account` headers. Doing it here (rather than through
the SDK's private requestor) means every response, 4xx/5xx and non-JSON bodies included, reaches the
gateway with its headers (Stripe-Should-Retry, Retry-After, Request-Id, Idempotent-Replayed), any
`stripe` release works, and the key only ever sits in one header of one request.
"""

from __future__ import annotations

import datetime
import platform
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import LocationParseError, SSLError

DEFAULT_API_BASE = "https://api.stripe.com"
_CONNECT_TIMEOUT_CAP_S = 10.0


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


class TransportError(Exception):
    """Network failure (connect/read error or timeout): no HTTP response was received.

    `connected` is False when the request provably never reached the server (connection refused,
    DNS failure, connect timeout): nothing can have been applied.
    """

    def __init__(self, detail: str, *, transient: bool, connected: bool = True) -> None:
        super().__init__(detail)
        self.transient = transient
        self.connected = connected


def encode_params(params: Mapping[str, Any], prefix: str | None = None) -> Iterator[tuple[str, str]]:
    """Stripe's form encoding, as the official SDKs do it: nested hashes as `a[b]`, arrays always
    indexed (`a[0]`, `a[0][b]`), booleans `true`/`false`, None left out, datetimes as Unix seconds."""
    for raw_key, value in params.items():
        key = f"{prefix}[{raw_key}]" if prefix is not None else str(raw_key)
        yield from _encode_value(key, value)


def _encode_value(key: str, value: Any) -> Iterator[tuple[str, str]]:
    if value is None:
        return
    if isinstance(value, Mapping):
        yield from encode_params(value, key)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _encode_value(f"{key}[{i}]", item)
    elif isinstance(value, bool):
        yield key, "true" if value else "false"
    elif isinstance(value, datetime.datetime):
        yield key, str(int(value.timestamp()))
    else:
        yield key, str(value)


def form_encode(params: Mapping[str, Any] | None) -> str:
    # Brackets stay literal, as the SDKs send them (Stripe accepts both; logs stay readable).
    return urlencode(list(encode_params(params or {}))).replace("%5B", "[").replace("%5D", "]")


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("dbt-stripe-sync")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        ours = "0"
    return f"dbt-stripe-sync/{ours} python/{platform.python_version()}"


def _api_version() -> str | None:
    """The API version the installed `stripe` SDK's generated types (our field catalog) describe."""
    from dbt_stripe_sync.stripe_sdk import load_stripe

    try:
        stripe = load_stripe()
    except ImportError:  # pragma: no cover - stripe is a dependency
        return None
    return getattr(stripe, "api_version", None)


class HttpTransport:
    """Thread-safe (urllib3's PoolManager); one connection pool per API base, kept alive."""

    def __init__(self, api_key: str, *, api_base: str | None, timeout_s: float) -> None:
        base = (api_base or DEFAULT_API_BASE).rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"API base must be an http(s) URL like {DEFAULT_API_BASE}, got {base!r}")
        self.api_base = base
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "User-Agent": _user_agent(),
            "Accept": "application/json",
        }
        api_version = _api_version()
        if api_version:
            self._headers["Stripe-Version"] = api_version
        self._timeout = urllib3.Timeout(connect=min(timeout_s, _CONNECT_TIMEOUT_CAP_S), read=timeout_s)
        self._pool = urllib3.PoolManager(num_pools=4, maxsize=64, block=False, retries=False)

    def send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        idempotency_key: str | None,
        stripe_account: str | None = None,
    ) -> RawResponse:
        encoded = form_encode(params)
        headers = dict(self._headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if stripe_account:
            headers["Stripe-Account"] = stripe_account
        url = self.api_base + path
        body: str | None = None
        if method == "post":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = encoded
        elif encoded:
            url = f"{url}?{encoded}"
        try:
            resp = self._pool.request(
                method.upper(),
                url,
                body=body,
                headers=headers,
                timeout=self._timeout,
                retries=False,
                redirect=False,
                preload_content=True,
            )
        except SSLError as e:  # certificate problems do not fix themselves on a retry
            raise TransportError(_describe(e), transient=False, connected=False) from None
        except LocationParseError as e:
            raise TransportError(_describe(e), transient=False, connected=False) from None
        except (Urllib3Error, OSError, ssl.SSLError) as e:
            raise TransportError(_describe(e), transient=True, connected=_may_have_connected(e)) from None
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.data or b"")

    def close(self) -> None:
        self._pool.clear()


def _may_have_connected(exc: BaseException) -> bool:
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    return not isinstance(exc, (NewConnectionError, ConnectTimeoutError, NameResolutionError))


def _describe(exc: BaseException) -> str:
    """`ExcType: message` without urllib3's object reprs (`<HTTPConnection object at 0x..>`)."""
    text = str(exc)
    for marker in (">: ", "): "):  # "HTTPConnection(host=..., port=...): Failed to establish ..."
        if marker in text:
            text = text.split(marker, 1)[1]
            break
    text = text.strip("() '\"")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
