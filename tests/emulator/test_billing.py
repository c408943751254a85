"""Subscriptions, invoices, invoice items and quotes through the real SDK."""

from __future__ import annotations

import pytest
import stripe

from dbt_stripe_sync.emulator import Emulator


@pytest.fixture
def catalog(client: stripe.StripeClient) -> dict[str, str]:
    """A customer, a product, a monthly, a yearly and a one-time price."""
    customer = client.v1.customers.create(params={"email": "buyer@example.com", "name": "Buyer"})
    product = client.v1.products.create(params={"name": "Seat"})
    monthly = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 1000,
            "recurring": {"interval": "month"},
        }
    )
    monthly_eur = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "eur",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
        }
    )
    addon = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 200,
            "recurring": {"interval": "month"},
        }
    )
    one_time = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 5000})
    return {
        "customer": customer.id,
        "product": product.id,
        "monthly": monthly.id,
        "monthly_eur": monthly_eur.id,
        "addon": addon.id,
        "one_time": one_time.id,
    }


# -- subscriptions ---------------------------------------------------------------------------------


def test_subscription_lifecycle(client: stripe.StripeClient, catalog: dict[str, str]) -> None:
    sub = client.v1.subscriptions.create(
        params={
            "customer": catalog["customer"],
            "items": [{"price": catalog["monthly"], "quantity": 3}],
            "metadata": {"dbt_id": "s1"},
        }
    )
    assert sub.id.startswith("sub_") and sub.object == "subscription" and sub.status == "active"
    assert sub.customer == catalog["customer"] and sub.currency == "usd"
    (item,) = sub["items"].data
    assert item.id.startswith("si_") and item.object == "subscription_item" and item.quantity == 3
    assert item.price.id == catalog["monthly"] and item.price.object == "price"
    assert item.current_period_end > item.current_period_start

    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "quantity": 5}, {"price": catalog["addon"]}],
            "metadata": {"plan": "team"},
        },
    )
    quantities = {i.price.id: i.quantity for i in updated["items"].data}
    assert quantities == {catalog["monthly"]: 5, catalog["addon"]: 1}
    assert updated.metadata.to_dict() == {"dbt_id": "s1", "plan": "team"}

    removed = client.v1.subscriptions.update(sub.id, params={"items": [{"id": item.id, "deleted": True}]})
    assert [i.price.id for i in removed["items"].data] == [catalog["addon"]]

    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled" and canceled.canceled_at is not None
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    # Metadata stays editable on a canceled subscription, as in Stripe.
    client.v1.subscriptions.update(sub.id, params={"metadata": {"note": "churned"}})


def test_subscription_errors(client: stripe.StripeClient, catalog: dict[str, str]) -> None:
    cases = [
        ({"items": [{"price": catalog["monthly"]}]}, 400, "parameter_missing", "customer"),
        (
            {"customer": "cus_missing", "items": [{"price": catalog["monthly"]}]},
            404,
            "resource_missing",
            "customer",
        ),
        (
            {"customer": catalog["customer"], "items": [{"price": "price_missing"}]},
            404,
            "resource_missing",
            "items[0][price]",
        ),
        (
            {"customer": catalog["customer"], "items": [{"price": catalog["one_time"]}]},
            400,
            None,
            "items[0][price]",
        ),
        (
            {"customer": catalog["customer"], "items": [{"price": catalog["monthly"], "quantity": "two"}]},
            400,
            "parameter_invalid_integer",
            "items[0][quantity]",
        ),
        (
            {
                "customer": catalog["customer"],
                "items": [{"price": catalog["monthly"]}, {"price": catalog["monthly_eur"]}],
            },
            400,
            None,
            "items",
        ),
    ]
    for params, status, code, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.subscriptions.create(params=params)
        assert (err.value.http_status, err.value.code, err.value.param) == (status, code, param), params


def test_failed_subscription_create_leaves_nothing_behind(
    client: stripe.StripeClient, catalog: dict[str, str], emu: Emulator
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.create(
            params={
                "customer": catalog["customer"],
                "items": [{"price": catalog["monthly"]}, {"price": "price_nope"}],
            }
        )
    assert emu.objects("subscription") == [] and emu.objects("subscription_item") == []


def test_subscription_list_by_customer_and_status(
    client: stripe.StripeClient, catalog: dict[str, str]
) -> None:
    other = client.v1.customers.create(params={"name": "Other"})
    a = client.v1.subscriptions.create(
        params={"customer": catalog["customer"], "items": [{"price": catalog["monthly"]}]}
    )
    b = client.v1.subscriptions.create(
        params={"customer": catalog["customer"], "items": [{"price": catalog["addon"]}]}
    )
    client.v1.subscriptions.create(params={"customer": other.id, "items": [{"price": catalog["monthly"]}]})
    client.v1.subscriptions.cancel(a.id)
    mine = client.v1.subscriptions.list(params={"customer": catalog["customer"]})
    assert [s.id for s in mine.data] == [b.id]  # canceled ones are hidden by default
    everything = client.v1.subscriptions.list(params={"customer": catalog["customer"], "status": "all"})
    assert [s.id for s in everything.data] == [b.id, a.id]
    assert [s.id for s in client.v1.subscriptions.list(params={"status": "canceled"}).data] == [a.id]
    found = client.v1.subscriptions.search(params={"query": "status:'canceled'"})
    assert [s.id for s in found.data] == [a.id]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.list(params={"status": "sleeping"})
    assert err.value.code == "parameter_invalid_enum"


def test_subscription_expand_nested(client: stripe.StripeClient, catalog: dict[str, str]) -> None:
    sub = client.v1.subscriptions.create(
        params={"customer": catalog["customer"], "items": [{"price": catalog["monthly"]}]}
    )
    expanded = client.v1.subscriptions.retrieve(
        sub.id, params={"expand": ["customer", "items.data.price.product"]}
    )
    assert expanded.customer.email == "buyer@example.com"  # type: ignore[union-attr]
    assert expanded["items"].data[0].price.product.name == "Seat"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.retrieve(sub.id, params={"expand": ["status"]})


# -- invoices and invoice items ------------------------------------------------------------------


def test_invoice_lifecycle(client: stripe.StripeClient, catalog: dict[str, str]) -> None:
    invoice = client.v1.invoices.create(params={"customer": catalog["customer"], "metadata": {"run": "1"}})
    assert invoice.id.startswith("in_") and invoice.object == "invoice" and invoice.status == "draft"
    assert invoice.lines.object == "list" and invoice.lines.data == [] and invoice.total == 0

    ii = client.v1.invoice_items.create(
        params={
            "customer": catalog["customer"],
            "pricing": {"price": catalog["one_time"]},
            "quantity": 2,
            "invoice": invoice.id,
        }
    )
    assert ii.id.startswith("ii_") and ii.object == "invoiceitem" and ii.invoice == invoice.id
    assert (ii.amount, ii.currency) == (10000, "usd")
    client.v1.invoice_items.create(
        params={"customer": catalog["customer"], "amount": 250, "currency": "usd", "invoice": invoice.id}
    )
    draft = client.v1.invoices.update(invoice.id, params={"description": "March", "metadata": {"run": "2"}})
    assert draft.total == 10250 and len(draft.lines.data) == 2 and draft.description == "March"

    finalized = client.v1.invoices.finalize_invoice(invoice.id)
    assert finalized.status == "open" and finalized.number and finalized.amount_due == 10250
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.finalize_invoice(invoice.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.delete(invoice.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.update(ii.id, params={"quantity": 3})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.delete(ii.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.update(invoice.id, params={"days_until_due": 3})

    voided = client.v1.invoices.void_invoice(invoice.id)
    assert voided.status == "void"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(invoice.id)


def test_zero_total_invoice_is_paid_on_finalize(client: stripe.StripeClient, catalog: dict[str, str]) -> None:
    invoice = client.v1.invoices.create(params={"customer": catalog["customer"]})
    assert client.v1.invoices.finalize_invoice(invoice.id).status == "paid"


def test_draft_invoice_delete_and_list_and_search(
    client: stripe.StripeClient, catalog: dict[str, str]
) -> None:
    keep = client.v1.invoices.create(params={"customer": catalog["customer"]})
    drop = client.v1.invoices.create(params={"customer": catalog["customer"]})
    client.v1.invoice_items.create(
        params={"customer": catalog["customer"], "amount": 1, "currency": "usd", "invoice": drop.id}
    )
    assert client.v1.invoices.delete(drop.id).deleted is True
    assert [i.id for i in client.v1.invoices.list(params={"customer": catalog["customer"]}).data] == [keep.id]
    assert client.v1.invoice_items.list(params={"customer": catalog["customer"]}).data == []
    assert [i.id for i in client.v1.invoices.list(params={"status": "draft"}).data] == [keep.id]
    found = client.v1.invoices.search(
        params={"query": f"customer:'{catalog['customer']}' AND status:'draft'"}
    )
    assert [i.id for i in found.data] == [keep.id]
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoices.create(params={"customer": "cus_missing"})
    assert err.value.code == "resource_missing"


def test_pending_invoice_items_and_errors(client: stripe.StripeClient, catalog: dict[str, str]) -> None:
    pending = client.v1.invoice_items.create(
        params={
            "customer": catalog["customer"],
            "amount": 700,
            "currency": "usd",
            "description": "setup",
            "metadata": {"a": "1"},
        }
    )
    assert pending.invoice is None
    updated = client.v1.invoice_items.update(pending.id, params={"amount": 800, "metadata": {"b": "2"}})
    assert updated.amount == 800 and updated.metadata.to_dict() == {"a": "1", "b": "2"}
    assert [i.id for i in client.v1.invoice_items.list(params={"pending": True}).data] == [pending.id]
    invoice = client.v1.invoices.create(
        params={"customer": catalog["customer"], "pending_invoice_items_behavior": "include"}
    )
    assert invoice.total == 800
    assert client.v1.invoice_items.retrieve(pending.id).invoice == invoice.id
    assert client.v1.invoice_items.list(params={"pending": True}).data == []

    loose = client.v1.invoice_items.create(
        params={"customer": catalog["customer"], "amount": 5, "currency": "usd"}
    )
    assert client.v1.invoice_items.delete(loose.id).deleted is True

    cases = [
        ({"amount": 1, "currency": "usd"}, "parameter_missing", "customer"),
        ({"customer": catalog["customer"], "currency": "usd"}, "parameter_missing", "amount"),
        (
            {"customer": catalog["customer"], "amount": "ten", "currency": "usd"},
            "parameter_invalid_integer",
            "amount",
        ),
        ({"customer": catalog["customer"], "price": catalog["one_time"]}, "parameter_unknown", "price"),
        ({"customer": catalog["customer"], "pricing": {"price": catalog["monthly"]}}, None, "pricing[price]"),
        (
            {"customer": catalog["customer"], "amount": 1, "currency": "usd", "invoice": "in_missing"},
            "resource_missing",
            "invoice",
        ),
    ]
    for params, code, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.invoice_items.create(params=params)
        assert (err.value.code, err.value.param) == (code, param), params


# -- quotes ----------------------------------------------------------------------------------------


def test_quote_lifecycle(client: stripe.StripeClient, catalog: dict[str, str]) -> None:
    quote = client.v1.quotes.create(
        params={
            "customer": catalog["customer"],
            "line_items": [{"price": catalog["monthly"], "quantity": 2}, {"price": catalog["one_time"]}],
            "metadata": {"deal": "42"},
        }
    )
    assert quote.id.startswith("qt_") and quote.object == "quote" and quote.status == "draft"
    assert quote.amount_total == 2 * 1000 + 5000
    lines = client.v1.quotes.line_items.list(quote.id)
    assert [(li.price.id, li.quantity) for li in lines.data] == [
        (catalog["monthly"], 2),
        (catalog["one_time"], 1),
    ]
    expanded = client.v1.quotes.retrieve(quote.id, params={"expand": ["line_items"]})
    assert len(expanded.line_items.data) == 2  # type: ignore[union-attr]

    first_line = lines.data[0].id
    updated = client.v1.quotes.update(
        quote.id, params={"line_items": [{"id": first_line, "quantity": 1}], "description": "Offer"}
    )
    assert updated.amount_total == 1000 and updated.description == "Offer"

    final = client.v1.quotes.finalize_quote(quote.id)
    assert final.status == "open" and final.number
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.quotes.update(quote.id, params={"description": "too late"})
    assert client.v1.quotes.cancel(quote.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.quotes.cancel(quote.id)
    assert [q.id for q in client.v1.quotes.list(params={"status": "canceled"}).data] == [quote.id]


def test_quote_errors(client: stripe.StripeClient, catalog: dict[str, str]) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.quotes.create(
            params={"customer": catalog["customer"], "line_items": [{"price": "price_missing"}]}
        )
    assert (err.value.code, err.value.param) == ("resource_missing", "line_items[0][price]")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.quotes.create(
            params={"customer": catalog["customer"], "line_items": [{"prise": catalog["monthly"]}]}
        )
    assert (err.value.code, err.value.param) == ("parameter_unknown", "line_items[0][prise]")
    no_customer = client.v1.quotes.create(params={"line_items": [{"price": catalog["monthly"]}]})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.quotes.finalize_quote(no_customer.id)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.quotes.retrieve("qt_missing")
    assert err.value.http_status == 404
