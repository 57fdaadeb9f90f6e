"""The sink with stand-in client and writer: SCHEMA checks, batches, rejections (§10.3)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the stand-ins in loader_fakes.py
import contextlib
import io
import json
import logging

import loader_fakes
import pytest
from singer_sdk.testing import target_sync_test

from target_dynamics.errors import MetadataError, WebApiError
from target_dynamics.identity import IdMode
from target_dynamics.metadata import MetadataCache
from target_dynamics.plans import Operation
from target_dynamics.reporting import LoadFailed, RunReport
from target_dynamics.target import TargetDynamics

BASE = {
    "dynamics_url": "https://contoso.crm.dynamics.com",
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "00000000-0000-0000-0000-000000000001",
    "client_secret": "s3cr3t-value",
    "entity": "contact",
    "progress_interval_seconds": 0,
}
SCHEMA = {
    "type": "SCHEMA",
    "stream": "people",
    "key_properties": ["email"],
    "schema": {
        "properties": {
            "email": {"type": "string"},
            "first": {"type": ["string", "null"]},
            "gender": {"type": ["string", "integer", "null"]},
            "fullname": {"type": "string"},
            "nickname": {"type": "string"},
            "_sdc_extracted_at": {"type": "string"},
        }
    },
}
COLUMNS = {
    "email": "emailaddress1",
    "first": "firstname",
    "gender": "gendercode",
    "fullname": "fullname",
    "nickname": "nickname",
}


def only(*fields: str) -> dict:
    """Per-stream settings mapping just ``fields`` (every `columns` key must name a field)."""
    columns = {**COLUMNS, "parentcustomerid": "parentcustomerid"}
    return {"people": {"columns": {f: columns[f] for f in fields}}}


def make_target(writer=None, **config):
    target = TargetDynamics(config={**BASE, "streams": {"people": {"columns": COLUMNS}}, **config})
    client = loader_fakes.FakeClient()
    target._client = client
    target._metadata = MetadataCache(client)
    target._writer = writer or loader_fakes.FakeWriter()
    return target


def lines(*messages) -> io.StringIO:
    return io.StringIO("".join(json.dumps(m) + "\n" for m in messages))


def record(**values):
    return {"type": "RECORD", "stream": "people", "record": values}


STATE = {"type": "STATE", "value": {"bookmarks": {"people": 3}}}


def test_upsert_by_a_column_hands_the_writer_the_values_to_match(caplog):
    """§4.3: a non-key ID field reaches the writer as the key to match (the writer queries)."""
    writer = loader_fakes.FakeWriter()
    target = make_target(writer)
    with caplog.at_level(logging.WARNING):
        stdout, _ = target_sync_test(
            target,
            lines(
                SCHEMA,
                record(email="old@x.org", first="Ann", gender="female", fullname="x", nickname="y"),
                record(email="new@x.org", first="Bo", gender=1),
                STATE,
            ),
        )
    plan, rows = writer.calls[0]
    assert (plan.operation, plan.id_mode) == (Operation.UPSERT, IdMode.MATCH)
    assert [r.key for r in rows] == [{"emailaddress1": "old@x.org"}, {"emailaddress1": "new@x.org"}]
    assert rows[0].payload == {"emailaddress1": "old@x.org", "firstname": "Ann", "gendercode": 2}
    assert json.loads(stdout.read().strip().splitlines()[-1]) == STATE["value"]
    dropped = [r.message for r in caplog.records if "dropping fields" in r.message]
    assert len(dropped) == 1
    assert "fullname (read-only on create" not in dropped[0]  # upsert wording
    assert "fullname (not valid for upsert" in dropped[0]
    assert "nickname (no such column" in dropped[0]


def test_rejected_records_go_to_the_dead_letter_and_fail_after_the_rest_landed(tmp_path):
    """§10.3: a failing record is rejected, the others land, the run fails at the end."""
    dead = tmp_path / "dead.jsonl"

    def reject(plan, row):
        if row.payload.get("firstname") == "Plugin":
            return WebApiError(400, "0x80040265", "plug-in said no")
        return None

    writer = loader_fakes.FakeWriter(reject=reject)
    target = make_target(writer, dead_letter_path=str(dead))
    with pytest.raises(LoadFailed, match="2 records were rejected, more than max_errors=0"):
        target_sync_test(
            target,
            lines(
                SCHEMA,
                record(email="a@x.org", first="x" * 60),
                record(email="b@x.org", first="Plugin"),
                record(email="c@x.org", first="Fine"),
                STATE,
            ),
        )
    assert [r["emailaddress1"] for r in writer.rows["contacts"].values()] == ["c@x.org"]
    messages = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [m["type"] for m in messages] == ["SCHEMA", "RECORD", "RECORD"]
    assert "_dead_letter" in messages[0]["schema"]["properties"]
    first, second = messages[1]["record"], messages[2]["record"]
    assert first["first"] == "x" * 60
    assert first["_dead_letter"]["code"] == "0x80044331"
    assert second["_dead_letter"]["code"] == "0x80040265"
    assert second["_dead_letter"]["status"] == 400
    assert "s3cr3t" not in dead.read_text()


def test_dead_letter_replays_cleanly(tmp_path):
    """The dead-letter file is a valid target input; `_dead_letter` is ignored on replay."""
    dead = tmp_path / "dead.jsonl"
    writer = loader_fakes.FakeWriter(
        reject=lambda plan, row: (
            WebApiError(400, "0x80040265", "no") if row.payload.get("firstname") == "P" else None
        )
    )
    with pytest.raises(LoadFailed):
        target_sync_test(
            make_target(writer, dead_letter_path=str(dead)),
            lines(SCHEMA, record(email="b@x.org", first="P"), record(email="c@x.org", first="Q")),
        )
    replay_writer = loader_fakes.FakeWriter()
    target_sync_test(make_target(replay_writer), io.StringIO(dead.read_text()))
    [(_, rows)] = replay_writer.calls
    assert [r.payload for r in rows] == [{"emailaddress1": "b@x.org", "firstname": "P"}]


def test_max_errors_tolerates_rejections():
    target = make_target(max_errors=1)
    stdout, _ = target_sync_test(
        target, lines(SCHEMA, record(email="a@x.org", gender="robot"), STATE)
    )
    assert json.loads(stdout.read().strip()) == STATE["value"]
    assert target.report.totals.rejected == 1


def test_transient_failures_withhold_state_and_fail():
    """§10.3: STATE never passes records that could not be written."""
    writer = loader_fakes.FakeWriter(reject=lambda plan, row: WebApiError(503, None, "unavailable"))
    target = make_target(writer, max_errors=10)
    target_sync_test(target, lines(SCHEMA, record(email="a@x.org"), STATE), finalize=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(LoadFailed, match="could not be written"):
        target.process_endofpipe()
    assert out.getvalue() == ""


def test_duplicate_keys_reach_the_writer_in_order():
    """The writer merges rows that address one record (later wins); the sink keeps the order."""
    writer = loader_fakes.FakeWriter()
    target = make_target(
        writer,
        id_field="contactid",
        streams={"people": {"columns": {"id": "contactid", "first": "firstname"}}},
    )
    schema = {
        **SCHEMA,
        "key_properties": ["id"],
        "schema": {"properties": {"id": {"type": "string"}, "first": {"type": "string"}}},
    }
    guid = "22222222-2222-4222-8222-222222222222"
    target_sync_test(
        target,
        lines(
            schema,
            {"type": "RECORD", "stream": "people", "record": {"id": guid, "first": "A"}},
            {"type": "RECORD", "stream": "people", "record": {"id": guid, "first": "B"}},
        ),
    )
    [(_, rows)] = writer.calls
    assert [(r.key, dict(r.payload)) for r in rows] == [
        ({"contactid": guid}, {"firstname": "A"}),
        ({"contactid": guid}, {"firstname": "B"}),
    ]
    assert target.report.totals.landed == 2


def test_dry_run_writes_nothing_and_reports():
    writer = loader_fakes.FakeWriter()
    target = make_target(writer, dry_run=True)
    target_sync_test(
        target,
        lines(SCHEMA, record(email="a@x.org"), record(email="b@x.org", gender="x")),
        finalize=False,
    )
    with pytest.raises(LoadFailed):
        target.process_endofpipe()
    assert writer.calls == []
    totals = target.report.totals
    assert (totals.landed, totals.rejected) == (1, 1)


def test_columns_mapping_sends_only_the_fields_it_names(caplog):
    """A tap's `company` must not land in contact.company (Company Phone) by name alone."""
    writer = loader_fakes.FakeWriter()
    schema = {
        **SCHEMA,
        "schema": {"properties": {"email": {"type": "string"}, "company": {"type": "string"}}},
    }
    target = make_target(writer, streams={"people": {"columns": {"email": "emailaddress1"}}})
    with caplog.at_level(logging.WARNING):
        target_sync_test(target, lines(schema, record(email="a@x.org", company="Contoso")))
    _, rows = writer.calls[0]
    assert rows[0].payload == {"emailaddress1": "a@x.org"}
    dropped = [r.message for r in caplog.records if "dropping fields" in r.message]
    assert "company (not in the stream's `columns` mapping)" in dropped[0]


SCHEMA_FAILURES = [
    (
        {"streams": {"people": {"columns": COLUMNS, "id_field": "emailadress1"}}},
        "id_field 'emailadress1' is not a column of contact (close: emailaddress1",
    ),
    ({"entity": "contcts"}, "Table 'contcts' not found in Dataverse"),
    ({"extra_fields": "error"}, "field 'nickname': no such column"),
    (
        {"id_field": ["emailaddress1", "firstname"]},
        (
            "is not an alternate key of contact "
            "(active keys: contact_email_name: emailaddress1, lastname)"
        ),
    ),
]


@pytest.mark.parametrize(("config", "words"), SCHEMA_FAILURES)
def test_schema_problems_fail_at_once(config, words):
    target = make_target(**config)
    with pytest.raises(MetadataError) as caught:
        target_sync_test(target, lines(SCHEMA))
    assert words in str(caught.value)


def test_type_mismatch_names_stream_column_types_and_fix():
    schema = {
        **SCHEMA,
        "schema": {"properties": {"email": {"type": "string"}, "first": {"type": "object"}}},
    }
    with pytest.raises(MetadataError) as caught:
        target_sync_test(make_target(streams=only("email", "first")), lines(schema))
    text = str(caught.value)
    assert "stream 'people'" in text
    assert "field 'first' is JSON object but column 'firstname' is StringType" in text
    assert "__NULL__" in text


def test_update_without_id_field_fails():
    schema = {**SCHEMA, "key_properties": []}
    with pytest.raises(MetadataError, match="update needs id_field"):
        target_sync_test(make_target(operation="update"), lines(schema))


@pytest.mark.parametrize(("setting", "distinct_ids"), [("content", 2), ("random", 0)])
def test_keyless_upsert_creates_with_content_or_random_ids(setting, distinct_ids):
    """Content ids: identical records name one row; random: the writer picks each id."""
    writer = loader_fakes.FakeWriter()
    schema = {**SCHEMA, "key_properties": []}
    records = [record(email="a@x.org"), record(email="a@x.org"), record(email="b@x.org")]
    target_sync_test(make_target(writer, keyless_create_ids=setting), lines(schema, *records))
    [(plan, rows)] = writer.calls
    assert plan.operation == Operation.CREATE
    keys = [r.key for r in rows]
    assert len({str(k) for k in keys if k}) == distinct_ids
    if setting == "content":
        assert keys[0] == keys[1] != keys[2]


def test_alternate_key_upsert_and_delete():
    writer = loader_fakes.FakeWriter()
    config = {
        "id_field": ["emailaddress1", "lastname"],
        "streams": {
            "people": {
                "columns": {"email": "emailaddress1", "last": "lastname", "first": "firstname"}
            }
        },
    }
    schema = {
        **SCHEMA,
        "key_properties": [],
        "schema": {"properties": {k: {"type": "string"} for k in ("email", "last", "first")}},
    }
    target_sync_test(
        make_target(writer, **config), lines(schema, record(email="a@x.org", last="L", first="F"))
    )
    target_sync_test(
        make_target(writer, operation="delete", **config),
        lines(schema, record(email="a@x.org", last="L", first="F")),
    )
    (upsert, up_rows), (delete, del_rows) = writer.calls
    assert upsert.id_mode is IdMode.ALTERNATE
    assert up_rows[0].key == {"emailaddress1": "a@x.org", "lastname": "L"}
    assert up_rows[0].payload == {"firstname": "F"}
    assert delete.operation == Operation.DELETE
    assert del_rows[0].payload == {}
    assert del_rows[0].key == {"emailaddress1": "a@x.org", "lastname": "L"}


def test_lookup_config_is_checked_against_metadata():
    schema = {
        **SCHEMA,
        "schema": {
            "properties": {"email": {"type": "string"}, "parentcustomerid": {"type": "string"}}
        },
    }
    bad = {
        "lookups": {"parentcustomerid": {"table": "account", "key": "name"}},
        "streams": only("email", "parentcustomerid"),
    }
    with pytest.raises(MetadataError, match=r"key \['name'\] is not an alternate key of account"):
        target_sync_test(make_target(**bad), lines(schema))
    writer = loader_fakes.FakeWriter()
    good = {**bad, "lookups": {"parentcustomerid": {"table": "account", "key": "accountnumber"}}}
    target_sync_test(
        make_target(writer, **good), lines(schema, record(email="a@x.org", parentcustomerid="A1"))
    )
    [(_, rows)] = writer.calls
    assert rows[0].payload["parentcustomerid_account@odata.bind"] == "/accounts(accountnumber='A1')"


def test_summary_and_progress_lines(caplog):
    target = make_target()
    with caplog.at_level(logging.INFO):
        target_sync_test(target, lines(SCHEMA, record(email="a@x.org")))
    summary = [r.message for r in caplog.records if r.message.startswith("Summary people")]
    assert summary == [
        (
            "Summary people: 1 received, 1 landed (created 1, updated 0, upserted 0, deleted 0, "
            "deactivated 0), 0 rejected, 0 not written"
        )
    ]
    assert any("retries: 2, throttled: 1.5 s" in r.message for r in caplog.records)


def test_stream_maps_alias_rename_and_null_and_dead_letter_keeps_the_original(tmp_path):
    """docs/singer-sdk.md §1.7: maps run before the sink; dead letters hold the record as it
    arrived, so replaying them through the same maps works."""
    dead = tmp_path / "dead.jsonl"
    maps = {
        "users": {
            "__alias__": "contact",
            "emailaddress1": "mail",
            "mail": "__NULL__",
            "junk": "__NULL__",
        }
    }
    schema = {
        "type": "SCHEMA",
        "stream": "users",
        "key_properties": [],
        "schema": {
            "properties": {
                "mail": {"type": "string"},
                "gendercode": {"type": "string"},
                "junk": {"type": "object"},
            }
        },
    }
    raw = [
        {
            "type": "RECORD",
            "stream": "users",
            "record": {"mail": "a@x.org", "gendercode": "Female", "junk": {}},
        },
        {"type": "RECORD", "stream": "users", "record": {"mail": "b@x.org", "gendercode": "robot"}},
    ]
    config = {"entity": None, "streams": {}, "id_field": "emailaddress1", "stream_maps": maps}
    writer = loader_fakes.FakeWriter()
    target = make_target(writer, dead_letter_path=str(dead), max_errors=1, **config)
    target_sync_test(target, lines(schema, *raw))
    [(plan, rows)] = writer.calls
    assert plan.logical_name == "contact"
    assert [dict(r.payload) for r in rows] == [{"emailaddress1": "a@x.org", "gendercode": 2}]
    replay = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [m["stream"] for m in replay] == ["users", "users"]
    assert replay[1]["record"]["mail"] == "b@x.org"

    fixed = dead.read_text().replace('"robot"', '"male"')
    again = loader_fakes.FakeWriter()
    target_sync_test(make_target(again, **config), io.StringIO(fixed))
    [(_, rows)] = again.calls
    assert [dict(r.payload) for r in rows] == [{"emailaddress1": "b@x.org", "gendercode": 1}]


def test_progress_lines_every_interval(caplog):
    clock = iter([0.0, 0.0, 5.0, 11.0, 12.0, 30.0, 31.0])
    report = RunReport(logging.getLogger("progress-test"), 10, clock=lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="progress-test"):
        report.add("people", received=4, landed=3, rejected=1)
        report.tick()  # 5 s: too early
        report.tick()  # 11 s
        report.tick()  # 12 s: too early
    lines = [r.message for r in caplog.records]
    assert lines == ["Progress people: 4 received, 3 landed, 1 rejected, 0.3 records/s"]


def test_key_properties_that_are_not_columns_say_where_they_came_from():
    schema = {**SCHEMA, "key_properties": ["nickname"]}
    with pytest.raises(MetadataError, match="key property 'nickname' is not a column of contact"):
        target_sync_test(make_target(), lines(schema))


def test_records_that_fail_the_stream_schema_or_date_parsing_are_rejected(tmp_path):
    """A record the SDK cannot validate or parse is rejected like any other; the run goes on."""
    dead = tmp_path / "dead.jsonl"
    schema = {
        **SCHEMA,
        "schema": {
            "properties": {
                "email": {"type": "string"},
                "children": {"type": "integer"},
                "since": {"type": "string", "format": "date-time"},
            }
        },
    }
    writer = loader_fakes.FakeWriter()
    target = make_target(
        writer,
        dead_letter_path=str(dead),
        max_errors=2,
        streams={
            "people": {
                "columns": {
                    "email": "emailaddress1",
                    "children": "numberofchildren",
                    "since": "lastonholdtime",
                }
            }
        },
    )
    target_sync_test(
        target,
        lines(
            schema,
            record(email="a@x.org", children="three"),
            record(email="b@x.org", since="yesterday"),
            record(email="c@x.org", children=3, since="2024-01-02T03:04:05+01:00"),
        ),
    )
    [(_, rows)] = writer.calls
    assert [dict(r.payload) for r in rows] == [
        {
            "emailaddress1": "c@x.org",
            "numberofchildren": 3,
            "lastonholdtime": "2024-01-02T02:04:05Z",
        }
    ]
    errors = [
        json.loads(line)["record"]["_dead_letter"]["error"]
        for line in dead.read_text().splitlines()[1:]
    ]
    assert "schema: field 'children': 'three' is not of type 'integer'" in errors[0]
    assert "unparseable date or time" in errors[1]


def test_validate_records_false_skips_schema_validation():
    writer = loader_fakes.FakeWriter()
    schema = {
        **SCHEMA,
        "schema": {"properties": {"email": {"type": "string"}, "gender": {"type": "integer"}}},
    }
    target = make_target(
        writer, validate_records=False, max_errors=5, streams=only("email", "gender")
    )
    target_sync_test(target, lines(schema, record(email="a@x.org", gender="female")))
    [(_, rows)] = writer.calls
    assert rows[0].payload["gendercode"] == 2
