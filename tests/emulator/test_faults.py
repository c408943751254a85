"""Every fault mode does what it says, deterministically under a seed."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request

import pytest
import stripe

from dbt_stripe_sync.emulator import Emulator


def _code(exc: stripe.StripeError) -> str | None:
    """The SDK leaves `.code` empty on 429s; the body's error object still has it."""
    return exc.code or (exc.error.code if exc.error is not None else None)


def test_latency_delays_api_requests_only(emulator_factory, client_factory) -> None:
    emu = emulator_factory(latency_ms=150)
    client = client_factory(emu.url)
    started = time.monotonic()
    client.v1.customers.list()
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    urllib.request.urlopen(f"{emu.url}/_emulator/requests", timeout=5).read()
    assert time.monotonic() - started < 0.1


def _frozen_clock(emu: Emulator) -> list[float]:
    """Stop the emulator's rate-limit clock; it moves only when the test moves it (no timing)."""
    now = [500.0]
    emu.faults.clock = lambda: now[0]
    return now


def _outcomes(call, n: int) -> list[str]:
    results = []
    for _ in range(n):
        try:
            call()
            results.append("ok")
        except stripe.RateLimitError as exc:
            assert exc.http_status == 429 and _code(exc) == "rate_limit"
            results.append("429")
    return results


def test_rate_limit_answers_429_and_recovers(emulator_factory, client_factory) -> None:
    emu = emulator_factory(rate_limit=5)
    now = _frozen_clock(emu)
    client = client_factory(emu.url)
    assert _outcomes(client.v1.customers.list, 8) == ["ok"] * 5 + ["429"] * 3
    assert [r["fault"] for r in emu.requests()][-3:] == ["rate_limit"] * 3
    now[0] += 1.0
    client.v1.customers.list()


def test_rate_limit_is_a_token_bucket_refilled_continuously(emulator_factory, client_factory) -> None:
    """Stripe's limiter is a token bucket (see RateBucket): 5/s holds 5 tokens and earns one back
    every 0.2 s, so a request 0.2 s after the bucket ran dry passes where a 1 s window would refuse
    it, and a full second's worth is the most that ever piles up."""
    emu = emulator_factory(rate_limit=5)
    now = _frozen_clock(emu)
    client = client_factory(emu.url)
    assert _outcomes(client.v1.customers.list, 6) == ["ok"] * 5 + ["429"]
    now[0] += 0.2  # one token back
    assert _outcomes(client.v1.customers.list, 2) == ["ok", "429"]
    now[0] += 0.5  # two and a half back: two requests
    assert _outcomes(client.v1.customers.list, 3) == ["ok", "ok", "429"]
    now[0] += 60.0  # idle for a minute: still only 5 saved up
    assert _outcomes(client.v1.customers.list, 6) == ["ok"] * 5 + ["429"]


def test_endpoint_and_global_budgets_are_separate_buckets(emulator_factory, client_factory) -> None:
    emu = emulator_factory(rate_limit=4, endpoint_rate_limit=2)
    _frozen_clock(emu)
    client = client_factory(emu.url)
    assert _outcomes(client.v1.customers.list, 3) == ["ok", "ok", "429"]  # GET /v1/customers: 2
    # another endpoint still has its 2, but the global bucket has only 1 left (3 taken: the endpoint
    # refused the third after the global budget counted it)
    assert _outcomes(client.v1.products.list, 2) == ["ok", "429"]


def test_search_has_its_own_rate_limit(emulator_factory, client_factory) -> None:
    emu = emulator_factory(search_rate_limit=2)
    _frozen_clock(emu)
    client = client_factory(emu.url)
    client.v1.customers.search(params={"query": "email:'a@b.c'"})
    client.v1.customers.search(params={"query": "email:'a@b.c'"})
    with pytest.raises(stripe.RateLimitError):
        client.v1.customers.search(params={"query": "email:'a@b.c'"})
    for _ in range(5):  # ordinary calls are not limited by the search budget
        client.v1.customers.list()


def _create_many(client: stripe.StripeClient, n: int) -> list[str]:
    outcomes = []
    for i in range(n):
        try:
            outcomes.append(client.v1.customers.create(params={"name": f"c{i}"}).id)
        except stripe.APIError as exc:
            assert exc.http_status == 500
            outcomes.append("500")
    return outcomes


def test_error_rate_answers_500s_without_applying_them(emulator_factory, client_factory) -> None:
    emu = emulator_factory(error_rate=0.4, seed=11)
    outcomes = _create_many(client_factory(emu.url), 40)
    failures = outcomes.count("500")
    assert 5 <= failures <= 30
    assert len(emu.objects("customer")) == 40 - failures  # a 500 applied nothing
    errors = [r for r in emu.requests() if r["status"] == 500]
    assert all(r["fault"] == "error" for r in errors)


def test_error_rate_sets_should_retry_on_some(emulator_factory) -> None:
    emu = emulator_factory(error_rate=1.0, seed=2)
    headers = []
    for _ in range(12):
        request = urllib.request.Request(
            f"{emu.url}/v1/customers", headers={"Authorization": "Bearer sk_test_x"}, method="GET"
        )
        try:
            urllib.request.urlopen(request, timeout=5)
        except urllib.error.HTTPError as exc:
            assert exc.code == 500
            assert exc.headers["Request-Id"].startswith("req_")
            headers.append(exc.headers.get("Stripe-Should-Retry"))
    assert "true" in headers and None in headers


def test_faults_are_deterministic_under_a_seed(emulator_factory, client_factory) -> None:
    def run(seed: int) -> list[str]:
        emu = emulator_factory(error_rate=0.3, seed=seed)
        return _create_many(client_factory(emu.url), 25)

    first, second, other = run(5), run(5), run(6)
    assert first == second  # same statuses and even the same ids
    assert [o == "500" for o in first] != [o == "500" for o in other]


def test_dropped_response_leaves_the_object_created(emulator_factory, client_factory) -> None:
    emu = emulator_factory(drop_rate=1.0)
    client = client_factory(emu.url)
    opts: stripe.RequestOptions = {"idempotency_key": "create-ada"}
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create(params={"name": "Ada"}, options=opts)
    (created,) = emu.objects("customer")
    assert created["name"] == "Ada"
    assert emu.requests()[-1]["fault"] == "dropped"
    # Retrying with the same key recovers the response instead of creating a duplicate.
    emu.set_faults(drop_rate=0.0)
    again = client.v1.customers.create(params={"name": "Ada"}, options=opts)
    assert again.id == created["id"] and len(emu.objects("customer")) == 1
    assert emu.requests()[-1]["replayed"] is True


def test_drops_plus_idempotent_retries_create_each_object_once(emulator_factory, client_factory) -> None:
    # 500s that are not saved for their key (replay_errors=False): a retry with the key can succeed
    emu = emulator_factory(drop_rate=0.3, error_rate=0.1, seed=4, replay_errors=False)
    client = client_factory(emu.url)
    ids = set()
    for i in range(30):
        opts: stripe.RequestOptions = {"idempotency_key": f"cus-{i}"}
        for _attempt in range(10):
            try:
                ids.add(client.v1.customers.create(params={"name": f"n{i}"}, options=opts).id)
                break
            except (stripe.APIConnectionError, stripe.APIError):
                continue
    assert len(ids) == 30 and len(emu.objects("customer")) == 30
    assert any(r["fault"] == "dropped" for r in emu.requests())


def test_drop_rate_only_affects_writes(emulator_factory, client_factory) -> None:
    emu = emulator_factory(drop_rate=1.0)
    client = client_factory(emu.url)
    for _ in range(5):
        client.v1.customers.list()


def test_lock_timeout_rate_rejects_writes_without_applying(emulator_factory, client_factory) -> None:
    emu = emulator_factory(lock_timeout_rate=1.0)
    client = client_factory(emu.url)
    customer_list = client.v1.customers.list()  # reads are never locked out
    assert customer_list.data == []
    with pytest.raises(stripe.RateLimitError) as err:
        client.v1.customers.create(params={"name": "x"})
    assert (err.value.http_status, _code(err.value)) == (429, "lock_timeout")
    assert err.value.headers is not None and err.value.headers.get("Stripe-Should-Retry") == "true"
    assert emu.objects("customer") == []


def test_concurrent_writes_to_one_object_hit_lock_timeout(emulator_factory, client_factory) -> None:
    emu = emulator_factory()
    client = client_factory(emu.url)
    customer = client.v1.customers.create(params={"name": "shared"})
    other = client.v1.customers.create(params={"name": "other"})
    emu.set_faults(latency_ms=300)
    outcomes: dict[str, str] = {}

    def update(name: str, object_id: str) -> None:
        try:
            client_factory(emu.url).v1.customers.update(object_id, params={"name": name})
            outcomes[name] = "ok"
        except stripe.RateLimitError as exc:
            outcomes[name] = _code(exc) or "429"

    threads = [
        threading.Thread(target=update, args=("first", customer.id)),
        threading.Thread(target=update, args=("second", customer.id)),
        threading.Thread(target=update, args=("elsewhere", other.id)),
    ]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=10)
    assert outcomes == {"first": "ok", "second": "lock_timeout", "elsewhere": "ok"}


def test_faults_never_apply_to_emulator_endpoints(emulator_factory) -> None:
    emu = emulator_factory(error_rate=1.0, rate_limit=1, latency_ms=0)
    for _ in range(5):
        with urllib.request.urlopen(f"{emu.url}/_emulator/requests", timeout=5) as response:
            assert response.status == 200


def test_set_faults_validates_names_and_values(emu: Emulator) -> None:
    with pytest.raises(TypeError):
        emu.set_faults(explode=True)
    with pytest.raises(ValueError):
        emu.set_faults(error_rate=1.5)
    assert emu.set_faults(latency_ms=1)["latency_ms"] == 1


def test_rate_limited_rate_answers_429_rate_limit_without_applying(emulator_factory, client_factory) -> None:
    emu = emulator_factory(rate_limited_rate=0.5, seed=3)
    client = client_factory(emu.url)
    outcomes = []
    for i in range(40):
        try:
            client.v1.customers.create(params={"name": f"c{i}"})
            outcomes.append("ok")
        except stripe.RateLimitError as exc:
            assert (exc.http_status, _code(exc)) == (429, "rate_limit")
            outcomes.append("429")
    assert 5 <= outcomes.count("429") <= 35
    assert len(emu.objects("customer")) == outcomes.count("ok")  # a 429 applied nothing
    limited = [r for r in emu.requests() if r["status"] == 429]
    assert len(limited) == outcomes.count("429") and all(r["fault"] == "rate_limit" for r in limited)
    # reads are limited too, and the setting can be turned off at run time
    emu.set_faults(rate_limited_rate=1.0)
    with pytest.raises(stripe.RateLimitError):
        client.v1.customers.list()
    emu.set_faults(rate_limited_rate=0.0)
    client.v1.customers.list()


def test_rate_limited_rate_leaves_other_fault_draws_unchanged(emulator_factory, client_factory) -> None:
    """Adding the fault must not reshuffle what a seed means for the other faults: request n draws the
    same 500 as without it, unless it is rate limited."""

    def statuses(rate_limited_rate: float) -> list[int]:
        emu = emulator_factory(error_rate=0.3, seed=5, rate_limited_rate=rate_limited_rate)
        client = client_factory(emu.url)
        for i in range(25):
            with contextlib.suppress(stripe.APIError, stripe.RateLimitError):
                client.v1.customers.create(params={"name": f"c{i}"})
        return [r["status"] for r in emu.requests()]

    plain, limited = statuses(0.0), statuses(0.2)
    assert 429 in limited and 500 in plain
    assert [b for a, b in zip(plain, limited, strict=True) if b != 429] == [
        a for a, b in zip(plain, limited, strict=True) if b != 429
    ]


# ---- Stripe's saved 500s: a keyed POST that began executing replays its 500 ------------------------


def _post(emu: Emulator, path: str, form: str, key: str | None) -> tuple[int, dict[str, str]]:
    headers = {"Authorization": "Bearer sk_test_x", "Content-Type": "application/x-www-form-urlencoded"}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(f"{emu.url}{path}", data=form.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def _saved_500_seed(emulator_factory) -> int:
    """A seed whose first draw is a 500 without Stripe-Should-Retry (the kind Stripe saves)."""
    for seed in range(50):
        emu = emulator_factory(error_rate=1.0, seed=seed)
        status, headers = _post(emu, "/v1/customers", "name=probe", None)
        if status == 500 and "Stripe-Should-Retry" not in headers:
            return seed
    raise AssertionError("no seed gives a saved 500")


@pytest.mark.parametrize("applied", [False, True])
def test_keyed_post_500_is_saved_and_replayed_for_the_same_key(emulator_factory, applied) -> None:
    seed = _saved_500_seed(emulator_factory)
    emu = emulator_factory(error_rate=1.0, seed=seed, error_applied_rate=1.0 if applied else 0.0)
    first, _ = _post(emu, "/v1/customers", "name=Ada", "ik-ada")
    emu.set_faults(error_rate=0.0)  # Stripe is healthy again; the key still gets its saved answer
    replays = [_post(emu, "/v1/customers", "name=Ada", "ik-ada") for _ in range(3)]
    assert first == 500
    assert [status for status, _ in replays] == [500, 500, 500]
    assert all(h["Idempotent-Replayed"] == "true" and "Stripe-Should-Retry" not in h for _, h in replays)
    log = emu.requests()
    assert log[0]["fault"] == ("error_applied" if applied else "error") and not log[0]["replayed"]
    assert all(r["replayed"] and r["status"] == 500 and r["fault"] is None for r in log[1:])
    # the dangerous case: the write took effect although every answer for the key says 500
    assert len(emu.objects("customer")) == (1 if applied else 0)
    status, _ = _post(emu, "/v1/customers", "name=Ada", "ik-ada-2")  # a new key executes anew
    assert status == 200 and len(emu.objects("customer")) == (2 if applied else 1)


def test_500s_that_save_nothing(emulator_factory) -> None:
    """Without a key, with Stripe-Should-Retry: true, or with replay_errors off, a 500 saves nothing:
    the same key executes on the next try."""
    seed = _saved_500_seed(emulator_factory)
    emu = emulator_factory(error_rate=1.0, seed=seed, replay_errors=False, error_applied_rate=1.0)
    assert _post(emu, "/v1/customers", "name=Ada", "ik-1")[0] == 500
    emu.set_faults(error_rate=0.0)
    status, headers = _post(emu, "/v1/customers", "name=Ada", "ik-1")
    assert status == 200 and "Idempotent-Replayed" not in headers
    assert len(emu.objects("customer")) == 1  # error_applied_rate only applies to saved 500s

    emu = emulator_factory(error_rate=1.0, seed=2)
    outcomes = [_post(emu, "/v1/customers", f"name=n{i}", f"ik-{i}") for i in range(12)]
    retry_hinted = [i for i, (_, h) in enumerate(outcomes) if h.get("Stripe-Should-Retry") == "true"]
    assert retry_hinted and len(retry_hinted) < 12
    emu.set_faults(error_rate=0.0)
    again = [_post(emu, "/v1/customers", f"name=n{i}", f"ik-{i}") for i in range(12)]
    assert [i for i, (status, _) in enumerate(again) if status == 200] == retry_hinted


def test_endpoint_rate_limit_counts_each_method_and_path_template(emulator_factory, client_factory) -> None:
    emu = emulator_factory(endpoint_rate_limit=3)
    client = client_factory(emu.url)
    ids = [client.v1.customers.create(params={"name": f"c{i}"}).id for i in range(3)]
    with pytest.raises(stripe.RateLimitError) as err:
        client.v1.customers.create(params={"name": "one too many"})
    assert _code(err.value) == "rate_limit"
    # `POST /v1/customers/{id}` is another endpoint, whichever customer it names
    for i, customer_id in enumerate(ids):
        client.v1.customers.update(customer_id, params={"name": f"u{i}"})
    with pytest.raises(stripe.RateLimitError):
        client.v1.customers.update(ids[0], params={"name": "again"})
    client.v1.customers.list()  # and reads are a third
    assert len(emu.objects("customer")) == 3
    assert [r["fault"] for r in emu.requests()].count("rate_limit") == 2


def test_endpoint_rate_limit_defaults_to_stripes_25(emulator_factory) -> None:
    assert Emulator().settings()["endpoint_rate_limit"] == 25
    assert emulator_factory(endpoint_rate_limit=25).settings()["endpoint_rate_limit"] == 25


def test_a_request_whose_body_was_cut_off_applies_nothing(emu) -> None:
    """A client killed while sending a POST leaves a body shorter than its Content-Length: Stripe never
    sees a complete request, so nothing is created (not a customer missing the fields sent last)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(emu.url)
    body = b"name=Ada&email=ada%40example.com"
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk_test_x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]  # "name=Ada&e": the kill came mid-body
        )
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        assert sock.recv(1024) == b""  # no answer: the connection is closed
    assert emu.objects("customer") == []
