"""The error side of each read operation (and a few writes) for every object, through the SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

Call = Callable[[stripe.StripeClient], Any]

SERVICES = ["customers", "products", "prices", "subscriptions", "invoices", "invoice_items", "quotes"]
SEARCHABLE = ["customers", "products", "prices", "subscriptions", "invoices"]
MISSING_IDS = {
    "customers": "cus_missing",
    "products": "prod_missing",
    "prices": "price_missing",
    "subscriptions": "sub_missing",
    "invoices": "in_missing",
    "invoice_items": "ii_missing",
    "quotes": "qt_missing",
}


@pytest.mark.parametrize("service", SERVICES)
def test_retrieve_missing_is_404(client: stripe.StripeClient, service: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        getattr(client.v1, service).retrieve(MISSING_IDS[service])
    assert (err.value.http_status, err.value.code) == (404, "resource_missing")


@pytest.mark.parametrize("service", SERVICES)
def test_list_rejects_unknown_filters_and_bad_limits(client: stripe.StripeClient, service: str) -> None:
    listing = getattr(client.v1, service).list
    with pytest.raises(stripe.InvalidRequestError) as err:
        listing(params={"colour": "red"})
    assert (err.value.code, err.value.param) == ("parameter_unknown", "colour")
    with pytest.raises(stripe.InvalidRequestError) as err:
        listing(params={"limit": "many"})
    assert (err.value.code, err.value.param) == ("parameter_invalid_integer", "limit")
    assert listing().data == []


@pytest.mark.parametrize("service", SEARCHABLE)
def test_search_rejects_unsupported_fields_and_missing_query(
    client: stripe.StripeClient, service: str
) -> None:
    search = getattr(client.v1, service).search
    with pytest.raises(stripe.InvalidRequestError) as err:
        search(params={"query": "colour:'red'"})
    assert (err.value.http_status, err.value.param) == (400, "query")
    with pytest.raises(stripe.InvalidRequestError) as err:
        search(params={})
    assert (err.value.code, err.value.param) == ("parameter_missing", "query")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.v1.customers.delete("cus_missing"),
        lambda c: c.v1.products.delete("prod_missing"),
        lambda c: c.v1.subscriptions.cancel("sub_missing"),
        lambda c: c.v1.invoices.delete("in_missing"),
        lambda c: c.v1.invoices.finalize_invoice("in_missing"),
        lambda c: c.v1.invoices.void_invoice("in_missing"),
        lambda c: c.v1.invoice_items.delete("ii_missing"),
        lambda c: c.v1.quotes.finalize_quote("qt_missing"),
        lambda c: c.v1.quotes.cancel("qt_missing"),
        lambda c: c.v1.prices.update("price_missing", params={"active": False}),
    ],
)
def test_writes_to_missing_objects_are_404(client: stripe.StripeClient, call: Call) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        call(client)
    assert (err.value.http_status, err.value.code) == (404, "resource_missing")


def test_canceling_twice_is_refused(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    product = client.v1.products.create(params={"name": "p"})
    price = client.v1.prices.create(
        params={"product": product.id, "currency": "usd", "unit_amount": 1, "recurring": {"interval": "week"}}
    )
    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}]})
    client.v1.subscriptions.cancel(sub.id)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.cancel(sub.id)
    assert err.value.http_status == 400
