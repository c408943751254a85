"""Emulator tests talk to it through the real `stripe` SDK over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import stripe

from dbt_stripe_sync.emulator import Emulator
from dbt_stripe_sync.emulator.pytest_plugin import stripe_emulator, stripe_emulator_session  # noqa: F401

TEST_KEY = "sk_test_emulator123"


def make_client(url: str, *, retries: int = 0, key: str = TEST_KEY) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": url}, max_network_retries=retries)


@pytest.fixture
def emu(stripe_emulator: Emulator) -> Emulator:  # noqa: F811 - the plugin's fixture, under a short name
    return stripe_emulator


@pytest.fixture
def client(emu: Emulator) -> stripe.StripeClient:
    return make_client(emu.url)


@pytest.fixture
def client_factory() -> Callable[..., stripe.StripeClient]:
    return make_client


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with custom settings; all are stopped at teardown."""
    started: list[Emulator] = []

    def start(**kwargs: object) -> Emulator:
        kwargs.setdefault("endpoint_rate_limit", None)  # tests opt in to Stripe's per-endpoint limit
        emulator = Emulator(**kwargs).start()  # type: ignore[arg-type]
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()
