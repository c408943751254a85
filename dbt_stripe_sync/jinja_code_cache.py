"""dbt's jinja templates compiled once, not once per command.

dbt compiles every macro it renders from its source, in every process: parse the jinja, generate
Python, compile that. A no-op `run` renders ~50 (this package's diff and state macros and what they
call, and dbt's own while it loads the project): ~70 ms of its CPU, more than `dbt parse` spends on
jinja in all. The compiled code only depends on the template's source, the jinja environment's
settings and the versions of Python, jinja and dbt-common, so it is kept, keyed by all of them,
in the project's target directory (where dbt keeps its own parse cache), and read back by the next
command. A template whose key is not there is compiled as before; a cache that cannot be read or
written is ignored (it only ever saves time). Only dbt's environments use it, only while a
`Warehouse` is open.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
from types import CodeType
from typing import Any

FILE_NAME = "dbt_stripe_sync_jinja.cache"
_FORMAT = b"dss-jinja-1\n"
MAX_ENTRIES = 2_000  # past this, a save keeps only the templates the process used


class CodeCache:
    """Compiled templates by key, read from and written back to one file."""

    def __init__(self, path: str, stamp: bytes) -> None:
        self.path = path
        self._stamp = stamp  # Python, jinja, dbt-common versions: a file from others is not used
        self._stored: dict[str, bytes] = self._read()
        self._used: dict[str, bytes] = {}
        self._added = False

    def _read(self) -> dict[str, bytes]:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
            head = _FORMAT + self._stamp
            if not data.startswith(head):
                return {}
            stored = marshal.loads(data[len(head) :])
        except Exception:  # missing, unreadable, or from another version: compile as before
            return {}
        return stored if isinstance(stored, dict) else {}

    def get(self, key: str) -> CodeType | None:
        raw = self._stored.get(key)
        if raw is None:
            return None
        try:
            code = marshal.loads(raw)
        except Exception:
            return None
        if not isinstance(code, CodeType):
            return None
        self._used[key] = raw
        return code

    def put(self, key: str, code: CodeType) -> None:
        self._used[key] = marshal.dumps(code)
        self._added = True

    def save(self) -> None:
        """Write the file back if this process compiled something new (atomically: a concurrent
        command reads the old file or the new one)."""
        if not self._added:
            return
        entries = {**self._stored, **self._used}
        if len(entries) > MAX_ENTRIES:
            entries = dict(self._used)
        try:
            folder = os.path.dirname(self.path)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".dss-jinja-", dir=folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(_FORMAT + self._stamp + marshal.dumps(entries))
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except Exception:  # a read-only target directory: the next command compiles again
            return
        self._stored, self._added = entries, False


_active: CodeCache | None = None


def install(target_path: str) -> CodeCache | None:
    """Serve dbt's template compilations from the cache in `target_path` until `uninstall()`."""
    global _active
    try:
        import jinja2
        from dbt_common.__about__ import version as dbt_common_version
        from dbt_common.clients import jinja as dbt_jinja
    except ImportError:  # pragma: no cover - dbt-common always has both
        return None
    env_class = dbt_jinja.MacroFuzzEnvironment
    if "_dss_compile" not in env_class.__dict__:
        original = env_class.compile
        env_class.compile = _cached_compile(original)  # type: ignore[method-assign]
        env_class._dss_compile = original  # type: ignore[attr-defined]
    stamp = f"{sys.version}|{jinja2.__version__}|{dbt_common_version}\n".encode()
    _active = CodeCache(os.path.join(target_path, FILE_NAME), stamp)
    return _active


def uninstall() -> None:
    """Save what was compiled anew and stop using the cache."""
    global _active
    cache, _active = _active, None
    if cache is not None:
        cache.save()


def _cached_compile(original: Any) -> Any:
    def compile(  # jinja2.Environment.compile's name and signature
        self: Any,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        cache = _active
        if cache is None or raw or not isinstance(source, str) or _macro_debugging():
            return original(self, source, name, filename, raw, defer_init)
        key = _key(self, source, name, filename, defer_init)
        code = cache.get(key)
        if code is None:
            code = original(self, source, name, filename, raw, defer_init)
            if isinstance(code, CodeType):
                cache.put(key, code)
        return code

    return compile


def _macro_debugging() -> bool:
    """dbt's DBT_MACRO_DEBUGGING puts each compiled template's source in linecache: compile then."""
    from dbt_common.clients import jinja as dbt_jinja

    return bool(getattr(dbt_jinja, "MACRO_DEBUGGING", False))


def _key(env: Any, source: str, name: str | None, filename: str | None, defer_init: bool) -> str:
    """Everything the generated code depends on: the source, its names, and the environment's
    syntax, extensions and code generation settings."""
    settings = (
        f"{type(env).__module__}.{type(env).__qualname__}",
        sorted(f"{type(e).__module__}.{type(e).__qualname__}" for e in env.extensions.values()),
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        env.optimized,
        env.is_async,
        _name_of(env.autoescape),
        _name_of(env.finalize),
        _name_of(env.code_generator_class),
        name,
        filename,
        defer_init,
    )
    digest = hashlib.sha256(repr(settings).encode())
    digest.update(b"\0")
    digest.update(source.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _name_of(value: Any) -> str:
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"
    return repr(value)
