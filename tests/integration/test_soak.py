"""An adversarial soak, bounded: the billing chain through random SIGKILL points under faults,
two overlapping runs, a re-key, a dropped ledger with expired keys, and an outage — after each
phase Stripe must equal the models exactly (one live object per row, none extra), the ledger must
name those objects, and a clean rerun must converge. The seed is random and printed; set
DSS_SOAK_SEED to replay a failure."""

from __future__ import annotations

import os
import random
import signal
import socket
from collections import Counter

import pytest

from dbt_stripe_sync.crashpoints import ENV as CRASH_ENV
from tests.integration.test_exactly_once import _drop_state
from tests.integration.test_faults import (
    EXPECTED,
    FAULTS,
    NO_FAULTS,
    SMALL,
    SYNCS,
    VARS,
    _alive,
    _change_some_rows,
    _ids,
    _tag,
    _view,
    _write_seeds,
)
from tests.support import scale
from tests.support.dbt_project import api_writes

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]
CRASH_POINTS = ("after_diff", "after_checkpoint", "after_send", "mid_record", "after_record", "after_recover")


def _assert_converged(project, seeds) -> None:
    emu = project.emulator
    ids = _ids(project, seeds)
    for sync, (seed, pk, kind) in SYNCS.items():
        rows = {str(r[pk]): r for r in seeds[seed]}
        live = [o for o in emu.objects(kind) if _tag(o).startswith(sync + ":") and _alive(kind, o)]
        tags = Counter(_tag(o) for o in live)
        assert [t for t, n in tags.items() if n > 1] == [], f"{sync}: duplicated objects"
        assert set(tags) == {f"{sync}:{k}" for k in rows}, f"{sync}: live objects differ from the model rows"
        by_key = {_tag(o).split(":", 1)[1]: o for o in live}
        ledger = project.ledger(sync)
        assert {k: (ledger[k]["status"], ledger[k]["stripe_id"]) for k in rows if k in ledger} == {
            k: ("synced", by_key[k]["id"]) for k in rows
        }, f"{sync}: the ledger does not name the objects Stripe holds"
        wrong = [
            k
            for k, r in rows.items()
            if any(_view(kind, by_key[k]).get(f) != v for f, v in EXPECTED[sync](r, ids).items())
        ]
        assert not wrong, f"{sync}: objects differ from the model: {wrong[:5]}"


def _faulty(project, rng: random.Random, *, crash: bool) -> None:
    project.emulator.set_faults(**{**FAULTS, "seed": rng.randrange(1 << 30)})
    env = {}
    if crash:
        env[CRASH_ENV] = f"{rng.choice(CRASH_POINTS)}#{rng.randint(1, 4)}"
    try:
        proc = project.sync("--vars", VARS, env=env, subprocess_=True)
    finally:
        project.emulator.set_faults(**NO_FAULTS)
    # killed, finished, or finished with rows left pending: never a traceback
    assert proc.returncode in (0, 1, -signal.SIGKILL), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


def _clean(project) -> None:
    proc = project.sync("--vars", VARS)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_soak(dbt_project, warehouse):
    seed = int(os.environ.get("DSS_SOAK_SEED") or random.randrange(1 << 30))
    print(f"soak seed {seed} (DSS_SOAK_SEED={seed} replays it)")
    rng = random.Random(seed)
    project, emu = dbt_project, dbt_project.emulator
    seeds = scale.chain(SMALL)
    _write_seeds(project, seeds)

    # 1. random kills under faults, two overlapping runs, then a clean run converges
    for _ in range(2):
        _faulty(project, rng, crash=True)
    emu.set_faults(**{**FAULTS, "seed": rng.randrange(1 << 30)})
    pair = [project.popen_sync("--vars", VARS) for _ in range(2)]
    results = [(*p.communicate(timeout=600), p.returncode) for p in pair]
    emu.set_faults(**NO_FAULTS)
    for out, err, code in results:
        assert code in (0, 1) and "Traceback" not in err, out[-2000:] + err[-2000:]
    _clean(project)
    _assert_converged(project, seeds)

    # 2. edits, removals and a re-keyed customer (same email, new key), under a kill
    _change_some_rows(seeds, SMALL)
    moved = seeds["raw_customers"][rng.randrange(len(seeds["raw_customers"]))]
    moved["user_id"] = str(int(moved["user_id"]) + 100000)
    _write_seeds(project, seeds)
    _faulty(project, rng, crash=True)
    _clean(project)
    _assert_converged(project, seeds)

    # 3. the state schema is lost, Stripe forgot every key, and a price amount changed
    _drop_state(project)
    emu.expire_idempotency_keys()
    price = seeds["raw_prices"][rng.randrange(len(seeds["raw_prices"]))]
    price["unit_amount"] = int(price["unit_amount"]) + 300
    _write_seeds(project, seeds)
    _faulty(project, rng, crash=False)
    _clean(project)
    _assert_converged(project, seeds)

    # 4. an outage: nothing is sent or lost, and the next run has nothing left to do
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    down = project.sync("--vars", VARS, env={"STRIPE_API_BASE": dead}, subprocess_=True)
    assert down.returncode in (0, 1) and "Traceback" not in down.stderr
    emu.clear_requests()
    _clean(project)
    assert api_writes(emu.requests()) == []
    _assert_converged(project, seeds)
