"""The `stripe_sync` meta contract: valid blocks build typed configs, bad ones explain themselves."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from dbt_stripe_sync.config.errors import ConfigError, ConfigProblem
from dbt_stripe_sync.config.loader import ModelBlock, block_of, check_block, load_all, load_sync_config
from dbt_stripe_sync.config.model import FieldMapping, Match, Reference

KNOWN_SYNCS = {
    "stripe_customers": "customer",
    "stripe_products": "product",
    "stripe_prices": "price",
    "stripe_subscriptions": "subscription",
    "stripe_invoices": "invoice",
    "stripe_quotes": "quote",
    "stripe_invoice_items": "invoice_item",
}

CUSTOMER: dict[str, Any] = {
    "object": "customer",
    "mode": "upsert",
    "primary_key": "user_id",
    "match": {"field": "email", "column": "email"},
    "fields": {
        "name": "full_name",
        "email": "email",
        "address.line1": "street",
        "address.city": "city",
        "preferred_locales": "locales",
        "metadata.plan": "plan_tier",
    },
    "on_null": "skip",
    "delete": "nothing",
}
CUSTOMER_COLUMNS = ["user_id", "email", "full_name", "street", "city", "locales", "plan_tier"]

VALID: dict[str, dict[str, Any]] = {
    "customer": CUSTOMER,
    "product": {
        "object": "product",
        "mode": "upsert",
        "primary_key": "sku",
        "fields": {"id": "sku", "name": "title", "description": "blurb", "metadata.tier": "tier"},
        "delete": "delete",
    },
    "price": {
        "object": "price",
        "mode": "upsert",
        "primary_key": "price_key",
        "fields": {"currency": "currency", "unit_amount": "cents", "recurring.interval": "interval"},
        "references": {"product": {"sync": "stripe_products", "column": "sku"}},
        "on_price_change": "reject",
    },
    "subscription": {
        "object": "subscription",
        "mode": "upsert",
        "primary_key": "sub_key",
        "fields": {"items[0].quantity": "seats", "metadata.source": "source"},
        "references": {
            "customer": {"by": "email", "column": "customer_email"},
            "items[0].price": {"sync": "stripe_prices", "column": "price_key"},
        },
        "proration_behavior": "none",
        "on_null": "clear",
    },
    "invoice": {
        "object": "invoice",
        "mode": "insert",
        "primary_key": "invoice_key",
        "fields": {"collection_method": "method", "days_until_due": "due_days"},
        "references": {"customer": {"by": "email", "column": "customer_email"}},
    },
    "quote": {
        "object": "quote",
        "mode": "update",
        "primary_key": "quote_key",
        "match": {"field": "id", "column": "quote_id"},
        "fields": {"line_items[0].quantity": "qty", "description": "note"},
        "references": {"line_items[0].price": {"sync": "stripe_prices", "column": "price_key"}},
    },
    "invoice_item": {
        "object": "invoice_item",
        "mode": "upsert",
        "primary_key": "line_key",
        "fields": {"amount": "cents", "currency": "currency", "description": "label"},
        "references": {
            "customer": {"by": "email", "column": "customer_email"},
            "invoice": {"sync": "stripe_invoices", "column": "invoice_key"},
        },
        "delete": "delete",
    },
}


def _columns(block: dict[str, Any]) -> list[str]:
    """Every column a valid block names, so the column check has something to pass."""
    cols = [block["primary_key"], *block.get("fields", {}).values()]
    cols += [r["column"] for r in block.get("references", {}).values()]
    if "match" in block:
        cols.append(block["match"]["column"])
    return cols


@pytest.mark.parametrize("obj", sorted(VALID))
def test_valid_blocks_build(obj: str) -> None:
    block = VALID[obj]
    config = load_sync_config(
        f"stripe_{obj}s", f"model.shop.stripe_{obj}s", block, columns=_columns(block), known_syncs=KNOWN_SYNCS
    )
    assert config.object == obj
    assert config.model == f"stripe_{obj}s" and config.unique_id == f"model.shop.stripe_{obj}s"
    assert config.fields == tuple(FieldMapping(p, c) for p, c in block.get("fields", {}).items())
    assert [r.target for r in config.references] == list(block.get("references", {}))
    assert config.on_null == block.get("on_null", "skip")
    assert config.delete == block.get("delete", "nothing")


def test_customer_config_in_detail() -> None:
    config = load_sync_config(
        "stripe_customers", "model.shop.stripe_customers", CUSTOMER, columns=CUSTOMER_COLUMNS
    )
    assert config.match == Match("email", "email")
    assert [f.path for f in config.fields] == list(CUSTOMER["fields"])  # declared order
    assert config.options == {}
    assert config.columns()[0] == "user_id"


def test_references_and_option_defaults() -> None:
    sub = load_sync_config(
        "s", "model.p.s", {**VALID["subscription"], "proration_behavior": "always_invoice"}
    )
    assert sub.references == (
        Reference("customer", "customer_email", by="email"),
        Reference("items[0].price", "price_key", sync="stripe_prices"),
    )
    assert sub.options == {"proration_behavior": "always_invoice"}
    price = {k: v for k, v in VALID["price"].items() if k != "on_price_change"}
    assert load_sync_config("p", "model.p.p", price).options == {
        "on_price_change": "replace",
        "move_subscriptions": False,
    }
    sub_default = {k: v for k, v in VALID["subscription"].items() if k != "proration_behavior"}
    assert load_sync_config("s", "model.p.s", sub_default).options == {
        "proration_behavior": "create_prorations"
    }
    assert load_sync_config("i", "model.p.i", VALID["invoice"]).options == {"void_finalized": False}
    assert load_sync_config("i", "model.p.i", {**VALID["invoice"], "void_finalized": True}).options == {
        "void_finalized": True
    }


def test_customer_matching_rules() -> None:
    update_by_id = {**CUSTOMER, "mode": "update", "match": {"field": "id", "column": "stripe_id"}}
    assert load_sync_config("c", "model.p.c", update_by_id).match == Match("id", "stripe_id")
    insert_no_match = {k: v for k, v in CUSTOMER.items() if k != "match"} | {"mode": "insert"}
    assert load_sync_config("c", "model.p.c", insert_no_match).match is None
    upsert_product_no_match = {**VALID["product"]}
    assert load_sync_config("p", "model.p.p", upsert_product_no_match).match is None


def test_config_is_frozen() -> None:
    config = load_sync_config("c", "model.p.c", CUSTOMER)
    with pytest.raises(AttributeError):
        config.mode = "insert"  # type: ignore[misc]


def with_(base: str, **changes: Any) -> dict[str, Any]:
    """A copy of a valid block with top-level keys changed (value `...` removes the key)."""
    block = copy.deepcopy(VALID[base])
    for key, value in changes.items():
        if value is ...:
            block.pop(key, None)
        else:
            block[key] = value
    return block


def with_field(base: str, path: str, column: Any) -> dict[str, Any]:
    block = copy.deepcopy(VALID[base])
    block.setdefault("fields", {})[path] = column
    return block


# (case id, block, expected key, substrings expected in "message — hint", extra kwargs)
MALFORMED: list[tuple[str, Any, str, tuple[str, ...], dict[str, Any]]] = [
    ("block-is-list", [CUSTOMER], "stripe_sync", ("must be a mapping", "got a list"), {}),
    (
        "block-is-string",
        "customer",
        "stripe_sync",
        ("must be a mapping", "got a string", "object: customer"),
        {},
    ),
    ("block-is-null", None, "stripe_sync", ("must be a mapping", "got null"), {}),
    (
        "unknown-object",
        with_("customer", object="custmer"),
        "stripe_sync.object",
        ("unknown Stripe object 'custmer'", "did you mean 'customer'?", "'invoice_item'"),
        {},
    ),
    (
        "mode-typo",
        with_("customer", mode="upsret"),
        "stripe_sync.mode",
        ("unknown value 'upsret'", "'upsert', 'update', 'insert'", "did you mean 'upsert'?"),
        {},
    ),
    (
        "unknown-top-level-key",
        with_("customer", feilds={"name": "full_name"}),
        "stripe_sync.feilds",
        ("unknown key", "did you mean 'fields'?"),
        {},
    ),
    (
        "missing-primary-key",
        with_("customer", primary_key=...),
        "stripe_sync.primary_key",
        ("is required",),
        {},
    ),
    (
        "missing-object",
        with_("customer", object=...),
        "stripe_sync.object",
        ("is required", "'customer'"),
        {},
    ),
    (
        "delete-in-update-mode",
        with_("customer", mode="update", delete="delete"),
        "stripe_sync.delete",
        ("only works in upsert mode", "update mode", "mode: upsert"),
        {},
    ),
    (
        "delete-value-typo",
        with_("customer", delete="remove"),
        "stripe_sync.delete",
        ("unknown value 'remove'", "'nothing', 'delete'"),
        {},
    ),
    (
        "on-null-typo",
        with_("customer", on_null="skipp"),
        "stripe_sync.on_null",
        ("did you mean 'skip'?",),
        {},
    ),
    (
        "field-path-typo",
        with_field("customer", "address.line_1", "street"),
        "stripe_sync.fields['address.line_1']",
        ("no such Stripe field on customer", "did you mean 'address.line1'?"),
        {},
    ),
    (
        "indexed-field-path-typo",
        with_field("subscription", "items[0].quantiy", "seats"),
        "stripe_sync.fields['items[0].quantiy']",
        ("no such Stripe field on subscription", "did you mean 'items[0].quantity'?"),
        {},
    ),
    (
        "metadata-key-41-chars",
        with_field("customer", "metadata." + "k" * 41, "plan_tier"),
        "stripe_sync.fields['metadata." + "k" * 41 + "']",
        ("41 characters", "the limit is 40", "shorter key"),
        {},
    ),
    (
        "metadata-key-with-bracket",
        with_field("customer", "metadata.tier[1]", "plan_tier"),
        "stripe_sync.fields['metadata.tier[1]']",
        ("cannot contain '[' or ']'", "metadata.tier_1"),
        {},
    ),
    (
        "too-many-metadata-keys",
        with_("customer", fields={f"metadata.k{i}": "plan_tier" for i in range(50)}),
        "stripe_sync.fields",
        ("50 keys", "at most 50"),
        {},
    ),
    (
        "unknown-column",
        with_field("customer", "phone", "phone_numbr"),
        "stripe_sync.fields['phone']",
        ("no column 'phone_numbr' in model stripe_customers", "columns of stripe_customers"),
        {"columns": CUSTOMER_COLUMNS},
    ),
    (
        "unknown-column-suggestion",
        with_("customer", primary_key="usr_id"),
        "stripe_sync.primary_key",
        ("no column 'usr_id'", "did you mean 'user_id'?"),
        {"columns": CUSTOMER_COLUMNS},
    ),
    (
        "match-on-phone",
        with_("customer", match={"field": "phone", "column": "email"}),
        "stripe_sync.match.field",
        ("cannot match on 'phone'", "match on 'email'"),
        {},
    ),
    (
        "match-on-email-for-price",
        with_("price", match={"field": "email", "column": "price_key"}),
        "stripe_sync.match.field",
        ("price sync in upsert mode cannot match on 'email'", "match on 'id'"),
        {},
    ),
    (
        "match-without-column",
        with_("customer", match={"field": "email"}),
        "stripe_sync.match.column",
        ("is required", "column"),
        {},
    ),
    (
        "match-missing-in-update",
        with_("quote", match=...),
        "stripe_sync.match",
        ("is required for a quote sync in update mode", "field: id"),
        {},
    ),
    (
        "by-email-on-price-reference",
        with_("subscription", references={"items[0].price": {"by": "email", "column": "price_key"}}),
        "stripe_sync.references['items[0].price'].by",
        ("looks up customers", "holds a price ID", "sync: <the model that syncs prices>"),
        {},
    ),
    (
        "sync-to-unknown-model",
        with_("subscription", references={"items[0].price": {"sync": "stripe_price", "column": "price_key"}}),
        "stripe_sync.references['items[0].price'].sync",
        ("no synced model named 'stripe_price'", "did you mean 'stripe_prices'?"),
        {"known_syncs": KNOWN_SYNCS},
    ),
    (
        "sync-to-model-of-wrong-object",
        with_(
            "subscription", references={"items[0].price": {"sync": "stripe_products", "column": "price_key"}}
        ),
        "stripe_sync.references['items[0].price'].sync",
        ("syncs products", "needs a price ID", "syncs prices"),
        {"known_syncs": KNOWN_SYNCS},
    ),
    (
        "reference-with-by-and-sync",
        with_("price", references={"product": {"by": "email", "sync": "stripe_products", "column": "sku"}}),
        "stripe_sync.references['product']",
        ("exactly one of `by` and `sync`", "by: email"),
        {},
    ),
    (
        "reference-to-non-id-field",
        with_("subscription", references={"description": {"sync": "stripe_prices", "column": "price_key"}}),
        "stripe_sync.references['description']",
        ("not a Stripe ID field", "'items[0].price'", "'customer'"),
        {},
    ),
    (
        "duplicate-target-field-and-reference",
        with_field("subscription", "items[0].price", "price_key"),
        "stripe_sync.references['items[0].price']",
        ("same Stripe field as stripe_sync.fields['items[0].price']", "map each field once"),
        {},
    ),
    (
        "overlapping-targets",
        with_field("customer", "address", "full_address"),
        "stripe_sync.fields['address']",
        ("overlaps stripe_sync.fields['address.line1']", "whole field or its parts"),
        {},
    ),
    (
        "on-price-change-on-customer",
        with_("customer", on_price_change="replace"),
        "stripe_sync.on_price_change",
        ("applies only to price syncs", "customer sync", "remove it"),
        {},
    ),
    (
        "option-bad-value",
        with_("price", on_price_change="archive"),
        "stripe_sync.on_price_change",
        ("unknown value 'archive'", "'replace', 'reject'"),
        {},
    ),
    (
        "option-not-boolean",
        with_("invoice", void_finalized="yes"),
        "stripe_sync.void_finalized",
        ("must be true or false", "got a string"),
        {},
    ),
    (
        "fields-not-a-mapping",
        with_("customer", fields=["name", "email"]),
        "stripe_sync.fields",
        ("must be a mapping", "got a list", "fields: {name: full_name"),
        {},
    ),
    (
        "match-as-string",
        with_("customer", match="email"),
        "stripe_sync.match",
        ("must be a mapping", "got a string", "match: {field: email, column: <column>}"),
        {},
    ),
    (
        "column-given-as-number",
        with_field("customer", "phone", 42),
        "stripe_sync.fields['phone']",
        ("must be a column name (a string)", "got the number 42"),
        {},
    ),
    (
        "primary-key-as-list",
        with_("customer", primary_key=["user_id", "email"]),
        "stripe_sync.primary_key",
        ("must be a column name (a string)", "got a list"),
        {},
    ),
    (
        "field-path-not-text",
        with_field("customer", 7, "full_name"),
        "stripe_sync.fields['7']",
        ("must be text", "quote it"),
        {},
    ),
    (
        "id-field-on-price",
        with_field("price", "id", "price_key"),
        "stripe_sync.fields['id']",
        ("no such Stripe field on price", "match: {field: id"),
        {},
    ),
    (
        "price-without-currency",
        with_("price", fields={"unit_amount": "cents"}),
        "stripe_sync.fields",
        ("requires 'currency'", "currency: <column>"),
        {},
    ),
    (
        "update-only-field-in-insert-mode",
        with_field("product", "default_price", "price_id") | {"mode": "insert"},
        "stripe_sync.fields['default_price']",
        ("only accepts this field when updating", "mode: upsert"),
        {},
    ),
    (
        "update-only-reference-in-insert-mode",
        with_("product", references={"default_price": {"sync": "stripe_prices", "column": "sku"}})
        | {"mode": "insert"},
        "stripe_sync.references['default_price']",
        ("only accepts this field when updating a product", "drop the reference"),
        {},
    ),
    (
        "nothing-to-sync",
        with_("product", fields={}),
        "stripe_sync.fields",
        ("nothing to sync", "fields: {name: full_name}"),
        {},
    ),
    (
        "reference-unknown-field",
        with_("price", references={"prodcut": {"sync": "stripe_products", "column": "sku"}}),
        "stripe_sync.references['prodcut']",
        ("no such Stripe field on price", "did you mean 'product'?"),
        {},
    ),
]

_REPR_MARKERS = (
    "Traceback",
    "<class",
    "<function",
    " at 0x",
    "{'",
    "ParamSpec",
    "ValidationError",
    "None",
    "\\n",
)
_LIST_REPR = re.compile(r"\[('[^']*', )+'[^']*'\]")


@pytest.mark.parametrize(
    ("block", "key", "expected", "kwargs"),
    [pytest.param(block, key, expected, kwargs, id=case) for case, block, key, expected, kwargs in MALFORMED],
)
def test_malformed_block_is_explained(
    block: Any, key: str, expected: tuple[str, ...], kwargs: dict[str, Any]
) -> None:
    model = "stripe_customers"
    with pytest.raises(ConfigError) as info:
        load_sync_config(model, f"model.shop.{model}", block, **kwargs)
    problems = [p for p in info.value.problems if p.key == key]
    assert problems, f"no problem at {key}; got:\n{info.value}"
    text = " ".join(f"{p.message} — {p.hint or ''}" for p in problems)
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    for line in str(info.value).splitlines():
        assert line.startswith(f"{model}: stripe_sync"), line
        message = line.split(": ", 2)[2]  # past "model: key: "
        assert not any(marker in message for marker in _REPR_MARKERS), line
        assert not _LIST_REPR.search(message), line


def test_malformed_cases_are_many_and_distinct() -> None:
    assert len(MALFORMED) >= 25
    assert len({case for case, *_ in MALFORMED}) == len(MALFORMED)


def test_every_problem_of_a_block_is_reported() -> None:
    block = {
        "object": "customer",
        "mode": "update",
        "primary_key": "usr_id",
        "match": {"field": "phone", "column": "email"},
        "fields": {"address.line_1": "street", "metadata.plan": 3},
        "delete": "delete",
        "on_price_change": "replace",
    }
    problems = check_block("stripe_customers", block, columns=CUSTOMER_COLUMNS)
    keys = {p.key for p in problems}
    assert keys >= {
        "stripe_sync.primary_key",
        "stripe_sync.match.field",
        "stripe_sync.fields['address.line_1']",
        "stripe_sync.fields['metadata.plan']",
        "stripe_sync.delete",
        "stripe_sync.on_price_change",
    }


def test_error_string_is_one_line_per_problem() -> None:
    block = with_field("customer", "address.line_1", "street")
    with pytest.raises(ConfigError) as info:
        load_sync_config("stripe_customers", "model.shop.stripe_customers", block)
    assert str(info.value) == (
        "stripe_customers: stripe_sync.fields['address.line_1']: no such Stripe field on customer"
        " — did you mean 'address.line1'?"
    )
    assert info.value.problems == [
        ConfigProblem(
            "stripe_customers",
            "stripe_sync.fields['address.line_1']",
            "no such Stripe field on customer",
            "did you mean 'address.line1'?",
        )
    ]


@pytest.mark.parametrize(
    "weird", [42, 3.5, True, b"bytes", ("a",), {"object": None}, {"fields": {"a": None}}, {1: 2}]
)
def test_odd_input_never_raises_anything_but_config_error(weird: Any) -> None:
    with pytest.raises(ConfigError):
        load_sync_config("m", "model.p.m", weird)


def test_load_all_checks_references_across_models() -> None:
    models = [
        ModelBlock("stripe_products", "model.p.stripe_products", VALID["product"]),
        ModelBlock("stripe_prices", "model.p.stripe_prices", VALID["price"]),
        ModelBlock("stripe_subscriptions", "model.p.stripe_subscriptions", VALID["subscription"]),
    ]
    assert [c.model for c in load_all(models[:2])] == ["stripe_products", "stripe_prices"]
    with pytest.raises(ConfigError) as info:
        load_all(models[1:])  # the subscription's price sync exists, the price's product sync does not
    assert [p.key for p in info.value.problems] == ["stripe_sync.references['product'].sync"]
    assert info.value.problems[0].model == "stripe_prices"


def test_block_of_reads_config_meta_or_top_level_meta() -> None:
    assert block_of({"config": {"meta": {"stripe_sync": CUSTOMER}}, "meta": {}}) == CUSTOMER
    assert block_of({"config": {"meta": {}}, "meta": {"stripe_sync": CUSTOMER}}) == CUSTOMER
    assert block_of({"config": {"meta": {"other": 1}}}) is None


def test_metadata_keys_may_contain_dots_and_nested_metadata_is_checked() -> None:
    block = with_field("subscription", "metadata.crm.id", "source")
    block["fields"]["items[0].metadata.seat_type"] = "seats"
    config = load_sync_config("s", "model.p.s", block)
    assert FieldMapping("metadata.crm.id", "source") in config.fields
    bad = with_field("subscription", "items[0].metadata." + "x" * 41, "seats")
    assert [p.key for p in check_block("s", bad)] == [
        "stripe_sync.fields['items[0].metadata." + "x" * 41 + "']"
    ]


def test_list_paths_must_be_numbered_from_zero():
    from dbt_stripe_sync.config.loader import check_block

    block = {
        "object": "subscription",
        "mode": "upsert",
        "primary_key": "id",
        "references": {
            "customer": {"by": "email", "column": "e"},
            "items[1].price": {"sync": "p", "column": "k"},
        },
    }
    (problem,) = check_block("subs", block)
    assert str(problem).startswith(
        "subs: stripe_sync.references['items[1].price']: maps items[1] but nothing"
    )
    assert "number the entries of items from 0" in str(problem)
    block["fields"] = {"items[0].quantity": "q"}
    assert check_block("subs", block) == []


# ---- Stripe Connect: `account:` ------------------------------------------------------------------
_CONNECT_BLOCK: dict[str, Any] = {
    "object": "customer",
    "mode": "upsert",
    "primary_key": "id",
    "match": {"field": "email", "column": "email"},
    "fields": {"name": "name"},
}


def test_account_literal_and_column_build() -> None:
    from dbt_stripe_sync.config.model import Account

    literal = load_sync_config("m", "model.p.m", {**_CONNECT_BLOCK, "account": "acct_1Seller"})
    assert literal.account == Account(id="acct_1Seller")
    per_row = load_sync_config("m", "model.p.m", {**_CONNECT_BLOCK, "account": {"column": "acct"}})
    assert per_row.account == Account(column="acct")
    assert per_row.columns()[-1] == "acct"  # read by the diff like any other column


@pytest.mark.parametrize(
    ("account", "fragment"),
    [
        ("seller_1", "'seller_1' is not a Stripe account ID"),
        ({"col": "acct"}, "unknown key"),
        (12, "must be an account ID or {column: ...}"),
    ],
)
def test_bad_account_is_explained(account: Any, fragment: str) -> None:
    problems = check_block("m", {**_CONNECT_BLOCK, "account": account})
    assert any(fragment in p.message and p.key.startswith("stripe_sync.account") for p in problems), problems


def test_account_column_must_exist() -> None:
    problems = check_block(
        "m", {**_CONNECT_BLOCK, "account": {"column": "acct_id"}}, columns=["id", "email", "name", "acct"]
    )
    assert [(p.key, p.message) for p in problems] == [
        ("stripe_sync.account.column", "no column 'acct_id' in model m")
    ]
