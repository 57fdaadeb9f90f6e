"""Record -> row conversion and every rejection reason (pure; §4.6 value encoding, §4.7 lookups)."""

from __future__ import annotations

import datetime as dt
import decimal
import typing as t
import uuid
from dataclasses import replace

import pytest

from target_dynamics import webapi
from target_dynamics.identity import IdMode, content_guid
from target_dynamics.mapping import (
    CODE_OUT_OF_RANGE,
    CODE_TOO_LONG,
    KeyBind,
    LookupRule,
    LookupTarget,
    RecordMapper,
    RecordRejected,
    bind_value,
    convert_value,
)


@pytest.fixture(scope="module")
def contact(tables):
    """contact as the emulator describes it (with a composite key, emailaddress1 + lastname)."""
    return tables.table("contact")


@pytest.fixture(scope="module")
def columns(tables, contact):
    """contact's columns and a multi-select one, ``new_hobbies``."""
    return {**contact.columns, **tables.table("new_hobby").columns}


GUID = "6a2b3c4d-0000-4000-8000-00000000abcd"

CONVERSIONS = [
    # (column, value in the record, JSON sent) — §4.6
    ("firstname", "Ann", "Ann"),
    ("description", "x" * 2000, "x" * 2000),
    ("numberofchildren", 3, 3),
    ("numberofchildren", decimal.Decimal("3.0"), 3),
    ("annualincome", decimal.Decimal("1234.5"), 1234.5),
    ("annualincome", 10, 10),
    ("address1_latitude", decimal.Decimal("47.6395831"), 47.6395831),  # Double: rounded by service
    ("creditonhold", True, True),
    ("creditonhold", "yes", True),
    ("creditonhold", "false", False),
    ("creditonhold", 0, False),
    ("gendercode", 2, 2),
    ("gendercode", "female", 2),
    ("gendercode", " MALE ", 1),
    ("gendercode", "1", 1),
    ("statecode", "Inactive", 1),
    ("new_hobbies", [1, "camping"], "1,9"),
    ("new_hobbies", "Swimming; Board games", "1,3"),
    ("new_hobbies", "9,1,9", "9,1"),
    ("new_hobbies", 3, "3"),
    ("birthdate", dt.date(1990, 5, 17), "1990-05-17"),
    ("birthdate", "1990-05-17", "1990-05-17"),
    ("birthdate", dt.datetime(1990, 5, 17, 23, 0, tzinfo=dt.UTC), "1990-05-17"),
    ("lastonholdtime", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2024-01-02T03:04:05Z"),
    ("lastonholdtime", "2021-04-04T12:00:00-08:00", "2021-04-04T20:00:00Z"),
    ("lastonholdtime", dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05Z"),  # noqa: DTZ001 - naive = UTC
    ("lastonholdtime", dt.date(2024, 1, 2), "2024-01-02T00:00:00Z"),
    ("subscriptionid", GUID.upper(), GUID),
    ("subscriptionid", uuid.UUID(GUID), GUID),
    # Values from string sources (a CSV tap types every column as string)
    ("annualincome", "55000", 55000),
    ("annualincome", " 2.5 ", 2.5),
    ("annualincome", "1.005", 1.005),  # every place given: the service rounds (§4.6)
    ("annualincome", decimal.Decimal("1.005"), 1.005),
    ("address1_latitude", "-1e1", -10),
    ("numberofchildren", "2", 2),
    ("numberofchildren", "2.0", 2),
    ("numberofchildren", "+7", 7),
    ("creditonhold", "TRUE", True),
    ("creditonhold", "no", False),
    ("creditonhold", "1", True),
    ("creditonhold", "0", False),
    ("gendercode", "2", 2),
    ("new_hobbies", "1;9", "1,9"),
    ("birthdate", "2026-01-31", "2026-01-31"),
    ("lastonholdtime", "2026-01-31 10:00:00", "2026-01-31T10:00:00Z"),
    # Numbers into text columns become their text
    ("firstname", 5, "5"),
    ("employeeid", 12345678901234567890, "12345678901234567890"),
    ("description", decimal.Decimal("2.50"), "2.50"),
    ("description", 0.5, "0.5"),
]


@pytest.mark.parametrize(("column", "value", "sent"), CONVERSIONS)
def test_converts_values_as_dataverse_expects(columns, column, value, sent):
    """§4.6: each column type gets the JSON Dataverse takes."""
    converted = convert_value(columns[column], value)
    assert converted == sent
    assert type(converted) is type(sent)


REJECTIONS = [
    # (column, value, code, words in the reason) — §4.9
    ("firstname", "x" * 51, CODE_TOO_LONG, "51 characters long; the maximum is 50"),
    ("firstname", {"a": 1}, "0x80040203", "needs a string (or a number), got an object"),
    ("firstname", True, "0x80040203", "got true"),
    ("numberofchildren", -1, CODE_OUT_OF_RANGE, "outside 0..1000000000"),
    ("numberofchildren", "-1", CODE_OUT_OF_RANGE, "outside 0..1000000000"),
    ("numberofchildren", 2.5, "0x80040203", "whole number, got 2.5"),
    ("numberofchildren", "2.5", "0x80040203", "whole number, got '2.5'"),
    ("numberofchildren", "three", "0x80040203", "needs a number, got 'three'"),
    ("numberofchildren", True, "0x80040203", "needs a number"),
    ("annualincome", "abc", "0x80040203", "(MoneyType) needs a number, got 'abc'"),
    ("annualincome", "55,000", "0x80040203", "got '55,000'"),
    ("annualincome", "1_000", "0x80040203", "got '1_000'"),
    ("annualincome", "NaN", "0x80040203", "needs a number"),
    ("address1_latitude", "1e999999999", "0x80040203", "cannot hold '1e999999999'"),
    ("annualincome", "x" * 100, "0x80040203", "..."),
    ("annualincome", [1], "0x80040203", "got an array"),
    ("annualincome", decimal.Decimal(-1), CODE_OUT_OF_RANGE, "outside"),
    ("annualincome", decimal.Decimal("NaN"), "0x80040203", "cannot hold"),
    ("address1_latitude", 91, CODE_OUT_OF_RANGE, "outside -90..90"),
    ("gendercode", 3, CODE_OUT_OF_RANGE, "no option 3 (known: 1=Male, 2=Female)"),
    ("gendercode", "Other", CODE_OUT_OF_RANGE, "no option 'Other'"),
    ("creditonhold", "maybe", CODE_OUT_OF_RANGE, "no option"),
    ("creditonhold", "2", CODE_OUT_OF_RANGE, "no option 2"),
    ("new_hobbies", [1, "Chess"], CODE_OUT_OF_RANGE, "no option 'Chess'"),
    ("new_hobbies", list(range(151)), CODE_OUT_OF_RANGE, "no option"),
    ("birthdate", "17/05/1990", "0x80040203", "not an ISO 8601"),
    ("birthdate", "2026-02-30", "0x80040203", "not an ISO 8601"),
    ("birthdate", "1700-01-01", CODE_OUT_OF_RANGE, "before 1753-01-01"),
    ("lastonholdtime", 1700000000, "0x80040203", "ISO 8601"),
    ("subscriptionid", "not-a-guid", "0x80040203", "is not a GUID"),
    ("entityimage", "abc", "0x80040203", "cannot be written"),
]


@pytest.mark.parametrize(("column", "value", "code", "words"), REJECTIONS)
def test_rejects_values_dataverse_would_refuse(columns, column, value, code, words):
    """§4.9: the check happens before sending, with the code the service would answer."""
    with pytest.raises(RecordRejected) as caught:
        convert_value(columns[column], value)
    assert caught.value.code == code
    assert words in caught.value.reason
    assert column in caught.value.reason


def test_too_many_multiselect_choices_are_rejected(columns):
    """§4.6: at most 150 choices."""
    column = columns["new_hobbies"].__class__(
        "new_hobbies", "MultiSelectPicklistType", options={i: str(i) for i in range(200)}
    )
    with pytest.raises(RecordRejected, match="151 choices; at most 150"):
        convert_value(column, list(range(151)))


def digit_labels(columns):
    """gendercode with labels that read as other options' values."""
    return replace(columns["gendercode"], options={2: "1", 1: "2", 3: "3", 4: "Other"})


"""A choice seen in a real org: value 2 labelled "1", value 1 labelled "2"."""


@pytest.mark.parametrize(
    ("value", "sent"), [(1, 1), (2, 2), (decimal.Decimal(2), 2), ("3", 3), ("other", 4), ("4", 4)]
)
def test_digit_labels_numbers_are_values(columns, value, sent):
    """A JSON number is a value; a string that is a value and its own label, or only one of
    them, has one reading."""
    assert convert_value(digit_labels(columns), value) == sent


@pytest.mark.parametrize(
    ("value", "reading"),
    [
        ("1", "option 1 ('2') and the label of option 2"),
        (" 2 ", "option 2 ('1') and the label of option 1"),
    ],
)
def test_digit_labels_ambiguous_string_is_rejected(columns, value, reading):
    """A string that is one option's value and another option's label is never guessed."""
    with pytest.raises(RecordRejected) as caught:
        convert_value(digit_labels(columns), value)
    assert "gendercode" in caught.value.reason
    assert f"is ambiguous: it is {reading}" in caught.value.reason
    with pytest.raises(RecordRejected, match="ambiguous"):
        convert_value(
            replace(digit_labels(columns), type_name="MultiSelectPicklistType"), f"3;{value}"
        )


def test_dateonly_format_userlocal_column_gets_a_datetime(columns):
    """§4.6: the behaviour decides; a UserLocal column shown as a date takes midnight UTC."""
    shown_as_date = replace(columns["lastonholdtime"], name="overriddencreatedon")
    assert convert_value(shown_as_date, "2026-01-31") == "2026-01-31T00:00:00Z"
    assert convert_value(shown_as_date, "2026-01-31T10:00:00+01:00") == "2026-01-31T09:00:00Z"


ACCOUNT_T = LookupTarget(
    "account", "accounts", "parentcustomerid_account", (("accountnumber",),), primary_id="accountid"
)
CONTACT_T = LookupTarget(
    "contact", "contacts", "parentcustomerid_contact", (), primary_id="contactid"
)
CUSTOMER = {"account": ACCOUNT_T, "contact": CONTACT_T}

BINDS = [
    # (rule, value, record, expected (key, path)) — §4.6 lookups, §4.3 key escaping
    (
        LookupRule("parentcustomerid", CUSTOMER, "account"),
        GUID,
        {},
        ("parentcustomerid_account@odata.bind", f"/accounts({GUID})"),
    ),
    (
        LookupRule("parentcustomerid", CUSTOMER, "account", ("accountnumber",)),
        "A1",
        {},
        ("parentcustomerid_account@odata.bind", "/accounts(accountnumber='A1')"),
    ),
    (
        LookupRule("parentcustomerid", CUSTOMER, "account", ("accountnumber",)),
        "O'Neil #1",
        {},
        ("parentcustomerid_account@odata.bind", "/accounts(accountnumber='O''Neil%20%231')"),
    ),
    (
        LookupRule("parentcustomerid", CUSTOMER),
        {"table": "contact", "id": GUID},
        {},
        ("parentcustomerid_contact@odata.bind", f"/contacts({GUID})"),
    ),
    (
        LookupRule("parentcustomerid", CUSTOMER),
        {"table": "account", "accountnumber": "B2"},
        {},
        ("parentcustomerid_account@odata.bind", "/accounts(accountnumber='B2')"),
    ),
    (
        LookupRule("parentcustomerid", CUSTOMER, "account", table_field="kind"),
        GUID,
        {"kind": "contact"},
        ("parentcustomerid_contact@odata.bind", f"/contacts({GUID})"),
    ),
    (
        LookupRule("parentcustomerid", {"account": ACCOUNT_T}),
        GUID,
        {},
        ("parentcustomerid_account@odata.bind", f"/accounts({GUID})"),
    ),
]


@pytest.mark.parametrize(("rule", "value", "record", "expected"), BINDS)
def test_lookups_bind_through_the_navigation_property(rule, value, record, expected):
    """§4.6/§4.7: `<nav>@odata.bind` by GUID or alternate key, polymorphic by table hint."""
    assert bind_value(rule, value, record) == expected


BIND_REJECTIONS = [
    (LookupRule("parentcustomerid", CUSTOMER), GUID, "needs a target table among account, contact"),
    (LookupRule("parentcustomerid", CUSTOMER), {"table": "lead", "id": GUID}, "got 'lead'"),
    (LookupRule("parentcustomerid", CUSTOMER, "account"), "A1", "is not a GUID"),
    (
        LookupRule("parentcustomerid", CUSTOMER),
        {"table": "account", "name": "x"},
        "alternate keys [['accountnumber']]",
    ),
    (LookupRule("parentcustomerid", CUSTOMER, "account", ("accountnumber",)), "", "is empty"),
]


@pytest.mark.parametrize(("rule", "value", "words"), BIND_REJECTIONS)
def test_lookup_values_that_cannot_bind_are_rejected(rule, value, words):
    """§4.7/§3.6: ambiguous tables, bad GUIDs, unaddressable keys never reach the service."""
    with pytest.raises(RecordRejected, match=words.replace("[", r"\[").replace("]", r"\]")):
        bind_value(rule, value, {})


@pytest.mark.parametrize(
    ("value", "segment"),
    [("a b'c", "accountnumber='a%20b''c'"), ("x=1;y", "accountnumber='x%3D1%3By'")],
)
def test_a_bind_key_is_rendered_as_a_key_url_is(value, segment):
    """§4.3: one rendering for bind keys and row keys: quotes doubled, then percent-encoded."""
    rule = LookupRule("parentcustomerid", CUSTOMER, "account", ("accountnumber",))
    _, path = bind_value(rule, value, {})
    assert path == f"/accounts({segment})"
    assert path == "/" + webapi.entity_path("accounts", {"accountnumber": value}, "accountid")


@pytest.mark.parametrize("value", ["A/1", "50%", "a&b", "x:y", "1+1", "C:\\tmp"])
def test_a_bind_key_a_url_cannot_carry_waits_for_the_rows_guid(value):
    """§3.6: no key URL carries it, so the bind is resolved by $filter first (never refused)."""
    rule = LookupRule("parentcustomerid", CUSTOMER, "account", ("accountnumber",))
    nav, path = bind_value(rule, value, {})
    assert nav == "parentcustomerid_account@odata.bind"
    assert path == KeyBind("parentcustomerid", ACCOUNT_T, {"accountnumber": value})
    assert isinstance(path, KeyBind)
    assert path.path(GUID.upper()) == f"/accounts({GUID})"


def _mapper(
    contact, operation: str, ids: tuple[str, ...], mode: IdMode, **fields: str
) -> RecordMapper:
    rule = LookupRule("parentcustomerid", CUSTOMER, "account", ("accountnumber",))
    return RecordMapper(
        table=contact,
        operation=operation,
        fields=fields or {"email": "emailaddress1", "first": "firstname", "last": "lastname"},
        id_columns=ids,
        id_mode=mode,
        lookups={"parentcustomerid": rule},
    )


def test_upsert_by_alternate_key_keeps_key_out_of_the_body(contact):
    """§4.3: do not repeat alternate-key columns in the body."""
    mapper = _mapper(contact, "upsert", ("emailaddress1", "lastname"), IdMode.ALTERNATE)
    mapped = mapper.map({"email": "a@b.c", "first": "Ann", "last": "Lee", "_sdc_x": 1})
    assert mapped.key == {"emailaddress1": "a@b.c", "lastname": "Lee"}
    assert mapped.payload == {"firstname": "Ann"}


def test_upsert_by_primary_id(contact):
    mapper = _mapper(
        contact, "upsert", ("contactid",), IdMode.PRIMARY, id="contactid", first="firstname"
    )
    mapped = mapper.map({"id": GUID.upper(), "first": "Ann"})
    assert mapped.key == {"contactid": GUID}
    assert mapped.payload == {"firstname": "Ann"}


def test_match_mode_leaves_the_column_in_the_body_for_the_writer_to_match(contact):
    mapper = _mapper(contact, "upsert", ("emailaddress1",), IdMode.MATCH)
    mapped = mapper.map({"email": "a@b.c", "first": "Ann"})
    assert mapped.key == {"emailaddress1": "a@b.c"}
    assert mapped.payload == {"emailaddress1": "a@b.c", "firstname": "Ann"}


def test_keyed_create_names_its_key_for_the_writer(contact):
    """The writer derives the primary id from the key (identity.key_guid)."""
    mapper = _mapper(contact, "create", ("emailaddress1",), IdMode.MATCH)
    mapped = mapper.map({"email": "a@b.c", "first": "Ann"})
    assert mapped.key == {"emailaddress1": "a@b.c"}
    assert mapped.payload == {"emailaddress1": "a@b.c", "firstname": "Ann"}


def test_keyless_create_gets_an_id_from_its_stream_and_content(contact):
    """§10.2: the same record of the same stream always names the same row."""
    mapper = _mapper(contact, "create", (), IdMode.NONE)
    record = {"first": "A", "_sdc_extracted_at": "2026-01-01"}
    mapped = mapper.map(record)
    assert mapped.payload == {"firstname": "A"}
    assert mapped.key == {"contactid": content_guid("", "contact", {"first": "A"})}
    assert mapper.map({**record, "_sdc_extracted_at": "2027-01-01"}).key == mapped.key
    assert mapper.map({"first": "B"}).key != mapped.key


def test_keyless_create_takes_a_given_primary_id_or_leaves_it_to_the_writer(contact):
    given = _mapper(contact, "create", (), IdMode.NONE, id="contactid", first="firstname")
    assert given.map({"id": GUID, "first": "A"}).key == {"contactid": GUID}
    random = RecordMapper(contact, "create", {"first": "firstname"}, content_ids=False)
    assert random.map({"first": "A"}).key is None


def test_nulls_clear_on_upsert_and_are_omitted_on_create(contact):
    """§4.6: null clears a column; on create it is left out so defaults apply."""
    fields = {"email": "emailaddress1", "first": "firstname", "parent": "parentcustomerid"}
    upsert = _mapper(contact, "upsert", ("emailaddress1",), IdMode.MATCH, **fields)
    payload = upsert.map({"email": "a@b.c", "first": None, "parent": None}).payload
    assert payload == {
        "emailaddress1": "a@b.c",
        "firstname": None,
        "parentcustomerid_account@odata.bind": None,
    }
    create = _mapper(contact, "create", ("emailaddress1",), IdMode.MATCH, **fields)
    assert "firstname" not in create.map({"email": "a@b.c", "first": None}).payload


RECORD_REJECTIONS = [
    (
        "upsert",
        ("emailaddress1",),
        IdMode.MATCH,
        {"first": "A"},
        "ID field emailaddress1 is null or missing",
    ),
    ("upsert", ("emailaddress1",), IdMode.MATCH, {"email": None}, "ID field emailaddress1"),
    (
        "upsert",
        ("emailaddress1",),
        IdMode.MATCH,
        {"email": "a", "owner": None},
        "required and cannot be cleared",
    ),
    ("upsert", (), IdMode.NONE, {"email": "a"}, "upsert needs an ID field"),
    (
        "upsert",
        ("emailaddress1",),
        IdMode.MATCH,
        {"email": "a", "parent": float("nan")},
        "lookup 'parentcustomerid' to 'account': Cannot use nan",
    ),
]


@pytest.mark.parametrize(("operation", "ids", "mode", "record", "words"), RECORD_REJECTIONS)
def test_records_that_cannot_be_written_are_rejected(  # noqa: PLR0917 - a fixture and five parameters
    contact, operation, ids, mode, record, words
):
    fields = {
        "email": "emailaddress1",
        "last": "lastname",
        "owner": "ownerid",
        "parent": "parentcustomerid",
    }
    with pytest.raises(RecordRejected, match=words):
        _mapper(contact, operation, ids, mode, **fields).map(record)


def test_unaddressable_alternate_key_values_are_left_to_the_writer(contact):
    """§3.6: the writer resolves such keys with $filter, so the mapper passes them on."""
    mapper = _mapper(contact, "update", ("emailaddress1", "lastname"), IdMode.ALTERNATE)
    assert mapper.map({"email": "a/b", "last": "L"}).key == {
        "emailaddress1": "a/b",
        "lastname": "L",
    }


def test_delete_sends_only_the_key(contact):
    mapper = _mapper(contact, "delete", ("emailaddress1", "lastname"), IdMode.ALTERNATE)
    mapped = mapper.map({"email": "a@b.c", "last": "Lee", "first": "Ann"})
    assert mapped.payload == {}
    assert mapped.key == {"emailaddress1": "a@b.c", "lastname": "Lee"}


def test_empty_strings_are_null_for_every_column_but_text(contact):
    """A CSV's empty cell: null for numbers, dates, choices, lookups; text keeps its ''."""
    fields = {
        "email": "emailaddress1",
        "first": "firstname",
        "income": "annualincome",
        "born": "birthdate",
        "hold": "creditonhold",
        "parent": "parentcustomerid",
    }
    record = {"email": "a@b.c", "first": "", "income": "", "born": " ", "hold": "", "parent": ""}
    upsert = _mapper(contact, "upsert", ("emailaddress1",), IdMode.MATCH, **fields).map(record)
    assert upsert.payload == {
        "emailaddress1": "a@b.c",
        "firstname": "",
        "annualincome": None,
        "birthdate": None,
        "creditonhold": None,
        "parentcustomerid_account@odata.bind": None,
    }
    create = _mapper(contact, "create", ("emailaddress1",), IdMode.MATCH, **fields).map(record)
    assert create.payload == {"emailaddress1": "a@b.c", "firstname": ""}


def test_an_empty_string_for_a_required_or_id_column_is_a_missing_value(contact):
    owner = _mapper(
        contact, "upsert", ("emailaddress1",), IdMode.MATCH, email="emailaddress1", o="ownerid"
    )
    with pytest.raises(RecordRejected, match="'ownerid' is required and cannot be cleared"):
        owner.map({"email": "a@b.c", "o": ""})
    by_id = _mapper(contact, "upsert", ("contactid",), IdMode.PRIMARY, id="contactid")
    with pytest.raises(RecordRejected, match="ID field contactid is null or missing"):
        by_id.map({"id": "  "})


def test_a_rejected_value_names_its_field_column_and_value(contact):
    mapper = _mapper(
        contact, "upsert", ("emailaddress1",), IdMode.MATCH, e="emailaddress1", i="annualincome"
    )
    with pytest.raises(RecordRejected) as caught:
        mapper.map({"i": "abc"})
    assert caught.value.reason == (
        "field 'i': column 'annualincome' (MoneyType) needs a number, got 'abc'"
    )


def test_an_integer_id_into_a_text_key_is_its_text(contact):
    """A tap's integer id lands in a text alternate key (and is quoted in the URL as text)."""
    mapper = _mapper(contact, "upsert", ("emailaddress1", "lastname"), IdMode.ALTERNATE)
    mapped = mapper.map({"email": 42, "last": 7, "first": 1})
    assert mapped.key == {"emailaddress1": "42", "lastname": "7"}
    assert mapped.payload == {"firstname": "1"}
    segment = webapi.key_segment(mapped.key, "contactid")
    assert segment == "emailaddress1='42',lastname='7'"


def test_a_number_bound_to_a_text_key_is_quoted():
    text_key = replace(ACCOUNT_T, text_columns=frozenset({"accountnumber"}))
    rule = LookupRule("parentcustomerid", {"account": text_key}, "account", ("accountnumber",))
    assert bind_value(rule, 1001, {}) == (
        "parentcustomerid_account@odata.bind",
        "/accounts(accountnumber='1001')",
    )


def _nested_mapper(contact, operation: str = "upsert", **extra: t.Any) -> RecordMapper:
    return RecordMapper(
        table=contact,
        operation=operation,
        fields={"email": "emailaddress1", "name.first": "firstname", "name.last": "lastname"},
        paths={"name.first": ("name", "first"), "name.last": ("name", "last")},
        id_columns=("emailaddress1",),
        id_mode=IdMode.MATCH,
        **extra,
    )


def test_dotted_paths_read_nested_values(contact):
    mapped = _nested_mapper(
        contact,
    ).map({"email": "a@b.c", "name": {"first": "Ann", "last": "Lee"}})
    assert mapped.payload == {"emailaddress1": "a@b.c", "firstname": "Ann", "lastname": "Lee"}


def test_a_missing_nested_key_or_object_is_not_sent_and_a_null_object_clears(contact):
    upsert = _nested_mapper(
        contact,
    )
    assert upsert.map({"email": "a@b.c", "name": {"first": "Ann"}}).payload == {
        "emailaddress1": "a@b.c",
        "firstname": "Ann",
    }
    assert upsert.map({"email": "a@b.c", "name": None}).payload == {
        "emailaddress1": "a@b.c",
        "firstname": None,
        "lastname": None,
    }
    assert upsert.map({"email": "a@b.c"}).payload == {"emailaddress1": "a@b.c"}


def test_a_nested_path_through_a_non_object_rejects_the_record(contact):
    with pytest.raises(
        RecordRejected, match=r"field 'name\.first': 'name' is 'Ann', not an object"
    ):
        _nested_mapper(
            contact,
        ).map({"email": "a@b.c", "name": "Ann"})


def test_json_text_fields_write_objects_and_arrays_as_compact_json(contact):
    mapper = RecordMapper(
        table=contact,
        operation="create",
        fields={"address": "description", "tags": "firstname"},
        json_text=frozenset({"address", "tags"}),
        content_ids=False,
    )
    record = {"address": {"city": "Zürich", "zip": decimal.Decimal("8001.5")}, "tags": ["a", 1]}
    assert mapper.map(record).payload == {
        "description": '{"city":"Zürich","zip":8001.5}',
        "firstname": '["a",1]',
    }
    assert mapper.map({"address": "plain"}).payload == {"description": "plain"}
    with pytest.raises(RecordRejected, match="is 51 characters long"):
        mapper.map({"tags": ["x" * 47]})
