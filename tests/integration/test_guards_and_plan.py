"""Guards against surprise deletes, and `plan`: field-level, exact, and writing nothing anywhere."""

from __future__ import annotations

import json

import pytest

from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(300)
SEL = ("-s", "stripe_customers")


def _state_exists(project) -> bool:
    rows = project.query(
        f"select count(*) from information_schema.schemata where schema_name = '{project.state_schema}'"
    )
    return rows[0][0] > 0


def test_plan_writes_nothing_and_shows_fields(dbt_project, tmp_path):
    emu = dbt_project.emulator
    plan_file = tmp_path / "plan.json"
    result = dbt_project.sync("plan", *SEL, "--output", str(plan_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert api_writes(emu.requests()) == []
    assert not _state_exists(dbt_project)  # not even the ledger tables
    plan = json.loads(plan_file.read_text())["plans"][0]
    assert plan["model"] == "stripe_customers" and plan["counts"]["create"] == 5
    first = next(r for r in plan["sample"] if r["key"] == "1")
    assert first["fields"]["address.city"] == {"before": None, "after": "London"}

    assert dbt_project.sync(*SEL).returncode == 0
    rows = dbt_project.read_seed("raw_customers")
    rows[2]["full_name"] = "Alan Mathison Turing"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    emu.clear_requests()
    ledger_before = dbt_project.ledger("stripe_customers")
    result = dbt_project.sync("plan", *SEL, "--output", str(plan_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "name: 'Alan Turing' -> 'Alan Mathison Turing'" in result.stdout
    plan = json.loads(plan_file.read_text())["plans"][0]
    assert plan["counts"]["update"] == 1 and plan["unchanged"] == 4
    assert plan["sample"][0]["fields"] == {"name": {"before": "Alan Turing", "after": "Alan Mathison Turing"}}
    assert emu.requests() == []  # an update needs no look-up, and plan sends nothing
    assert dbt_project.ledger("stripe_customers") == ledger_before


def test_max_delete_fraction_blocks_then_allows(dbt_project, tmp_path):
    emu = dbt_project.emulator
    assert dbt_project.sync(*SEL).returncode == 0
    rows = dbt_project.read_seed("raw_customers")
    rows[0]["full_name"] = "Ada King"  # an update the blocked run does not send either
    dbt_project.write_seed("raw_customers", rows[:2])  # 3 of 5 would go: 60% > the default 50%
    dbt_project.build()
    emu.clear_requests()
    plan = dbt_project.sync("plan", *SEL, "--output", str(tmp_path / "plan.json"))
    assert "BLOCKED" in plan.stdout and plan.returncode == 1
    blocked = dbt_project.sync(*SEL, "--output", str(tmp_path / "run.json"))
    assert blocked.returncode == 1
    assert "would delete 3 of its 5 Stripe objects (60%)" in blocked.stdout
    assert api_writes(emu.requests()) == []
    # plan --output is the predicted run report: blocked, and nothing counted (nothing is sent)
    planned, done = (json.loads((tmp_path / f"{n}.json").read_text())["syncs"] for n in ("plan", "run"))
    assert [(s["status"], s["counts"]) for s in planned] == [(s["status"], s["counts"]) for s in done]
    counted = {k: v for k, v in planned[0]["counts"].items() if k not in ("api_calls", "unchanged")}
    assert planned[0]["status"] == "blocked" and not any(counted.values()), counted

    allowed = dbt_project.sync(*SEL, "--vars", "{dbt_stripe_sync: {max_delete_fraction: 0.8}}")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert [w["method"] for w in api_writes(emu.requests())] == ["POST"] + ["DELETE"] * 3  # deletes last
    assert len([c for c in emu.objects("customer") if not c.get("deleted")]) == 2


def test_empty_model_never_deletes_unless_allowed(dbt_project):
    emu = dbt_project.emulator
    assert dbt_project.sync(*SEL).returncode == 0
    dbt_project.write_seed("raw_customers", [], columns=dbt_project.read_seed("raw_customers")[0].keys())
    dbt_project.build()
    emu.clear_requests()
    blocked = dbt_project.sync(*SEL, "--vars", "{dbt_stripe_sync: {max_delete_fraction: 1.0}}")
    assert blocked.returncode == 1
    assert "is empty" in blocked.stdout and "allow_empty_model_deletes" in blocked.stdout
    assert api_writes(emu.requests()) == []
    allowed = dbt_project.sync(
        *SEL, "--vars", "{dbt_stripe_sync: {max_delete_fraction: 1.0, allow_empty_model_deletes: true}}"
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert len(api_writes(emu.requests())) == 5


def test_model_whose_dbt_run_failed_is_skipped_with_a_warning(dbt_project):
    dbt_project.write_file(
        "models/stripe_customers.sql", "select * from {{ ref('raw_customers') }} where nope"
    )
    assert dbt_project.dbt("run", "-s", "stripe_customers", check=False).returncode != 0
    result = dbt_project.sync(*SEL)  # the relation from the last good run still exists
    assert "last dbt run failed" in result.stdout
    assert dbt_project.emulator.requests() == []


def test_settings_in_dbt_project_vars_take_effect(dbt_project):
    emu = dbt_project.emulator
    assert dbt_project.sync(*SEL).returncode == 0
    dbt_project.edit_schema_yml(
        "    api_key_env: STRIPE_API_KEY",
        "    api_key_env: STRIPE_API_KEY\n    max_delete_fraction: 0.2",
        "dbt_project.yml",
    )
    rows = dbt_project.read_seed("raw_customers")
    dbt_project.write_seed("raw_customers", rows[:3])  # 2 of 5 would go: 40% > 20%
    dbt_project.build()
    emu.clear_requests()
    blocked = dbt_project.sync(*SEL)
    assert blocked.returncode == 1 and "max_delete_fraction 20%" in blocked.stdout
    assert api_writes(emu.requests()) == []
