"""`dbt-stripe-sync demo`: build the bundled example project on DuckDB, start the Stripe emulator,
sync, change a row, sync again, and show what reached Stripe at each step."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from dbt_stripe_sync.errors import UsageError

_HERE = Path(__file__).resolve().parent
# the example dbt project: inside the wheel, or integration_tests/ of a source checkout
_CANDIDATES = (_HERE / "demo_project", _HERE.parent / "integration_tests")
EXAMPLE = next((p for p in _CANDIDATES if (p / "dbt_project.yml").exists()), _CANDIDATES[0])
DEMO_KEY = "sk_test_demo"


_PROGRESS = {"on": True}


def _dbt(project: Path, *args: str) -> None:
    dbt = Path(sys.executable).with_name("dbt")
    cmd = [
        str(dbt) if dbt.exists() else "dbt",
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
    ]
    from dbt_stripe_sync.progress import progress_display

    with progress_display(_PROGRESS["on"]) as progress, progress.phase(f"dbt {' '.join(args)}"):
        proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UsageError(f"dbt {' '.join(args)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")


def _sync(project: Path, label: str, emulator) -> int:
    from dbt_stripe_sync.engine import Invocation, execute

    emulator.clear_requests()
    print(f"\n$ dbt-stripe-sync   # {label}")
    inv = Invocation(
        command="run", project_dir=str(project), profiles_dir=str(project), progress=_PROGRESS["on"]
    )
    code = execute(inv)
    calls = Counter(f"{r['method']} {r['path'].split('/')[2]}" for r in emulator.requests())
    print(f"  Stripe API calls: {dict(calls) or 'none'}")
    return code


def run_demo(workdir: str | None = None, progress: bool = True) -> int:
    _PROGRESS["on"] = progress
    if not (EXAMPLE / "dbt_project.yml").exists():
        raise UsageError(
            f"the example project is missing from this installation ({EXAMPLE}); "
            "reinstall with `pip install --force-reinstall 'dbt-stripe-sync[duckdb]'`"
        )
    from dbt_stripe_sync.emulator import Emulator

    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="dbt-stripe-sync-demo-"))
    project = base / "project"
    if project.exists():
        shutil.rmtree(project)
    # no packages.yml: the SQL macros shipped in the Python package are used (zero-config install)
    ignore = shutil.ignore_patterns(
        "target", "dbt_packages", "logs", "*.duckdb*", "packages.yml", "package-lock.yml", "__pycache__"
    )
    shutil.copytree(EXAMPLE, project, ignore=ignore)
    os.environ.update(
        {
            "DBT_TARGET": "duckdb",
            "DSS_DUCKDB_PATH": str(base / "demo.duckdb"),
            "STRIPE_API_KEY": DEMO_KEY,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    print(f"Example dbt project: {project}\nWarehouse: DuckDB at {base / 'demo.duckdb'}")
    print("$ dbt build")
    _dbt(project, "build")
    with Emulator(seed=7) as emulator:
        os.environ["STRIPE_API_BASE"] = emulator.url
        print(f"Stripe: the bundled emulator at {emulator.url}")
        codes = [_sync(project, "first run: every row is new", emulator)]
        codes.append(_sync(project, "second run: nothing changed, nothing sent", emulator))
        _edit_first_customer(project)
        _dbt(project, "build")
        codes.append(_sync(project, "after `dbt build` with one customer's city changed", emulator))
        print("\nWhat Stripe holds now:")
        for kind in ("customer", "product", "price", "subscription", "invoiceitem", "invoice", "quote"):
            objects = [o for o in emulator.objects(kind) if not o.get("deleted")]
            if objects:
                print(f"  {len(objects):>3} {kind}")
    print(f"\nThe ledger is in DuckDB at {base / 'demo.duckdb'} (schema main_stripe_sync).")
    return max(codes)


def _edit_first_customer(project: Path) -> None:
    path = project / "seeds" / "raw_customers.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows[0]["city"] = "Cambridge"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
