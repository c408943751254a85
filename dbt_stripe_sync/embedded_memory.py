"""DuckDB runs inside this process, so its memory is this process's memory.

Left alone, DuckDB may use 80 % of the machine's RAM, and it keeps every table block it has read
cached up to that limit: a `plan` against a million-row ledger held ~330 MB of DuckDB's for a diff
whose answer is 10,000 rows. Our queries only read (the diff, the key checks), so a DuckDB warehouse
opened by dbt-stripe-sync gets a session cap (`DUCKDB_MEMORY_LIMIT`) unless the profile sets one
(`settings: {memory_limit: ...}` or `config_options: {memory_limit: ...}`: the profile always wins).
DuckDB evicts cached blocks to stay under the cap and spills hash joins, aggregates and sorts to
its temp_directory. A query that still runs out of memory under the cap (a heavy view model, say)
is run again once with DuckDB's own limit restored, so the cap never makes a sync fail; the cap is
restored to what it was when the warehouse closes (the Python API may share the database).
"""

from __future__ import annotations

from typing import Any

DUCKDB_MEMORY_LIMIT = "64MB"
_PROFILE_KEYS = ("memory_limit", "max_memory")


class MemoryCap:
    """The cap set on one open DuckDB warehouse (inactive elsewhere, or when the profile set one)."""

    def __init__(self) -> None:
        self.previous: str | None = None  # DuckDB's limit before the cap; None: no cap is set

    @property
    def active(self) -> bool:
        return self.previous is not None

    def apply(self, adapter_type: str, credentials: Any, execute: Any, query_one: Any) -> None:
        """Cap DuckDB's memory unless this is not DuckDB or the profile sets its own limit."""
        if adapter_type != "duckdb" or profile_sets_limit(credentials):
            return
        self.previous = str(query_one("select current_setting('memory_limit')"))
        execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")

    def lift(self, execute: Any) -> None:
        """Restore DuckDB's limit from before the cap (after an out-of-memory error, and on close)."""
        if self.previous is None:
            return
        previous, self.previous = self.previous, None
        execute(f"SET memory_limit = '{previous.replace(chr(39), '')}'")


def profile_sets_limit(credentials: Any) -> bool:
    for field in ("settings", "config_options"):
        options = getattr(credentials, field, None) or {}
        if any(key in options for key in _PROFILE_KEYS):
            return True
    return False


def is_out_of_memory(exc: BaseException) -> bool:
    """DuckDB's OutOfMemoryException, raw or wrapped by dbt-duckdb in a dbt error."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if type(seen).__name__ == "OutOfMemoryException" or "Out of Memory Error" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
