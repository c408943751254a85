"""Deterministic large seeds for the integration_tests billing chain (customers, products, prices,
subscriptions, invoices, invoice items, quotes), with the columns of integration_tests/seeds/.

Every value derives from the row's index, so the same sizes always give the same CSVs; every reference
points at a row that exists (emails of generated customers, price keys of generated prices, an invoice
item on an invoice of the same customer, only one-time prices on invoice items).

    python -m tests.support.scale OUT_DIR [--customers N] ...   # writes raw_*.csv into OUT_DIR
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

Row = dict[str, Any]

COLUMNS: dict[str, tuple[str, ...]] = {
    "raw_customers": (
        "user_id", "email", "full_name", "phone", "street", "city", "country", "plan_tier", "locales",
        "signup_date", "is_vip", "ltv",
    ),
    "raw_products": ("product_key", "product_id", "name", "description", "tier"),
    "raw_prices": ("price_key", "product_key", "unit_amount", "currency", "billing_interval", "nickname"),
    "raw_subscriptions": (
        "subscription_key", "customer_email", "price_key", "quantity", "addon_price_key", "addon_quantity",
        "deal_note",
    ),
    "raw_invoices": ("invoice_key", "customer_email", "description", "days_until_due", "po_number"),
    "raw_invoice_items": (
        "item_key", "customer_email", "invoice_key", "price_key", "amount", "currency", "description",
    ),
    "raw_quotes": ("quote_key", "customer_email", "price_key", "quantity", "header"),
}  # fmt: skip

_CITIES = (("London", "GB"), ("Arlington", "US"), ("Amsterdam", "NL"), ("Paris", "FR"), ("Berlin", "DE"))
_LOCALES = ('["en"]', '["fr","en"]', '["nl"]', "", '["de","en"]')
_TIERS = ("free", "pro", "enterprise")
_EPOCH = dt.date(2024, 1, 1)


@dataclass(frozen=True)
class ChainSizes:
    """Rows per seed. The defaults add up to 2,000 rows."""

    customers: int = 800
    products: int = 20  # three prices each: <p>_monthly, <p>_seat (monthly), <p>_setup (one-time)
    subscriptions: int = 500
    invoices: int = 200
    invoice_items: int = 300  # one priced item per invoice, the rest amount + currency (some pending)
    quotes: int = 120

    @property
    def prices(self) -> int:
        return 3 * self.products

    @property
    def total(self) -> int:
        fields = asdict(self)
        return sum(fields.values()) + self.prices

    def __post_init__(self) -> None:
        for name in ("subscriptions", "invoices", "quotes"):
            if getattr(self, name) > self.customers:
                raise ValueError(f"{name} must not exceed customers (one per customer)")
        if self.invoices and self.invoice_items < self.invoices:
            raise ValueError("invoice_items must be at least invoices (each invoice gets a priced item)")
        if self.products < 1:
            raise ValueError("products must be at least 1")


def email(i: int) -> str:
    return f"user{i:06d}@example.com"


def customers(n: int, *, start: int = 0) -> Iterator[Row]:
    """Customer rows user_id start+1 .. start+n (rows can be generated lazily, for the benchmark)."""
    for i in range(start, start + n):
        city, country = _CITIES[i % len(_CITIES)]
        yield {
            "user_id": i + 1,
            "email": email(i),
            "full_name": f"Customer {i:06d}",
            "phone": f"+1 555 {i % 10000:04d}" if i % 3 else "",
            "street": f"{i % 997 + 1} Main Street",
            "city": city,
            "country": country,
            "plan_tier": _TIERS[i % len(_TIERS)],
            "locales": _LOCALES[i % len(_LOCALES)],
            "signup_date": (_EPOCH + dt.timedelta(days=i % 700)).isoformat(),
            "is_vip": "true" if i % 7 == 0 else "false",
            "ltv": f"{(i * 37) % 100000 / 4:.2f}" if i % 5 else "",
        }


def products(n: int) -> list[Row]:
    return [
        {
            "product_key": f"p{j:03d}",
            "product_id": f"prod_dss_scale_{j:03d}",
            "name": f"Plan {j:03d}",
            "description": f"Generated plan number {j}",
            "tier": _TIERS[j % len(_TIERS)],
        }
        for j in range(n)
    ]


def prices(n_products: int) -> list[Row]:
    rows: list[Row] = []
    for j in range(n_products):
        p = f"p{j:03d}"
        rows += [
            _price(f"{p}_monthly", p, 1000 + 100 * j, "month", f"Plan {j:03d} monthly"),
            _price(f"{p}_seat", p, 300 + 10 * j, "month", f"Plan {j:03d} extra seat"),
            _price(f"{p}_setup", p, 5000 + 50 * j, "", f"Plan {j:03d} setup"),
        ]
    return rows


def _price(key: str, product: str, amount: int, interval: str, nickname: str) -> Row:
    return {
        "price_key": key,
        "product_key": product,
        "unit_amount": amount,
        "currency": "usd",
        "billing_interval": interval,
        "nickname": nickname,
    }


def subscriptions(n: int, n_products: int) -> list[Row]:
    rows = []
    for i in range(n):
        p = f"p{i % n_products:03d}"
        addon = i % 3 == 0
        rows.append(
            {
                "subscription_key": f"s{i:05d}",
                "customer_email": email(i),
                "price_key": f"{p}_monthly",
                "quantity": 1 + i % 5,
                "addon_price_key": f"{p}_seat" if addon else "",
                "addon_quantity": 1 + i % 4 if addon else "",
                "deal_note": f"deal {i}" if i % 4 == 0 else "",
            }
        )
    return rows


def invoices(n: int, n_customers: int) -> list[Row]:
    """Invoices for the last customers (other customers than the first subscriptions')."""
    return [
        {
            "invoice_key": f"inv{k:05d}",
            "customer_email": email(_invoice_customer(k, n_customers)),
            "description": f"Invoice {k}",
            "days_until_due": 14 + k % 3 * 8,
            "po_number": f"PO-{k:05d}" if k % 2 else "",
        }
        for k in range(n)
    ]


def _invoice_customer(k: int, n_customers: int) -> int:
    return n_customers - 1 - k


def invoice_items(n: int, n_invoices: int, n_customers: int, n_products: int) -> list[Row]:
    """Item k < n_invoices: the setup price on invoice k; then amount + currency items, alternately on
    an invoice and pending (no invoice) for the same invoice's customer."""
    rows = []
    for k in range(n):
        inv = k % n_invoices if n_invoices else 0
        customer = email(_invoice_customer(inv, n_customers))
        priced = k < n_invoices
        pending = not priced and k % 2 == 0
        rows.append(
            {
                "item_key": f"ii{k:05d}",
                "customer_email": customer,
                "invoice_key": "" if pending else f"inv{inv:05d}",
                "price_key": f"p{inv % n_products:03d}_setup" if priced else "",
                "amount": "" if priced else 1000 + k,
                "currency": "" if priced else "usd",
                "description": f"Line {k}",
            }
        )
    return rows


def quotes(n: int, n_products: int) -> list[Row]:
    return [
        {
            "quote_key": f"q{k:05d}",
            "customer_email": email(k),
            "price_key": f"p{k % n_products:03d}_monthly",
            "quantity": 1 + k % 3,
            "header": f"Quote {k}",
        }
        for k in range(n)
    ]


def chain(sizes: ChainSizes = ChainSizes()) -> dict[str, list[Row]]:
    """Every seed of the chain, keyed by seed name."""
    return {
        "raw_customers": list(customers(sizes.customers)),
        "raw_products": products(sizes.products),
        "raw_prices": prices(sizes.products),
        "raw_subscriptions": subscriptions(sizes.subscriptions, sizes.products),
        "raw_invoices": invoices(sizes.invoices, sizes.customers),
        "raw_invoice_items": invoice_items(
            sizes.invoice_items, sizes.invoices, sizes.customers, sizes.products
        ),
        "raw_quotes": quotes(sizes.quotes, sizes.products),
    }


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]] | Iterator[Row], columns: Sequence[str]) -> int:
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
            count += 1
    return count


def write_chain(seed_dir: Path, sizes: ChainSizes = ChainSizes()) -> dict[str, int]:
    """Write every seed CSV into `seed_dir`; returns rows per seed."""
    return {
        name: write_csv(seed_dir / f"{name}.csv", rows, COLUMNS[name]) for name, rows in chain(sizes).items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    for name, value in asdict(ChainSizes()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=value)
    args = parser.parse_args(argv)
    sizes = ChainSizes(**{k: getattr(args, k) for k in asdict(ChainSizes())})
    args.out_dir.mkdir(parents=True, exist_ok=True)
    counts = write_chain(args.out_dir, sizes)
    print(json.dumps(counts), f"total={sum(counts.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
