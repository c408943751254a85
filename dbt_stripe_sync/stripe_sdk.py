"""The `stripe` SDK, imported for its generated parameter types without its async HTTP stack.

This tool reads the SDK's `stripe.params` TypedDicts (stripe_catalog.py) and its `api_version`; it
never sends through the SDK (gateway/transport.py speaks HTTP itself). Importing `stripe` probes for
an async HTTP library at import time (`httpx` + `anyio`, else `aiohttp`) and imports the one it finds
— aiohttp alone costs ~100 ms, paid by every command, a no-op `run` included. `load_stripe()` imports
the SDK with those libraries hidden, then restores them and makes the SDK's async fallback resolve
on first use instead, so a program that uses the SDK's async client in the same process still gets
exactly the client it would have had.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

_ASYNC_LIBRARIES = ("httpx", "anyio", "aiohttp")


def load_stripe() -> ModuleType:
    """The `stripe` package, imported once; its async HTTP library is imported only when used."""
    loaded = sys.modules.get("stripe")
    if loaded is not None:
        return loaded
    hidden = [n for n in _ASYNC_LIBRARIES if n not in sys.modules] if _probes_on_import() else []
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        import stripe
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    if hidden:
        _resolve_async_client_on_use(stripe)
    return stripe


def _probes_on_import() -> bool:
    """Whether the installed SDK probes the way `_resolve_async_client_on_use` can redo on use
    (`_default_async_client = _resolve_async_client()` in `stripe/_http_client.py`, as in stripe 16);
    any other SDK is imported as it is, async libraries and all."""
    spec = importlib.util.find_spec("stripe")
    if spec is None or not spec.submodule_search_locations:
        return False
    source = Path(next(iter(spec.submodule_search_locations))) / "_http_client.py"
    try:
        return "_default_async_client = _resolve_async_client()" in source.read_text(encoding="utf-8")
    except OSError:
        return False


def _resolve_async_client_on_use(stripe: ModuleType) -> None:
    http_client = stripe._http_client
    resolve = http_client._resolve_async_client

    def async_client(*args: Any, **kwargs: Any) -> Any:
        return resolve()(*args, **kwargs)  # the library probe the SDK would have run at import

    http_client._default_async_client = async_client  # type: ignore[union-attr]
