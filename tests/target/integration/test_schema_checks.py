"""The target against the emulator: a stream checked against the table at SCHEMA, before writes."""

from __future__ import annotations

import copy
import io
import json

import pytest
from singer_sdk.testing import target_sync_test

from target_dynamics.errors import MetadataError
from target_dynamics.target import TargetDynamics

SCHEMA = {
    "type": "SCHEMA",
    "stream": "people",
    "key_properties": [],
    "schema": {
        "properties": {
            "email": {"type": "string"},
            "last": {"type": "string"},
            "shoe_size": {"type": "integer"},
            "fullname": {"type": "string"},
        }
    },
}
RECORD = {
    "type": "RECORD",
    "stream": "people",
    "record": {"email": "a@x.org", "last": "Ada", "shoe_size": 42, "fullname": "Ada X"},
}
COLUMNS = {
    "email": "emailaddress1",
    "last": "lastname",
    "shoe_size": "new_shoesize",
    "fullname": "fullname",
}


def sync(emulator, extra_fields: str) -> None:
    config = {
        **emulator.target_config,
        "entity": "contact",
        "id_field": "emailaddress1",
        "extra_fields": extra_fields,
        "streams": {"people": {"columns": COLUMNS}},
    }
    lines = "".join(json.dumps(m) + "\n" for m in (SCHEMA, RECORD))
    target_sync_test(TargetDynamics(config=config), io.StringIO(lines))


def test_extra_fields_error_fails_before_any_write(reset_emulator):
    """extra_fields=error: every field the table cannot take is named, and nothing is sent."""
    with pytest.raises(MetadataError) as caught:
        sync(reset_emulator, "error")
    message = str(caught.value)
    assert "field 'shoe_size': no such column" in message
    assert "field 'fullname': not valid for upsert" in message
    assert "contact" not in reset_emulator.admin.snapshot()


def test_extra_fields_drop_writes_the_columns_the_table_has(reset_emulator, caplog):
    """extra_fields=drop (default): one warning names the dropped fields; the row lands."""
    sync(reset_emulator, "drop")
    [row] = reset_emulator.admin.snapshot()["contact"]
    assert (row["emailaddress1"], row["lastname"]) == ("a@x.org", "Ada")
    warnings = [r.message for r in caplog.records if "dropping fields" in r.message]
    assert len(warnings) == 1
    assert "shoe_size" in warnings[0]
    assert "fullname" in warnings[0]


def test_records_after_a_new_schema_are_checked_against_it(reset_emulator, singer, tmp_path):
    """A second SCHEMA for a stream (here adding ``jobtitle``) holds for the records after it:
    they are checked against it, not against the first one, which refused the field."""
    first = {
        **singer.PEOPLE_SCHEMA,
        "schema": {**singer.PEOPLE_SCHEMA["schema"], "additionalProperties": False},
    }
    second = copy.deepcopy(first)
    second["schema"]["properties"]["jobtitle"] = {"type": "string"}
    before, after = singer.people(2), singer.people(4)[2:]
    for message in after:
        message["record"]["jobtitle"] = "Engineer"
    config = {**reset_emulator.target_config, "entity": "contact"}
    done = singer.cli(config, [first, *before, second, *after], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = reset_emulator.admin.snapshot()["contact"]
    titles = {row["emailaddress1"]: row.get("jobtitle") for row in rows}
    assert titles == {
        "p0@x.org": None,
        "p1@x.org": None,
        "p2@x.org": "Engineer",
        "p3@x.org": "Engineer",
    }
