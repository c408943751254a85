"""Errors that end a command with a clear message instead of a traceback."""

from __future__ import annotations


class DssError(Exception):
    """Base of the errors the CLI reports as one clear message."""

    exit_code = 1


class UsageError(DssError):
    """Invalid configuration, project or invocation: nothing was sent (exit 2)."""

    exit_code = 2


class SyncAborted(DssError):
    """A sync refused to apply its plan (a guard tripped); other syncs may still run (exit 1)."""

    exit_code = 1
