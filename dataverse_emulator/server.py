"""The emulator on loopback HTTPS: certificates, configuration files and a uvicorn thread.

:class:`EmulatorServer` generates a CA and certificates into its data directory, writes
``target-config.json`` (a working target-dynamics configuration pointing at itself),
``app-users.json`` (the further application users that may write, the target's ``app_users``:
``target-dynamics --config target-config.json --config app-users.json``) and runs the ASGI
adapter (:mod:`dataverse_emulator.asgi`) on uvicorn on ``127.0.0.1`` in a background thread with
its own event loop (``start`` / ``stop`` or the context manager). One port serves the Entra
authority, the Web API and ``/_emulator/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import shutil
import socket
import tempfile
import threading
import time
import typing as t
from pathlib import Path

import uvicorn

from dataverse_emulator.app import Emulator, Options, WireHandler
from dataverse_emulator.asgi import AsgiApp
from dataverse_emulator.control_client import Admin
from dataverse_emulator.pki import Pki, thumbprints
from dataverse_emulator.state.users import Users

if t.TYPE_CHECKING:
    from types import TracebackType

    from dataverse_emulator.state.environment import Environment
    from dataverse_emulator.state.users import ApplicationUser

API_PATH = "/api/data/v9.2"
_START_TIMEOUT = 15.0


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
