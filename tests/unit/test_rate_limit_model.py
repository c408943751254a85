"""The gateway's pacing, replayed in simulated time against the emulator's model of Stripe's limiter.

Callers (threads) reach `StripeLimiter.pace` at chosen times; each request then leaves when pacing
lets it, and reaches "Stripe" after a delay of 0..J s (network and thread-scheduling jitter, random
under a seed or arranged adversarially). The arrivals, in time order, go through the emulator's own
`Faults.check_rate` — Stripe's token buckets, `RateBucket` — on a clock set to each arrival. No real
time passes and nothing depends on machine speed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

from dbt_stripe_sync.emulator.errors import StripeError
from dbt_stripe_sync.emulator.faults import FaultConfig, Faults
from dbt_stripe_sync.gateway import rate_limit
from dbt_stripe_sync.gateway.rate_limit import PACING_SHARE, StripeLimiter, endpoint_template


@dataclass(frozen=True)
class Call:
    at: float  # when the caller asks to send
    method: str
    path: str


def _send_times(limiter_limits: dict[str, float], calls: Sequence[Call]) -> list[float]:
    """When each call leaves the client: callers reach `pace` in time order, each at its `at`."""
    now = [0.0]
    limiter = StripeLimiter(
        limiter_limits["rate"],
        endpoint_limit=limiter_limits["endpoint"],
        search_limit=limiter_limits.get("search", 20.0),
        clock=lambda: now[0],
        sleep=lambda _s: None,  # the caller's thread sleeps; other callers keep arriving meanwhile
    )
    order = sorted(range(len(calls)), key=lambda i: calls[i].at)
    sent = [0.0] * len(calls)
    for i in order:
        now[0] = calls[i].at
        sent[i] = calls[i].at + limiter.pace(calls[i].method, calls[i].path)
    return sent


def _rejected(
    server_limits: dict[str, float | None], calls: Sequence[Call], arrivals: Sequence[float]
) -> int:
    """How many calls Stripe (the emulator's limiter model) answers 429, given their arrival times."""
    faults = Faults(
        FaultConfig(
            rate_limit=server_limits["rate"],
            endpoint_rate_limit=server_limits["endpoint"],
            search_rate_limit=server_limits.get("search"),
        )
    )
    clock = [0.0]
    faults.clock = lambda: clock[0]
    rejected = 0
    for i in sorted(range(len(calls)), key=lambda i: arrivals[i]):
        clock[0] = arrivals[i]
        call = calls[i]
        try:
            faults.check_rate(
                search=call.path.endswith("/search"), endpoint=endpoint_template(call.method, call.path)
            )
        except StripeError:
            rejected += 1
    return rejected


def _random_jitter(max_s: float, seed: int) -> Callable[[int, float], float]:
    rng = random.Random(seed)
    return lambda _i, _sent: rng.uniform(0.0, max_s)


def _bunching_jitter(max_s: float, block: int) -> Callable[[int, float], float]:
    """Adversarial: blocks of requests delayed by the most, the next block not at all, so each late
    block lands on top of the punctual one after it."""
    return lambda i, _sent: max_s if (i // block) % 2 == 0 else 0.0


def _converging_jitter(max_s: float) -> Callable[[int, float], float]:
    """The worst case: everything sent within each max_s-long stretch lands at its end, together."""
    return lambda _i, sent: max_s - (sent % max_s)


def _replay(
    limits: dict[str, float],
    calls: Sequence[Call],
    jitter: Callable[[int, float], float],
) -> tuple[int, list[float]]:
    sent = _send_times(limits, calls)
    arrivals = [t + jitter(i, t) for i, t in enumerate(sent)]
    return _rejected(dict(limits), calls, arrivals), sent


TEST_MODE = {"rate": 25.0, "endpoint": 25.0}
LIVE_MODE = {"rate": 100.0, "endpoint": 25.0}


def _creates(n: int, at: float = 0.0) -> list[Call]:
    return [Call(at, "post", "/v1/customers") for _ in range(n)]


@pytest.mark.parametrize(
    "jitter",
    [
        _random_jitter(0.3, seed=1),
        _random_jitter(0.45, seed=2),
        _bunching_jitter(0.45, block=1),
        _bunching_jitter(0.45, block=12),
        _bunching_jitter(0.45, block=40),
        _converging_jitter(0.45),
    ],
    ids=[
        "random-300ms",
        "random-450ms",
        "alternate-450ms",
        "blocks-of-12-450ms",
        "blocks-of-40-450ms",
        "converging-450ms",
    ],
)
def test_a_saturated_endpoint_gets_no_429_under_jitter_and_reaches_95_percent(jitter) -> None:
    """1,000 creates all waiting at once (a full worker pool): none rejected, however up to 0.45 s of
    delay bunches them, and the sustained rate is PACING_SHARE (99 %) of the limit."""
    calls = _creates(1000)
    rejected, sent = _replay(TEST_MODE, calls, jitter)
    assert rejected == 0
    burst = int(25 * rate_limit.PACING_BURST_SHARE)
    sustained = (len(calls) - burst) / (max(sent) - min(sent))  # after the first burst
    assert sustained == pytest.approx(25 * PACING_SHARE)
    assert len(calls) / max(sent) >= 0.95 * 25  # the whole run, burst included: >= 95 %


def test_the_jitter_bound_is_half_a_second_and_the_test_can_fail() -> None:
    """Stripe's bucket holds 25; the client bursts 12 and paces 24.75/s. The worst delays land all
    that was sent within J s at once: 12 + 24.75 J + 1 requests. That fits for J up to about 0.48 s
    and not beyond, so the replay really does detect 429s."""
    assert _replay(TEST_MODE, _creates(300), _converging_jitter(0.47))[0] == 0
    assert _replay(TEST_MODE, _creates(300), _converging_jitter(0.6))[0] > 0


def test_a_burst_as_deep_as_stripes_bucket_would_draw_429s_under_jitter(monkeypatch) -> None:
    """Why the client keeps half of Stripe's bucket unused: bursting its whole depth leaves nothing
    to absorb jitter (here only 0.1 s of it)."""
    monkeypatch.setattr(rate_limit, "PACING_BURST_SHARE", 1.0)
    assert _replay(TEST_MODE, _creates(300), _converging_jitter(0.1))[0] > 0


def test_four_endpoints_share_the_live_global_budget_without_429() -> None:
    """Live limits: 100/s global, 25/s per endpoint. Four syncs' creates (four endpoints) at once run
    at ~99/s in all, and neither the global bucket nor any endpoint's is overdrawn under jitter."""
    paths = ["/v1/customers", "/v1/products", "/v1/prices", "/v1/invoiceitems"]
    calls = [Call(0.0, "post", paths[i % 4]) for i in range(2000)]
    for jitter in (_random_jitter(0.4, seed=3), _bunching_jitter(0.4, block=7), _converging_jitter(0.4)):
        rejected, sent = _replay(LIVE_MODE, calls, jitter)
        assert rejected == 0
        assert len(calls) / max(sent) >= 0.95 * 100


def test_random_traffic_over_many_budgets_never_gets_429() -> None:
    """Callers arriving at random times for creates, updates, reads and searches, several endpoints
    saturated in turn while the global budget binds: no budget at Stripe is ever overdrawn."""
    rng = random.Random(7)
    shapes = [
        ("post", "/v1/customers"),
        ("post", "/v1/customers/cus_{n}"),
        ("get", "/v1/customers/cus_{n}"),
        ("get", "/v1/customers/search"),
        ("post", "/v1/products/prod_{n}"),
        ("delete", "/v1/customers/cus_{n}"),
    ]
    calls = []
    t = 0.0
    for n in range(3000):
        t += rng.expovariate(150.0)  # offered faster than any budget allows: pacing must hold back
        method, path = rng.choice(shapes)
        calls.append(Call(t, method, path.format(n=n)))
    for limits in (TEST_MODE, LIVE_MODE, {"rate": 100.0, "endpoint": 25.0, "search": 20.0}):
        for jitter in (_random_jitter(0.4, seed=11), _converging_jitter(0.4)):
            assert _replay(limits, calls, jitter)[0] == 0, limits


def test_an_endpoint_waiting_on_the_global_budget_is_not_booked_early() -> None:
    """A request held back by the global budget must not have taken its endpoint's slot while it
    waited (or the endpoint's requests would leave bunched): one slot is booked in both at once.
    Here the global budget (10/s) is crowded by 3 other endpoints; endpoint A (limit 4/s) still
    never exceeds its own bucket at Stripe, even with the late requests bunched by jitter."""
    limits = {"rate": 10.0, "endpoint": 4.0}
    others = ["/v1/products", "/v1/prices", "/v1/invoiceitems"]
    calls = [Call(0.0, "post", others[i % 3]) for i in range(60)]
    calls += [Call(0.01 * i, "post", "/v1/customers") for i in range(40)]
    for jitter in (_bunching_jitter(0.4, block=3), _converging_jitter(0.4)):
        assert _replay(limits, calls, jitter)[0] == 0


def test_a_request_due_now_is_not_held_back_by_another_endpoints_queue() -> None:
    """A busy endpoint's requests are booked up to seconds ahead (its own 25/s budget); a read of
    another endpoint (a planning look-up) must still leave at once, not behind that queue in the
    shared global budget — it waited ~0.75 s a time before the global budget became a calendar."""
    calls = _creates(100)  # booked over ~4 s at the customers endpoint
    calls += [Call(0.5 + 0.5 * i, "get", "/v1/products") for i in range(4)]
    sent = _send_times(LIVE_MODE, calls)  # (in test mode the global budget is the endpoint's: it waits)
    assert [round(t - c.at, 6) for t, c in zip(sent[100:], calls[100:], strict=True)] == [0.0] * 4
    for limits in (TEST_MODE, LIVE_MODE):
        assert _replay(limits, calls, _converging_jitter(0.4))[0] == 0


def test_the_global_calendar_never_books_more_than_its_rate_and_burst() -> None:
    """However requests are due (out of order, far ahead, all at once), any window of L seconds holds at
    most rate x L + burst departures, the bound Stripe's bucket is sized against."""
    rng = random.Random(5)
    calendar = rate_limit.SlotCalendar(99.0, burst=50)
    now, departures = 0.0, []
    for _ in range(3000):
        now += rng.expovariate(300.0)
        departures.append(calendar.book(now + rng.choice([0.0, 0.0, rng.uniform(0, 2.0)]), now))
    departures.sort()
    j = 0
    for i, start in enumerate(departures):  # windows starting at each departure, 1 s long
        while j < len(departures) and departures[j] < start + 1.0:
            j += 1
        assert j - i <= 99.0 * 1.0 + 50
    assert len(set(departures)) > 2000  # the calendar did pace: departures are spread, not bunched
