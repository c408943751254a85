"""Progress display: a plain line every ~5 s off a terminal (CI), a live bar on one, nothing with
--no-progress. The clock is injected: nothing here depends on how fast the machine is."""

from __future__ import annotations

import io
import json

from dbt_stripe_sync.progress import PlainProgress, Progress, RichProgress, make_progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_only_every_interval_with_rate_and_eta():
    clock, out = FakeClock(), io.StringIO()
    progress = PlainProgress(out, clock=clock, ticker=False)
    with progress.phase("stripe_customers: sending to Stripe", total=2000):
        progress.tick()
        clock.now += 4.9
        progress.advance(490)
        progress.tick()
        assert out.getvalue() == ""  # under 5 s: silent, a short phase prints nothing at all
        clock.now += 0.1
        progress.advance(10)
        progress.tick()
        progress.tick()  # a second tick at the same moment adds nothing
        clock.now += 5.0
        progress.advance(500)
        progress.tick()
        clock.now += 10.0
        progress.advance(1000)
    assert out.getvalue().splitlines() == [
        "[progress] stripe_customers: sending to Stripe: 500/2000 (25%), 100.0/s, ETA 15s, 5s elapsed",
        "[progress] stripe_customers: sending to Stripe: 1000/2000 (50%), 100.0/s, ETA 10s, 10s elapsed",
        "[progress] stripe_customers: sending to Stripe: done (2000 in 20s)",
    ]


def test_plain_phase_without_total_says_it_is_running_and_short_phases_stay_silent():
    clock, out = FakeClock(), io.StringIO()
    progress = PlainProgress(out, clock=clock, ticker=False)
    with progress.phase("stripe_prices: diff in the warehouse"):
        clock.now += 3
        progress.tick()
    assert out.getvalue() == ""
    with progress.phase("stripe_customers: diff in the warehouse"):
        clock.now += 65
        progress.tick()
    assert out.getvalue().splitlines() == [
        "[progress] stripe_customers: diff in the warehouse: running, 1m05s elapsed",
        "[progress] stripe_customers: diff in the warehouse: done (1m05s)",
    ]


def test_plain_lines_are_json_objects_under_log_format_json():
    clock, out = FakeClock(), io.StringIO()
    progress = PlainProgress(out, clock=clock, ticker=False, json_lines=True)
    with progress.phase("sending", total=10):
        clock.now += 6
        progress.advance(3)
        progress.tick()
    first, last = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["phase"] == "sending" and (first["done"], first["total"], first["finished"]) == (
        3,
        10,
        False,
    )
    assert last["finished"] is True and last["level"] == "info"
    for line in (first, last):  # the keys every JSON log line has (F10: `ts` was missing)
        assert {"ts", "level", "logger", "msg"} <= set(line) and line["logger"] == "dbt_stripe_sync.progress"


def test_display_choice_terminal_ci_and_disabled():
    assert type(make_progress(False, Tty())) is Progress
    plain = make_progress(True, io.StringIO())
    assert isinstance(plain, PlainProgress)
    plain.close()
    tty = Tty()
    bar = make_progress(True, tty)
    assert isinstance(bar, RichProgress)
    with bar.phase("sending", total=4):
        bar.advance(4)
    bar.close()
    assert "[progress]" not in tty.getvalue()
    json_on_tty = make_progress(True, Tty(), json_lines=True)
    assert isinstance(json_on_tty, PlainProgress)  # machine-readable logs never get a live bar
    json_on_tty.close()


def test_disabled_progress_writes_nothing():
    out = io.StringIO()
    progress = make_progress(False, out)
    with progress.phase("x", total=3):
        progress.advance(3)
    progress.close()
    assert out.getvalue() == ""
