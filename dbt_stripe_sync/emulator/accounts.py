"""Stripe Connect in the emulator: one isolated world per connected account.

Each account declared (`Emulator(accounts=[...])`, `emulator.add_account(...)`, `--account` on the
command line, `POST /_emulator/accounts`) gets its own object store, so its ID space, lists and search
hold only its objects. A request with a `Stripe-Account` header naming an account that was not
declared is refused the way Stripe refuses it: 403, `account_invalid`.
"""

from __future__ import annotations

import re

from dbt_stripe_sync.emulator.errors import StripeError

ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,64}$")


def check_account_id(account: str) -> str:
    """The account ID, or ValueError when it does not look like one (`acct_` and letters/digits)."""
    if not isinstance(account, str) or not ACCOUNT_ID.match(account):
        raise ValueError(
            f"not a Stripe account ID: {account!r} (expected acct_ followed by letters and digits)"
        )
    return account


def no_access(account: str, api_key_shown: str) -> StripeError:
    """Stripe's answer to a Stripe-Account header the key cannot act for."""
    return StripeError(
        403,
        f"The provided key '{api_key_shown}' does not have access to account '{account}' (or that account "
        "does not exist). Application access may have been revoked.",
        code="account_invalid",
    )
