"""The README tells the truth: its settings table is current and every recipe works.

Each ``<!-- recipe: name -->`` JSON block is validated against the target's settings and run
against the emulator with a small input, checking what landed.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from singer_sdk.testing import target_sync_test

from dataverse_emulator.testing import api_session
from target_dynamics.auth import _HINTS
from target_dynamics.clouds import CLOUD_AUTHORITY_HOSTS
from target_dynamics.errors import AuthError
from target_dynamics.reporting import LoadFailed
from target_dynamics.target import TargetDynamics

if t.TYPE_CHECKING:
    from dataverse_emulator.server import EmulatorServer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
RECIPES: dict[str, dict[str, t.Any]] = {
    name: json.loads(body)
    for name, body in re.findall(
        r"<!-- recipe: ([\w-]+) -->\s*```json\n(.*?)```", README, re.DOTALL
    )
}
PLACEHOLDER_CONNECTION = {
    "dynamics_url": "https://contoso.crm4.dynamics.com",
    "tenant_id": "11111111-2222-3333-4444-555555555555",
    "client_id": "66666666-7777-8888-9999-000000000000",
}
CREDENTIALS = ("client_secret", "certificate_private_key", "certificate_thumbprint")


def _settings_table_module() -> t.Any:
    spec = importlib.util.spec_from_file_location(
        "settings_table", ROOT / "scripts" / "settings_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_table_matches_the_target() -> None:
    module = _settings_table_module()
    table = module.render(module.about())
    assert module.replace_section(README, table) == README, (
        "README settings table is stale: run .venv/bin/python scripts/settings_table.py"
    )
    for name in TargetDynamics.config_jsonschema["properties"]:
        assert f"| `{name}` |" in table


def test_about_describes_every_setting() -> None:
    """``--about`` (JSON and Markdown) names and describes every setting, built-ins included."""
    cli = Path(sys.executable).parent / "target-dynamics"
    about = _settings_table_module().about()
    markdown = subprocess.run(
        [str(cli), "--about", "--format=markdown"], capture_output=True, text=True, check=True
    ).stdout
    for name, spec in about["settings"]["properties"].items():
        assert spec.get("description"), name
        assert f"| {name} |" in markdown, name


def test_settings_table_rewrite_replaces_only_the_section() -> None:
    module = _settings_table_module()
    text = f"intro\n{module.START}\nold\n{module.END}\noutro\n"
    assert (
        module.replace_section(text, "new") == f"intro\n{module.START}\nnew\n{module.END}\noutro\n"
    )


def test_the_two_readme_commands_are_the_ci_command() -> None:
    assert "python3 tasks.py demo" in README
    assert "python3 tasks.py test" in README
    assert "exec python3 tasks.py test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_type_gate_command_is_the_one_tasks_runs() -> None:
    assert ".venv/bin/python -m mypy " in README
    assert '_run(PY, "-m", "mypy", env=env)' in (ROOT / "tasks.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_is_valid_config(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = RECIPES[name]
    monkeypatch.chdir(tmp_path)
    if "dead_letter_path" in recipe:  # the README says: its directory must exist
        Path(recipe["dead_letter_path"]).parent.mkdir(parents=True, exist_ok=True)
    config = {**PLACEHOLDER_CONNECTION, **recipe}
    if not any(key in recipe for key in CREDENTIALS):
        config["client_secret"] = "placeholder"
    TargetDynamics(config=config, validate_config=True)


# --- running the recipes against the emulator -------------------------------------------------


def connection(emulator: EmulatorServer, recipe: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The emulator's working connection under ``recipe``, with its paths made absolute."""
    return {**emulator.target_config, **recipe}


def sync(config: t.Mapping[str, t.Any], streams: t.Mapping[str, list[dict[str, t.Any]]]) -> None:
    """Run the target in-process over one SCHEMA and the RECORDs of each stream."""
    lines = []
    for stream, records in streams.items():
        fields = {k for record in records for k in record}
        schema = {"properties": {f: {"type": ["string", "null"]} for f in sorted(fields)}}
        lines.append({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": []})
        lines += [{"type": "RECORD", "stream": stream, "record": r} for r in records]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    target_sync_test(TargetDynamics(config=dict(config)), io.StringIO(text))


def rows(emulator: EmulatorServer, table: str) -> list[dict[str, t.Any]]:
    return emulator.admin.snapshot().get(table, [])


def by_email(emulator: EmulatorServer) -> dict[str, dict[str, t.Any]]:
    return {row["emailaddress1"]: row for row in rows(emulator, "contact")}


def email_list(count: int) -> list[dict[str, t.Any]]:
    """The first ``count`` rows of the demo list, as ``tap-spreadsheets`` sends them."""
    with (ROOT / "demo" / "email-list.csv").open(encoding="utf-8") as source:
        records = list(csv.DictReader(source))[:count]
    for record in records:
        record.pop("account_number")
        record["_sdc_filename"] = "demo/email-list.csv"
    return records


@pytest.fixture
def emu(reset_emulator: EmulatorServer) -> EmulatorServer:
    return reset_emulator


def run_email_upsert(emu: EmulatorServer, tmp_path: Path) -> None:
    config = connection(emu, RECIPES["email-upsert"])
    records = email_list(5)
    sync(config, {"email_list": records})
    landed = by_email(emu)
    assert sorted(landed) == sorted(r["email"] for r in records)
    first = landed[records[0]["email"]]
    assert (first["firstname"], first["jobtitle"]) == (
        records[0]["first_name"],
        "Marketing Manager",
    )
    assert first.get("company") is None
    records[0]["job_title"] = "Chief Data Officer"
    sync(config, {"email_list": records[:1]})
    again = by_email(emu)
    assert len(again) == 5
    assert again[records[0]["email"]]["jobtitle"] == "Chief Data Officer"


def run_update_only(emu: EmulatorServer, tmp_path: Path) -> None:
    sync(connection(emu, RECIPES["email-upsert"]), {"email_list": email_list(2)})
    recipe = {**RECIPES["update-only"], "dead_letter_path": str(tmp_path / "rejected.jsonl")}
    known = email_list(1)[0]["email"]
    records = [{"email": known, "job_title": "Updated"}, {"email": "nobody@example.org"}]
    sync(connection(emu, recipe), {"email_list": records})
    landed = by_email(emu)
    assert len(landed) == 2
    assert landed[known]["jobtitle"] == "Updated"
    rejected = (tmp_path / "rejected.jsonl").read_text(encoding="utf-8")
    assert "nobody@example.org" in rejected
    assert "0x80060891" in rejected


def run_delete(emu: EmulatorServer, tmp_path: Path) -> None:
    sync(connection(emu, RECIPES["email-upsert"]), {"email_list": email_list(3)})
    gone, kept_1, kept_2 = (r["email"] for r in email_list(3))
    records = [{"email": gone}, {"email": "already.gone@example.org"}]
    sync(connection(emu, RECIPES["delete"]), {"unsubscribed": records})
    assert sorted(by_email(emu)) == sorted([kept_1, kept_2])


def run_unsubscribe_deactivate(emu: EmulatorServer, tmp_path: Path) -> None:
    config = connection(emu, RECIPES["unsubscribe-deactivate"])
    people = [{"email": f"p{n}@example.org", "first": f"P{n}"} for n in range(3)]
    sync(config, {"newsletter": people})
    people[1]["_sdc_deleted_at"] = "2024-05-01T10:00:00Z"
    people[2]["first"] = "Renamed"
    sync(config, {"newsletter": [*people, {**people[1], "email": "never@example.org"}]})
    landed = {
        e: (r["firstname"], r["statecode"], r["statuscode"]) for e, r in by_email(emu).items()
    }
    assert landed == {
        "p0@example.org": ("P0", 0, 1),
        "p1@example.org": ("P1", 1, 2),
        "p2@example.org": ("Renamed", 0, 1),
    }


def full_table_sync(config: t.Mapping[str, t.Any], version: int, people: range) -> None:
    """One full-table sync of the ``newsletter`` stream, as a Stitch-style tap sends it."""
    props = {f: {"type": ["string", "null"]} for f in ("email", "last", "dept")}
    schema = {"type": "SCHEMA", "stream": "newsletter", "schema": {"properties": props}}
    end = {"type": "ACTIVATE_VERSION", "stream": "newsletter", "version": version}
    lines = [{**schema, "key_properties": ["email"]}]
    lines += [
        {
            "type": "RECORD",
            "stream": "newsletter",
            "version": version,
            "record": {"email": f"p{n}@example.org", "last": f"P{n}", "dept": "Newsletter"},
        }
        for n in people
    ]
    text = "".join(json.dumps(line) + "\n" for line in [*lines, end])
    target_sync_test(TargetDynamics(config=dict(config)), io.StringIO(text))


def run_full_table_mirror(emu: EmulatorServer, tmp_path: Path) -> None:
    with api_session(emu) as api:
        body = {"lastname": "Sales", "department": "Sales", "emailaddress1": "s@example.org"}
        assert api.post(f"{emu.api_url}/contacts", json=body).ok
    config = connection(emu, RECIPES["full-table-mirror"])
    full_table_sync(config, 1, range(100))
    full_table_sync(config, 2, range(90))
    states = {r["lastname"]: r["statecode"] for r in rows(emu, "contact")}
    assert states == {"Sales": 0} | {f"P{n}": 0 if n < 90 else 1 for n in range(100)}


def run_per_stream(emu: EmulatorServer, tmp_path: Path) -> None:
    sync(connection(emu, RECIPES["email-upsert"]), {"email_list": email_list(1)})
    unsubscribed = email_list(1)[0]["email"]
    sync(
        connection(emu, RECIPES["per-stream"]),
        {
            "crm_accounts": [{"number": "A-1", "company": "Contoso"}],
            "crm_people": [{"email": "ann@contoso.com", "first": "Ann", "last": "Lee"}],
            "unsubscribes": [{"email": unsubscribed}],
        },
    )
    [account] = rows(emu, "account")
    assert (account["accountnumber"], account["name"]) == ("A-1", "Contoso")
    assert list(by_email(emu)) == ["ann@contoso.com"]


def seed_account(emu: EmulatorServer, number: str, name: str) -> str:
    recipe = {"streams": {"accounts": {"entity": "account", "id_field": "accountnumber"}}}
    sync(connection(emu, recipe), {"accounts": [{"accountnumber": number, "name": name}]})
    return next(r["accountid"] for r in rows(emu, "account") if r["accountnumber"] == number)


def run_lookups(emu: EmulatorServer, tmp_path: Path) -> None:
    account_id = seed_account(emu, "ACC-1001", "Contoso")
    records = [{"email": "ann@contoso.com", "account_number": "ACC-1001"}]
    sync(connection(emu, RECIPES["lookups"]), {"email_list": records})
    contact = by_email(emu)["ann@contoso.com"]
    assert contact["parentcustomerid"] == account_id
    assert contact["parentcustomerid@lookuplogicalname"] == "account"


def run_choice_labels(emu: EmulatorServer, tmp_path: Path) -> None:
    records = [{"email": "ann@contoso.com", "channel": "Email", "bulk_email": "do not allow"}]
    sync(connection(emu, RECIPES["choice-labels"]), {"email_list": records})
    contact = by_email(emu)["ann@contoso.com"]
    assert contact["preferredcontactmethodcode"] == 2
    assert contact["donotbulkemail"] is True


def run_dead_letter(emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "output").mkdir()
    config = connection(emu, {**RECIPES["lookups"], **RECIPES["dead-letter"]})
    records = [
        {"email": "ann@contoso.com", "account_number": "ACC-1"},
        {"email": "bob@fabrikam.com", "account_number": "ACC-2"},
    ]
    seed_account(emu, "ACC-1", "Contoso")
    sync(config, {"email_list": records})
    assert list(by_email(emu)) == ["ann@contoso.com"]
    # Fix the cause (the missing account), move the file aside, replay it.
    seed_account(emu, "ACC-2", "Fabrikam")
    shutil.move("output/rejected.jsonl", "output/replay.jsonl")
    replay = Path("output/replay.jsonl").read_text(encoding="utf-8")
    assert '"_dead_letter"' in replay
    target_sync_test(TargetDynamics(config=config), io.StringIO(replay))
    assert sorted(by_email(emu)) == ["ann@contoso.com", "bob@fabrikam.com"]
    assert not Path("output/rejected.jsonl").exists()


def run_sovereign_cloud(emu: EmulatorServer, tmp_path: Path) -> None:
    recipe = RECIPES["sovereign-cloud"]
    target = TargetDynamics(config={**PLACEHOLDER_CONNECTION, "client_secret": "x", **recipe})
    assert CLOUD_AUTHORITY_HOSTS[target.settings.cloud] == "https://login.microsoftonline.us"
    assert target.settings.dynamics_url.endswith(".crm.microsoftdynamics.us")
    for cloud, host in re.findall(
        r"^\| `(\w+)`[^|]*\| `(https://login[^`]+)`", README, re.MULTILINE
    ):
        assert CLOUD_AUTHORITY_HOSTS[cloud] == host


def run_certificate(emu: EmulatorServer, tmp_path: Path) -> None:
    recipe = RECIPES["certificate"]
    assert set(recipe) == {"certificate_private_key", "certificate_thumbprint"}
    users = json.loads((Path(emu.data_dir) / "users.json").read_text(encoding="utf-8"))["users"]
    user = next(u for u in users if "thumbprint" in u)
    config = {k: v for k, v in emu.target_config.items() if k != "client_secret"}
    config |= {
        "client_id": user["client_id"],
        "certificate_private_key": Path(user["private_key"]).read_text(encoding="utf-8"),
        "certificate_thumbprint": user["thumbprint"],
        **RECIPES["email-upsert"],
    }
    sync(config, {"email_list": email_list(1)})
    assert list(by_email(emu)) == [email_list(1)[0]["email"]]


def run_dry_run(emu: EmulatorServer, tmp_path: Path) -> None:
    recipe = {**RECIPES["dry-run"], "dead_letter_path": str(tmp_path / "dry.jsonl")}
    records = [*email_list(2), {"email": "x@example.org", "first_name": "F" * 51}]
    sync(connection(emu, {**RECIPES["email-upsert"], **recipe}), {"email_list": records})
    assert rows(emu, "contact") == []
    assert "0x80044331" in (tmp_path / "dry.jsonl").read_text(encoding="utf-8")


def run_unsubscribe_every_match(emu: EmulatorServer, tmp_path: Path) -> None:
    leads = [{"email": e} for e in ("ann@x.org", "ANN@x.org", "bo@x.org")]
    columns = {"leads": {"columns": {"email": "emailaddress1"}}}
    sync(
        connection(emu, {"entity": "lead", "operation": "create", "streams": columns}),
        {"leads": leads},
    )
    sync(connection(emu, RECIPES["unsubscribe-every-match"]), {"unsubscribes": leads[:1]})
    assert [row["emailaddress1"] for row in rows(emu, "lead")] == ["bo@x.org"]


def run_marketing_list(emu: EmulatorServer, tmp_path: Path) -> None:
    config = connection(emu, RECIPES["marketing-list"])
    sync(config, {"email_list": email_list(5)})
    sync(config, {"email_list": email_list(5)})  # a rerun adds nothing twice
    [found] = rows(emu, "list")
    assert (found["listname"], found["createdfromcode"], found["membercount"]) == (
        "Newsletter",
        2,
        5,
    )


def run_marketing_list_sync(emu: EmulatorServer, tmp_path: Path) -> None:
    config = connection(emu, RECIPES["marketing-list-sync"])
    sync(config, {"email_list": email_list(5)})
    sync(config, {"email_list": email_list(3)})
    [found] = rows(emu, "list")
    assert found["membercount"] == 3
    assert len(rows(emu, "contact")) == 5


def run_associations(emu: EmulatorServer, tmp_path: Path) -> None:
    lead_config = {"entity": "lead", "id_field": "emailaddress1"}
    lead_config["streams"] = {"leads": {"columns": {"email": "emailaddress1"}}}
    sync(connection(emu, lead_config), {"leads": [{"email": "l0@x.org"}, {"email": "l1@x.org"}]})
    people = [
        {"email": "ann@x.org", "leads": "l0@x.org"},
        {"email": "bo@x.org", "leads": "L1@x.org"},
    ]
    sync(connection(emu, RECIPES["associations"]), {"people": people})
    sync(connection(emu, RECIPES["associations"]), {"people": people})  # twice is fine
    contacts = {row["contactid"]: row["emailaddress1"] for row in rows(emu, "contact")}
    leads = {row["leadid"]: row["emailaddress1"] for row in rows(emu, "lead")}
    pairs = sorted(
        (contacts[r["contactid"]], leads[r["leadid"]]) for r in rows(emu, "contactleads")
    )
    assert pairs == [("ann@x.org", "l0@x.org"), ("bo@x.org", "l1@x.org")]


ENTITIES: dict[str, str] = dict(
    re.findall(r"<!-- emulator-entities: ([\w-]+) -->\s*```json\n(.*?)```", README, re.DOTALL)
)


def run_custom_table(emu: EmulatorServer, tmp_path: Path, start: t.Callable[..., t.Any]) -> None:
    entities = tmp_path / "subscriptions.json"
    entities.write_text(ENTITIES["custom-table"], encoding="utf-8")
    private = start(latency="zero", entities_file=entities)
    records = [{"email": "ann@contoso.com", "plan": "Pro", "name": "Ann's plan"}]
    sync(connection(private, RECIPES["custom-table"]), {"subscriptions": records})
    sync(connection(private, RECIPES["custom-table"]), {"subscriptions": records})
    [row] = rows(private, "new_subscription")
    assert (row["new_email"], row["new_plan"], row["new_name"]) == (
        "ann@contoso.com",
        100000001,
        "Ann's plan",
    )


CSV_FILES: dict[str, str] = dict(
    re.findall(r"<!-- recipe-csv: ([\w-]+) -->\s*```csv\n(.*?)```", README, re.DOTALL)
)
TAP = Path(
    os.environ.get(
        "TAP_SPREADSHEETS_BIN", ROOT / ".tools" / "tap-spreadsheets" / "bin" / "tap-spreadsheets"
    )
)


def tap_into_target(csv_text: str, stream: str, config: t.Mapping[str, t.Any], work: Path) -> str:
    """``tap-spreadsheets | target-dynamics`` over ``csv_text``; the target's stderr."""
    (work / f"{stream}.csv").write_text(csv_text, encoding="utf-8")
    files = [{"path": str(work / f"{stream}.csv"), "format": "csv", "table_name": stream}]
    (work / "tap.json").write_text(json.dumps({"files": files}), encoding="utf-8")
    (work / "target.json").write_text(json.dumps(config), encoding="utf-8")
    tapped = subprocess.run(
        [str(TAP), "--config", str(work / "tap.json")],
        capture_output=True,
        check=True,
        timeout=120,
    )
    loaded = subprocess.run(
        [
            str(Path(sys.executable).parent / "target-dynamics"),
            "--config",
            str(work / "target.json"),
        ],
        input=tapped.stdout,
        capture_output=True,
        check=False,
        timeout=120,
    )
    stderr = loaded.stderr.decode("utf-8", "replace")
    assert loaded.returncode == 0, stderr[-3000:]
    return stderr


def run_csv_email_list(
    emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real CSV tap: strings into money, number, date and boolean columns; empty cells."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "output").mkdir()
    recipe = RECIPES["csv-email-list"]
    config = connection(emu, recipe) | {
        "dead_letter_path": str(tmp_path / recipe["dead_letter_path"])
    }
    header = CSV_FILES["csv-email-list"].splitlines()[0]
    bo_before = f"{header}\nbo@fabrikam.com,Bo,Ng,70000,2000,3,1980-01-02,no\n"
    tap_into_target(bo_before, "contacts", config, tmp_path)
    assert by_email(emu)["bo@fabrikam.com"]["annualincome"] == 70000
    stderr = tap_into_target(CSV_FILES["csv-email-list"], "contacts", config, tmp_path)
    assert "Traceback" not in stderr
    landed = by_email(emu)
    assert sorted(landed) == ["ann@contoso.com", "bo@fabrikam.com"]
    ann, bo = landed["ann@contoso.com"], landed["bo@fabrikam.com"]
    assert (ann["annualincome"], ann["creditlimit"], ann["numberofchildren"]) == (55000, 1500.5, 2)
    assert (ann["birthdate"], ann["donotemail"]) == ("1990-05-17", False)
    assert (bo["annualincome"], bo["creditlimit"], bo["birthdate"]) == (None, None, None)
    assert (bo["numberofchildren"], bo["donotemail"]) == (0, True)
    letters = (tmp_path / "output" / "rejected.jsonl").read_text(encoding="utf-8")
    assert "cy@wingtip.example" in letters
    quote = "field 'annual_income': column 'annualincome' (MoneyType) needs a number, got 'lots'"
    assert quote in letters
    assert quote.replace(" got ", " got\n") in README


RUNS: dict[str, t.Callable[..., None]] = {
    "csv-email-list": run_csv_email_list,
    "custom-table": run_custom_table,
    "email-upsert": run_email_upsert,
    "update-only": run_update_only,
    "delete": run_delete,
    "unsubscribe-deactivate": run_unsubscribe_deactivate,
    "full-table-mirror": run_full_table_mirror,
    "per-stream": run_per_stream,
    "lookups": run_lookups,
    "choice-labels": run_choice_labels,
    "dead-letter": run_dead_letter,
    "sovereign-cloud": run_sovereign_cloud,
    "certificate": run_certificate,
    "dry-run": run_dry_run,
    "unsubscribe-every-match": run_unsubscribe_every_match,
    "marketing-list": run_marketing_list,
    "marketing-list-sync": run_marketing_list_sync,
    "associations": run_associations,
}


def test_every_recipe_is_exercised() -> None:
    assert sorted(RECIPES) == sorted(RUNS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_recipe_works_against_the_emulator(
    name: str,
    emu: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator_factory: t.Callable[..., t.Any],
) -> None:
    run = RUNS[name]
    if name in {"dead-letter", "csv-email-list"}:
        run(emu, tmp_path, monkeypatch)
    elif name == "custom-table":
        run(emu, tmp_path, emulator_factory)
    else:
        run(emu, tmp_path)


# --- the troubleshooting table quotes what the target really says -----------------------------

PERSON = {"properties": {"email": {"type": "string"}, "value": {"type": ["string", "null"]}}}


def attempt(
    emu: EmulatorServer, tmp_path: Path, settings: dict[str, t.Any], value: str | None = "x"
) -> str:
    """Run one record; return the dead letters, or the error, as text."""
    config = {
        **emu.target_config,
        "entity": "contact",
        "id_field": "emailaddress1",
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "max_errors": 10,
        **settings,
    }
    messages = [
        {"type": "SCHEMA", "stream": "people", "schema": PERSON, "key_properties": []},
        {"type": "RECORD", "stream": "people", "record": {"email": "a@x.org", "value": value}},
    ]
    text = "".join(json.dumps(m) + "\n" for m in messages)
    try:
        target_sync_test(TargetDynamics(config=config), io.StringIO(text))
    except Exception as exc:  # noqa: BLE001 - the message is what is checked
        return str(exc)
    dead = tmp_path / "dead.jsonl"
    return dead.read_text(encoding="utf-8") if dead.exists() else ""


def columns(column: str) -> dict[str, t.Any]:
    return {"streams": {"people": {"columns": {"email": "emailaddress1", "value": column}}}}


TROUBLES: dict[str, tuple[dict[str, t.Any], str | None, list[str]]] = {
    # symptom -> (settings, value of the record's field, what the README quotes)
    "text too long": (
        columns("jobtitle"),
        "J" * 117,
        ["0x80044331", "column 'jobtitle' is 117 characters long; the maximum is 100"],
    ),
    "invalid choice": (
        columns("preferredcontactmethodcode"),
        "Pigeon",
        [
            "0x8004431A",
            "column 'preferredcontactmethodcode' has no option 'Pigeon' (known: 1=Any, 2=Email, ",
        ],
    ),
    "update of a missing row": (
        {"operation": "update", **columns("jobtitle")},
        "x",
        ["0x80060891", "A record with the specified key values does not exist"],
    ),
    "unknown table": (
        {"entity": "contacs"},
        "x",
        ["Table 'contacs' not found", "Did you mean: contacts, contact?"],
    ),
    "wrong secret": (
        {"client_secret": "not-the-secret"},
        "x",
        [
            "Token request refused: invalid_client: AADSTS7000215",
            "Use the client secret *value*, not its secret ID.",
        ],
    ),
    "bad settings": (
        {"operation": "merge", "opration": "update", "streams": {"people": {"colums": {}}}},
        "x",
        [
            (
                "'merge' is not one of ['upsert', 'create', 'update', 'delete', 'deactivate'] in "
                "config['operation']"
            ),
            "streams.people has unknown key 'colums': did you mean 'columns'?",
            "unknown setting 'opration': did you mean 'operation'?",
        ],
    ),
}


@pytest.mark.parametrize("symptom", sorted(TROUBLES))
def test_troubleshooting_quotes_the_target(
    symptom: str, emu: EmulatorServer, tmp_path: Path
) -> None:
    settings, value, quotes = TROUBLES[symptom]
    said = attempt(emu, tmp_path, settings, value)
    for quote in quotes:
        assert quote in said, (symptom, said)
        assert quote in README, (symptom, quote)
    assert "not-the-secret" not in said


def test_troubleshooting_duplicate_key(emu: EmulatorServer, tmp_path: Path) -> None:
    create = {"operation": "create", **columns("jobtitle")}
    assert attempt(emu, tmp_path, create) == ""
    assert attempt(emu, tmp_path, create) == ""  # a rerun of a create is done, not a duplicate
    emu.admin.reset()
    assert attempt(emu, tmp_path, columns("jobtitle")) == ""  # the row, under another id
    said = attempt(emu, tmp_path, create)
    quotes = ("0x80060892", "A record with the same value for emailaddress1 already exists.")
    for quote in quotes:
        assert quote in said
        assert quote in README


def test_troubleshooting_unknown_column(
    emu: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"streams": {"people": {"columns": {"email": "emailaddress1", "title": "jobtitel"}}}}
    schema = {"properties": {"email": {"type": "string"}, "title": {"type": "string"}}}
    messages = [
        {"type": "SCHEMA", "stream": "people", "schema": schema, "key_properties": []},
        {"type": "RECORD", "stream": "people", "record": {"email": "a@x.org", "title": "x"}},
    ]
    config = {**emu.target_config, "entity": "contact", "id_field": "emailaddress1", **settings}
    text = "".join(json.dumps(m) + "\n" for m in messages)
    target_sync_test(TargetDynamics(config=config), io.StringIO(text))
    quote = (
        "dropping fields the table cannot take for upsert: title (no such column (close: jobtitle))"
    )
    assert any(quote in record.getMessage() for record in caplog.records)
    assert quote in README


def test_troubleshooting_throttling_is_retried_and_reported(emu: EmulatorServer) -> None:
    """§7.8: a 429 with Retry-After is waited out and retried; the run counts it."""
    storm = {"action": "throttle", "operation": "bulk", "retry_after": 1, "times": 1}
    emu.admin.set_faults([storm])
    config = {**emu.target_config, "entity": "contact", "id_field": "emailaddress1"}
    config |= columns("jobtitle")
    messages = [
        {"type": "SCHEMA", "stream": "people", "schema": PERSON, "key_properties": []},
        {"type": "RECORD", "stream": "people", "record": {"email": "a@x.org", "value": "x"}},
    ]
    target = TargetDynamics(config=config)
    target_sync_test(target, io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    assert list(by_email(emu)) == ["a@x.org"]
    assert target.client.stats.retries >= 1
    assert target.client.stats.throttled_seconds >= 1.0
    assert "`Requests: N, retries: N, throttled: N s`" in README


def test_troubleshooting_entra_blips(emu: EmulatorServer, caplog: pytest.LogCaptureFixture) -> None:
    """A token-endpoint 503 is retried and logged as the README quotes it."""
    emu.admin.set_faults([{"action": "error", "status": 503, "operation": "token", "times": 1}])
    messages = [
        {"type": "SCHEMA", "stream": "people", "schema": PERSON, "key_properties": []},
        {"type": "RECORD", "stream": "people", "record": {"email": "a@x.org", "value": "x"}},
    ]
    config = {**emu.target_config, "entity": "contact", "id_field": "emailaddress1"}
    target = TargetDynamics(config=config | columns("jobtitle"))
    target_sync_test(target, io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    assert list(by_email(emu)) == ["a@x.org"]
    [logged] = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert re.search(
        r"^Token request to \S+ failed \(HTTP 503: .*\); retrying in [\d.]+ s$", logged
    )
    for quote in ("failed (HTTP 503: ...); retrying in", "kept failing for", "answered 307"):
        assert quote in README


def test_troubleshooting_several_matches(emu: EmulatorServer, tmp_path: Path) -> None:
    sync(
        connection(emu, {"entity": "lead", "operation": "create", "keyless_create_ids": "random"}),
        {"leads": [{"emailaddress1": "a@x.org"}] * 3},
    )
    said = attempt(emu, tmp_path, {"entity": "lead", "operation": "delete", **columns("jobtitle")})
    quote = "3 lead rows have emailaddress1 = 'a@x.org'; the record names one row"
    assert quote in said
    assert quote in README


def test_emulator_fault_plan_in_the_readme(emulator_factory: t.Callable[..., t.Any]) -> None:
    """The README's fault plan: throttled and lost answers, yet every row lands exactly once."""
    plan = json.loads(
        re.search(r"<!-- emulator-faults: storm -->\s*```json\n(.*?)```", README, re.DOTALL).group(
            1
        )
    )
    private = emulator_factory(latency="zero", faults=plan, seed=7)
    config = connection(private, {**RECIPES["email-upsert"], "batch_size_rows": 1})
    target = TargetDynamics(config=config)
    records = email_list(15)  # the 18th row is one of the bad ones
    lines = [{"type": "SCHEMA", "stream": "email_list", "key_properties": []}]
    lines[0]["schema"] = {"properties": {f: {"type": ["string", "null"]} for f in records[0]}}
    lines += [{"type": "RECORD", "stream": "email_list", "record": r} for r in records]
    target_sync_test(target, io.StringIO("".join(json.dumps(m) + "\n" for m in lines)))
    emails = [row["emailaddress1"] for row in rows(private, "contact")]
    assert sorted(emails) == sorted(r["email"] for r in records)
    assert target.client.stats.retries >= 2
    bulk = private.admin.counters()["requests"]["bulk"]
    assert bulk["429"] == 2
    assert bulk["reset"] >= 1  # answers lost after the write landed, and still no duplicate


def test_troubleshooting_missing_privilege(reset_emulator: EmulatorServer) -> None:
    """The README's 403 row, provoked: the read-only user, rows rejected once, run fails by code."""
    config = connection(reset_emulator, RECIPES["email-upsert"])
    reader = reset_emulator.users.reader
    config["client_id"], config["client_secret"] = reader.client_id, reader.secret
    records = email_list(3)
    lines = [{"type": "SCHEMA", "stream": "email_list", "key_properties": []}]
    lines[0]["schema"] = {"properties": {f: {"type": ["string", "null"]} for f in records[0]}}
    lines += [{"type": "RECORD", "stream": "email_list", "record": r} for r in records]
    with pytest.raises(LoadFailed) as caught:
        target_sync_test(
            TargetDynamics(config=config),
            io.StringIO("".join(json.dumps(m) + "\n" for m in lines)),
        )
    assert "0x80040220 x3" in str(caught.value)
    assert "is missing prvCreateContact privilege" in str(caught.value)
    assert "`403` with `0x80040220`" in README
    assert "is missing prvCreateContact privilege" in README
    assert rows(reset_emulator, "contact") == []


def test_troubleshooting_expired_secret(reset_emulator: EmulatorServer) -> None:
    """The README's expired-secret row, provoked: the target's hint, as the README quotes it."""
    reset_emulator.admin.expire_secret(reset_emulator.target_config["client_id"])
    lines = [{"type": "SCHEMA", "stream": "email_list", "key_properties": [], "schema": {}}]
    lines[0]["schema"] = {"properties": {"email": {"type": "string"}}}
    lines.append({"type": "RECORD", "stream": "email_list", "record": {"email": "a@x.org"}})
    config = connection(reset_emulator, RECIPES["email-upsert"])
    with pytest.raises(AuthError) as caught:
        target_sync_test(
            TargetDynamics(config=config),
            io.StringIO("".join(json.dumps(m) + "\n" for m in lines)),
        )
    assert "AADSTS7000222" in str(caught.value)
    assert _HINTS["AADSTS7000222"] in str(caught.value)
    assert _HINTS["AADSTS7000222"] in README
