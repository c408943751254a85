"""The command line program ends without tearing the interpreter down.

After a command, Python's shutdown frees every object one by one: dbt's modules, config and
manifest, the Stripe SDK's types, this package — ~0.5 s of CPU on a no-op `run` (more than the
run's own work), for memory the operating system takes back at once anyway. When the program is
`dbt-stripe-sync` itself (never when `main()` is called from Python: tests, the Python API, an
orchestrator), and no other thread is alive, it does what shutdown does that anyone can see —
runs every `atexit` handler (logging's flush among them), flushes stdout and stderr — and exits
with the command's code.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading

PROGRAMS = ("dbt-stripe-sync", "dbt-stripe-sync.exe", "__main__.py")


def is_program() -> bool:
    """Whether this process is the `dbt-stripe-sync` program (its console script, or
    `python -m dbt_stripe_sync`), not Python code that called `main()`."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    return os.path.basename(main_file) in PROGRAMS and "dbt_stripe_sync" in _main_source(main_file)


def _main_source(path: str) -> str:
    """The console script pip writes, or this package's __main__.py: both name the package."""
    if os.path.basename(path) == "__main__.py":  # python -m: the package's own __main__.py
        return os.path.basename(os.path.dirname(path))
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return ""


def exit_now(code: int) -> None:
    """End the process with `code` after the atexit handlers and a flush of stdout and stderr; returns
    (for the caller to exit as usual) when another thread is alive, as shutdown would wait for it."""
    if threading.active_count() > 1:
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reader that left (`| head`): nothing more to say
            stream.flush()
    os._exit(code)
