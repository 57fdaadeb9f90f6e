"""The control plane under ``/_emulator/`` (off the Dataverse namespace, no token needed).

The only way tests reset or inspect the emulator (documented in ``docs/emulator-admin-api.md``):

- ``POST /_emulator/reset``: back to the start-up state (store, faults, budgets, counters,
  revocations).
- ``GET /_emulator/faults`` / ``PUT /_emulator/faults``: read or replace the fault rules.
- ``GET /_emulator/counters``: requests by kind and outcome, token and discovery requests, 429s.
- ``GET /_emulator/snapshot``: the record store as JSON.
- ``POST /_emulator/revoke-tokens``: body ``{"client_id": "…"}`` for one user, empty for all.
- ``GET /_emulator/health``: ``{"status": "ok"}``.
"""

from __future__ import annotations

import typing as t

import orjson

from dataverse_emulator.http import Request, Response

if t.TYPE_CHECKING:
    from dataverse_emulator.app import Emulator
    from dataverse_emulator.http import Handler

PREFIX = "/_emulator/"


def _json(status: int, body: t.Any) -> Response:
    return Response(
        status=status,
        headers=[("Content-Type", "application/json"), ("Cache-Control", "no-store")],
        body=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
    )


def _problem(status: int, message: str) -> Response:
    return _json(status, {"error": message})


class Control:
    """Serves ``/_emulator/*``; passes everything else to ``inner``."""

    def __init__(self, emulator: Emulator, inner: Handler) -> None:
        self._emulator = emulator
        self._inner = inner
        self._routes: dict[tuple[str, str], t.Callable[[Request], Response]] = {
            ("GET", "health"): lambda _: _json(200, {"status": "ok"}),
            ("POST", "reset"): self._reset,
            ("GET", "faults"): lambda _: _json(200, emulator.faults.to_json()),
            ("PUT", "faults"): self._set_faults,
            ("GET", "counters"): lambda _: _json(200, emulator.counters.to_json()),
            ("GET", "snapshot"): lambda _: _json(200, emulator.env.snapshot()),
            ("POST", "revoke-tokens"): self._revoke_tokens,
        }

    async def __call__(self, request: Request) -> Response:
        """Answer a control request, or delegate."""
        if not request.path.startswith(PREFIX):
            return await self._inner(request)
        request.context["operation_kind"] = "control"
        name = request.path[len(PREFIX) :].rstrip("/")
        route = self._routes.get((request.method, name))
        if route is not None:
            return route(request)
        if any(known == name for _, known in self._routes):
            return _problem(405, f"{request.method} is not allowed on {request.path}")
        return _problem(404, f"no control endpoint {request.path}")

    def _reset(self, _: Request) -> Response:
        self._emulator.reset()
        return Response(status=204)

    def _set_faults(self, request: Request) -> Response:
        try:
            self._emulator.faults.load(_body(request))
        except ValueError as exc:
            return _problem(400, str(exc))
        return _json(200, self._emulator.faults.to_json())

    def _revoke_tokens(self, request: Request) -> Response:
        try:
            body = _body(request) or {}
        except ValueError as exc:
            return _problem(400, str(exc))
        if not isinstance(body, dict):
            return _problem(400, "expected {} or {'client_id': '...'}")
        return _json(200, {"revoked": self._emulator.tokens.revoke(body.get("client_id"))})


def _body(request: Request) -> t.Any:
    """The JSON body, None when empty.

    Raises:
        ValueError: if the body is not JSON.
    """
    if not request.body.strip():
        return None
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
