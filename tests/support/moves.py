"""A customer moving from one customers model to another, and `plan` checked against `run`: the
set-ups the takeover tests share (test_waves.py, test_bound_elsewhere.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def plan_and_run(project: Any, tmp_path: Path, *sel: str, code: int = 0) -> tuple[dict, dict]:
    """`plan --output`, then `run --output` of the same selection: each sync's (status, counts) from
    both, which must be equal (the README promises `plan` predicts the run), and the plan's JSON."""
    plan_file, run_file = tmp_path / "plan.json", tmp_path / "run.json"
    plan = project.sync("plan", *sel, "--output", str(plan_file))
    assert plan.returncode == code, plan.stdout + plan.stderr
    project.emulator.clear_requests()
    run = project.sync("run", *sel, "--output", str(run_file))
    assert run.returncode == code, run.stdout + run.stderr
    planned, done = json.loads(plan_file.read_text()), json.loads(run_file.read_text())
    outcome = {s["model"]: (s["status"], s["counts"]) for s in done["syncs"]}
    assert {s["model"]: (s["status"], s["counts"]) for s in planned["syncs"]} == outcome
    return planned, done


def plan_rows(planned: dict, model: str) -> list[dict]:
    return next(s["rows"] for s in planned["syncs"] if s["model"] == model)


def model_yml(name: str, object_: str, primary_key: str, match: str, fields: str, delete: str) -> str:
    """The schema YAML of one more synced model (`match` and `fields` as YAML flow mappings)."""
    return (
        f"version: 2\nmodels:\n  - name: {name}\n    config:\n      meta:\n        stripe_sync:\n"
        f"          object: {object_}\n          mode: upsert\n          primary_key: {primary_key}\n"
        f"          match: {match}\n          fields: {fields}\n          delete: {delete}\n"
    )


def leads_yml(name: str, delete: str = "delete") -> str:
    """A second customers model: leads matched to customers by email."""
    return model_yml(
        name, "customer", "lead_id", "{field: email, column: email}", "{name: full_name}", delete
    )


def ada_moves_to(dbt_project: Any, leads: str) -> tuple[tuple[str, ...], str]:
    """Both customer models synced, then Ada's row leaves stripe_customers and appears in `leads`
    (matched by email), the models rebuilt: the selection of both, and her customer's ID."""
    dbt_project.write_seed("raw_leads", [{"lead_id": "L9", "email": "zed@example.com", "full_name": "Zed"}])
    dbt_project.write_file(f"models/{leads}.sql", "select * from {{ ref('raw_leads') }}\n")
    dbt_project.write_file("models/leads.yml", leads_yml(leads))
    dbt_project.build()
    sel = ("-s", "stripe_customers", leads)
    assert dbt_project.sync("run", *sel).returncode == 0
    ada = dbt_project.ledger("stripe_customers")["1"]["stripe_id"]

    customers = dbt_project.read_seed("raw_customers")
    dbt_project.write_seed("raw_customers", [r for r in customers if r["user_id"] != "1"])
    dbt_project.write_seed(
        "raw_leads",
        [
            {"lead_id": "L9", "email": "zed@example.com", "full_name": "Zed"},
            {"lead_id": "L1", "email": "ada@example.com", "full_name": "Ada, Countess"},
        ],
    )
    dbt_project.build()
    return sel, ada


def both_bind_ada(dbt_project: Any, leads: str, delete: str = "delete") -> str:
    """stripe_customers synced, then a second customers model `leads` (delete: `delete`) whose row L1
    has Ada's email matches her customer: two live rows of two models on one customer. Her ID."""
    dbt_project.build()
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0
    ada = dbt_project.ledger("stripe_customers")["1"]["stripe_id"]
    dbt_project.write_seed(
        "raw_leads",
        [
            {"lead_id": "L1", "email": "ada@example.com", "full_name": "Ada Lovelace"},
            {"lead_id": "L9", "email": "zed@example.com", "full_name": "Zed"},
        ],
    )
    dbt_project.write_file(f"models/{leads}.sql", "select * from {{ ref('raw_leads') }}\n")
    dbt_project.write_file("models/leads.yml", leads_yml(leads, delete))
    dbt_project.build()
    assert dbt_project.sync("run", "-s", leads).returncode == 0
    assert dbt_project.ledger(leads)["L1"]["stripe_id"] == ada
    return ada


def without(dbt_project: Any, seed: str, column: str, value: str) -> None:
    """The seed's rows but the one whose `column` is `value` (not rebuilt)."""
    dbt_project.write_seed(seed, [r for r in dbt_project.read_seed(seed) if r[column] != value])


def refused_leads(dbt_project: Any, leads: list[dict[str, str]], extra: int = 45) -> None:
    """stripe_leads with `extra` more metadata keys than Ada's customer can take (Stripe keeps 50):
    a lead matching her customer by email has its update refused. Its seed rows, the models rebuilt."""
    names = [f"m{i}" for i in range(extra)]
    dbt_project.write_seed("raw_leads", leads)
    columns = ", ".join(f"'v' as {m}" for m in names)
    model = f"select *, {columns} from {{{{ ref('raw_leads') }}}}\n"
    dbt_project.write_file("models/stripe_leads.sql", model)
    fields = "{name: full_name, " + ", ".join(f"metadata.{m}: {m}" for m in names) + "}"
    email = "{field: email, column: email}"
    dbt_project.write_file(
        "models/leads.yml", model_yml("stripe_leads", "customer", "lead_id", email, fields, "delete")
    )
    dbt_project.build()
