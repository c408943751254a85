"""Exactly-once under SIGKILL: a sync killed anywhere, then run again, leaves every row synced once.

The kill points are named in dbt_stripe_sync/crashpoints.py; each leaves a different state behind
(nothing written, a pending batch, a write applied in Stripe but not recorded, a half-written
outcome batch inside its transaction, ...). The end state must equal a run that never crashed.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from dbt_stripe_sync.crashpoints import ENV as CRASH_ENV
from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(400)
SMALL_BATCHES = "{dbt_stripe_sync: {batch_size: 2, concurrency: 2}}"


def _assert_exactly_once(project) -> None:
    rows = project.read_seed("raw_customers")
    live = [c for c in project.emulator.objects("customer") if not c.get("deleted")]
    per_email = Counter(c["email"] for c in live)
    assert per_email == Counter(r["email"] for r in rows), "a customer is missing or duplicated"
    ledger = project.ledger("stripe_customers")
    by_email = {c["email"]: c["id"] for c in live}
    assert {k: (v["status"], v["stripe_id"]) for k, v in ledger.items()} == {
        r["user_id"]: ("synced", by_email[r["email"]]) for r in rows
    }
    # the Stripe side carries the model's data, not a half-applied version of it
    for r in rows:
        customer = next(c for c in live if c["email"] == r["email"])
        assert customer["name"] == r["full_name"]
        assert customer["metadata"]["dbt_stripe_sync"] == f"stripe_customers:{r['user_id']}"


def _crash(project, point: str, *extra: str) -> None:
    proc = project.sync("-s", "stripe_customers", "--vars", SMALL_BATCHES, *extra, env={CRASH_ENV: point})
    assert proc.returncode == -signal.SIGKILL, f"expected a SIGKILL at {point}:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize(
    "point",
    [
        "after_diff",
        "after_plan",
        "after_checkpoint#1",
        "after_checkpoint#2",
        "after_send#1",
        "after_send#2",
        "after_send#5",
        "mid_record#1",
        "mid_record#2",
        "after_record#1",
        "before_runs_row",
    ],
)
def test_kill_during_first_sync_then_rerun(dbt_project, warehouse, point):
    dbt_project.build()
    _crash(dbt_project, point)
    rerun = dbt_project.sync("-s", "stripe_customers", "--vars", SMALL_BATCHES)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_exactly_once(dbt_project)
    dbt_project.emulator.clear_requests()
    again = dbt_project.sync("-s", "stripe_customers")
    assert again.returncode == 0 and api_writes(dbt_project.emulator.requests()) == []


def test_kill_while_recovering_then_rerun(dbt_project):
    """Two crashes in a row: the second one while re-sending the first one's pending writes."""
    dbt_project.build()
    _crash(dbt_project, "after_send#3")
    _crash(dbt_project, "after_recover")
    rerun = dbt_project.sync("-s", "stripe_customers", "--vars", SMALL_BATCHES)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_exactly_once(dbt_project)


def test_kill_during_updates_then_rerun(dbt_project):
    dbt_project.build()
    assert dbt_project.sync("-s", "stripe_customers").returncode == 0
    rows = dbt_project.read_seed("raw_customers")
    for r in rows:
        r["full_name"] = r["full_name"] + " Jr."
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    _crash(dbt_project, "after_send#3")
    dbt_project.emulator.clear_requests()
    rerun = dbt_project.sync("-s", "stripe_customers", "--vars", SMALL_BATCHES)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_exactly_once(dbt_project)
    # only the updates whose outcome was lost or never sent go out again: never a create
    assert all(w["path"] != "/v1/customers" for w in api_writes(dbt_project.emulator.requests()))


def test_pending_create_after_idempotency_keys_expired_is_adopted_not_duplicated(dbt_project):
    """Stripe forgets idempotency keys after 24 h; a pending create older than that is first looked
    up by its metadata tag, so re-sending it cannot make a second customer."""
    dbt_project.build()
    _crash(dbt_project, "after_send#3")
    dbt_project.emulator.expire_idempotency_keys()
    rerun = dbt_project.sync(
        "-s", "stripe_customers", "--vars", "{dbt_stripe_sync: {batch_size: 2, idempotency_window_hours: 0}}"
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_exactly_once(dbt_project)


def test_sigkill_mid_way_by_the_clock(dbt_project):
    """A kill from outside at an arbitrary moment (not a crash point): after some writes reached Stripe."""
    dbt_project.build()
    emu = dbt_project.emulator
    emu.set_faults(latency_ms=300)
    proc = dbt_project.popen_sync(
        "-s", "stripe_customers", "--vars", "{dbt_stripe_sync: {batch_size: 2, concurrency: 1}}"
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(api_writes(emu.requests())) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert 2 <= len(api_writes(emu.requests())) < len(dbt_project.read_seed("raw_customers"))
    emu.set_faults(latency_ms=0)
    rerun = dbt_project.sync("-s", "stripe_customers")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_exactly_once(dbt_project)


def test_writes_whose_outcome_stayed_unknown_are_resent_with_the_same_key(dbt_project):
    """Every response lost after Stripe applied the write, and retries exhausted: the rows stay
    pending (not failed), so the next run's re-send replays instead of creating a second customer."""
    emu = dbt_project.emulator
    emu.set_faults(drop_rate=1.0)
    first = dbt_project.sync("-s", "stripe_customers", "--vars", "{dbt_stripe_sync: {max_retries: 0}}")
    assert first.returncode == 1
    assert "left pending" in first.stdout
    assert {v["status"] for v in dbt_project.ledger("stripe_customers").values()} == {"pending"}
    assert len(emu.objects("customer")) == 5  # applied, though no response came back
    emu.set_faults(drop_rate=0.0)
    rerun = dbt_project.sync("-s", "stripe_customers")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_exactly_once(dbt_project)


def test_kill_after_a_subscription_items_update_then_rerun(dbt_project):
    """An items update is rebuilt from a fresh read of the subscription when re-sent; Stripe refuses
    the old key with new parameters, and the update goes again under a fresh key (it sets values)."""
    chain = ("-s", "stripe_customers +stripe_subscriptions")
    assert dbt_project.sync(*chain).returncode == 0
    subs = dbt_project.read_seed("raw_subscriptions")
    subs[1]["addon_price_key"], subs[1]["addon_quantity"] = "pro_seat", "3"  # s2 gains an add-on item
    subs[0]["addon_quantity"] = "6"
    for sub in subs:
        sub["deal_note"] = "renewed"
    dbt_project.write_seed("raw_subscriptions", subs)
    dbt_project.build()
    proc = dbt_project.sync("-s", "stripe_subscriptions", env={CRASH_ENV: "after_send#2"})
    assert proc.returncode == -signal.SIGKILL
    rerun = dbt_project.sync(*chain)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    ledger = dbt_project.ledger("stripe_subscriptions")
    prices = {p["id"]: p for p in dbt_project.emulator.objects("price")}
    for sub in subs:
        stripe_sub = next(
            s
            for s in dbt_project.emulator.objects("subscription")
            if s["id"] == ledger[sub["subscription_key"]]["stripe_id"]
        )
        items = sorted(
            (
                prices[i["price"]["id"] if isinstance(i["price"], dict) else i["price"]]["nickname"],
                i["quantity"],
            )
            for i in stripe_sub["items"]["data"]
        )
        expected = [
            (n, int(q))
            for n, q in [
                (
                    {"basic_monthly": "Basic monthly", "pro_monthly": "Pro monthly"}[sub["price_key"]],
                    sub["quantity"],
                ),
            ]
        ]
        if sub["addon_price_key"]:
            expected.append(("Pro extra seat", int(sub["addon_quantity"])))
        assert items == sorted(expected), sub["subscription_key"]
    assert {v["status"] for v in ledger.values()} == {"synced"}
    for stripe_sub in dbt_project.emulator.objects("subscription"):
        assert stripe_sub["metadata"]["deal"] == "renewed"
