"""Customers through the real SDK: happy paths and Stripe's errors."""

from __future__ import annotations

import pytest
import stripe

from dbt_stripe_sync.emulator import Emulator


def test_create_retrieve_update_delete(client: stripe.StripeClient) -> None:
    created = client.v1.customers.create(
        params={
            "email": "ada@example.com",
            "name": "Ada",
            "metadata": {"dbt_id": "1"},
            "address": {"city": "Paris"},
        }
    )
    assert created.id.startswith("cus_")
    assert created.object == "customer"
    assert created.livemode is False
    assert isinstance(created.created, int)
    assert created.address is not None and created.address.city == "Paris"

    fetched = client.v1.customers.retrieve(created.id)
    assert fetched.email == "ada@example.com"
    assert fetched.metadata.to_dict() == {"dbt_id": "1"}

    updated = client.v1.customers.update(created.id, params={"name": "Ada L.", "metadata": {"tier": "gold"}})
    assert updated.name == "Ada L."
    assert updated.metadata.to_dict() == {"dbt_id": "1", "tier": "gold"}

    deleted = client.v1.customers.delete(created.id)
    assert deleted.deleted is True and deleted.id == created.id
    # Stripe keeps answering for a deleted customer with a `deleted` stub ...
    assert client.v1.customers.retrieve(created.id).deleted is True
    # ... but it cannot be updated any more.
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.update(created.id, params={"name": "x"})
    assert err.value.http_status == 404 and err.value.code == "resource_missing"


def test_list_filters_by_exact_email_newest_first(client: stripe.StripeClient) -> None:
    first = client.v1.customers.create(params={"email": "same@example.com"})
    second = client.v1.customers.create(params={"email": "same@example.com"})
    client.v1.customers.create(params={"email": "SAME@example.com"})
    page = client.v1.customers.list(params={"email": "same@example.com"})
    assert [c.id for c in page.data] == [second.id, first.id]
    assert page.object == "list" and page.url == "/v1/customers" and page.has_more is False


def test_retrieve_missing_customer_is_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.retrieve("cus_doesnotexist")
    assert err.value.http_status == 404
    assert err.value.code == "resource_missing"
    assert "No such customer: 'cus_doesnotexist'" in str(err.value.user_message)


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"favourite_colour": "blue"}, "parameter_unknown", "favourite_colour"),
        ({"address": {"planet": "Mars"}}, "parameter_unknown", "address[planet]"),
        ({"balance": "lots"}, "parameter_invalid_integer", "balance"),
        ({"tax_exempt": "sometimes"}, "parameter_invalid_enum", "tax_exempt"),
        ({"address": "Paris"}, "parameter_invalid_hash", "address"),
        ({"preferred_locales": {"a": "b"}}, "parameter_invalid_array", "preferred_locales"),
        (
            {"invoice_settings": {"custom_fields": [{"name": "n"}]}},
            "parameter_missing",
            "invoice_settings[custom_fields][0][value]",
        ),
    ],
)
def test_contract_errors_come_from_the_sdk_types(
    client: stripe.StripeClient, emu: Emulator, params: dict, code: str, param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create(params=params)
    assert (err.value.http_status, err.value.code, err.value.param) == (400, code, param)
    assert emu.objects("customer") == []


def test_metadata_rules(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"metadata": {"a": "1", "b": "2"}})
    assert client.v1.customers.update(customer.id, params={"metadata": {"a": ""}}).metadata.to_dict() == {
        "b": "2"
    }
    assert client.v1.customers.update(customer.id, params={"metadata": ""}).metadata.to_dict() == {}
    too_many = {f"k{i}": "v" for i in range(51)}
    bad = [{"k" * 41: "v"}, {"a[b": "v"}, {"k": "v" * 501}, too_many]
    for metadata in bad:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.customers.update(customer.id, params={"metadata": metadata})
        assert err.value.http_status == 400
    # 50 keys is fine, and a 51st through a merge is not.
    client.v1.customers.update(customer.id, params={"metadata": {f"k{i}": "v" for i in range(50)}})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(customer.id, params={"metadata": {"one_more": "v"}})


def test_search_by_email_and_metadata(client: stripe.StripeClient) -> None:
    a = client.v1.customers.create(params={"email": "a@example.com", "metadata": {"dbt_id": "42"}})
    client.v1.customers.create(params={"email": "b@example.com", "metadata": {"dbt_id": "43"}})
    found = client.v1.customers.search(params={"query": "metadata['dbt_id']:'42'"})
    assert found.object == "search_result" and [c.id for c in found.data] == [a.id]
    both = client.v1.customers.search(params={"query": "email:'a@example.com' OR email:'b@example.com'"})
    assert len(both.data) == 2
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.search(params={"query": "colour:'red'"})
    assert err.value.http_status == 400 and err.value.param == "query"


def test_empty_string_unsets_a_nullable_field(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"name": "Ada", "phone": "+331"})
    assert client.v1.customers.update(customer.id, params={"phone": ""}).phone is None


def test_authentication(emu: Emulator, client_factory) -> None:
    make_client = client_factory
    for key in ("not-a-key", "sk_test_"):
        with pytest.raises(stripe.AuthenticationError) as err:
            make_client(emu.url, key=key).v1.customers.list()
        assert err.value.http_status == 401
    with pytest.raises(stripe.AuthenticationError):
        make_client(emu.url, key="sk_live_abc").v1.customers.list()
    make_client(emu.url, key="rk_test_abc").v1.customers.list()
