"""Helpers for tests that talk to a running emulator over HTTPS.

``running_emulator(**options)`` starts an :class:`EmulatorServer` in a background thread and
stops it afterwards; the session helpers build ``requests`` sessions that trust the emulator's
CA even when ``REQUESTS_CA_BUNDLE`` is set (reference §1.6, the ``trust_env`` pitfall).
"""

from __future__ import annotations

import contextlib
import typing as t

import requests

from dataverse_emulator.serve import EmulatorServer

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
    return response.json()["access_token"]


def api_session(server: EmulatorServer, user: ApplicationUser | None = None) -> requests.Session:
    """A session with a bearer token of ``user`` (default: the primary user) and §2.2 headers."""
    session = https_session(server)
    session.headers.update(ODATA_HEADERS)
    session.headers["Authorization"] = f"Bearer {acquire_token(server, user)}"
    return session
