"""Only changed rows leave the warehouse: the in-warehouse diff + plan against fetch-everything-and-diff.

Builds the example project's `stripe_customers` model on DuckDB with N generated customers, fills its
ledger as if every row had been synced (through the real planner and ledger code, no API), changes 1%
of the model, then computes the plan two ways and prints time, peak Python memory and rows fetched:

- in-warehouse (the product): `diff_sql` joins the model with the ledger by hash, only new, changed
  and deleted rows are read back, then the planner;
- baseline: read every model row and every ledger row, map each row to its Stripe payload in Python,
  compare it with the payload Stripe last accepted, then the same planner on the rows that differ.

Both must plan the same changes. Sends nothing to Stripe.

    .venv/bin/python benchmarks/bench_diff.py [--rows 100000] [--changed 0.01] [--repeat 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dbt_stripe_sync import ledger as L  # noqa: E402
from dbt_stripe_sync import quick_fill  # noqa: E402
from dbt_stripe_sync.applier import Applier  # noqa: E402
from dbt_stripe_sync.config.model import SyncConfig  # noqa: E402
from dbt_stripe_sync.diff import DiffResult, DiffRow, run_diff  # noqa: E402
from dbt_stripe_sync.engine import Invocation, Prepared, prepare  # noqa: E402
from dbt_stripe_sync.ledger import StateStore, entry_from_row  # noqa: E402
from dbt_stripe_sync.matching import gather  # noqa: E402
from dbt_stripe_sync.payload import from_json  # noqa: E402
from dbt_stripe_sync.plan import SyncPlan  # noqa: E402
from dbt_stripe_sync.planner import Lookups, build_plan, map_row  # noqa: E402
from dbt_stripe_sync.stripe_objects import adapter_for  # noqa: E402
from dbt_stripe_sync.stripe_objects.base import WriteResult  # noqa: E402
from tests.support import scale  # noqa: E402

MODEL = "stripe_customers"
BIN = Path(sys.executable).parent
_TYPES = {"user_id": "INTEGER", "signup_date": "DATE", "is_vip": "BOOLEAN", "ltv": "DECIMAL(12,2)"}


@dataclass(frozen=True)
class Measure:
    seconds: float
    cpu_seconds: float  # the process's CPU time, every thread (DuckDB's included): load-independent
    peak_bytes: int
    rows_fetched: int
    plan: SyncPlan


# ---- the project ------------------------------------------------------------------------------
def make_project(root: Path, rows: int) -> dict[str, str]:
    """integration_tests/ copied to `root`, raw_customers loaded with `rows` rows, the model built."""
    shutil.copytree(
        REPO / "integration_tests",
        root,
        ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb*", "package-lock.yml"),
    )
    (root / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    env = project_env(root)
    dbt(root, env, "deps")
    load_customers(Path(env["DSS_DUCKDB_PATH"]), root / "raw_customers_big.csv", rows)
    dbt(root, env, "run", "-s", MODEL)
    return env


def reused_env(root: Path) -> dict[str, str]:
    """The environment of a project `make_project` built earlier (--reuse)."""
    if not (root / "bench.duckdb").exists():
        raise SystemExit(f"--reuse: no benchmark project in {root} (run once with --keep first)")
    return project_env(root)


def project_env(root: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DBT_TARGET": "duckdb",
        "DSS_DUCKDB_PATH": str(root / "bench.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("DBT_PROFILES_DIR", None)
    return env


def dbt(root: Path, env: dict[str, str], *args: str) -> None:
    cmd = [str(BIN / "dbt"), *args, "--project-dir", str(root), "--profiles-dir", str(root)]
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"dbt {' '.join(args)} failed:\n{proc.stdout[-3000:]}")


def load_customers(database: Path, csv_path: Path, rows: int) -> None:
    """The seed table straight from a CSV (dbt seed inserts row by row: too slow for a benchmark)."""
    import duckdb

    scale.write_csv(csv_path, scale.customers(rows), scale.COLUMNS["raw_customers"])
    types = {c: _TYPES.get(c, "VARCHAR") for c in scale.COLUMNS["raw_customers"]}
    con = duckdb.connect(str(database))
    try:
        con.execute(
            "create or replace table main.raw_customers as "
            "select * from read_csv(?, header = true, columns = ?)",
            [str(csv_path), types],
        )
    finally:
        con.close()


@contextlib.contextmanager
def opened(root: Path, env: dict[str, str]) -> Iterator[Prepared]:
    saved = dict(os.environ)
    os.environ.update(env)
    prep = prepare(Invocation("plan", str(root), str(root), select=(MODEL,)), io.StringIO())
    try:
        yield prep
    finally:
        prep.wh.close()
        os.environ.clear()
        os.environ.update(saved)


def fill_ledger(prep: Prepared, store: StateStore, config: SyncConfig, work: Path) -> int:
    """Record every model row as synced, as a run against Stripe would have (no API calls): the real
    diff, planner and ledger entries, bulk-loaded from a file (row-by-row inserts take minutes)."""
    store.ensure()
    diff = run_diff(
        prep.wh, config, prep.relations[MODEL], store.ledger, include_deletes=True, retry_rejected=False
    )
    plan = build_plan(config, adapter_for(config.object), prep.settings, diff, Lookups(), 0)
    applier = Applier(store, None, prep.settings, "bench-setup")  # type: ignore[arg-type]
    path = work / "ledger.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for change in plan.changes:
            entry = applier._outcome(config, change, WriteResult(f"cus_b{change.key}", L.SYNCED, "created"))
            fh.write(json.dumps(asdict(entry), default=str) + "\n")
    types = {name: type_ for name, type_ in prep.wh.macro("ledger_columns")}
    columns = ", ".join(prep.wh.quote(c) for c in L.LEDGER_COLUMNS)
    spec = "{" + ", ".join(f"'{c}': '{types[c]}'" for c in L.LEDGER_COLUMNS) + "}"
    with prep.wh.transaction():
        prep.wh.execute(
            f"insert into {store.ledger} ({columns}) select {columns} "
            f"from read_json('{path}', format = 'newline_delimited', columns = {spec})"
        )
    return len(plan.changes)


def fill_quick_hashes(prep: Prepared, store: StateStore, config: SyncConfig) -> int:
    """A ledger written before payload_quick_hash existed (a project kept by an older --keep run):
    migrated (`StateStore.ensure`) and filled as `run` fills it before its diff (quick_fill.py: each
    synced row whose payload_hash is the md5 of its model row, in one UPDATE; the changed rows stay
    null, as after a run). Returns the rows with a quick hash (0 when the fill did not run: the
    warehouse has no quick hash or none was missing)."""
    store.ensure()
    if not quick_fill.fill_quick_hashes(prep.wh, config, prep.relations[MODEL], store.ledger):
        return 0
    _, filled = prep.wh.query(
        f"select count(*) from {store.ledger} where sync_name = '{config.name}' "
        "and payload_quick_hash is not null"
    )
    return int(filled[0][0])


def change_rows(prep: Prepared, share: float) -> int:
    """Change `share` of the model's rows in the warehouse (a new city: one mapped field)."""
    relation = prep.relations[MODEL]
    every = max(1, round(1 / share))
    with prep.wh.transaction():
        prep.wh.execute(f"update {relation} set city = 'Lisbon' where user_id % {every} = 0")
    return changed_count(prep)


def changed_count(prep: Prepared) -> int:
    _, rows = prep.wh.query(f"select count(*) from {prep.relations[MODEL]} where city = 'Lisbon'")
    return int(rows[0][0])


# ---- the two ways of planning ---------------------------------------------------------------------
def in_warehouse(prep: Prepared, store: StateStore, config: SyncConfig) -> tuple[SyncPlan, int]:
    diff = run_diff(
        prep.wh, config, prep.relations[MODEL], store.ledger, include_deletes=True, retry_rejected=False
    )
    lookups = gather(config, diff, None, store)
    live = store.count_live(config.name)
    return build_plan(config, adapter_for(config.object), prep.settings, diff, lookups, live), len(diff.rows)


def in_python(prep: Prepared, store: StateStore, config: SyncConfig) -> tuple[SyncPlan, int]:
    """The baseline: every row out of the warehouse, each compared with its last accepted payload."""
    columns = config.columns()
    wh = prep.wh
    key = wh.quote(config.primary_key)
    cols = ", ".join(wh.quote(c) for c in columns)
    _, model_rows = wh.query(f"select cast({key} as varchar), {cols} from {prep.relations[MODEL]}")
    names, ledger_rows = wh.query(
        f"select {', '.join(wh.quote(c) for c in L.LEDGER_COLUMNS)} from {store.ledger} "
        f"where sync_name = {wh.placeholder}",
        [config.name],
    )
    at = {n: i for i, n in enumerate(names)}
    ledger = {r[at["source_key"]]: r for r in ledger_rows}
    changed: list[DiffRow] = []
    for row in model_rows:
        values = dict(zip(columns, row[1:], strict=True))
        last = ledger.pop(row[0], None)
        if last is not None and last[at["status"]] == L.SYNCED:
            flat, _ = map_row(config, DiffRow(row[0], "changed", None, values, {}, None), {})
            if flat == from_json(last[at["payload_json"]]):
                continue
        entry = entry_from_row(names, last) if last is not None else None
        changed.append(DiffRow(row[0], "changed" if entry else "new", None, values, {}, entry))
    for source_key, last in ledger.items():  # rows gone from the model
        if last[at["stripe_id"]] and last[at["status"]] == L.SYNCED:
            changed.append(DiffRow(source_key, "deleted", None, {}, {}, entry_from_row(names, last)))
    diff = DiffResult(rows=changed, model_rows=len(model_rows))
    lookups = gather(config, diff, None, store)
    plan = build_plan(config, adapter_for(config.object), prep.settings, diff, lookups, len(ledger_rows))
    return plan, len(model_rows) + len(ledger_rows)


def measure(fn: Callable[[], tuple[SyncPlan, int]], repeat: int) -> Measure:
    """Median wall time of `repeat` plain runs, then one more run under tracemalloc for the peak of
    Python memory (tracing slows Python down, so it is kept out of the timings)."""
    times: list[float] = []
    cpu: list[float] = []
    plan: SyncPlan | None = None
    fetched = 0
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        plan, fetched = fn()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert plan is not None
    return Measure(statistics.median(times), statistics.median(cpu), peak, fetched, plan)


def planned(plan: SyncPlan) -> list[tuple[str, str, tuple[str, ...]]]:
    return sorted((c.key, c.action, tuple(sorted(c.params))) for c in plan.changes)


# ---- report -----------------------------------------------------------------------------------
def report(rows: int, changed: int, ours: Measure, base: Measure) -> str:
    def line(name: str, a: float, b: float, fmt: Callable[[float], str]) -> str:
        ratio = f"{b / a:8.1f}x" if a else "       -"
        return f"{name:<22}{fmt(a):>16}{fmt(b):>16}   {ratio}"

    mib = 1024 * 1024
    return "\n".join(
        [
            f"plan for {rows:,} model rows, {changed:,} changed ({changed / rows:.1%}) — DuckDB, {MODEL}",
            f"{'':<22}{'in-warehouse':>16}{'baseline':>16}   baseline / in-warehouse",
            line("time (median)", ours.seconds, base.seconds, lambda v: f"{v:.3f} s"),
            line("CPU time (median)", ours.cpu_seconds, base.cpu_seconds, lambda v: f"{v:.3f} s"),
            line("peak Python memory", ours.peak_bytes, base.peak_bytes, lambda v: f"{v / mib:.1f} MiB"),
            line("rows fetched", ours.rows_fetched, base.rows_fetched, lambda v: f"{int(v):,}"),
            line("changes planned", len(ours.plan.changes), len(base.plan.changes), lambda v: f"{int(v):,}"),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="model rows (default 100000)")
    parser.add_argument("--changed", type=float, default=0.01, help="share of rows changed (default 0.01)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each way (median shown)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project and print its path")
    parser.add_argument(
        "--reuse", type=Path, help="a directory a --keep run printed: measure its project again (no setup)"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    tmp = args.reuse or Path(tempfile.mkdtemp(prefix="dss-bench-"))
    try:
        root = tmp / "project"
        env = reused_env(root) if args.reuse else make_project(root, args.rows)
        with opened(root, env) as prep:
            config = prep.configs[0]
            store = StateStore(prep.wh, prep.settings.state_schema_for(prep.wh.target.schema))
            if args.reuse:
                quick = fill_quick_hashes(prep, store, config)
                if quick:
                    print(f"(filled the kept ledger's quick hashes: {quick:,} rows; see fill_quick_hashes)")
                filled, changed = store.count_live(config.name), changed_count(prep)
            else:
                filled = fill_ledger(prep, store, config, tmp)
                changed = change_rows(prep, args.changed)
            setup = time.perf_counter() - started
            ours = measure(lambda: in_warehouse(prep, store, config), args.repeat)
            base = measure(lambda: in_python(prep, store, config), args.repeat)
        if planned(ours.plan) != planned(base.plan):
            raise SystemExit("the two ways planned different changes: the benchmark compares nothing")
        print(report(filled, changed, ours, base))
        total = time.perf_counter() - started
        print(f"(setup {setup:.1f} s, total {total:.1f} s; peak memory is Python's heap as tracemalloc")
        print(" sees it, DuckDB's own buffers excluded — they stay in the warehouse)")
    finally:
        if args.keep or args.reuse:
            print(f"project kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
