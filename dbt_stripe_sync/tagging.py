"""The metadata tags on every object this tool creates.

- `dbt_stripe_sync = "<sync>:<key>"` names the sync and the source key, so an object can be found
  again when Stripe has forgotten the idempotency key of the write that made it.
- `dbt_stripe_sync_state = "<12 hex>"` names the state (ledger) that created it: a short hash of the
  warehouse type, database and state schema — no secret, nothing readable. Two dbt targets sharing
  one Stripe account (dev and CI, say) have two states; an object whose marker names another state
  is never adopted by tag (it is somebody else's). Objects made before the marker existed carry none
  and are adopted as before. The marker is left out when the object's own metadata would otherwise
  exceed Stripe's 50 keys: the user's keys come first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

TAG_KEY = "dbt_stripe_sync"
STATE_KEY = "dbt_stripe_sync_state"
RESERVED_KEYS = (TAG_KEY, STATE_KEY)
_METADATA_MAX_KEYS = 50  # Stripe's limit on one object's metadata


def object_tag(sync_name: str, key: str) -> str:
    tag = f"{sync_name}:{key}"
    if len(tag) > 500:  # Stripe's metadata value limit
        tag = f"{sync_name}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return tag


def state_marker(adapter_type: str, database: str | None, state_schema: str) -> str:
    """The marker of one state: stable across runs, targets sharing the state schema share it."""
    ident = f"{adapter_type}\x1f{database or ''}\x1f{state_schema}".lower()
    return hashlib.sha256(ident.encode()).hexdigest()[:12]


def tag_params(params: Mapping[str, Any], sync_name: str, key: str, marker: str | None) -> dict[str, Any]:
    """The flat params of a create (or re-create) with the tool's tags added."""
    out = dict(params)
    out[f"metadata.{TAG_KEY}"] = object_tag(sync_name, key)
    if marker and _metadata_keys(out) < _METADATA_MAX_KEYS:
        out[f"metadata.{STATE_KEY}"] = marker
    return out


def foreign(obj: Mapping[str, Any], marker: str | None) -> bool:
    """The object was created through another state (its marker names another ledger)."""
    theirs = (obj.get("metadata") or {}).get(STATE_KEY)
    return bool(marker) and isinstance(theirs, str) and bool(theirs) and theirs != marker


def _metadata_keys(params: Mapping[str, Any]) -> int:
    keys: set[str] = set()
    for path, value in params.items():
        if path == "metadata" and isinstance(value, Mapping):
            keys |= {k for k, v in value.items() if v not in ("", None)}
        elif path.startswith("metadata.") and value not in ("", None):
            keys.add(path[len("metadata.") :])
    return len(keys)
