"""Exactly once on every path: lost answers, reruns, replays and several matches (§10.2).

Each test runs the target on Singer messages against the emulator over HTTPS, with its faults:
the mapper, the writer's addressing and the emulator decide what lands, never hand-built rows.
"""

from __future__ import annotations

import typing as t

import pytest

from dataverse_emulator.state.store import Kind, RecordRule
from target_dynamics.target import TargetDynamics

if t.TYPE_CHECKING:
    from pathlib import Path

    from target_dynamics.reporting import LoadFailed

pytestmark = pytest.mark.usefixtures("reset_emulator")

FIELDS = ("email", "last", "first")
COLUMNS = {"email": "emailaddress1", "last": "lastname", "first": "firstname"}
ID_FIELDS = {
    # how a create names its row -> id_field (none: keyless)
    "keyless": None,
    "alternate key": "emailaddress1",
    "matched column": "lastname",
}


def people(count: int, start: int = 0) -> list[dict]:
    return [
        {"email": f"p{i}@x.org", "last": f"Last{i}", "first": f"First{i}"}
        for i in range(start, start + count)
    ]


def stream(records: list[dict], name: str = "people") -> list[dict]:
    schema = {"properties": {f: {"type": ["string", "null"]} for f in FIELDS}}
    messages = [{"type": "SCHEMA", "stream": name, "schema": schema, "key_properties": []}]
    return messages + [{"type": "RECORD", "stream": name, "record": r} for r in records]


def load(
    singer, emulator, messages: list[dict] | str, **config: t.Any
) -> tuple[TargetDynamics, LoadFailed | None]:
    """Run the target on ``messages`` (or a file's text); return it with the run's failure, if
    any."""
    settings = {
        **emulator.target_config,
        "entity": "contact",
        "streams": {"people": {"columns": COLUMNS}},
        "progress_interval_seconds": 0,
        **{k: v for k, v in config.items() if v is not None},
    }
    target = TargetDynamics(config=settings)
    _, failure = singer.run(target, messages)
    return target, failure


def rows(emulator, table: str = "contact") -> list[dict]:
    return emulator.admin.snapshot().get(table, [])


def emails(emulator) -> list[str]:
    return sorted(r["emailaddress1"] for r in rows(emulator))


@pytest.mark.parametrize("naming", list(ID_FIELDS))
def test_a_create_whose_bulk_answer_was_lost_lands_once(reset_emulator, naming, singer):
    """Item 1: CreateMultiple lands, its answer is lost, the retry answers "already exists"."""
    reset_emulator.admin.set_faults([{"action": "drop", "operation": "bulk", "times": 1}])
    target, failure = load(
        singer, reset_emulator, stream(people(30)), operation="create", id_field=ID_FIELDS[naming]
    )
    assert failure is None
    assert emails(reset_emulator) == sorted(r["email"] for r in people(30))
    totals = target.report.totals
    assert (totals.landed, totals.rejected, totals.created) == (30, 0, 30)


def test_a_create_whose_batch_answer_was_lost_lands_once(reset_emulator, singer):
    """Item 1, ``$batch`` POSTs: a plug-in error sends the chunk to ``$batch``, whose answer is
    lost; the replay finds the good rows there, the bad one is still rejected."""
    reset_emulator.env.store.record_rules.append(
        RecordRule("contact", {"lastname": "Last3"}, Kind.BAD_REQUEST, "0x80040265", "Plug-in.")
    )
    reset_emulator.admin.set_faults([{"action": "drop", "entity_set": "$batch", "times": 1}])
    target, failure = load(singer, reset_emulator, stream(people(10)), operation="create")
    assert failure is not None
    assert "0x80040265" in str(failure)
    assert emails(reset_emulator) == sorted(r["email"] for r in people(10) if r["last"] != "Last3")
    totals = target.report.totals
    assert (totals.landed, totals.rejected, totals.created) == (9, 1, 9)


@pytest.mark.parametrize("naming", list(ID_FIELDS))
def test_rerunning_creates_neither_duplicates_nor_rejects(reset_emulator, naming, singer):
    """Item 3: a rerun of the same input (a crash before STATE) lands, counted once."""
    id_field = ID_FIELDS[naming]
    load(singer, reset_emulator, stream(people(20)), operation="create", id_field=id_field)
    target, failure = load(
        singer, reset_emulator, stream(people(25)), operation="create", id_field=id_field
    )
    assert failure is None
    assert emails(reset_emulator) == sorted(r["email"] for r in people(25))
    assert (target.report.totals.landed, target.report.totals.rejected) == (25, 0)


def test_random_keyless_ids_are_an_opt_out_that_duplicates_on_rerun(reset_emulator, singer):
    """``keyless_create_ids: random``: every record a new row, identical ones included."""
    records = [{**r, "email": None} for r in [*people(3), people(1)[0]]]  # no alternate key
    load(singer, reset_emulator, stream(records), operation="create", keyless_create_ids="random")
    assert len(rows(reset_emulator)) == 4
    load(singer, reset_emulator, stream(records), operation="create")
    assert len(rows(reset_emulator)) == 7  # content ids: the three distinct records, once


def test_identical_keyless_records_are_one_row(reset_emulator, singer):
    """Content ids: the same record twice in a stream names one row (documented)."""
    records = [*people(2), people(1)[0]]
    target, failure = load(singer, reset_emulator, stream(records), operation="create")
    assert failure is None
    assert emails(reset_emulator) == ["p0@x.org", "p1@x.org"]
    assert target.report.totals.landed == 3


def test_replaying_a_dead_letter_file_never_duplicates(reset_emulator, tmp_path: Path, singer):
    """Item 2: keyless creates rejected by a plug-in are fixed and replayed, twice (a replay
    that crashed and was run again): each lands once."""
    dead = tmp_path / "dead.jsonl"
    reset_emulator.env.store.record_rules.append(
        RecordRule("contact", {"lastname": "Last3"}, Kind.BAD_REQUEST, "0x80040265", "Plug-in.")
    )
    records = [{**r, "email": None} for r in people(6)]  # keyless: no alternate key either
    _, failure = load(
        singer, reset_emulator, stream(records), operation="create", dead_letter_path=str(dead)
    )
    assert failure is not None
    assert len(rows(reset_emulator)) == 5
    reset_emulator.env.store.record_rules.clear()  # the cause is fixed
    for _ in range(2):
        replay, failure = load(singer, reset_emulator, dead.read_text(), operation="create")
        assert failure is None
        assert (replay.report.totals.landed, replay.report.totals.rejected) == (1, 0)
    assert sorted(r["lastname"] for r in rows(reset_emulator)) == [f"Last{i}" for i in range(6)]


def test_a_create_on_someone_elses_key_is_rejected_not_counted(reset_emulator, api, singer):
    """An alternate key held by another row (412 ``0x80060892``) is a real rejection."""
    url = f"{reset_emulator.api_url}/contacts"
    assert api.post(url, json={"emailaddress1": "p1@x.org", "lastname": "Theirs"}).ok
    target, failure = load(
        singer, reset_emulator, stream(people(3)), operation="create", id_field="emailaddress1"
    )
    assert failure is not None
    assert "0x80060892" in str(failure)
    assert sorted(r["lastname"] for r in rows(reset_emulator)) == ["Last0", "Last2", "Theirs"]
    assert (target.report.totals.landed, target.report.totals.rejected) == (2, 1)


def seed_leads(api, emulator, *emails_: str) -> None:
    for n, email in enumerate(emails_):
        body = {"emailaddress1": email, "lastname": f"Lead{n}"}
        assert api.post(f"{emulator.api_url}/leads", json=body).ok


def unsubscribe(
    singer, emulator, *emails_: str, **config: t.Any
) -> tuple[TargetDynamics, Exception]:
    records = [{"email": e} for e in emails_]
    text = stream(records, name="leads")
    return load(
        singer,
        emulator,
        text,
        entity="lead",
        operation="delete",
        id_field="emailaddress1",
        streams={"leads": {"columns": {"email": "emailaddress1"}}},
        **config,
    )


def test_several_matches_are_rejected_naming_the_count(reset_emulator, api, singer):
    """Item 10: a delete by a non-key email that 3 leads share never picks one silently."""
    seed_leads(api, reset_emulator, "a@x.org", "A@x.org", "a@x.org", "b@x.org")
    target, failure = unsubscribe(singer, reset_emulator, "a@x.org", "b@x.org")
    assert failure is not None
    assert "3 lead rows have emailaddress1 = 'a@x.org'" in str(failure)
    assert sorted(r["lastname"] for r in rows(reset_emulator, "lead")) == [
        "Lead0",
        "Lead1",
        "Lead2",
    ]
    assert (target.report.totals.landed, target.report.totals.rejected) == (1, 1)


def test_multiple_matches_all_applies_the_operation_to_every_match(reset_emulator, api, singer):
    """``multiple_matches: all``: the unsubscribe removes every lead with the address."""
    seed_leads(api, reset_emulator, "a@x.org", "A@x.org", "a@x.org", "b@x.org")
    target, failure = unsubscribe(singer, reset_emulator, "a@x.org", multiple_matches="all")
    assert failure is None
    assert [r["lastname"] for r in rows(reset_emulator, "lead")] == ["Lead3"]
    assert (target.report.totals.landed, target.report.totals.deleted) == (1, 3)


def test_upsert_by_a_matched_column_updates_every_match_or_creates_once(
    reset_emulator, api, singer
):
    seed_leads(api, reset_emulator, "a@x.org", "a@x.org")
    text = stream([{"email": "a@x.org", "first": "New"}, {"email": "c@x.org", "first": "C"}])
    config = {
        "entity": "lead",
        "id_field": "emailaddress1",
        "multiple_matches": "all",
        "streams": {"people": {"columns": {"email": "emailaddress1", "first": "firstname"}}},
    }
    for _ in range(2):  # the rerun finds the created row instead of creating another
        _, failure = load(singer, reset_emulator, text, **config)
        assert failure is None
    found = sorted((r["emailaddress1"], r.get("firstname")) for r in rows(reset_emulator, "lead"))
    assert found == [("a@x.org", "New"), ("a@x.org", "New"), ("c@x.org", "C")]
