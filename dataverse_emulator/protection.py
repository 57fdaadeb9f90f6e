"""Service protection and server time, between the bearer check and wire (reference §7, §9).

Each request is admitted against its user's budget (429 + ``Retry-After`` when a limit is
exceeded, §7.8), handled, then held for the server time the cost model gives (minus the time
wire really took) before it is answered; the user's execution budget is charged that time.
Every answer carries ``x-ms-dop-hint`` and the informational rate-limit headers (§7.3, §7.4),
with ``--latency zero`` too: there requests are counted (never refused, never held), so the
headers start at the full budget and shrink by one request and its cost-model server time.

Limits apply per user *per web server* (§7.1). Each answer sets the ``ARRAffinity`` cookie of the
server that handled it; a client sending it back stays on that server, a client without it is
spread round-robin over ``Limits.web_servers`` servers (§7.2).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import typing as t
from http.cookies import CookieError, SimpleCookie

from dataverse_emulator.state.budget import LimitExceeded
from dataverse_emulator.wire.errors import error_response, stamp_request_id

if t.TYPE_CHECKING:
    from dataverse_emulator.costs import CostModel
    from dataverse_emulator.counters import Counters
    from dataverse_emulator.http import Handler, Request, Response
    from dataverse_emulator.state.budget import Budget, Budgets

AFFINITY_COOKIE = "ARRAffinity"


class Affinity:
    """Which web server answers: the one named by the affinity cookie, else the next in turn.

    The number of servers is the current ``Limits.web_servers`` (it may change at run time); a
    cookie naming a server beyond it is ignored, as after a server left the environment.
    """

    def __init__(self) -> None:
        self._cookies: list[str] = []
        self._servers: dict[str, int] = {}
        self._turn = 0

    def server_for(self, cookie_header: str, web_servers: int) -> int:
        """The server pinned by ``ARRAffinity`` in the ``Cookie`` header, else round-robin."""
        if cookie_header:
            try:
                morsel = SimpleCookie(cookie_header).get(AFFINITY_COOKIE)
            except CookieError:
                morsel = None
            server = None if morsel is None else self._servers.get(morsel.value)
            if server is not None and server < web_servers:
                return server
        server = self._turn % web_servers
        self._turn = server + 1
        return server

    def set_cookie(self, server: int) -> tuple[str, str]:
        """The ``Set-Cookie`` header pinning a client to ``server``."""
        while len(self._cookies) <= server:
            cookie = hashlib.sha256(f"web-server-{len(self._cookies)}".encode()).hexdigest()
            self._servers[cookie] = len(self._cookies)
            self._cookies.append(cookie)
        return (
            "Set-Cookie",
            f"{AFFINITY_COOKIE}={self._cookies[server]}; Path=/; Secure; HttpOnly",
        )


class ServiceProtection:
    """Budgets, costs and the headers that describe them.

    Args:
        budgets: Per-user windows.
        costs: Cost model (nominal seconds).
        inner: The next handler (wire).
        scale: Time scale applied to costs (budgets are built with the same scale).
        enforce: False for ``--latency zero``: no waiting and no limits; requests and their
            nominal server time are still counted, so the headers report the budgets shrinking.
        counters: Where extended waits are counted (``throttle_extensions``).
    """

    def __init__(  # noqa: PLR0913 - keyword-only options
        self,
        budgets: Budgets,
        costs: CostModel,
        inner: Handler,
        scale: float = 1.0,
        *,
        enforce: bool = True,
        counters: Counters | None = None,
    ) -> None:
        self._budgets = budgets
        self._counters = counters
        self._costs = costs
        self._inner = inner
        self._scale = scale
        self._enforce = enforce
        self._affinity = Affinity()

    async def __call__(self, request: Request) -> Response:
        """Admit, handle, wait out the server time, release."""
        limits = self._budgets.limits  # the current ones (control API ``PUT limits``)
        server = self._affinity.server_for(request.headers.get("cookie", ""), limits.web_servers)
        hints = [("x-ms-dop-hint", str(limits.dop_hint)), self._affinity.set_cookie(server)]
        budget = self._budgets.of(request.context.get("client_id", ""), server)
        if not self._enforce:
            budget.count()
            started = time.monotonic()
            server_time = 0.0
            try:
                response = await self._inner(request)
                server_time = self._server_time(request)
            finally:
                budget.release(max(server_time, time.monotonic() - started))
            response.headers += [*hints, *_remaining(budget)]
            return response
        try:
            budget.admit(request.context.get("connection"))
        except LimitExceeded as exc:
            if exc.extended and self._counters is not None:
                self._counters.throttle_extensions += 1
            return stamp_request_id(
                error_response(
                    429,
                    exc.code,
                    exc.message,
                    [("Retry-After", str(exc.retry_after)), *hints, *_remaining(budget)],
                )
            )
        started = time.monotonic()
        server_time = 0.0
        try:
            response = await self._inner(request)
            server_time = self._server_time(request)
            remaining = server_time - (time.monotonic() - started)
            if remaining > 0:
                await asyncio.sleep(remaining)
        finally:
            budget.release(max(server_time, time.monotonic() - started))
        response.headers += [*hints, *_remaining(budget)]
        return response

    def _server_time(self, request: Request) -> float:
        """The server time the cost model gives the handled request (scaled)."""
        context = request.context
        return self._scale * self._costs.server_time(
            context.get("operation_kind", "other"),
            int(context.get("operation_count", 1)),
            request.path,
        )


def _remaining(budget: Budget) -> list[tuple[str, str]]:
    """The informational headers: what is left of the user's budgets on this server (§7.4)."""
    return [
        ("x-ms-ratelimit-burst-remaining-xrm-requests", str(budget.remaining_requests)),
        (
            "x-ms-ratelimit-time-remaining-xrm-requests",
            f"{budget.remaining_execution_seconds:,.2f}",
        ),
    ]
