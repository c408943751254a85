"""Shared by subscriptions, invoice items and quotes: resolving `price` / `price_data` and periods."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from dbt_stripe_sync.emulator.errors import invalid, missing_parameter
from dbt_stripe_sync.emulator.resources.base import Obj, check_currency, get_or_404
from dbt_stripe_sync.emulator.store import Store


def resolve_price(
    store: Store, item: dict[str, Any], param: str, *, want_type: str | None, price_key: str = "price"
) -> Obj:
    """The price named by `item[price]`, or a new inactive-product-less inline price from `price_data`."""
    if item.get(price_key) and item.get("price_data"):
        raise invalid(
            f"You may only specify one of these parameters: {price_key}, price_data.",
            param=f"{param}[{price_key}]",
        )
    if item.get("price_data"):
        price = _inline_price(store, item["price_data"], f"{param}[price_data]", want_type)
    elif item.get(price_key):
        price = get_or_404(store, "price", item[price_key], f"{param}[{price_key}]")
    else:
        raise missing_parameter(f"{param}[{price_key}]")
    if not price["active"]:
        raise invalid(
            f"The price specified ({price['id']}) is inactive. This field only accepts active prices.",
            param=f"{param}[{price_key}]",
        )
    if want_type and price["type"] != want_type:
        raise invalid(
            f"The price specified is set to `type={price['type']}` but this field only accepts prices with "
            f"`type={want_type}`.",
            param=f"{param}[{price_key}]",
        )
    return price


def _inline_price(store: Store, data: dict[str, Any], param: str, want_type: str | None) -> Obj:
    from dbt_stripe_sync.emulator.resources.prices import new_price

    product = get_or_404(store, "product", data.get("product"), f"{param}[product]")
    fields: dict[str, Any] = {
        "currency": check_currency(data.get("currency"), f"{param}[currency]"),
        "product": product["id"],
        "active": True,
    }
    for key in ("unit_amount", "unit_amount_decimal", "recurring", "tax_behavior"):
        if key in data:
            fields[key] = data[key]
    if want_type == "recurring" and not data.get("recurring"):
        raise missing_parameter(f"{param}[recurring]")
    price = new_price(store, fields, param)
    return price


def unit_amount(price: Obj) -> int:
    if price.get("unit_amount") is not None:
        return int(price["unit_amount"])
    if price.get("unit_amount_decimal") is not None:
        return round(float(price["unit_amount_decimal"]))
    return 0


def add_interval(timestamp: int, interval: str, count: int = 1) -> int:
    """`timestamp` moved by `count` day/week/month/year, month-end clamped as Stripe does."""
    start = dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)
    if interval == "day":
        return timestamp + 86400 * count
    if interval == "week":
        return timestamp + 7 * 86400 * count
    months = count * (12 if interval == "year" else 1)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())
