"""Subscription cancels that invoice at once are not deferred with the other deletes.

Deletes go last, dependents first (run_syncs.py). A subscription cancelled with
`proration_behavior: always_invoice` is cancelled with `invoice_now`: Stripe's final invoice sweeps
the customer's pending invoice items into it. One sync at a time, the subscriptions sync (earlier in
sync order) cancels before the invoice items sync creates new pending items, so those go on the
customer's next invoice; deferring the cancel past every wave would bill them on the final one. Such
cancels are therefore sent at the end of their own wave — still before any customer delete, which
stays last.
"""

from __future__ import annotations

from dbt_stripe_sync.config.model import SyncConfig


def cancels_invoice_now(config: SyncConfig) -> bool:
    return config.object == "subscription" and config.options.get("proration_behavior") == "always_invoice"
