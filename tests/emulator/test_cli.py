"""The ``dataverse-emulator`` console script: start, serve, stop (task brief; A.2, A.3)."""

from __future__ import annotations

import json
import signal
import subprocess
import typing as t
from pathlib import Path

import pytest
import requests

from dataverse_emulator.testing import CLI_SCRIPT, emulator_process

if t.TYPE_CHECKING:
    import contextlib

    from dataverse_emulator.testing import EmulatorProcess


def start(tmp_path: Path, *args: str) -> contextlib.AbstractContextManager[EmulatorProcess]:
    """The CLI on a free port with ``--data-dir tmp_path/data``, its output captured."""
    return emulator_process(tmp_path / "data", *args, stdout=subprocess.PIPE, startup_timeout=20)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_start_serve_stop(tmp_path, stop_signal):
    """Writes ca.pem and target-config.json, prints its URLs, serves the authority and the Web
    API on one port, and stops cleanly on SIGTERM / Ctrl-C."""
    with start(tmp_path, "--latency", "zero", "--seed", "3") as emulator:
        process, config = emulator.process, emulator.target_config
        try:
            assert (tmp_path / "data" / "ca.pem").exists()
            with emulator.api_session(timeout=5) as api:
                who = api.get(f"{config['dynamics_url']}/api/data/v9.2/WhoAmI", timeout=5)
            assert who.status_code == 200
        finally:
            process.send_signal(stop_signal)
            stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert f"{config['dynamics_url']}/api/data/v9.2/" in stdout
    assert f"{config['authority_host']}/{config['tenant_id']}" in stdout
    assert config["client_secret"] not in stdout + stderr


def test_faults_file_is_loaded(tmp_path):
    """--faults FILE (docs/emulator-faults.md) is the start-up plan; --time-scale scales its
    Retry-After; --dop-hint sets the x-ms-dop-hint every answer reports, the injected 429
    included (§7.3, docs/emulator-admin-api.md)."""
    plan = {"seed": 9, "rules": [{"action": "throttle", "retry_after": 30}]}
    (tmp_path / "faults.json").write_text(json.dumps(plan))
    with start(
        tmp_path,
        *("--faults", str(tmp_path / "faults.json"), "--time-scale", "0.1", "--dop-hint", "48"),
    ) as emulator:
        config = emulator.target_config
        faults = requests.get(
            f"{config['dynamics_url']}/_emulator/faults", verify=config["ca_bundle"], timeout=5
        ).json()
        assert faults["seed"] == 9
        assert faults["rules"][0]["action"] == "throttle"
        response = requests.get(
            f"{config['dynamics_url']}/api/data/v9.2/WhoAmI",
            verify=config["ca_bundle"],
            timeout=5,
        )
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"
        assert response.headers["x-ms-dop-hint"] == "48"
    assert emulator.process.returncode == 0


def test_bad_arguments(tmp_path):
    """Invalid options fail fast with a usage error (exit status 2)."""
    bad_faults = tmp_path / "faults.json"
    bad_faults.write_text('[{"action": "explode"}]')
    for args in (
        ["--latency", "slow"],
        ["--dop-hint", "0"],
        ["--dop-hint", "many"],
        ["--faults", str(bad_faults)],
        ["--faults", str(tmp_path / "missing.json")],
    ):
        result = subprocess.run(
            [str(CLI_SCRIPT), "--port", "0", "--data-dir", str(tmp_path / "d"), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 2, (args, result.stderr)


def test_entities_file_adds_tables(tmp_path):
    """--entities FILE (docs/emulator-entities.md) extends the catalog the Web API serves
    (§3.1: EntityDefinitions(LogicalName='…'))."""
    example = Path(__file__).parents[2] / "dataverse_emulator/data/examples/custom-entities.json"
    with start(tmp_path, "--latency", "zero", "--entities", str(example)) as emulator:
        config = emulator.target_config
        with emulator.api_session(timeout=5) as api:
            response = api.get(
                f"{config['dynamics_url']}/api/data/v9.2/"
                "EntityDefinitions(LogicalName='new_membership')?$select=EntitySetName",
                timeout=5,
            )
        assert response.status_code == 200
        assert response.json()["EntitySetName"] == "new_memberships"


def test_target_config_works_from_another_directory(tmp_path, monkeypatch):
    """Issue 10 item 9: started with a relative --data-dir, the config names the CA bundle by
    an absolute path, so the target runs with it from any directory (e.g. a Meltano project)."""
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "meltano-project"
    elsewhere.mkdir()
    stream = [
        {
            "type": "SCHEMA",
            "stream": "contacts",
            "key_properties": [],
            "schema": {"properties": {"lastname": {"type": "string"}}},
        },
        {"type": "RECORD", "stream": "contacts", "record": {"lastname": "Elsewhere"}},
    ]
    with emulator_process(Path("data"), "--latency", "zero") as emulator:
        assert Path(emulator.target_config["ca_bundle"]).is_absolute()
        result = subprocess.run(
            [
                str(CLI_SCRIPT.parent / "target-dynamics"),
                "--config",
                str(tmp_path / "data" / "target-config.json"),
            ],
            input="".join(json.dumps(m) + "\n" for m in stream),
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        with emulator.api_session(timeout=5) as api:
            landed = api.get(
                f"{emulator.target_config['dynamics_url']}/api/data/v9.2/contacts?$select=lastname",
                timeout=5,
            ).json()["value"]
    assert [row["lastname"] for row in landed] == ["Elsewhere"]
