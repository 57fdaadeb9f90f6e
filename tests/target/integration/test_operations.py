"""The target against the emulator: every operation with every kind of ID field (§4.1-§4.5)."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from singer_sdk.testing import target_sync_test

from target_dynamics.collation import DEFAULT
from target_dynamics.identity import content_guid, key_guid
from target_dynamics.reporting import LoadFailed
from target_dynamics.target import TargetDynamics

pytestmark = pytest.mark.usefixtures("reset_emulator")

COLUMNS = {
    "id": "contactid",
    "email": "emailaddress1",
    "emp": "employeeid",
    "last": "lastname",
    "first": "firstname",
}
MODES = {
    # mode -> (id_field, fields in the stream)
    "primary": ("contactid", ["id", "last", "first"]),
    "alternate": ("emailaddress1", ["email", "last", "first"]),
    "match": ("employeeid", ["emp", "last", "first"]),
    "none": ([], ["last", "first"]),
}
G1, G2 = str(uuid.uuid4()), str(uuid.uuid4())


def person(mode: str, n: int, **values: str) -> dict:
    ident = {"id": [G1, G2][n - 1], "email": f"p{n}@x.org", "emp": f"E{n}"}
    fields = MODES[mode][1]
    return {k: v for k, v in {**ident, "last": f"Last{n}", **values}.items() if k in fields}


def run(emulator, mode: str, operation: str, records: list[dict], **config) -> TargetDynamics:
    id_field, fields = MODES[mode]
    schema = {"properties": {f: {"type": ["string", "null"]} for f in fields}}
    settings = {
        **emulator.target_config,
        "entity": "contacts",
        "operation": operation,
        "id_field": id_field,
        "streams": {"people": {"columns": {k: v for k, v in COLUMNS.items() if k in fields}}},
        **config,
    }
    if not id_field:
        del settings["id_field"]
    messages = [{"type": "SCHEMA", "stream": "people", "schema": schema, "key_properties": []}]
    messages += [{"type": "RECORD", "stream": "people", "record": r} for r in records]
    target = TargetDynamics(config=settings)
    target_sync_test(target, io.StringIO("".join(json.dumps(m) + "\n" for m in messages)))
    return target


def contacts(emulator) -> list[dict]:
    return sorted(emulator.admin.snapshot().get("contact", []), key=lambda r: r["lastname"])


@pytest.mark.parametrize("mode", list(MODES))
def test_create(reset_emulator, mode):
    """§4.1: creates carry a primary id: the record's, uuid5 of the ID field or of the record."""
    record = person(mode, 1, first="Ann")
    run(reset_emulator, mode, "create", [record])
    [row] = contacts(reset_emulator)
    assert (row["lastname"], row["firstname"]) == ("Last1", "Ann")
    expected = {
        "primary": G1,
        "alternate": key_guid("contact", {"emailaddress1": "p1@x.org"}, DEFAULT),
        "match": key_guid("contact", {"employeeid": "E1"}, DEFAULT),
        "none": content_guid("people", "contact", record),
    }
    assert row["contactid"] == expected[mode]


@pytest.mark.parametrize("mode", ["primary", "alternate", "match"])
def test_upsert_creates_then_updates(reset_emulator, mode):
    """§4.3: the same ID field twice: one row, the later values."""
    run(reset_emulator, mode, "upsert", [person(mode, 1, first="Ann")])
    run(reset_emulator, mode, "upsert", [person(mode, 1, first="Annie"), person(mode, 2)])
    rows = contacts(reset_emulator)
    assert [(r["lastname"], r.get("firstname")) for r in rows] == [
        ("Last1", "Annie"),
        ("Last2", None),
    ]


@pytest.mark.parametrize("mode", ["primary", "alternate", "match"])
def test_update_changes_existing_rows_and_rejects_missing(reset_emulator, mode):
    """§4.2/§4.4: update never creates; a missing row is a rejection, the rest lands."""
    run(reset_emulator, mode, "upsert", [person(mode, 1, first="Ann")])
    with pytest.raises(LoadFailed, match="1 records were rejected"):
        run(reset_emulator, mode, "update", [person(mode, 1, first="Annie"), person(mode, 2)])
    rows = contacts(reset_emulator)
    assert [(r["lastname"], r["firstname"]) for r in rows] == [("Last1", "Annie")]


@pytest.mark.parametrize("mode", ["primary", "alternate", "match"])
def test_delete(reset_emulator, mode):
    """§4.5: delete by the ID field; deleting a missing row is already done."""
    run(reset_emulator, mode, "upsert", [person(mode, 1), person(mode, 2)])
    target = run(reset_emulator, mode, "delete", [person(mode, 1), person(mode, 1)])
    assert [r["lastname"] for r in contacts(reset_emulator)] == ["Last2"]
    assert target.report.totals.rejected == 0


def test_update_and_delete_need_an_id_field(reset_emulator):
    with pytest.raises(Exception, match="update needs id_field"):
        run(reset_emulator, "none", "update", [person("none", 1)])


def test_duplicate_keys_in_one_batch_land_once_later_values_win(reset_emulator):
    """§6.5: duplicate keys in one bulk request fail it; the target merges them first."""
    target = run(
        reset_emulator,
        "alternate",
        "upsert",
        [person("alternate", 1, first="Ann"), person("alternate", 1, first="Anna")],
    )
    [row] = contacts(reset_emulator)
    assert (row["emailaddress1"], row["firstname"]) == ("p1@x.org", "Anna")
    assert target.report.totals.landed == 2
