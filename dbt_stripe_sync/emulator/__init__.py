"""A local emulator of Stripe's v1 API for the seven objects dbt-stripe-sync syncs.

    from dbt_stripe_sync.emulator import Emulator

    with Emulator(seed=1, latency_ms=5) as emu:
        client = stripe.StripeClient("sk_test_123", base_addresses={"api": emu.url}, max_network_retries=0)

See docs/emulator.md.
"""

from dbt_stripe_sync.emulator.cli import add_arguments, main, run_from_args
from dbt_stripe_sync.emulator.errors import StripeError
from dbt_stripe_sync.emulator.server import Emulator

__all__ = ["Emulator", "StripeError", "add_arguments", "main", "run_from_args"]
