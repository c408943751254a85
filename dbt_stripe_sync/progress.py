"""Progress on stderr for work that can take more than a second (dbt build, diff, matching, sending).

On a terminal: a live `rich` bar with rate and ETA. Elsewhere (CI): one plain line every ~5 s per
running phase, so a log shows the run is alive without drowning it. `--no-progress` silences both.
The clock is injectable and the plain display's ticker optional, so tests need no real time.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

PLAIN_INTERVAL_S = 5.0


class Progress:
    """No display at all (the base: `--no-progress`, `plan -o -`, the Python API by default)."""

    @contextmanager
    def phase(self, label: str, total: int | None = None) -> Iterator[None]:
        yield

    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class _Phase:
    label: str
    total: int | None
    started: float
    done: int = 0
    printed: bool = False


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class PlainProgress(Progress):
    """A line every `interval` seconds of a running phase, and a closing line for a phase that got one."""

    def __init__(
        self,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = PLAIN_INTERVAL_S,
        json_lines: bool = False,
        ticker: bool = True,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._interval = interval
        self._json = json_lines
        self._lock = threading.Lock()
        self._current: _Phase | None = None
        self._last_line = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if ticker:
            self._thread = threading.Thread(target=self._tick_forever, name="dss-progress", daemon=True)
            self._thread.start()

    @contextmanager
    def phase(self, label: str, total: int | None = None) -> Iterator[None]:
        with self._lock:
            previous = self._current
            self._current = _Phase(label, total, self._clock())
            self._last_line = self._current.started
        try:
            yield
        finally:
            with self._lock:
                finished, self._current = self._current, previous
                if finished is not None and finished.printed:
                    elapsed = self._clock() - finished.started
                    done = f"{finished.done} in " if finished.total else ""
                    self._emit(finished, f"{finished.label}: done ({done}{_duration(elapsed)})", final=True)

    def advance(self, n: int = 1) -> None:
        with self._lock:
            if self._current is not None:
                self._current.done += n

    def tick(self) -> None:
        """Print a status line when the current phase has run `interval` seconds since the last one."""
        with self._lock:
            p = self._current
            now = self._clock()
            if p is None or now - self._last_line < self._interval:
                return
            self._last_line = now
            p.printed = True
            self._emit(p, self._status(p, now))

    def close(self) -> None:
        self._stop.set()

    def _tick_forever(self) -> None:
        while not self._stop.wait(0.5):
            self.tick()

    def _status(self, p: _Phase, now: float) -> str:
        elapsed = now - p.started
        text = f"{p.label}: "
        if p.total:
            rate = p.done / elapsed if elapsed > 0 else 0.0
            share = 100 * p.done / p.total
            text += f"{p.done}/{p.total} ({share:.0f}%), {rate:.1f}/s"
            if rate > 0 and p.done < p.total:
                text += f", ETA {_duration((p.total - p.done) / rate)}"
            text += f", {_duration(elapsed)} elapsed"
        else:
            text += f"running, {_duration(elapsed)} elapsed"
        return text

    def _emit(self, p: _Phase, text: str, final: bool = False) -> None:
        if self._json:
            from dbt_stripe_sync.log_setup import json_record

            record: dict[str, Any] = {
                **json_record("info", "dbt_stripe_sync.progress", text),
                "phase": p.label,
                "done": p.done,
                "total": p.total,
                "finished": final,
            }
            line = json.dumps(record)
        else:
            line = f"[progress] {text}"
        self._stream.write(line + "\n")
        self._stream.flush()


class RichProgress(Progress):
    """A live bar per phase on a terminal (rich), transient: the summary is what stays on screen."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar
        from rich.text import Text

        class RateColumn(ProgressColumn):
            def render(self, task: Any) -> Text:
                return Text(f"{task.speed:.1f}/s" if task.speed else "", style="progress.data.speed")

        self._bar = RichBar(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self._bar.start()
        self._task: Any = None

    @contextmanager
    def phase(self, label: str, total: int | None = None) -> Iterator[None]:
        previous = self._task
        self._task = self._bar.add_task(label, total=total)
        try:
            yield
        finally:
            self._bar.remove_task(self._task)
            self._task = previous

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        self._bar.stop()


def make_progress(enabled: bool, stream: TextIO | None = None, *, json_lines: bool = False) -> Progress:
    stream = stream or sys.stderr
    if not enabled:
        return Progress()
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty() and not json_lines:
        return RichProgress(stream)
    return PlainProgress(stream, json_lines=json_lines)


@contextmanager
def progress_display(enabled: bool, stream: TextIO | None = None) -> Iterator[Progress]:
    from dbt_stripe_sync.log_setup import json_logs

    progress = make_progress(enabled, stream, json_lines=json_logs())
    try:
        yield progress
    finally:
        progress.close()
