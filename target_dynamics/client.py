"""HTTP transport to the Dataverse Web API: headers, tokens, retries, throttling (§2, §7).

Retry policy (§7.7):

- The service is *unavailable* to a request when it does not answer (timeout, broken or refused
  connection) or answers 408, 429, 502, 503 or 504. Such a request is retried for as long as the
  service keeps failing, not a number of times: 429s wait ``Retry-After`` seconds on one gate
  shared by all workers (or the backoff delay when the header is missing), the others wait a
  jittered exponential backoff (a 503 may ask for longer with ``Retry-After``).
- **Outage budget.** When the service has given no usable answer (anything but the failures
  above) to any request for ``outage_budget`` seconds, the request fails with
  :class:`ServiceUnreachable`, and so does every later request, at once. A ``Retry-After`` that
  ends past the budget fails at once too. A request that alone keeps failing this way while
  others get answers gives up after the same budget with its last error.
- 500 and the transient Dataverse codes (SQL timeout, deadlock): backoff, up to
  ``max_retries`` attempts.
- Errors that cannot succeed (4xx validation, 404 / 412 outcomes, duplicate detection
  ``0x80040333`` and duplicate key ``0x80040237`` even as 500) are raised at once.
- 401: the token is dropped and fetched again, once per request.
- **A write whose answer timed out is resent only after the service's own limit passed.**
  Dataverse cancels and rolls back a message operation still running after 2 minutes (§7.5), but
  a client timeout does not stop it: until then it may still land. So a timed-out write is sent
  again no sooner than ``write_settle`` seconds after it was handed over (the 2 minutes plus a
  margin); otherwise the first attempt could land after a newer write of the same row and undo it.

Requests go through a :class:`~target_dynamics.transport.Transport`: it keeps no cookies, so
parallel requests spread over the web servers (§7.2), and always verifies TLS.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import typing as t
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import msgspec

from target_dynamics import batch
from target_dynamics.errors import ServiceUnreachable, Throttled, WebApiError
from target_dynamics.transport import Unanswered
from target_dynamics.webapi import (
    WebRequest,
    WebResponse,
    check_header_value,
    parse_error,
    standard_headers,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from target_dynamics.auth import TokenProvider
    from target_dynamics.transport import Transport

LOGGER = logging.getLogger(__name__)
REDACTED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-ms-authorization-auxiliary", "cookie"}
)
OPERATION_TIME_LIMIT = 120.0
"""Dataverse cancels (rolls back) a message operation still running after 2 minutes (§7.5)."""
DEFAULT_PARALLELISM = 4
"""Requests in flight before the service gave an ``x-ms-dop-hint`` (the sample environments'
value, §7.3)."""
MAX_PARALLELISM = 52
"""Concurrent requests per user and web server (§7.1)."""
HEADROOM_HIGH = 0.5
"""With at least this share of both budgets left, a user may use its whole ceiling (§7.4)."""
HEADROOM_LOW = 0.15
"""With this share left, a user is back at ``x-ms-dop-hint``; under it, below (§7.4)."""
REMAINING_HEADERS = (
    "x-ms-ratelimit-burst-remaining-xrm-requests",
    "x-ms-ratelimit-time-remaining-xrm-requests",
)
"""What is left of the request-count and execution-time budgets on the answering server (§7.4)."""
WRITE_SETTLE_SECONDS = OPERATION_TIME_LIMIT + 15.0
"""After this long from being handed over, a write has landed or was rolled back (limit plus a
margin for queueing and transit)."""


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Copy of ``headers`` fit for a log: credentials replaced by ``***``."""
    return {k: ("***" if k.lower() in REDACTED_HEADERS else v) for k, v in headers.items()}


@dataclass
class ClientStats:
    """Counters shared by all threads (read them; the client updates them)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    throttled_seconds: float = 0.0
    token_refreshes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(
        self,
        *,
        requests: int = 0,
        retries: int = 0,
        throttled: int = 0,
        throttled_seconds: float = 0.0,
        token_refreshes: int = 0,
    ) -> None:
        """Add to the counters atomically (one keyword per counter, so mypy checks each name)."""
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.throttled += throttled
            self.throttled_seconds += throttled_seconds
            self.token_refreshes += token_refreshes


class ConcurrencyLimit:
    """Requests in flight for one application user, adapted to the service's answers.

    The limit starts at ``x-ms-dop-hint`` (§7.3) and never exceeds ``ceiling``
    (``max_concurrency``, at most the 52 concurrent requests Dataverse allows, §7.1). Every
    answer reports what is left of the user's 5-minute budgets on the web server that answered
    (§7.4); read as a fraction of the largest value seen (the budgets vary between
    environments and are never hard-coded), that headroom sets the limit: up to ``ceiling``
    while at least :data:`HEADROOM_HIGH` of both budgets remains, down to the hint at
    :data:`HEADROOM_LOW`, and below the hint under it, so the user slows down before the
    service throttles and spends the budget as fast as the window frees it. A 429 for
    concurrent requests (``0x80072326``) or for a spent budget halves the limit (once per
    429 episode: the requests already in flight come back throttled too); it then doubles
    back per ``limit`` successes.
    """

    def __init__(self, ceiling: int = MAX_PARALLELISM) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = 1
        self._hint: int | None = None
        self._headroom: float | None = None
        self._best: dict[str, float] = {}
        self._recovery: int | None = None
        self._halved_at = -math.inf
        self._successes = 0
        self._active = 0
        self._cond = threading.Condition()
        with self._cond:
            self._adjust()

    def __enter__(self) -> None:
        with self._cond:
            while self._active >= self.limit:
                self._cond.wait()
            self._active += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify()

    @property
    def headroom(self) -> float | None:
        """The smaller remaining fraction of the two budgets at the last answer (None: unknown)."""
        return self._headroom

    def observe(self, hint: int | None, remaining: Mapping[str, float]) -> None:
        """Take an answer's ``x-ms-dop-hint`` and remaining budgets (header name: value)."""
        with self._cond:
            if hint is not None:
                self._hint = hint
            fractions = []
            for name, value in remaining.items():
                best = self._best[name] = max(self._best.get(name, 0.0), value)
                fractions.append(value / best if best > 0 else 0.0)
            if fractions:
                self._headroom = min(fractions)
            self._adjust()

    def decrease(self, sent: float | None = None, now: float | None = None) -> None:
        """A 429: halve the limit (never below one), once per episode.

        A 429 for a request ``sent`` before the last halving belongs to that episode (it was
        already in flight); without times, one with no success since the last halving does.
        """
        with self._cond:
            if sent is not None and sent < self._halved_at:
                return
            if sent is None and self._recovery is not None and self._successes == 0:
                return
            self._recovery = max(1, self.limit // 2)
            self._successes = 0
            self._halved_at = now if now is not None else self._halved_at
            self._adjust()

    def increase(self) -> None:
        """Count a success; after ``limit`` of them a halved limit doubles back."""
        with self._cond:
            if self._recovery is None:
                return
            self._successes += 1
            if self._successes >= self.limit:
                self._successes = 0
                self._recovery *= 2
                if self._recovery >= self.ceiling:
                    self._recovery = None
                self._adjust()

    def _adjust(self) -> None:
        """Set the limit from the hint, the headroom and any recovery under way."""
        hint = min(self._hint or DEFAULT_PARALLELISM, self.ceiling)
        headroom = self._headroom
        if headroom is None:
            wanted = hint
        elif headroom >= HEADROOM_HIGH:
            wanted = self.ceiling
        elif headroom >= HEADROOM_LOW:
            share = (headroom - HEADROOM_LOW) / (HEADROOM_HIGH - HEADROOM_LOW)
            wanted = hint + round((self.ceiling - hint) * share)
        else:
            wanted = round(hint * headroom / HEADROOM_LOW)
        if self._recovery is not None:
            wanted = min(wanted, self._recovery)
        self.limit = max(1, min(wanted, self.ceiling))
        self._cond.notify_all()


class RetryGate:
    """One pause shared by all workers: after a 429 nobody sends until ``Retry-After`` ends."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._clock = clock
        self._sleep = sleep
        self._resume_at = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        """Hold every sender for at least ``seconds`` from now."""
        with self._lock:
            self._resume_at = max(self._resume_at, self._clock() + seconds)

    def closed(self) -> bool:
        """Whether senders are held now."""
        with self._lock:
            return self._resume_at > self._clock()

    def wait(self) -> None:
        """Block until the gate is open."""
        while True:
            with self._lock:
                remaining = self._resume_at - self._clock()
            if remaining <= 0:
                return
            self._sleep(remaining)


class OutageClock:
    """How long the service has given no usable answer; one for all threads.

    An outage starts with the first unavailable failure (:attr:`WebApiError.unavailable`) after
    the last usable answer, counted from when the failed attempt was sent (never before that
    answer), and any usable answer ends it. Once the clock has tripped, it stays tripped.
    """

    def __init__(self, budget: float, clock: Callable[[], float]) -> None:
        self.budget = budget
        self._clock = clock
        self._answered = clock()
        self._since: float | None = None
        self._tripped: str | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise :class:`ServiceUnreachable` if an outage already ended the run."""
        if self._tripped is not None:
            raise ServiceUnreachable(self._tripped)

    def answered(self) -> None:
        """The service gave a usable answer: any outage is over."""
        with self._lock:
            self._answered = self._clock()
            self._since = None

    def failed(self, sent: float) -> float:
        """Note an unavailable failure of an attempt sent at ``sent``.

        Returns:
            When the budget of the current outage runs out.
        """
        with self._lock:
            start = max(sent, self._answered)
            if self._since is None or start < self._since:
                self._since = start
            return self._since + self.budget

    def trip(self, host: str, error: WebApiError) -> ServiceUnreachable:
        """End the run: the error for this request and, from now on, for every request."""
        with self._lock:
            if self._tripped is None:
                since = self._since if self._since is not None else self._answered
                wait = f" (Retry-After {error.retry_after:g} s)" if error.retry_after else ""
                self._tripped = (
                    f"Dataverse at {host} gave no usable answer for {self._clock() - since:.0f} s"
                    f" (outage_budget_seconds is {self.budget:g}); last error: {error}{wait}. "
                    "Check dynamics_url, the network and the service's health, then rerun: the "
                    "run resumes from the last emitted STATE (raise outage_budget_seconds to "
                    "wait longer)."
                )
            return ServiceUnreachable(self._tripped)


class DataverseClient:
    """Sends :class:`WebRequest` values to one environment and returns :class:`WebResponse`."""

    def __init__(  # noqa: PLR0913 - keyword-only knobs, each documented
        self,
        *,
        dynamics_url: str,
        api_version: str,
        tokens: TokenProvider,
        transport: Transport,
        timeout: float = 120,
        max_retries: int = 8,
        outage_budget: float = 300,
        max_concurrency: int | None = None,
        write_settle: float = WRITE_SETTLE_SECONDS,
        default_headers: Mapping[str, str] | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        boundary: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        """Configure the client (no network until the first request).

        Args:
            dynamics_url: Environment root, e.g. ``https://contoso.crm.dynamics.com``.
            api_version: e.g. ``9.2``.
            tokens: Bearer token source.
            transport: Sends each request (:class:`~target_dynamics.transport.HttpsTransport`).
            timeout: Seconds to connect and to wait for each answer.
            max_retries: Retries per request after 500s and transient Dataverse codes.
            outage_budget: Seconds without a usable answer before :class:`ServiceUnreachable`.
            max_concurrency: Most requests in flight at once (at most 52, §7.1); below it the
                service's hint and remaining budgets decide (:class:`ConcurrencyLimit`).
            write_settle: Seconds after which a write handed over has landed or was rolled
                back; a timed-out write is not resent sooner.
            default_headers: Sent on every request and every ``$batch`` part, e.g.
                ``MSCRM.BypassBusinessLogicExecution``, ``MSCRM.SuppressDuplicateDetection``,
                ``CallerObjectId`` (§8).
            backoff_base: First backoff delay in seconds; doubles per attempt.
            backoff_cap: Largest backoff delay in seconds.
            sleep: Sleeper (tests inject a fake).
            clock: Monotonic clock in seconds (tests inject a fake).
            jitter: Uniform random number in [0, 1).
            boundary: Source of ``$batch`` boundaries.
        """
        self._root = f"{dynamics_url.rstrip('/')}/api/data/v{api_version}/"
        self._service_path = urlsplit(self._root).path
        self._tokens = tokens
        self._transport = transport
        self._timeout = timeout
        self._max_retries = max_retries
        self._write_settle = write_settle
        self._host = urlsplit(self._root).netloc
        self._clock = clock
        self.outage = OutageClock(outage_budget, clock)
        self._default_headers = {
            k: check_header_value(k, v) for k, v in (default_headers or {}).items()
        }
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self._jitter = jitter
        self._boundary = boundary
        self._gate = RetryGate(clock, sleep)
        self.in_flight = ConcurrencyLimit(min(max_concurrency or MAX_PARALLELISM, MAX_PARALLELISM))
        self._dop_hint: int | None = None
        self.stats = ClientStats()

    @property
    def service_root(self) -> str:
        """``https://<host>/api/data/v<version>/``: what request paths are relative to."""
        return self._root

    @property
    def dop_hint(self) -> int | None:
        """The last ``x-ms-dop-hint`` seen: the service's advice for parallel requests (§7.3)."""
        return self._dop_hint

    @property
    def paused(self) -> bool:
        """Whether a ``Retry-After`` holds this client's senders now."""
        return self._gate.closed()

    def throttle(self, seconds: float, sent: float | None = None) -> None:
        """Pause every sender of this client, e.g. for a 429 found inside a ``$batch`` part."""
        self.in_flight.decrease(sent, self._clock())
        self._gate.pause(seconds)
        self.stats.add(throttled=1, throttled_seconds=seconds)

    def send(self, request: WebRequest) -> WebResponse:
        """Send one request, retrying what may succeed later.

        Raises:
            WebApiError: for an answer that cannot succeed, or when retries run out
                (:class:`Throttled` for a 429).
            ServiceUnreachable: when the outage budget ran out (fatal for the run).
            AuthError: when no token can be obtained.
        """
        return self._exchange(request, accept=lambda r: r.ok)

    def get_json(self, path: str, headers: t.Mapping[str, str] | None = None) -> dict[str, t.Any]:
        """``GET`` a path under the service root (with ``headers``) and decode the JSON body."""
        response = self.send(WebRequest("GET", path, headers=headers or {}))
        return msgspec.json.decode(response.body) if response.body else {}

    def get_all(
        self, path: str, headers: t.Mapping[str, str] | None = None
    ) -> t.Iterator[dict[str, t.Any]]:
        """``GET`` a collection under the service root, every page: each record of ``value``.

        Follows ``@odata.nextLink`` (Microsoft Learn, "Page results"), only within this service
        root, sending ``headers`` (e.g. ``Prefer: odata.maxpagesize``) with every page.

        Raises:
            WebApiError: as :meth:`send`, or for a next link outside the service root.
        """
        while path:
            page = self.get_json(path, headers)
            yield from page.get("value", [])
            link = str(page.get("@odata.nextLink") or "")
            if link and not link.startswith(self._root):
                raise WebApiError(0, None, f"@odata.nextLink leaves the service root: {link[:100]}")
            path = link.removeprefix(self._root)

    def send_batch(
        self, requests: Sequence[WebRequest], *, continue_on_error: bool = True
    ) -> list[WebResponse]:
        """Send one ``$batch`` of independent operations and return the part answers in order.

        With ``continue_on_error`` every operation answers; without it the list stops at the
        first failure (§5.4). ``default_headers`` go on every part.

        Raises:
            WebApiError: when the batch as a whole is refused or retries run out.
        """
        parts = [
            WebRequest(r.method, r.path, r.body, {**self._default_headers, **r.headers})
            for r in requests
        ]
        envelope = batch.encode(
            parts,
            boundary=self._boundary(),
            service_root=self._service_path,
            continue_on_error=continue_on_error,
        )
        response = self._exchange(envelope, accept=_is_batch_answer)
        content_type = response.header("Content-Type") or ""
        if batch.boundary_of(content_type) is None:
            raise WebApiError(response.status, None, "The $batch answer is not multipart.")
        try:
            answers = batch.decode(content_type, response.body)
        except ValueError as exc:
            raise WebApiError(response.status, None, f"Malformed $batch answer: {exc}") from None
        if len(answers) > len(requests):
            raise WebApiError(response.status, None, "The $batch answer has too many parts.")
        throttled = [parse_error(a).retry_after or 1.0 for a in answers if a.status == 429]
        if throttled:  # parts refused by service protection: this user pauses (§7.8)
            self.throttle(max(throttled))
        return answers

    def _exchange(
        self, request: WebRequest, *, accept: Callable[[WebResponse], bool]
    ) -> WebResponse:
        refreshed = False
        attempt = failures = 0
        own_end: float | None = None
        while True:
            self._gate.wait()
            self.outage.check()
            sent = self._clock()
            settle = 0.0
            try:
                with self.in_flight:
                    response = self._once(request)
            except Unanswered as exc:  # the outcome is unknown: retried like a 5xx (see below)
                error, settle = self._no_answer(exc, request)
            else:
                if accept(response):
                    self.outage.answered()
                    self.in_flight.increase()
                    return response
                error = parse_error(response)
                if not error.unavailable:
                    self.outage.answered()
                if response.status == 401 and not refreshed:
                    refreshed = True
                    self._tokens.invalidate()
                    self.stats.add(token_refreshes=1)
                    continue
            if not error.is_transient:
                raise error
            if error.unavailable:
                outage_end = self.outage.failed(sent)
                # This request's own budget starts with the outage it first saw: it gives up
                # alone only when others got answers since (the outage then restarts later).
                own_end = outage_end if own_end is None else own_end
                request_end = own_end
            else:
                failures += 1
                if failures > self._max_retries:
                    raise error
                outage_end = request_end = math.inf
            delay = self._retry_delay(error, attempt, settle, outage_end, request_end)
            attempt += 1
            self._pause(request, error, delay, sent)

    def _no_answer(self, exc: Unanswered, request: WebRequest) -> tuple[WebApiError, float]:
        """The error for a request that got no (whole) answer, and how long it may still run.

        Retried whatever the method: the writer makes every write safe to replay (creates carry
        their primary id, §10.2).
        """
        error = WebApiError(0, None, f"{exc} during {request.method}")
        if exc.read_timeout and request.method != "GET":
            return error, self._write_settle - self._timeout  # the write may still be running
        return error, 0.0

    def _pause(self, request: WebRequest, error: WebApiError, delay: float, sent: float) -> None:
        """Wait ``delay`` seconds before sending again: all senders after a 429, else this one."""
        self.stats.add(retries=1)
        if isinstance(error, Throttled):
            self.throttle(delay, sent)
        else:
            LOGGER.info("Retrying %s in %.1f s after %s", request.method, delay, error)
            self._sleep(delay)

    def _retry_delay(
        self, error: WebApiError, attempt: int, settle: float, outage_end: float, request_end: float
    ) -> float:
        """Seconds to wait before sending again; raise when the wait does not fit the budget.

        ``Retry-After`` and the settle time of a timed-out write are obeyed in full; a backoff
        is shortened to end with the budget, for one last attempt.

        Raises:
            ServiceUnreachable: when the outage budget runs out (or would, before the wait ends).
            WebApiError: ``error``, when this request alone has failed for the whole budget.
        """
        delay = self._backoff(attempt)
        firm = error.retry_after is not None or settle > 0
        if isinstance(error, Throttled) and error.retry_after is not None:
            delay = error.retry_after
        else:
            delay = max(delay, error.retry_after or 0.0, settle)  # a 503 may name its own wait
        now = self._clock()
        deadline = min(outage_end, request_end)
        if now + delay <= deadline:
            return delay
        if not firm and now < deadline:
            return deadline - now
        if outage_end <= request_end:
            raise self.outage.trip(self._host, error)
        raise error

    def _backoff(self, attempt: int) -> float:
        """Equal-jitter exponential backoff: half fixed, half random."""
        delay = min(self._backoff_cap, self._backoff_base * 2.0**attempt)
        return delay / 2 + self._jitter() * delay / 2

    def _observe(self, response: WebResponse) -> None:
        """Take the parallelism hint and the remaining budgets an answer reports (§7.3, §7.4)."""
        reported = {name.lower(): value for name, value in response.headers.items()}
        hint = _number(reported.get("x-ms-dop-hint"))
        if hint is not None and hint >= 1:
            self._dop_hint = int(hint)
        remaining = {}
        for name in REMAINING_HEADERS:
            value = _number(reported.get(name))
            if value is not None:
                remaining[name] = value
        self.in_flight.observe(self._dop_hint, remaining)

    def _once(self, request: WebRequest) -> WebResponse:
        headers = {
            **standard_headers(request),
            **self._default_headers,
            **request.headers,
            "Authorization": f"Bearer {self._tokens.token()}",
        }
        started = time.perf_counter()
        response = self._transport.send(
            request.method, self._root + request.path, headers, request.body, self._timeout
        )
        self.stats.add(requests=1)
        self._observe(response)
        if LOGGER.isEnabledFor(logging.DEBUG):
            LOGGER.debug(
                "%s %s -> %s in %.0f ms; headers %s",
                request.method,
                request.path.split("?", 1)[0],
                response.status,
                (time.perf_counter() - started) * 1000,
                redact_headers(headers),
            )
        return response


def _number(text: str | None) -> float | None:
    """A header's number (``1,199.97`` and ``1199.97`` alike); None when absent or not one."""
    try:
        return float(text.replace(",", "")) if text else None
    except ValueError:
        return None


def _is_batch_answer(response: WebResponse) -> bool:
    """2xx, or a 4xx that still carries the parts (batch stopped at a failure, §5.4)."""
    if response.ok:
        return True
    multipart = batch.boundary_of(response.header("Content-Type") or "") is not None
    return multipart and 400 <= response.status < 500 and response.status not in (401, 429)
