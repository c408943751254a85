"""The warehouse, reached through the project's own dbt profile and adapter.

This is the only module that imports dbt internals. It boots dbt's config and adapter the way
`dbt run-operation` does, loads the macros of the project (which include this package's
`macros/` once the user lists dbt_stripe_sync in packages.yml), renders SQL with them, and
runs it on one connection. Values always travel as bind parameters, never pasted into SQL.
"""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dbt_stripe_sync.errors import UsageError

PACKAGE_NAME = "dbt_stripe_sync"
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

    # ---- boot -----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        project_dir: str,
        profiles_dir: str | None = None,
        target: str | None = None,
        cli_vars: dict[str, Any] | None = None,
    ) -> Warehouse:
        from dbt.adapters.factory import get_adapter, register_adapter
        from dbt.config.runtime import RuntimeConfig
        from dbt.context.providers import generate_runtime_macro_context
        from dbt.flags import set_from_args
        from dbt.mp_context import get_mp_context
        from dbt.parser.manifest import ManifestLoader
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
            config = RuntimeConfig.from_args(args)
        except Exception as exc:  # dbt's own errors already say what is wrong with the profile
            raise UsageError(f"could not load the dbt project or profile: {_first_line(exc)}") from exc
        register_adapter(config, get_mp_context())
        adapter = get_adapter(config)
        macros = _macros_from_last_parse(config) or ManifestLoader.load_macros(
            config, adapter.connections.set_query_header
        )
        adapter.set_macro_resolver(macros)
        adapter.set_macro_context_generator(generate_runtime_macro_context)
        if not any(m.package_name == PACKAGE_NAME for m in macros.macros.values()):
            raise UsageError(
                f"the dbt package {PACKAGE_NAME} is not installed in {project_dir}: add it to "
                "packages.yml (see the README's quickstart) and run `dbt deps`"
            )
        wh = cls(config, adapter)
        adapter.acquire_connection("dbt_stripe_sync")
        return wh

    def close(self) -> None:
        """Release the connection and any process-wide handle (DuckDB keeps its file locked otherwise)."""
        try:
            self.commit()
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
        """Render one of this package's macros (dispatched for the adapter) and return its value."""
        return self._adapter.execute_macro(macro_name, project=PACKAGE_NAME, kwargs=kwargs)

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

    def query(self, sql: str, bindings: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Run a query and return (column names, rows) with the driver's native Python values."""
        _, cursor = self._adapter.connections.add_query(sql, bindings=bindings or None, abridge_sql_log=True)
        names = [d[0] for d in cursor.description] if cursor.description else []
        rows = [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        return names, rows

    def execute(self, sql: str, bindings: Sequence[Any] | None = None) -> None:
        self._adapter.connections.add_query(sql, bindings=bindings or None, abridge_sql_log=True)

    def commit(self) -> None:
        conns = self._adapter.connections
        conn = conns.get_if_exists()
        if conn is not None and conn.transaction_open:
            conns.commit()

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

    def columns_of(self, relation: str) -> list[str] | None:
        """The relation's column names, or None when it does not exist (model not built)."""
        try:
            names, _ = self.query(f"select * from {relation} where 1 = 0")
        except Exception:
            self._adapter.connections.rollback_if_open()
            return None
        return names


def _macros_from_last_parse(config: Any) -> Any | None:
    """The macros dbt stored at its last parse (target/partial_parse.msgpack), when no macro file
    changed since: a fraction of the cost of parsing every macro again on each invocation."""
    path = os.path.join(config.project_root, config.target_path, "partial_parse.msgpack")
    try:
        written = os.path.getmtime(path)
        roots = [os.path.join(config.project_root, p) for p in config.macro_paths]
        packages = os.path.join(config.project_root, config.packages_install_path)
        if os.path.isdir(packages):
            roots += [os.path.join(packages, name, "macros") for name in os.listdir(packages)]
        for root in roots:
            for dirpath, _dirs, files in os.walk(root, followlinks=True):
                paths = (os.path.join(dirpath, f) for f in files if f.endswith(".sql"))
                if any(os.path.getmtime(p) > written for p in paths):
                    return None
        from dbt.contracts.graph.manifest import Manifest

        with open(path, "rb") as fh:
            manifest = Manifest.from_msgpack(fh.read())
    except Exception:  # absent, unreadable or from another dbt version: parse the macros instead
        return None
    return manifest if manifest.macros else None


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
