"""One adapter per Stripe object behind one small interface (see base.StripeObject)."""

from __future__ import annotations

from dbt_stripe_sync.stripe_objects.base import StripeObject
from dbt_stripe_sync.stripe_objects.customer import Customer

_ADAPTERS: dict[str, StripeObject] = {}


def register(adapter: StripeObject) -> StripeObject:
    _ADAPTERS[adapter.name] = adapter
    return adapter


register(Customer())


def adapter_for(object_name: str) -> StripeObject:
    try:
        return _ADAPTERS[object_name]
    except KeyError:
        raise KeyError(f"no adapter for Stripe object {object_name!r}") from None


def _load_optional() -> None:
    """Adapters for the other objects live in their own modules; each registers itself."""
    import importlib

    for module in ("product", "price", "subscription", "invoice", "invoice_item", "quote"):
        try:
            importlib.import_module(f"dbt_stripe_sync.stripe_objects.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"dbt_stripe_sync.stripe_objects.{module}":
                raise


_load_optional()
