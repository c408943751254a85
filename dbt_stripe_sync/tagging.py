"""The metadata tag on every object this tool creates: it names the sync and the source key, so an
object can be found again when Stripe has forgotten the idempotency key of the write that made it."""

from __future__ import annotations

import hashlib

TAG_KEY = "dbt_stripe_sync"


def object_tag(sync_name: str, key: str) -> str:
    tag = f"{sync_name}:{key}"
    if len(tag) > 500:  # Stripe's metadata value limit
        tag = f"{sync_name}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return tag
