"""The field catalog against the installed stripe SDK's generated parameter types."""

from __future__ import annotations

import time

import pytest

from dbt_stripe_sync import stripe_catalog as cat
from dbt_stripe_sync.stripe_catalog import ParamSpec


def test_customer_create_basic_fields() -> None:
    params = cat.operation_params("customer", "create")
    assert params["email"].kind == "string"
    assert params["address"].kind == "object"
    assert params["address"].emptyable  # Literal[''] | CustomerCreateParamsAddress
    assert cat.resolve_path("customer", "create", "address.line1") == ParamSpec("string")
    locales = params["preferred_locales"]
    assert locales.kind == "array" and locales.items is not None and locales.items.kind == "string"


def test_request_options_are_excluded() -> None:
    params = cat.operation_params("customer", "create")  # CustomerCreateParams extends RequestOptions
    assert not cat.REQUEST_OPTION_KEYS & set(params)
    assert "api_key" not in params and "idempotency_key" not in params and "content_type" not in params


def test_expand_is_a_parameter_but_not_a_field() -> None:
    assert "expand" in cat.operation_params("customer", "update")
    assert "expand" not in cat.field_paths("customer", "update")
    assert cat.resolve_path("customer", "update", "expand") is None


def test_price_recurring_interval_is_enum_and_currency_required() -> None:
    interval = cat.resolve_path("price", "create", "recurring.interval")
    assert interval is not None and interval.kind == "enum"
    assert "month" in interval.enum and "year" in interval.enum
    assert interval.required  # required inside `recurring`
    assert cat.operation_params("price", "create")["currency"].required
    assert not cat.operation_params("price", "create")["unit_amount"].required


def test_required_flags_follow_the_sdk() -> None:
    # The SDK marks no SubscriptionCreateParams key required (customer may come from a customer_account).
    assert not cat.operation_params("subscription", "create")["customer"].required
    assert cat.resolve_path("subscription", "create", "items[0].price") == ParamSpec("string")
    assert cat.operation_params("product", "create")["name"].required
    assert cat.resolve_path("price", "create", "product_data.name") == ParamSpec("string", required=True)


def test_subscription_item_price_paths() -> None:
    paths = cat.field_paths("subscription", "create")
    assert paths["items"].kind == "array"
    assert paths["items[]"].kind == "object"
    assert paths["items[].price"].kind == "string"
    for path in ("items[0].price", "items[12].price", "items[].price"):
        assert cat.resolve_path("subscription", "create", path) == ParamSpec("string")


def test_metadata_is_a_map_of_strings() -> None:
    paths = cat.field_paths("customer", "create")
    assert paths["metadata"].kind == "map"
    assert cat.resolve_path("customer", "create", "metadata.plan") == ParamSpec("string")
    assert cat.resolve_path("customer", "create", "metadata.any_key_at_all") == ParamSpec("string")
    assert cat.resolve_path("customer", "create", "metadata.a.b") == ParamSpec("string")  # the key "a.b"
    assert cat.resolve_path("customer", "create", "metadata.a[0]") is None
    assert cat.resolve_path("subscription", "create", "items[0].metadata.seat") == ParamSpec("string")


def test_field_paths_include_intermediate_nodes_and_leaves() -> None:
    paths = cat.field_paths("customer", "create")
    for path in (
        "name",
        "address",
        "address.line1",
        "shipping.address.city",
        "invoice_settings.custom_fields[].name",
    ):
        assert path in paths, path


def test_unions_and_emptyable() -> None:
    trial_end = cat.resolve_path("subscription", "create", "trial_end")
    assert trial_end is not None and trial_end.kind == "union"
    kinds = {alt.kind for alt in trial_end.alternatives}
    assert kinds == {"integer", "enum"}
    assert any("now" in alt.enum for alt in trial_end.alternatives)
    business_name = cat.resolve_path("customer", "create", "business_name")
    assert business_name == ParamSpec("string", emptyable=True)


@pytest.mark.parametrize(
    "path",
    [
        "address.line_1",
        "adress",
        "items[0].pirce",
        "items.price",
        "address.line1.x",
        "address..line1",
        "",
        "[0]",
        "name[",
    ],
)
def test_unknown_or_malformed_paths_resolve_to_none(path: str) -> None:
    obj = "subscription" if path.startswith("items") else "customer"
    assert cat.resolve_path(obj, "create", path) is None


def test_suggestion() -> None:
    assert cat.suggest("address.line_1", cat.field_paths("customer", "create")) == "address.line1"
    assert cat.suggest("emial", cat.field_paths("customer", "create")) == "email"
    assert cat.suggest("items[0].pirce", cat.field_paths("subscription", "create")) == "items[0].price"
    assert cat.suggest("zzzzzzzz", ["email", "name"]) is None


def test_operations_map_to_sdk_classes() -> None:
    assert cat.params_class_name("invoice_item", "create") == "InvoiceItemCreateParams"
    assert cat.params_class_name("invoice", "finalize_invoice") == "InvoiceFinalizeInvoiceParams"
    assert "auto_advance" in cat.operation_params("invoice", "finalize_invoice")
    assert "expires_at" in cat.operation_params("quote", "finalize_quote")
    assert "invoice_now" in cat.operation_params("subscription", "cancel")
    for obj in cat.OBJECT_CLASS_PREFIX:
        assert cat.operation_params(obj, "create")
        assert cat.operation_params(obj, "update")


def test_unknown_object_or_operation_raises_keyerror() -> None:
    with pytest.raises(KeyError, match="unknown Stripe object 'coupon'"):
        cat.operation_params("coupon", "create")
    with pytest.raises(KeyError, match="no 'delete' operation on 'price'"):
        cat.operation_params("price", "delete")


def test_results_are_immutable() -> None:
    params = cat.operation_params("customer", "create")
    with pytest.raises(TypeError):
        params["email"] = ParamSpec("integer")  # type: ignore[index]
    cat.field_paths("customer", "create")["zzz"] = ParamSpec("any")  # a copy: the cache is untouched
    assert "zzz" not in cat.field_paths("customer", "create")


def test_catalog_is_fast() -> None:
    cat.operation_params.cache_clear()
    cat._field_paths.cache_clear()
    cat.resolve_path.cache_clear()
    start = time.perf_counter()
    for obj in cat.OBJECT_CLASS_PREFIX:
        for op in ("create", "update", "list", "retrieve"):
            cat.field_paths(obj, op)
    assert time.perf_counter() - start < 0.5
