"""The Meltano project in ``meltano.yml``: its settings match the target, and real ``meltano run``.

The run test drives the real ``meltano`` CLI (installed by ``tasks.py test`` into ``.tools/``)
with the real ``tap-spreadsheets`` against the session emulator (docs/singer-sdk.md §3.2). The
connection comes from ``TARGET_DYNAMICS_*`` variables, so nothing secret is in ``meltano.yml``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import typing as t
from pathlib import Path

import jsonschema
import pytest
import yaml

from target_dynamics.target import TargetDynamics

if t.TYPE_CHECKING:
    import requests

    from dataverse_emulator.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
MELTANO = shutil.which("meltano")
STATE_ID = "dev:tap-spreadsheets-to-target-dynamics"
PLACEHOLDER_CONNECTION = {
    "dynamics_url": "https://contoso.crm4.dynamics.com",
    "tenant_id": "11111111-2222-3333-4444-555555555555",
    "client_id": "66666666-7777-8888-9999-000000000000",
}
MELTANO_KINDS = {
    "string": {"string"},
    "integer": {"integer"},
    "number": {"decimal"},
    "boolean": {"boolean"},
    "object": {"object"},
    "array": {"array"},
}


def loader() -> dict[str, t.Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (plugin,) = [p for p in project["plugins"]["loaders"] if p["name"] == "target-dynamics"]
    return plugin


def about_settings() -> dict[str, t.Any]:
    schema = dict(TargetDynamics.config_jsonschema)
    TargetDynamics.append_builtin_config(schema)
    return schema["properties"]


def test_meltano_yml_declares_every_setting_of_the_target() -> None:
    declared = {s["name"]: s for s in loader()["settings"]}
    settings = about_settings()
    assert list(declared) == list(settings)
    for name, spec in settings.items():
        meltano = declared[name]
        assert meltano.get("label"), name
        assert meltano.get("description"), name
        assert meltano.get("sensitive", False) == spec.get("secret", False), name
        allowed = [v for v in spec.get("enum", []) if v is not None]
        if allowed:
            assert meltano["kind"] == "options", name
            assert [o["value"] for o in meltano["options"]] == allowed, name
        else:
            json_type = next(t for t in spec["type"] if t != "null")
            assert meltano["kind"] in MELTANO_KINDS[json_type], name
        if "default" in spec:
            assert meltano.get("value") == spec["default"], name


def test_meltano_yml_uses_only_current_schema_keys() -> None:
    """docs/singer-sdk.md §3.1: no `version`, no deprecated kinds, allowed capabilities only."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    assert "version" not in project
    assert project["requires_meltano"].startswith(">=")
    plugin = loader()
    assert set(plugin["capabilities"]) <= {
        "about",
        "stream-maps",
        "activate-version",
        "batch",
        "soft-delete",
        "hard-delete",
        "datatype-failsafe",
        "schema-flattening",
        "structured-logging",
    }
    assert not [s for s in plugin["settings"] if s["kind"] in {"password", "hidden"}]


@pytest.mark.meltano
@pytest.mark.skipif(MELTANO is None, reason="meltano is not on PATH; tasks.py test installs it")
def test_meltano_yml_validates_against_meltanos_own_schema() -> None:
    assert MELTANO is not None
    venv = Path(MELTANO).parent.parent
    [schema_file] = venv.glob("lib/python3*/site-packages/meltano/schemas/meltano.schema.json")
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(project)] == []


def test_meltano_yml_config_is_valid_for_the_target(emulator: EmulatorServer) -> None:
    config = {**emulator.target_config, **loader()["config"]}
    TargetDynamics(config=config, validate_config=True)


def meltano(
    *args: str, env: dict[str, str], cwd: Path = ROOT, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    assert MELTANO is not None
    return subprocess.run(
        [MELTANO, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def meltano_env(server: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TARGET_DYNAMICS_", "TAP_"))}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["MELTANO_DATABASE_URI"] = f"sqlite:///{tmp_path / 'meltano.db'}"
    for name, value in server.target_config.items():
        env[f"TARGET_DYNAMICS_{name.upper()}"] = str(value)
    env["TARGET_DYNAMICS_DEAD_LETTER_PATH"] = str(tmp_path / "dead-letter.jsonl")
    return env


def contacts(api: requests.Session, server: EmulatorServer) -> list[dict[str, t.Any]]:
    answer = api.get(
        f"{server.api_url}/contacts?$select=emailaddress1,firstname,jobtitle,company,"
        "_parentcustomerid_value",
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()["value"]


def account_ids(api: requests.Session, server: EmulatorServer) -> dict[str, str]:
    answer = api.get(f"{server.api_url}/accounts?$select=accountid,accountnumber", timeout=30)
    answer.raise_for_status()
    return {row["accountnumber"]: row["accountid"] for row in answer.json()["value"]}


def check(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.mark.meltano
@pytest.mark.slow
@pytest.mark.skipif(MELTANO is None, reason="meltano is not on PATH; tasks.py test installs it")
def test_meltano_run_upserts_contacts_and_stores_state(
    reset_emulator: EmulatorServer, api: requests.Session, tmp_path: Path
) -> None:
    env = meltano_env(reset_emulator, tmp_path)
    check(meltano("run", "tap-spreadsheets--accounts", "target-dynamics", env=env))
    check(meltano("run", "tap-spreadsheets", "target-dynamics", env=env))

    landed = {row["emailaddress1"]: row for row in contacts(api, reset_emulator)}
    assert len(landed) == 48  # 51 rows, 3 refused (two too long, one unknown account)
    ada = landed["ada.lovelace@contoso.com"]
    assert (ada["firstname"], ada["jobtitle"]) == ("Ada", "Marketing Manager")
    assert ada["_parentcustomerid_value"] == account_ids(api, reset_emulator)["ACC-1001"]
    assert ada["company"] is None  # the CSV's company name stays out of "Company Phone"
    dead_letters = (tmp_path / "dead-letter.jsonl").read_text(encoding="utf-8").splitlines()
    rejected = [json.loads(line) for line in dead_letters]
    assert sorted(m["record"]["email"] for m in rejected if m["type"] == "RECORD") == [
        "lena.unknown@wingtip.example",
        "maria.longname@fabrikam.com",
        "sven.longtitle@contoso.com",
    ]

    state = meltano("state", "get", STATE_ID, env=env)
    check(state)
    bookmark = json.loads(state.stdout)["singer_state"]["bookmarks"]["email_list"]
    assert bookmark["replication_key"] == "_sdc_last_modified"

    # Second run: a changed export. Changed rows update, new rows create, nothing duplicates.
    with (ROOT / "demo" / "email-list.csv").open(encoding="utf-8") as source:
        rows = [r for r in csv.DictReader(source) if r["email"] in landed]
    rows[0]["job_title"] = "Chief Data Officer"
    rows.append(dict(rows[1], email="new.person@contoso.com", first_name="New"))
    changed = tmp_path / "email-list-v2.csv"
    with changed.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    files = [{"path": str(changed), "format": "csv", "table_name": "email_list"}]
    check(
        meltano(
            "run",
            "tap-spreadsheets",
            "target-dynamics",
            env=env | {"TAP_SPREADSHEETS_FILES": json.dumps(files)},
        )
    )

    after = contacts(api, reset_emulator)
    emails = [row["emailaddress1"] for row in after]
    assert len(emails) == len(set(emails)) == 49
    by_email = {row["emailaddress1"]: row for row in after}
    assert by_email[rows[0]["email"]]["jobtitle"] == "Chief Data Officer"
    assert by_email["new.person@contoso.com"]["firstname"] == "New"


@pytest.mark.meltano
@pytest.mark.skipif(MELTANO is None, reason="meltano is not on PATH; tasks.py test installs it")
def test_id_field_set_by_meltano_config_set_is_one_name_or_a_list(tmp_path: Path) -> None:
    """Issue 10 item 7: `meltano config set` takes a single name and a JSON list alike."""
    shutil.copy(ROOT / "meltano.yml", tmp_path / "meltano.yml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TARGET_DYNAMICS_", "TAP_"))}
    env |= {
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
    }
    config = PLACEHOLDER_CONNECTION | {"client_secret": "placeholder"}
    for value, expected in [
        ('["firstname", "lastname"]', ("firstname", "lastname")),
        ("emailaddress1", ("emailaddress1",)),
    ]:
        check(meltano("config", "set", "target-dynamics", "id_field", value, env=env, cwd=tmp_path))
        printed = meltano(
            "config", "print", "target-dynamics", "--format=json", env=env, cwd=tmp_path
        )
        check(printed)
        id_field = json.loads(printed.stdout)["id_field"]
        target = TargetDynamics(config=config | {"id_field": id_field}, validate_config=True)
        assert target.settings.id_field == expected


@pytest.mark.meltano
@pytest.mark.skipif(MELTANO is None, reason="meltano is not on PATH; tasks.py test installs it")
def test_an_id_field_list_from_the_environment_addresses_rows(
    reset_emulator: EmulatorServer, api: requests.Session, tmp_path: Path
) -> None:
    """Issue 10 item 7: TARGET_DYNAMICS_ID_FIELD='["emailaddress1"]' is a list of columns (the
    columns of the contact's alternate key), not one column named by that text."""
    url = f"{reset_emulator.api_url}/contacts"
    seeded = {"emailaddress1": "ada@contoso.com", "jobtitle": "Analyst"}
    api.post(url, json=seeded, timeout=30).raise_for_status()
    env = meltano_env(reset_emulator, tmp_path) | {
        "TARGET_DYNAMICS_ID_FIELD": '["emailaddress1"]',
        "TARGET_DYNAMICS_ENTITY": "contact",
    }
    schema = {"properties": {name: {"type": "string"} for name in seeded}}
    messages = [
        {"type": "SCHEMA", "stream": "people", "schema": schema, "key_properties": []},
        {"type": "RECORD", "stream": "people", "record": seeded | {"jobtitle": "Engineer"}},
        {"type": "RECORD", "stream": "people", "record": {"emailaddress1": "byron@contoso.com"}},
    ]
    stdin = "".join(json.dumps(m) + "\n" for m in messages)
    check(meltano("invoke", "target-dynamics", env=env, stdin=stdin))

    rows = api.get(f"{url}?$select=emailaddress1,jobtitle", timeout=30).json()["value"]
    assert sorted((r["emailaddress1"], r["jobtitle"]) for r in rows) == [
        ("ada@contoso.com", "Engineer"),
        ("byron@contoso.com", None),
    ]


@pytest.mark.meltano
@pytest.mark.skipif(MELTANO is None, reason="meltano is not on PATH; tasks.py test installs it")
def test_meltano_add_from_the_hub_definition(tmp_path: Path) -> None:
    """Issue 10 item 5: `meltano add loader target-dynamics --from-ref` takes the repository's
    plugin definition: every setting, and a secret or a certificate to choose."""
    (tmp_path / "meltano.yml").write_text(
        "project_id: fresh\ndefault_environment: dev\nenvironments:\n- name: dev\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TARGET_DYNAMICS_", "TAP_"))}
    env |= {
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
    }
    hub = str(ROOT / "plugin" / "target-dynamics.yml")
    add = ("add", "loader", "target-dynamics", "--from-ref", hub, "--no-install")
    check(meltano(*add, env=env, cwd=tmp_path))
    project = yaml.safe_load((tmp_path / "meltano.yml").read_text(encoding="utf-8"))
    [plugin] = project["plugins"]["loaders"]
    assert plugin["pip_url"] == "git+https://github.com/target-dynamics/target-dynamics.git"
    assert [s["name"] for s in plugin["settings"]] == list(about_settings())
    listed = meltano("config", "list", "target-dynamics", env=env, cwd=tmp_path)
    check(listed)
    assert "Group 1: client_id, client_secret, dynamics_url, tenant_id" in listed.stdout
    assert "certificate_private_key, certificate_thumbprint, client_id" in listed.stdout


def config_test(env: dict[str, str]) -> tuple[bool, str]:
    """``meltano config test target-dynamics``: Meltano's verdict, and the loader's lines.

    Meltano 4.4 sends stream ``meltano_test_stream`` (SCHEMA, RECORD, STATE) and judges the
    loader valid when it exits 0 with no line holding "error" (``LoaderTestService``). After
    judging, it calls ``terminate()`` on the finished process, which raises
    ``ProcessLookupError`` once asyncio has reaped it (meltano/core/plugin_test_service.py), so
    its own exit code may be 1 either way: the verdict is read from its log instead.
    """
    done = meltano("--log-level=debug", "config", "test", "target-dynamics", env=env)
    output = done.stdout + done.stderr
    valid = "Test data was written to your target system" in output
    if done.returncode == 0:
        assert valid
        assert "Plugin configuration is valid" in output
    elif valid:  # judged valid, then Meltano's own terminate() failed
        assert "ProcessLookupError" in output, output[-3000:]
    return valid, output


@pytest.mark.meltano
@pytest.mark.skipif(MELTANO is None, reason="meltano is not on PATH; tasks.py test installs it")
def test_meltano_config_test_checks_the_connection(
    reset_emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Good settings pass (token, WhoAmI, the project's tables, privileges) and nothing is
    written; a wrong secret and a read-only user fail, each naming what is wrong."""
    env = meltano_env(reset_emulator, tmp_path)
    valid, output = config_test(env)
    assert valid, output[-3000:]
    assert "Connection test passed" in output
    assert "tables: account, contact" in output
    assert reset_emulator.admin.snapshot().get("contact", []) == []

    wrong = env | {"TARGET_DYNAMICS_CLIENT_SECRET": "not-the-secret"}
    valid, output = config_test(wrong)
    assert not valid
    assert "Connection test failed (1 problem)" in output
    assert "token: Token request refused: invalid_client: AADSTS7000215" in output

    reader = reset_emulator.users.reader
    assert reader is not None
    assert reader.secret is not None
    as_reader = env | {
        "TARGET_DYNAMICS_CLIENT_ID": reader.client_id,
        "TARGET_DYNAMICS_CLIENT_SECRET": reader.secret,
    }
    valid, output = config_test(as_reader)
    assert not valid
    assert "the application user lacks prvCreateContact (Create on contact" in output
    assert reader.secret not in output
    assert reset_emulator.target_config["client_secret"] not in output
