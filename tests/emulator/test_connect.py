"""Stripe Connect in the emulator: each connected account is a world of its own (IDs, lists, search,
idempotency keys, rate limits), an unknown account is refused as Stripe refuses it, and the request
log names the account of every request. Through the real SDK (`stripe_account` option)."""

from __future__ import annotations

import pytest
import stripe

from dbt_stripe_sync.emulator import Emulator
from dbt_stripe_sync.emulator.cli import add_arguments, emulator_from_args

A, B = "acct_1Alpha", "acct_1Beta"


@pytest.fixture
def connected(emu: Emulator) -> Emulator:
    emu.add_account(A)
    emu.add_account(B)
    return emu


def test_each_account_keeps_its_own_objects(connected: Emulator, client: stripe.StripeClient) -> None:
    in_a = client.v1.customers.create(params={"email": "ada@example.com"}, options={"stripe_account": A})
    in_b = client.v1.customers.create(params={"email": "ada@example.com"}, options={"stripe_account": B})
    client.v1.products.create(params={"id": "prod_same", "name": "A's"}, options={"stripe_account": A})
    client.v1.products.create(params={"id": "prod_same", "name": "B's"}, options={"stripe_account": B})

    assert in_a.id != in_b.id
    listed = client.v1.customers.list(params={"email": "ada@example.com"}, options={"stripe_account": A})
    assert [c.id for c in listed.data] == [in_a.id]
    assert client.v1.customers.list().data == []  # the platform's own account holds nothing
    assert client.v1.products.retrieve("prod_same", options={"stripe_account": B}).name == "B's"
    with pytest.raises(stripe.InvalidRequestError):  # A's customer does not exist in B
        client.v1.customers.retrieve(in_a.id, options={"stripe_account": B})
    found = client.v1.customers.search(
        params={"query": "email:'ada@example.com'"}, options={"stripe_account": B}
    )
    assert [c.id for c in found.data] == [in_b.id]
    assert [c["id"] for c in connected.objects("customer", account=A)] == [in_a.id]
    assert connected.objects("customer") == []


def test_idempotency_keys_are_per_account(connected: Emulator, client: stripe.StripeClient) -> None:
    key = {"idempotency_key": "same-key"}
    first = client.v1.customers.create(params={"name": "x"}, options={"stripe_account": A, **key})
    other = client.v1.customers.create(params={"name": "y"}, options={"stripe_account": B, **key})
    again = client.v1.customers.create(params={"name": "x"}, options={"stripe_account": A, **key})
    assert other.id != first.id  # another account: another request, not a replay nor a conflict
    assert again.id == first.id
    assert [r["replayed"] for r in connected.requests()] == [False, False, True]


def test_unknown_account_is_refused_as_stripe_does(connected: Emulator, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.PermissionError) as info:
        client.v1.customers.create(params={"name": "x"}, options={"stripe_account": "acct_1Nobody"})
    err = info.value
    assert err.http_status == 403
    assert err.json_body["error"]["code"] == "account_invalid"
    assert err.user_message == (
        "The provided key 'sk_test_****r123' does not have access to account 'acct_1Nobody' (or that "
        "account does not exist). Application access may have been revoked."
    )
    assert connected.objects("customer") == []
    assert all(not connected.objects("customer", account=a) for a in (A, B))


def test_request_log_names_each_requests_account(connected: Emulator, client: stripe.StripeClient) -> None:
    client.v1.customers.create(params={"name": "x"}, options={"stripe_account": A})
    client.v1.customers.list()
    with pytest.raises(stripe.PermissionError):
        client.v1.customers.list(options={"stripe_account": "acct_1Nobody"})
    assert [(r["account"], r["status"]) for r in connected.requests()] == [
        (A, 200),
        (None, 200),
        ("acct_1Nobody", 403),
    ]


def test_rate_limits_are_per_account(emulator_factory, client_factory) -> None:
    emu = emulator_factory(rate_limit=2, endpoint_rate_limit=None, accounts=[A, B])
    emu.faults.clock = lambda: 500.0  # the rate limits' clock stands still: no timing assumption
    client = client_factory(emu.url)
    for account in (A, A, B, B):  # two per account fit each account's budget of 2/s
        client.v1.customers.create(params={"name": "x"}, options={"stripe_account": account})
    with pytest.raises(stripe.RateLimitError):  # a third in A, with no time to refill, does not
        client.v1.customers.create(params={"name": "x"}, options={"stripe_account": A})
    assert [r["status"] for r in emu.requests()] == [200, 200, 200, 200, 429]


def test_accounts_are_declared_by_flag_method_and_admin_endpoint(emu: Emulator) -> None:
    import argparse
    import json
    import urllib.request

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    from_flags = emulator_from_args(parser.parse_args(["--account", A, "--account", B]))
    assert sorted(from_flags.accounts) == [A, B]
    with pytest.raises(SystemExit):
        parser.parse_args(["--account", "seller-1"])  # not an account ID: refused at start
    with pytest.raises(ValueError, match="not a Stripe account ID"):
        emu.add_account("acct_")
    req = urllib.request.Request(
        f"{emu.url}/_emulator/accounts", data=json.dumps({"id": A}).encode(), method="POST"
    )
    with urllib.request.urlopen(req) as resp:
        assert json.load(resp) == {"id": A}
    with urllib.request.urlopen(f"{emu.url}/_emulator/accounts") as resp:
        assert json.load(resp) == [A]
