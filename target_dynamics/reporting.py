"""Counters per stream, progress lines, the end-of-run summary and the run's verdict."""

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass, field, replace

from target_dynamics.errors import DataverseError

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Sequence

    from target_dynamics.client import ClientStats


_COUNTS = (
    "received",
    "landed",
    "rejected",
    "lost",
    "created",
    "updated",
    "deleted",
    "deactivated",
    "gone",
    "upserted",
)


class LoadFailed(DataverseError):
    """Records were rejected beyond ``max_errors``, or could not be written at all."""


@dataclass
class StreamStats:
    """What happened to one stream's records (updated under the report's lock).

    Attributes:
        received: Records handed to the sink.
        landed: Records Dataverse accepted (or, in a dry run, that converted cleanly).
        rejected: Records refused, by the checks before sending or by Dataverse.
        lost: Records that could not be written (transient failure after every retry).
        created: Rows created, where the service says so.
        updated: Rows updated, where known.
        deleted: Rows deleted.
        deactivated: Rows set to their table's inactive state (the rows stay).
        gone: Rows a delete or deactivation found already gone (done, not rejected).
        upserted: Rows upserted (created or updated: the service does not say which).
        started: Monotonic time of the stream's first count (for the progress rate).
    """

    received: int = 0
    landed: int = 0
    rejected: int = 0
    lost: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    deactivated: int = 0
    gone: int = 0
    upserted: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class ListStats:
    """What happened to one marketing list's members."""

    added: int = 0
    already: int = 0
    removed: int = 0
    rejected: int = 0


@dataclass
class MirrorStats:
    """What a stream's full-table mirror removed: rows in scope its versions did not send."""

    deactivated: int = 0
    deleted: int = 0
    gone: int = 0
    rejected: int = 0
    lost: int = 0


class RunReport:
    """Thread-safe per-stream counters, with a progress line per stream every ``interval`` s."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        dry_run: bool = False,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._dry_run = dry_run
        self._lock = threading.Lock()
        self._streams: dict[str, StreamStats] = {}
        self._reasons: dict[str, tuple[int, str]] = {}
        self._lists: dict[str, ListStats] = {}
        self._associations: dict[str, ListStats] = {}
        self._mirrors: dict[str, MirrorStats] = {}
        self._last = clock()

    def add(  # noqa: PLR0913 - one keyword per StreamStats counter, so mypy checks each name
        self,
        stream: str,
        *,
        received: int = 0,
        landed: int = 0,
        rejected: int = 0,
        lost: int = 0,
        created: int = 0,
        updated: int = 0,
        deleted: int = 0,
        deactivated: int = 0,
        gone: int = 0,
        upserted: int = 0,
    ) -> None:
        """Add the increments to ``stream``'s counters (:class:`StreamStats`)."""
        with self._lock:
            stats = self._streams.get(stream)
            if stats is None:
                stats = self._streams[stream] = StreamStats(started=self._clock())
            stats.received += received
            stats.landed += landed
            stats.rejected += rejected
            stats.lost += lost
            stats.created += created
            stats.updated += updated
            stats.deleted += deleted
            stats.deactivated += deactivated
            stats.gone += gone
            stats.upserted += upserted

    def add_list(
        self, name: str, *, added: int = 0, already: int = 0, removed: int = 0, rejected: int = 0
    ) -> None:
        """Add the increments to marketing list ``name``'s counters (:class:`ListStats`)."""
        with self._lock:
            stats = self._lists.setdefault(name, ListStats())
            stats.added += added
            stats.already += already
            stats.removed += removed
            stats.rejected += rejected

    def add_association(
        self, relationship: str, *, added: int = 0, removed: int = 0, rejected: int = 0
    ) -> None:
        """Add the increments to N:N ``relationship``'s counters (:class:`ListStats`)."""
        with self._lock:
            stats = self._associations.setdefault(relationship, ListStats())
            stats.added += added
            stats.removed += removed
            stats.rejected += rejected

    def add_mirror(  # noqa: PLR0913 - one keyword per MirrorStats counter, so mypy checks each
        self,
        stream: str,
        *,
        deactivated: int = 0,
        deleted: int = 0,
        gone: int = 0,
        rejected: int = 0,
        lost: int = 0,
    ) -> None:
        """Add the increments to ``stream``'s mirror counters (:class:`MirrorStats`)."""
        with self._lock:
            stats = self._mirrors.setdefault(stream, MirrorStats())
            stats.deactivated += deactivated
            stats.deleted += deleted
            stats.gone += gone
            stats.rejected += rejected
            stats.lost += lost

    def note_rejections(self, errors: t.Iterable[tuple[str | None, str]]) -> None:
        """Count rejections by Dataverse code, keeping the first message of each code."""
        with self._lock:
            for code, message in errors:
                count, first = self._reasons.get(code or "no code", (0, message))
                self._reasons[code or "no code"] = (count + 1, first)

    def stats(self, stream: str) -> StreamStats:
        """A copy of ``stream``'s counters."""
        with self._lock:
            found = self._streams.get(stream) or StreamStats(started=self._clock())
            return replace(found)

    @property
    def totals(self) -> StreamStats:
        """The counters of every stream added up."""
        total = StreamStats()
        with self._lock:
            for stats in self._streams.values():
                for name in _COUNTS:
                    setattr(total, name, getattr(total, name) + getattr(stats, name))
        return total

    def tick(self) -> None:
        """Log the progress lines when ``interval`` seconds have passed since the last ones."""
        if self._interval <= 0:
            return
        now = self._clock()
        if now - self._last < self._interval:  # the common case, read without the lock
            return
        with self._lock:
            if now - self._last < self._interval:
                return
            self._last = now
            lines = [self._progress(name, stats, now) for name, stats in self._streams.items()]
        for line in lines:
            self._logger.info(line)

    @staticmethod
    def _progress(name: str, stats: StreamStats, now: float) -> str:
        rate = stats.landed / max(now - stats.started, 1e-9)
        return (
            f"Progress {name}: {stats.received} received, {stats.landed} landed, "
            f"{stats.rejected} rejected, {rate:.1f} records/s"
        )

    def summary(self, users: Sequence[tuple[str, ClientStats]] = ()) -> list[str]:
        """Log and return one summary line per stream, then requests, retries, throttled time.

        ``users`` are the run's application users and their counters; with several, a line
        tells each one's share of the requests.
        """
        verb = "validated (dry run, nothing written)" if self._dry_run else "landed"
        would = "would be " if self._dry_run else ""
        with self._lock:
            lines = [
                f"Summary {name}: {s.received} received, {s.landed} {verb} "
                f"({would}created {s.created}, updated {s.updated}, upserted {s.upserted}, "
                f"deleted {s.deleted}, deactivated {s.deactivated}"
                + (f", {s.gone} already gone" if s.gone else "")
                + f"), {s.rejected} rejected, {s.lost} not written"
                for name, s in sorted(self._streams.items())
            ]
            lines += [
                f"List {name!r}: {s.added} {would}added, {s.already} already members, "
                f"{s.removed} {would}removed, {s.rejected} rejected"
                for name, s in sorted(self._lists.items())
            ]
            lines += [
                f"Association {name!r}: {s.added} added, {s.removed} removed, "
                f"{s.rejected} records rejected"
                for name, s in sorted(self._associations.items())
            ]
            lines += [
                f"Mirror {name}: {would}deactivated {s.deactivated}, {would}deleted {s.deleted}"
                + (f", {s.gone} already gone" if s.gone else "")
                + f", {s.rejected} rejected, {s.lost} not written"
                for name, s in sorted(self._mirrors.items())
            ]
        total = sum(stats.requests for _, stats in users)
        if users:
            lines.append(
                f"Requests: {total}, retries: {sum(stats.retries for _, stats in users)}, "
                f"throttled: {sum(stats.throttled_seconds for _, stats in users):.1f} s"
            )
        if len(users) > 1:
            lines.append(
                "Requests by application user: "
                + ", ".join(
                    f"{name} {stats.requests} ({stats.requests / max(total, 1):.0%})"
                    for name, stats in users
                )
            )
        for line in lines:
            self._logger.info(line)
        return lines

    def raise_if_failed(self, max_errors: int, dead_letter_path: str | None) -> None:
        """Fail the run when records were lost or rejections exceed ``max_errors``.

        Raises:
            LoadFailed: With what happened and where the rejected records are.
        """
        total = self.totals
        problems = []
        if total.lost:
            problems.append(
                f"{total.lost} records could not be written (transient failures after every "
                "retry); STATE was withheld from then on, rerun from the last emitted state"
            )
        if total.rejected > max_errors:
            where = f"see {dead_letter_path}" if dead_letter_path else "see the warnings above"
            with self._lock:
                ranked = sorted(self._reasons.items(), key=lambda item: -item[1][0])
            reasons = "; ".join(
                f"{code} x{count}: {_shorten(first)}" for code, (count, first) in ranked[:3]
            )
            problems.append(
                f"{total.rejected} records were rejected, more than max_errors={max_errors} "
                f"({where})" + (f"; by code: {reasons}" if reasons else "")
            )
        with self._lock:
            unremoved = sum(s.rejected + s.lost for s in self._mirrors.values())
        if unremoved:
            problems.append(
                f"{unremoved} rows in mirror scope could not be removed (see the warnings "
                "above); rerun the full-table sync"
            )
        if problems:
            raise LoadFailed("; ".join(problems))


def _shorten(message: str, limit: int = 160) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(message.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
