"""Stripe-shaped API errors: raise `StripeError` anywhere in a handler, the server renders it."""

from __future__ import annotations

from typing import Any

DOC_BASE = "https://stripe.com/docs/error-codes"


class StripeError(Exception):
    """An error answered with Stripe's JSON envelope `{"error": {...}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.should_retry = should_retry

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"{DOC_BASE}/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": error}

    def headers(self) -> dict[str, str]:
        if self.should_retry is None:
            return {}
        return {"Stripe-Should-Retry": "true" if self.should_retry else "false"}


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, code=code, param=param)


def unknown_parameter(param: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param)


def missing_parameter(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def resource_missing(object_name: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {object_name}: '{object_id}'", code="resource_missing", param=param)


def empty_value(param: str) -> StripeError:
    return StripeError(
        400,
        f"You passed an empty string for '{param}'. We assume empty values are an attempt to unset a "
        f"parameter; however '{param}' cannot be unset. You should remove '{param}' from your request "
        "or supply a non-empty value.",
        code="parameter_invalid_empty",
        param=param,
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help "
        "at https://support.stripe.com/.",
    )
