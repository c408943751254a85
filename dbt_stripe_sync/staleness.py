"""Is what dbt last wrote (target/manifest.json) still what the project files say?

Compared by content, as dbt's partial parsing does: a model's SQL by the checksum dbt records
for it, a stripe_sync block by its value. A `touch` or a no-op edit changes neither; a real edit
of a selected model's SQL or block since dbt last parsed it does, and the run is refused because
the warehouse (and the manifest users inspect) would not match what is about to be synced.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from dbt_stripe_sync.config.loader import block_of


def stale_models(target_path: str, current: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per selected annotated model whose SQL or block differs from target/manifest.json.

    `current` holds manifest-shaped dicts of the freshly parsed nodes (unique_id, name, checksum,
    config/meta, original_file_path, patch_path). No manifest.json: nothing to compare, no lines.
    """
    path = os.path.join(target_path, "manifest.json")
    try:
        with open(path, encoding="utf-8") as fh:
            written = json.load(fh).get("nodes", {})
    except (OSError, ValueError):
        return []
    problems = []
    for node in current:
        old = written.get(node["unique_id"])
        name = node["name"]
        if old is None:
            problems.append(f"{name} is new since dbt last parsed the project")
        elif (old.get("checksum") or {}).get("checksum") != (node.get("checksum") or {}).get("checksum"):
            problems.append(f"{node.get('original_file_path') or name} (model {name}) was edited")
        elif block_of(old) != block_of(node):
            where = (node.get("patch_path") or "").split("://")[-1] or "its yml"
            problems.append(f"the stripe_sync block of {name} in {where} was edited")
    return problems
