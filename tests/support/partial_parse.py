"""Keep dbt's partial parsing valid in a copy of a prebuilt project.

A prebuilt project's `target/partial_parse.msgpack` records a hash of the profile it was parsed
with (dbt: `pprint.pformat(sorted(credentials.connection_info()))`). A copy whose profile differs
(another DuckDB file path, another PostgreSQL schema) makes dbt throw the saved state away ("Unable
to do partial parsing because profile has changed"): a full parse, ~1 s CPU more on the test's
first `dbt build` and on every in-process `dbt-stripe-sync` call before it. The copy's profile hash
is rewritten to the one dbt computes for the test's profile (the same 64 hex characters long), so
the copy parses as dbt would parse it after a `dbt build` of its own; file checksums, vars and
project env vars are still checked by dbt as always.

The profile is mirrored from integration_tests/profiles.yml for the two targets the suite uses.
If the mirror or dbt's hashing drifts, the prebuilt's own hash is not found, nothing is rewritten
(dbt then parses in full: slower, never wrong), and test_prebuilt_projects_parse_partially fails.
"""

from __future__ import annotations

import hashlib
import pprint
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MSGPACK = Path("target") / "partial_parse.msgpack"


def _credentials(env: Mapping[str, str]) -> tuple[Any, dict[str, Any]]:
    """The credentials class and profile fields integration_tests/profiles.yml renders for env."""
    if env["DBT_TARGET"] == "duckdb":
        from dbt.adapters.duckdb.credentials import DuckDBCredentials

        return DuckDBCredentials, {"path": env["DSS_DUCKDB_PATH"], "schema": "main"}
    from dbt.adapters.postgres.connections import PostgresCredentials

    return PostgresCredentials, {
        "host": env["DSS_PG_HOST"],
        "port": int(env["DSS_PG_PORT"]),
        "user": env["DSS_PG_USER"],
        "password": env["DSS_PG_PASSWORD"],
        "dbname": env["DSS_PG_DBNAME"],
        "schema": env["DSS_PG_SCHEMA"],
    }


def profile_hash(env: Mapping[str, str]) -> str:
    """dbt's partial-parse profile hash for the profile `env` selects (dbt/parser/manifest.py)."""
    cls, fields = _credentials(env)
    data = cls.translate_aliases(fields)
    cls.validate(data)
    keys = sorted(cls.from_dict(data).connection_info())
    return hashlib.sha256(pprint.pformat(keys).encode("utf-8")).hexdigest()


def retarget(project: Path, built_with: Mapping[str, str], env: Mapping[str, str]) -> bool:
    """Rewrite the profile hash in `project`'s saved parse state from `built_with`'s profile to
    `env`'s; False (file untouched) when the saved state does not hold the expected hash."""
    path = project / MSGPACK
    if not path.is_file():
        return False
    old, new = profile_hash(built_with).encode(), profile_hash(env).encode()
    data = path.read_bytes()
    if data.count(old) != 1:
        return False
    path.write_bytes(data.replace(old, new))
    return True
