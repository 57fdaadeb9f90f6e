"""Shared fixtures for tests that need a running emulator (owned by the emulator platform).

Stable names other tests rely on:

- ``emulator`` (session scope): one :class:`~dataverse_emulator.server.EmulatorServer` with
  ``latency="zero"`` (no server time, no service protection limits), started on first use.
  Attributes: ``base_url`` (org URL and authority host), ``api_url``, ``authority``,
  ``tenant_id``, ``ca_path``, ``target_config`` (a working target-dynamics config dict),
  ``app_users`` (the further loaders' credentials, the target's ``app_users``),
  ``users`` / ``user(i)``, ``env``, ``admin`` (control API: ``reset()``, ``set_faults(plan)``,
  ``faults()``, ``counters()``, ``snapshot()``, ``revoke_tokens(client_id=None)``,
  ``limits()``, ``set_limits(**changes)``).
- ``reset_emulator`` (function scope): resets the session ``emulator`` before the test and
  yields it; use ``@pytest.mark.usefixtures("reset_emulator")`` or make it autouse in a
  sub-directory ``conftest.py``.
- ``emulator_factory`` (function scope): ``emulator_factory(**options)`` starts a private
  emulator (``latency``, ``time_scale``, ``faults``, ``seed``, ``token_lifetime``,
  ``limits``, ``costs``, ``entities_file``, ``app_users``, ``data_dir``) and stops it after
  the test.
- ``api`` (function scope): a ``requests.Session`` on the reset session emulator, with a bearer
  token of the primary user and the §2.2 OData headers.
"""

from __future__ import annotations

import typing as t

import pytest

from dataverse_emulator.server import EmulatorServer
from dataverse_emulator.testing import api_session, running_emulator

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import requests


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    """One emulator for the whole session, without latency or limits."""
    with running_emulator(latency="zero") as server:
        yield server


@pytest.fixture
def reset_emulator(emulator: EmulatorServer) -> EmulatorServer:
    """The session emulator, reset to its start-up state."""
    emulator.admin.reset()
    return emulator


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    """Start private emulators with options; all are stopped after the test."""
    servers: list[EmulatorServer] = []

    def start(**options: t.Any) -> EmulatorServer:
        server = EmulatorServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def api(reset_emulator: EmulatorServer) -> Iterator[requests.Session]:
    """An authorized Web API session on the freshly reset session emulator."""
    with api_session(reset_emulator) as session:
        yield session
