"""The system jobs that build alternate-key indexes (§3.6, EntityKeyIndexStatus).

Microsoft Learn, "Work with alternate keys"
(https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity):
creating a key starts an asynchronous system job that builds its unique index; until the job
ends the key is ``Pending`` (then ``InProgress``) and cannot be used; the job ends ``Active``, or
``Failed`` when the table already holds rows with duplicate key values. The ``ReactivateEntityKey``
action (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/reactivateentitykey)
submits a new job for the key, so a key whose duplicates were removed can become ``Active``.

Here a job is a due time: ``Pending`` for the first half of the delay, ``InProgress`` for the
second, then done. Jobs advance lazily (:meth:`KeyIndexJobs.advance`, called before every Web
API request) or at once (:meth:`KeyIndexJobs.finish`, the control API). Keys held in a state by
``--entities`` have no job and keep their status until reactivated. Not modelled: the job's
``asyncoperation`` row (``AsyncJob``), keys over 900 bytes.
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, replace

from dataverse_emulator.state import collation
from dataverse_emulator.state.error_catalogue import alternate_key_not_found

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from dataverse_emulator.state.catalog import AlternateKey, Table
    from dataverse_emulator.state.store import RecordStore

DEFAULT_DELAY = 5.0
"""Nominal seconds a key index job takes (before ``--time-scale``)."""


@dataclass(frozen=True, slots=True)
class Job:
    """One index job: the key it builds and when it ends (clock seconds)."""

    table: str
    key: str
    """The key's logical name."""
    started: float
    due: float


class KeyIndexJobs:
    """The environment's running key index jobs.

    Args:
        store: The record store (its catalog holds the keys; its rows decide Active or Failed).
        delay: Seconds a job takes (already scaled).
        clock: Seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        store: RecordStore,
        delay: float = DEFAULT_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if delay < 0:
            raise ValueError("the key index delay must not be negative")
        self.store = store
        self.delay = delay
        self.clock = clock
        self._jobs: dict[tuple[str, str], Job] = {}

    def submit(self, table: str, key: str) -> None:
        """Start (or restart) the job building ``key``: the key becomes ``Pending``.

        Raises:
            DataverseFault: 404 ``0x80040217`` when the table or the key does not exist.
        """
        _find(self.store, table, key)
        now = self.clock()
        self._jobs[table, key] = Job(table, key, now, now + self.delay)
        self._set(table, key, "Pending")

    def advance(self) -> None:
        """Move every job on by the clock: half-way ``InProgress``, at its due time done."""
        if not self._jobs:
            return
        now = self.clock()
        for job in list(self._jobs.values()):
            if now >= job.due:
                self._complete(job)
            elif now >= (job.started + job.due) / 2:
                self._set(job.table, job.key, "InProgress")

    def finish(self) -> list[dict[str, str]]:
        """End every job now (the control API); return ``{table, key, status}`` of each."""
        done = []
        for job in list(self._jobs.values()):
            status = self._complete(job)
            done.append({"table": job.table, "key": job.key, "status": status})
        return done

    def pending(self) -> list[dict[str, t.Any]]:
        """The running jobs as ``{table, key, status, seconds_left}``."""
        now = self.clock()
        return [
            {
                "table": job.table,
                "key": job.key,
                "status": _find(self.store, job.table, job.key)[1].index_status,
                "seconds_left": max(0.0, job.due - now),
            }
            for job in self._jobs.values()
        ]

    def _complete(self, job: Job) -> str:
        del self._jobs[job.table, job.key]
        _, key = _find(self.store, job.table, job.key)
        status = "Failed" if _has_duplicates(self.store, job.table, key) else "Active"
        self._set(job.table, job.key, status)
        return status

    def _set(self, table: str, key: str, status: str) -> None:
        found, current = _find(self.store, table, key)
        index = found.keys.index(current)
        found.keys[index] = replace(current, index_status=status)


def _find(store: RecordStore, table: str, key: str) -> tuple[Table, AlternateKey]:
    found = store.catalog.table(table)
    for item in found.keys:
        if item.logical_name == key.lower():
            return found, item
    raise alternate_key_not_found(key, table)


def _has_duplicates(store: RecordStore, table: str, key: AlternateKey) -> bool:
    """Whether two rows share the key's values, as the collation compares them (§3.10)."""
    seen: set[tuple[t.Any, ...]] = set()
    for row in store.rows(table):
        parts = tuple(collation.key_value(row.get(c)) for c in key.key_attributes)
        if None in parts:
            continue
        if parts in seen:
            return True
        seen.add(parts)
    return False
