"""Rows to Stripe payloads: coercion by the SDK's types, stable metadata text, nesting, field diffs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from dbt_stripe_sync.payload import (
    CoercionError,
    changed_fields,
    coerce,
    field_spec,
    from_json,
    nest,
    stable_string,
    to_json,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (Decimal("12500.50"), "12500.50"),
        (Decimal("1E+3"), "1000"),
        (3.0, "3"),
        (0.1, "0.1"),
        (42, "42"),
        (dt.date(2024, 1, 15), "2024-01-15"),
        (dt.datetime(2024, 1, 15, 10, 30), "2024-01-15T10:30:00"),
        (dt.datetime(2024, 1, 15, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2024-01-15T10:30:00Z"),
        (["b", "a"], '["b","a"]'),
        ({"b": 1, "a": Decimal("2.5")}, '{"a":"2.5","b":1}'),
    ],
)
def test_stable_strings(value, text):
    assert stable_string(value) == text


def test_coercion_follows_the_sdk_types():
    assert coerce(Decimal("1500"), field_spec("price", "unit_amount")) == 1500
    assert coerce("1500", field_spec("price", "unit_amount")) == 1500
    assert coerce(dt.date(2030, 1, 1), field_spec("subscription", "trial_end")) == 1893456000
    assert coerce("now", field_spec("subscription", "trial_end")) == "now"
    assert coerce('["en", "fr"]', field_spec("customer", "preferred_locales")) == ["en", "fr"]
    assert coerce(("nl",), field_spec("customer", "preferred_locales")) == ["nl"]
    assert coerce("month", field_spec("price", "recurring.interval")) == "month"
    assert coerce(1, field_spec("product", "active")) is True
    assert coerce(Decimal("12.50"), field_spec("customer", "metadata.ltv")) == "12.50"
    assert coerce('{"plan": "pro"}', field_spec("customer", "metadata")) == {"plan": "pro"}


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        (Decimal("12.5"), ("price", "unit_amount"), "whole number"),
        (True, ("price", "unit_amount"), "whole number"),
        ("abc", ("price", "unit_amount"), "whole number"),
        ("fortnight", ("price", "recurring.interval"), "is not one of: day, month, week, year"),
        ("maybe", ("product", "active"), "true or false"),
        ("en,fr", ("customer", "preferred_locales"), "list"),
        ("[not json", ("customer", "preferred_locales"), "JSON array"),
        ("plain", ("customer", "metadata"), "object"),
    ],
)
def test_values_that_do_not_fit_say_what_was_expected(value, path, message):
    with pytest.raises(CoercionError, match=message):
        coerce(value, field_spec(*path))


def test_nest_builds_stripe_params():
    flat = {
        "address.line1": "1 Main St",
        "address.city": "Springfield",
        "items[0].price": "price_1",
        "items[0].quantity": 2,
        "items[1].price": "price_2",
        "metadata.plan": "pro",
        "name": "Ada",
    }
    assert nest(flat) == {
        "address": {"line1": "1 Main St", "city": "Springfield"},
        "items": [{"price": "price_1", "quantity": 2}, {"price": "price_2"}],
        "metadata": {"plan": "pro"},
        "name": "Ada",
    }


def test_changed_fields_sends_whole_nested_objects_but_single_metadata_keys():
    before = {
        "name": "Ada",
        "address.line1": "1 Main",
        "address.city": "London",
        "metadata.a": "1",
        "metadata.b": "2",
    }
    after = {
        "name": "Ada",
        "address.line1": "1 Main",
        "address.city": "Paris",
        "metadata.a": "1",
        "metadata.b": "3",
    }
    assert changed_fields(before, after) == {
        "address.line1": "1 Main",
        "address.city": "Paris",
        "metadata.b": "3",
    }
    assert changed_fields(after, after) == {}
    # a field new to the mapping is sent; a field dropped from it is left alone in Stripe
    assert changed_fields({"name": "Ada", "phone": "1"}, {"name": "Ada", "email": "a@x"}) == {"email": "a@x"}


def test_json_round_trip_is_stable():
    flat = {"b": "é", "a": [1, 2], "c": True}
    assert from_json(to_json(flat)) == flat
    assert to_json(flat) == to_json(dict(reversed(list(flat.items()))))
    assert from_json(None) == {} and from_json("not json") == {}


def test_a_converter_remembers_each_text_without_sharing_results_between_payloads():
    """`converter` coerces a repeated text once per field path: the same values and errors as `coerce`,
    and a list or object handed out is a copy (a payload edited later never changes another)."""
    from dbt_stripe_sync.payload import converter

    locales = converter("customer", "preferred_locales")
    first = locales('["en","fr"]')
    assert first == coerce('["en","fr"]', field_spec("customer", "preferred_locales")) == ["en", "fr"]
    first.append("de")
    assert locales('["en","fr"]') == ["en", "fr"]
    tiers = converter("price", "tiers")
    text = '[{"up_to": 5, "flat_amount": 3}]'
    one = tiers(text)
    one[0]["up_to"] = 99
    assert tiers(text) == coerce(text, field_spec("price", "tiers"))
    assert tiers(text)[0]["up_to"] == 5
    for _ in range(2):  # an error is raised every time, never remembered as a value
        with pytest.raises(CoercionError, match="JSON array"):
            locales('["en",')
    vip = converter("customer", "tax_exempt")
    assert [vip("none"), vip("none")] == ["none", "none"]
    with pytest.raises(CoercionError, match="not one of"):
        vip("nope")
