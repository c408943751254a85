"""pytest plugin: `stripe_emulator` (fresh per test) and `stripe_emulator_session` (one per session).

Registered as a `pytest11` entry point, so any project with dbt-stripe-sync installed gets them:

    def test_sync(stripe_emulator):
        client = stripe.StripeClient("sk_test_123", base_addresses={"api": stripe_emulator.url})
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dbt_stripe_sync.emulator.server import Emulator


@pytest.fixture(scope="session")
def stripe_emulator_session() -> Iterator[Emulator]:
    """One emulator for the whole session; state is shared between tests (call `.reset()` if needed).
    Fault-free and without rate limits (`set_faults(endpoint_rate_limit=25)` for Stripe's)."""
    with Emulator(endpoint_rate_limit=None) as emulator:
        yield emulator


@pytest.fixture
def stripe_emulator() -> Iterator[Emulator]:
    """A fresh, fault-free emulator without rate limits on an ephemeral port; use `.set_faults(...)` to
    inject faults or limits (`endpoint_rate_limit=25` is Stripe's)."""
    with Emulator(endpoint_rate_limit=None) as emulator:
        yield emulator
