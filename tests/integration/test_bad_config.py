# ruff: noqa: E501  (a table of YAML blocks reads best one block per line)
"""Malformed stripe_sync blocks through the real CLI: exit 2, one clear line per problem naming the
model and the key, no traceback, and nothing sent or written."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(300)

# model name -> (stripe_sync block as YAML, a fragment of the key path the message must name,
#                a fragment of what would be right)
CASES: dict[str, tuple[str, str, str]] = {
    "bad_object": (
        "{object: custmer, mode: upsert, primary_key: id, fields: {name: n}}",
        "object",
        "customer",
    ),
    "bad_mode": ("{object: customer, mode: upsertt, primary_key: id, fields: {name: n}}", "mode", "upsert"),
    "no_primary_key": ("{object: customer, mode: upsert, fields: {name: n}}", "primary_key", "primary_key"),
    "typo_field": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, "
        "fields: {address.line_1: n}}",
        "address.line_1",
        "address.line1",
    ),
    "long_metadata_key": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, "
        "fields: {metadata.this_key_is_much_longer_than_forty_chars_x: n}}",
        "metadata.this_key_is_much_longer",
        "40",
    ),
    "bracket_metadata_key": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, "
        "fields: {'metadata.a[b]': n}}",
        "metadata.a[b]",
        "[",
    ),
    "delete_in_update": (
        "{object: customer, mode: update, primary_key: id, match: {field: id, column: id}, "
        "fields: {name: n}, delete: delete}",
        "delete",
        "upsert",
    ),
    "match_on_phone": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: phone, column: n}, fields: {name: n}}",
        "match",
        "email",
    ),
    "price_match_email": (
        "{object: price, mode: upsert, primary_key: id, match: {field: email, column: email}, "
        "fields: {currency: n, unit_amount: id}}",
        "match",
        "id",
    ),
    "price_ref_by_email": (
        "{object: price, mode: upsert, primary_key: id, fields: {currency: n, unit_amount: id}, "
        "references: {product: {by: email, column: email}}}",
        "references",
        "customer",
    ),
    "ref_unknown_sync": (
        "{object: subscription, mode: upsert, primary_key: id, references: {customer: {sync: no_such_model, "
        "column: id}, 'items[0].price': {sync: also_missing, column: id}}}",
        "no_such_model",
        "sync",
    ),
    "duplicate_target": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, "
        "fields: {name: n, address: n, address.city: n}}",
        "address",
        "address",
    ),
    "price_option_on_customer": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, "
        "fields: {name: n}, on_price_change: replace}",
        "on_price_change",
        "price",
    ),
    "fields_is_a_list": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, fields: [n]}",
        "fields",
        "mapping",
    ),
    "block_is_a_string": ("customer", "stripe_sync", "mapping"),
    "column_is_a_number": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, fields: {name: 5}}",
        "name",
        "column",
    ),
    "unknown_key": (
        "{object: customer, mode: upsert, primary_keys: id, match: {field: email, column: email}, fields: {name: n}}",
        "primary_keys",
        "primary_key",
    ),
    "bad_on_null": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, "
        "fields: {name: n}, on_null: keep}",
        "on_null",
        "skip",
    ),
    "bad_delete": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email, column: email}, "
        "fields: {name: n}, delete: archive}",
        "delete",
        "nothing",
    ),
    "match_without_column": (
        "{object: customer, mode: upsert, primary_key: id, match: {field: email}, fields: {name: n}}",
        "match",
        "column",
    ),
    "reference_without_column": (
        "{object: subscription, mode: upsert, primary_key: id, references: {customer: {by: email}}}",
        "customer",
        "column",
    ),
    "enum_not_a_field": (
        "{object: product, mode: upsert, primary_key: id, fields: {name: n, recurring.interval: n}}",
        "recurring.interval",
        "product",
    ),
}


def test_malformed_blocks_exit_2_naming_model_and_key(dbt_project):
    yml = ["version: 2", "models:"]
    for name, (block, _, _) in CASES.items():
        dbt_project.write_file(f"models/{name}.sql", "select 1 as id, 'a@example.com' as email, 'x' as n")
        yml += [
            f"  - name: {name}",
            "    config:",
            "      tags: [broken]",
            "      meta:",
            f"        stripe_sync: {block}",
        ]
    dbt_project.write_file("models/broken.yml", "\n".join(yml) + "\n")
    dbt_project.dbt("parse")

    for command in ("validate", "run"):
        result = dbt_project.sync(command, "-s", "tag:broken")
        assert result.returncode == 2, result.stdout + result.stderr
        out = result.stdout + result.stderr
        assert "Traceback" not in out
        lines = [line for line in out.splitlines() if ": stripe_sync" in line]
        for name, (_, key, right) in CASES.items():
            mine = [line for line in lines if line.startswith(f"{name}: ")]
            assert mine, f"no problem reported for {name}:\n{out}"
            assert any(key in line and right in line for line in mine), f"{name}: {mine}"
    assert dbt_project.emulator.requests() == []  # nothing sent
    state = dbt_project.query(
        f"select count(*) from information_schema.schemata where schema_name = '{dbt_project.state_schema}'"
    )
    assert state == [(0,)]  # nothing written: not even the state tables
    # broken blocks in other models do not stop selected, valid ones, even one whose `sync:`
    # target (stripe_products) is not selected
    fine = dbt_project.sync("-s", "stripe_customers", "-s", "stripe_prices")
    assert fine.returncode == 1, fine.stdout + fine.stderr  # prices wait for their products
    assert "no stripe_products row with key" in fine.stdout
    assert len(dbt_project.emulator.objects("customer")) == 5


def test_usage_errors_exit_2_with_the_fix(dbt_project):
    cases = [
        (["-s", "no_such_model"], {}, "selects no model with a stripe_sync block"),
        (["-s", "stripe_customers"], {"STRIPE_API_KEY": ""}, "no Stripe API key"),
        (["-s", "stripe_customers"], {"STRIPE_API_KEY": "pk_test_abc123"}, "STRIPE_API_KEY"),
        (["-s", "stripe_customers"], {"STRIPE_API_KEY": "sk_live_abc123def456"}, "live_targets"),
        (
            ["-s", "stripe_customers", "--vars", "{dbt_stripe_sync: {max_delete_fractio: 0.1}}"],
            {},
            "max_delete_fraction",
        ),
        (
            ["-s", "stripe_customers", "--vars", "{dbt_stripe_sync: {max_delete_fraction: 7}}"],
            {},
            "max_delete_fraction",
        ),
        (  # refused before connecting, not a ValueError after (attack2 finding 11)
            ["-s", "stripe_customers", "--vars", "{dbt_stripe_sync: {rate_limit: 0}}"],
            {},
            "vars.dbt_stripe_sync.rate_limit: invalid value 0: it must be a number above 0",
        ),
    ]
    for args, env, expected in cases:
        result = dbt_project.sync(*args, env=env)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert "abc123" not in result.stdout + result.stderr  # a key is never echoed
    assert dbt_project.emulator.requests() == []


def test_stale_manifest_is_reported(dbt_project):
    dbt_project.edit_schema_yml("plan: plan_tier", "plan: plan_tier\n            metadata.tier: plan_tier")
    result = dbt_project.sync("run")  # validate reads the files as they are now; run refuses
    assert result.returncode == 2
    assert "the stripe_sync block of stripe_customers in models/schema.yml was edited" in result.stderr
    assert "dbt run -s" in result.stderr and "dbt parse" in result.stderr
