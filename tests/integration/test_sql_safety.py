"""Hostile values through the in-warehouse diff and the ledger: quotes, SQL and comment syntax,
backslashes, driver placeholders, Jinja, unicode, control characters and long strings reach Stripe
exactly as the model holds them, round-trip through the ledger, and hash stably (a second run sends
nothing). Primary keys carry the same characters; the key and two mapped columns are quoted identifiers
(a space, upper case)."""

from __future__ import annotations

import json

import pytest

from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(600)

# key -> the value put in the customer's name and metadata (and address line, unless `long` says otherwise)
VALUES: dict[str, str] = {
    "k'1": "O'Brien",
    "k''1": "O''Brien",  # what naive escaping turns O'Brien into: must stay a different value and row
    'k"2': "Say \"hi\" and 'bye'",
    "k;3 --": "x'; drop table stripe_sync_ledger; --",
    "k/*4*/": "-- not a comment /* nor this */ #",
    "k\\5": "C:\\new\\table \\' \\\\ \\x00-free",
    "k%s6": "%s %(name)s ? $1 :name %% {0}",
    "k{{7}}": "{{ 7 * 7 }} {% if true %}x{% endif %} {# c #}",
    "k😀8": "👩\u200d💻🚀 李小龍 東京 مرحبا بالعالم שלום Ünïcödé",
    # (no \r: dbt-postgres's seed loader turns \r\n into \n before our code sees it)
    "k 9": "tab\there | newline\nthere | bell\x07 | unit\x1f | esc\x1b",
    "K10": "Upper-case key, trailing spaces  ",
}
LONG_KEY = "k long"
LONG = "".join(chr(0x41 + i % 26) for i in range(3990)) + "'\";--\\ é😀"  # 4,000 characters

SCHEMA_YML = """
version: 2
models:
  - name: sq_customers
    config:
      tags: [sql_safety]
      meta:
        stripe_sync:
          object: customer
          mode: upsert
          primary_key: "Primary Key"
          match: {field: email, column: EMail}
          fields:
            name: "Full Name"
            address.line1: street
            "metadata.it's -- a key": note
"""


def _rows() -> list[dict[str, str]]:
    rows = [
        {"pk": key, "email": f"user{i}@example.com", "full_name": value, "street": value, "note": value}
        for i, (key, value) in enumerate(VALUES.items())
    ]
    rows.append(
        {"pk": LONG_KEY, "email": "long@example.com", "full_name": "Long", "street": LONG, "note": LONG[:500]}
    )
    return rows


def _write_project(dbt_project) -> None:
    dbt_project.write_seed("sq_raw", _rows())
    text = "varchar" if dbt_project.target == "duckdb" else "text"
    dbt_project.write_file(
        "models/sq_customers.sql",
        f'select cast(pk as {text}) as "Primary Key", email as "EMail", full_name as "Full Name", '
        "street, note from {{ ref('sq_raw') }}",
    )
    dbt_project.write_file("models/sql_safety.yml", SCHEMA_YML)


def _expected(row: dict[str, str]) -> dict[str, str]:
    return {
        "email": row["email"],
        "name": row["full_name"],
        "address.line1": row["street"],
        "metadata.it's -- a key": row["note"],
    }


def _ledger_payloads(dbt_project) -> dict[str, dict]:
    rows = dbt_project.query(
        f"select source_key, payload_json, status from {dbt_project.state_schema}.stripe_sync_ledger "
        "where sync_name = 'sq_customers'"
    )
    assert {r[2] for r in rows} == {"synced"}, rows
    return {r[0]: json.loads(r[1]) for r in rows}


def test_hostile_values_and_keys_round_trip_and_hash_stably(dbt_project):
    _write_project(dbt_project)
    dbt_project.build("+tag:sql_safety")
    emu = dbt_project.emulator
    rows = _rows()
    seed_back = {
        r[0]: r[1] for r in dbt_project.query(f"select pk, full_name from {dbt_project.schema}.sq_raw")
    }
    assert seed_back == {r["pk"]: r["full_name"] for r in rows}  # dbt loaded the seed unchanged

    first = dbt_project.sync("-s", "sq_customers")
    assert first.returncode == 0, first.stdout + first.stderr

    # Stripe holds exactly the model's values, under the right keys
    ledger = dbt_project.ledger("sq_customers")
    assert set(ledger) == {r["pk"] for r in rows}
    by_id = {c["id"]: c for c in emu.objects("customer")}
    assert len(by_id) == len(rows)
    for row in rows:
        customer = by_id[ledger[row["pk"]]["stripe_id"]]
        assert customer["email"] == row["email"]
        assert customer["name"] == row["full_name"], row["pk"]
        assert customer["address"]["line1"] == row["street"], row["pk"]
        assert customer["metadata"]["it's -- a key"] == row["note"], row["pk"]
        assert customer["metadata"]["dbt_stripe_sync"] == f"sq_customers:{row['pk']}"

    # the ledger's payload_json round-trips
    assert _ledger_payloads(dbt_project) == {r["pk"]: _expected(r) for r in rows}

    # the hash is stable: a second run sends nothing, not even a look-up
    emu.clear_requests()
    second = dbt_project.sync("-s", "sq_customers")
    assert second.returncode == 0, second.stdout + second.stderr
    assert emu.requests() == []

    # ... and sensitive: one quote more in one row re-sends that row only, with the new value
    changed = [dict(r) for r in rows]
    changed[0]["full_name"] = "O'''Brien"
    dbt_project.write_seed("sq_raw", changed)
    dbt_project.build("+tag:sql_safety")
    emu.clear_requests()
    third = dbt_project.sync("-s", "sq_customers")
    assert third.returncode == 0, third.stdout + third.stderr
    writes = api_writes(emu.requests())
    assert len(writes) == 1
    obrien = ledger["k'1"]["stripe_id"]
    assert writes[0]["path"] == f"/v1/customers/{obrien}"
    assert writes[0]["params"] == {"name": "O'''Brien"}
    assert _ledger_payloads(dbt_project)["k'1"]["name"] == "O'''Brien"
    emu.clear_requests()
    assert dbt_project.sync("-s", "sq_customers").returncode == 0
    assert emu.requests() == []
