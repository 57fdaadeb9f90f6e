"""Fixtures of the conformance suite: one emulator over HTTPS, an MSAL token, a fresh client.

The suite checks the emulator against docs/dataverse.md with an independent client
(``conformance_support``): only the server starter (``dataverse_emulator.testing``) and the
documented ``target-config.json`` values come from the emulator.
"""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import pytest

from dataverse_emulator.testing import running_emulator

sys.path.insert(0, str(Path(__file__).parent))  # the client in conformance_support.py

from conformance_support import EXAMPLE_ENTITIES, Dataverse, msal_token

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from dataverse_emulator.server import EmulatorServer


@pytest.fixture(scope="session")
def conformance_server() -> Iterator[EmulatorServer]:
    """One emulator for the suite: no latency, the example custom tables loaded."""
    with running_emulator(latency="zero", entities_file=EXAMPLE_ENTITIES) as server:
        yield server


@pytest.fixture(scope="session")
def session_token(conformance_server: EmulatorServer) -> str:
    """An access token for the primary user, from real MSAL."""
    result = msal_token(conformance_server.target_config)
    assert "access_token" in result, result.get("error")
    return result["access_token"]


@pytest.fixture
def dv(conformance_server: EmulatorServer, session_token: str) -> Iterator[Dataverse]:
    """A Web API client on the freshly reset suite emulator."""
    conformance_server.admin.reset()
    client = Dataverse(conformance_server, session_token)
    with client.session:
        yield client
