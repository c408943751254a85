"""The one exception type the gateway raises for any failed Stripe call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbt_stripe_sync.secrets import redact_all


class StripeRequestError(Exception):
    """A Stripe call that failed for good (after any retries).

    `retryable` is True when the failure was transient (rate limit, lock timeout, 5xx, network) and
    the same call may safely be made again later; False when repeating it would fail the same way or
    could duplicate a write. `str()` is one line and never contains a registered secret.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        attempts: int = 1,
        json_body: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = _one_line(redact_all(message or ""))
        self.status = status
        self.code = code
        self.type = type
        self.param = param
        self.request_id = request_id
        self.retryable = retryable
        self.attempts = attempts
        self.json_body = json_body
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"Stripe {self.status}" if self.status is not None else "Stripe connection error"
        if self.code:
            head += f" {self.code}"
        if self.param:
            head += f" ({self.param})"
        return redact_all(f"{head}: {self.message}")

    def __str__(self) -> str:
        return self._render()

    def __repr__(self) -> str:
        return (
            f"StripeRequestError(status={self.status!r}, code={self.code!r}, type={self.type!r}, "
            f"param={self.param!r}, request_id={self.request_id!r}, retryable={self.retryable!r}, "
            f"attempts={self.attempts!r}, message={self.message!r})"
        )

    def __reduce__(self):  # keep keyword-only state across pickling (e.g. process pools)
        return (_rebuild, (self.message, self.__dict__.copy()))


def _rebuild(message: str, state: dict[str, Any]) -> StripeRequestError:
    state = {k: v for k, v in state.items() if k != "message"}
    return StripeRequestError(message, **state)


def _one_line(text: str) -> str:
    return " ".join(text.split())
