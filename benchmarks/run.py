"""Every issue #10 scenario in one command, each figure beside a baseline measured in the same run.

    python benchmarks/run.py            # default sizes (<= 10 minutes on 2 shared cores)
    python benchmarks/run.py --full     # the 1M-row plan and diff scenarios
    python benchmarks/run.py --smoke    # tiny sizes, 5 ms latency: checks the benchmark works (CI)

Prints one table: figure | value | target | baseline (what) | ratio. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

from benchmarks import bench_diff  # noqa: E402
from dbt_stripe_sync.emulator import Emulator  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    plan_rows: int  # synthetic rows planned in-process (row checks)
    model_rows: int  # customers in the warehouse for plan memory and the diff
    creates: int  # throughput: creates per scenario (4 syncs of creates // 2 each)
    naive: int  # creates of the naive sequential loop
    latency_ms: float
    account: int  # customers already in Stripe for the matching worst case
    connect_creates: int = 200  # Stripe Connect: creates per connected account (x CONNECT_ACCOUNTS)
    run_rows: int = 20_000  # `run` memory: creates of a first sync, streamed vs planned whole


SMOKE = Sizes(
    plan_rows=2_000,
    model_rows=2_000,
    creates=20,
    naive=10,
    latency_ms=5,
    account=150,
    connect_creates=20,
    run_rows=100,
)
DEFAULT = Sizes(
    plan_rows=100_000, model_rows=100_000, creates=1_000, naive=100, latency_ms=100, account=3_000
)
FULL = Sizes(
    plan_rows=1_000_000,
    model_rows=1_000_000,
    creates=1_000,
    naive=100,
    latency_ms=100,
    account=3_000,
    run_rows=100_000,
)


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    target: str
    baseline: str
    ratio: str


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "—"


# ---- a project -----------------------------------------------------------------------------------
def _env(root: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DBT_TARGET": "duckdb",
        "DSS_DUCKDB_PATH": str(root / "bench.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        **extra,
    }


def _sync(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "dbt-stripe-sync"), *args, "--project-dir", str(root), "--profiles-dir", str(root)]
    return subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=1800, check=False)


def _query(root: Path, sql: str) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(root / "bench.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _api(emu: Emulator, key: str = "sk_test_bench"):
    import stripe

    # a naive loop, as users write it: sequential, with the SDK retrying what Stripe says to retry
    return stripe.StripeClient(key, base_addresses={"api": emu.url}, max_network_retries=8)


# ---- 1. planning cost per row ------------------------------------------------------------------------
def planning(sizes: Sizes) -> list[Row]:
    import datetime as dt
    from decimal import Decimal

    from dbt_stripe_sync import row_checks
    from dbt_stripe_sync.config.loader import build
    from dbt_stripe_sync.diff import DiffResult, DiffRow
    from dbt_stripe_sync.planner import Lookups, build_plan
    from dbt_stripe_sync.settings import Settings
    from dbt_stripe_sync.stripe_objects import adapter_for

    fields = {"name": "full_name", "phone": "phone", "address.line1": "street", "address.city": "city"}
    fields |= {"preferred_locales": "locales", "metadata.plan": "plan_tier", "metadata.ltv": "ltv"}
    fields |= {"metadata.signup_date": "signup_date", "metadata.vip": "is_vip"}
    block = {"object": "customer", "mode": "upsert", "primary_key": "user_id"}
    block |= {"match": {"field": "email", "column": "email"}, "fields": fields}
    config = build("stripe_customers", "model.bench.stripe_customers", block)
    values = {"phone": "+1 555 0100", "city": "London", "locales": '["en","fr"]', "plan_tier": "pro"}
    values |= {"signup_date": dt.date(2024, 1, 1), "is_vip": True, "ltv": Decimal("12.50")}
    rows = [
        DiffRow(
            str(i),
            "new",
            f"h{i}",
            {
                **values,
                "user_id": i,
                "email": f"u{i}@example.com",
                "full_name": f"User {i}",
                "street": f"{i} Main St",
            },
            {},
            None,
        )
        for i in range(sizes.plan_rows)
    ]
    diff = DiffResult(rows=rows, model_rows=len(rows))

    def plan_time() -> float:
        t0 = time.perf_counter()
        build_plan(config, adapter_for("customer"), Settings(), diff, Lookups(), 0)
        return time.perf_counter() - t0

    def checks_time() -> float:
        flats = [
            {
                "email": r.values["email"],
                "name": r.values["full_name"],
                "address.city": "London",
                "preferred_locales": ["en", "fr"],
                "metadata.plan": "pro",
                "metadata.ltv": "12.50",
            }
            for r in rows[: min(len(rows), 100_000)]
        ]
        t0 = time.perf_counter()
        for flat in flats:
            row_checks.row_problems("customer", flat, creating=True)
        return (time.perf_counter() - t0) * len(rows) / len(flats)

    cached_plan, cached_checks = plan_time(), checks_time()
    original = row_checks._rules_of
    row_checks._rules_of = lambda object_name: row_checks._Kept()  # baseline: rules worked out per row
    try:
        base_plan, base_checks = plan_time(), checks_time()
    finally:
        row_checks._rules_of = original
    n = f"{sizes.plan_rows:,}"
    return [
        Row(
            f"row checks, {n} rows (s)",
            f"{cached_checks:.2f}",
            ">= 5x cheaper",
            f"{base_checks:.2f} per row",
            _ratio(base_checks, cached_checks),
        ),
        Row(
            f"plan {n} new rows (s)",
            f"{cached_plan:.2f}",
            "—",
            f"{base_plan:.2f} per row",
            _ratio(base_plan, cached_plan),
        ),
    ]


# ---- 2. writes and reads on the example chain ------------------------------------------------------------
def writes_and_reads(sizes: Sizes, tmp: Path) -> list[Row]:
    from dbt_stripe_sync.gateway import StripeGateway
    from dbt_stripe_sync.stripe_objects.customer import search_by_email

    root = tmp / "chain"
    env = _make_example(root, 0)
    with Emulator() as emu:
        env = {**env, "STRIPE_API_KEY": "sk_test_bench", "STRIPE_API_BASE": emu.url}
        first = _sync(root, env)
        assert first.returncode == 0, first.stdout + first.stderr
        reads = [r for r in emu.requests() if r["method"] == "GET"]
        by_email_syncs = ("stripe_subscriptions", "stripe_invoices", "stripe_invoice_items", "stripe_quotes")
        legacy = 0
        gw = StripeGateway("sk_test_bench", api_base=emu.url)
        for sync in by_email_syncs:  # before: each sync looked its emails up in Stripe
            emails = [e for (e,) in _query(root, f"select distinct customer_email from main.{sync}") if e]
            before = gw.stats.requests
            _legacy_find_by_email(gw, emails)
            legacy += gw.stats.requests - before
        emu.clear_requests()
        _edit_cities(root, env, 2)
        second = _sync(root, env, "-s", "stripe_customers")
        writes = [r for r in emu.requests() if r["method"] != "GET"]
        emu.clear_requests()
        third = _sync(root, env)
        noop = len(emu.requests())
        assert second.returncode == third.returncode == 0
    rows = [
        Row("writes per changed row", f"{len(writes) / 2:.2f}", "1.00", "1 (by design)", "—"),
        Row("requests on a no-op run", f"{noop}", "0", "0", "—"),
        Row(
            "reads, by: email syncs of the chain",
            f"{sum(1 for r in reads if r['path'] == '/v1/customers') - 1}",
            "0",
            f"{legacy} (re-listed per sync)",
            "—",
        ),
    ]
    with Emulator(endpoint_rate_limit=None) as emu:  # matching 10 new emails against a large account
        client = _api(emu)
        for i in range(sizes.account):
            client.v1.customers.create(params={"email": f"filler{i}@elsewhere.example"})
        wanted = [f"new{i}@example.com" for i in range(10)]
        gw = StripeGateway("sk_test_bench", api_base=emu.url, rate_limit=1000)
        search_by_email(gw, wanted)
        ours = gw.stats.requests
        _legacy_find_by_email(gw, wanted)
        legacy = gw.stats.requests - ours
    rows.append(
        Row(
            f"reads, match 10 emails vs {sizes.account:,} customers",
            f"{ours}",
            "<= 11",
            f"{legacy} (2N - 1 rule)",
            _ratio(legacy, ours),
        )
    )
    rows.append(_items_update_reads(tmp))
    return rows


def _items_update_reads(tmp: Path) -> Row:
    root = tmp / "items"
    env = _make_example(root, 0)
    with Emulator() as emu:
        env = {**env, "STRIPE_API_KEY": "sk_test_bench", "STRIPE_API_BASE": emu.url}
        assert _sync(root, env).returncode == 0
        _sql(root, "update main.raw_subscriptions set quantity = quantity + 1")
        bench_diff.dbt(root, env, "run", "-s", "stripe_subscriptions")
        emu.clear_requests()
        assert _sync(root, env, "-s", "stripe_subscriptions").returncode == 0
        updates = [r for r in emu.requests() if r["method"] == "POST"]
        gets = [r for r in emu.requests() if r["method"] == "GET"]
    return Row(
        f"reads, {len(updates)} subscription items updates",
        f"{len(gets)}",
        "0",
        f"{len(updates)} (a GET before each)",
        "—",
    )


def _legacy_find_by_email(gw, emails: Sequence[str]) -> None:
    """The look-up before issue #10 (pages while < N - 1, then one call per email not found)."""
    wanted = sorted(set(emails))
    found: dict[str, list] = {e: [] for e in wanted}
    complete, pages, after = False, 0, None
    while len(wanted) > 1 and pages < len(wanted) - 1:
        page = gw.request(
            "get", "/v1/customers", {"limit": 100, **({"starting_after": after} if after else {})}
        )
        pages += 1
        for c in page["data"]:
            if c.get("email") in found:
                found[c["email"]].append(c)
        if not page.get("has_more") or not page["data"]:
            complete = True
            break
        after = page["data"][-1]["id"]
    if not complete:
        for e in wanted:
            if not found[e]:
                list(gw.list_all("/v1/customers", {"email": e}))


def _sql(root: Path, sql: str) -> None:
    import duckdb

    with duckdb.connect(str(root / "bench.duckdb")) as con:
        con.execute(sql)


def _edit_cities(root: Path, env: dict[str, str], n: int) -> None:
    _sql(
        root,
        f"update main.raw_customers set city = 'Cambridge' where user_id in "
        f"(select user_id from main.raw_customers order by user_id limit {n})",
    )
    bench_diff.dbt(root, env, "run", "-s", "stripe_customers")


def _make_example(root: Path, customers: int) -> dict[str, str]:
    """integration_tests/ built on DuckDB (its seeds, or `customers` generated customers)."""
    if customers:
        return {**bench_diff.make_project(root, customers), "PYTHONPATH": str(REPO)}
    shutil.copytree(
        REPO / "integration_tests",
        root,
        ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb*", "package-lock.yml"),
    )
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    env = _env(root)
    bench_diff.dbt(root, env, "deps")
    bench_diff.dbt(root, env, "build", "--exclude", "resource_type:test")
    return env


# ---- 3. throughput at emulated latency ----------------------------------------------------------------
_INDEPENDENT = """
version: 2
models:
  - name: bench_customers
    config: {meta: {stripe_sync: {object: customer, mode: upsert, primary_key: k,
             match: {field: email, column: email}, fields: {name: name}}}}
  - name: bench_products
    config: {meta: {stripe_sync: {object: product, mode: upsert, primary_key: k, fields: {name: name}}}}
  - name: bench_prices
    config: {meta: {stripe_sync: {object: price, mode: upsert, primary_key: k,
             fields: {product: product_id, unit_amount: amount, currency: currency}}}}
  - name: bench_invoice_items
    config: {meta: {stripe_sync: {object: invoice_item, mode: upsert, primary_key: k,
             fields: {customer: customer_id, amount: amount, currency: currency}}}}
"""


def _throughput_project(root: Path, n: int, product: str, customer: str) -> dict[str, str]:
    env = _make_example(root, 0)
    (root / "models" / "bench.yml").write_text(_INDEPENDENT)
    for name, cols in {
        "bench_customers": "'b' || i || '@bench.example' as email, 'Bench ' || i as name",
        "bench_products": "'Product ' || i as name",
        "bench_prices": f"'{product}' as product_id, 100 + i as amount, 'usd' as currency",
        "bench_invoice_items": f"'{customer}' as customer_id, 100 + i as amount, 'usd' as currency",
    }.items():
        (root / "models" / f"{name}.sql").write_text(
            f"select cast(i as varchar) as k, {cols} from range({n}) as t(i)\n"
        )
    bench_diff.dbt(
        root, env, "run", "-s", "bench_customers", "bench_products", "bench_prices", "bench_invoice_items"
    )
    return env


def throughput(sizes: Sizes, tmp: Path) -> list[Row]:
    rows: list[Row] = []
    endpoint_limit = "endpoint_rate_limit" in inspect.signature(Emulator).parameters
    scenarios = [
        ("test mode", "sk_test_bench", {"rate_limit": 25}, ["bench_customers"], sizes.creates, 23.75),
        (
            "live limits, one endpoint",
            "sk_test_bench",
            {"rate_limit": 100},
            ["bench_customers"],
            sizes.creates,
            23.75,
        ),
        (
            "live limits, 4 independent syncs",
            "sk_test_bench",
            {"rate_limit": 100},
            ["bench_customers", "bench_products", "bench_prices", "bench_invoice_items"],
            sizes.creates // 2,
            90.0,
        ),
    ]
    for label, key, limits, models, n, target in scenarios:
        if endpoint_limit and label.startswith("live"):
            limits = {**limits, "endpoint_rate_limit": 25}
        root = tmp / f"tp-{len(rows)}"
        with Emulator(latency_ms=sizes.latency_ms, **limits) as emu:
            client = _api(emu, key)
            product = client.v1.products.create(params={"name": "bench"}).id
            customer = client.v1.customers.create(params={"email": "owner@bench.example"}).id
            env = _throughput_project(root, n, product, customer)
            env = {**env, "STRIPE_API_KEY": key, "STRIPE_API_BASE": emu.url}
            # the emulator takes test keys only: live limits are the emulator's limits plus the gateway
            # paced at the live-mode rate
            pace = {"rate_limit": limits["rate_limit"]} if label.startswith("live") else {}
            vars_ = json.dumps({"dbt_stripe_sync": pace})
            emu.clear_requests()
            proc = _sync(root, env, "run", "--vars", vars_, *[a for m in models for a in ("-s", m)])
            assert proc.returncode == 0, proc.stdout + proc.stderr
            ((started, finished, summed),) = _query(
                root,
                "select min(started_at), max(finished_at), sum(duration_s) "
                "from main_stripe_sync.stripe_sync_runs",
            )
            wall = (finished - started).total_seconds()  # whole seconds: precise enough only when long
            # one sync: its own duration_s (ms precision; the timestamps' whole seconds are +-1 s, 2 %
            # of a 40 s run); several: the wall time they spanned, as they may overlap
            seconds = max(float(summed) if len(models) == 1 or wall < 10 else wall, 1e-3)
            writes = [r for r in emu.requests() if r["method"] == "POST"]
            limited = sum(1 for r in emu.requests() if r.get("status") == 429)
            ours = len([w for w in writes if w.get("status", 200) < 400]) / seconds
            t0 = time.perf_counter()
            for i in range(sizes.naive):  # the naive baseline: one create after another
                client.v1.customers.create(params={"email": f"naive{i}@bench.example"})
            naive = sizes.naive / (time.perf_counter() - t0)
        note = (
            "" if endpoint_limit or not label.startswith("live") else " (emulator: no per-endpoint limit yet)"
        )
        rows.append(
            Row(
                f"creates/s, {label}, {len(models)}x{n}{note}",
                f"{ours:.1f} ({limited} x 429)",
                f">= {target}",
                f"{naive:.1f} naive loop",
                _ratio(ours, naive),
            )
        )
    return rows


# ---- 3b. Stripe Connect: many accounts, each at its own rate ----------------------------------------
CONNECT_ACCOUNTS = 10
_CONNECT = """
version: 2
models:
  - name: bench_connect_one
    config: {meta: {stripe_sync: {object: customer, mode: upsert, primary_key: k, account: {column: acct},
             match: {field: email, column: email}, fields: {name: name}}}}
  - name: bench_connect_many
    config: {meta: {stripe_sync: {object: customer, mode: upsert, primary_key: k, account: {column: acct},
             match: {field: email, column: email}, fields: {name: name}}}}
"""


def connect_accounts(sizes: Sizes, tmp: Path) -> list[Row]:
    """The same creates into one connected account, then spread over CONNECT_ACCOUNTS accounts, side by
    side, against an emulator enforcing Stripe's test-mode limits per account (25/s global, 25/s per
    endpoint). Timed by the runs table (the sync itself, not dbt's start-up)."""
    total = sizes.connect_creates * CONNECT_ACCOUNTS
    accounts = [f"acct_1Bench{i}" for i in range(CONNECT_ACCOUNTS)]
    root = tmp / "connect"
    env = _make_example(root, 0)
    (root / "models" / "bench_connect.yml").write_text(_CONNECT)
    for name, acct in (
        ("bench_connect_one", "'acct_1Bench0'"),
        ("bench_connect_many", "'acct_1Bench' || (i % 10)"),
    ):
        (root / "models" / f"{name}.sql").write_text(
            f"select cast(i as varchar) as k, 'c' || i || '@bench.example' as email, 'Bench ' || i as name, "
            f"{acct} as acct from range({total}) as t(i)\n"
        )
    bench_diff.dbt(root, env, "run", "-s", "bench_connect_one", "bench_connect_many")
    seconds: dict[str, float] = {}
    limited: dict[str, int] = {}
    for model in ("bench_connect_one", "bench_connect_many"):
        with Emulator(
            latency_ms=sizes.latency_ms, rate_limit=25, endpoint_rate_limit=25, accounts=accounts
        ) as emu:
            run_env = {**env, "STRIPE_API_KEY": "sk_test_bench", "STRIPE_API_BASE": emu.url}
            vars_ = json.dumps({"dbt_stripe_sync": {"concurrency": 32}})  # the same for both runs
            proc = _sync(root, run_env, "run", "--vars", vars_, "-s", model)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            creates = [r for r in emu.requests() if r["method"] == "POST" and r.get("status") == 200]
            assert len(creates) == total, len(creates)
            limited[model] = sum(1 for r in emu.requests() if r.get("status") == 429)
        ((duration,),) = _query(
            root, f"select max(duration_s) from main_stripe_sync.stripe_sync_runs where sync_name = '{model}'"
        )
        seconds[model] = float(duration)
    one, many = seconds["bench_connect_one"], seconds["bench_connect_many"]
    return [
        Row(
            f"Connect: {total} creates, {CONNECT_ACCOUNTS} accounts x {sizes.connect_creates} vs 1 account",
            f"{many:.1f} s ({total / many:.0f}/s, {limited['bench_connect_many']} x 429)",
            ">= 5x faster",
            f"{one:.1f} s in 1 account ({total / one:.0f}/s, {limited['bench_connect_one']} x 429)",
            _ratio(one, many),
        )
    ]


# ---- 4. plan memory, diff, fixed cost ---------------------------------------------------------------------
# The process's own peak (VmHWM of its memory map): `ru_maxrss` would report the runner's peak instead
# once the runner has grown past the probe (Linux keeps the pre-exec image's peak across the exec of a
# forked child; a 20,000-row probe then read as the runner's 354 MB)
_RSS_PROBE = (
    "import sys; from dbt_stripe_sync.cli import main; rc = main(sys.argv[1:]); "
    "hwm = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')); "
    "print('RSS_KB', hwm, 'RC', rc)"
)


def _plan_rss(root: Path, env: dict[str, str]) -> float:
    cmd = [
        sys.executable,
        "-c",
        _RSS_PROBE,
        "plan",
        "-s",
        "stripe_customers",
        "--project-dir",
        str(root),
        "--profiles-dir",
        str(root),
    ]
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=3600, check=False)
    match = re.search(r"RSS_KB (\d+) RC (\d+)", proc.stdout)
    assert match and match.group(2) in ("0", "1"), proc.stdout[-2000:] + proc.stderr[-2000:]
    return int(match.group(1)) / 1024


def _floor_rss(root: Path, env: dict[str, str]) -> float:
    cmd = [
        sys.executable,
        "-c",
        _RSS_PROBE,
        "validate",
        "-s",
        "stripe_customers",
        "--project-dir",
        str(root),
        "--profiles-dir",
        str(root),
    ]
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=600, check=False)
    return int(re.search(r"RSS_KB (\d+)", proc.stdout).group(1)) / 1024  # type: ignore[union-attr]


def memory_and_diff(sizes: Sizes, tmp: Path) -> list[Row]:
    n = f"{sizes.model_rows:,}"
    root = tmp / "mem"
    env = _make_example(root, sizes.model_rows)
    with Emulator() as emu:
        env = {**env, "STRIPE_API_KEY": "sk_test_bench", "STRIPE_API_BASE": emu.url}
        floor = _floor_rss(root, env)
        first = _plan_rss(root, env)
    rows = [
        Row(
            f"plan RSS, first sync of {n} rows (MB)",
            f"{first:.0f}",
            "<= 300 at 1M",
            f"{floor:.0f} validate (same process, no plan)",
            _ratio(first, floor),
        )
    ]
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_diff.py"),
            "--rows",
            str(sizes.model_rows),
            "--keep",
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    kept = Path(re.search(r"project kept in (\S+)", out).group(1))  # type: ignore[union-attr]
    try:
        timing = re.search(r"time \(median\)\s+([\d.]+) s\s+([\d.]+) s", out)
        assert timing, out
        ours, base = float(timing.group(1)), float(timing.group(2))
        rows.append(
            Row(
                f"plan time, {n} rows 1% changed (s)",
                f"{ours:.2f}",
                ">= 10x at 1M",
                f"{base:.2f} Python-side diff",
                _ratio(base, ours),
            )
        )
        cpu = re.search(r"CPU time \(median\)\s+([\d.]+) s\s+([\d.]+) s", out)
        assert cpu, out
        ours_cpu, base_cpu = float(cpu.group(1)), float(cpu.group(2))
        rows.append(  # CPU time, every thread: what the diff costs whatever else the machine runs
            Row(
                f"plan CPU time, {n} rows 1% changed (s)",
                f"{ours_cpu:.2f}",
                ">= 10x at 1M",
                f"{base_cpu:.2f} Python-side diff",
                _ratio(base_cpu, ours_cpu),
            )
        )
        kept_env = {**_env(kept / "project"), "STRIPE_API_KEY": "sk_test_bench"}
        with Emulator() as emu:
            changed = _plan_rss(kept / "project", {**kept_env, "STRIPE_API_BASE": emu.url})
        rows.append(
            Row(
                f"plan RSS, {n} rows 1% changed (MB)",
                f"{changed:.0f}",
                "<= 300 at 1M",
                f"{floor:.0f} validate (same process, no plan)",
                _ratio(changed, floor),
            )
        )
    finally:
        shutil.rmtree(kept, ignore_errors=True)
    return rows


def run_memory(sizes: Sizes, tmp: Path) -> list[Row]:
    """`run` of a first sync of N customers in its own process (its peak RSS), streamed (`stream_min_rows:
    0`) and planned whole, each on its own copy of the project and its own emulator with no limits."""
    n = sizes.run_rows
    built = tmp / "run-mem"
    _make_example(built, n)
    figures: dict[str, tuple[float, float, int]] = {}
    for label, min_rows in (("streamed", 0), ("whole", 10**12)):
        root = tmp / f"run-mem-{label}"
        shutil.copytree(built, root)
        env = _env(root)
        unpaced = {"rate_limit": 2_000, "endpoint_rate_limit": 2_000, "concurrency": 16, "batch_size": 500}
        vars_ = json.dumps({"dbt_stripe_sync": {**unpaced, "stream_min_rows": min_rows}})
        with Emulator(endpoint_rate_limit=None) as emu:
            env = {**env, "STRIPE_API_KEY": "sk_test_bench", "STRIPE_API_BASE": emu.url}
            cmd = [sys.executable, "-c", _RSS_PROBE, "run", "-s", "stripe_customers", "--vars", vars_]
            cmd += ["--project-dir", str(root), "--profiles-dir", str(root), "--no-progress"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=7200)
            seconds = time.perf_counter() - t0
            match = re.search(r"RSS_KB (\d+) RC (\d+)", proc.stdout)
            assert match and match.group(2) == "0", proc.stdout[-2000:] + proc.stderr[-2000:]
            created = sum(1 for r in emu.requests() if r["method"] == "POST")
        figures[label] = (int(match.group(1)) / 1024, seconds, created)
        shutil.rmtree(root, ignore_errors=True)
    (rss, secs, made), (whole_rss, whole_secs, whole_made) = figures["streamed"], figures["whole"]
    assert made == whole_made == n, figures
    return [
        Row(
            f"run RSS, first sync of {n:,} rows, streamed (MB)",
            f"{rss:.0f} ({secs:.0f} s)",
            "flat in N",
            f"{whole_rss:.0f} planned whole ({whole_secs:.0f} s)",
            _ratio(whole_rss, rss),
        )
    ]


def fixed_cost(tmp: Path, repeat: int) -> list[Row]:
    root = tmp / "chain"  # synced by writes_and_reads: a run now is a no-op
    with Emulator() as emu:
        env = _installed_bytecode(_env(root), tmp / "pycache")
        env |= {"STRIPE_API_KEY": "sk_test_bench", "STRIPE_API_BASE": emu.url}
        assert _sync(root, env).returncode == 0  # this emulator is empty: sync once, then time no-ops
        bench_diff.dbt(root, env, "parse")  # untimed too: both commands' bytecode is written once
        noop, parse = [], []
        for _ in range(repeat):  # interleaved, so load on the machine hits both alike
            noop.append(_timed(lambda: _sync(root, env)))
            parse.append(_timed(lambda: bench_diff.dbt(root, env, "parse")))
        assert not [r for r in emu.requests() if r["method"] == "POST" and "/customers" in r["path"]][10:]
    rows = []
    for i, what in enumerate(("wall", "CPU")):
        a, b = statistics.median(t[i] for t in noop), statistics.median(t[i] for t in parse)
        figure = f"no-op run {what} time, median of {repeat} (s)"
        rows.append(Row(figure, f"{a:.2f}", "<= dbt parse", f"{b:.2f} dbt parse", _ratio(a, b)))
    return rows


def _installed_bytecode(env: dict[str, str], prefix: Path) -> dict[str, str]:
    """Python as an installed tool runs: from bytecode. pip compiles a package's bytecode when it
    installs it (dbt's is), but this checkout runs from source, and with PYTHONDONTWRITEBYTECODE set
    (as in CI containers) every run would compile dbt_stripe_sync anew (~0.2 s of CPU) while dbt
    reads its own. Both commands write and read their bytecode under `prefix` instead."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(prefix)}


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of `fn`; CPU is user + system of the processes it ran and waited for."""
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    fn()
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# ---- the table -------------------------------------------------------------------------------------------
def table(rows: Sequence[Row]) -> str:
    head = Row("figure", "value", "target", "baseline (same run)", "ratio")
    widths = [
        max(len(getattr(r, f)) for r in (head, *rows))
        for f in ("figure", "value", "target", "baseline", "ratio")
    ]
    lines = []
    for r in (head, *rows):
        cells = (r.figure, r.value, r.target, r.baseline, r.ratio)
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="1M-row plan, memory and diff scenarios")
    size.add_argument("--smoke", action="store_true", help="tiny sizes and 5 ms latency (CI)")
    parser.add_argument(
        "--only",
        help="run these scenarios only, comma-separated (e.g. connect; fixed cost needs writes and reads)",
    )
    args = parser.parse_args(argv)
    sizes = FULL if args.full else SMOKE if args.smoke else DEFAULT
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="dss-bench-run-"))
    rows: list[Row] = []
    try:
        for name, step in (
            ("planning", lambda: planning(sizes)),
            ("writes and reads", lambda: writes_and_reads(sizes, tmp)),
            ("fixed cost", lambda: fixed_cost(tmp, 1 if args.smoke else 5)),
            ("throughput", lambda: throughput(sizes, tmp)),
            ("connect", lambda: connect_accounts(sizes, tmp)),
            ("memory and diff", lambda: memory_and_diff(sizes, tmp)),
            ("run memory", lambda: run_memory(sizes, tmp)),
        ):
            if args.only and name not in args.only.split(","):
                continue
            t0 = time.perf_counter()
            rows += step()
            print(f"[{name}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows))
    print(
        f"({'smoke' if args.smoke else 'full' if args.full else 'default'} sizes, latency "
        f"{sizes.latency_ms:g} ms, total {time.perf_counter() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
