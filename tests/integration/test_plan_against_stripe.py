"""`plan --against stripe` (issue #11): before-values read from Stripe, drift reported, reads batched
where Stripe allows it (products), and nothing written."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(300)


def _edit_in_stripe(emu, path: str, params: dict[str, str]) -> None:
    """A change made outside the tool (the Stripe dashboard, say)."""
    request = urllib.request.Request(
        emu.url + path,
        data=urllib.parse.urlencode(params).encode(),
        headers={"Authorization": "Bearer sk_test_dashboard"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_plan_against_stripe_shows_real_before_values_and_drift(dbt_project, tmp_path):
    emu = dbt_project.emulator
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0
    ids = {k: v["stripe_id"] for k, v in dbt_project.ledger("stripe_customers").items()}
    _edit_in_stripe(emu, f"/v1/customers/{ids['1']}", {"name": "Ada King", "address[city]": "Ockham"})
    _edit_in_stripe(emu, f"/v1/customers/{ids['2']}", {"phone": "+1 000 555 0000"})
    rows = dbt_project.read_seed("raw_customers")
    rows[0]["city"] = "Paris"
    rows[1]["full_name"] = "Grace Brewster Hopper"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()

    emu.clear_requests()
    plan_file = tmp_path / "plan.json"
    result = dbt_project.sync("plan", "-s", "stripe_customers", "--against", "stripe", "-o", str(plan_file))
    assert result.returncode == 0, result.stdout + result.stderr
    reads = emu.requests()
    assert sorted(r["path"] for r in reads) == sorted(f"/v1/customers/{ids[k]}" for k in ("1", "2"))
    assert api_writes(reads) == []

    (plan,) = json.loads(plan_file.read_text())["plans"]
    row1 = next(r for r in plan["rows"] if r["key"] == "1")
    assert row1["fields"]["address.city"] == {"before": "Ockham", "after": "Paris", "ledger": "London"}
    assert "address.city: 'Ockham' -> 'Paris'  (drift: last synced 'London')" in result.stdout
    drift = [w for w in plan["warnings"] if w.startswith("drift:")]
    assert any("row 1: name is 'Ada King' in Stripe but was synced as 'Ada Lovelace'" in w for w in drift)
    assert any("row 2: phone is '+1 000 555 0000' in Stripe" in w for w in drift)

    # the ledger view (the default) still shows what the tool last sent, with no read at all
    emu.clear_requests()
    default = dbt_project.sync("plan", "-s", "stripe_customers")
    assert "address.city: 'London' -> 'Paris'" in default.stdout and emu.requests() == []


def test_plan_against_stripe_reads_products_in_one_batched_call(dbt_project):
    emu = dbt_project.emulator
    assert dbt_project.sync("run", "-s", "stripe_products").returncode == 0
    rows = dbt_project.read_seed("raw_products")
    for row in rows:
        row["description"] = row["description"] + " (new)"
    dbt_project.write_seed("raw_products", rows)
    dbt_project.build()
    emu.clear_requests()
    result = dbt_project.sync("plan", "-s", "stripe_products", "--against", "stripe")
    assert result.returncode == 0, result.stdout + result.stderr
    (read,) = emu.requests()  # every changed product in one GET /v1/products?ids[]=...
    assert read["method"] == "GET" and read["path"] == "/v1/products"
    assert "description: 'For small teams' -> 'For small teams (new)'" in result.stdout
