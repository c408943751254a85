"""Planning without the cyclic garbage collector re-scanning the objects that were alive before it.

By the time a sync is planned, dbt has loaded its manifest and adapter: millions of long-lived
objects. Planning allocates a few small dicts and lists per row, so the collector runs often, and
each older-generation pass walks all of dbt's objects again: ~30 % of a 100,000-row plan's CPU time
(benchmarks/README.md, "`plan` streamed"). `gc.freeze()` moves the objects alive now into a
permanent generation that collections skip; `gc.unfreeze()` hands them back afterwards. One full
collection comes first, so that no garbage dbt left behind is frozen with them (at 1M rows that
kept ~25 MB alive through the plan; collected first, the peak is below what it was without). The
collector also runs less often meanwhile (`PLANNING_THRESHOLDS`): a chunk's rows and changes are
acyclic and freed by reference counting, so collecting every 700 allocations mostly re-walks the
chunk still in use (another ~10 %). Nothing is disabled: a cycle made while planning is collected
as before, only later, and one among the older objects is collected after the plan.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# gc.set_threshold while planning (Python's default is 700, 10, 10): a young collection every 10,000
# allocations, an older one every 100 of those, a full one every 1,000 older ones
PLANNING_THRESHOLDS = (10_000, 100, 1_000)

# Plans of fewer rows are left alone: the full collection first costs ~0.2 s on dbt's heap, more than
# the collector would take from a few thousand rows (and a no-op run plans every sync, with no rows).
MIN_ROWS = 5_000

_lock = threading.Lock()
_frozen = 0  # plans in progress that froze (nested, or in several threads): the last one out unfreezes
_spaced = 0  # plans in progress with collections spaced out: the last one out restores the thresholds
_saved: tuple[int, ...] = ()  # the thresholds before the first plan in progress


@contextmanager
def older_objects_frozen(rows: int, *, freeze: bool = True) -> Iterator[None]:
    """Freezes while a plan of `rows` rows (at least MIN_ROWS) is built; does nothing for fewer.
    `freeze=False`: only spaces the collections out (`collections_spaced`)."""
    if rows < MIN_ROWS:
        yield
        return
    with _paused(freeze):
        yield


@contextmanager
def collections_spaced() -> Iterator[None]:
    """PLANNING_THRESHOLDS meanwhile, with no full collection first and nothing frozen: free, so
    used whatever the size — for reading a whole diff and planning fewer rows than pay a freeze
    back. At 10,000 changed rows of a 1M-row model the default thresholds ran one or two full
    collections over dbt's objects while the diff was read and planned (0.13-0.3 s of CPU of
    ~2.5 s: benchmarks/README.md, the diff section)."""
    with _paused(False):
        yield


@contextmanager
def _paused(freeze: bool) -> Iterator[None]:
    global _frozen, _spaced, _saved
    with _lock:
        if freeze and _frozen == 0:
            gc.collect()  # garbage not yet collected would be frozen too, and kept until the plan ends
            gc.freeze()
        if _spaced == 0:
            _saved = gc.get_threshold()
            if _saved[0]:  # 0: automatic collection is off, and stays off
                gc.set_threshold(*(max(a, b) for a, b in zip(_saved, PLANNING_THRESHOLDS, strict=True)))
        _frozen += freeze
        _spaced += 1
    try:
        yield
    finally:
        with _lock:
            _frozen -= freeze
            _spaced -= 1
            if _spaced == 0:
                gc.set_threshold(*_saved)
            if freeze and _frozen == 0:
                gc.unfreeze()


def freeze_alive() -> None:
    """Freeze the objects alive now, with no full collection first, until `thaw()`: for dbt's boot
    (Warehouse.open), whose objects live as long as the warehouse does and whose first collections
    after it (one over all of them as they leave the young generations, then a full one) cost a
    no-op run ~0.17 s. What boot left unreachable (none, on the example project) is kept until
    `thaw()`; nested with the plans' freezes, the last one out unfreezes."""
    global _frozen
    with _lock:
        if _frozen == 0:
            gc.freeze()
        _frozen += 1


def thaw() -> None:
    """Undo one `freeze_alive()`."""
    global _frozen
    with _lock:
        _frozen -= 1
        if _frozen == 0:
            gc.unfreeze()
