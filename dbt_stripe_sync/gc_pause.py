"""Planning without the cyclic garbage collector re-scanning the objects that were alive before it.

By the time a sync is planned, dbt has loaded its manifest and adapter: millions of long-lived
objects. Planning allocates a few small dicts and lists per row, so the collector runs often, and
each older-generation pass walks all of dbt's objects again: ~30 % of a 100,000-row plan's CPU time
(benchmarks/README.md, "`plan` streamed"). `gc.freeze()` moves the objects alive now into a
permanent generation that collections skip; `gc.unfreeze()` hands them back afterwards. Nothing is
disabled: what planning allocates is collected as before, and a cycle among the older objects that
became garbage meanwhile is collected after the plan.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # plans in progress (nested, or in several threads): the last one out unfreezes


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    global _depth
    with _lock:
        if _depth == 0:
            gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
