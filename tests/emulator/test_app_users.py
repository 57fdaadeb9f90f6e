"""Several application users: ``--app-users N`` and ``app-users.json`` (§7.1: each
authenticated user is limited independently, on each web server)."""

from __future__ import annotations

import json
import stat
import typing as t

import msal
import requests

from dataverse_emulator.server import EmulatorServer
from dataverse_emulator.testing import ODATA_HEADERS, emulator_process

if t.TYPE_CHECKING:
    from pathlib import Path

    from dataverse_emulator.testing import EmulatorProcess


def token(emulator: EmulatorProcess, entry: dict[str, str]) -> str:
    """A token for one ``app_users`` entry through MSAL, as the target gets it (§1.6)."""
    config = emulator.target_config
    credential: str | dict[str, str] = entry.get("client_secret") or {
        "private_key": entry["certificate_private_key"],
        "thumbprint": entry["certificate_thumbprint"],
    }
    session = requests.Session()
    session.trust_env = False
    session.verify = config["ca_bundle"]
    app = msal.ConfidentialClientApplication(
        entry["client_id"],
        client_credential=credential,
        authority=f"{config['authority_host']}/{config['tenant_id']}",
        instance_discovery=False,
        http_client=session,
    )
    answer = app.acquire_token_for_client(scopes=[f"{config['dynamics_url']}/.default"])
    assert "access_token" in answer, answer
    return answer["access_token"]


def who_am_i(emulator: EmulatorProcess, access_token: str) -> requests.Response:
    return requests.get(
        f"{emulator.base_url}/api/data/v9.2/WhoAmI",
        headers={**ODATA_HEADERS, "Authorization": f"Bearer {access_token}"},
        verify=emulator.ca_path,
        timeout=10,
    )


def control(
    emulator: EmulatorProcess, method: str, name: str, body: t.Any = None
) -> requests.Response:
    response = requests.request(
        method,
        f"{emulator.base_url}/_emulator/{name}",
        json=body,
        verify=emulator.ca_path,
        timeout=10,
    )
    response.raise_for_status()
    return response


def test_app_users_file_works_and_budgets_are_independent(tmp_path: Path):
    """``--app-users 4``: app-users.json (0600) holds the 3 loaders beside the one
    target-config.json names (2 secrets, 1 certificate; never the reader); each gets a token and
    WhoAmI answers its own UserId. One user throttled (§7.1 request limit, nominal message,
    scaled Retry-After) or revoked leaves the others served."""
    data = tmp_path / "data"
    with emulator_process(data, "--app-users", "4", "--time-scale", "0.1") as emulator:
        path = data / "app-users.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        entries = emulator.app_users
        assert entries == json.loads(path.read_text())["app_users"]
        assert [sorted(entry) for entry in entries] == [
            ["client_id", "client_secret"],
            ["certificate_private_key", "certificate_thumbprint", "client_id"],
            ["client_id", "client_secret"],
        ]
        assert entries[1]["certificate_private_key"].startswith("-----BEGIN")
        assert len(entries[1]["certificate_thumbprint"]) == 40
        int(entries[1]["certificate_thumbprint"], 16)
        registered = {user["client_id"]: user for user in control(emulator, "GET", "users").json()}
        primary = emulator.target_config["client_id"]
        assert primary not in {entry["client_id"] for entry in entries}
        assert all(registered[entry["client_id"]]["role"] is None for entry in entries)
        assert sum(user["role"] is None for user in registered.values()) == 4

        assert control(emulator, "PUT", "limits", {"requests": 2}).ok
        tokens = [token(emulator, entry) for entry in entries]
        for entry, access_token in zip(entries, tokens, strict=True):
            answer = who_am_i(emulator, access_token)
            assert answer.status_code == 200, answer.text
            assert answer.json()["UserId"] == registered[entry["client_id"]]["systemuser_id"]

        first, second, third = tokens
        assert [who_am_i(emulator, first).status_code for _ in range(2)] == [200, 429]
        throttled = who_am_i(emulator, first)
        assert throttled.json()["error"] == {
            "code": "0x80072322",
            "message": "Number of requests exceeded the limit of 2 over time window of 300 "
            "seconds.",
        }
        assert 1 <= int(throttled.headers["Retry-After"]) <= 30  # 300 s x 0.1
        assert who_am_i(emulator, second).status_code == 200

        revoke = {"client_id": entries[1]["client_id"]}
        assert control(emulator, "POST", "revoke-tokens", revoke).json()["revoked"] >= 1
        assert who_am_i(emulator, second).status_code == 401
        assert who_am_i(emulator, third).status_code == 200


def test_default_users_and_fewer_loaders(tmp_path: Path):
    """Without the option the users stay as they were (app-users.json: the second secret loader
    and the certificate loader); ``app_users=1`` leaves only the primary loader and the reader."""
    with EmulatorServer(tmp_path / "default", latency="zero") as server:
        assert [user.name for user in server.users] == [
            "Loader (secret)",
            "Second loader (secret)",
            "Loader (certificate)",
            "Reader (secret, read-only role)",
        ]
        assert [entry["client_id"] for entry in server.app_users] == [
            server.user(1).client_id,
            server.user(2).client_id,
        ]
        assert server.app_users[0]["client_secret"] == server.user(1).secret
        on_disk = json.loads((tmp_path / "default" / "app-users.json").read_text())
        assert on_disk == {"app_users": server.app_users}
    with EmulatorServer(tmp_path / "one", latency="zero", app_users=1) as server:
        assert server.app_users == []
        assert [user.name for user in server.users] == [
            "Loader (secret)",
            "Reader (secret, read-only role)",
        ]
