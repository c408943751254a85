"""Model edits several tests share, on the integration project's customers."""

from __future__ import annotations

from typing import Any


def rekey_rejects_and_creates(project: Any) -> None:
    """After the 5 customers are synced: key 2 leaves and key 12 takes over its customer by email (a
    re-key), key 1 changes, rows 6 and 7 share a match email (7 is rejected), row 8's email is invalid
    (rejected before any call), rows 9-11 are new. Rebuilds the models."""
    rows = project.read_seed("raw_customers")
    grace = rows.pop(1)  # key 2 leaves the model ...
    rows[0]["city"] = "Paris"  # key 1 changes
    new = [
        {**grace, "user_id": "12"},  # ... and key 12 takes over its customer by email: a re-key
        {**rows[3], "user_id": "6", "email": "twin@example.com"},
        {**rows[3], "user_id": "7", "email": "twin@example.com"},  # a repeated match email: rejected
        {**rows[3], "user_id": "8", "email": "not-an-email"},  # rejected before any call
        *({**rows[3], "user_id": str(n), "email": f"user{n}@example.com"} for n in (9, 10, 11)),
    ]
    project.write_seed("raw_customers", rows + new)
    project.build()
