# ruff: noqa: E501  (tables of YAML blocks and seed rows read best one entry per line)
"""Bad input, config level and row level, through the real dbt and dbt-stripe-sync CLIs.

Config level: exit 2, one line per problem naming the model, the key and the fix, nothing sent (the
cases complement test_bad_config.py: these need the built relation, object options and references).
Row level: each bad row is rejected before sending with its reason in the ledger and the run summary,
the good rows of the same sync are synced, the bad rows make no API call, the run exits 1, and a
rejected row is retried when its data changes (or on every run with `retry_rejected`).
"""

from __future__ import annotations

import json

import pytest

from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(600)

# ---- config level ----------------------------------------------------------------------------------
# model -> (stripe_sync block, fragments the model's problem line must contain)
CONFIG_CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "missing_field_column": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, fields: {name: full_name}}",
        ("fields['name']", "no column 'full_name'", "columns of missing_field_column: 'id'"),
    ),
    "missing_pk_column": (
        "{object: customer, mode: upsert, primary_key: user_id, match: {field: email, column: email}, fields: {name: n}}",
        ("primary_key", "no column 'user_id'"),
    ),
    "missing_match_column": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: mail}, fields: {name: n}}",
        ("match.column", "no column 'mail'", "did you mean 'email'"),
    ),
    "missing_ref_column": (
        "{object: invoice_item, mode: upsert, primary_key: id, fields: {amount: amount, currency: cur}, references: {customer: {by: email, column: customer_email}}}",
        ("references['customer'].column", "no column 'customer_email'"),
    ),
    "empty_metadata_key": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, fields: {'metadata.': n}}",
        ("fields['metadata.']", "metadata key is empty", "metadata.<key>"),
    ),
    "too_many_metadata_keys": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, fields: {"
        + ", ".join(f"metadata.k{i}: n" for i in range(51))
        + "}}",
        ("fields", "51 keys into metadata", "at most 50"),
    ),
    "insert_update_only_field": (
        "{object: customer, mode: insert, primary_key: id, match: {field: email, column: email}, fields: {default_source: n}}",
        ("fields['default_source']", "only accepts this field when updating", "mode: upsert"),
    ),
    "delete_in_insert": (
        "{object: customer, mode: insert, primary_key: id, match: {field: email, column: email}, fields: {name: n}, delete: delete}",
        ("delete", "only works in upsert mode", "delete: nothing"),
    ),
    "bad_price_option": (
        "{object: price, mode: upsert, primary_key: id, fields: {currency: cur, unit_amount: amount, product_data.name: n}, on_price_change: maybe}",
        ("on_price_change", "unknown value 'maybe'", "'replace', 'reject'"),
    ),
    "bad_proration": (
        "{object: subscription, mode: upsert, primary_key: id, fields: {'items[0].price': n}, references: {customer: {by: email, column: email}}, proration_behavior: sometimes}",
        ("proration_behavior", "'sometimes'", "create_prorations"),
    ),
    "void_not_bool": (
        "{object: invoice, mode: upsert, primary_key: id, references: {customer: {by: email, column: email}}, void_finalized: perhaps}",
        ("void_finalized", "must be true or false"),
    ),
    "empty_block": ("{}", ("stripe_sync.object", "is required", "'customer'")),
    "customer_match_id_upsert": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: id, column: id}, fields: {name: n}}",
        ("match.field", "cannot match on 'id'", "match on 'email'"),
    ),
    "price_without_currency": (
        "{object: price, mode: upsert, primary_key: id, fields: {unit_amount: amount, product_data.name: n}}",
        ("fields", "requires 'currency'", "currency: <column>"),
    ),
    "double_dot_path": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, fields: {address..city: n}}",
        ("fields['address..city']", "no such Stripe field", "did you mean 'address.city'"),
    ),
    "reference_not_an_id": (
        "{object: invoice_item, mode: upsert, primary_key: id, fields: {amount: amount, currency: cur}, references: {description: {by: email, column: email}}}",
        ("references['description']", "not a Stripe ID field", "'customer'"),
    ),
    "reference_by_and_sync": (
        "{object: invoice_item, mode: upsert, primary_key: id, fields: {amount: amount, currency: cur}, references: {customer: {by: email, sync: stripe_customers, column: email}}}",
        ("references['customer']", "exactly one of `by` and `sync`"),
    ),
    "reference_by_phone": (
        "{object: invoice_item, mode: upsert, primary_key: id, fields: {amount: amount, currency: cur}, references: {customer: {by: phone, column: email}}}",
        ("references['customer'].by", "unknown value 'phone'", "'email'"),
    ),
    "reference_to_unsynced_model": (
        "{object: invoice_item, mode: upsert, primary_key: id, fields: {amount: amount, currency: cur}, references: {customer: {sync: plain_model, column: email}}}",
        ("references['customer'].sync", "no synced model named 'plain_model'", "own `stripe_sync` block"),
    ),
    "primary_key_list": (
        "{object: customer, mode: upsert, primary_key: [id, email], match: {field: email, column: email}, fields: {name: n}}",
        ("primary_key", "must be a column name", "got a list"),
    ),
    "field_and_reference_same": (
        "{object: invoice_item, mode: upsert, primary_key: id, fields: {amount: amount, currency: cur, customer: email}, references: {customer: {by: email, column: email}}}",
        (
            "references['customer']",
            "same Stripe field as stripe_sync.fields['customer']",
            "map each field once",
        ),
    ),
    "expand_is_not_a_field": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, fields: {expand: n}}",
        ("fields['expand']", "no such Stripe field on customer"),
    ),
    "on_null_boolean": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, fields: {name: n}, on_null: true}",
        ("on_null", "'skip', 'clear'", "got a boolean"),
    ),
}


def test_config_level_bad_input_exit_2_with_the_fix(dbt_project):
    yml = ["version: 2", "models:", "  - name: plain_model", "    config: {tags: [broken]}"]
    sql = "select 1 as id, 'a@example.com' as email, 'x' as n, 100 as amount, 'usd' as cur"
    dbt_project.write_file("models/plain_model.sql", sql)
    for name, (block, _) in CONFIG_CASES.items():
        dbt_project.write_file(f"models/{name}.sql", sql)
        yml += [
            f"  - name: {name}",
            "    config:",
            "      tags: [broken]",
            "      meta:",
            f"        stripe_sync: {block}",
        ]
    dbt_project.write_file("models/broken.yml", "\n".join(yml) + "\n")
    dbt_project.dbt("run", "-s", "tag:broken")  # built, so columns are checked against the relations

    for command in ("validate", "run", "plan"):
        result = dbt_project.sync(command, "-s", "tag:broken")
        out = result.stdout + result.stderr
        assert result.returncode == 2, out
        assert "Traceback" not in out
        for name, (_, fragments) in CONFIG_CASES.items():
            mine = [line for line in out.splitlines() if line.startswith(f"{name}: stripe_sync")]
            assert any(all(f in line for f in fragments) for line in mine), (
                f"{name}: {fragments} not in {mine}"
            )
        assert not [line for line in out.splitlines() if line.startswith("plain_model:")]
    assert dbt_project.emulator.requests() == []
    schemas = dbt_project.query(
        f"select count(*) from information_schema.schemata where schema_name = '{dbt_project.state_schema}'"
    )
    assert schemas == [(0,)]  # no ledger was even created


# ---- row level -------------------------------------------------------------------------------------
MODELS_YML = """
version: 2
models:
  - name: bi_customers
    config:
      tags: [bad_input]
      meta:
        stripe_sync:
          object: customer
          mode: upsert
          primary_key: id
          match: {field: email, column: email}
          fields:
            name: full_name
            description: note_long
            tax_exempt: tax_status
            preferred_locales: locales
            address.line1: street
            metadata.note: note
  - name: bi_prices
    config:
      tags: [bad_input]
      meta:
        stripe_sync:
          object: price
          mode: upsert
          primary_key: price_key
          fields:
            currency: currency
            unit_amount: unit_amount
            product_data.name: product_name
            recurring.interval: billing_interval
  - name: bi_items
    config:
      tags: [bad_input]
      meta:
        stripe_sync:
          object: invoice_item
          mode: upsert
          primary_key: item_key
          fields: {amount: amount, currency: currency, description: description}
          references:
            customer: {by: email, column: customer_email}
  - name: bi_dupe_keys
    config:
      tags: [bad_input]
      meta:
        stripe_sync: {object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, fields: {name: email}}
  - name: bi_null_key
    config:
      tags: [bad_input]
      meta:
        stripe_sync: {object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, fields: {name: email}}
"""

GOOD = {
    "id": "",
    "email": "",
    "full_name": "Good",
    "note_long": "",
    "tax_status": "none",
    "locales": '["en"]',
    "street": "1 Main St",
    "note": "ok",
}
# (sync, key, seed row, fragments of the rejection reason)
ROW_CASES: list[tuple[str, str, dict[str, str], tuple[str, ...]]] = [
    (
        "bi_customers",
        "c3",
        {"email": "ada-at-example.com"},
        ("email: 'ada-at-example.com' is not a valid email address", "name@domain.tld"),
    ),
    (
        "bi_customers",
        "c4",
        {"note": "n" * 501},
        ("metadata.note: value is 501 characters; Stripe allows 500",),
    ),
    (
        "bi_customers",
        "c5",
        {"tax_status": "maybe"},
        ("column `tax_status` -> tax_exempt: 'maybe' is not one of: exempt, none, reverse",),
    ),
    (
        "bi_customers",
        "c6",
        {"locales": "[en, fr"},
        ("column `locales` -> preferred_locales: expected a list", "JSON array"),
    ),
    ("bi_customers", "c7", {"street": "s" * 5001}, ("address.line1: 5001 characters; Stripe allows 5000",)),
    (
        "bi_customers",
        "c8",
        {"email": "good1@example.com"},
        ("email 'good1@example.com' is also the match value of row c1",),
    ),
    ("bi_customers", "c9", {"note_long": "d" * 351}, ("description: 351 characters; Stripe allows 350",)),
    (
        "bi_customers",
        "c10",
        {"email": "two@problems", "note": "m" * 600},
        ("is not a valid email address", "; metadata.note: value is 600 characters"),
    ),
    (
        "bi_prices",
        "p2",
        {"currency": "usdd"},
        ("currency: 'usdd' is not an ISO 4217 currency code", "did you mean 'usd'"),
    ),
    ("bi_prices", "p3", {"unit_amount": "-100"}, ("unit_amount: -100 is negative", ">= 0")),
    (
        "bi_prices",
        "p4",
        {"unit_amount": "12.5"},
        ("column `unit_amount` -> unit_amount: expected a whole number, got '12.5'",),
    ),
    (
        "bi_prices",
        "p5",
        {"billing_interval": "fortnight"},
        (
            "column `billing_interval` -> recurring.interval: 'fortnight' is not one of: day, month, week, year",
        ),
    ),
    ("bi_prices", "p6", {"unit_amount": "ten"}, ("expected a whole number, got 'ten'",)),
    (
        "bi_items",
        "i3",
        {"customer_email": "nobody@example.com"},
        ("customer: no Stripe customer has email 'nobody@example.com' (column `customer_email`)",),
    ),
    ("bi_items", "i4", {"currency": "US$"}, ("currency: 'US$' is not an ISO 4217 currency code",)),
]
# whole models refused before planning: (model, fragments)
MODEL_CASES = [
    ("bi_dupe_keys", ("primary_key `id` must be unique and not null", "'k1' (2 rows)", "nothing was sent")),
    ("bi_null_key", ("primary_key `id` must be unique and not null, but found null", "nothing was sent")),
]


def _write_project(dbt_project) -> None:
    customers = [
        {**GOOD, "id": "c1", "email": "good1@example.com"},
        {**GOOD, "id": "c2", "email": "good2@example.com"},
    ]
    prices = [
        {
            "price_key": "p1",
            "currency": "usd",
            "unit_amount": "1000",
            "product_name": "Basic",
            "billing_interval": "month",
        }
    ]
    items = [
        {
            "item_key": "i1",
            "customer_email": "good1@example.com",
            "amount": "2500",
            "currency": "usd",
            "description": "Setup",
        },
        {
            "item_key": "i2",
            "customer_email": "good2@example.com",
            "amount": "-500",
            "currency": "usd",
            "description": "Credit",
        },
    ]
    for sync, key, bad, _ in ROW_CASES:
        if sync == "bi_customers":
            customers.append({**GOOD, "id": key, "email": f"{key}@example.com", **bad})
        elif sync == "bi_prices":
            prices.append({**prices[0], "price_key": key, **bad})
        else:
            items.append({**items[0], "item_key": key, **bad})
    dbt_project.write_seed("bi_customers_raw", customers)
    dbt_project.write_seed("bi_prices_raw", prices)
    dbt_project.write_seed("bi_items_raw", items)
    text = "cast({c} as varchar) as {c}" if dbt_project.target == "duckdb" else "cast({c} as text) as {c}"
    for model, seed in (
        ("bi_customers", "bi_customers_raw"),
        ("bi_prices", "bi_prices_raw"),
        ("bi_items", "bi_items_raw"),
    ):
        cols = dbt_project.read_seed(seed)[0].keys()
        select = ", ".join(text.format(c=c) for c in cols)
        dbt_project.write_file(f"models/{model}.sql", f"select {select} from {{{{ ref('{seed}') }}}}")
    values = (
        "(values ('k1', 'a@example.com'), ('k1', 'b@example.com'), ('k2', 'c@example.com')) as t(id, email)"
    )
    dbt_project.write_file("models/bi_dupe_keys.sql", f"select * from {values}")
    values = "(values ('k1', 'a@example.com'), (null, 'b@example.com')) as t(id, email)"
    dbt_project.write_file("models/bi_null_key.sql", f"select * from {values}")
    dbt_project.write_file("models/bad_input.yml", MODELS_YML)


def _tagged(requests, sync: str, key: str) -> list:
    """API writes that carry this row: its tag (creates) or any value unique to it."""
    tag = f"{sync}:{key}"
    return [r for r in api_writes(requests) if tag in json.dumps(r.get("params"))]


def _attempts(dbt_project, sync: str) -> dict[str, int]:
    return {k: v["attempts"] for k, v in dbt_project.ledger(sync).items() if v["status"] == "rejected"}


def test_row_level_bad_input_rejected_with_reason_nothing_half_sent(dbt_project):
    _write_project(dbt_project)
    dbt_project.build("+tag:bad_input")
    emu = dbt_project.emulator

    result = dbt_project.sync("-s", "tag:bad_input")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out

    # every bad row: rejected, its reason in the ledger and in the run summary, no API write
    requests = emu.requests()
    for sync, key, _, fragments in ROW_CASES:
        entry = dbt_project.ledger(sync).get(key)
        assert entry is not None and entry["status"] == "rejected", (sync, key, entry)
        assert entry["stripe_id"] is None
        for fragment in fragments:
            assert fragment in entry["last_error"], (sync, key, fragment, entry["last_error"])
            assert fragment[:80] in out, (sync, key, fragment)
        assert f"{sync} row {key}: " in out
        assert _tagged(requests, sync, key) == [], (sync, key)
    for model, fragments in MODEL_CASES:
        line = next(line for line in out.splitlines() if line.startswith(f"{model}: "))
        assert all(f in line for f in fragments), (model, line)
        assert dbt_project.ledger(model) == {}

    # the good rows of the same syncs are synced, with exactly one write each
    good = {"bi_customers": {"c1", "c2"}, "bi_prices": {"p1"}, "bi_items": {"i1", "i2"}}
    for sync, keys in good.items():
        ledger = dbt_project.ledger(sync)
        assert {k for k, v in ledger.items() if v["status"] == "synced"} == keys, (sync, ledger)
        for key in keys:
            assert len(_tagged(requests, sync, key)) == 1, (sync, key)
    assert len(api_writes(requests)) == 5
    assert {c["email"] for c in emu.objects("customer")} == {"good1@example.com", "good2@example.com"}
    assert sorted(i["amount"] for i in emu.objects("invoiceitem")) == [-500, 2500]  # a credit is allowed
    runs = dict(
        dbt_project.query(f"select sync_name, rejected from {dbt_project.state_schema}.stripe_sync_runs")
    )
    assert runs == {"bi_customers": 8, "bi_prices": 5, "bi_items": 2, "bi_dupe_keys": 0, "bi_null_key": 0}

    # unchanged rejected rows are not retried, except i3, which waits for a customer with its email
    # (an unresolved reference): it is looked up again on every run until one exists ...
    before = {s: _attempts(dbt_project, s) for s in good}
    emu.clear_requests()
    again = dbt_project.sync("-s", "tag:bad_input")
    assert again.returncode == 1  # the duplicate/null-key models are still refused
    assert api_writes(emu.requests()) == []
    waiting = {("bi_items", "i3")}
    assert {s: _attempts(dbt_project, s) for s in good} == {
        s: {k: n + ((s, k) in waiting) for k, n in attempts.items()} for s, attempts in before.items()
    }

    # ... a fixed row is, and syncs; the other rejected rows stay untouched
    rows = dbt_project.read_seed("bi_customers_raw")
    next(r for r in rows if r["id"] == "c3")["email"] = "ada@example.com"
    dbt_project.write_seed("bi_customers_raw", rows)
    dbt_project.build("+tag:bad_input")
    emu.clear_requests()
    fixed = dbt_project.sync("-s", "bi_customers")
    # the still-bad rows are not planned again, but still keep the exit code at 1
    assert fixed.returncode == 1, fixed.stdout
    assert "7 row(s) rejected by earlier runs are still not in Stripe" in fixed.stdout
    writes = api_writes(emu.requests())
    assert len(writes) == 1 and _tagged(writes, "bi_customers", "c3") == writes
    assert dbt_project.ledger("bi_customers")["c3"]["status"] == "synced"
    assert "ada@example.com" in {c["email"] for c in emu.objects("customer")}
    still = _attempts(dbt_project, "bi_customers")
    assert still == {k: v for k, v in before["bi_customers"].items() if k != "c3"}

    # with retry_rejected every rejected row is planned again on every run (and still sends nothing)
    emu.clear_requests()
    retry = dbt_project.sync("-s", "bi_customers", "--vars", "{dbt_stripe_sync: {retry_rejected: true}}")
    assert retry.returncode == 1
    assert api_writes(emu.requests()) == []
    assert _attempts(dbt_project, "bi_customers") == {k: v + 1 for k, v in still.items()}
    assert "bi_customers row c4: metadata.note: value is 501 characters" in retry.stdout
