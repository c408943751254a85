"""A model whose text columns carry different collations syncs like any other (outside attack 12 #2):
the diff hashes each value's bytes, so it neither fails on the mix (DuckDB: "Cannot combine types with
different collation", every plan and run) nor takes a case-only or accent-only edit for no change."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(600)

# DuckDB's own collations; PostgreSQL's "C" and "POSIX" (two non-default ones, beside the default)
COLLATIONS = {
    "duckdb": ("nocase", "noaccent"),
    "postgres": ('"C"', '"POSIX"'),
}


def _writes(project) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in project.emulator.requests() if r["method"] != "GET"]


def test_columns_of_different_collations_sync_and_each_byte_edit_is_sent(dbt_project, warehouse):
    project = dbt_project
    name_collation, city_collation = COLLATIONS[warehouse]
    sql = (project.path / "models" / "stripe_customers.sql").read_text()
    collated = sql.replace("    full_name,", f"    full_name collate {name_collation} as full_name,").replace(
        "    city,", f"    city collate {city_collation} as city,"
    )
    assert collated.count("collate") == 2
    project.write_file("models/stripe_customers.sql", collated)
    project.build()

    planned = project.sync("plan", "-s", "stripe_customers")
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-2000:]
    ran = project.sync("run", "-s", "stripe_customers")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    rows = project.read_seed("raw_customers")
    ledger = project.ledger("stripe_customers")
    assert len(ledger) == len(rows) and {e["status"] for e in ledger.values()} == {"synced"}

    # a case-only edit of the nocase column and an accent-only edit of the noaccent one
    ada, grace = ledger["1"]["stripe_id"], ledger["2"]["stripe_id"]
    assert rows[0]["full_name"] == "Ada Lovelace" and rows[1]["city"] == "Arlington"
    rows[0]["full_name"] = "ADA LOVELACE"
    rows[1]["city"] = "Arlíngton"
    project.write_seed("raw_customers", rows)
    project.build()
    project.emulator.clear_requests()
    ran = project.sync("run", "-s", "stripe_customers")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert sorted(_writes(project)) == sorted([("POST", f"/v1/customers/{i}") for i in (ada, grace)])
    customers = {c["id"]: c for c in project.emulator.objects("customer")}
    assert customers[ada]["name"] == "ADA LOVELACE"
    assert customers[grace]["address"]["city"] == "Arlíngton"

    # and then nothing: plan and run find no change, no request reaches Stripe
    project.emulator.clear_requests()
    planned = project.sync("plan", "-s", "stripe_customers")
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-2000:]
    assert project.sync("run", "-s", "stripe_customers").returncode == 0
    assert project.emulator.requests() == []
