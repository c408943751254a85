"""One writer per state schema.

Two runs writing through one ledger at once would each plan the same new rows and create them
twice. A run therefore takes a lock on its state schema before it reads the ledger and holds it
to the end. How the lock is taken is a dispatched macro (`lock_strategy`): PostgreSQL uses a
session-level advisory lock, which the server releases when the run's connection ends however the
run ends; other warehouses use a lease row in `stripe_sync_lock`, taken over when its holder is a
dead process on this host or has not renewed it for `lock_lease_s`. The lease row is written in
both cases, so a run that has to wait can name the run that holds the lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from dbt_stripe_sync.errors import DssError
from dbt_stripe_sync.ledger import utcnow
from dbt_stripe_sync.warehouse import Warehouse

LOCK_TABLE = "stripe_sync_lock"
_POLL_S = 0.5
_BEAT_EVERY_S = 30.0


_CREATE_TRIES = 4  # first runs racing to create the state schema (`_create_lock_table`)


class StateLockBusy(DssError):
    """Another run holds the state schema's lock and did not release it in time (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str | None
    pid: int | None
    acquired_at: dt.datetime | None
    heartbeat_at: dt.datetime | None

    def describe(self) -> str:
        where = f"pid {self.pid} on {self.host}" if self.pid else "an unknown process"
        since = f", since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC" if self.acquired_at else ""
        return f"run {self.run_id} ({where}{since})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StateLock:
    def __init__(
        self,
        wh: Warehouse,
        schema: str,
        run_id: str,
        *,
        wait_s: float,
        lease_s: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wh = wh
        self.schema = schema
        self.run_id = run_id
        self.wait_s = wait_s
        self.lease_s = lease_s
        self.relation = wh.relation(schema, LOCK_TABLE)
        self.name = f"{wh.target.database or ''}.{schema}"
        digest = hashlib.sha256(f"dbt_stripe_sync:{self.name}".encode()).digest()
        self.lock_id = int.from_bytes(digest[:8], "big", signed=True)  # a bigint for pg_advisory_lock
        self._sleep = sleep
        self._clock = clock
        self._strategy: str | None = None
        self._held = False
        self._last_beat = 0.0

    # ---- acquire / release ----------------------------------------------------------------
    def _create_lock_table(self) -> None:
        """The state schema and its lock table, on a first run. Two first runs at once both get here, and
        PostgreSQL's `create schema if not exists` (or table) is not atomic against another session's: the
        one that waited on the other's uncommitted schema fails with a unique violation in the catalog
        (pg_namespace). Then the other's schema (or table) is there: check, and create what is missing."""
        for attempt in range(_CREATE_TRIES):
            try:
                self.wh.create_schema(self.schema)
                with self.wh.transaction():
                    self.wh.execute(self.wh.macro("create_lock_table_sql", lock_relation=self.relation))
                return
            except Exception:
                self.wh.rollback()
                if self.wh.columns_of(self.relation) is not None:
                    return
                if attempt + 1 == _CREATE_TRIES:
                    raise

    def acquire(self) -> None:
        """Take the lock, waiting up to wait_s for another run to finish; else raise StateLockBusy."""
        if self.wh.columns_of(self.relation) is None:  # the first run on this schema: no DDL after that
            self._create_lock_table()
        self._strategy = str(self.wh.macro("lock_strategy")).strip()
        deadline = self._clock() + self.wait_s
        while not self._try():
            remaining = deadline - self._clock()
            if remaining <= 0:
                holder = self.holder()
                who = holder.describe() if holder else "another run"
                raise StateLockBusy(
                    f"the state schema {self.schema} is locked by {who}; waited {self.wait_s:g} s. Only one "
                    "run may write through a ledger at a time: wait for it to finish (or raise "
                    "vars.dbt_stripe_sync.lock_wait_s); nothing was sent by this run"
                )
            self._sleep(min(_POLL_S, remaining))
        self._held = True
        self._last_beat = self._clock()

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        p = self.wh.placeholder
        try:
            with self.wh.transaction():
                self.wh.execute(
                    f"delete from {self.relation} where lock_name = {p} and run_id = {p}",
                    [self.name, self.run_id],
                )
        finally:
            if self._strategy == "advisory":
                self.wh.query(self.wh.macro("advisory_unlock_sql", lock_id=self.lock_id))
                self.wh.commit()

    def beat(self) -> None:
        """Renew the lease (cheap, at most every 30 s): a long run is not taken for a dead one."""
        if not self._held or self._clock() - self._last_beat < _BEAT_EVERY_S:
            return
        self._last_beat = self._clock()
        p = self.wh.placeholder
        with self.wh.transaction():
            self.wh.execute(
                f"update {self.relation} set heartbeat_at = {p} where lock_name = {p} and run_id = {p}",
                [utcnow(), self.name, self.run_id],
            )

    # ---- internals ------------------------------------------------------------------------
    def holder(self) -> Holder | None:
        p = self.wh.placeholder
        _, rows = self.wh.query(
            f"select run_id, host, pid, acquired_at, heartbeat_at from {self.relation} where lock_name = {p}",
            [self.name],
        )
        self.wh.commit()
        return Holder(*rows[0]) if rows else None

    def _stale(self, holder: Holder) -> bool:
        mine = holder.host == socket.gethostname() and holder.pid and holder.pid != os.getpid()
        if mine and not _pid_alive(int(holder.pid)):
            return True
        beat = holder.heartbeat_at or holder.acquired_at
        return beat is None or (utcnow() - beat).total_seconds() > self.lease_s

    def _try(self) -> bool:
        if self._strategy == "advisory":
            _, rows = self.wh.query(self.wh.macro("try_advisory_lock_sql", lock_id=self.lock_id))
            self.wh.commit()
            if not rows or not rows[0][0]:
                return False
            self._write_lease(replace_any=True)  # an older row's holder is gone: the server freed its lock
            return True
        holder = self.holder()
        if holder is not None and holder.run_id != self.run_id and not self._stale(holder):
            return False
        try:
            self._write_lease(replace=holder.run_id if holder else None)
        except Exception:  # another run inserted the row first (primary key): not ours
            return False
        current = self.holder()
        return current is not None and current.run_id == self.run_id

    def _write_lease(self, replace: str | None = None, replace_any: bool = False) -> None:
        """Insert our lease row, first removing the row of `replace` (a stale holder) or any row."""
        p = self.wh.placeholder
        now = utcnow()
        with self.wh.transaction():
            if replace_any:
                self.wh.execute(f"delete from {self.relation} where lock_name = {p}", [self.name])
            elif replace is not None:
                self.wh.execute(
                    f"delete from {self.relation} where lock_name = {p} and run_id = {p}",
                    [self.name, replace],
                )
            self.wh.execute(
                f"insert into {self.relation} (lock_name, run_id, host, pid, acquired_at, heartbeat_at) "
                f"values ({p}, {p}, {p}, {p}, {p}, {p})",
                [self.name, self.run_id, socket.gethostname(), os.getpid(), now, now],
            )
