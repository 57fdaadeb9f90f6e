"""Stream planning at SCHEMA time, pure: lookup tables (§3.5), `columns` keys, value types."""

from __future__ import annotations

import typing as t

import pytest

from target_dynamics.errors import MetadataError
from target_dynamics.metadata import ColumnInfo, TableInfo
from target_dynamics.planning import StreamPlan, lookup_tables, plan_stream, unmatched_paths
from target_dynamics.plans import Operation
from target_dynamics.settings import StreamSettings

CONTACT = TableInfo(
    logical_name="contact",
    entity_set="contacts",
    primary_id="contactid",
    columns={
        "contactid": ColumnInfo("contactid", "UniqueidentifierType"),
        "firstname": ColumnInfo("firstname", "StringType"),
        "parentcustomerid": ColumnInfo("parentcustomerid", "CustomerType"),
        "ownerid": ColumnInfo("ownerid", "OwnerType"),
    },
    keys={},
    lookups={
        "parentcustomerid": [
            ("account", "parentcustomerid_account"),
            ("contact", "parentcustomerid_contact"),
        ],
        "ownerid": [("systemuser", "ownerid")],
    },
)


def _stream(columns: dict[str, str] | None = None) -> StreamSettings:
    return StreamSettings(
        entity="contact",
        operation=Operation.UPSERT,
        id_field=("contactid",),
        columns=columns or {},
        lookups={},
        id_from_config=False,
    )


def test_lookup_tables_follow_the_fields_a_stream_writes():
    """§3.5: every target of each lookup column a field writes, through `columns` or by name."""
    schema = {
        "properties": {
            "firstname": {"type": "string"},
            "company": {"type": "string"},
            "OwnerId": {"type": "string"},
        }
    }
    assert lookup_tables(schema, _stream({"company": "parentcustomerid"}), CONTACT) == [
        ("parentcustomerid", "account"),
        ("parentcustomerid", "contact"),
    ]
    assert lookup_tables(schema, _stream(), CONTACT) == [("ownerid", "systemuser")]


def test_lookup_tables_skip_plain_columns_and_unknown_fields():
    """Fields that are no lookup, or no column at all, need no other table's metadata."""
    schema = {"properties": {"firstname": {"type": "string"}, "nosuch": {"type": "string"}}}
    assert lookup_tables(schema, _stream(), CONTACT) == []


@pytest.fixture(scope="module")
def full(tables):
    """contact as the emulator describes it."""
    return tables.table("contact")


def _settings(columns: dict[str, str] | None = None, **extra: t.Any) -> StreamSettings:
    return StreamSettings(
        entity="contact",
        operation=Operation.UPSERT,
        id_field=("emailaddress1",),
        columns=columns or {},
        lookups={},
        id_from_config=True,
        **extra,
    )


def _plan(
    full: TableInfo, properties: dict[str, t.Any], settings: StreamSettings, **kw: t.Any
) -> StreamPlan:
    return plan_stream("people", {"properties": properties}, settings, full, {}, **kw)


def _problems(full: TableInfo, properties: dict[str, t.Any], settings: StreamSettings) -> str:
    with pytest.raises(MetadataError) as caught:
        _plan(full, properties, settings)
    return str(caught.value)


PEOPLE = {
    "email": {"type": "string"},
    "name": {"type": "object", "properties": {"first": {"type": "string"}}},
    "extra": {"type": "object"},
    "a.b": {"type": "string"},
}


def test_a_columns_key_naming_no_field_fails_with_close_names(full):
    said = _problems(full, PEOPLE, _settings({"emial": "emailaddress1"}))
    assert "columns key 'emial' names no field of the stream (did you mean: email?)" in said
    assert "fields: email, name, extra, a.b" in said
    assert "dotted path such as 'name.first'" in said


def test_a_dotted_key_naming_no_nested_property_fails_with_close_names(full):
    said = _problems(full, PEOPLE, _settings({"email": "emailaddress1", "name.frist": "firstname"}))
    assert (
        "columns key 'name.frist' names no field: 'name' has no property 'frist' "
        "(did you mean: first?)" in said
    )


def test_a_dotted_key_through_a_flattened_string_says_why(full):
    flat = {"email": {"type": "string"}, "name": {"type": ["string", "null"]}}
    said = _problems(full, flat, _settings({"email": "emailaddress1", "name.first": "firstname"}))
    assert "'name' is JSON string, not an object (with flattening_enabled" in said


def test_dotted_paths_reach_declared_and_schemaless_objects_and_a_dotted_name_wins(full):
    columns = {
        "email": "emailaddress1",
        "name.first": "firstname",
        "extra.last.name": "lastname",
        "a.b": "employeeid",
    }
    assert not _plan(full, PEOPLE, _settings(columns), extra_fields="error").dropped
    # A field the mapping leaves out is dropped; the objects its paths read are not.
    plan = _plan(full, {**PEOPLE, "company": {"type": "string"}}, _settings(columns))
    assert plan.dropped == {"company": "not in the stream's `columns` mapping"}
    assert plan.mapper.paths == {
        "name.first": ("name", "first"),
        "extra.last.name": ("extra", "last", "name"),
    }


def test_strings_reach_number_money_date_boolean_columns_and_numbers_reach_text(full):
    properties = {
        "emailaddress1": {"type": "integer"},
        "annualincome": {"type": "string"},
        "numberofchildren": {"type": ["string", "null"]},
        "birthdate": {"type": "string"},
        "creditonhold": {"type": "string"},
        "description": {"type": "number"},
    }
    plan = _plan(full, properties, _settings())
    assert set(plan.mapper.fields) == set(properties)


def test_what_can_never_be_written_still_fails_at_schema(full):
    said = _problems(
        full, {"emailaddress1": {"type": "string"}, "annualincome": {"type": "object"}}, _settings()
    )
    assert "field 'annualincome' is JSON object but column 'annualincome' is MoneyType" in said
    assert "convert it with a stream map" in said


def test_an_object_into_a_text_column_names_both_fixes(full):
    said = _problems(
        full, {"emailaddress1": {"type": "string"}, "description": {"type": "object"}}, _settings()
    )
    assert "listing it in `streams.<stream>.json_text_fields`" in said
    assert '"description.<property>": "<column>"' in said
    assert "flattening_enabled splits only objects whose schema declares properties" in said


def test_json_text_fields_let_objects_and_arrays_into_text_columns(full):
    properties = {
        "emailaddress1": {"type": "string"},
        "description": {"type": ["object", "null"]},
        "firstname": {"type": "array"},
    }
    settings = _settings(json_text_fields=("description", "firstname"))
    assert _plan(full, properties, settings).mapper.json_text == {"description", "firstname"}


def test_json_text_fields_name_a_field_with_a_text_column(full):
    properties = {"emailaddress1": {"type": "string"}, "numberofchildren": {"type": "array"}}
    said = _problems(full, properties, _settings(json_text_fields=("numberofchildren", "descr")))
    assert "json_text_fields names 'descr', which is no field of the stream" in said
    assert "its column 'numberofchildren' is IntegerType; JSON text goes only into text" in said


def test_open_paths_that_no_record_holds_are_named_with_the_close_key():
    paths = {"name.frist": ("name", "frist"), "extra.job.title": ("extra", "job", "title")}
    records = [
        {"name": {"first": "Ann", "last": "Lee"}, "extra": {"job": {"level": 3}}},
        {"name": None, "extra": {"job": {"title": "CEO"}}},
        {"other": 1},
    ]
    [warning] = unmatched_paths("people", paths, records)
    assert warning.startswith("Stream 'people': columns key 'name.frist' matched no value")
    assert "in the first 3 records ('name' held: first, last; did you mean name.first?)" in warning


def test_open_paths_whose_objects_never_came_are_not_warned():
    assert unmatched_paths("people", {"name.first": ("name", "first")}, [{"email": "a"}]) == []
