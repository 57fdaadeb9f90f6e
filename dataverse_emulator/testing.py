"""Helpers for tests, benchmarks and the demo that talk to a running emulator over HTTPS.

``running_emulator(**options)`` starts an :class:`EmulatorServer` in a background thread and
stops it afterwards; ``emulator_process(data_dir, *cli_args)`` runs the ``dataverse-emulator``
console script in a child process instead. The session helpers build ``requests`` sessions that
trust the emulator's CA even when ``REQUESTS_CA_BUNDLE`` is set (reference §1.6, the
``trust_env`` pitfall).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import requests

from dataverse_emulator.server import EmulatorServer

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from dataverse_emulator.state.users import ApplicationUser

ODATA_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "If-None-Match": "null",
}
"""The headers every Dataverse call carries (§2.2)."""

CLI_SCRIPT = Path(sys.executable).parent / "dataverse-emulator"
"""The console script installed next to the running interpreter."""


@contextlib.contextmanager
def running_emulator(**options: t.Any) -> Iterator[EmulatorServer]:
    """Start an emulator (``EmulatorServer`` keyword arguments), yield it, stop it."""
    with EmulatorServer(**options) as server:
        yield server


def https_session(server: EmulatorServer) -> requests.Session:
    """A session that trusts the emulator's CA and ignores proxy / CA environment variables."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(server.ca_path)
    return session


def acquire_token(server: EmulatorServer, user: ApplicationUser | None = None) -> str:
    """Get an access token for a secret user with a plain client-credentials POST (§1.1)."""
    user = user or server.users.first
    with https_session(server) as session:
        response = session.post(
            f"{server.authority}/oauth2/v2.0/token",
            data={
                "client_id": user.client_id,
                "client_secret": user.secret or "",
                "grant_type": "client_credentials",
                "scope": f"{server.base_url}/.default",
            },
            timeout=30,
        )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def api_session(server: EmulatorServer, user: ApplicationUser | None = None) -> requests.Session:
    """A session with a bearer token of ``user`` (default: the primary user) and §2.2 headers."""
    session = https_session(server)
    session.headers.update(ODATA_HEADERS)
    session.headers["Authorization"] = f"Bearer {acquire_token(server, user)}"
    return session


class EmulatorStartError(RuntimeError):
    """The emulator process exited during start-up or did not answer in time.

    Attributes:
        returncode: The exit status when the process exited; None when it timed out.
    """

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


@dataclasses.dataclass
class EmulatorProcess:
    """A ``dataverse-emulator`` child process that answers on its health endpoint."""

    process: subprocess.Popen[str]
    data_dir: Path
    target_config: dict[str, t.Any]
    """The target-dynamics configuration the emulator wrote (``target-config.json``)."""

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT``, the root of the Web API, authority and control API."""
        url: str = self.target_config["dynamics_url"]
        return url

    @property
    def app_users(self) -> list[dict[str, str]]:
        """The further application users that may write (``app-users.json``, ``app_users``)."""
        path = self.data_dir / "app-users.json"
        users: list[dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))["app_users"]
        return users

    @property
    def ca_path(self) -> Path:
        """The emulator's CA certificate (``ca.pem``)."""
        return Path(self.target_config["ca_bundle"])

    def api_session(self, timeout: float = 30) -> requests.Session:
        """A session trusting the CA, with a token for the user of ``target-config.json``.

        Proxies and ``REQUESTS_CA_BUNDLE`` from the environment are ignored; every Dataverse call
        carries the §2.2 headers.
        """
        config = self.target_config
        session = requests.Session()
        session.trust_env = False
        session.verify = config["ca_bundle"]
        answer = session.post(
            f"{config['authority_host']}/{config['tenant_id']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": config["client_id"],
                "client_secret": config["client_secret"],
                "scope": f"{config['dynamics_url']}/.default",
            },
            timeout=timeout,
        )
        answer.raise_for_status()
        session.headers.update(ODATA_HEADERS)
        session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return session

    def stop(self, timeout: float = 15) -> int:
        """Terminate the process unless it ended (kill after ``timeout`` s); return its status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode


@contextlib.contextmanager
def emulator_process(
    data_dir: Path,
    *cli_args: str,
    stdout: t.Any = subprocess.DEVNULL,
    stderr: t.Any = subprocess.PIPE,
    startup_timeout: float = 30,
) -> Iterator[EmulatorProcess]:
    """Run ``dataverse-emulator --port 0 --data-dir DATA_DIR *CLI_ARGS``; stop it afterwards.

    Yields once ``target-config.json`` is written and ``/_emulator/health`` answers.

    Args:
        data_dir: The ``--data-dir`` (``ca.pem``, ``target-config.json``, ...).
        *cli_args: Further command-line options, e.g. ``"--latency", "zero"``.
        stdout: Where the process's standard output goes (``subprocess.Popen`` semantics).
        stderr: Where its standard error goes; with ``PIPE`` a start-up failure quotes it.
        startup_timeout: Seconds to wait for the health endpoint.

    Raises:
        EmulatorStartError: if the process exited or did not answer in time.
    """
    command = [str(CLI_SCRIPT), "--port", "0", "--data-dir", str(data_dir), *cli_args]
    process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)  # noqa: S603 - our own console script
    handle = EmulatorProcess(process, data_dir, {})
    try:
        config_path = data_dir / "target-config.json"
        handle.target_config = _wait_ready(process, config_path, startup_timeout)
        yield handle
    finally:
        handle.stop()


def _wait_ready(
    process: subprocess.Popen[str], config_path: Path, timeout: float
) -> dict[str, t.Any]:
    """Poll until the config exists and the health endpoint answers 2xx; return the config."""
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                message = f"the emulator exited with {process.returncode}"
                if process.stderr is not None:
                    message += f": {process.stderr.read()}"
                raise EmulatorStartError(message, process.returncode)
            with contextlib.suppress(OSError, ValueError, requests.RequestException):
                config: dict[str, t.Any] = json.loads(config_path.read_text(encoding="utf-8"))
                session.get(
                    f"{config['dynamics_url']}/_emulator/health",
                    verify=config["ca_bundle"],
                    timeout=2,
                ).raise_for_status()
                return config
            time.sleep(0.1)
    message = f"the emulator did not start within {timeout:g} s"
    raise EmulatorStartError(message)
