"""Stripe HTTP gateway: rate limiting, retries, per-object locking, exact call accounting."""

from .client import StripeGateway
from .errors import StripeRequestError
from .rate_limit import TokenBucket
from .stats import CallCounts, GatewayStats

__all__ = ["CallCounts", "GatewayStats", "StripeGateway", "StripeRequestError", "TokenBucket"]
