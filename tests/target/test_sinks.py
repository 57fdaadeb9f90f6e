"""The sink on the emulator: SCHEMA checks, batches, rejections (§10.3); rows read via ``api``."""

from __future__ import annotations

import contextlib
import io
import json
import logging

import pytest
from singer_sdk.testing import target_sync_test

from target_dynamics.errors import MetadataError, ServiceUnreachable
from target_dynamics.reporting import LoadFailed, RunReport
from target_dynamics.target import TargetDynamics

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
    "nickname": "nick_name",  # no such column
}


@pytest.fixture
def base(reset_emulator):
    """The emulator's target config, loading the stream into contact."""
    return {**reset_emulator.target_config, "entity": "contact", "progress_interval_seconds": 0}


def only(*fields: str) -> dict:
    """Per-stream settings mapping just ``fields`` (every `columns` key must name a field)."""
    columns = {**COLUMNS, "parentcustomerid": "parentcustomerid"}
    return {"people": {"columns": {f: columns[f] for f in fields}}}


def make_target(base: dict, **config) -> TargetDynamics:
    return TargetDynamics(config={**base, "streams": {"people": {"columns": COLUMNS}}, **config})


def lines(*messages) -> io.StringIO:
    return io.StringIO("".join(json.dumps(m) + "\n" for m in messages))


def record(**values):
    return {"type": "RECORD", "stream": "people", "record": values}


def contacts(api, emulator, select="emailaddress1,firstname,gendercode,employeeid") -> list[dict]:
    """The emulator's contacts that have an e-mail address or an employee id."""
    url = f"{emulator.api_url}/contacts?$select={select}"
    response = api.get(url, timeout=30)
    response.raise_for_status()
    columns = select.split(",")
    return [
        {k: c[k] for k in columns}
        for c in response.json()["value"]
        if c.get("emailaddress1") or c.get("employeeid")
    ]


def add_account(api, emulator, number: str) -> str:
    """Create an account with ``accountnumber``; return its id."""
    response = api.post(
        f"{emulator.api_url}/accounts",
        json={"name": number, "accountnumber": number},
        headers={"Prefer": "return=representation"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["accountid"]


STATE = {"type": "STATE", "value": {"bookmarks": {"people": 3}}}
LOOKUP = {"parentcustomerid": {"table": "account", "key": "accountnumber"}}
WITH_COMPANY = {
    "lookups": LOOKUP,
    "streams": {
        "people": {
            "columns": {
                "email": "emailaddress1",
                "first": "firstname",
                "company": "parentcustomerid",
            }
        }
    },
}
COMPANY_SCHEMA = {
    **SCHEMA,
    "schema": {
        "properties": {
            "email": {"type": "string"},
            "first": {"type": "string"},
            "company": {"type": "string"},
        }
    },
}


def test_upsert_by_a_column_matches_the_rows_it_names(base, api, reset_emulator, caplog):
    """§4.3: a non-key ID field is matched by a query: the second run updates, never adds."""
    schema = {
        **SCHEMA,
        "key_properties": ["employee"],
        "schema": {
            "properties": {**SCHEMA["schema"]["properties"], "employee": {"type": "string"}}
        },
    }
    streams = {"people": {"columns": {**COLUMNS, "employee": "employeeid"}}}
    with caplog.at_level(logging.WARNING):
        stdout, _ = target_sync_test(
            make_target(base, streams=streams),
            lines(
                schema,
                record(employee="E1", first="Ann", gender="female", fullname="x", nickname="y"),
                record(employee="E2", first="Bo", gender=1),
                STATE,
            ),
        )
    assert json.loads(stdout.read().strip().splitlines()[-1]) == STATE["value"]
    dropped = [r.message for r in caplog.records if "dropping fields" in r.message]
    assert len(dropped) == 1
    assert "fullname (read-only on create" not in dropped[0]  # upsert wording
    assert "fullname (not valid for upsert" in dropped[0]
    assert "nickname (no such column" in dropped[0]
    target = make_target(base, streams=streams)
    target_sync_test(target, lines(schema, record(employee="E1", first="Anne")))
    assert (target.report.totals.landed, target.report.totals.rejected) == (1, 0)
    rows = sorted(contacts(api, reset_emulator), key=lambda c: c["employeeid"])
    assert [(c["employeeid"], c["firstname"], c["gendercode"]) for c in rows] == [
        ("E1", "Anne", 2),
        ("E2", "Bo", 1),
    ]


def test_rejected_records_go_to_the_dead_letter_and_fail_after_the_rest_landed(
    base, api, reset_emulator, tmp_path
):
    """§10.3: a failing record is rejected, the others land, the run fails at the end."""
    dead = tmp_path / "dead.jsonl"
    target = make_target(base, dead_letter_path=str(dead), **WITH_COMPANY)
    with pytest.raises(LoadFailed, match="2 records were rejected, more than max_errors=0"):
        target_sync_test(
            target,
            lines(
                COMPANY_SCHEMA,
                record(email="a@x.org", first="x" * 60),
                record(email="b@x.org", first="Orphan", company="NO-SUCH-ACCOUNT"),
                record(email="c@x.org", first="Fine"),
                STATE,
            ),
        )
    assert [c["emailaddress1"] for c in contacts(api, reset_emulator)] == ["c@x.org"]
    messages = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [m["type"] for m in messages] == ["SCHEMA", "RECORD", "RECORD"]
    assert "_dead_letter" in messages[0]["schema"]["properties"]
    first, second = messages[1]["record"], messages[2]["record"]
    assert first["first"] == "x" * 60
    assert first["_dead_letter"]["code"] == "0x80044331"
    assert second["_dead_letter"]["code"] == "0x80060891"  # the bound account does not exist
    assert second["_dead_letter"]["status"] == 404
    assert base["client_secret"] not in dead.read_text()


def test_dead_letter_replays_cleanly(base, api, reset_emulator, tmp_path):
    """The dead-letter file is a valid target input; `_dead_letter` is ignored on replay."""
    dead = tmp_path / "dead.jsonl"
    with pytest.raises(LoadFailed):
        target_sync_test(
            make_target(base, dead_letter_path=str(dead), **WITH_COMPANY),
            lines(
                COMPANY_SCHEMA,
                record(email="b@x.org", first="P", company="A1"),
                record(email="c@x.org", first="Q"),
            ),
        )
    account = add_account(api, reset_emulator, "A1")
    target = make_target(base, **WITH_COMPANY)
    target_sync_test(target, io.StringIO(dead.read_text()))
    assert (target.report.totals.landed, target.report.totals.rejected) == (1, 0)
    [b] = [
        c
        for c in contacts(api, reset_emulator, "emailaddress1,firstname,_parentcustomerid_value")
        if c["emailaddress1"] == "b@x.org"
    ]
    assert (b["firstname"], b["_parentcustomerid_value"]) == ("P", account)


def test_max_errors_tolerates_rejections(base):
    target = make_target(base, max_errors=1)
    stdout, _ = target_sync_test(
        target, lines(SCHEMA, record(email="a@x.org", gender="robot"), STATE)
    )
    assert json.loads(stdout.read().strip()) == STATE["value"]
    assert target.report.totals.rejected == 1


def test_transient_failures_withhold_state_and_fail(base, api, reset_emulator):
    """§10.3: STATE never passes records that could not be written."""
    reset_emulator.admin.set_faults([{"action": "error", "status": 503, "operation": "bulk"}])
    target = make_target(base, max_errors=10, outage_budget_seconds=0.5)
    target_sync_test(target, lines(SCHEMA, record(email="a@x.org"), STATE), finalize=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(ServiceUnreachable, match="503"):
        target.process_endofpipe()
    assert out.getvalue() == ""
    assert contacts(api, reset_emulator) == []


def test_duplicate_keys_land_in_order(base, api, reset_emulator):
    """Rows that address one record are merged, later wins; both count as landed."""
    target = make_target(
        base,
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
    response = api.get(f"{reset_emulator.api_url}/contacts({guid})?$select=firstname", timeout=30)
    assert response.json()["firstname"] == "B"
    assert target.report.totals.landed == 2


def test_dry_run_writes_nothing_and_reports(base, api, reset_emulator):
    target = make_target(base, dry_run=True)
    target_sync_test(
        target,
        lines(SCHEMA, record(email="a@x.org"), record(email="b@x.org", gender="x")),
        finalize=False,
    )
    with pytest.raises(LoadFailed):
        target.process_endofpipe()
    assert contacts(api, reset_emulator) == []
    totals = target.report.totals
    assert (totals.landed, totals.rejected) == (1, 1)


def test_columns_mapping_sends_only_the_fields_it_names(base, api, reset_emulator, caplog):
    """A tap's `company` must not land in contact.company (Company Phone) by name alone."""
    schema = {
        **SCHEMA,
        "schema": {"properties": {"email": {"type": "string"}, "company": {"type": "string"}}},
    }
    target = make_target(base, streams={"people": {"columns": {"email": "emailaddress1"}}})
    with caplog.at_level(logging.WARNING):
        target_sync_test(target, lines(schema, record(email="a@x.org", company="Contoso")))
    assert contacts(api, reset_emulator, "emailaddress1,company") == [
        {"emailaddress1": "a@x.org", "company": None}
    ]
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
        "is not an alternate key of contact (active keys: emailaddress1_key: emailaddress1)",
    ),
]


@pytest.mark.parametrize(("config", "words"), SCHEMA_FAILURES)
def test_schema_problems_fail_at_once(base, config, words):
    target = make_target(base, **config)
    with pytest.raises(MetadataError) as caught:
        target_sync_test(target, lines(SCHEMA))
    assert words in str(caught.value)


def test_type_mismatch_names_stream_column_types_and_fix(base):
    schema = {
        **SCHEMA,
        "schema": {"properties": {"email": {"type": "string"}, "first": {"type": "object"}}},
    }
    with pytest.raises(MetadataError) as caught:
        target_sync_test(make_target(base, streams=only("email", "first")), lines(schema))
    text = str(caught.value)
    assert "stream 'people'" in text
    assert "field 'first' is JSON object but column 'firstname' is StringType" in text
    assert "__NULL__" in text


def test_update_without_id_field_fails(base):
    schema = {**SCHEMA, "key_properties": []}
    with pytest.raises(MetadataError, match="update needs id_field"):
        target_sync_test(make_target(base, operation="update"), lines(schema))


@pytest.mark.parametrize(("setting", "rows_of_e1"), [("content", 1), ("random", 2)])
def test_keyless_upsert_creates_with_content_or_random_ids(
    base, api, reset_emulator, setting, rows_of_e1
):
    """Content ids: identical records name one row; random: each record creates its own."""
    schema = {
        **SCHEMA,
        "key_properties": [],
        "schema": {"properties": {"employee": {"type": "string"}}},
    }
    records = [record(employee="E1"), record(employee="E1"), record(employee="E2")]
    streams = {"people": {"columns": {"employee": "employeeid"}}}
    target = make_target(base, keyless_create_ids=setting, streams=streams)
    target_sync_test(target, lines(schema, *records))
    employees = sorted(c["employeeid"] for c in contacts(api, reset_emulator, "employeeid"))
    assert employees == ["E1"] * rows_of_e1 + ["E2"]
    assert target.report.totals.landed == 3


def test_alternate_key_upsert_and_delete(base, api, reset_emulator):
    config = {
        "id_field": ["emailaddress1"],
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
    select = "emailaddress1,firstname,lastname"
    for first in ("F", "G"):  # the second run updates the row the key names
        target_sync_test(
            make_target(base, **config),
            lines(schema, record(email="A@x.org", last="L", first=first)),
        )
    assert contacts(api, reset_emulator, select) == [
        {"emailaddress1": "A@x.org", "firstname": "G", "lastname": "L"}
    ]
    target = make_target(base, operation="delete", **config)
    target_sync_test(target, lines(schema, record(email="a@x.org", last="L", first="F")))
    assert contacts(api, reset_emulator, select) == []
    assert target.report.totals.landed == 1


def test_lookup_config_is_checked_against_metadata(base, api, reset_emulator):
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
        target_sync_test(make_target(base, **bad), lines(schema))
    account = add_account(api, reset_emulator, "A1")
    good = {**bad, "lookups": LOOKUP}
    target_sync_test(
        make_target(base, **good), lines(schema, record(email="a@x.org", parentcustomerid="A1"))
    )
    select = "emailaddress1,_parentcustomerid_value"
    assert contacts(api, reset_emulator, select) == [
        {"emailaddress1": "a@x.org", "_parentcustomerid_value": account}
    ]


def test_summary_and_progress_lines(base, reset_emulator, caplog):
    reset_emulator.admin.set_faults(
        [{"action": "throttle", "operation": "bulk", "times": 1, "retry_after": 1}]
    )
    target = make_target(base)
    with caplog.at_level(logging.INFO):
        target_sync_test(target, lines(SCHEMA, record(email="a@x.org")))
    summary = [r.message for r in caplog.records if r.message.startswith("Summary people")]
    assert summary == [
        (
            "Summary people: 1 received, 1 landed (created 0, updated 0, upserted 1, deleted 0, "
            "deactivated 0), 0 rejected, 0 not written"
        )
    ]
    assert any("retries: 1, throttled: 1.0 s" in r.message for r in caplog.records)


def test_stream_maps_alias_rename_and_null_and_dead_letter_keeps_the_original(
    base, api, reset_emulator, tmp_path
):
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
    target = make_target(base, dead_letter_path=str(dead), max_errors=1, **config)
    target_sync_test(target, lines(schema, *raw))
    select = "emailaddress1,gendercode"
    assert contacts(api, reset_emulator, select) == [{"emailaddress1": "a@x.org", "gendercode": 2}]
    replay = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [m["stream"] for m in replay] == ["users", "users"]
    assert replay[1]["record"]["mail"] == "b@x.org"

    fixed = dead.read_text().replace('"robot"', '"male"')
    target_sync_test(make_target(base, **config), io.StringIO(fixed))
    assert sorted(contacts(api, reset_emulator, select), key=lambda c: c["emailaddress1"]) == [
        {"emailaddress1": "a@x.org", "gendercode": 2},
        {"emailaddress1": "b@x.org", "gendercode": 1},
    ]


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


def test_key_properties_that_are_not_columns_say_where_they_came_from(base):
    schema = {**SCHEMA, "key_properties": ["nickname"]}
    with pytest.raises(MetadataError, match="key property 'nick_name' is not a column of contact"):
        target_sync_test(make_target(base), lines(schema))


def test_records_that_fail_the_stream_schema_or_date_parsing_are_rejected(
    base, api, reset_emulator, tmp_path
):
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
    target = make_target(
        base,
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
    assert contacts(api, reset_emulator, "emailaddress1,numberofchildren,lastonholdtime") == [
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


def test_validate_records_false_skips_schema_validation(base, api, reset_emulator):
    schema = {
        **SCHEMA,
        "schema": {"properties": {"email": {"type": "string"}, "gender": {"type": "integer"}}},
    }
    target = make_target(
        base, validate_records=False, max_errors=5, streams=only("email", "gender")
    )
    target_sync_test(target, lines(schema, record(email="a@x.org", gender="female")))
    select = "emailaddress1,gendercode"
    assert contacts(api, reset_emulator, select) == [{"emailaddress1": "a@x.org", "gendercode": 2}]
