"""A throw-away copy of integration_tests/ driven through the real dbt and dbt-stripe-sync CLIs."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support import dbt_in_process, partial_parse
from tests.support.call_log import logged

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
_IGNORE = shutil.ignore_patterns(
    "target", "dbt_packages", "logs", "*.duckdb", "*.duckdb.wal", "package-lock.yml"
)
_IGNORE_KEEP_PACKAGES = shutil.ignore_patterns("target", "logs", "*.duckdb", "*.duckdb.wal")


def postgres_env(schema: str) -> dict[str, str]:
    return {
        "DBT_TARGET": "postgres",
        "DSS_PG_HOST": os.environ.get("DSS_PG_HOST", "127.0.0.1"),
        "DSS_PG_PORT": os.environ.get("DSS_PG_PORT", "5432"),
        "DSS_PG_USER": os.environ.get("DSS_PG_USER", "dss"),
        "DSS_PG_PASSWORD": os.environ.get("DSS_PG_PASSWORD", "dss"),
        "DSS_PG_DBNAME": os.environ.get("DSS_PG_DBNAME", "dss_test"),
        "DSS_PG_SCHEMA": schema,
    }


def pg_connect(env: Mapping[str, str], autocommit: bool = False) -> Any:
    """A psycopg2 connection to the test PostgreSQL server named by `env`'s DSS_PG_* variables."""
    import psycopg2

    con = psycopg2.connect(
        host=env["DSS_PG_HOST"],
        port=int(env["DSS_PG_PORT"]),
        user=env["DSS_PG_USER"],
        password=env["DSS_PG_PASSWORD"],
        dbname=env["DSS_PG_DBNAME"],
    )
    con.autocommit = autocommit
    return con


class DbtProject:
    def __init__(self, path: Path, env: Mapping[str, str], built: bool = False) -> None:
        self.path = path
        self.built = built  # the warehouse holds the models as the files describe them
        self.env = {**os.environ, **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
        self.env.pop("DBT_PROFILES_DIR", None)
        self.emulator: Any = None
        self.extra_schemas: list[str] = []  # dropped with the project's own schemas

    @classmethod
    def template(cls, path: Path, source: str = "integration_tests") -> Path:
        """integration_tests/ (or another project under the repo) copied once per session with
        `dbt deps` run (the package is a symlink)."""
        shutil.copytree(REPO / source, path, ignore=_IGNORE)
        (path / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
        cls(path, {"DBT_TARGET": "duckdb", "DSS_DUCKDB_PATH": str(path / "unused.duckdb")}).dbt("deps")
        return path

    @classmethod
    def prebuilt_duckdb(cls, template: Path, path: Path) -> Path:
        """The template built once on DuckDB (warehouse file and target/ included), for copying."""
        shutil.copytree(template, path, symlinks=True, ignore=_IGNORE_KEEP_PACKAGES)
        project = cls(path, {"DBT_TARGET": "duckdb", "DSS_DUCKDB_PATH": str(path / "warehouse.duckdb")})
        project.build()
        return path

    @classmethod
    def create(
        cls, path: Path, env: Mapping[str, str], template: Path, prebuilt: Path | None = None
    ) -> DbtProject:
        """A fresh copy; from `prebuilt` (same DuckDB file name, mtimes kept) the models are already built."""
        if prebuilt is not None:
            shutil.copytree(prebuilt, path, symlinks=True, ignore=shutil.ignore_patterns("logs"))
            built_with = {"DBT_TARGET": "duckdb", "DSS_DUCKDB_PATH": str(prebuilt / "warehouse.duckdb")}
            partial_parse.retarget(path, built_with, {**env, "DBT_TARGET": "duckdb"})
            return cls(path, env, built=True)
        shutil.copytree(template, path, symlinks=True, ignore=_IGNORE_KEEP_PACKAGES)
        return cls(path, env)

    @property
    def target(self) -> str:
        return self.env["DBT_TARGET"]

    @property
    def schema(self) -> str:
        return "main" if self.target == "duckdb" else self.env["DSS_PG_SCHEMA"]

    @property
    def state_schema(self) -> str:
        return f"{self.schema}_stripe_sync"

    # ---- running the tools ------------------------------------------------------------------
    def dbt(
        self, *args: str, check: bool = True, subprocess_: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """The real dbt CLI: in this process through dbtRunner (tests/support/dbt_in_process.py)
        unless a separate process is asked for, else the `dbt` console script."""
        dbt_args = [*args, "--project-dir", str(self.path), "--profiles-dir", str(self.path)]
        if not subprocess_ and dbt_in_process.wanted(args):
            with logged(f"dbt {args[0]}", subprocess_=False):
                proc = dbt_in_process.run(dbt_args, self.env, self.path)
        else:
            with logged(f"dbt-subprocess {args[0]}", subprocess_=True):
                proc = subprocess.run(
                    [str(BIN / "dbt"), *dbt_args],
                    env=self.env,
                    cwd=self.path,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"dbt {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
            )
        return proc

    def build(self, select: str | None = None) -> None:
        """Seed and build the models with `dbt build`, unless nothing changed since the last build."""
        if self.built and select is None:
            return
        args = ["build", "--exclude", "resource_type:test"]
        if select:
            args += ["-s", select]
        self.dbt(*args)
        self.built = select is None

    def sync(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
        subprocess_: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI entry point; in this process (fast) unless a separate process is asked for
        or needed (a crash point kills the process it runs in)."""
        cli_args = [*args, "--project-dir", str(self.path), "--profiles-dir", str(self.path)]
        if args and args[0] in {"emulator", "demo"}:
            raise ValueError("use sync() for run/plan/validate only")
        env = {**self.env, **(env or {})}
        if subprocess_ or "DBT_STRIPE_SYNC_CRASH_AT" in env:
            with logged(f"sync-subprocess {args[0] if args else ''}", subprocess_=True):
                return subprocess.run(
                    [str(BIN / "dbt-stripe-sync"), *cli_args],
                    env=env,
                    cwd=self.path,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
        with logged(f"sync {args[0] if args else ''}", subprocess_=False):
            return _run_in_process(cli_args, env, self.path)

    def popen_sync(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        with logged(f"sync-popen {args[0] if args else ''} (count only)", subprocess_=False):
            pass
        cmd = [
            str(BIN / "dbt-stripe-sync"),
            *args,
            "--project-dir",
            str(self.path),
            "--profiles-dir",
            str(self.path),
        ]
        return subprocess.Popen(
            cmd,
            env={**self.env, **(env or {})},
            cwd=self.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # ---- data -------------------------------------------------------------------------------
    def read_seed(self, name: str) -> list[dict[str, str]]:
        with open(self.path / "seeds" / f"{name}.csv", newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def write_seed(
        self, name: str, rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None
    ) -> None:
        columns = list(columns or (rows[0].keys() if rows else []))
        if not columns:
            with open(self.path / "seeds" / f"{name}.csv", encoding="utf-8") as fh:
                columns = next(csv.reader(fh))
        with open(self.path / "seeds" / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({c: row.get(c, "") for c in columns})
        self.built = False

    def write_file(self, relative: str, text: str) -> None:
        (self.path / relative).write_text(text)
        self.built = False

    def edit_schema_yml(self, old: str, new: str, file: str = "models/schema.yml") -> None:
        path = self.path / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new))
        self.built = False

    # ---- reading the warehouse (for assertions) ---------------------------------------------
    def query(self, sql: str) -> list[tuple]:
        if self.target == "duckdb":
            import duckdb

            con = duckdb.connect(self.env["DSS_DUCKDB_PATH"], read_only=True)
            try:
                return [tuple(r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        con = pg_connect(self.env)
        try:
            with con.cursor() as cur:
                cur.execute(sql)
                return [tuple(r) for r in cur.fetchall()] if cur.description else []
        finally:
            con.close()

    def ledger(self, sync: str) -> dict[str, dict[str, Any]]:
        cols = [
            "source_key",
            "stripe_id",
            "status",
            "last_error",
            "payload_hash",
            "idempotency_key",
            "attempts",
        ]
        rows = self.query(
            f"select {', '.join(cols)} from {self.state_schema}.stripe_sync_ledger where sync_name = '{sync}'"
        )
        return {r[0]: dict(zip(cols, r, strict=True)) for r in rows}

    def drop_schemas(self) -> None:
        if self.target != "postgres":
            return
        try:
            con = pg_connect(self.env, autocommit=True)
            with con.cursor() as cur:
                cur.execute(f'drop schema if exists "{self.schema}" cascade')
                for schema in (self.state_schema, *self.extra_schemas):
                    cur.execute(f'drop schema if exists "{schema}" cascade')
            con.close()
        except Exception:
            pass


def api_writes(requests: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Requests that change Stripe (POST and DELETE on the API, not the emulator's admin paths)."""
    return [r for r in requests if r["method"] in {"POST", "DELETE"} and r["path"].startswith("/v1/")]


def _run_in_process(
    cli_args: list[str], env: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`dbt-stripe-sync ARGS` through its real entry point, with the environment and cwd it would have."""
    from dbt_stripe_sync.cli import main

    with dbt_in_process.as_if_launched(env, cwd) as (out, err):
        code = main(cli_args)
    return subprocess.CompletedProcess(["dbt-stripe-sync", *cli_args], code, out.getvalue(), err.getvalue())
