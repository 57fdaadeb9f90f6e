"""The emulator on loopback HTTPS: an ASGI adapter on uvicorn (httptools) and a server object.

:class:`EmulatorServer` generates a CA and certificates into its data directory, writes
``target-config.json`` (a working target-dynamics configuration pointing at itself),
``app-users.json`` (the further application users that may write, the target's ``app_users``:
``target-dynamics --config target-config.json --config app-users.json``) and runs uvicorn on
``127.0.0.1`` in a background thread with its own event loop (``start`` / ``stop`` or the
context manager). One port serves the Entra authority, the Web API and ``/_emulator/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import shutil
import socket
import tempfile
import threading
import time
import typing as t
from pathlib import Path

import requests
import uvicorn
from typing_extensions import override

from dataverse_emulator.app import Emulator, Options, WireHandler
from dataverse_emulator.http import Request, Response
from dataverse_emulator.pki import Pki, thumbprints
from dataverse_emulator.state.users import Users
from dataverse_emulator.wire.errors import error_response

if t.TYPE_CHECKING:
    from types import TracebackType

    from dataverse_emulator.state.environment import Environment
    from dataverse_emulator.state.users import ApplicationUser

API_PATH = "/api/data/v9.2"
_START_TIMEOUT = 15.0
_INCOMPLETE = "ASGI callable returned without completing response."
_NO_BODY = {204, 304}

Scope = dict[str, t.Any]
Receive = t.Callable[[], t.Awaitable[dict[str, t.Any]]]
Send = t.Callable[[dict[str, t.Any]], t.Awaitable[None]]


class _DeliberateResets(logging.Filter):
    """Hide uvicorn's complaint about the responses we cut off on purpose (``Abort.RESET``)."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _INCOMPLETE


logging.getLogger("uvicorn.error").addFilter(_DeliberateResets())


class AsgiApp:
    """Raw ASGI 3 adapter: bytes in, :class:`Request`; :class:`Response`, bytes out."""

    def __init__(self, emulator: Emulator, max_body_bytes: int) -> None:
        self.emulator = emulator
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request (other scope types are ignored)."""
        if scope["type"] != "http":
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        host = headers.get("host") or "{}:{}".format(*scope["server"])
        body = await self._body(receive)
        if body is None:
            response = error_response(
                413,
                "",
                f"The request body exceeds the maximum size of {self._max_body} bytes.",
            )
        else:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            request = Request(
                method=scope["method"],
                path=raw_path.decode("latin-1"),
                query=scope["query_string"].decode("latin-1"),
                headers=headers,
                body=body,
                base_url=f"https://{host}",
                context={"connection": scope.get("client")},
            )
            response = await self.emulator.handle(request)
        await _send(send, response, head=scope["method"] == "HEAD")

    async def _body(self, receive: Receive) -> bytes | None:
        """Read the whole body; None once it exceeds the limit."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


async def _send(send: Send, response: Response, *, head: bool) -> None:
    body = response.body
    raw_headers = [(k.encode("latin-1"), v.encode("utf-8")) for k, v in response.headers]
    if response.status not in _NO_BODY:
        raw_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
    if response.abort is not None:
        # Abort.RESET: half the promised body, then return; uvicorn closes the connection.
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        return
    await send({"type": "http.response.body", "body": b"" if head else body})


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


class EmulatorServer:
    """One emulator on ``https://127.0.0.1:PORT``; a context manager.

    Args:
        data_dir: Where ``ca.pem``, certificates, ``target-config.json`` and ``users.json``
            go; a temporary directory (removed on stop) when None.
        port: TCP port; 0 picks a free one.
        host: Interface to bind (loopback by default); the server certificate covers it.
        options: Behaviour (latency, time scale, faults, ...); overridden by ``option_fields``.
        environment: Use this environment instead of building one (tests).
        wire_handler: Use this instead of ``dataverse_emulator.wire.handle`` (tests).
        **option_fields: Fields of :class:`Options`, e.g. ``latency="zero"``.

    Attributes:
        base_url: ``https://127.0.0.1:PORT`` — Dataverse org URL and authority host alike.
        ca_path: The CA certificate clients must trust.
        target_config: The dict written to ``target-config.json``.
        app_users: The further loaders' credentials written to ``app-users.json`` (the
            target's ``app_users`` setting): every user that may write except the primary.
        users: Registered application users.
        env: The Dataverse environment (state).
        emulator: The handler chain and its state.
        admin: Control API client.
    """

    def __init__(  # noqa: PLR0913 - keyword-only options
        self,
        data_dir: Path | str | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        options: Options | None = None,
        environment: Environment | None = None,
        wire_handler: WireHandler | None = None,
        **option_fields: t.Any,
    ) -> None:
        self.options = dataclasses.replace(options or Options(), **option_fields)
        self._temporary = data_dir is None
        # Absolute, so the paths in target-config.json (ca_bundle) work from any directory.
        self.data_dir = Path(
            tempfile.mkdtemp(prefix="dataverse-emulator-") if data_dir is None else data_dir
        ).resolve()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.pki = Pki.create(self.data_dir, host)
            self.users = Users.default(
                self.options.seed, self.pki.client_cert.read_bytes(), self.options.app_users
            )
            self.emulator = Emulator(
                self.options, self.users, environment=environment, wire_handler=wire_handler
            )
        except BaseException:
            if self._temporary:
                shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        self.ca_path = self.pki.ca
        self.env = self.emulator.env
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = (
            f"https://[{host}]:{self.port}" if ":" in host else f"https://{host}:{self.port}"
        )
        self.target_config, self.app_users = self._write_configs()
        self.admin = Admin(self.base_url, self.ca_path)
        self._server = uvicorn.Server(
            uvicorn.Config(
                AsgiApp(self.emulator, self.options.max_body_bytes),
                ssl_certfile=str(self.pki.server_cert),
                ssl_keyfile=str(self.pki.server_key),
                http="httptools",
                loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
                lifespan="off",
                log_level="warning",
                access_log=False,
                server_header=False,
                timeout_keep_alive=30,
                timeout_graceful_shutdown=3,
                backlog=1024,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def tenant_id(self) -> str:
        """The emulated tenant."""
        return self.emulator.tenant_id

    @property
    def authority(self) -> str:
        """MSAL ``authority``: ``https://127.0.0.1:PORT/{tenant}``."""
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def api_url(self) -> str:
        """Web API root: ``https://127.0.0.1:PORT/api/data/v9.2``."""
        return f"{self.base_url}{API_PATH}"

    def user(self, index: int = 0) -> ApplicationUser:
        """The ``index``-th registered user (0: the one ``target-config.json`` names)."""
        return list(self.users)[index]

    def _write_configs(self) -> tuple[dict[str, t.Any], list[dict[str, str]]]:
        """Write ``target-config.json``, ``app-users.json`` and ``users.json``."""
        primary = self.users.first
        config = {
            "dynamics_url": self.base_url,
            "tenant_id": self.tenant_id,
            "client_id": primary.client_id,
            "client_secret": primary.secret,
            "authority_host": self.base_url,
            "ca_bundle": str(self.ca_path),
        }
        users = []
        for user in self.users:
            entry: dict[str, t.Any] = {"name": user.name, "client_id": user.client_id}
            if user.role is not None:
                entry["role"] = user.role.to_json()
            if user.secret:
                entry["client_secret"] = user.secret
            if user.certificate_pem:
                entry["certificate"] = str(self.pki.client_cert)
                entry["private_key"] = str(self.pki.client_key)
                entry["thumbprint"] = thumbprints(user.certificate_pem)[0]
            users.append(entry)
        app_users = [self._credentials(user) for user in self.users.loaders[1:]]
        _write_private(self.data_dir / "target-config.json", config)
        _write_private(self.data_dir / "app-users.json", {"app_users": app_users})
        _write_private(self.data_dir / "users.json", {"tenant_id": self.tenant_id, "users": users})
        return config, app_users

    def _credentials(self, user: ApplicationUser) -> dict[str, str]:
        """A loader as an entry of the target's ``app_users``: secret, or key and thumbprint."""
        if user.secret:
            return {"client_id": user.client_id, "client_secret": user.secret}
        return {
            "client_id": user.client_id,
            "certificate_private_key": self.pki.client_key.read_text(encoding="utf-8"),
            "certificate_thumbprint": thumbprints(user.certificate_pem or b"")[0],
        }

    def start(self) -> t.Self:
        """Serve in a background thread; return once the port accepts connections.

        Raises:
            RuntimeError: if the server did not come up.
        """
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"dataverse-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator did not start on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and release the port (and the temporary directory)."""
        self._server.should_exit = True
        self._server.force_exit = True  # idle keep-alive TLS connections would hold it up
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT)
            self._thread = None
        self._cleanup()

    def _cleanup(self) -> None:
        self.admin.close()
        with contextlib.suppress(OSError):
            self._socket.close()
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> t.Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _write_private(path: Path, data: dict[str, t.Any]) -> None:
    """Write JSON readable only by the owner (it holds client secrets)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
