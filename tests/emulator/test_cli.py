"""The ``dataverse-emulator`` console script: start, serve, stop (task brief; A.2, A.3)."""

from __future__ import annotations

import ipaddress
import json
import signal
import subprocess
import typing as t
from pathlib import Path

import pytest
import requests
from cryptography import x509

from dataverse_emulator.cli import exposure_warning
from dataverse_emulator.pki import Pki
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
    unknown_table = tmp_path / "unknown.json"
    unknown_table.write_text('{"new_nothing": [{"name": "x"}]}')
    refused_row = tmp_path / "refused.json"
    refused_row.write_text('{"contact": [{"lastname": "x", "nosuchcolumn": 1}]}')
    for args in (
        ["--latency", "slow"],
        ["--dop-hint", "0"],
        ["--dop-hint", "many"],
        ["--web-servers", "0"],
        ["--app-users", "-1"],
        ["--faults", str(bad_faults)],
        ["--faults", str(tmp_path / "missing.json")],
        ["--seed-data", str(unknown_table)],
        ["--seed-data", str(refused_row)],
        ["--seed-data", str(bad_faults)],
    ):
        result = subprocess.run(
            [str(CLI_SCRIPT), "--port", "0", "--data-dir", str(tmp_path / "d"), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 2, (args, result.stderr)
        if args[0] in {"--dop-hint", "--web-servers", "--app-users"}:
            assert f"argument {args[0]}: expected a whole number of at least 1" in result.stderr


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


ACCOUNT_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_seed_data_and_snapshot_on_exit(tmp_path):
    """--seed-data FILE (the /_emulator/snapshot shape; the example of docs/emulator.md)
    creates its rows through the store's create path, lookups and state included, readable
    over the Web API; --snapshot-on-exit FILE writes the snapshot on SIGTERM; on loopback
    --host there is no warning."""
    doc = (Path(__file__).parents[2] / "docs/emulator.md").read_text(encoding="utf-8")
    seed = json.loads(doc.split("<!-- emulator-seed: rows -->\n```json\n")[1].split("```")[0])
    (tmp_path / "rows.json").write_text(json.dumps(seed))
    saved = tmp_path / "saved.json"
    with start(
        tmp_path,
        *("--host", "127.0.0.1", "--latency", "zero"),
        *("--seed-data", str(tmp_path / "rows.json"), "--snapshot-on-exit", str(saved)),
    ) as emulator:
        process, config = emulator.process, emulator.target_config
        try:
            with emulator.api_session(timeout=5) as api:
                contacts = api.get(
                    f"{config['dynamics_url']}/api/data/v9.2/contacts"
                    "?$select=lastname,_parentcustomerid_value,statecode",
                    timeout=5,
                ).json()["value"]
        finally:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=15)
    assert [(c["lastname"], c["_parentcustomerid_value"], c["statecode"]) for c in contacts] == [
        ("Seeded", ACCOUNT_ID, 1)
    ]
    assert process.returncode == 0, stderr
    assert "WARNING" not in stderr
    assert "(2 rows)" in stdout
    snapshot = json.loads(saved.read_text())
    assert [row["name"] for row in snapshot["account"]] == ["Contoso"]
    assert [row["lastname"] for row in snapshot["contact"]] == ["Seeded"]


def test_seed_data_and_snapshot_keep_decimals_exact(tmp_path):
    """--seed-data reads money as an exact decimal and --snapshot-on-exit writes it back
    exactly (§4.6): ``99999999999999.99`` is no binary float."""
    (tmp_path / "rows.json").write_text(
        '{"contact": [{"lastname": "Rich", "annualincome": 99999999999999.99}]}'
    )
    saved = tmp_path / "saved.json"
    with start(
        tmp_path,
        *("--latency", "zero", "--seed-data", str(tmp_path / "rows.json")),
        *("--snapshot-on-exit", str(saved)),
    ) as emulator:
        process = emulator.process
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert '"annualincome": 99999999999999.99' in saved.read_text()


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("localhost", False),
        ("0.0.0.0", True),  # noqa: S104 - the value under test, never bound
        ("192.168.1.20", True),
        ("emulator.example.test", True),
    ],
)
def test_exposure_warning(host, warned):
    """--host off loopback prints one WARNING line: anyone who can reach it reads its data."""
    warning = exposure_warning(host)
    assert (warning is not None) is warned
    if warning is not None:
        assert warning.startswith("WARNING:")
        assert warning.count("\n") == 1


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("emulator.example.test", x509.DNSName("emulator.example.test")),
        ("192.168.1.20", x509.IPAddress(ipaddress.ip_address("192.168.1.20"))),
    ],
)
def test_server_certificate_covers_host(tmp_path, host, name):
    """The server certificate names the --host, so TLS verification against it works."""
    pki = Pki.create(tmp_path, host)
    cert = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert name in names
    assert x509.DNSName("localhost") in names
