"""The request log, object dumps, reset and the `/_emulator/*` HTTP endpoints."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import stripe

from dbt_stripe_sync.emulator import Emulator


def _http(emu: Emulator, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{emu.url}{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_every_request_is_recorded(client: stripe.StripeClient, emu: Emulator) -> None:
    customer = client.v1.customers.create(params={"email": "log@example.com"})
    client.v1.customers.retrieve(customer.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve("cus_missing")
    log = emu.requests()
    assert [(r["method"], r["path"], r["status"], r["object_id"]) for r in log] == [
        ("POST", "/v1/customers", 200, customer.id),
        ("GET", f"/v1/customers/{customer.id}", 200, customer.id),
        ("GET", "/v1/customers/cus_missing", 404, "cus_missing"),
    ]
    assert log[0]["params"] == {"email": "log@example.com"}
    assert log[0]["idempotency_key"]  # the SDK sends one on every POST
    over_http = _http(emu, "GET", "/_emulator/requests")
    assert [(r["method"], r["path"], r["status"]) for r in over_http] == [
        (r["method"], r["path"], r["status"]) for r in log
    ]


def test_secrets_are_never_recorded(client: stripe.StripeClient, emu: Emulator) -> None:
    client.v1.customers.create(params={"metadata": {"note": "sk_test_leaked123"}})
    raw = json.dumps(emu.requests())
    assert "sk_test_" not in raw
    assert emu.requests()[0]["params"]["metadata"]["note"] == "[redacted]"


def test_object_dumps_reset_and_clear(client: stripe.StripeClient, emu: Emulator) -> None:
    product = client.v1.products.create(params={"name": "P"})
    client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 1})
    assert [p["id"] for p in emu.objects("product")] == [product.id]
    over_http = _http(emu, "GET", "/_emulator/objects/price")
    assert len(over_http) == 1 and over_http[0]["product"] == product.id
    with pytest.raises(KeyError):
        emu.objects("charge")
    emu.clear_requests()
    assert emu.requests() == [] and len(emu.objects("price")) == 1
    assert _http(emu, "POST", "/_emulator/reset") == {"reset": True}
    assert emu.objects("product") == [] and emu.objects("price") == [] and emu.requests() == []


def test_faults_can_be_set_over_http(emu: Emulator) -> None:
    settings = _http(emu, "POST", "/_emulator/faults", {"latency_ms": 3, "error_rate": 0.25})
    assert settings["latency_ms"] == 3 and settings["error_rate"] == 0.25
    assert _http(emu, "GET", "/_emulator/faults")["error_rate"] == 0.25
    with pytest.raises(urllib.error.HTTPError) as err:
        _http(emu, "POST", "/_emulator/faults", {"nonsense": 1})
    assert err.value.code == 400


def test_every_response_has_a_request_id(emu: Emulator) -> None:
    for path, key in (("/v1/customers", "sk_test_x"), ("/v1/customers", None), ("/v1/nothing", "sk_test_x")):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        request = urllib.request.Request(f"{emu.url}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                request_id, status = response.headers["Request-Id"], response.status
        except urllib.error.HTTPError as exc:
            request_id, status = exc.headers["Request-Id"], exc.code
            body = json.loads(exc.read())
            assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"]
        assert request_id.startswith("req_"), (path, status)
    assert [r["status"] for r in emu.requests()] == [200, 401, 404]


def test_unknown_endpoint_is_stripes_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.raw_request("get", "/v1/charges")
    assert err.value.http_status == 404
    assert "Unrecognized request URL" in str(err.value.user_message)
