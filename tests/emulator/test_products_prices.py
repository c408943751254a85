"""Products and prices through the real SDK."""

from __future__ import annotations

import pytest
import stripe


def test_product_lifecycle_with_caller_chosen_id(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"id": "plan_gold", "name": "Gold", "metadata": {"tier": "g"}})
    assert (product.id, product.object, product.active, product.name) == (
        "plan_gold",
        "product",
        True,
        "Gold",
    )
    assert client.v1.products.retrieve("plan_gold").name == "Gold"
    updated = client.v1.products.update("plan_gold", params={"active": False, "description": "Best"})
    assert updated.active is False and updated.description == "Best"
    assert [p.id for p in client.v1.products.list(params={"active": False}).data] == ["plan_gold"]
    assert client.v1.products.list(params={"active": True}).data == []
    assert client.v1.products.delete("plan_gold").deleted is True
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.products.retrieve("plan_gold")
    assert err.value.http_status == 404 and err.value.code == "resource_missing"


def test_product_errors(client: stripe.StripeClient) -> None:
    client.v1.products.create(params={"id": "dup", "name": "A"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.products.create(params={"id": "dup", "name": "B"})
    assert err.value.code == "resource_already_exists"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.products.create(params={"description": "no name"})
    assert (err.value.code, err.value.param) == ("parameter_missing", "name")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.products.update("dup", params={"name": ""})
    assert err.value.code == "parameter_invalid_empty"


def test_product_with_prices_cannot_be_deleted(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "P"})
    client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 100})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.products.delete(product.id)
    assert err.value.http_status == 400
    assert "cannot be deleted because it has one or more user-created prices" in str(err.value.user_message)
    assert client.v1.products.retrieve(product.id).id == product.id


def test_product_search(client: stripe.StripeClient) -> None:
    client.v1.products.create(params={"name": "Gold plan", "metadata": {"dbt_id": "g"}})
    client.v1.products.create(params={"name": "Silver plan", "active": False})
    assert [p.name for p in client.v1.products.search(params={"query": "active:'true'"}).data] == [
        "Gold plan"
    ]
    assert len(client.v1.products.search(params={"query": "name~'plan'"}).data) == 2


def test_price_create_shapes(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "P"})
    one_time = client.v1.prices.create(params={"product": product.id, "currency": "EUR", "unit_amount": 1250})
    assert one_time.id.startswith("price_") and one_time.object == "price"
    assert (one_time.type, one_time.currency, one_time.unit_amount, one_time.recurring) == (
        "one_time",
        "eur",
        1250,
        None,
    )
    assert one_time.product == product.id and one_time.active is True
    monthly = client.v1.prices.create(
        params={
            "product_data": {"name": "Inline"},
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
            "lookup_key": "inline_monthly",
        }
    )
    assert monthly.type == "recurring" and monthly.recurring is not None
    assert (monthly.recurring.interval, monthly.recurring.interval_count) == ("month", 1)
    inline_product = client.v1.products.retrieve(str(monthly.product))
    assert inline_product.name == "Inline"
    expanded = client.v1.prices.retrieve(monthly.id, params={"expand": ["product"]})
    assert expanded.product.name == "Inline"  # type: ignore[union-attr]


def test_price_errors(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(params={"product": "prod_missing", "currency": "usd", "unit_amount": 1})
    assert (err.value.http_status, err.value.code, err.value.param) == (404, "resource_missing", "product")
    product = client.v1.products.create(params={"name": "P"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(params={"product": product.id, "unit_amount": 1})
    assert (err.value.code, err.value.param) == ("parameter_missing", "currency")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create(
            params={
                "product": product.id,
                "currency": "usd",
                "unit_amount": 1,
                "recurring": {"interval": "fortnight"},
            }
        )
    assert (err.value.code, err.value.param) == ("parameter_invalid_enum", "recurring[interval]")


def test_price_update_allows_only_stripes_mutable_fields(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "P"})
    price = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 100})
    updated = client.v1.prices.update(
        price.id,
        params={
            "active": False,
            "nickname": "old",
            "lookup_key": "k1",
            "metadata": {"a": "b"},
            "tax_behavior": "exclusive",
        },
    )
    assert (updated.active, updated.nickname, updated.lookup_key, updated.tax_behavior) == (
        False,
        "old",
        "k1",
        "exclusive",
    )
    for field, value in (("unit_amount", 5), ("currency", "eur"), ("product", product.id)):
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.prices.update(price.id, params={field: value})
        assert (err.value.code, err.value.param) == ("parameter_unknown", field)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.update(price.id, params={"tax_behavior": "inclusive"})
    assert not hasattr(client.v1.prices, "delete")


def test_price_lookup_keys_are_unique_unless_transferred(client: stripe.StripeClient) -> None:
    product = client.v1.products.create(params={"name": "P"})
    base = {"product": product.id, "currency": "usd", "unit_amount": 100}
    first = client.v1.prices.create(params={**base, "lookup_key": "std"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create(params={**base, "lookup_key": "std"})
    second = client.v1.prices.create(params={**base, "lookup_key": "std", "transfer_lookup_key": True})
    assert client.v1.prices.retrieve(first.id).lookup_key is None
    assert [p.id for p in client.v1.prices.list(params={"lookup_keys": ["std"]}).data] == [second.id]


def test_price_list_filters_and_search(client: stripe.StripeClient) -> None:
    a = client.v1.products.create(params={"name": "A"})
    b = client.v1.products.create(params={"name": "B"})
    pa = client.v1.prices.create(params={"product": a.id, "currency": "usd", "unit_amount": 1})
    pb = client.v1.prices.create(
        params={"product": b.id, "currency": "usd", "unit_amount": 2, "recurring": {"interval": "year"}}
    )
    client.v1.prices.update(pa.id, params={"active": False})
    assert [p.id for p in client.v1.prices.list(params={"product": a.id}).data] == [pa.id]
    assert [p.id for p in client.v1.prices.list(params={"active": True}).data] == [pb.id]
    assert [p.id for p in client.v1.prices.list(params={"type": "recurring"}).data] == [pb.id]
    found = client.v1.prices.search(params={"query": f"product:'{b.id}' AND active:'true'"})
    assert [p.id for p in found.data] == [pb.id]
