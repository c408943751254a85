"""Per-object request handlers; `ROUTES` is the emulator's whole v1 API surface."""

from __future__ import annotations

from dbt_stripe_sync.emulator.resources import (
    customers,
    invoice_items,
    invoices,
    prices,
    products,
    quotes,
    subscriptions,
)
from dbt_stripe_sync.emulator.resources.base import Route

ROUTES: list[Route] = [
    *customers.ROUTES,
    *products.ROUTES,
    *prices.ROUTES,
    *subscriptions.ROUTES,
    *invoices.ROUTES,
    *invoice_items.ROUTES,
    *quotes.ROUTES,
]
