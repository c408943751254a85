"""The customer flow against localstripe, a Stripe fake we did not write: the same Stripe-side result
as against our emulator, step by step. A guard against building only for our own server's quirks."""

from __future__ import annotations

import pytest
import stripe

from dbt_stripe_sync.tagging import STATE_KEY
from tests.support.localstripe import localstripe

pytest.importorskip("localstripe")
pytestmark = pytest.mark.timeout(300)


def _customers(url: str) -> dict[str, dict]:
    client = stripe.StripeClient("sk_test_compare", base_addresses={"api": url}, max_network_retries=0)
    out = {}
    for obj in client.v1.customers.list(params={"limit": 100}).auto_paging_iter():
        c = obj.to_dict()
        if c.get("deleted"):
            continue
        out[c["email"]] = {
            "name": c.get("name"),
            "phone": c.get("phone"),
            "address": {k: v for k, v in (c.get("address") or {}).items() if v},
            "preferred_locales": list(c.get("preferred_locales") or []),
            # each server's ledger is its own state schema, so each marks its objects with its own state
            "metadata": {k: v for k, v in (c.get("metadata") or {}).items() if k != STATE_KEY},
            "marked": bool((c.get("metadata") or {}).get(STATE_KEY)),
        }
    return out


def test_customer_flow_gives_the_same_result_on_localstripe(dbt_project, tmp_path):
    with localstripe(tmp_path) as ls_url:
        servers = {  # each server gets its own ledger (a state schema unique to this test)
            name: (url, f"{{dbt_stripe_sync: {{state_schema: {dbt_project.schema}_{name}}}}}")
            for name, url in (("emulator", dbt_project.emulator.url), ("localstripe", ls_url))
        }
        dbt_project.extra_schemas += [f"{dbt_project.schema}_{name}" for name in servers]

        def sync_both() -> dict[str, dict]:
            seen = {}
            for name, (url, state) in servers.items():
                result = dbt_project.sync(
                    "-s", "stripe_customers", "--vars", state, env={"STRIPE_API_BASE": url}
                )
                assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
                seen[name] = _customers(url)
            assert seen["emulator"] == seen["localstripe"]
            return seen["emulator"]

        rows = dbt_project.read_seed("raw_customers")
        dbt_project.build()
        created = sync_both()
        assert set(created) == {r["email"] for r in rows}
        assert created["ada@example.com"]["metadata"]["plan"] == "enterprise"

        rows[1]["full_name"] = "Rear Admiral Grace Hopper"
        rows[0]["city"] = "Cambridge"
        removed = rows.pop(4)
        dbt_project.write_seed("raw_customers", rows)
        dbt_project.build()
        updated = sync_both()
        assert updated["grace@example.com"]["name"] == "Rear Admiral Grace Hopper"
        assert updated["ada@example.com"]["address"]["city"] == "Cambridge"
        assert removed["email"] not in updated
