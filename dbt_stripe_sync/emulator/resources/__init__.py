"""Per-object request handlers; `ROUTES` is the emulator's whole v1 API surface."""

from __future__ import annotations

from dbt_stripe_sync.emulator.resources import customers, prices, products
from dbt_stripe_sync.emulator.resources.base import Route

ROUTES: list[Route] = [*customers.ROUTES, *products.ROUTES, *prices.ROUTES]
