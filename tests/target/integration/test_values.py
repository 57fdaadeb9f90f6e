"""Lookups, choice labels, rejections, dead-letter replay, secrets and the CLI, on the emulator."""

from __future__ import annotations

import io
import json
import logging

import pytest
from singer_sdk.testing import target_sync_test

from target_dynamics.reporting import LoadFailed
from target_dynamics.target import TargetDynamics

pytestmark = pytest.mark.usefixtures("reset_emulator")


def stream(name: str, properties: dict, records: list[dict], keys=()) -> str:
    schema = {"properties": {p: {"type": [t, "null"]} for p, t in properties.items()}}
    messages = [{"type": "SCHEMA", "stream": name, "schema": schema, "key_properties": list(keys)}]
    messages += [{"type": "RECORD", "stream": name, "record": r} for r in records]
    messages.append({"type": "STATE", "value": {"done": name}})
    return "".join(json.dumps(m) + "\n" for m in messages)


def run(emulator, text: str, **config) -> tuple[str, TargetDynamics]:
    target = TargetDynamics(config={**emulator.target_config, **config})
    stdout, _ = target_sync_test(target, io.StringIO(text))
    return stdout.read(), target


def seed_accounts(emulator) -> dict[str, str]:
    text = stream(
        "account",
        {"accountnumber": "string", "name": "string"},
        [{"accountnumber": "A1", "name": "Acme"}, {"accountnumber": "A2", "name": "Beta"}],
    )
    run(emulator, text, id_field="accountnumber")
    return {r["accountnumber"]: r["accountid"] for r in emulator.admin.snapshot()["account"]}


def contacts(emulator) -> dict[str, dict]:
    return {r["emailaddress1"]: r for r in emulator.admin.snapshot().get("contact", [])}


def test_lookups_by_guid_by_key_and_polymorphic(reset_emulator):
    """§4.6: `<nav>@odata.bind` by GUID, by alternate key, and to the other table of a customer."""
    accounts = seed_accounts(reset_emulator)
    people = {"emailaddress1": "string", "lastname": "string", "parentcustomerid": "string"}
    run(
        reset_emulator,
        stream("contact", people, [{"emailaddress1": "boss@x.org", "lastname": "Boss"}]),
    )
    boss = contacts(reset_emulator)["boss@x.org"]["contactid"]
    by_guid = {"emailaddress1": "g@x.org", "lastname": "G", "parentcustomerid": accounts["A1"]}
    run(
        reset_emulator,
        stream("contact", people, [by_guid]),
        lookups={"parentcustomerid": {"table": "account"}},
    )
    by_key = {"emailaddress1": "k@x.org", "lastname": "K", "parentcustomerid": "A2"}
    run(
        reset_emulator,
        stream("contact", people, [by_key]),
        lookups={"parentcustomerid": {"table": "account", "key": "accountnumber"}},
    )
    poly = {
        "emailaddress1": "p@x.org",
        "lastname": "P",
        "parentcustomerid": {"table": "contact", "id": boss},
    }
    run(reset_emulator, stream("contact", {**people, "parentcustomerid": "object"}, [poly]))
    rows = contacts(reset_emulator)
    assert rows["g@x.org"]["parentcustomerid"] == accounts["A1"]
    assert rows["g@x.org"]["parentcustomerid@lookuplogicalname"] == "account"
    assert rows["k@x.org"]["parentcustomerid"] == accounts["A2"]
    assert rows["p@x.org"]["parentcustomerid"] == boss
    assert rows["p@x.org"]["parentcustomerid@lookuplogicalname"] == "contact"


def test_choice_labels_and_typed_values(reset_emulator):
    """§4.6: choices by label (case-insensitive) or value; booleans, dates, money."""
    props = {
        "emailaddress1": "string",
        "lastname": "string",
        "gendercode": "string",
        "creditonhold": "string",
        "birthdate": "string",
        "annualincome": "number",
        "numberofchildren": "integer",
    }
    record = {
        "emailaddress1": "c@x.org",
        "lastname": "C",
        "gendercode": "female",
        "creditonhold": "Yes",
        "birthdate": "1990-05-17",
        "annualincome": 1234.5,
        "numberofchildren": 2,
    }
    run(reset_emulator, stream("contact", props, [record]))
    row = contacts(reset_emulator)["c@x.org"]
    assert row["gendercode"] == 2
    assert row["creditonhold"] is True
    assert row["birthdate"] == "1990-05-17"
    assert float(row["annualincome"]) == 1234.5
    assert row["numberofchildren"] == 2


def test_every_rejection_is_dead_lettered_and_replays(reset_emulator, tmp_path, caplog):
    """§4.9/§10.3: bad records never reach the service, server rejections are kept, the rest
    lands; the dead-letter file replays once the cause is fixed; no secret anywhere."""
    dead = tmp_path / "dead.jsonl"
    props = {
        "emailaddress1": "string",
        "lastname": "string",
        "gendercode": "string",
        "birthdate": "string",
        "parentcustomerid": "string",
    }
    good = {"emailaddress1": "ok@x.org", "lastname": "Fine"}
    records = [
        good,
        {"emailaddress1": "long@x.org", "lastname": "x" * 51},
        {"emailaddress1": "choice@x.org", "lastname": "C", "gendercode": "robot"},
        {"emailaddress1": "old@x.org", "lastname": "O", "birthdate": "1600-01-01"},
        {"emailaddress1": "nokey@x.org", "lastname": "N", "parentcustomerid": "A9"},
        {"lastname": "no id"},
    ]
    config = {
        "dead_letter_path": str(dead),
        "id_field": "emailaddress1",
        "lookups": {"parentcustomerid": {"table": "account", "key": "accountnumber"}},
    }
    with caplog.at_level(logging.DEBUG), pytest.raises(LoadFailed, match="5 records were rejected"):
        run(reset_emulator, stream("contact", props, records), **config)
    assert set(contacts(reset_emulator)) == {"ok@x.org"}
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [m["type"] for m in lines] == ["SCHEMA"] + ["RECORD"] * 5
    reasons = {m["record"].get("emailaddress1"): m["record"]["_dead_letter"] for m in lines[1:]}
    assert reasons["long@x.org"]["code"] == "0x80044331"
    assert reasons["choice@x.org"]["code"] == "0x8004431A"
    assert "before 1753-01-01" in reasons["old@x.org"]["error"]
    assert reasons["nokey@x.org"]["status"] == 404
    assert "ID field emailaddress1" in reasons[None]["error"]
    secret = reset_emulator.target_config["client_secret"]
    assert secret not in dead.read_text()
    assert secret not in caplog.text

    seed_accounts(reset_emulator)  # A1, A2 exist now, but A9 still does not
    text = dead.read_text().replace('"A9"', '"A2"')
    replay_dead = tmp_path / "again.jsonl"
    with pytest.raises(LoadFailed, match="4 records were rejected"):
        run(reset_emulator, text, **{**config, "dead_letter_path": str(replay_dead)})
    assert "nokey@x.org" in contacts(reset_emulator)
    assert len(replay_dead.read_text().splitlines()) == 5


def test_cli_run_emits_state_and_keeps_secrets_out(reset_emulator, tmp_path, singer):
    """`target-dynamics --config c.json < input` as Meltano runs it."""
    config = {**reset_emulator.target_config, "entity": "contact"}
    text = stream(
        "people",
        {"emailaddress1": "string", "lastname": "string"},
        [{"emailaddress1": "cli@x.org", "lastname": "Cli"}],
    )
    done = singer.cli(config, text, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"done": "people"}
    assert "cli@x.org" in contacts(reset_emulator)
    secret = reset_emulator.target_config["client_secret"]
    assert secret not in done.stdout + done.stderr

    bad = text.replace('"Cli"', '"' + "x" * 60 + '"')
    failed = singer.cli(config, bad, tmp_path)
    assert failed.returncode == 1
    assert "more than max_errors=0" in failed.stderr
    assert secret not in failed.stdout + failed.stderr


def test_cli_reports_every_config_problem(tmp_path, singer):
    config = {
        "dynamics_url": "http://contoso.crm.dynamics.com",
        "client_id": "x",
        "client_secret": "hunter2-secret",
        "operation": "merge",
        "certificate_thumbprint": "abc",
    }
    done = singer.cli(config, "", tmp_path)
    assert done.returncode == 1
    for words in ("tenant_id", "https", "'merge' is not one of", "both set", "40 hex digits"):
        assert words in done.stderr
    assert "hunter2-secret" not in done.stderr


def test_owner_lookup_to_a_user(reset_emulator):
    """§3.5: owner lookups bind per target table (systemuser or team)."""
    user = reset_emulator.admin.snapshot()["systemuser"][0]["systemuserid"]
    props = {"emailaddress1": "string", "lastname": "string", "ownerid": "object"}
    record = {
        "emailaddress1": "o@x.org",
        "lastname": "O",
        "ownerid": {"table": "systemuser", "id": user},
    }
    run(reset_emulator, stream("contact", props, [record]))
    row = contacts(reset_emulator)["o@x.org"]
    assert row["ownerid"] == user
    assert row["ownerid@lookuplogicalname"] == "systemuser"


def test_dry_run_checks_everything_and_writes_nothing(reset_emulator):
    props = {"emailaddress1": "string", "lastname": "string", "gendercode": "string"}
    records = [
        {"emailaddress1": "d@x.org", "lastname": "D", "gendercode": "Male"},
        {"emailaddress1": "e@x.org", "lastname": "E", "gendercode": "robot"},
    ]
    before = reset_emulator.admin.counters()
    with pytest.raises(LoadFailed, match="1 records were rejected"):
        run(reset_emulator, stream("contact", props, records), dry_run=True)
    assert contacts(reset_emulator) == {}
    after = reset_emulator.admin.counters()
    assert before != after  # metadata was read
