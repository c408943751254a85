"""The single place that drives the Stripe SDK's HTTP machinery.

We use `StripeClient(...)._requestor.request_raw(...)`: it applies the SDK's auth headers, API
version, idempotency header and Stripe's nested form encoding (`items[0][price]=...`), and returns
(body, status, headers) *without* raising on 4xx/5xx — so the gateway sees Stripe-Should-Retry,
Retry-After and Request-Id on every response, including non-JSON 5xx bodies (the public
`raw_request` raises instead, and drops the headers for non-JSON error bodies). It is a private
SDK method, hence pinned `stripe>=16,<17` and the signature check below; everything SDK-specific
is in this module.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


class TransportError(Exception):
    """Network failure (connect/read error or timeout): no HTTP response was received."""

    def __init__(self, detail: str, *, transient: bool) -> None:
        super().__init__(detail)
        self.transient = transient


class SdkTransport:
    def __init__(self, api_key: str, *, api_base: str | None, timeout_s: float) -> None:
        self._http = stripe.RequestsClient(timeout=timeout_s)  # thread-local sessions: thread-safe
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=0,  # the gateway retries, so every attempt is counted and controlled
            http_client=self._http,
        )
        self._requestor = self._client._requestor
        params = inspect.signature(self._requestor.request_raw).parameters
        if not {"options", "base_address", "api_mode"} <= params.keys():  # pragma: no cover
            raise RuntimeError(f"unsupported stripe SDK {stripe.VERSION}: request_raw signature changed")

    def send(
        self, method: str, path: str, params: Mapping[str, Any] | None, idempotency_key: str | None
    ) -> RawResponse:
        options: dict[str, Any] = {}
        if idempotency_key:
            options["idempotency_key"] = idempotency_key
        try:
            body, status, headers = self._requestor.request_raw(
                method,
                path,
                params=dict(params or {}),
                options=options,  # type: ignore[arg-type]
                base_address="api",
                api_mode="V1",
                usage=["dbt_stripe_sync"],
            )
        except stripe.APIConnectionError as e:
            cause = e.__cause__
            detail = f"{type(cause).__name__}: {cause}" if cause else (e.user_message or "network error")
            raise TransportError(detail, transient=bool(e.should_retry)) from None
        if isinstance(body, str):
            body = body.encode("utf-8")
        return RawResponse(status, {str(k).lower(): str(v) for k, v in headers.items()}, bytes(body))

    def close(self) -> None:
        self._http.close()
