"""Tags rewritten after a run's deletes: an object a row bound to before another model's delete of it
was planned (doomed.py `Retag`) moved to the row's model, so it carries that row's tag
(`metadata.dbt_stripe_sync`), as recovery of pending creates and tag look-ups expect."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from dbt_stripe_sync.doomed import Retag, retag_key
from dbt_stripe_sync.gateway import StripeGateway
from dbt_stripe_sync.secrets import redact_all
from dbt_stripe_sync.stripe_objects import adapter_for
from dbt_stripe_sync.tagging import TAG_KEY, object_tag

FINISHED = ("success", "partial")


def send_retags(retags: Sequence[Retag], gw: StripeGateway, runs: Sequence[Any]) -> None:
    """One tag-only update per taken-over object, counted in its new sync's API calls; a failure is
    noted on that sync (the object stays bound to its row; only the tag is stale)."""
    by_name = {r.config.name: r for r in runs}
    for retag in retags:
        run = by_name.get(retag.config.name)
        if run is None or run.summary.status not in FINISHED or getattr(gw, "unavailable", None):
            continue
        tag = object_tag(retag.config.name, retag.key)
        # a tag set is safe to send again: a key of its own, so a tag that comes back (the object taken
        # over, away and back) is applied, not answered with an earlier retag's saved response
        key = f"{retag_key(retag.config, retag.key, retag.stripe_id, None)}_{uuid.uuid4().hex[:12]}"
        try:
            with gw.scope(retag.config.name):
                adapter_for(retag.config.object).update(
                    gw, retag.stripe_id, {"metadata": {TAG_KEY: tag}}, key
                )
        except Exception as exc:  # the tag only: the object and its ledger row are right
            note = f"tag of {retag.stripe_id} not rewritten to {tag}: {redact_all(str(exc))[:200]}"
            run.summary.message = "; ".join(filter(None, [run.summary.message, note]))
