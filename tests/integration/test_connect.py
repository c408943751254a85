"""Issue #12: Stripe Connect — a marketplace syncing into three connected accounts, through the real
dbt CLI, the real warehouse and the emulator (which keeps each account apart and logs the
Stripe-Account of every request)."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from tests.support.dbt_project import DbtProject, api_writes, postgres_env

pytestmark = pytest.mark.timeout(300)

NORTH, SOUTH, EAST = "acct_1NorthBakery", "acct_1SouthCycles", "acct_1EastBooks"
SYNCS = ("mp_customers", "mp_products", "mp_prices", "mp_subscriptions")


@pytest.fixture(scope="session")
def marketplace_template(tmp_path_factory):
    return DbtProject.template(
        tmp_path_factory.mktemp("marketplace") / "project", "integration_tests/marketplace"
    )


@pytest.fixture
def market(tmp_path, warehouse: str, stripe_emulator, marketplace_template) -> DbtProject:
    env = {"STRIPE_API_KEY": "sk_test_dssconnect", "STRIPE_API_BASE": stripe_emulator.url}
    if warehouse == "duckdb":
        env.update({"DBT_TARGET": "duckdb", "DSS_DUCKDB_PATH": str(tmp_path / "project" / "market.duckdb")})
    else:
        env.update(postgres_env(f"t_{uuid.uuid4().hex[:10]}"))
    project = DbtProject.create(tmp_path / "project", env, marketplace_template)
    project.build()
    for account in (NORTH, SOUTH, EAST):
        stripe_emulator.add_account(account)
    project.emulator = stripe_emulator
    yield project
    project.drop_schemas()


def _ok(proc) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _calls(requests) -> Counter:
    """(account, method, path without ids) -> count."""
    out: Counter = Counter()
    for r in requests:
        parts = r["path"].split("/")
        out[(r["account"], r["method"], "/".join(parts[:3]) + ("/{id}" if len(parts) > 3 else ""))] += 1
    return out


def _ledger_accounts(project: DbtProject, sync: str) -> dict[str, tuple[str, str]]:
    rows = project.query(
        f"select source_key, stripe_account, stripe_id from {project.state_schema}.stripe_sync_ledger "
        f"where sync_name = '{sync}'"
    )
    return {k: (a, i) for k, a, i in rows}


def test_each_row_is_written_into_its_own_account_with_exact_calls(market):
    emu = market.emulator
    _ok(market.sync("-s", *SYNCS))

    calls = _calls(emu.requests())
    expected = Counter()
    for account, buyers in ((NORTH, 2), (SOUTH, 1), (EAST, 1)):
        # customers: one list of the (empty) account finds every email; one create per buyer
        expected[(account, "GET", "/v1/customers")] = 1
        expected[(account, "POST", "/v1/customers")] = buyers
        # products: one ids[] batch shows prod_mp_club does not exist yet in this account
        expected[(account, "GET", "/v1/products")] = 1
        expected[(account, "POST", "/v1/products")] = 1
        # prices and subscriptions: one tag look-up (first run), one create
        expected[(account, "GET", "/v1/prices")] = 1
        expected[(account, "POST", "/v1/prices")] = 1
        expected[(account, "GET", "/v1/subscriptions")] = 1
        expected[(account, "POST", "/v1/subscriptions")] = 1
    assert calls == expected  # nothing went to the platform account (None) or anywhere else

    # Each account holds exactly its own objects: the same email and the same product ID in two
    # accounts are two objects, and each price / subscription points inside its own account.
    for account, names in (
        (NORTH, {"Ada Lovelace", "Alan Turing"}),
        (SOUTH, {"Ada Lovelace"}),
        (EAST, {"Grace Hopper"}),
    ):
        assert {c["name"] for c in emu.objects("customer", account=account)} == names
        (product,) = emu.objects("product", account=account)
        assert product["id"] == "prod_mp_club"
        (price,) = emu.objects("price", account=account)
        assert price["product"] == "prod_mp_club"
        (sub,) = emu.objects("subscription", account=account)
        customer_ids = {c["id"] for c in emu.objects("customer", account=account)}
        assert sub["customer"] in customer_ids
        assert sub["items"]["data"][0]["price"]["id"] == price["id"]
    assert emu.objects("customer") == [] and emu.objects("product") == []  # the platform: untouched

    ledger = _ledger_accounts(market, "mp_customers")
    assert {k: a for k, (a, _) in ledger.items()} == {"b1": NORTH, "b2": SOUTH, "b3": EAST, "b4": NORTH}
    ada_north = next(c for c in emu.objects("customer", account=NORTH) if c["email"] == "ada@example.com")
    assert ledger["b1"][1] == ada_north["id"]

    emu.clear_requests()
    _ok(market.sync("-s", *SYNCS))
    assert emu.requests() == []  # nothing changed: not even a look-up


def test_updates_and_deletes_stay_in_the_rows_account(market):
    emu = market.emulator
    _ok(market.sync("-s", "mp_customers"))
    buyers = market.read_seed("raw_buyers")
    buyers = [b for b in buyers if b["buyer_key"] != "b3"]  # Grace leaves East Books
    buyers[0]["full_name"] = "Augusta Ada King"  # b1, North Bakery
    market.write_seed("raw_buyers", buyers)
    market.build()
    emu.clear_requests()

    _ok(market.sync("-s", "mp_customers"))
    writes = api_writes(emu.requests())
    assert [(w["account"], w["method"]) for w in writes] == [(NORTH, "POST"), (EAST, "DELETE")] or [
        (w["account"], w["method"]) for w in writes
    ] == [(EAST, "DELETE"), (NORTH, "POST")]
    assert len(emu.requests()) == 2  # no look-up: both rows are bound in the ledger
    assert {c["name"] for c in emu.objects("customer", account=NORTH)} == {"Augusta Ada King", "Alan Turing"}
    assert {c["name"] for c in emu.objects("customer", account=SOUTH)} == {"Ada Lovelace"}
    assert emu.objects("customer", account=EAST) == []


def test_a_row_whose_account_changes_is_rejected_and_nothing_moves(market):
    emu = market.emulator
    _ok(market.sync("-s", "mp_customers"))
    before = _ledger_accounts(market, "mp_customers")
    buyers = market.read_seed("raw_buyers")
    buyers[3]["seller_key"] = "south"  # b4 (Alan, North Bakery) now bought from South Cycles
    market.write_seed("raw_buyers", buyers)
    market.build()
    emu.clear_requests()

    proc = market.sync("-s", "mp_customers")
    assert proc.returncode == 1
    assert emu.requests() == []  # no look-up, no write in either account
    out = proc.stdout + proc.stderr
    assert "b4" in out and f"account changed from {NORTH} to {SOUTH}" in out
    assert "cannot move between accounts" in out
    ledger = market.ledger("mp_customers")
    assert ledger["b4"]["status"] == "rejected"
    assert _ledger_accounts(market, "mp_customers")["b4"] == before["b4"]  # still bound in North
    assert len(emu.objects("customer", account=SOUTH)) == 1


def test_bad_and_unknown_accounts_are_rejected_per_row(market):
    emu = market.emulator
    sellers = market.read_seed("raw_sellers")
    sellers[1]["stripe_account_id"] = "south-cycles"  # not an account ID
    sellers[2]["stripe_account_id"] = "acct_1NotConnected"  # well formed, but not connected
    market.write_seed("raw_sellers", sellers)
    market.build()

    plan = market.sync("plan", "-s", "mp_customers")
    assert (
        "b2" in plan.stdout and "'south-cycles'" in plan.stdout and "not a Stripe account ID" in plan.stdout
    )

    emu.clear_requests()  # plan looks up too (North's emails); the run is counted alone
    proc = market.sync("-s", "mp_customers")
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "'south-cycles', which is not a Stripe account ID" in out
    assert "does not have access to account 'acct_1NotConnected'" in out  # Stripe's own words
    calls = _calls(emu.requests())
    assert calls == Counter(
        {
            (NORTH, "GET", "/v1/customers"): 1,
            (NORTH, "POST", "/v1/customers"): 2,
            ("acct_1NotConnected", "GET", "/v1/customers"): 1,  # refused 403: not retried
        }
    )
    ledger = market.ledger("mp_customers")
    assert {k: v["status"] for k, v in ledger.items()} == {
        "b1": "synced",
        "b2": "rejected",
        "b3": "rejected",
        "b4": "synced",
    }


def test_plan_against_stripe_reads_each_row_in_its_own_account(market):
    """The same chosen product ID lives in three accounts: each changed row's before-values come from
    its own account's object, never the platform's (where it does not exist) nor another account's."""
    import stripe

    emu = market.emulator
    _ok(market.sync("-s", "mp_products"))
    client = stripe.StripeClient("sk_test_outside", base_addresses={"api": emu.url}, max_network_retries=0)
    client.v1.products.update(
        "prod_mp_club", params={"name": "Renamed in the dashboard"}, options={"stripe_account": SOUTH}
    )
    plans = market.read_seed("raw_plans")
    plans[1]["plan_name"] = "Bike care club"  # south_club
    market.write_seed("raw_plans", plans)
    market.build()
    emu.clear_requests()

    proc = market.sync("plan", "--against", "stripe", "-s", "mp_products")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not in Stripe any more" not in proc.stdout
    assert "'Renamed in the dashboard' -> 'Bike care club'" in proc.stdout  # South's object, read in South
    assert "name is 'Renamed in the dashboard' in Stripe, synced as 'Bike service club'" in proc.stdout
    reads = [(r["account"], r["method"], r["path"]) for r in emu.requests()]
    assert reads == [(SOUTH, "GET", "/v1/products")]  # one ids[] batch, in the row's account


def test_a_first_plan_of_the_chain_resolves_references_inside_each_account(market):
    """plan, before anything exists: prices name products and subscriptions name prices and buyers
    created earlier in the same run, in the row's own account — planned as creates, not rejects."""
    proc = market.sync("plan", "-s", *SYNCS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reject" not in proc.stdout
    assert "(after mp_products row south_club is created)" in proc.stdout
    assert "(after mp_prices row south_monthly is created)" in proc.stdout
    assert "(after mp_customers row b2 is created)" in proc.stdout  # Ada's customer in South Cycles

    # a price in North naming South's plan: South's product will exist, but not in North
    prices = market.read_seed("raw_plan_prices")
    prices.append({**prices[0], "price_key": "north_cross", "plan_key": "south_club"})
    market.write_seed("raw_plan_prices", prices)
    market.build()
    proc = market.sync("plan", "-s", *SYNCS)
    assert proc.returncode == 1
    rejects = [line for line in proc.stdout.splitlines() if line.strip().startswith("reject")]
    assert len(rejects) == 1 and "north_cross" in rejects[0]
