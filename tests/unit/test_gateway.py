"""StripeGateway against a scripted HTTP server on 127.0.0.1, through the real Stripe SDK."""

from __future__ import annotations

import contextvars
import logging
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dbt_stripe_sync.gateway import (
    CircuitBreaker,
    StripeGateway,
    StripeRequestError,
    StripeUnavailableError,
    TokenBucket,
    endpoint_template,
    last_request_id,
)
from dbt_stripe_sync.gateway.rate_limit import PACING_BURST_SHARE, PACING_SHARE
from dbt_stripe_sync.gateway.retry import Backoff, parse_retry_after
from dbt_stripe_sync.secrets import InvalidApiKeyError

sys.path.insert(0, os.path.dirname(__file__))
from scripted_server import Recorded, Reply, ScriptedServer, error

pytestmark = pytest.mark.timeout(30)

KEY = "sk_test_51SecretKeyAbcdefghijklmnop1234"


class FakeClock:
    """Monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def sleeps() -> list[float]:
    """Backoff waits only: the rate limiter's pacing has its own sleep (`pacing_sleep`), so no count
    here depends on how fast the machine sends requests."""
    return []


@pytest.fixture
def make_gateway(server, sleeps):
    made: list[StripeGateway] = []

    def make(**kw) -> StripeGateway:
        kw.setdefault("api_base", server.url)
        kw.setdefault("rate_limit", 1000.0)
        kw.setdefault("endpoint_rate_limit", 1000.0)
        kw.setdefault("sleep", sleeps.append)
        kw.setdefault("rng", random.Random(7))
        kw.setdefault("timeout_s", 5.0)
        gw = StripeGateway(kw.pop("api_key", KEY), **kw)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


# -- retry rules -----------------------------------------------------------------------------------


def test_two_500s_then_200_is_three_counted_attempts(server, make_gateway):
    server.script(error(500), error(500), Reply(200, {"id": "cus_1", "object": "customer"}))
    gw = make_gateway()
    assert gw.request("get", "/v1/customers/cus_1") == {"id": "cus_1", "object": "customer"}
    assert len(server.requests) == 3
    s = gw.stats.snapshot()
    assert (s.requests, s.retries) == (3, 2)
    assert (dict(s.by_status), dict(s.by_method)) == ({500: 2, 200: 1}, {"get": 3})


def test_should_retry_false_wins_over_500(server, make_gateway):
    server.script(error(500, headers={"Stripe-Should-Retry": "false"}))
    gw = make_gateway()
    with pytest.raises(StripeRequestError) as ei:
        gw.request("get", "/v1/customers/cus_1")
    assert ei.value.status == 500 and ei.value.retryable is False
    assert len(server.requests) == 1 and gw.stats.requests == 1 and gw.stats.retries == 0


def test_should_retry_true_retries_even_a_400(server, make_gateway):
    server.script(error(400, "whatever", headers={"Stripe-Should-Retry": "true"}), Reply())
    gw = make_gateway()
    gw.request("post", "/v1/customers", {"name": "x"})
    assert len(server.requests) == 2


@pytest.mark.parametrize("code", ["lock_timeout", "rate_limit"])
def test_429_is_retried_even_for_post_without_key(server, make_gateway, code):
    server.script(error(429, code, type="invalid_request_error"), Reply())
    gw = make_gateway()
    gw.request("post", "/v1/customers", {"name": "x"})
    assert len(server.requests) == 2 and gw.stats.by_status == {429: 1, 200: 1}


def test_409_idempotency_in_flight_conflict_is_retried(server, make_gateway):
    server.script(error(409, "idempotency_key_in_use", type="idempotency_error"), Reply())
    gw = make_gateway()
    gw.request("post", "/v1/customers", {"name": "x"}, idempotency_key="ik-1")
    assert len(server.requests) == 2


def test_400_is_not_retried_and_error_is_clean(server, make_gateway):
    server.script(
        error(
            400,
            "parameter_invalid_integer",
            "Invalid integer: abc",
            type="invalid_request_error",
            param="unit_amount",
        )
    )
    gw = make_gateway()
    with pytest.raises(StripeRequestError) as ei:
        gw.request("post", "/v1/prices", {"unit_amount": "abc"}, idempotency_key="ik-2")
    e = ei.value
    assert str(e) == "Stripe 400 parameter_invalid_integer (unit_amount): Invalid integer: abc"
    assert (e.status, e.code, e.type, e.param, e.retryable) == (
        400,
        "parameter_invalid_integer",
        "invalid_request_error",
        "unit_amount",
        False,
    )
    assert e.request_id == "req_1"
    assert len(server.requests) == 1


def test_post_without_idempotency_key_not_retried_after_dropped_connection(server, make_gateway):
    server.script(Reply(action="drop"), Reply())
    gw = make_gateway()
    with pytest.raises(StripeRequestError) as ei:
        gw.request("post", "/v1/customers", {"name": "x"})
    assert ei.value.status is None and ei.value.retryable is False
    assert "outcome unknown" in str(ei.value)
    assert len(server.requests) == 1
    assert gw.stats.requests == 1 and gw.stats.connection_errors == 1


def test_post_with_idempotency_key_retried_after_dropped_connection_with_same_key(server, make_gateway):
    server.script(Reply(action="drop"), Reply(200, {"id": "cus_9"}))
    gw = make_gateway()
    assert gw.request("post", "/v1/customers", {"name": "x"}, idempotency_key="sync-cus-9")["id"] == "cus_9"
    reqs = server.requests
    assert len(reqs) == 2
    assert [r.headers.get("idempotency-key") for r in reqs] == ["sync-cus-9", "sync-cus-9"]
    assert gw.stats.requests == 2 and gw.stats.retries == 1


def test_post_5xx_without_idempotency_key_is_not_retried(server, make_gateway):
    server.script(error(500), Reply())
    gw = make_gateway()
    with pytest.raises(StripeRequestError) as ei:
        gw.request("post", "/v1/customers", {"name": "x"})
    assert ei.value.status == 500 and ei.value.retryable is False
    assert str(ei.value) == "Stripe 500: boom; outcome unknown, not retried (no idempotency key)"
    assert len(server.requests) == 1


def test_get_retried_after_dropped_connection(server, make_gateway):
    server.script(Reply(action="drop"), Reply(200, {"id": "cus_1"}))
    gw = make_gateway()
    assert gw.request("get", "/v1/customers/cus_1")["id"] == "cus_1"
    assert len(server.requests) == 2


def test_exhausted_retries_raise_retryable(server, make_gateway, sleeps):
    server.handler = lambda rec: error(503, message="down")
    gw = make_gateway(max_retries=3)
    with pytest.raises(StripeRequestError) as ei:
        gw.request("delete", "/v1/customers/cus_1")
    assert ei.value.retryable is True and ei.value.attempts == 4 and ei.value.status == 503
    assert len(server.requests) == 4 and gw.stats.requests == 4 and gw.stats.retries == 3
    assert len(sleeps) == 3


def test_invalid_json_success_body_is_retried_for_get(server, make_gateway):
    server.script(Reply(200, "<html>proxy</html>"), Reply(200, {"id": "cus_1"}))
    gw = make_gateway()
    assert gw.request("get", "/v1/customers/cus_1")["id"] == "cus_1"
    assert len(server.requests) == 2


# -- backoff ---------------------------------------------------------------------------------------


def test_backoff_honours_retry_after(server, make_gateway, sleeps):
    server.script(error(429, "rate_limit", headers={"Retry-After": "3"}), Reply())
    gw = make_gateway(max_backoff_s=8.0)
    gw.request("get", "/v1/customers")
    assert sleeps == [3.0]


def test_backoff_full_jitter_is_bounded_and_capped():
    b = Backoff(max_backoff_s=2.0, rng=random.Random(1))
    for retry in range(12):
        ceiling = min(2.0, 0.5 * 2**retry)
        delays = [b.delay(retry) for _ in range(50)]
        assert all(0.0 <= d <= ceiling for d in delays)
    assert max(b.delay(10) for _ in range(200)) > 1.0  # full range is used, not just the bottom
    assert b.delay(0, retry_after_s=5.0) == 5.0


def test_parse_retry_after():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("junk") is None
    assert parse_retry_after("100000") == 60.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=0.0) == 10.0


# -- encoding --------------------------------------------------------------------------------------


def test_nested_params_are_form_encoded_the_stripe_way(server, make_gateway):
    gw = make_gateway()
    gw.request(
        "post",
        "/v1/subscriptions",
        {
            "customer": "cus_1",
            "items": [{"price": "price_a", "quantity": 2}, {"price": "price_b"}],
            "metadata": {"dss_id": "42"},
            "address": {"line1": "1 Main St"},
            "cancel_at_period_end": False,
        },
        idempotency_key="ik-enc",
    )
    gw.request("get", "/v1/customers", {"email": "a@b.c", "expand": ["data.default_source"]})
    post, get = server.requests
    assert post.form == {
        "customer": ["cus_1"],
        "items[0][price]": ["price_a"],
        "items[0][quantity]": ["2"],
        "items[1][price]": ["price_b"],
        "metadata[dss_id]": ["42"],
        "address[line1]": ["1 Main St"],
        "cancel_at_period_end": ["false"],
    }
    assert post.headers["idempotency-key"] == "ik-enc"
    assert post.headers["authorization"] == f"Bearer {KEY}"
    assert get.query == {"email": ["a@b.c"], "expand[0]": ["data.default_source"]}


def test_rejects_non_api_paths_and_methods(make_gateway):
    gw = make_gateway()
    with pytest.raises(ValueError):
        gw.request("get", "https://evil.example/v1/customers")
    with pytest.raises(ValueError):
        gw.request("put", "/v1/customers")
    with pytest.raises(ValueError):
        gw.request("post", "/v1/customers", idempotency_key="k" * 256)


# -- rate limiting ---------------------------------------------------------------------------------


def test_token_bucket_deterministic_rate():
    clock = FakeClock()
    bucket = TokenBucket(10.0, clock=clock, sleep=clock.sleep)
    for _ in range(35):
        bucket.acquire()
    # evenly paced: the first at once, then one every 0.1s
    assert clock.now - 1000.0 == pytest.approx(3.4)
    assert len(clock.sleeps) == 34


def test_token_bucket_with_burst():
    clock = FakeClock()
    bucket = TokenBucket(10.0, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(35):
        bucket.acquire()
    assert clock.now - 1000.0 == pytest.approx(3.0)


def test_token_bucket_never_exceeds_rate_in_any_one_second_window():
    clock = FakeClock()
    bucket = TokenBucket(25.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(200):
        bucket.acquire()
        times.append(clock.now)
        clock.now += 0.013 * (len(times) % 3)  # callers arrive irregularly
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u - t < 1.0 - 1e-9) <= 25


def _burst(limit: float) -> int:
    """Requests the gateway sends at once from rest: PACING_BURST_SHARE of Stripe's bucket."""
    return max(1, int(limit * PACING_BURST_SHARE))


def test_gateway_keeps_to_rate_with_injected_clock(server, make_gateway):
    clock = FakeClock()
    gw = make_gateway(rate_limit=10.0, clock=clock, pacing_sleep=clock.sleep)
    for _ in range(30):
        gw.request("get", "/v1/customers/cus_1")
    # a burst Stripe's bucket (10 deep) absorbs with room to spare, then just under the limit
    assert clock.now - 1000.0 == pytest.approx((30 - _burst(10)) / (10.0 * PACING_SHARE))
    assert len(server.requests) == 30


def test_search_has_its_own_lower_limit(server, make_gateway):
    clock = FakeClock()
    server.handler = lambda rec: Reply(200, {"object": "search_result", "data": [], "has_more": False})
    gw = make_gateway(rate_limit=100.0, search_rate_limit=5.0, clock=clock, pacing_sleep=clock.sleep)
    for _ in range(15):
        list(gw.search_all("/v1/customers", "email:'a@b.c'"))
    assert clock.now - 1000.0 == pytest.approx((15 - _burst(5)) / (5.0 * PACING_SHARE))


def test_default_rates_by_key_mode(make_gateway):
    test = make_gateway(rate_limit=None, endpoint_rate_limit=None)
    assert (test.limiter.global_limit, test.limiter.endpoint_limit, test.limiter.search_limit) == (25, 25, 20)
    live = make_gateway(rate_limit=None, endpoint_rate_limit=None, api_key="rk_live_" + "x" * 24)
    assert (live.limiter.global_limit, live.limiter.endpoint_limit, live.mode) == (100, 25, "live")
    # requests that may usefully be in flight: rate x 0.5 s (Little's law at Stripe's latency)
    assert (test.max_in_flight, live.max_in_flight) == (12, 50)


def test_token_bucket_is_thread_safe_in_real_time():
    bucket = TokenBucket(200.0, burst=1)
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: bucket.acquire(), range(81)))
    assert time.monotonic() - start >= 80 / 200 - 0.02


# -- per-object serialisation ----------------------------------------------------------------------


def _overlaps(a: Recorded, b: Recorded) -> bool:
    return a.started < b.finished and b.started < a.finished


def _run_pair(gw: StripeGateway, keys: tuple[str, str]) -> None:
    barrier = threading.Barrier(2)

    def call(key: str) -> None:
        barrier.wait()
        gw.request("post", "/v1/invoiceitems", {"invoice": key}, idempotency_key=f"ik-{key}", lock_key=key)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(call, keys))


def test_same_lock_key_never_overlaps_different_keys_do(server, make_gateway):
    server.handler = lambda rec: Reply(200, {"id": "ii_1"}, delay_s=0.3)
    gw = make_gateway()
    _run_pair(gw, ("in_1", "in_1"))
    first, second = server.requests
    assert not _overlaps(first, second)

    # different keys: the first request is answered only once the second has arrived (or after 30 s,
    # which a serialized pair would need), so overlapping does not depend on thread scheduling
    both_in = threading.Event()
    arrived: list[int] = []

    def wait_for_the_other(rec):
        arrived.append(1)
        if len(arrived) == 1:
            both_in.wait(30)
        else:
            both_in.set()
        return Reply(200, {"id": "ii_1"})

    server.handler = wait_for_the_other
    gw2 = make_gateway()
    _run_pair(gw2, ("in_1", "in_2"))
    third, fourth = server.requests[2:]
    assert both_in.is_set() and _overlaps(third, fourth)


def test_lock_key_is_held_through_retries(server, make_gateway):
    # first call hits a 500 and retries; the second call (same key) must not slip in between
    server.script(Reply(**{**error(500).__dict__, "delay_s": 0.2}))
    server.handler = lambda rec: Reply(200, {"id": rec.form.get("n", ["?"])[0]}, delay_s=0.05)
    gw = make_gateway()
    started = threading.Event()

    def first():
        started.set()
        gw.request("post", "/v1/invoices/in_1", {"n": "a"}, idempotency_key="ik-a", lock_key="in_1")

    def second():
        started.wait()
        time.sleep(0.05)
        gw.request("post", "/v1/invoices/in_1", {"n": "b"}, idempotency_key="ik-b", lock_key="in_1")

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(first), pool.submit(second)]
        for f in futures:
            f.result()
    assert [r.form["n"][0] for r in server.requests] == ["a", "a", "b"]
    assert len(gw._locks) == 0  # no lock entries leak


# -- timeouts --------------------------------------------------------------------------------------


def test_timeout_ends_a_hung_request(server, make_gateway):
    server.handler = lambda rec: Reply(action="hang")
    gw = make_gateway(timeout_s=0.4, max_retries=1)
    start = time.monotonic()
    with pytest.raises(StripeRequestError) as ei:
        gw.request("get", "/v1/customers/cus_1")
    assert time.monotonic() - start < 5
    assert ei.value.retryable is True and ei.value.status is None and ei.value.attempts == 2
    assert "Timeout" in str(ei.value)
    assert gw.stats.requests == 2 and len(server.requests) == 2


# -- pagination ------------------------------------------------------------------------------------


def _list_handler(objects: list[dict]):
    def handle(rec: Recorded) -> Reply:
        limit = int(rec.query["limit"][0])
        start = 0
        if "starting_after" in rec.query:
            start = [o["id"] for o in objects].index(rec.query["starting_after"][0]) + 1
        page = objects[start : start + limit]
        return Reply(200, {"object": "list", "data": page, "has_more": start + limit < len(objects)})

    return handle


def test_list_all_pages_by_100_with_exact_call_count(server, make_gateway):
    objects = [{"id": f"cus_{i:03d}", "object": "customer"} for i in range(250)]
    server.handler = _list_handler(objects)
    gw = make_gateway()
    with gw.scope("stripe_customers"):
        got = list(gw.list_all("/v1/customers", {"email": "x@y.z"}))
    assert got == objects
    assert len(server.requests) == 3 and gw.stats.for_scope("stripe_customers").requests == 3
    assert [r.query.get("starting_after") for r in server.requests] == [None, ["cus_099"], ["cus_199"]]
    assert all(r.query["limit"] == ["100"] and r.query["email"] == ["x@y.z"] for r in server.requests)


def test_list_all_exact_multiple_of_page_size(server, make_gateway):
    objects = [{"id": f"prod_{i:03d}"} for i in range(200)]
    server.handler = _list_handler(objects)
    gw = make_gateway()
    assert len(list(gw.list_all("/v1/products"))) == 200
    assert gw.stats.requests == 2


def test_search_all_follows_next_page(server, make_gateway):
    server.script(
        Reply(200, {"object": "search_result", "data": [{"id": "a"}], "has_more": True, "next_page": "p2"}),
        Reply(200, {"object": "search_result", "data": [{"id": "b"}], "has_more": False, "next_page": None}),
    )
    gw = make_gateway()
    assert [o["id"] for o in gw.search_all("/v1/customers", "metadata['k']:'v'")] == ["a", "b"]
    first, second = server.requests
    assert first.path == "/v1/customers/search" and first.query["query"] == ["metadata['k']:'v'"]
    assert "page" not in first.query and second.query["page"] == ["p2"]


# -- secrets ---------------------------------------------------------------------------------------


def test_key_never_in_exceptions_or_logs(server, make_gateway, caplog):
    caplog.set_level(logging.DEBUG)
    server.script(
        error(500, message=f"oops {KEY}"),
        error(401, message=f"Invalid API Key provided: {KEY}", type="invalid_request_error"),
        Reply(502, f"<html>bad gateway {KEY}</html>"),
    )
    gw = make_gateway(max_retries=0)
    texts = []
    for _ in range(3):
        with pytest.raises(StripeRequestError) as ei:
            gw.request("get", "/v1/customers")
        texts += [str(ei.value), repr(ei.value), ei.value.message]
    with pytest.raises(StripeRequestError) as ei:  # connection error path
        StripeGateway(KEY, api_base="http://127.0.0.1:9", max_retries=0).request("get", "/v1/x")
    texts += [str(ei.value), repr(ei.value)]
    logging.getLogger("dbt_stripe_sync.gateway").warning("using %s", KEY)
    logging.getLogger("stripe").debug("auth: Bearer " + KEY)
    assert "sk_test_…1234" in caplog.text
    assert all(KEY not in t for t in texts)
    assert KEY not in caplog.text
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_bad_key_is_rejected_without_echo():
    bad = "sk_tset_" + "Z" * 24
    with pytest.raises(InvalidApiKeyError) as ei:
        StripeGateway(bad)
    assert bad not in str(ei.value) and "Z" * 5 not in str(ei.value)
    with pytest.raises(InvalidApiKeyError, match="publishable"):
        StripeGateway("pk_test_" + "Z" * 24)


# -- stats & concurrency ---------------------------------------------------------------------------


def test_scope_counting_is_exact(server, make_gateway):
    server.script(error(500), Reply(), Reply(), Reply())
    gw = make_gateway()
    with gw.scope("stripe_customers"):
        gw.request("get", "/v1/customers/cus_1")  # 500 then 200
    with gw.scope("stripe_prices"):
        gw.request("post", "/v1/prices", {"unit_amount": 5}, idempotency_key="ik-p")
    gw.request("get", "/v1/balance")  # unscoped
    c = gw.stats.for_scope("stripe_customers")
    assert (c.requests, c.retries) == (2, 1)
    assert (dict(c.by_status), dict(c.by_method)) == ({500: 1, 200: 1}, {"get": 2})
    p = gw.stats.for_scope("stripe_prices")
    assert (p.requests, p.retries, dict(p.by_method)) == (1, 0, {"post": 1})
    assert gw.stats.for_scope("nothing").requests == 0
    assert gw.stats.requests == 4 == len(server.requests)
    assert set(gw.stats.scopes()) == {"stripe_customers", "stripe_prices"}


def test_thread_pool_counts_match_server_exactly(server, make_gateway):
    n = {"i": 0}
    lock = threading.Lock()

    def flaky(rec: Recorded) -> Reply:
        with lock:
            n["i"] += 1
            i = n["i"]
        return error(500) if i % 5 == 0 else Reply(200, {"id": f"obj_{i}"})

    server.handler = flaky
    gw = make_gateway()

    def task(i: int) -> None:
        with gw.scope(f"model_{i % 3}"):
            gw.request("get", f"/v1/customers/cus_{i}", lock_key=f"cus_{i % 4}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(task, range(60)))
    s = gw.stats.snapshot()
    assert s.requests == len(server.requests) == 60 + s.retries
    assert sum(gw.stats.for_scope(f"model_{k}").requests for k in range(3)) == s.requests


def test_scope_propagates_with_copied_context(server, make_gateway):
    gw = make_gateway()
    with gw.scope("outer"), ThreadPoolExecutor(2) as pool:
        ctx = contextvars.copy_context()
        pool.submit(ctx.run, gw.request, "get", "/v1/customers/cus_1").result()
    assert gw.stats.for_scope("outer").requests == 1


# -- against the project's Stripe emulator (skipped until it is importable) --------------------------


def test_faulty_emulator_every_write_lands_once_and_counts_match():
    emulator_mod = pytest.importorskip("dbt_stripe_sync.emulator")
    if not hasattr(emulator_mod, "Emulator"):
        pytest.skip("dbt_stripe_sync.emulator.Emulator not available yet")
    em = emulator_mod.Emulator(
        port=0,
        error_rate=0.2,
        drop_rate=0.1,
        lock_timeout_rate=0.1,
        seed=3,
        replay_errors=False,  # every 500 retryable under its key: each write must land
        endpoint_rate_limit=None,
    )
    em.start()
    try:
        # 30 % of attempts fail on purpose: a breaker that tolerates long streaks keeps the test about
        # retries (the breaker's own tests are below)
        breaker = CircuitBreaker(em.url, api_base_env=None, failures_to_open=40, unreachable_after=40)
        gw = StripeGateway(
            KEY,
            api_base=em.url,
            rate_limit=200,
            endpoint_rate_limit=200,
            max_backoff_s=0.05,
            timeout_s=5,
            breaker=breaker,
        )

        def create(i: int) -> str:
            with gw.scope("stripe_customers"):
                params = {"name": f"n{i}", "metadata": {"k": str(i)}}
                return gw.request("post", "/v1/customers", params, idempotency_key=f"cus-{i}")["id"]

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(create, range(40)))
        assert len(set(ids)) == 40
        with gw.scope("listing"):
            assert len(list(gw.list_all("/v1/customers"))) == 40
        assert gw.stats.retries > 0  # the faults were really exercised
        assert gw.stats.requests == len(em.requests())
        scoped = gw.stats.scopes()
        assert scoped["stripe_customers"].requests + scoped["listing"].requests == gw.stats.requests
    finally:
        em.stop()


# -- circuit breaker: an unreachable or failing Stripe ends the run in seconds ----------------------


def _closed_port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


def test_closed_port_opens_the_breaker_after_three_refused_connects(make_gateway, sleeps):
    base = _closed_port()
    gw = make_gateway(api_base=base, api_base_env="STRIPE_API_BASE", max_retries=8)
    with pytest.raises(StripeUnavailableError) as ei:
        gw.request("post", "/v1/customers", {"name": "x"}, idempotency_key="ik-1")
    e = ei.value
    assert (e.status, e.retryable, e.attempts, e.outcome_unknown) == (None, True, 3, False)
    assert isinstance(e, StripeRequestError)
    assert base in str(e) and "STRIPE_API_BASE" in str(e) and "pending" in str(e)
    assert gw.unavailable == e.message
    assert (gw.stats.requests, gw.stats.connection_errors, gw.stats.retries) == (3, 3, 2)
    assert len(sleeps) == 2
    # every further request fails at once, without a network call
    with pytest.raises(StripeUnavailableError):
        gw.request("get", "/v1/customers/cus_1")
    assert gw.stats.requests == 3


def test_real_host_unreachable_says_stripe_api_base_is_not_set():
    breaker = CircuitBreaker("https://api.stripe.com", api_base_env=None, clock=lambda: 0.0)
    for _ in range(3):
        breaker.record_failure("NameResolutionError: no address", connected=False, started_at=0.0)
    assert breaker.reason is not None
    assert breaker.reason.startswith("api.stripe.com is unreachable")
    assert "STRIPE_API_BASE is not set — set it to your emulator/localstripe URL if you meant one" in (
        breaker.reason
    )


def test_breaker_counts_failures_across_requests_not_per_request(server, make_gateway):
    server.handler = lambda rec: error(503, message="down")
    gw = make_gateway(max_retries=1)  # 2 attempts per request
    for _ in range(4):  # the 8th attempt opens the circuit; its own 503 is what it reports
        with pytest.raises(StripeRequestError) as ei:
            gw.request("get", "/v1/customers/cus_1")
        assert not isinstance(ei.value, StripeUnavailableError) and ei.value.status == 503
    with pytest.raises(StripeUnavailableError) as ei:
        gw.request("get", "/v1/customers/cus_2")
    assert "failed 8 requests in a row" in str(ei.value) and server.url in str(ei.value)
    assert len(server.requests) == gw.stats.requests == 8


def test_a_success_resets_the_streak(server, make_gateway):
    server.script(*[error(503)] * 7, Reply(), *[error(503)] * 7, Reply())
    gw = make_gateway(max_retries=10)
    gw.request("get", "/v1/customers/cus_1")
    gw.request("get", "/v1/customers/cus_1")
    assert gw.unavailable is None and len(server.requests) == 16


def test_replayed_5xx_and_4xx_do_not_count_as_outage(server, make_gateway):
    replayed = error(500, headers={"Idempotent-Replayed": "true"})
    server.script(*[error(400)] * 10, *[replayed] * 10)
    gw = make_gateway()
    for i in range(20):
        with pytest.raises(StripeRequestError):
            gw.request("post", "/v1/customers", {"n": str(i)}, idempotency_key=f"ik-{i}")
    assert gw.unavailable is None and len(server.requests) == 20


def test_breaker_opens_on_failures_spanning_15s_without_success():
    clock = FakeClock()
    breaker = CircuitBreaker("http://127.0.0.1:1", api_base_env=None, clock=clock)
    breaker.record_success()
    clock.now += 60  # an idle minute since the last success does not count
    started = clock.now
    clock.now += 0.1
    breaker.record_failure("ReadTimeoutError", connected=True, started_at=started)
    clock.now += 14.7
    breaker.record_failure("ReadTimeoutError", connected=True, started_at=clock.now)
    assert breaker.reason is None  # the streak spans 14.8 s
    clock.now += 0.3
    breaker.record_failure("ReadTimeoutError", connected=True, started_at=clock.now)
    assert breaker.reason is not None and "over 15s" in breaker.reason


def test_hung_stripe_opens_the_breaker_once_attempts_started_15s_ago():
    clock = FakeClock()
    breaker = CircuitBreaker("http://127.0.0.1:1", api_base_env=None, clock=clock)
    clock.now += 30  # two attempts that began together time out 30 s later
    breaker.record_failure("ReadTimeoutError", connected=True, started_at=clock.now - 30)
    assert breaker.reason is None
    breaker.record_failure("ReadTimeoutError", connected=True, started_at=clock.now - 30)
    assert breaker.reason is not None


def test_open_breaker_cuts_short_a_retry_loop_that_is_waiting(server, make_gateway):
    """A request sleeping out a 30 s Retry-After stops at once when other requests open the circuit."""
    server.handler = lambda rec: error(503, headers={"Retry-After": "30"})
    gw = make_gateway(sleep=None, max_retries=8)  # the real, breaker-aware wait
    outcome: dict[str, object] = {}

    def waiting_request() -> None:
        start = time.monotonic()
        try:
            gw.request("post", "/v1/customers", {"name": "x"}, idempotency_key="ik-wait")
        except StripeRequestError as exc:
            outcome["error"] = exc
        outcome["took"] = time.monotonic() - start

    thread = threading.Thread(target=waiting_request)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    # Failures 2..8, from another gateway sharing the breaker (no retries), open the circuit. A separate
    # gateway, not gw with max_retries lowered for a moment: the waiting thread reads max_retries too.
    other = make_gateway(max_retries=0, breaker=gw._breaker)
    for i in range(7):
        with pytest.raises(StripeRequestError):
            other.request("get", f"/v1/customers/cus_{i}")
    thread.join(25)
    assert not thread.is_alive()
    e = outcome["error"]
    assert isinstance(e, StripeUnavailableError) and e.outcome_unknown is True  # the 503 was a write
    assert outcome["took"] < 25  # far less than the 30 s it was told to wait
    assert gw.stats.requests == 1 and other.stats.requests == 7 and len(server.requests) == 8


def test_a_request_gives_up_after_its_time_budget(server, make_gateway):
    clock = FakeClock()
    server.handler = lambda rec: error(503, headers={"Retry-After": "4"})
    gw = make_gateway(
        clock=clock, sleep=clock.sleep, pacing_sleep=clock.sleep, max_retries=20, max_request_time_s=10
    )
    with pytest.raises(StripeRequestError) as ei:
        gw.request("get", "/v1/customers/cus_1")
    assert ei.value.attempts == 3 and "10s limit per request" in str(ei.value)
    assert clock.sleeps == [4.0, 4.0] and len(server.requests) == 3


# -- Stripe's saved 500s and outcome_unknown --------------------------------------------------------


def test_replayed_500_on_keyed_post_stops_retrying_and_says_outcome_unknown(server, make_gateway):
    server.script(error(500), error(500, headers={"Idempotent-Replayed": "true"}), Reply())
    gw = make_gateway(max_retries=8)
    with pytest.raises(StripeRequestError) as ei:
        gw.request("post", "/v1/customers", {"name": "x"}, idempotency_key="ik-saved")
    e = ei.value
    assert (e.status, e.replayed, e.outcome_unknown, e.retryable, e.attempts) == (500, True, True, True, 2)
    assert "look the object up" in str(e)
    assert len(server.requests) == 2 and gw.stats.retries == 1


@pytest.mark.parametrize(
    ("method", "key", "replies", "unknown"),
    [
        ("post", "ik", [Reply(action="drop")] * 2, True),  # lost response to a write
        ("delete", None, [error(503)] * 2, True),
        ("post", "ik", [error(400)], False),  # Stripe refused it: nothing applied
        ("post", "ik", [error(429, "rate_limit")] * 2, False),
        ("get", None, [error(503)] * 2, False),  # a read changes nothing
    ],
)
def test_outcome_unknown_on_every_error(server, make_gateway, method, key, replies, unknown):
    server.script(*replies)
    gw = make_gateway(max_retries=1)
    with pytest.raises(StripeRequestError) as ei:
        gw.request(method, "/v1/customers/cus_1", idempotency_key=key)
    assert ei.value.outcome_unknown is unknown and ei.value.replayed is False


def test_saved_500_against_the_emulator_whose_write_was_applied():
    emulator_mod = pytest.importorskip("dbt_stripe_sync.emulator")
    with emulator_mod.Emulator(error_rate=1.0, error_applied_rate=1.0, seed=_saved_500_seed()) as em:
        gw = StripeGateway(KEY, api_base=em.url, max_backoff_s=0.01)
        with pytest.raises(StripeRequestError) as ei:
            gw.request("post", "/v1/customers", {"name": "Ada"}, idempotency_key="ik-ada")
        assert ei.value.replayed and ei.value.outcome_unknown and ei.value.attempts == 2
        assert [(r["status"], r["replayed"]) for r in em.requests()] == [(500, False), (500, True)]
        assert len(em.objects("customer")) == 1  # applied, though every answer said 500
        gw.close()


def _saved_500_seed() -> int:
    """A seed whose first fault draw is a 500 the emulator saves (no Stripe-Should-Retry)."""
    from dbt_stripe_sync.emulator.faults import FaultConfig, Faults

    for seed in range(50):
        draw = Faults(FaultConfig(error_rate=1.0, seed=seed)).draw(write=True)
        if not draw.should_retry:
            return seed
    raise AssertionError("no such seed")


# -- Stripe's limits: global, per endpoint, search, in flight -----------------------------------------


def test_endpoint_template_is_method_plus_path_with_ids():
    assert endpoint_template("post", "/v1/customers") == "POST /v1/customers"
    assert endpoint_template("post", "/v1/customers/cus_123") == "POST /v1/customers/{id}"
    assert endpoint_template("get", "/v1/customers/search") == "GET /v1/customers/search"
    assert endpoint_template("post", "/v1/products/my-own-id") == "POST /v1/products/{id}"
    assert endpoint_template("post", "/v1/invoices/in_1/finalize") == "POST /v1/invoices/{id}/finalize"
    assert endpoint_template("get", "/v1/quotes/qt_1/line_items") == "GET /v1/quotes/{id}/line_items"
    assert endpoint_template("delete", "/v1/customers/cus_1") == "DELETE /v1/customers/{id}"


def test_each_endpoint_is_paced_under_its_own_limit_and_the_global_one(server, make_gateway):
    clock = FakeClock()
    gw = make_gateway(rate_limit=100.0, endpoint_rate_limit=25.0, clock=clock, pacing_sleep=clock.sleep)
    for i in range(50):  # one endpoint: 25/s binds
        gw.request("post", f"/v1/customers/cus_{i}", {"name": "x"}, idempotency_key=f"ik-{i}")
    assert clock.now - 1000.0 == pytest.approx((50 - _burst(25)) / (25 * PACING_SHARE))
    start = clock.now
    paths = ["/v1/customers", "/v1/products", "/v1/prices", "/v1/invoiceitems", "/v1/quotes"]
    for i in range(100):  # five endpoints in turn: only the global 100/s binds
        gw.request("post", paths[i % 5], {"n": str(i)}, idempotency_key=f"ik-all-{i}")
    # the global bucket is full but for the first loop's last request: a burst of 49, then 99/s; each
    # endpoint alone (20 requests: a burst of 12, then 24.75/s) would have been done in 0.32 s
    assert clock.now - start == pytest.approx((100 - (_burst(100) - 1)) / (100 * PACING_SHARE))


def test_in_flight_requests_never_exceed_max_in_flight(server, make_gateway):
    active, most, lock = [0], [0], threading.Lock()

    def slow(rec: Recorded) -> Reply:  # counts requests being handled; done before the reply is sent
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        return Reply(200, {"id": "x"})

    server.handler = slow
    gw = make_gateway(max_in_flight=2)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: gw.request("get", f"/v1/customers/cus_{i}"), range(6)))
    assert len(server.requests) == 6 and most[0] <= 2 and gw.max_in_flight == 2


# -- plain HTTP: headers, Request-Id, Stripe-Account ---------------------------------------------------


def test_headers_and_request_id_of_each_call(server, make_gateway):
    import stripe

    gw = make_gateway()
    assert last_request_id() is None or isinstance(last_request_id(), str)
    gw.request("post", "/v1/customers", {"name": "x"}, idempotency_key="ik-h", stripe_account="acct_9")
    assert last_request_id() == "req_1"
    gw.request("get", "/v1/customers/cus_1")
    assert last_request_id() == "req_2"
    post, get = server.requests
    assert post.headers["stripe-version"] == stripe.api_version
    assert post.headers["stripe-account"] == "acct_9" and "stripe-account" not in get.headers
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.headers["user-agent"].startswith("dbt-stripe-sync/")
    assert "idempotency-key" not in get.headers


def test_request_id_is_per_thread_context(server, make_gateway):
    gw = make_gateway()
    gw.request("get", "/v1/customers/cus_1")
    seen: list[str | None] = []
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: seen.append(last_request_id())).result()
    assert seen == [None] and last_request_id() == "req_1"


# -- Stripe Connect ----------------------------------------------------------------------------------


def test_connected_accounts_carry_the_header_and_have_their_own_budgets(server, make_gateway):
    """Stripe limits each account separately: a second call for account A waits for A's budget, while
    calls for B and for the platform, made at the same instant, do not wait at all."""
    now = [100.0]
    paced: list[float] = []
    gw = make_gateway(
        rate_limit=1.0, endpoint_rate_limit=1.0, clock=lambda: now[0], pacing_sleep=paced.append
    )
    server.script(*[Reply(200, {"id": f"cus_{i}", "object": "customer"}) for i in range(4)])
    with gw.acting_for("acct_1A"):
        gw.request("post", "/v1/customers", {})
    with gw.acting_for("acct_1B"):
        gw.request("post", "/v1/customers", {})
    gw.request("post", "/v1/customers", {})  # the platform
    with gw.acting_for("acct_1A"):
        gw.request("post", "/v1/customers", {})
    assert [r.headers.get("stripe-account") for r in server.requests] == [
        "acct_1A",
        "acct_1B",
        None,
        "acct_1A",
    ]
    assert len(paced) == 1  # A's second call waits once, for all its budgets at once; nobody else waits
    assert gw.limiter_for("acct_1A") is not gw.limiter_for("acct_1B")
    assert gw.limiter_for(None) is gw.limiter


def test_a_refused_api_key_stops_the_run_after_one_request(server, make_gateway):
    """A 401 is the key, not the row: every later request would be refused alike, so the breaker opens
    at once and nothing more goes out (not one refused request per row), with the key redacted."""
    server.script(error(401, message=f"Invalid API Key provided: {KEY}", type="invalid_request_error"))
    gw = make_gateway(max_retries=3)
    with pytest.raises(StripeRequestError) as first:
        gw.request("post", "/v1/customers/cus_1", {"name": "x"}, idempotency_key="ik-1")
    assert first.value.status == 401 and not isinstance(first.value, StripeUnavailableError)
    for i in range(3):
        with pytest.raises(StripeUnavailableError) as later:
            gw.request("post", f"/v1/customers/cus_{i + 2}", {"name": "y"}, idempotency_key=f"ik-{i + 2}")
    assert len(server.requests) == 1  # one refused request, then none
    reason = str(later.value)
    assert "Stripe refused the API key (HTTP 401" in reason and "STRIPE_API_KEY" in reason
    assert KEY not in reason
