"""The exception types the gateway raises for a failed Stripe call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbt_stripe_sync.secrets import redact_all


class StripeRequestError(Exception):
    """A Stripe call that failed for good (after any retries).

    `retryable` is True when the failure was transient (rate limit, lock timeout, 5xx, network) and
    the same call may safely be made again later; False when repeating it would fail the same way or
    could duplicate a write. `str()` is one line and never contains a registered secret.

    `outcome_unknown` is True when Stripe may or may not have applied a write: a 5xx, a lost
    connection or a timeout on a POST/DELETE. `replayed` is True when Stripe answered from its
    idempotency store (`Idempotent-Replayed: true`): a replayed 5xx is Stripe's saved answer for
    that key and will never change, so the gateway stops retrying it; whether the write took effect
    can then only be learned by looking the object up (e.g. by its metadata tag).
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
        outcome_unknown: bool = False,
        replayed: bool = False,
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
        self.outcome_unknown = outcome_unknown
        self.replayed = replayed
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
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, type={self.type!r}, "
            f"param={self.param!r}, request_id={self.request_id!r}, retryable={self.retryable!r}, "
            f"attempts={self.attempts!r}, outcome_unknown={self.outcome_unknown!r}, "
            f"replayed={self.replayed!r}, message={self.message!r})"
        )

    def __reduce__(self):  # keep keyword-only state across pickling (e.g. process pools)
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


class StripeUnavailableError(StripeRequestError):
    """Stripe could not be reached: the gateway's circuit breaker is open for the rest of the run.

    Raised at once, without a network call, by every request after the breaker opened (and by the
    retries that were in flight when it did). `status` is None and `retryable` True: nothing about the
    request itself is wrong, a later run may send it. The message names the API base and says whether
    STRIPE_API_BASE is set.
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("retryable", True)
        kwargs.setdefault("status", None)
        super().__init__(message, **kwargs)

    def _render(self) -> str:
        return redact_all(f"Stripe unavailable: {self.message}")


def _rebuild(cls: type[StripeRequestError], message: str, state: dict[str, Any]) -> StripeRequestError:
    state = {k: v for k, v in state.items() if k != "message"}
    return cls(message, **state)


def _one_line(text: str) -> str:
    return " ".join(text.split())
