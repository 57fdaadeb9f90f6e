"""Stream planning at SCHEMA time, pure: which lookup tables a stream needs (§3.5)."""

from __future__ import annotations

from target_dynamics.metadata import ColumnInfo, TableInfo
from target_dynamics.planning import lookup_tables
from target_dynamics.settings import StreamSettings
from target_dynamics.writer import Operation

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
    pairs = lookup_tables(schema, _stream({"company": "parentcustomerid"}), CONTACT)
    assert pairs == [
        ("parentcustomerid", "account"),
        ("parentcustomerid", "contact"),
        ("ownerid", "systemuser"),
    ]


def test_lookup_tables_skip_plain_columns_and_unknown_fields():
    """Fields that are no lookup, or no column at all, need no other table's metadata."""
    schema = {"properties": {"firstname": {"type": "string"}, "nosuch": {"type": "string"}}}
    assert lookup_tables(schema, _stream(), CONTACT) == []
