"""dbt's compiled templates are read back by the next command, and only for the same source."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_common.clients.jinja import get_environment

from dbt_stripe_sync import jinja_code_cache


@pytest.fixture(autouse=True)
def _no_cache_left() -> object:
    yield
    jinja_code_cache.uninstall()


def _render(source: str) -> str:
    return str(get_environment().from_string(source).render({"n": 2}))


def test_a_template_compiled_by_one_command_is_read_back_by_the_next(tmp_path: Path) -> None:
    jinja_code_cache.install(str(tmp_path))
    assert _render("{{ n + 1 }}") == "3"
    jinja_code_cache.uninstall()
    assert (tmp_path / jinja_code_cache.FILE_NAME).exists()

    cache = jinja_code_cache.install(str(tmp_path))
    assert cache is not None
    assert _render("{{ n + 1 }}") == "3"
    assert len(cache._used) == 1 and not cache._added  # served from the file, not compiled

    assert _render("{{ n * 5 }}") == "10"  # another source: compiled, never another's code
    assert cache._added


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    (tmp_path / jinja_code_cache.FILE_NAME).write_bytes(b"dss-jinja-1\nnot what was written")
    cache = jinja_code_cache.install(str(tmp_path))
    assert cache is not None
    assert _render("{{ n - 1 }}") == "1"
    assert cache._added


def test_without_a_cache_templates_compile_as_before(tmp_path: Path) -> None:
    jinja_code_cache.install(str(tmp_path / "missing" / "target"))
    jinja_code_cache.uninstall()
    assert _render("{{ n }}") == "2"
    assert not (tmp_path / "missing").exists()
