"""Idempotency keys: replay, parameter mismatch, expiry."""

from __future__ import annotations

import threading
import time

import pytest
import stripe

from dbt_stripe_sync.emulator import Emulator


def test_same_key_replays_the_first_response(client: stripe.StripeClient, emu: Emulator) -> None:
    opts: stripe.RequestOptions = {"idempotency_key": "sync-run-1-cus-42"}
    first = client.v1.customers.create(params={"email": "x@example.com"}, options=opts)
    again = client.v1.customers.create(params={"email": "x@example.com"}, options=opts)
    assert again.id == first.id
    assert len(emu.objects("customer")) == 1
    assert [r["replayed"] for r in emu.requests()] == [False, True]


def test_same_key_with_other_params_is_an_idempotency_error(client: stripe.StripeClient) -> None:
    opts: stripe.RequestOptions = {"idempotency_key": "k-1"}
    client.v1.customers.create(params={"email": "x@example.com"}, options=opts)
    with pytest.raises(stripe.IdempotencyError) as err:
        client.v1.customers.create(params={"email": "other@example.com"}, options=opts)
    assert err.value.http_status == 400
    assert err.value.error is not None and err.value.error.type == "idempotency_error"


def test_errors_from_execution_replay_but_validation_errors_do_not(client: stripe.StripeClient) -> None:
    opts: stripe.RequestOptions = {"idempotency_key": "k-2"}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"balance": "x"}, options=opts)
    # The failed validation saved nothing: the key can now be used with other parameters.
    assert client.v1.customers.create(params={"balance": 5}, options=opts).balance == 5


def test_expired_keys_execute_again(client: stripe.StripeClient, emu: Emulator) -> None:
    opts: stripe.RequestOptions = {"idempotency_key": "k-3"}
    first = client.v1.customers.create(params={"email": "x@example.com"}, options=opts)
    assert emu.expire_idempotency_keys() == 1
    second = client.v1.customers.create(params={"email": "x@example.com"}, options=opts)
    assert second.id != first.id
    assert len(emu.objects("customer")) == 2


def test_keys_expire_after_the_ttl(emulator_factory, client_factory) -> None:
    emu = emulator_factory(idempotency_ttl_s=0.05)
    client = client_factory(emu.url)
    opts: stripe.RequestOptions = {"idempotency_key": "k-4"}
    first = client.v1.customers.create(params={}, options=opts)
    assert client.v1.customers.create(params={}, options=opts).id == first.id
    time.sleep(0.1)
    assert client.v1.customers.create(params={}, options=opts).id != first.id


def test_a_key_still_in_flight_is_409(emulator_factory, client_factory) -> None:
    emu = emulator_factory(latency_ms=300)
    results: dict[str, object] = {}

    def create(name: str) -> None:
        try:
            results[name] = (
                client_factory(emu.url)
                .v1.customers.create(params={"name": "same"}, options={"idempotency_key": "busy-key"})
                .id
            )
        except stripe.StripeError as exc:
            results[name] = exc.http_status

    first = threading.Thread(target=create, args=("first",))
    second = threading.Thread(target=create, args=("second",))
    first.start()
    time.sleep(0.1)
    second.start()
    first.join(timeout=10)
    second.join(timeout=10)
    assert str(results["first"]).startswith("cus_") and results["second"] == 409
    assert len(emu.objects("customer")) == 1
