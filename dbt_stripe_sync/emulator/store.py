"""In-memory object store: one insertion-ordered dict per object type, plus search snapshots.

Not thread-safe by itself: the server holds one state lock around every API call.
Stored objects are never mutated in place: handlers `edit()` a copy and `put()` it back, so a
request that fails half-way is undone by `transaction()` (Stripe's writes are atomic).
Search sees each object as it was `search_delay_s` ago, mimicking Stripe's eventually
consistent search index.
"""

from __future__ import annotations

import copy
import random
import string
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

TYPES = (
    "customer",
    "product",
    "price",
    "subscription",
    "subscription_item",
    "invoice",
    "invoiceitem",
    "quote",
)

# Stripe's id prefixes and (approximate) lengths of the random part.
ID_PREFIX = {
    "customer": ("cus", 14),
    "product": ("prod", 14),
    "price": ("price", 24),
    "subscription": ("sub", 24),
    "subscription_item": ("si", 14),
    "invoice": ("in", 24),
    "invoiceitem": ("ii", 24),
    "quote": ("qt", 24),
    "line_item": ("il", 24),
    "quote_line_item": ("li", 24),
    "request": ("req", 14),
}

_ALPHABET = string.ascii_letters + string.digits


class Store:
    def __init__(self, *, seed: int = 0, search_delay_s: float = 0.0, clock: Callable[[], float] = time.time):
        self.seed = seed
        self.search_delay_s = search_delay_s
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self._rng = random.Random(f"ids-{self.seed}")
        self.objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
        self.deleted: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPES}
        # type -> id -> [(visible_at, snapshot or None for deleted)], only kept when search lags.
        self._search_versions: dict[str, dict[str, list[tuple[float, dict[str, Any] | None]]]] = {
            t: {} for t in TYPES
        }
        self.counters: dict[str, int] = {}
        # (type, id, previous object or None, previous deleted stub or None) while a transaction runs.
        self._journal: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Undo every put/delete made inside the block if it raises."""
        self._journal = []
        try:
            yield
        except BaseException:
            for type_name, object_id, previous, stub in reversed(self._journal):
                if previous is None:
                    self.objects[type_name].pop(object_id, None)
                else:
                    self.objects[type_name][object_id] = previous
                if stub is None:
                    self.deleted[type_name].pop(object_id, None)
                else:
                    self.deleted[type_name][object_id] = stub
                self._snapshot(type_name, object_id, previous)
            raise
        finally:
            self._journal = None

    def _record(self, type_name: str, object_id: str) -> None:
        if self._journal is not None:
            self._journal.append(
                (
                    type_name,
                    object_id,
                    self.objects[type_name].get(object_id),
                    self.deleted[type_name].get(object_id),
                )
            )

    def edit(self, type_name: str, object_id: str) -> dict[str, Any]:
        """A private copy of a stored object, to change and `put()` back."""
        return copy.deepcopy(self.objects[type_name][object_id])

    def new_id(self, kind: str) -> str:
        prefix, length = ID_PREFIX[kind]
        return f"{prefix}_" + "".join(self._rng.choice(_ALPHABET) for _ in range(length))

    def random_code(self, length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(length))

    def next_number(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]

    def now(self) -> int:
        return int(self.clock())

    def get(self, type_name: str, object_id: str) -> dict[str, Any] | None:
        return self.objects[type_name].get(object_id)

    def put(self, type_name: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace (keeps first insertion position) and record a search snapshot."""
        self._record(type_name, obj["id"])
        self.objects[type_name][obj["id"]] = obj
        self._snapshot(type_name, obj["id"], obj)
        return obj

    def delete(self, type_name: str, object_id: str, *, keep_stub: bool = False) -> None:
        self._record(type_name, object_id)
        obj = self.objects[type_name].pop(object_id, None)
        if obj is not None and keep_stub:
            self.deleted[type_name][object_id] = {"id": object_id, "object": obj["object"], "deleted": True}
        self._snapshot(type_name, object_id, None)

    def newest_first(self, type_name: str) -> list[dict[str, Any]]:
        return list(reversed(self.objects[type_name].values()))

    def searchable(self, type_name: str) -> list[dict[str, Any]]:
        """Objects as the search index currently sees them, newest first."""
        if self.search_delay_s <= 0:
            return self.newest_first(type_name)
        now = self.clock()
        seen: list[dict[str, Any]] = []
        for versions in self._search_versions[type_name].values():
            visible = [snap for at, snap in versions if at <= now]
            if visible and visible[-1] is not None:
                seen.append(visible[-1])
        return list(reversed(seen))

    def _snapshot(self, type_name: str, object_id: str, obj: dict[str, Any] | None) -> None:
        if self.search_delay_s <= 0:
            return
        now = self.clock()
        versions = self._search_versions[type_name].setdefault(object_id, [])
        # Drop versions already superseded by a newer visible one.
        visible = [i for i, (at, _snap) in enumerate(versions) if at <= now]
        if len(visible) > 1:
            del versions[: visible[-1]]
        versions.append((now + self.search_delay_s, copy.deepcopy(obj) if obj is not None else None))

    def iter_all(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for type_name, objs in self.objects.items():
            for obj in objs.values():
                yield type_name, obj
