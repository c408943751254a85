"""Named points where a test can make the process die with SIGKILL, to prove crash safety.

Set DBT_STRIPE_SYNC_CRASH_AT=<point> (first hit) or <point>#<n> (n-th hit). Unset, a crash point
costs one dictionary look-up. The points are part of the design: each sits where a real crash
would leave a distinct state behind (see tests/integration/test_crash_safety.py).
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "DBT_STRIPE_SYNC_CRASH_AT"
POINTS = (
    "after_recover",  # pending writes of a previous crash were re-sent
    "after_diff",  # the warehouse diff ran; nothing planned yet
    "after_plan",  # planned; nothing written anywhere
    "after_checkpoint",  # a batch is pending in the ledger; nothing sent
    "after_send",  # Stripe applied a write; its outcome is not recorded
    "mid_record",  # a batch's outcomes are being written (inside the transaction)
    "after_record",  # a batch's outcomes are recorded; later batches not sent
    "before_runs_row",  # every write done; the runs table not updated
)
_hits: dict[str, int] = {}
_lock = threading.Lock()


def crashpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    point, _, nth = spec.partition("#")
    if point != name:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
