"""SendPipeline's scheduling, with sends that block until the test lets them go (no timing)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from dbt_stripe_sync.send_pipeline import Lane, SendPipeline

WAIT_S = 60  # a bound for a hung test only; nothing depends on how fast the machine is


@dataclass(frozen=True)
class W:
    """A write (the pipeline reads only its key)."""

    key: str


def _writes(prefix: str, n: int) -> list[W]:
    return [W(f"{prefix}{i}") for i in range(n)]


class Sends:
    """send_one for lanes: records which writes started and holds each until released."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.most_at_once = 0
        self._running = 0
        self._cond = threading.Condition()
        self._released: set[str] = set()

    def __call__(self, write: W) -> tuple[str, str, None]:
        change = write.key
        with self._cond:
            self.started.append(change)
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
            self._cond.notify_all()
            assert self._cond.wait_for(lambda: change in self._released or "*" in self._released, WAIT_S)
            self._running -= 1
        return change, "created", None

    def wait_started(self, n: int) -> list[str]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.started) >= n, WAIT_S)
            return list(self.started)

    def release(self, *changes: str) -> None:
        with self._cond:
            self._released.update(changes)
            self._cond.notify_all()


def _pipeline(workers: int | None = None) -> tuple[SendPipeline, list[str]]:
    recorded: list[str] = []
    pipe = SendPipeline(
        write=lambda entries, **_: recorded.extend(e for e in entries if e.startswith("done:")),
        take_changelog=lambda _sync, _keys: [],
        on_batch=lambda: None,
        unavailable=lambda: None,
        batch_size=1,
        workers=workers,
    )
    return pipe, recorded


def _lane(name: str, sends: Sends, counted: list[str]) -> Lane:
    return Lane(
        name,
        send_one=lambda c: (f"done:{c}", *sends(c)[1:]),
        pending=lambda c: f"pending:{c.key}",
        add_result=lambda c, bucket, _reason: counted.append(c.key),
        on_not_sent=lambda _n: None,
        width=1,
    )


def test_a_sync_that_joins_late_gets_the_next_slots_not_a_place_behind_the_queue() -> None:
    sends, counted = Sends(), []
    pipe, recorded = _pipeline()
    with pipe:
        pipe.add(_lane("a", sends, counted), _writes("a", 10))
        assert sends.wait_started(2) == ["a0", "a1"]  # width 1: two submitted (one buffered)
        pipe.add(_lane("b", sends, counted), _writes("b", 3))
        # the two new slots both go to b, the lane with fewer writes in flight (round-robin gave a one)
        assert sorted(sends.wait_started(4)[2:]) == ["b0", "b1"]
        sends.release("*")
        pipe.drain()
    assert sorted(counted) == sorted([f"a{i}" for i in range(10)] + ["b0", "b1", "b2"])
    assert len(recorded) == 13


def test_a_fixed_concurrency_is_never_exceeded() -> None:
    sends, counted = Sends(), []
    pipe, _ = _pipeline(workers=2)
    with pipe:
        pipe.add(_lane("a", sends, counted), _writes("a", 6))
        pipe.add(_lane("b", sends, counted), _writes("b", 6))
        sends.wait_started(2)
        sends.release("*")
        pipe.drain()
    assert sends.most_at_once <= 2
    assert len(counted) == 12
