"""List pagination across more than 100 objects, and search with paging and indexing delay."""

from __future__ import annotations

import time

import pytest
import stripe

from dbt_stripe_sync.emulator import Emulator

N = 230


@pytest.fixture
def many_customers(client: stripe.StripeClient) -> list[str]:
    """ids of N customers, oldest first."""
    return [client.v1.customers.create(params={"metadata": {"i": str(i)}}).id for i in range(N)]


@pytest.mark.timeout(60)
def test_pages_newest_first_across_more_than_100(
    client: stripe.StripeClient, many_customers: list[str]
) -> None:
    newest_first = list(reversed(many_customers))
    first = client.v1.customers.list(params={"limit": 100})
    assert [c.id for c in first.data] == newest_first[:100] and first.has_more is True
    second = client.v1.customers.list(params={"limit": 100, "starting_after": first.data[-1].id})
    assert [c.id for c in second.data] == newest_first[100:200] and second.has_more is True
    third = client.v1.customers.list(params={"limit": 100, "starting_after": second.data[-1].id})
    assert [c.id for c in third.data] == newest_first[200:] and third.has_more is False
    # The SDK's auto-pagination walks every page exactly once.
    walked = [c.id for c in client.v1.customers.list(params={"limit": 100}).auto_paging_iter()]
    assert walked == newest_first
    assert len(client.v1.customers.list().data) == 10  # default limit


def test_ending_before_pages_backwards(client: stripe.StripeClient, many_customers: list[str]) -> None:
    newest_first = list(reversed(many_customers))
    pivot = newest_first[150]
    before = client.v1.customers.list(params={"limit": 100, "ending_before": pivot})
    assert [c.id for c in before.data] == newest_first[50:150] and before.has_more is True
    start = client.v1.customers.list(params={"limit": 100, "ending_before": newest_first[20]})
    assert [c.id for c in start.data] == newest_first[:20] and start.has_more is False


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_limit_must_be_1_to_100(client: stripe.StripeClient, limit: int) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list(params={"limit": limit})
    assert (err.value.http_status, err.value.param) == (400, "limit")


def test_cursor_must_exist(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list(params={"starting_after": "cus_gone"})
    assert (err.value.http_status, err.value.code) == (404, "resource_missing")


def test_search_pages_with_next_page(client: stripe.StripeClient) -> None:
    for i in range(25):
        client.v1.products.create(params={"name": f"Plan {i}", "metadata": {"batch": "b1"}})
    client.v1.products.create(params={"name": "Other", "metadata": {"batch": "b2"}})
    page = client.v1.products.search(params={"query": "metadata['batch']:'b1'", "limit": 10})
    seen = [p.id for p in page.data]
    while page.has_more:
        assert page.next_page
        page = client.v1.products.search(
            params={"query": "metadata['batch']:'b1'", "limit": 10, "page": page.next_page}
        )
        seen.extend(p.id for p in page.data)
    assert len(seen) == len(set(seen)) == 25
    walked = client.v1.products.search(params={"query": "metadata['batch']:'b1'"}).auto_paging_iter()
    assert len(list(walked)) == 25


@pytest.mark.parametrize(
    "query",
    ["email:'a' AND name:'b' OR phone:'c'", "email:unquoted", "email", "metadata['k']>'3'", "email~'ab'"],
)
def test_bad_queries_are_400(client: stripe.StripeClient, query: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.search(params={"query": query})
    assert (err.value.http_status, err.value.param) == (400, "query")


def test_search_operators(client: stripe.StripeClient) -> None:
    a = client.v1.customers.create(params={"email": "Ada@Example.com", "name": "Ada Lovelace"})
    b = client.v1.customers.create(params={"email": "bob@example.com", "name": "Bob"})
    ids = lambda q: {c.id for c in client.v1.customers.search(params={"query": q}).data}  # noqa: E731
    assert ids("email:'ada@example.com'") == {a.id}  # exact match ignores case
    assert ids("name~'love'") == {a.id}
    assert ids("-name:'Bob'") == {a.id}
    assert ids(f"created>={a.created}") == {a.id, b.id}
    assert ids("phone:null") == {a.id, b.id}


def test_search_lags_behind_writes(emulator_factory, client_factory) -> None:
    emu: Emulator = emulator_factory(search_delay_s=0.4)
    client = client_factory(emu.url)
    customer = client.v1.customers.create(params={"email": "late@example.com", "metadata": {"v": "1"}})
    query = {"query": "email:'late@example.com'"}
    assert client.v1.customers.search(params=query).data == []  # not indexed yet
    assert client.v1.customers.retrieve(customer.id).id == customer.id  # but retrievable
    time.sleep(0.45)
    (found,) = client.v1.customers.search(params=query).data
    assert found.metadata.to_dict() == {"v": "1"}
    client.v1.customers.update(customer.id, params={"metadata": {"v": "2"}})
    assert client.v1.customers.search(params=query).data[0].metadata.to_dict() == {"v": "1"}  # stale
    time.sleep(0.45)
    assert client.v1.customers.search(params=query).data[0].metadata.to_dict() == {"v": "2"}
