"""Two dbt targets sharing one Stripe account (dev and CI, a common setup) keep two states: two
ledgers, in two state schemas. An object one state created must never be adopted by the other
through its tag (the tag names only the sync and the key): the other target would update, replace or
archive it, while the first target's ledger still says `synced`. Every object the tool creates also
carries its state's marker (`metadata.dbt_stripe_sync_state`), and adoption refuses another state's.

The two states are made with `vars: {dbt_stripe_sync: {state_schema: …}}`, which is what two
targets differ by (their schemas); the marker hashes warehouse type, database and state schema."""

from __future__ import annotations

import json

import pytest
import stripe

pytestmark = pytest.mark.timeout(300)

SYNCS = ("-s", "stripe_products", "stripe_prices")


def _state(dbt_project, name: str) -> tuple[str, str]:
    """The vars naming state schema `<schema>_<name>` (dropped with the test's schemas)."""
    schema = f"{dbt_project.schema}_{name}"
    if schema not in dbt_project.extra_schemas:
        dbt_project.extra_schemas.append(schema)
    return "--vars", json.dumps({"dbt_stripe_sync": {"state_schema": schema}})


def _ledger_ids(dbt_project, name: str, sync: str) -> set[str]:
    table = f"{dbt_project.schema}_{name}.stripe_sync_ledger"
    return {r[0] for r in dbt_project.query(f"select stripe_id from {table} where sync_name = '{sync}'")}


def _price_writes(emu) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emu.requests() if r["path"].startswith("/v1/prices")]


def _second_target_data(dbt_project) -> None:
    """The other target's rows differ: its basic plan costs more (a replace if it adopted dev's)."""
    prices = dbt_project.read_seed("raw_prices")
    dbt_project.write_seed(
        "raw_prices",
        [{**p, "unit_amount": "1200"} if p["price_key"] == "basic_monthly" else p for p in prices],
    )
    dbt_project.build()


def test_a_second_state_does_not_adopt_or_archive_the_first_states_prices(dbt_project):
    emu = dbt_project.emulator
    proc = dbt_project.sync("run", *SYNCS, *_state(dbt_project, "dev"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dev = {p["id"]: p for p in emu.objects("price")}
    assert len(dev) == 4
    _second_target_data(dbt_project)
    emu.clear_requests()
    proc = dbt_project.sync("run", *SYNCS, *_state(dbt_project, "ci"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the CI state creates its own four prices and touches none of dev's (no archive, no update)
    writes = [w for w in _price_writes(emu) if w[0] != "GET"]
    assert writes == [("POST", "/v1/prices")] * 4, writes
    now = {p["id"]: p for p in emu.objects("price")}
    assert all(now[pid]["active"] for pid in dev)  # dev's prices are all live
    ci_ids = _ledger_ids(dbt_project, "ci", "stripe_prices")
    assert ci_ids.isdisjoint(dev) and len(ci_ids) == 4

    assert _ledger_ids(dbt_project, "dev", "stripe_prices") == set(dev)  # dev's ledger still true
    markers = {p["metadata"].get("dbt_stripe_sync_state") for p in dev.values()}
    assert len(markers) == 1 and None not in markers  # one short, non-secret marker of the dev state
    (marker,) = markers
    assert len(marker) == 12
    assert all(now[pid]["metadata"]["dbt_stripe_sync_state"] not in ("", marker) for pid in ci_ids)
    # the user's own metadata is untouched beside the two tags
    assert all(
        set(p["metadata"]) == {"price_key", "dbt_stripe_sync", "dbt_stripe_sync_state"} for p in dev.values()
    )


def test_objects_without_a_marker_are_adopted_as_before(dbt_project):
    """Objects created before the marker existed carry none: a state with an empty ledger adopts them
    by tag (no duplicate), as it always did."""
    emu = dbt_project.emulator
    proc = dbt_project.sync("run", *SYNCS, *_state(dbt_project, "old"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    client = stripe.StripeClient("sk_test_dssintegration", base_addresses={"api": emu.url})
    old = [p["id"] for p in emu.objects("price")]
    for pid in old:  # as an older version left them: the tag only
        client.v1.prices.update(pid, {"metadata": {"dbt_stripe_sync_state": ""}})
    emu.clear_requests()
    proc = dbt_project.sync("run", *SYNCS, *_state(dbt_project, "new"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [w for w in _price_writes(emu) if w[0] == "POST"] == []  # adopted: nothing created
    assert _ledger_ids(dbt_project, "new", "stripe_prices") == set(old)
