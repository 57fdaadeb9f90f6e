"""Nested objects by dotted path, JSON text, and string values, through the CLI on the emulator."""

from __future__ import annotations

import json
import typing as t

import pytest

pytestmark = pytest.mark.usefixtures("reset_emulator")
FLAT = {"flattening_enabled": True, "flattening_max_depth": 1}
NAME = {"type": "object", "properties": {"first": {"type": "string"}, "last": {"type": "string"}}}


@pytest.fixture
def pipe(singer, reset_emulator, tmp_path) -> t.Callable[..., str]:
    """``pipe(properties, records, **config)`` runs the CLI over one stream ``people`` into
    contacts and returns its stderr."""

    def run(properties: dict, records: list[dict], **config: t.Any) -> str:
        settings = {
            **reset_emulator.target_config,
            "entity": "contact",
            "id_field": "emailaddress1",
            "dead_letter_path": str(tmp_path / "dead.jsonl"),
            **config,
        }
        schema = {"type": "object", "properties": properties}
        lines = [{"type": "SCHEMA", "stream": "people", "schema": schema, "key_properties": []}]
        lines += [{"type": "RECORD", "stream": "people", "record": r} for r in records]
        done = singer.cli(settings, lines, tmp_path)
        assert "Traceback" not in done.stderr
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stderr

    return run


def contacts(emulator) -> dict[str, dict]:
    return {r["emailaddress1"]: r for r in emulator.admin.snapshot().get("contact", [])}


def test_dotted_paths_map_nested_properties(reset_emulator, pipe):
    """`name.first` -> firstname, for a declared object and for one without properties; a key
    missing from its object is not written, like a field missing from the record."""
    properties = {"email": {"type": "string"}, "name": NAME, "extra": {"type": "object"}}
    columns = {
        "email": "emailaddress1",
        "name.first": "firstname",
        "name.last": "lastname",
        "extra.job.title": "jobtitle",
    }
    records = [
        {
            "email": "ann@x.org",
            "name": {"first": "Ann", "last": "Lee"},
            "extra": {"job": {"title": "CEO"}},
        },
        {"email": "bo@x.org", "name": {"last": "Ng"}, "extra": {}},
    ]
    pipe(
        properties,
        records,
        streams={"people": {"columns": columns}},
    )
    landed = contacts(reset_emulator)
    ann, bo = landed["ann@x.org"], landed["bo@x.org"]
    assert (ann["firstname"], ann["lastname"], ann["jobtitle"]) == ("Ann", "Lee", "CEO")
    assert (bo.get("firstname"), bo["lastname"], bo.get("jobtitle")) == (None, "Ng", None)


def test_json_text_fields_write_objects_into_a_memo_column(reset_emulator, pipe):
    properties = {"email": {"type": "string"}, "address": {"type": "object"}}
    stream = {"columns": {"email": "emailaddress1", "address": "description"}}
    stream["json_text_fields"] = ["address"]
    records = [{"email": "ann@x.org", "address": {"city": "Oslo", "lines": ["1 Main St"]}}]
    pipe(properties, records, streams={"people": stream})
    assert contacts(reset_emulator)["ann@x.org"]["description"] == (
        '{"city":"Oslo","lines":["1 Main St"]}'
    )


def test_flattening_splits_declared_properties(reset_emulator, pipe):
    """The SDK's flattening names `name__first`; `columns` maps the flattened field."""
    properties = {"email": {"type": "string"}, "name": NAME}
    columns = {"email": "emailaddress1", "name__first": "firstname", "name__last": "lastname"}
    records = [{"email": "ann@x.org", "name": {"first": "Ann", "last": "Lee"}}]
    pipe(
        properties,
        records,
        streams={"people": {"columns": columns}},
        **FLAT,
    )
    ann = contacts(reset_emulator)["ann@x.org"]
    assert (ann["firstname"], ann["lastname"]) == ("Ann", "Lee")


def test_empty_strings_clear_on_upsert_and_keep_defaults_on_create(reset_emulator, pipe):
    """An empty string is null: an upsert clears the column; a create leaves it out."""
    properties = {
        "emailaddress1": {"type": "string"},
        "birthdate": {"type": "string"},
        "annualincome": {"type": "string"},
        "creditonhold": {"type": "string"},
    }
    full = {"birthdate": "1990-05-17", "annualincome": "55000", "creditonhold": "yes"}
    empty = dict.fromkeys(full, "")
    pipe(properties, [{"emailaddress1": "ann@x.org", **full}])
    ann = contacts(reset_emulator)["ann@x.org"]
    assert (ann["birthdate"], ann["annualincome"], ann["creditonhold"]) == (
        "1990-05-17",
        55000,
        True,
    )
    pipe(properties, [{"emailaddress1": "ann@x.org", **empty}])
    ann = contacts(reset_emulator)["ann@x.org"]
    assert (ann["birthdate"], ann["annualincome"], ann["creditonhold"]) == (None, None, None)
    created = [{"emailaddress1": "bo@x.org", **empty}]
    pipe(properties, created, operation="create")
    bo = contacts(reset_emulator)["bo@x.org"]
    assert not {"birthdate", "annualincome", "creditonhold"} & set(bo)  # never sent


def test_an_integer_id_into_a_text_key_and_an_unconvertible_value(reset_emulator, tmp_path, pipe):
    """A number lands in a text ID column; "abc" for money is one dead letter, the rest land."""
    properties = {"employeeid": {"type": "integer"}, "annualincome": {"type": "string"}}
    records = [
        {"employeeid": 1001, "annualincome": "1500.5"},
        {"employeeid": 1002, "annualincome": "abc"},
        {"employeeid": 1003, "annualincome": "2"},
    ]
    pipe(
        properties,
        records,
        id_field="employeeid",
        max_errors=1,
    )
    rows = {r["employeeid"]: r["annualincome"] for r in reset_emulator.admin.snapshot()["contact"]}
    assert rows == {"1001": 1500.5, "1003": 2}
    dead = (tmp_path / "dead.jsonl").read_text(encoding="utf-8")
    assert (
        "field 'annualincome': column 'annualincome' (MoneyType) needs a number, got 'abc'" in dead
    )
    assert '"employeeid": 1002' in dead or '"employeeid":1002' in dead


def test_flattening_turns_an_object_without_properties_into_json_text(reset_emulator, pipe):
    """The SDK cannot split what the schema does not declare: the object arrives as JSON text."""
    properties = {"email": {"type": "string"}, "extra": {"type": "object"}}
    columns = {"email": "emailaddress1", "extra": "description"}
    records = [{"email": "ann@x.org", "extra": {"job": "CEO"}}]
    pipe(
        properties,
        records,
        streams={"people": {"columns": columns}},
        **FLAT,
    )
    assert json.loads(contacts(reset_emulator)["ann@x.org"]["description"]) == {"job": "CEO"}
