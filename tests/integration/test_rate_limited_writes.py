"""A write Stripe refused with 429 `rate_limit` after every retry was not applied (the limiter answers
before anything is done): it is reported as not sent and planned again by the next run, not left
`pending` with an "outcome unknown" message (attack2 finding 10). The emulator's per-endpoint budget
is set to one request, so the first `POST /v1/customers` passes and every other one is refused."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(300)

FEW_RETRIES = ("--vars", json.dumps({"dbt_stripe_sync": {"max_retries": 1}}))


def _posts(emu) -> list[tuple[str, int]]:
    return [(r["path"], r["status"]) for r in emu.requests() if r["method"] == "POST"]


def test_a_rate_limited_create_is_not_sent_not_unknown(dbt_project):
    emu = dbt_project.emulator
    rows = len(dbt_project.read_seed("raw_customers"))
    emu.set_faults(endpoint_rate_limit=0.0001)  # one token per endpoint, refilled after hours
    proc = dbt_project.sync("run", "-s", "stripe_customers", *FEW_RETRIES)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    posts = _posts(emu)
    assert posts.count(("/v1/customers", 200)) == 1
    assert posts.count(("/v1/customers", 429)) == (rows - 1) * 2  # each refused once, retried once
    assert "outcome in Stripe is unknown" not in proc.stdout and "left pending" not in proc.stdout
    assert "not sent: Stripe refused it for its rate limit" in proc.stdout
    ledger = dbt_project.ledger("stripe_customers")
    assert sorted(e["status"] for e in ledger.values()) == ["failed"] * (rows - 1) + ["synced"]
    outcomes = dbt_project.query(
        f"select outcome, count(*) from {dbt_project.state_schema}.stripe_sync_changelog group by outcome"
    )
    assert dict(outcomes) == {"ok": 1, "failed": rows - 1}

    emu.set_faults(endpoint_rate_limit=25)
    emu.clear_requests()
    proc = dbt_project.sync("run", "-s", "stripe_customers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _posts(emu) == [("/v1/customers", 200)] * (rows - 1)  # the others, once each
    assert len(emu.objects("customer")) == rows
