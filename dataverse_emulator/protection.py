"""Service protection and server time, between the bearer check and wire (reference §7, §9).

Each request is admitted against its user's budget (429 + ``Retry-After`` when a limit is
exceeded, §7.8), handled, then held for the server time the cost model gives (minus the time
wire really took) before it is answered; the user's execution budget is charged that time.
Every answer carries ``x-ms-dop-hint`` and the informational rate-limit headers (§7.3, §7.4).
"""

from __future__ import annotations

import asyncio
import time
import typing as t

from dataverse_emulator.state.budget import LimitExceeded
from dataverse_emulator.wire.errors import error_response

if t.TYPE_CHECKING:
    from dataverse_emulator.costs import CostModel
    from dataverse_emulator.http import Handler, Request, Response
    from dataverse_emulator.state.budget import Budgets


class ServiceProtection:
    """Budgets, costs and the headers that describe them.

    Args:
        budgets: Per-user windows.
        costs: Cost model (nominal seconds).
        inner: The next handler (wire).
        scale: Time scale applied to costs (budgets are built with the same scale).
        enforce: False for ``--latency zero``: no waiting, no limits, hint headers only.
    """

    def __init__(
        self,
        budgets: Budgets,
        costs: CostModel,
        inner: Handler,
        scale: float = 1.0,
        *,
        enforce: bool = True,
    ) -> None:
        self._budgets = budgets
        self._costs = costs
        self._inner = inner
        self._scale = scale
        self._enforce = enforce
        self._dop_hint = str(budgets.limits.dop_hint)

    async def __call__(self, request: Request) -> Response:
        """Admit, handle, wait out the server time, release."""
        if not self._enforce:
            response = await self._inner(request)
            response.headers.append(("x-ms-dop-hint", self._dop_hint))
            return response
        budget = self._budgets.of(request.context.get("client_id", ""))
        try:
            budget.admit()
        except LimitExceeded as exc:
            return error_response(
                429,
                exc.code,
                exc.message,
                [("Retry-After", str(exc.retry_after)), ("x-ms-dop-hint", self._dop_hint)],
            )
        started = time.monotonic()
        server_time = 0.0
        try:
            response = await self._inner(request)
            context = request.context
            server_time = self._scale * self._costs.server_time(
                context.get("operation_kind", "other"),
                int(context.get("operation_count", 1)),
                request.path,
            )
            remaining = server_time - (time.monotonic() - started)
            if remaining > 0:
                await asyncio.sleep(remaining)
        finally:
            budget.release(max(server_time, time.monotonic() - started))
        response.headers += [
            ("x-ms-dop-hint", self._dop_hint),
            ("x-ms-ratelimit-burst-remaining-xrm-requests", str(budget.remaining_requests)),
            (
                "x-ms-ratelimit-time-remaining-xrm-requests",
                f"{budget.remaining_execution_seconds:,.2f}",
            ),
        ]
        return response
