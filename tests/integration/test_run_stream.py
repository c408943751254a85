"""`run` streams a large sync (issue #10): its diff is read, planned and sent a chunk at a time, and it
does what `plan` predicted and what a whole-diff run does — the same writes, the same reads, every row
once. Here every model streams (threshold 0) in chunks of 2 rows, checkpointed 2 writes at a time."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.scenarios import rekey_rejects_and_creates

pytestmark = pytest.mark.timeout(300)
SEL = ("-s", "stripe_customers")
STREAMED = {"stream_min_rows": 0}  # every model streams, however small
SMALL_BATCHES = ("--vars", json.dumps({"dbt_stripe_sync": {**STREAMED, "batch_size": 2}}))


@pytest.fixture
def streamed(monkeypatch) -> list[int]:
    """Diffs read in chunks of 2 rows; returns the number of parts each streamed sync planned (counted
    around the real planner, which runs unchanged)."""
    from dbt_stripe_sync import run_stream

    monkeypatch.setattr("dbt_stripe_sync.diff.CHUNK_ROWS", 2)
    parts: list[int] = []
    real = run_stream.planned_parts

    def counted(*args, **kwargs):
        parts.append(0)
        for part in real(*args, **kwargs):
            parts[-1] += 1
            yield part

    monkeypatch.setattr(run_stream, "planned_parts", counted)
    return parts


def _calls(emu) -> list[tuple[str, str]]:
    """(method, path with ids as {id}) of every API request, sorted: writes in flight go in any order."""
    return sorted((r["method"], re.sub(r"/cus_\w+", "/{id}", r["path"])) for r in emu.requests())


def _run(project, tmp_path, name: str) -> dict:
    out = tmp_path / f"{name}.json"
    proc = project.sync("run", *SEL, *SMALL_BATCHES, "--output", str(out))
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (summary,) = json.loads(out.read_text())["syncs"]
    return summary


def test_a_streamed_run_does_what_its_plan_predicted_and_each_row_once(dbt_project, tmp_path, streamed):
    emu = dbt_project.emulator
    first = _run(dbt_project, tmp_path, "first")
    assert streamed == [4]  # 5 rows: 3 chunks of the diff, then the re-keys' part
    assert first["counts"]["created"] == 5
    assert _calls(emu).count(("POST", "/v1/customers")) == 5
    before = dbt_project.ledger("stripe_customers")

    rekey_rejects_and_creates(dbt_project)

    plan_file = tmp_path / "plan.json"
    assert dbt_project.sync("plan", *SEL, "--output", str(plan_file)).returncode == 1  # rejects: exit 1
    (plan,) = json.loads(plan_file.read_text())["plans"]
    emu.clear_requests()
    summary = _run(dbt_project, tmp_path, "second")
    assert len(streamed) == 2 and streamed[1] >= 5

    counts = summary["counts"]
    predicted = plan["counts"]
    assert (
        (counts["created"], counts["updated"], counts["rejected"])
        == (
            predicted["create"],
            predicted["update"],
            predicted["reject"],
        )
        == (4, 2, 2)
    )
    # the account listed once for the whole sync (not once per chunk), then one write per change
    assert _calls(emu) == sorted(
        [("GET", "/v1/customers")] + [("POST", "/v1/customers")] * 4 + [("POST", "/v1/customers/{id}")] * 2
    )
    ledger = dbt_project.ledger("stripe_customers")
    status = {k: e["status"] for k, e in ledger.items()}
    assert status == {
        **{k: "synced" for k in ["1", "3", "4", "5", "6", "9", "10", "11", "12"]},
        "2": "deleted",
    } | {
        "7": "rejected",
        "8": "rejected",
    }
    # re-keyed: row 12 now owns row 2's customer, which was updated, never deleted
    assert ledger["12"]["stripe_id"] == ledger["2"]["stripe_id"] == before["2"]["stripe_id"]
    # every customer in Stripe is one model row's, once
    emails = [c["email"] for c in emu.objects("customer")]
    assert len(emails) == len(set(emails)) == 5 + 4

    emu.clear_requests()  # nothing changed: a streamed no-op run sends nothing
    again = _run(dbt_project, tmp_path, "third")
    assert again["counts"]["created"] == again["counts"]["updated"] == 0
    assert [r for r in emu.requests() if r["method"] != "GET"] == []
    assert len(streamed) == 3


def test_a_streamed_sync_whose_deletes_might_trip_the_guard_is_planned_whole_and_blocked(
    dbt_project, tmp_path, streamed
):
    """The delete guard needs every delete counted before anything is sent: a streamed sync checks it
    against an upper bound first, and when that could trip, plans whole — blocked, nothing sent."""
    assert dbt_project.sync("run", *SEL, "--vars", json.dumps({"dbt_stripe_sync": STREAMED})).returncode == 0
    assert streamed == [4]
    rows = dbt_project.read_seed("raw_customers")
    rows[0]["city"] = "Paris"  # a change that would be sent ...
    dbt_project.write_seed("raw_customers", rows[:1])  # ... while 4 of 5 rows leave: 80 % > 50 %
    dbt_project.build()
    emu = dbt_project.emulator
    emu.clear_requests()
    proc = dbt_project.sync("run", *SEL, "--vars", json.dumps({"dbt_stripe_sync": STREAMED}))
    assert proc.returncode != 0
    assert "max_delete_fraction" in proc.stdout and "nothing was sent for this model" in proc.stdout
    assert [r for r in emu.requests() if r["method"] != "GET"] == []
    assert streamed == [4]  # the second run was planned whole


@pytest.mark.parametrize("point", ["after_send#7"])  # sent, not recorded: the hard case
def test_a_streamed_run_killed_mid_send_finishes_with_each_row_once(dbt_project, point):
    """A streamed sync killed while its chunks are being sent: the next run finishes the writes left
    pending (same idempotency keys) and plans the rows not reached; one customer per row."""
    base = dbt_project.read_seed("raw_customers")[0]
    n = 30
    dbt_project.write_seed(
        "raw_customers", [{**base, "user_id": str(100 + i), "email": f"s{i}@example.com"} for i in range(n)]
    )
    dbt_project.build()
    v = ("--vars", json.dumps({"dbt_stripe_sync": {**STREAMED, "batch_size": 3}}))
    killed = dbt_project.sync("run", *SEL, *v, env={"DBT_STRIPE_SYNC_CRASH_AT": point})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    done = dbt_project.sync("run", *SEL, *v)
    assert done.returncode == 0, done.stdout + done.stderr
    emu = dbt_project.emulator
    emails = sorted(c["email"] for c in emu.objects("customer"))
    assert emails == sorted(f"s{i}@example.com" for i in range(n))  # each row once, none lost
    ledger = dbt_project.ledger("stripe_customers")
    assert {e["status"] for e in ledger.values()} == {"synced"} and len(ledger) == n
    assert len({e["stripe_id"] for e in ledger.values()}) == n
    emu.clear_requests()
    assert dbt_project.sync("run", *SEL, *v).returncode == 0
    assert [r for r in emu.requests() if r["method"] != "GET"] == []


def test_two_streamed_syncs_send_together_each_row_once(dbt_project, tmp_path, streamed):
    """Customers and products (independent: one wave) both stream, two diff cursors open at once and
    ledger commits in between; every row of each becomes one object."""
    base = dbt_project.read_seed("raw_customers")[0]
    dbt_project.write_seed(
        "raw_customers", [{**base, "user_id": str(200 + i), "email": f"t{i}@example.com"} for i in range(9)]
    )
    products = dbt_project.read_seed("raw_products")
    extra = [{**products[0], "product_key": f"two{i}", "product_id": f"prod_dss_two{i}"} for i in range(7)]
    dbt_project.write_seed("raw_products", [*products, *extra])
    dbt_project.build()
    proc = dbt_project.sync("run", "-s", "stripe_customers", "stripe_products", *SMALL_BATCHES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(streamed) == 2 and min(streamed) >= 4  # both streamed, in several chunks
    emu = dbt_project.emulator
    assert sorted(c["email"] for c in emu.objects("customer")) == sorted(
        f"t{i}@example.com" for i in range(9)
    )
    assert sorted(p["id"] for p in emu.objects("product")) == sorted(
        [p["product_id"] for p in products] + [p["product_id"] for p in extra]
    )
    posts = [r["path"] for r in emu.requests() if r["method"] == "POST"]
    assert posts.count("/v1/customers") == 9 and posts.count("/v1/products") == len(products) + 7
