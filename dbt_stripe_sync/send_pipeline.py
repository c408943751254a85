"""Checkpoint, send and record the writes of one or more syncs, with no barrier between batches.

Each sync's writes form a lane. A lane's batch is checkpointed (pending, with its idempotency key) in
the ledger before any of its writes is submitted, so the crash-safety order holds per write; but the
next batch is checkpointed while the current one is in flight, and outcomes are recorded in batches
as they complete. Lanes are interleaved write by write, so syncs on different endpoints use their
budgets at the same time (Stripe limits each endpoint to 25/s, the account to 100/s live).

All warehouse work happens on the caller's thread; the pool's threads only talk to Stripe. The
caller may do other warehouse work (plan the next sync) between `add` calls: what was submitted
keeps going meanwhile.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from dbt_stripe_sync.crashpoints import crashpoint

MAX_WORKERS = 64  # threads sending at once, whatever the number of accounts and syncs

# (change) -> (ledger entry, bucket, reason): one write sent and its outcome, on a pool thread
SendOne = Callable[[Any], tuple[Any, str, str | None]]


@dataclass(eq=False)
class Lane:
    """One sync's writes in the pipeline."""

    sync: str
    send_one: SendOne
    pending: Callable[[Any], Any]  # change -> its pending ledger entry (the checkpoint)
    add_result: Callable[[Any, str, str | None], None]  # (change, bucket, reason) -> counted
    on_not_sent: Callable[[int], None]  # writes not attempted (Stripe unreachable)
    width: int = 4  # writes it can usefully keep in flight (its accounts' concurrency budgets)
    checkpoint: bool = True
    # change -> the change under its own idempotency key, given as it is checkpointed (applier.py)
    own_key: Callable[[Any], Any] | None = None
    todo: deque = field(default_factory=deque)  # not yet checkpointed
    ready: deque = field(default_factory=deque)  # checkpointed, not yet submitted
    done: list = field(default_factory=list)  # (change, entry, bucket, reason), not yet recorded
    in_flight: int = 0  # submitted, not yet answered
    # More writes, planned on demand (a sync streamed from its diff): called on the caller's thread when
    # the lane runs low; returns the next writes (maybe none), or None once there are no more.
    refill: Callable[[], Sequence[Any] | None] | None = None


class SendPipeline:
    def __init__(
        self,
        *,
        write: Callable[..., None],  # StateStore.write(entries, crash_inside=..., changelog=...)
        take_changelog: Callable[[str, list[str]], Any],
        on_batch: Callable[[], None],
        unavailable: Callable[[], object],
        batch_size: int,
        workers: int | None = None,
    ) -> None:
        """`workers`: writes in flight at once; None = the sum of the lanes' widths (at most 64)."""
        self._write = write
        self._take = take_changelog
        self._on_batch = on_batch
        self._unavailable = unavailable
        self._size = max(1, batch_size)
        self._fixed_workers = workers
        # Up to twice `workers` writes are submitted (so the pool stays fed while this thread writes to
        # the warehouse). With a fixed `workers` (the `concurrency` setting) only that many send at once;
        # else each waits only for the gateway's limits, whose in-flight bound is per account (a write
        # waiting for its endpoint's rate must not hold a slot another sync's write could use now).
        self._pool = ThreadPoolExecutor(max_workers=MAX_WORKERS * 2, thread_name_prefix="dss-send")
        self._slots = threading.Condition()
        self._sending = 0
        self._lanes: list[Lane] = []
        self._in_flight: dict[Future, tuple[Lane, Any]] = {}
        self._next = 0  # round-robin position
        self._broken: BaseException | None = None
        self.finished = 0  # writes answered (whatever the outcome), for progress

    # ---- public ---------------------------------------------------------------------------------
    def add(self, lane: Lane, changes: Sequence[Any]) -> None:
        """Queue a sync's writes; the first ones are checkpointed and submitted before returning."""
        lane.todo.extend(changes)
        self._lanes.append(lane)
        with self._slots:  # a wider bound may let waiting writes go
            self._slots.notify_all()
        self._pump(block=False)

    def drain(self) -> None:
        """Send everything queued and record every outcome."""
        while self._has_work():
            self._pump(block=True)
        self._pump(block=False, last=True)

    def close(self) -> None:
        """Wait for the writes in flight (their lanes stay pending in the ledger if not recorded)."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> SendPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ------------------------------------------------------------------------------
    def _has_work(self) -> bool:
        return bool(self._in_flight) or any(
            lane.todo or lane.ready or lane.refill is not None for lane in self._lanes
        )

    def _refill(self) -> None:
        """Top up streamed lanes that have run low (less than a batch left): their memory stays at about
        a chunk of planned writes, however long the diff."""
        for lane in self._lanes:
            while lane.refill is not None and len(lane.todo) + len(lane.ready) < self._size:
                more = lane.refill()
                if more is None:
                    lane.refill = None
                else:
                    lane.todo.extend(more)

    def _pump(self, *, block: bool, last: bool = False) -> None:
        """Feed, collect, record. A failure (the warehouse refused a write) breaks the pipeline: nothing
        more is sent, and every later call raises it again; what was checkpointed stays pending."""
        if self._broken is not None:
            raise self._broken
        try:
            self._step(block=block, last=last)
        except BaseException as exc:
            self._broken = exc
            raise

    def _step(self, *, block: bool, last: bool) -> None:
        self._refill()
        self._feed()
        self._collect(block=block and bool(self._in_flight))
        for lane in self._lanes:  # the last call records what is left, however little
            self._record(lane, at_least=1 if last else self._size)

    @property
    def workers(self) -> int:
        """Writes sent at once: fixed, or the sum of the widths of the lanes added so far (at most 64)."""
        wanted = self._fixed_workers or sum(lane.width for lane in self._lanes)
        return max(1, min(MAX_WORKERS, wanted))

    def _feed(self) -> None:
        """Submit writes round-robin over the lanes until the queue is full (2 per worker)."""
        while len(self._in_flight) < self.workers * 2:
            if self._unavailable():  # Stripe is unreachable: checkpoint nothing more, count what is left
                for lane in self._lanes:  # (what is checkpointed already is sent: it fails at once)
                    lane.refill = None  # rows not planned yet are planned again by the next run
                    if lane.todo:
                        lane.on_not_sent(len(lane.todo))
                        lane.todo.clear()
            self._refill()
            lane = self._next_lane()
            if lane is None:
                return
            if not lane.ready:
                self._checkpoint(lane)
            change = lane.ready.popleft()
            future = self._pool.submit(contextvars.copy_context().run, self._send, lane, change)
            self._in_flight[future] = (lane, change)
            lane.in_flight += 1
            if not lane.ready and lane.todo:  # the next batch is checkpointed while this one is sent
                self._checkpoint(lane)

    def _send(self, lane: Lane, change: Any) -> tuple[Any, str, str | None]:
        if not self._fixed_workers:
            return lane.send_one(change)
        with self._slots:
            self._slots.wait_for(lambda: self._sending < self.workers)
            self._sending += 1
        try:
            return lane.send_one(change)
        finally:
            with self._slots:
                self._sending -= 1
                self._slots.notify()

    def _next_lane(self) -> Lane | None:
        """The lane with work and the fewest writes in flight (round-robin among equals): a sync that
        joins late gets the slots that free up first, rather than waiting behind the others' queues."""
        n = len(self._lanes)
        best: Lane | None = None
        at = 0
        for i in range(n):
            lane = self._lanes[(self._next + i) % n]
            if (lane.ready or lane.todo) and (best is None or lane.in_flight < best.in_flight):
                best, at = lane, i
        if best is not None:
            self._next = (self._next + at + 1) % n
        return best

    def _checkpoint(self, lane: Lane) -> None:
        batch = [lane.todo.popleft() for _ in range(min(self._size, len(lane.todo)))]
        if lane.checkpoint:
            if lane.own_key is not None:
                batch = [lane.own_key(c) for c in batch]
            self._write([lane.pending(c) for c in batch])
            crashpoint("after_checkpoint")
        lane.ready.extend(batch)

    def _collect(self, *, block: bool) -> None:
        if not self._in_flight:
            return
        finished, _ = wait(list(self._in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in finished:
            lane, change = self._in_flight.pop(future)
            lane.in_flight -= 1
            lane.done.append((change, *future.result()))
            self.finished += 1

    def _record(self, lane: Lane, at_least: int) -> None:
        while len(lane.done) >= max(at_least, 1):
            chunk, lane.done[:] = lane.done[: self._size], lane.done[self._size :]
            for change, _, bucket, reason in chunk:
                lane.add_result(change, bucket, reason)
            logged = self._take(lane.sync, [change.key for change, *_ in chunk])
            self._write([entry for _, entry, _, _ in chunk], crash_inside="mid_record", changelog=logged)
            crashpoint("after_record")
            self._on_batch()
