"""A plan you can trust (issue #11): chained syncs planned as the run applies them, the whole plan in
--output, only changed leaf fields, keys in natural order, exit 1 when rejects are predicted."""

from __future__ import annotations

import json

import pytest

from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(300)


def test_first_plan_of_a_chain_predicts_exactly_what_the_run_does(dbt_project, tmp_path):
    emu = dbt_project.emulator
    plan_file, report_file = tmp_path / "plan.json", tmp_path / "report.json"
    planned = dbt_project.sync("plan", "--output", str(plan_file))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert api_writes(emu.requests()) == []
    plans = {p["model"]: p for p in json.loads(plan_file.read_text())["plans"]}
    # references to rows created earlier in the same run resolve, as the run will resolve them
    assert plans["stripe_prices"]["counts"]["reject"] == 0
    assert plans["stripe_subscriptions"]["counts"]["reject"] == 0
    s1 = next(r for r in plans["stripe_subscriptions"]["rows"] if r["key"] == "s1")
    assert s1["fields"]["items[0].price"]["after"] == "(after stripe_prices row pro_monthly is created)"
    assert s1["fields"]["customer"]["after"] == "(after stripe_customers row 1 is created)"
    assert "items[0].price: (unset) -> '(after stripe_prices row pro_monthly is created)'" in planned.stdout
    # --output holds every row, not the terminal's sample
    for model, plan in plans.items():
        assert len(plan["rows"]) == sum(plan["counts"].values()), model

    ran = dbt_project.sync("run", "--output", str(report_file))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = {s["model"]: s for s in json.loads(report_file.read_text())["syncs"]}
    assert set(report) == set(plans)
    for model, plan in plans.items():
        assert report[model]["counts"]["created"] == plan["counts"]["create"], model
        assert report[model]["counts"]["rejected"] == plan["counts"]["reject"] == 0, model


def test_plan_shows_changed_leaves_only_in_natural_key_order_and_exits_1_on_rejects(dbt_project, tmp_path):
    rows = dbt_project.read_seed("raw_customers")
    extra = [
        {**rows[4], "user_id": str(n), "email": f"user{n}@example.com", "full_name": f"User {n}"}
        for n in range(6, 12)
    ]
    dbt_project.write_seed("raw_customers", rows + extra)
    dbt_project.build()
    plan_file = tmp_path / "plan.json"
    first = dbt_project.sync("plan", "-s", "stripe_customers", "--output", str(plan_file), "--sample", "3")
    assert first.returncode == 0, first.stdout + first.stderr
    (plan,) = json.loads(plan_file.read_text())["plans"]
    assert [r["key"] for r in plan["rows"]] == [str(n) for n in range(1, 12)]  # 1, 2, ... 10, 11
    assert [r["key"] for r in plan["sample"]] == ["1", "2", "3"]
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0

    rows = dbt_project.read_seed("raw_customers")
    rows[0]["city"] = "Paris"  # the address goes whole to Stripe, but only the city changes
    rows[9]["email"] = "user10-at-example.com"  # predicted reject
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    second = dbt_project.sync("plan", "-s", "stripe_customers", "--output", str(plan_file))
    assert second.returncode == 1, second.stdout + second.stderr  # a reject is predicted
    assert "address.city: 'London' -> 'Paris'" in second.stdout
    assert "address.country" not in second.stdout and "address.line1" not in second.stdout
    (plan,) = json.loads(plan_file.read_text())["plans"]
    update = next(r for r in plan["rows"] if r["action"] == "update")
    assert update["fields"] == {"address.city": {"before": "London", "after": "Paris"}}
    assert [r["key"] for r in plan["rows"] if r["action"] == "reject"] == ["10"]
