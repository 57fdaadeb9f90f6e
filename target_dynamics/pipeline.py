"""Writes in flight across sink batches, in input order where order matters.

A sink maps a batch on the main thread, then hands its write to the pipeline and returns, so
reading, validating and mapping the next records overlap the writes of earlier ones, and the
request slots of every application user stay busy whatever ``batch_size_rows`` is.

- **Rows in flight** are bounded (``capacity``, from the users' request ceilings): a batch
  waits to be admitted while it would exceed it, unless nothing is in flight. Memory stays flat.
- **Rows ahead of the last STATE** are bounded too (``unchecked``: ``state_interval_records``):
  while a STATE waits for its writes, a batch is admitted only if the rows handed over since the
  last STATE went out stay within it, so a crash never resends more.
- **Order.** A job waits for every earlier job it conflicts with (:meth:`Claims.conflicts`):
  one that writes a row of the same key to the same table, reads a table the other writes (a
  lookup or a relationship may need its rows), or belongs to the same serial stream (lists,
  associations, mirrors and states follow their records in order). So every row is written in
  input order.
- **STATE** goes out through :meth:`WritePipeline.after`: its callback runs once every job
  handed over before it finished (never ahead of the data), in the order the callbacks came.
- **Failure.** The first job that raises ends the run: the error is raised on the main thread
  at the next :meth:`submit` or :meth:`wait`, later callbacks never run (no STATE after it), and
  jobs that had not started are not started.
"""

from __future__ import annotations

import threading
import typing as t
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from collections.abc import Callable, Hashable

MAX_JOBS = 256
"""Threads running jobs at most (a job mostly waits for its requests)."""


@dataclass(frozen=True)
class Claims:
    """What a job writes and reads, to order it after the jobs it depends on."""

    table: str
    """The table the job writes."""
    keys: frozenset[Hashable] = frozenset()
    """Identities of the keys of the rows it writes (rows without key need no order)."""
    reads: frozenset[str] = frozenset()
    """Tables whose rows it may reference (lookup and relationship targets)."""
    serial: str | None = None
    """Jobs with the same name run one after the other (a stream with lists or a mirror)."""

    def conflicts(self, earlier: Claims) -> bool:
        """Whether this job must wait for ``earlier``."""
        if self.serial is not None and self.serial == earlier.serial:
            return True
        if self.table in earlier.reads or earlier.table in self.reads:
            return True
        return self.table == earlier.table and not self.keys.isdisjoint(earlier.keys)


@dataclass(eq=False)
class _Job:
    seq: int
    claims: Claims
    rows: int
    after: list[_Job]
    done: threading.Event = field(default_factory=threading.Event)


class WritePipeline:
    """Runs batch writes on their own threads, bounded and ordered; thread-safe."""

    def __init__(self, capacity: Callable[[], int], unchecked: Callable[[], int]) -> None:
        """Admit jobs within ``capacity()`` rows in flight and ``unchecked()`` rows past STATE."""
        self._capacity = capacity
        self._unchecked = unchecked
        self._since: deque[tuple[int, int]] = deque()
        """(seq, rows) of the jobs handed over since the last callback ran."""
        self._since_rows = 0
        self._cond = threading.Condition(threading.RLock())  # a signal handler may re-enter
        self._jobs: dict[int, _Job] = {}
        self._rows = 0
        self._next = 0
        self._callbacks: deque[tuple[int, Callable[[], None]]] = deque()
        self._error: BaseException | None = None
        self._raised = False
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, claims: Claims, rows: int, job: Callable[[], None]) -> None:
        """Run ``job`` (the write of ``rows`` rows) once admitted and its conflicts are done.

        Raises:
            BaseException: the error of a job that failed before.
        """
        with self._cond:
            self._raise()
            while self._full(rows):
                self._cond.wait()
                self._raise()
            entry = _Job(
                self._next,
                claims,
                rows,
                [j for j in self._jobs.values() if claims.conflicts(j.claims)],
            )
            self._next += 1
            self._jobs[entry.seq] = entry
            self._rows += rows
            self._since.append((entry.seq, rows))
            self._since_rows += rows
            if self._pool is None:
                self._pool = ThreadPoolExecutor(MAX_JOBS, thread_name_prefix="batch")
            self._pool.submit(self._run, entry, job)

    def after(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once every job submitted so far has finished (at once if none).

        Raises:
            BaseException: the error of a job that failed before.
        """
        with self._cond:
            self._raise()
            self._callbacks.append((self._next, callback))
            self._fire()

    def wait(self) -> None:
        """Return when every job has finished and every callback ran.

        Raises:
            BaseException: the error of a job that failed (once).
        """
        self.settle()
        with self._cond:
            self._raise()

    def settle(self) -> None:
        """Return when every job has finished, without raising (after a failure elsewhere)."""
        with self._cond:
            while self._jobs:
                self._cond.wait()

    def _full(self, rows: int) -> bool:
        """Whether ``rows`` more must wait (lock held)."""
        if self._rows and self._rows + rows > self._capacity():
            return True
        waiting = bool(self._callbacks)  # a STATE waits for its writes
        return waiting and bool(self._since_rows) and self._since_rows + rows > self._unchecked()

    def _run(self, entry: _Job, job: Callable[[], None]) -> None:
        for earlier in entry.after:
            earlier.done.wait()
        try:
            if self._error is None:
                job()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            with self._cond:
                if self._error is None:
                    self._error = error
                self._callbacks.clear()  # no STATE after a failed write
        finally:
            entry.done.set()
            with self._cond:
                del self._jobs[entry.seq]
                self._rows -= entry.rows
                self._fire()
                self._cond.notify_all()

    def _fire(self) -> None:
        """Run the callbacks whose jobs have all finished, in order (lock held)."""
        first_open = min(self._jobs, default=self._next)
        while self._callbacks and self._callbacks[0][0] <= first_open and self._error is None:
            seq, callback = self._callbacks.popleft()
            callback()
            while self._since and self._since[0][0] < seq:
                self._since_rows -= self._since.popleft()[1]

    def _raise(self) -> None:
        if self._error is not None and not self._raised:
            self._raised = True
            raise self._error
