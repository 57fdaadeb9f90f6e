"""A client of the emulator's control API (``/_emulator/``, docs/emulator-admin-api.md).

Tests, the demo and the benchmarks reach it as ``EmulatorServer.admin``; it speaks HTTPS to the
emulator's own port and trusts only the emulator's CA.
"""

from __future__ import annotations

import typing as t

import requests

if t.TYPE_CHECKING:
    from pathlib import Path


class Admin:
    """Client of the control API (``/_emulator/``) over the emulator's own HTTPS."""

    def __init__(self, base_url: str, ca_path: Path) -> None:
        self._base = f"{base_url}/_emulator"
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.verify = str(ca_path)

    def _call(self, method: str, name: str, body: object = None) -> requests.Response:
        response = self._session.request(method, f"{self._base}/{name}", json=body, timeout=30)
        response.raise_for_status()
        return response

    def _object(self, method: str, name: str, body: object = None) -> dict[str, t.Any]:
        # Every control endpoint but ``users`` and ``key-jobs`` answers a JSON object.
        answer: dict[str, t.Any] = self._call(method, name, body).json()
        return answer

    def _list(self, method: str, name: str) -> list[dict[str, t.Any]]:
        answer: list[dict[str, t.Any]] = self._call(method, name).json()
        return answer

    def health(self) -> dict[str, t.Any]:
        """``GET /_emulator/health``."""
        return self._object("GET", "health")

    def reset(self) -> None:
        """``POST /_emulator/reset``: back to the start-up state."""
        self._call("POST", "reset")

    def faults(self) -> dict[str, t.Any]:
        """``GET /_emulator/faults``: seed and rules with their counters."""
        return self._object("GET", "faults")

    def set_faults(self, plan: t.Any) -> dict[str, t.Any]:
        """``PUT /_emulator/faults``: a rule list or ``{"seed": n, "rules": [...]}``."""
        return self._object("PUT", "faults", plan)

    def limits(self) -> dict[str, t.Any]:
        """``GET /_emulator/limits``: dop hint, web servers and per-user limits (nominal)."""
        return self._object("GET", "limits")

    def set_limits(self, **changes: float) -> dict[str, t.Any]:
        """``PUT /_emulator/limits``: change some of them, e.g. ``set_limits(dop_hint=48)``."""
        return self._object("PUT", "limits", changes)

    def counters(self) -> dict[str, t.Any]:
        """``GET /_emulator/counters``."""
        return self._object("GET", "counters")

    def snapshot(self) -> dict[str, t.Any]:
        """``GET /_emulator/snapshot``: stored rows by table."""
        return self._object("GET", "snapshot")

    def revoke_tokens(self, client_id: str | None = None) -> int:
        """``POST /_emulator/revoke-tokens``; return how many tokens were revoked."""
        body = {"client_id": client_id} if client_id else {}
        revoked: int = self._object("POST", "revoke-tokens", body)["revoked"]
        return revoked

    def key_jobs(self) -> list[dict[str, t.Any]]:
        """``GET /_emulator/key-jobs``: running alternate-key index jobs (§3.6)."""
        return self._list("GET", "key-jobs")

    def finish_key_jobs(self) -> list[dict[str, t.Any]]:
        """``POST /_emulator/key-jobs/finish``: end every key index job now."""
        return self._list("POST", "key-jobs/finish")

    def users(self) -> list[dict[str, t.Any]]:
        """``GET /_emulator/users``: client id, name, role and secret expiry of each user."""
        listed: list[dict[str, t.Any]] = self._call("GET", "users").json()
        return listed

    def set_role(self, client_id: str, role: dict[str, t.Any] | None) -> dict[str, t.Any]:
        """``PUT /_emulator/users/{client_id}/role``: a role document; None: every privilege."""
        return self._object("PUT", f"users/{client_id}/role", role)

    def expire_secret(self, client_id: str, *, expired: bool = True) -> dict[str, t.Any]:
        """``PUT /_emulator/users/{client_id}/secret``: mark the user's secret (un)expired."""
        return self._object("PUT", f"users/{client_id}/secret", {"expired": expired})

    def restrict_api_access(self, client_id: str, *, restricted: bool = True) -> dict[str, t.Any]:
        """``PUT /_emulator/users/{client_id}/api-access``: block (or unblock) the app (§1.5)."""
        return self._object("PUT", f"users/{client_id}/api-access", {"restricted": restricted})

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()
