"""Output to a reader that left is dropped; the command goes on.

`dbt-stripe-sync run | head -1` closes the pipe after one line. Python then raises BrokenPipeError
from whichever print or log line comes next — in the middle of a run, between two batches of
writes — and the command used to end there with exit code 0: a blocked or failed run looked like a
pass to the job piping it, and `--output` was never written. While a command runs, stdout and
stderr are wrapped so that a write to a closed pipe points the stream at /dev/null and returns:
the run finishes, its report is written, and its exit code is its own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO


class _Guarded:
    """A text stream whose writes after its reader left are dropped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_left = False

    def write(self, text: str) -> int:
        if not self.reader_left:
            try:
                return self._stream.write(text)
            except OSError as exc:
                self._left(exc)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.reader_left:
            try:
                self._stream.flush()
            except OSError as exc:
                self._left(exc)

    def _left(self, exc: OSError) -> None:
        if not isinstance(exc, BrokenPipeError) and exc.errno != errno.EPIPE:
            raise exc
        self.reader_left = True
        # what is still buffered goes nowhere, now and when the interpreter flushes at exit
        with contextlib.suppress(Exception):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, buffer, ...
        return getattr(self._stream, name)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """stdout and stderr guarded for the duration (restored after: `main()` called from Python)."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Guarded(out), _Guarded(err)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
