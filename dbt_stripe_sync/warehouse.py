"""The warehouse, reached through the project's own dbt profile and adapter.

With dbt_manifest.py and selection.py, this is where dbt internals are used. It boots dbt's
config and adapter for the chosen target the way `dbt run-operation` does, has dbt parse the
project for that target (dbt_manifest.py: relations are the target's own), makes this package's
macros resolvable (the project's installed copy, else the one shipped in the wheel), renders SQL
with them, and runs it on one connection. Values always travel as bind parameters, never pasted
into SQL.
"""

from __future__ import annotations

import itertools
import os
import re
from argparse import Namespace
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync import gc_pause, jinja_code_cache
from dbt_stripe_sync.dbt_manifest import PACKAGE_NAME, ensure_package_macros, parse_manifest
from dbt_stripe_sync.embedded_memory import MemoryCap, is_out_of_memory
from dbt_stripe_sync.errors import UsageError
from dbt_stripe_sync.gc_pause import collections_spaced

_STREAMS = itertools.count()  # names server-side cursors: several syncs may stream at once

# Bind-parameter style of the DB-API driver behind each dbt adapter; "%s" is the common default.
_PLACEHOLDERS = {"duckdb": "?", "sqlite": "?", "snowflake": "%s", "postgres": "%s", "redshift": "%s"}


@dataclass(frozen=True)
class Target:
    name: str
    adapter_type: str
    database: str | None
    schema: str
    threads: int


class Warehouse:
    """One open dbt adapter connection plus the project's macros."""

    def __init__(self, config: Any, adapter: Any) -> None:
        self._config = config
        self._adapter = adapter
        self.target = Target(
            name=config.target_name,
            adapter_type=adapter.type(),
            database=getattr(config.credentials, "database", None),
            schema=config.credentials.schema,
            threads=config.threads,
        )
        self.placeholder = _PLACEHOLDERS.get(self.target.adapter_type, "%s")
        self.project_name: str = config.project_name
        self.target_path: str = os.path.join(config.project_root, config.target_path)
        self.project_root: str = config.project_root
        # `vars: {dbt_stripe_sync: {...}}` in dbt_project.yml: dbt keys package-scoped vars by package name
        self.vars: dict[str, Any] = dict(config.vars.vars.get(PACKAGE_NAME) or {})
        self.config = config  # dbt's RuntimeConfig (selectors.yml, paths) for selection
        self.manifest: Any = None  # dbt's Manifest parsed for this target
        self.macros_from = "project"  # where the dbt_stripe_sync macros came from: project | shipped
        self.memory_cap = MemoryCap()  # an embedded DuckDB's memory, capped for read-only work
        self._frozen = False  # dbt's boot frozen for the collector until close() (gc_pause.freeze_alive)
        self._macro_contexts: dict[str, Any] = {}  # macro unique_id -> its dbt context (see macro())

    # ---- boot -----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        project_dir: str,
        profiles_dir: str | None = None,
        target: str | None = None,
        cli_vars: dict[str, Any] | None = None,
    ) -> Warehouse:
        # Booting dbt (its imports, config, adapter and manifest) allocates objects that live as long
        # as the process: the collector's passes over them meanwhile are wasted (two or three full
        # ones, ~0.2 s of a no-op run's CPU). Spaced out while it boots (gc_pause.py), as `dbt parse`
        # is not, then frozen until close(); a cycle made meanwhile is collected as before, only later.
        with collections_spaced():
            wh = cls._open(project_dir, profiles_dir, target, cli_vars)
            gc_pause.freeze_alive()  # and not re-scanned until closed (gc_pause.py)
            wh._frozen = True
            return wh

    @classmethod
    def _open(
        cls,
        project_dir: str,
        profiles_dir: str | None,
        target: str | None,
        cli_vars: dict[str, Any] | None,
    ) -> Warehouse:
        from dbt.adapters.factory import get_adapter, register_adapter, reset_adapters
        from dbt.config.runtime import RuntimeConfig
        from dbt.context.providers import generate_runtime_macro_context
        from dbt.flags import get_flags, set_from_args
        from dbt.mp_context import get_mp_context
        from dbt_common.context import set_invocation_context

        project_dir = os.path.abspath(project_dir)
        if not os.path.exists(os.path.join(project_dir, "dbt_project.yml")):
            raise UsageError(
                f"no dbt_project.yml in {project_dir}: pass --project-dir (or set DBT_PROJECT_DIR) "
                "to the dbt project whose models carry stripe_sync blocks"
            )
        profiles_dir = os.path.abspath(profiles_dir or _default_profiles_dir(project_dir))
        set_invocation_context(dict(os.environ))
        args = Namespace(
            project_dir=project_dir,
            profiles_dir=profiles_dir,
            target=target,
            vars=cli_vars or {},
            threads=None,
            profile=None,
            quiet=True,
            log_level="none",
            send_anonymous_usage_stats=False,
        )
        set_from_args(args, None)
        _silence_dbt_events()
        try:
            config = RuntimeConfig.from_args(get_flags())
        except Exception as exc:  # dbt's own errors already say what is wrong with the profile
            raise UsageError(f"could not load the dbt project or profile: {_first_line(exc)}") from exc
        # dbt's templates compiled by an earlier command are read back (jinja_code_cache.py)
        jinja_code_cache.install(os.path.join(config.project_root, config.target_path))
        register_adapter(config, get_mp_context())
        adapter = get_adapter(config)
        try:
            manifest = parse_manifest(config)
            macros_from = ensure_package_macros(config, manifest)
        except BaseException:
            jinja_code_cache.uninstall()
            reset_adapters()
            raise
        adapter.set_macro_resolver(manifest)
        adapter.set_macro_context_generator(generate_runtime_macro_context)
        wh = cls(config, adapter)
        wh.manifest = manifest
        wh.macros_from = macros_from
        adapter.acquire_connection("dbt_stripe_sync")
        return wh

    def close(self) -> None:
        """Release the connection and any process-wide handle (DuckDB keeps its file locked otherwise)."""
        if self._frozen:
            self._frozen = False
            gc_pause.thaw()
        jinja_code_cache.uninstall()  # what this command compiled anew is kept for the next
        try:
            self.commit()
            self.memory_cap.lift(self.execute)
            self._adapter.cleanup_connections()
        finally:
            manager = type(self._adapter.connections)
            env = getattr(manager, "_ENV", None)
            if env is not None and hasattr(env, "close"):
                env.close()
            if hasattr(manager, "close_all_connections"):
                manager.close_all_connections()
            from dbt.adapters.factory import reset_adapters

            reset_adapters()

    # ---- SQL ------------------------------------------------------------------------------
    def macro(self, macro_name: str, /, **kwargs: Any) -> Any:
        """Render one of this package's macros (dispatched for the adapter) and return its value.

        As dbt's `adapter.execute_macro`, except that the macro's context (every macro of the project
        in namespaces, ~2 ms to build) is built once per macro and reused, as dbt reuses a model's
        context for every macro the model calls: a run renders the same few macros once per sync."""
        from dbt.context.providers import generate_runtime_macro_context
        from dbt_common.clients.jinja import CallableMacroGenerator

        macro = self.manifest.find_macro_by_name(macro_name, self.project_name, PACKAGE_NAME)
        if macro is None:  # dbt's own error, which names the macro and the package
            return self._adapter.execute_macro(macro_name, project=PACKAGE_NAME, kwargs=kwargs)
        context = self._macro_contexts.get(macro.unique_id)
        if context is None:
            context = generate_runtime_macro_context(macro, self._config, self.manifest, PACKAGE_NAME)
            _root_without_macros_is_empty(context, self.project_name)
            self._macro_contexts[macro.unique_id] = context
        with self._adapter.connections.exception_handler(f"macro {macro_name}"):
            return CallableMacroGenerator(macro, context)(**kwargs)

    def relation(self, schema: str, identifier: str) -> str:
        rel = self._adapter.Relation.create(
            database=self.target.database, schema=schema, identifier=identifier
        )
        return str(rel)

    def create_schema(self, schema: str) -> None:
        """Create a schema the way the adapter does it (some warehouses refuse database-qualified names)."""
        self._adapter.create_schema(
            self._adapter.Relation.create(database=self.target.database, schema=schema)
        )
        self.commit()

    def quote(self, identifier: str) -> str:
        return self._adapter.quote(identifier)

    def cap_memory(self) -> None:
        """Cap an embedded DuckDB's memory for the read-only work ahead (embedded_memory.py); a no-op
        on other warehouses, when the profile sets DuckDB's memory_limit, or when already capped."""
        if not self.memory_cap.active:
            self.memory_cap.apply(
                self.target.adapter_type,
                self._config.credentials,
                self.execute,
                lambda sql: self.query(sql)[1][0][0],
            )

    def _lift_cap_after(self, exc: BaseException) -> bool:
        """After DuckDB ran out of memory under our cap: lift the cap and say whether to run again."""
        conn = self._adapter.connections.get_if_exists()
        in_transaction = conn is not None and conn.transaction_open
        if not self.memory_cap.active or in_transaction or not is_out_of_memory(exc):
            return False
        self.memory_cap.lift(self.execute)
        return True

    def query(self, sql: str, bindings: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Run a query and return (column names, rows) with the driver's native Python values."""
        try:
            return self._query(sql, bindings)
        except Exception as exc:
            if not self._lift_cap_after(exc):
                raise
            return self._query(sql, bindings)

    def _query(self, sql: str, bindings: Sequence[Any] | None) -> tuple[list[str], list[tuple]]:
        cursor = self._run(sql, bindings)
        names = [d[0] for d in cursor.description] if cursor.description else []
        rows = [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        return names, rows

    def stream(self, sql: str, chunk_rows: int) -> Iterator[tuple[list[str], list[tuple]]]:
        """Run a query and yield (column names, up to `chunk_rows` rows) until its rows run out, so that
        a large result is never held whole. The query runs on a cursor of its own, so other queries
        may run between chunks. PostgreSQL reads through a server-side cursor (its default cursor
        would hold every row in the client)."""
        yielded = False
        try:
            for chunk in self._stream(sql, chunk_rows):
                yielded = True
                yield chunk
        except Exception as exc:
            if yielded or not self._lift_cap_after(exc):
                raise
            yield from self._stream(sql, chunk_rows)

    def _stream(self, sql: str, chunk_rows: int) -> Iterator[tuple[list[str], list[tuple]]]:
        conns = self._adapter.connections
        connection = conns.get_thread_connection()
        server_side = self.target.adapter_type in ("postgres", "redshift")
        if server_side and not connection.transaction_open:  # a server-side cursor lives in a transaction
            conns.begin()
        if server_side:  # psycopg2: a named cursor lives on the server; held past the commits of
            # ledger writes made while it is read (`run` streams a sync and sends as it reads)
            cursor = connection.handle.cursor(name=f"dss_stream_{next(_STREAMS)}", withhold=True)
            cursor.itersize = chunk_rows
        else:
            cursor = connection.handle.cursor()
            if self.target.adapter_type == "duckdb":  # dbt-duckdb hands out one shared cursor
                cursor = getattr(cursor, "_cursor", cursor).cursor()  # a sibling on the same database
        try:
            cursor.execute(sql)
            names: list[str] = []
            while True:
                rows = cursor.fetchmany(chunk_rows)
                if not names and cursor.description:
                    names = [d[0] for d in cursor.description]
                if not rows:
                    break
                yield names, [tuple(r) for r in rows]
        finally:
            cursor.close()

    def execute(self, sql: str, bindings: Sequence[Any] | None = None) -> None:
        self._run(sql, bindings)

    def _run(self, sql: str, bindings: Sequence[Any] | None) -> Any:
        """One statement on the connection, as dbt's `add_query` runs it (a transaction begun first,
        the driver's errors turned into dbt's and the transaction rolled back), without the three
        log events dbt builds per statement for loggers that `_silence_dbt_events` removed (~0.7 ms
        of CPU each statement, ~100 statements on a no-op run). The cursor, for its rows."""
        conns = self._adapter.connections
        connection = conns.get_thread_connection()
        if connection.transaction_open is False:
            self._begin(conns, connection)
        with conns.exception_handler(sql):
            cursor = connection.handle.cursor()
            cursor.execute(sql, bindings or None)
        return cursor

    def _begin(self, conns: Any, connection: Any) -> None:
        if self.target.adapter_type != "duckdb":  # others may skip transaction statements (autocommit)
            conns.begin()
            return
        with conns.exception_handler("BEGIN"):
            connection.handle.cursor().execute("BEGIN")
        connection.transaction_open = True

    def commit(self) -> None:
        conns = self._adapter.connections
        conn = conns.get_if_exists()
        if conn is None or not conn.transaction_open:
            return
        if self.target.adapter_type != "duckdb":
            conns.commit()
            return
        with conns.exception_handler("COMMIT"):
            conn.handle.cursor().execute("COMMIT")
        conn.transaction_open = False

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Statements inside commit together or not at all."""
        try:
            yield
            self.commit()
        except BaseException:
            conn = self._adapter.connections.get_if_exists()
            if conn is not None and conn.transaction_open:
                self._adapter.connections.rollback_if_open()
            raise

    def rollback(self) -> None:
        """End the transaction a failed statement left open (PostgreSQL refuses every later statement
        of it)."""
        conn = self._adapter.connections.get_if_exists()
        if conn is not None and conn.transaction_open:
            self._adapter.connections.rollback_if_open()

    def columns_of(self, relation: str) -> list[str] | None:
        """The relation's column names, or None when it does not exist (model not built)."""
        try:
            names, _ = self.query(f"select * from {relation} where 1 = 0")
        except Exception:
            self._adapter.connections.rollback_if_open()
            return None
        return names


def _root_without_macros_is_empty(context: dict[str, Any], root_project: str) -> None:
    """`adapter.dispatch(name, 'dbt_stripe_sync')` looks in the root project first; a root project with
    no macros of its own is no package in dbt's macro namespace, so every look-up there raises and
    catches an error whose constructor scans the whole environment for secrets (two per dispatch,
    hundreds per run). Listing the root project as a package with no macros finds the same nothing
    (dispatch then searches dbt_stripe_sync, as before) without the errors."""
    namespace = getattr(context.get("adapter"), "_namespace", None)
    packages = getattr(namespace, "packages", None)
    if isinstance(packages, dict):
        packages.setdefault(root_project, {})


def _default_profiles_dir(project_dir: str) -> str:
    env = os.environ.get("DBT_PROFILES_DIR")
    if env:
        return env
    if os.path.exists(os.path.join(project_dir, "profiles.yml")):
        return project_dir
    if os.path.exists(os.path.join(os.getcwd(), "profiles.yml")):
        return os.getcwd()
    return os.path.join(os.path.expanduser("~"), ".dbt")


def _silence_dbt_events() -> None:
    """dbt's event logger writes to stdout; our own report is the output users read."""
    try:
        from dbt_common.events.event_manager_client import get_event_manager

        manager = get_event_manager()
        manager.loggers.clear()
        manager.callbacks.clear()
    except Exception:  # older dbt-common: the noise is harmless
        pass


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:500]


def file_lock_holder(exc: BaseException) -> str | None:
    """`PID 123` when exc is DuckDB refusing a file another process holds, else None."""
    text = str(exc)
    if "Could not set lock on file" not in text and "Conflicting lock" not in text:
        return None
    pid = re.search(r"PID (\d+)", text)
    return f"PID {pid.group(1)}" if pid else "unknown PID"
