"""Logs and summaries (issue #11): `--log-format json` makes every stderr line a JSON object, `-v`
lines name the sync, the row key and Stripe's request ID (never the key), and a rerun shows rows
still rejected by an earlier run instead of `rejected 0`."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(300)
SEL = ("-s", "stripe_customers")


def test_json_logs_name_sync_row_and_request_and_never_the_api_key(dbt_project):
    emu = dbt_project.emulator
    key = "sk_test_" + "Zq8" * 10
    result = dbt_project.sync("run", *SEL, "-v", "--log-format", "json", env={"STRIPE_API_KEY": key})
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line is a JSON object
    assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    ops = [r for r in records if r["logger"] == "dbt_stripe_sync.changelog"]
    posts = {r["id"]: r for r in emu.requests() if r["method"] == "POST"}
    assert len(ops) == 5 == len(posts)
    for op in ops:
        assert op["sync"] == "stripe_customers" and op["key"] in {"1", "2", "3", "4", "5"}
        assert op["request_id"] in posts and op["request_id"] in op["msg"]
        assert f"stripe_customers row {op['key']}: create ok" in op["msg"]
    calls = [r for r in records if r["logger"] == "dbt_stripe_sync.gateway.client"]
    assert len(calls) == len(emu.requests()) == 6
    assert all(c["sync"] == "stripe_customers" and c["request_id"] for c in calls)
    assert sorted(c["key"] for c in calls if c["msg"].startswith("Stripe POST")) == ["1", "2", "3", "4", "5"]

    rows = dbt_project.read_seed("raw_customers")
    rows[2]["full_name"] = "Alan Mathison Turing"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    emu.clear_requests()
    text = dbt_project.sync("run", *SEL, "-v", env={"STRIPE_API_KEY": key})
    assert text.returncode == 0 and key not in text.stderr
    (update,) = emu.requests()
    call = f"Stripe POST {update['path']} -> 200 (stripe_customers, request {update['id']}) [row 3]"
    assert call in text.stderr
    assert f"stripe_customers row 3: update ok {update['object_id']} (request {update['id']})" in text.stderr
    assert key not in result.stderr + result.stdout and key[8:16] not in result.stderr

    usage = dbt_project.sync(
        "run", *SEL, "--log-format", "json", "--select", "no_such_model+", "--target", "nope"
    )
    assert usage.returncode == 2
    (error,) = [json.loads(line) for line in usage.stderr.splitlines()]
    assert error["level"] == "error" and error["msg"].startswith("error:")


def test_rerun_shows_rows_rejected_earlier_with_their_reason(dbt_project):
    rows = dbt_project.read_seed("raw_customers")
    rows[1]["email"] = "grace-at-example.com"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    first = dbt_project.sync("run", *SEL)
    assert first.returncode == 1
    rerun = dbt_project.sync("run", *SEL, "--no-progress")
    assert rerun.returncode == 1 and "[progress]" not in rerun.stderr
    line = next(x for x in rerun.stdout.splitlines() if x.startswith("stripe_customers "))
    assert line.split()[2:] == ["partial", "0", "0", "0", "0", "0", "1", "0", "4"]  # rejected 1, not 0
    assert "stripe_customers row 2: (rejected earlier) email: 'grace-at-example.com'" in rerun.stdout
    assert "stripe_customers: stripe_customers:" not in rerun.stdout


def test_duplicate_key_message_names_its_model_once(dbt_project):
    rows = dbt_project.read_seed("raw_customers")
    rows[1]["user_id"] = rows[0]["user_id"]
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    result = dbt_project.sync("run", *SEL)
    assert result.returncode == 1
    assert "stripe_customers: primary_key `user_id` must be unique" in result.stdout
    assert "stripe_customers: stripe_customers:" not in result.stdout
