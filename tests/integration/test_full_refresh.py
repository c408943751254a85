"""`run --full-refresh`: every selected row re-sent as an update of the object it already synced to
(Stripe drift is overwritten), nothing created twice, nothing deleted; `plan --full-refresh` shows it."""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections import Counter

SYNCS = ("stripe_customers", "stripe_products", "stripe_prices")


def _drift_customer_name(emulator, customer_id: str) -> None:
    """Someone edits a customer in the Stripe dashboard."""
    body = urllib.parse.urlencode({"name": "Edited In Dashboard"}).encode()
    req = urllib.request.Request(f"{emulator.url}/v1/customers/{customer_id}", data=body, method="POST")
    req.add_header("Authorization", "Bearer sk_test_dssintegration")
    urllib.request.urlopen(req, timeout=30).read()


def _api(requests) -> Counter:
    """(method, object kind, create|update) -> count, for /v1/ calls."""
    counts: Counter = Counter()
    for r in requests:
        parts = r["path"].split("/")
        if parts[1] != "v1":
            continue
        kind = "create" if len(parts) == 3 else "update"
        counts[(r["method"], parts[2], kind if r["method"] == "POST" else "-")] += 1
    return counts


def test_full_refresh_updates_every_synced_row_and_creates_or_deletes_nothing(dbt_project):
    proc = dbt_project.sync("run", "-s", *SYNCS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    emulator = dbt_project.emulator
    customers = {c["email"]: c for c in emulator.objects("customer")}
    rows = dbt_project.read_seed("raw_customers")
    _drift_customer_name(emulator, customers[rows[0]["email"]]["id"])
    # a row leaves the model: a normal run (delete: delete) would delete it; a full refresh must not
    dbt_project.write_seed("raw_customers", rows[1:])
    dbt_project.build()
    n_products = len(dbt_project.read_seed("raw_products"))
    n_prices = len(dbt_project.read_seed("raw_prices"))

    emulator.clear_requests()
    proc = dbt_project.sync("plan", "--full-refresh", "-s", *SYNCS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.lstrip().startswith("Full refresh:")
    assert not [r for r in emulator.requests() if r["method"] in {"POST", "DELETE"}]

    emulator.clear_requests()
    proc = dbt_project.sync("run", "--full-refresh", "-s", *SYNCS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _api(emulator.requests()) == Counter(
        {
            ("POST", "customers", "update"): len(rows) - 1,
            ("POST", "products", "update"): n_products,
            ("POST", "prices", "update"): n_prices,
        }
    )
    after = {c["email"]: c for c in emulator.objects("customer")}
    assert len(after) == len(rows) and not any(c.get("deleted") for c in after.values())
    assert after[rows[0]["email"]]["name"] == "Edited In Dashboard"  # left the model: untouched
    assert after[rows[1]["email"]]["name"] == rows[1]["full_name"]
    # the whole payload went, not only changed fields (nothing had changed for these rows)
    sent = [r for r in emulator.requests() if r["path"] == f"/v1/customers/{after[rows[1]['email']]['id']}"]
    assert len(sent) == 1

    # a second full refresh re-sends again (a new write, not a replay of the first one's key)
    emulator.clear_requests()
    proc = dbt_project.sync("run", "--full-refresh", "-s", "stripe_customers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _api(emulator.requests()) == Counter({("POST", "customers", "update"): len(rows) - 1})

    # and a normal run afterwards has nothing left to do but the delete the model asks for
    emulator.clear_requests()
    proc = dbt_project.sync("run", "-s", *SYNCS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _api(emulator.requests()) == Counter({("DELETE", "customers", "-"): 1})


def test_full_refresh_restores_a_field_edited_in_stripe(dbt_project):
    proc = dbt_project.sync("run", "-s", "stripe_customers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = dbt_project.read_seed("raw_customers")[0]
    customer = next(c for c in dbt_project.emulator.objects("customer") if c["email"] == row["email"])
    _drift_customer_name(dbt_project.emulator, customer["id"])
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0  # the model did not change
    edited = next(c for c in dbt_project.emulator.objects("customer") if c["id"] == customer["id"])
    assert edited["name"] == "Edited In Dashboard"
    assert dbt_project.sync("run", "--full-refresh", "-s", "stripe_customers").returncode == 0
    restored = next(c for c in dbt_project.emulator.objects("customer") if c["id"] == customer["id"])
    assert restored["name"] == row["full_name"]
