"""Service protection limits: one sliding-window budget per application user (reference §7.1).

Per user, over a sliding 5-minute window: 6,000 requests, 1,200 s of combined execution time and
52 concurrent requests. Request-count and execution-time limits bite only once the window total
has been exceeded; the concurrency limit bites immediately. ``scale`` shrinks the window and the
execution budget together with the cost model (``--time-scale``), so a test sees the same
behaviour faster; messages and the remaining-budget headers keep quoting nominal figures.
The limits can change at run time (control API ``PUT /_emulator/limits``): a change applies to
the windows already open from the next request on, and ``reset`` restores the start-up limits.

"If the application continues to send such demanding requests, the duration will be extended"
(§7.1). The rule emulated: a request-count or execution-time 429 asks the user to wait
``Retry-After``; until that wait (exact, scaled) has passed, every further request is refused
with the same error and the remaining wait. A request whose sender had seen a 429 of this wait
*extends* it by the original penalty, capped at one window from now, and its ``Retry-After``
shows the new wait. "Had seen" means: it comes on a connection that received a 429 of this wait
at least ``Limits.extension_grace_seconds`` (real time, not scaled) earlier; with no connection
given (in-process callers), every early request. Requests on other connections, or within the
grace, may have been in flight (parallel workers, a shared connection pool): they get the
remaining wait, and their connection counts as told from then on. A client that honours
``Retry-After`` never meets the extension. Concurrency 429s stay immediate (the next request is
admitted as soon as a slot is free), as §7.1 describes them.
"""

from __future__ import annotations

import dataclasses
import math
import time
import typing as t
from collections import deque
from dataclasses import dataclass

REQUESTS_CODE = "0x80072322"
EXECUTION_CODE = "0x80072321"
CONCURRENCY_CODE = "0x80072326"


@dataclass(frozen=True, slots=True)
class Limits:
    """Nominal limits (§7.1; §11 #15: configurable, default 6,000 / 1,200 s / 52).

    Attributes:
        requests: Requests per window.
        execution_seconds: Combined execution time per window.
        concurrent: Requests in flight at once.
        window_seconds: Length of the sliding window.
        concurrency_retry_after: Seconds a concurrency 429 asks the client to wait (no public
            figure; a request usually finishes within a second).
        dop_hint: ``x-ms-dop-hint`` value (§7.3: the published sample environment reports 4,
            matching the 4 server-seconds per second a user can spend, §9.3; Microsoft's
            capture in "Send parallel requests" shows 48 for a larger environment).
        web_servers: Web servers, each enforcing the limits on its own (§7.1; trial
            environments have one, §7.2: the affinity cookie pins a client to one).
        extension_grace_seconds: How long after a connection received a 429 its next
            requests still count as in flight rather than as ignoring ``Retry-After``
            (real seconds, not scaled; module docstring).
    """

    requests: int = 6000
    execution_seconds: float = 1200.0
    concurrent: int = 52
    window_seconds: float = 300.0
    concurrency_retry_after: float = 1.0
    extension_grace_seconds: float = 0.25
    dop_hint: int = 4
    web_servers: int = 1

    def __post_init__(self) -> None:
        for name in ("requests", "concurrent", "dop_hint", "web_servers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("execution_seconds", "window_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")

    def to_json(self) -> dict[str, int | float]:
        """The limits the control API shows and changes (``GET /_emulator/limits``), nominal."""
        return {name: getattr(self, name) for name in RUNTIME_LIMITS}

    def updated(self, changes: t.Any) -> Limits:
        """These limits with ``changes`` (a partial :meth:`to_json` document) applied.

        Raises:
            ValueError: if ``changes`` is not an object, names another field, or holds a value
                of the wrong type or range (the message says which).
        """
        if not isinstance(changes, dict):
            msg = f"expected an object with some of {', '.join(RUNTIME_LIMITS)}"
            raise ValueError(msg)  # noqa: TRY004 - a bad document, answered 400
        unknown = sorted(set(changes) - set(RUNTIME_LIMITS))
        if unknown:
            known = ", ".join(RUNTIME_LIMITS)
            msg = f"unknown limit {', '.join(unknown)}: expected some of {known}"
            raise ValueError(msg)
        for name, value in changes.items():
            whole = RUNTIME_LIMITS[name] is int
            if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
                kind = "a whole number" if whole else "a number of seconds"
                raise ValueError(f"{name} must be {kind}, not {value!r}")  # noqa: TRY004 - answered 400
        return dataclasses.replace(self, **changes)


RUNTIME_LIMITS: dict[str, type] = {
    "dop_hint": int,
    "web_servers": int,
    "requests": int,
    "execution_seconds": float,
    "concurrent": int,
    "window_seconds": float,
}
"""The :class:`Limits` fields the control API shows and changes, with their JSON types."""


class LimitExceeded(Exception):
    """A service protection limit refused the request (rendered as 429 by the caller)."""

    def __init__(
        self, code: str, message: str, retry_after: int, *, extended: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.extended = extended


@dataclass(slots=True)
class _Penalty:
    """A wait a 429 imposed.

    Until when, by how much each early request extends it, the error, and the connections that
    have received a 429 of it.
    """

    until: float
    step: float
    code: str
    message: str
    told: dict[t.Hashable, float]
    """Connection → when it received its first 429 of this wait."""


def _retry_after(seconds: float) -> int:
    """``Retry-After`` is whole seconds; round up and never answer 0."""
    return max(1, math.ceil(seconds - 1e-9))


class Budget:
    """One user's sliding window: admitted requests, execution time, requests in flight."""

    def __init__(
        self, limits: Limits, scale: float = 1.0, clock: t.Callable[[], float] = time.monotonic
    ) -> None:
        self._scale = scale
        self._clock = clock
        self.retune(limits)
        self._admitted: deque[float] = deque()
        self._executed: deque[tuple[float, float]] = deque()
        self._execution_total = 0.0
        self._penalty: _Penalty | None = None
        self.in_flight = 0

    def retune(self, limits: Limits) -> None:
        """Apply ``limits`` from the next request on (the requests in the window still count)."""
        self.limits = limits
        self._window = limits.window_seconds * self._scale
        self._execution_limit = limits.execution_seconds * self._scale

    def admit(self, connection: t.Hashable | None = None) -> None:
        """Count a new request in, or raise :class:`LimitExceeded` without counting it.

        Args:
            connection: The client connection it came on; a request on a connection that got a
                429 of a wait not yet passed (past the grace) extends it (module docstring).
        """
        now = self._clock()
        self._expire(now)
        penalty = self._penalty
        if penalty is not None and now < penalty.until:
            told_at = penalty.told.setdefault(connection, now)
            extended = connection is None or now - told_at >= self.limits.extension_grace_seconds
            if extended:
                penalty.until = min(penalty.until + penalty.step, now + self._window)
            raise LimitExceeded(
                penalty.code, penalty.message, _retry_after(penalty.until - now), extended=extended
            )
        self._penalty = None
        limits = self.limits
        if self.in_flight >= limits.concurrent:
            raise LimitExceeded(
                CONCURRENCY_CODE,
                f"Number of concurrent requests exceeded the limit of {limits.concurrent}.",
                _retry_after(limits.concurrency_retry_after * self._scale),
            )
        if len(self._admitted) >= limits.requests:
            raise self._impose(
                REQUESTS_CODE,
                f"Number of requests exceeded the limit of {limits.requests} over time window "
                f"of {_number(limits.window_seconds)} seconds.",
                self._admitted[0] + self._window - now,
                now,
                connection,
            )
        if self._execution_total >= self._execution_limit:
            raise self._impose(
                EXECUTION_CODE,
                "Combined execution time of incoming requests exceeded limit of "
                f"{round(limits.execution_seconds * 1000):,} milliseconds over time window of "
                f"{_number(limits.window_seconds)} seconds. Decrease number of concurrent "
                "requests or reduce the duration of requests and try again later.",
                self._execution_free_at() - now,
                now,
                connection,
            )
        self._admitted.append(now)
        self.in_flight += 1

    def count(self) -> None:
        """Count a new request in without applying any limit (``--latency zero``)."""
        now = self._clock()
        self._expire(now)
        self._admitted.append(now)
        self.in_flight += 1

    def _impose(
        self, code: str, message: str, wait: float, now: float, connection: t.Hashable | None
    ) -> LimitExceeded:
        """Remember the wait a window 429 asks for (extended by early requests)."""
        told = {} if connection is None else {connection: now}
        self._penalty = _Penalty(now + wait, wait, code, message, told)
        return LimitExceeded(code, message, _retry_after(wait))

    def release(self, execution_seconds: float) -> None:
        """Finish an admitted request that kept the server busy ``execution_seconds`` (scaled)."""
        self.in_flight -= 1
        self._executed.append((self._clock(), execution_seconds))
        self._execution_total += execution_seconds

    @property
    def remaining_requests(self) -> int:
        """Requests left in the current window (``x-ms-ratelimit-burst-remaining-xrm-requests``)."""
        self._expire(self._clock())
        return max(0, self.limits.requests - len(self._admitted))

    @property
    def remaining_execution_seconds(self) -> float:
        """Nominal execution seconds left (``x-ms-ratelimit-time-remaining-xrm-requests``)."""
        self._expire(self._clock())
        return max(0.0, (self._execution_limit - self._execution_total) / self._scale)

    def _expire(self, now: float) -> None:
        horizon = now - self._window
        admitted = self._admitted
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        executed = self._executed
        while executed and executed[0][0] <= horizon:
            self._execution_total -= executed.popleft()[1]
        if not executed:
            self._execution_total = 0.0

    def _execution_free_at(self) -> float:
        """When enough execution time has left the window to fall under the limit."""
        total = self._execution_total
        for finished, seconds in self._executed:
            total -= seconds
            if total < self._execution_limit:
                return finished + self._window
        return self._clock() + self._window  # only with a zero execution limit


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


class Budgets:
    """Budgets by client id and web server, created on first use, under the current limits."""

    def __init__(
        self, limits: Limits, scale: float = 1.0, clock: t.Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = self._initial = limits
        self._scale = scale
        self._clock = clock
        self._budgets: dict[tuple[str, int], Budget] = {}

    def of(self, client_id: str, server: int = 0) -> Budget:
        """Return the budget of ``client_id`` on web server number ``server``."""
        key = (client_id, server)
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = Budget(self.limits, self._scale, self._clock)
        return budget

    def retune(self, limits: Limits) -> None:
        """Apply ``limits`` to every window from the next request on (control API)."""
        self.limits = limits
        for budget in self._budgets.values():
            budget.retune(limits)

    def clear(self) -> None:
        """Forget all windows and restore the start-up limits (control API reset)."""
        self._budgets.clear()
        self.limits = self._initial
