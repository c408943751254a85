"""The pytest fixtures users get from the plugin."""

from __future__ import annotations

from dbt_stripe_sync.emulator import Emulator


def test_function_fixture_is_fresh_and_started(stripe_emulator: Emulator, client_factory) -> None:
    assert stripe_emulator.url.startswith("http://127.0.0.1:")
    assert stripe_emulator.objects("customer") == [] and stripe_emulator.requests() == []
    client_factory(stripe_emulator.url).v1.customers.create(params={"name": "x"})
    assert len(stripe_emulator.objects("customer")) == 1


def test_session_fixture_is_shared_and_resettable(stripe_emulator_session: Emulator, client_factory) -> None:
    client_factory(stripe_emulator_session.url).v1.products.create(params={"name": "p"})
    assert stripe_emulator_session.objects("product")
    stripe_emulator_session.reset()
    assert stripe_emulator_session.objects("product") == []
