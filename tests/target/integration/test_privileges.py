"""The target as a restricted, expired or throttled application user (reference §1.3, §4.9,
§7.1, §8): in-process ``TargetDynamics`` against the emulator over HTTPS."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from singer_sdk.testing import target_sync_test

from dataverse_emulator.state.budget import Limits
from target_dynamics.errors import AuthError
from target_dynamics.reporting import LoadFailed
from target_dynamics.target import TargetDynamics

SCHEMA = {
    "properties": {
        "id": {"type": ["string", "null"]},
        "last": {"type": ["string", "null"]},
    }
}
COLUMNS = {"id": "contactid", "last": "lastname"}


def records(count: int, start: int = 1) -> list[dict]:
    return [{"id": str(uuid.UUID(int=n)), "last": f"L{n}"} for n in range(start, start + count)]


def run(emulator, rows: list[dict], user=None, **config) -> TargetDynamics:
    """Run the target on ``rows`` (stream ``people`` → contacts), as ``user`` when given."""
    settings = {
        **emulator.target_config,
        "entity": "contacts",
        "operation": "upsert",
        "id_field": "contactid",
        "streams": {"people": {"columns": COLUMNS}},
        **config,
    }
    if user is not None:
        settings["client_id"], settings["client_secret"] = user.client_id, user.secret
    messages = [{"type": "SCHEMA", "stream": "people", "schema": SCHEMA, "key_properties": []}]
    messages += [{"type": "RECORD", "stream": "people", "record": r} for r in rows]
    target = TargetDynamics(config=settings)
    target_sync_test(target, io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    return target


def dead_letters(path) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line["record"]["_dead_letter"] for line in lines if line["type"] == "RECORD"]


def write_requests(counters: dict) -> dict:
    """Web API write traffic by kind and status (reads and metadata left out)."""
    return {
        kind: outcomes
        for kind, outcomes in counters["requests"].items()
        if kind in {"single", "batch", "bulk"}
    }


@pytest.mark.usefixtures("reset_emulator")
def test_upsert_as_reader_is_rejected_once_per_row(reset_emulator, tmp_path, caplog):
    """§4.9: 403 0x80040220 is permanent: the UpsertMultiple chunk fails once, its rows are
    isolated once through $batch (each part 403, naming prvCreateContact), never retried;
    every row goes to the dead-letter file and the run fails naming the file."""
    dead = tmp_path / "dead.jsonl"
    caplog.set_level(logging.WARNING)
    with pytest.raises(LoadFailed, match=r"3 records were rejected.*dead\.jsonl"):
        run(reset_emulator, records(3), reset_emulator.users.reader, dead_letter_path=str(dead))
    letters = dead_letters(dead)
    assert len(letters) == 3
    for letter in letters:
        assert (letter["status"], letter["code"]) == (403, "0x80040220")
        assert "is missing prvCreateContact privilege" in letter["error"]
    counters = reset_emulator.admin.counters()
    assert write_requests(counters) == {"bulk": {"403": 1}, "batch": {"200": 1}}
    assert counters["operations"]["batch"] == 3  # one part per row, sent once
    assert reset_emulator.admin.snapshot().get("contact", []) == []
    assert "prvCreateContact" in caplog.text
    assert "0x80040220" in caplog.text


@pytest.mark.usefixtures("reset_emulator")
def test_delete_without_privilege_is_rejected_once(reset_emulator, tmp_path):
    """§4.9 via $batch only (deletes never go in bulk): one part per row, each 403 once."""
    run(reset_emulator, records(2))
    before = reset_emulator.admin.counters()
    dead = tmp_path / "dead.jsonl"
    with pytest.raises(LoadFailed, match="2 records were rejected"):
        run(
            reset_emulator,
            records(2),
            reset_emulator.users.reader,
            operation="delete",
            dead_letter_path=str(dead),
        )
    after = reset_emulator.admin.counters()
    batches = [c["requests"].get("batch", {}).get("200", 0) for c in (before, after)]
    assert batches[1] - batches[0] == 1
    assert after["operations"]["batch"] - before["operations"].get("batch", 0) == 2
    assert {letter["code"] for letter in dead_letters(dead)} == {"0x80040220"}
    assert all("prvDeleteContact" in letter["error"] for letter in dead_letters(dead))
    assert len(reset_emulator.admin.snapshot()["contact"]) == 2


@pytest.mark.usefixtures("reset_emulator")
def test_role_granting_create_but_not_write(reset_emulator, tmp_path):
    """§1.7: a role with create but not write: new rows land, existing rows are rejected with
    prvWriteContact (upsert = update when the row exists)."""
    user = reset_emulator.user(1)
    run(reset_emulator, records(1))
    reset_emulator.admin.set_role(user.client_id, {"tables": {"contact": ["read", "create"]}})
    dead = tmp_path / "dead.jsonl"
    with pytest.raises(LoadFailed, match="1 records were rejected"):
        run(reset_emulator, records(2), user, dead_letter_path=str(dead))
    [letter] = dead_letters(dead)
    assert "is missing prvWriteContact privilege" in letter["error"]
    assert len(reset_emulator.admin.snapshot()["contact"]) == 2


@pytest.mark.usefixtures("reset_emulator")
def test_bypass_without_privilege_is_rejected(reset_emulator, tmp_path):
    """§8: ``bypass_business_logic`` needs prvBypassCustomBusinessLogic; a role without it has
    every row rejected with that privilege named, once."""
    user = reset_emulator.user(1)
    reset_emulator.admin.set_role(user.client_id, {"tables": {"*": ["read", "create", "write"]}})
    dead = tmp_path / "dead.jsonl"
    with pytest.raises(LoadFailed, match="2 records were rejected"):
        run(
            reset_emulator,
            records(2),
            user,
            bypass_business_logic=True,
            dead_letter_path=str(dead),
        )
    assert all("prvBypassCustomBusinessLogic" in x["error"] for x in dead_letters(dead))
    counters = reset_emulator.admin.counters()
    assert counters["requests"]["batch"] == {"200": 1}
    assert counters["operations"]["batch"] == 2  # each row once, never retried
    assert counters["requests"].get("bulk", {}).get("403", 0) <= 1


@pytest.mark.usefixtures("reset_emulator")
def test_expired_secret_fails_at_once_without_the_secret(reset_emulator, capsys, caplog):
    """§1.3: AADSTS7000222 → the run stops at the first token request with a hint; the secret
    is printed nowhere."""
    user = reset_emulator.user(1)
    reset_emulator.admin.expire_secret(user.client_id)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError, match="AADSTS7000222") as caught:
        run(reset_emulator, records(1), user)
    message = str(caught.value)
    assert "The client secret has expired: create a new one" in message  # the target's hint
    captured = capsys.readouterr()
    for text in (message, repr(caught.value), captured.out, captured.err, caplog.text):
        assert user.secret not in text
    counters = reset_emulator.admin.counters()
    assert counters["token_requests"] == 1
    assert counters["token_errors"] == 1
    assert write_requests(counters) == {}


def test_honouring_retry_after_never_extends_the_wait(emulator_factory):
    """§7.1: a client that waits ``Retry-After`` before sending again never meets the
    extension; every row lands despite 429s. Parallel workers share one pause; time scale
    0.005: a 1.5 s window of 8 requests."""
    server = emulator_factory(latency="realistic", time_scale=0.005, limits=Limits(requests=8))
    target = run(server, records(800), batch_size_rows=400)
    counters = server.admin.counters()
    assert set(counters["requests"]["bulk"]) <= {"204", "429"}
    assert counters["throttled"] >= 1
    assert counters["throttle_extensions"] == 0
    assert len(server.admin.snapshot()["contact"]) == 800
    assert target.report.totals.rejected == 0
