"""The Stripe key never leaves the process: after a full run, a run with a rejected row, a run that
fails on Stripe's side, a refused (malformed) key and a `plan --output`, no file in the project, no
process output, no ledger or runs row and no request the emulator logged holds the key or any 8
characters of its secret part (a masked key shows the prefix and 4 characters at most)."""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(600)

KEY_BODY = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))
KEY = "sk_test_" + KEY_BODY
NO_RETRIES = ["--vars", "{dbt_stripe_sync: {max_retries: 0}}"]


def _leaks(text: str) -> list[str]:
    """Pieces of the key in `text`: the whole key, or any 8-character window of its secret part."""
    found = [KEY] if KEY in text else []
    found += [KEY_BODY[i : i + 8] for i in range(len(KEY_BODY) - 7) if KEY_BODY[i : i + 8] in text]
    return found


def _project_files(root: Path) -> list[Path]:
    """Every regular file under the project (target/, logs/, plan.json, the DuckDB file, *.log ...),
    not following the dbt_packages symlink to this repository."""
    out: list[Path] = []
    for folder, _dirs, names in os.walk(root):  # os.walk does not descend into symlinked folders
        out += [Path(folder) / n for n in names if not (Path(folder) / n).is_symlink()]
    return out


def _state_rows(dbt_project) -> str:
    rows = []
    for table in ("stripe_sync_ledger", "stripe_sync_runs"):
        rows += dbt_project.query(f"select * from {dbt_project.state_schema}.{table}")
    assert rows
    return repr(rows)


def test_the_key_appears_nowhere(dbt_project):
    env = {"STRIPE_API_KEY": KEY}
    emu = dbt_project.emulator
    outputs: list[str] = []

    def sync(*args: str, code: int, subprocess_: bool = False, key: str = KEY) -> None:
        result = dbt_project.sync(*args, env={"STRIPE_API_KEY": key}, subprocess_=subprocess_)
        outputs.append(result.stdout + result.stderr)
        assert result.returncode == code, (args, result.stdout, result.stderr)

    dbt_project.build()
    sync("-s", "stripe_customers", code=0, subprocess_=True)  # a full run, in a real process

    rows = dbt_project.read_seed("raw_customers")
    rows[0]["email"] = "not-an-email"  # rejected before sending
    rows[1]["full_name"] = "Grace B. Hopper"  # an update that Stripe will fail
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    emu.set_faults(error_rate=1.0)
    sync("-s", "stripe_customers", *NO_RETRIES, code=1, subprocess_=True)
    sync("-s", "stripe_customers", *NO_RETRIES, code=1)
    emu.set_faults(error_rate=0.0)
    ledger = dbt_project.ledger("stripe_customers")
    # Stripe answered 500: the write failed (or, its outcome unknown, stays pending for the next run)
    assert ledger["1"]["status"] == "rejected" and ledger["2"]["status"] in ("failed", "pending")

    sync("-s", "stripe_customers", key=KEY + " ", code=2)  # a refused key is not echoed either
    # row 1 is still rejected (its data did not change): the plan predicts it, and exits 1 as the run will
    sync("plan", "-s", "stripe_customers", "--output", "plan.json", code=1, subprocess_=True)
    assert (dbt_project.path / "plan.json").exists()
    sync("validate", code=0)

    assert dbt_project.emulator.requests()  # the runs did reach Stripe
    assert env["STRIPE_API_KEY"] == KEY

    problems: dict[str, list[str]] = {}
    for i, text in enumerate(outputs):
        if _leaks(text):
            problems[f"output of run {i}"] = _leaks(text)
    files = _project_files(dbt_project.path)
    assert any(f.name == "plan.json" for f in files) and any(f.suffix == ".log" for f in files)
    if dbt_project.target == "duckdb":
        assert any(f.suffix == ".duckdb" for f in files)
    for path in files:
        text = path.read_bytes().decode("latin-1")
        if _leaks(text):
            problems[str(path.relative_to(dbt_project.path))] = _leaks(text)
    if _leaks(_state_rows(dbt_project)):
        problems["ledger/runs rows"] = _leaks(_state_rows(dbt_project))
    if _leaks(repr(emu.requests())):
        problems["emulator request log"] = _leaks(repr(emu.requests()))
    assert problems == {}


def test_leak_detector_finds_a_key_and_its_pieces():
    assert _leaks(f"Authorization: Bearer {KEY}") == [KEY, *[KEY_BODY[i : i + 8] for i in range(17)]]
    assert _leaks(f"key sk_test_…{KEY_BODY[-4:]}") == []  # the masked form is fine
    assert _leaks(f"sk_test_…{KEY_BODY[-8:]}") == [KEY_BODY[-8:]]
