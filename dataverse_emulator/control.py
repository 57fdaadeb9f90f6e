"""The control plane under ``/_emulator/`` (off the Dataverse namespace, no token needed).

The only way tests reset or inspect the emulator (documented in ``docs/emulator-admin-api.md``):

- ``POST /_emulator/reset``: back to the start-up state (store, faults, budgets and limits,
  counters, revocations).
- ``GET /_emulator/limits`` / ``PUT /_emulator/limits``: read or change (partial object) the
  ``x-ms-dop-hint``, the number of web servers and the per-user limits, nominal figures.
- ``GET /_emulator/faults`` / ``PUT /_emulator/faults``: read or replace the fault rules.
- ``GET /_emulator/counters``: requests by kind and outcome, token and discovery requests, 429s.
- ``GET /_emulator/snapshot``: the record store as JSON.
- ``POST /_emulator/revoke-tokens``: body ``{"client_id": "…"}`` for one user, empty for all.
- ``GET /_emulator/users``: application users (no secrets), with role and secret expiry.
- ``PUT /_emulator/users/{client_id}/role``: a role (``state/privileges.py``) or null (all).
- ``PUT /_emulator/users/{client_id}/secret``: ``{"expired": true|false}``.
- ``PUT /_emulator/users/{client_id}/api-access``: ``{"restricted": true|false}``.
- ``GET /_emulator/key-jobs``: the running alternate-key index jobs (§3.6) as
  ``[{table, key, status, seconds_left}]``.
- ``POST /_emulator/key-jobs/finish``: end them now (``Active``, or ``Failed`` on duplicates);
  answers ``[{table, key, status}]``.
- ``GET /_emulator/health``: ``{"status": "ok"}``.
"""

from __future__ import annotations

import typing as t

import orjson

from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.privileges import Role
from dataverse_emulator.wire.codec import dumps

if t.TYPE_CHECKING:
    from dataverse_emulator.app import Emulator
    from dataverse_emulator.http import Handler
    from dataverse_emulator.state.users import ApplicationUser

PREFIX = "/_emulator/"


def _json(status: int, body: t.Any) -> Response:
    """A JSON answer; the snapshot's Decimal and Money values as exact numbers (§4.6)."""
    return Response(
        status=status,
        headers=[("Content-Type", "application/json"), ("Cache-Control", "no-store")],
        body=dumps(body),
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
            ("GET", "limits"): lambda _: _json(200, emulator.budgets.limits.to_json()),
            ("PUT", "limits"): self._set_limits,
            ("GET", "counters"): lambda _: _json(200, emulator.counters.to_json()),
            ("GET", "snapshot"): lambda _: _json(200, emulator.env.snapshot()),
            ("POST", "revoke-tokens"): self._revoke_tokens,
            ("GET", "users"): lambda _: _json(200, [user_json(u) for u in emulator.users]),
            ("GET", "key-jobs"): lambda _: _json(200, emulator.env.key_jobs.pending()),
            ("POST", "key-jobs/finish"): lambda _: _json(200, emulator.env.key_jobs.finish()),
        }
        self._user_settings: dict[str, t.Callable[[str, t.Any], dict[str, t.Any]]] = {
            "role": self._set_role,
            "secret": self._set_secret,
            "api-access": self._set_api_access,
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
        if name.startswith("users/") and name.count("/") == 2:
            return self._user_setting(request, name)
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

    def _set_limits(self, request: Request) -> Response:
        budgets = self._emulator.budgets
        try:
            budgets.retune(budgets.limits.updated(_body(request)))
        except ValueError as exc:
            return _problem(400, str(exc))
        return _json(200, budgets.limits.to_json())

    def _user_setting(self, request: Request, name: str) -> Response:
        _, client_id, setting = name.split("/")
        apply = self._user_settings.get(setting)
        if apply is None:
            return _problem(404, f"no control endpoint {request.path}")
        if request.method != "PUT":
            return _problem(405, f"{request.method} is not allowed on {request.path}")
        if self._emulator.users.get(client_id) is None:
            return _problem(404, f"no application user {client_id}")
        try:
            return _json(200, apply(client_id, _body(request)))
        except ValueError as exc:
            return _problem(400, str(exc))

    def _set_role(self, client_id: str, body: t.Any) -> dict[str, t.Any]:
        role = None if body is None else Role.from_json(body)
        return user_json(self._emulator.users.update(client_id, role=role))

    def _set_secret(self, client_id: str, body: t.Any) -> dict[str, t.Any]:
        if not isinstance(body, dict) or not isinstance(body.get("expired"), bool):
            msg = 'expected {"expired": true} or {"expired": false}'
            raise ValueError(msg)  # noqa: TRY004 - a bad document, answered 400
        user = self._emulator.users.update(client_id, secret_expired=body["expired"])
        return user_json(user)

    def _set_api_access(self, client_id: str, body: t.Any) -> dict[str, t.Any]:
        if not isinstance(body, dict) or not isinstance(body.get("restricted"), bool):
            msg = 'expected {"restricted": true} or {"restricted": false}'
            raise ValueError(msg)  # noqa: TRY004 - a bad document, answered 400
        user = self._emulator.users.update(client_id, api_restricted=body["restricted"])
        return user_json(user)

    def _revoke_tokens(self, request: Request) -> Response:
        try:
            body = _body(request) or {}
        except ValueError as exc:
            return _problem(400, str(exc))
        if not isinstance(body, dict):
            return _problem(400, "expected {} or {'client_id': '...'}")
        return _json(200, {"revoked": self._emulator.tokens.revoke(body.get("client_id"))})


def user_json(user: ApplicationUser) -> dict[str, t.Any]:
    """A user as the control API shows it: never its secret."""
    return {
        "client_id": user.client_id,
        "name": user.name,
        "systemuser_id": user.systemuser_id,
        "role": None if user.role is None else user.role.to_json(),
        "secret_expired": user.secret_expired,
        "api_restricted": user.api_restricted,
    }


def _body(request: Request) -> t.Any:
    """The JSON body, None when empty; settings, not row values, so numbers are plain floats.

    Raises:
        ValueError: if the body is not JSON.
    """
    if not request.body.strip():
        return None
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
