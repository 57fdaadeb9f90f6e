"""Value conversion per column type (reference §4.6, §4.9)."""

from __future__ import annotations

import pytest

from dataverse_emulator.state.catalog import Column, Option, Table
from dataverse_emulator.state.errors import DataverseFault, Kind
from dataverse_emulator.state.values import converter

TABLE = Table(
    logical_name="task",
    schema_name="Task",
    entity_set_name="tasks",
    primary_id="activityid",
    primary_name="subject",
    columns={},
)


def convert(column: Column, value: object) -> object:
    return converter(TABLE, column)(value)


def fault(column: Column, value: object) -> DataverseFault:
    with pytest.raises(DataverseFault) as info:
        convert(column, value)
    return info.value


def test_string_too_long_message() -> None:
    """§4.9: 0x80044331 with two spaces after "occurred."."""
    subject = Column("subject", "Subject", "String", max_length=200)
    err = fault(subject, "x" * 201)
    assert (err.kind, err.code) == (Kind.BAD_REQUEST, "0x80044331")
    assert err.message == (
        "A validation error occurred.  The length of the 'subject' attribute of the 'task' "
        "entity exceeded the maximum allowed length of '200'."
    )
    assert convert(subject, "x" * 200) == "x" * 200


def test_wrong_json_type_is_payload_error() -> None:
    """§4.9: payload errors are 0x80048d19 naming the entity set and the Edm type."""
    err = fault(Column("subject", "Subject", "String"), 12)
    assert err.code == "0x80048d19"
    assert err.message.startswith(
        "Error identified in Payload provided by the user for Entity :'tasks'"
    )
    assert "Edm.String" in err.message


@pytest.mark.parametrize(
    ("column", "value", "edm"),
    [
        (Column("x", "X", "Uniqueidentifier"), "not-a-guid", "Edm.Guid"),
        (Column("x", "X", "DateTime"), "2024-13-01T00:00:00Z", "Edm.DateTimeOffset"),
        (
            Column("x", "X", "DateTime", datetime_behavior="DateOnly"),
            "2024-01-01T00:00:00Z",
            "Edm.Date",
        ),
        (Column("x", "X", "Integer"), "5", "Edm.Int32"),
        (Column("x", "X", "Integer"), 2**31, "Edm.Int32"),
        (Column("x", "X", "Boolean"), "true", "Edm.Boolean"),
    ],
)
def test_malformed_literal(column: Column, value: object, edm: str) -> None:
    """§4.6: literals that do not parse as the column's Edm type are OData payload errors."""
    err = fault(column, value)
    assert err.code == "0x80048d19"
    assert f"expected type '{edm}'" in err.message


def test_choice_out_of_range() -> None:
    """§4.9, §11 #2: 400 0x8004431A listing the accepted values."""
    column = Column(
        "gendercode", "GenderCode", "Picklist", options=(Option(1, "M"), Option(2, "F"))
    )
    err = fault(column, 3)
    assert (err.kind, err.code) == (Kind.BAD_REQUEST, "0x8004431A")
    assert err.message.endswith("is outside the valid range. Accepted Values: 1,2")
    assert convert(column, 2) == 2


def test_multiselect_normalised_and_checked() -> None:
    """§4.6: multi-select choices are a comma-separated string; "1, 9" is read back "1,9"."""
    column = Column(
        "hobbies", "Hobbies", "MultiSelectPicklist", options=(Option(1, "a"), Option(9, "b"))
    )
    assert convert(column, "1, 9") == "1,9"
    assert fault(column, "1,4").code == "0x8004431A"
    assert fault(column, [1, 9]).code == "0x80048d19"


def test_numbers_rounded_and_ranged() -> None:
    """§4.6: Double rounded to precision 5; ranges from MinValue / MaxValue."""
    lat = Column("address1_latitude", "Lat", "Double", precision=5, min_value=-90, max_value=90)
    assert convert(lat, 47.639583) == 47.63958
    assert fault(lat, 91).kind is Kind.BAD_REQUEST
    money = Column("revenue", "Revenue", "Money", precision=2)
    assert convert(money, 5000000) == 5000000.0
    count = Column("n", "N", "Integer", min_value=0, max_value=10)
    assert convert(count, 10.0) == 10
    assert "outside the valid range" in fault(count, 11).message


def test_datetime_normalised_to_utc() -> None:
    """§4.6: offsets are converted; no offset means UTC; DateOnly behaviour keeps YYYY-MM-DD;
    DateOnly format (display only) keeps the time."""
    column = Column("x", "X", "DateTime", datetime_behavior="UserLocal")
    assert convert(column, "2021-04-04T12:00:00-08:00") == "2021-04-04T20:00:00Z"
    assert convert(column, "2021-04-04T12:00:00") == "2021-04-04T12:00:00Z"
    date_only = Column("birthdate", "BirthDate", "DateTime", datetime_behavior="DateOnly")
    assert convert(date_only, "1990-05-01") == "1990-05-01"
    assert "outside the valid range" in fault(date_only, "1752-12-31").message
    shown_as_date = Column("x", "X", "DateTime", format="DateOnly", datetime_behavior="UserLocal")
    assert convert(shown_as_date, "2026-01-31T10:00:00Z") == "2026-01-31T10:00:00Z"
    assert convert(shown_as_date, "2026-01-31") == "2026-01-31T00:00:00Z"


def test_guid_lowercased_and_null_passes() -> None:
    """§4.6: GUID strings; JSON null clears a column."""
    column = Column("x", "X", "Uniqueidentifier")
    assert (
        convert(column, "7EB682F1-CA75-E511-80D4-00155D2A68D1")
        == "7eb682f1-ca75-e511-80d4-00155d2a68d1"
    )
    assert convert(column, None) is None
