"""Stripe HTTP gateway: rate limiting, retries, a circuit breaker, per-object locking, exact call
accounting."""

from .breaker import CircuitBreaker
from .client import StripeGateway, last_request_id
from .errors import StripeRequestError, StripeUnavailableError
from .rate_limit import StripeLimiter, TokenBucket, endpoint_template
from .stats import CallCounts, GatewayStats

__all__ = [
    "CallCounts",
    "CircuitBreaker",
    "GatewayStats",
    "StripeGateway",
    "StripeLimiter",
    "StripeRequestError",
    "StripeUnavailableError",
    "TokenBucket",
    "endpoint_template",
    "last_request_id",
]
