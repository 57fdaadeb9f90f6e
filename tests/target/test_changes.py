"""Each record's operation and the order of mixed operations (pure)."""

from __future__ import annotations

import pytest

from target_dynamics.changes import record_operation, write_phases
from target_dynamics.collation import DEFAULT
from target_dynamics.mapping import RecordRejected
from target_dynamics.plans import Operation, Row
from target_dynamics.settings import StreamSettings

UPSERT, CREATE, DELETE = Operation.UPSERT, Operation.CREATE, Operation.DELETE
DEACTIVATE, UPDATE = Operation.DEACTIVATE, Operation.UPDATE


def settings(**values: object) -> StreamSettings:
    base = {"entity": "contact", "operation": UPSERT, "id_field": ("emailaddress1",)}
    base |= {"columns": {}, "lookups": {}, "id_from_config": True}
    return StreamSettings(**{**base, **values})


@pytest.mark.parametrize(
    ("record", "options", "expected"),
    [
        ({"op": "DELETE"}, {}, DELETE),
        ({"op": " Deactivate "}, {}, DEACTIVATE),
        ({"op": "insert"}, {}, UPSERT),
        ({"op": "update"}, {}, UPDATE),
        ({"op": None}, {}, UPSERT),
        ({"op": ""}, {}, UPSERT),
        ({"op": "insert", "_sdc_deleted_at": "2024-01-01T00:00:00Z"}, {}, DEACTIVATE),
        ({"_sdc_deleted_at": "2024-01-01T00:00:00Z"}, {"hard_delete": True}, DELETE),
        ({"_sdc_deleted_at": None, "op": "create"}, {}, CREATE),
    ],
)
def test_record_operation(record, options, expected):
    stream = settings(operation_field="op", **options)
    assert record_operation(record, stream, UPSERT, keyless=False) is expected


def test_keyless_upsert_creates_and_without_operation_field_the_stream_decides():
    stream = settings(operation_field="op")
    assert record_operation({"op": "upsert"}, stream, CREATE, keyless=True) is CREATE
    assert record_operation({"op": "delete"}, settings(), UPDATE, keyless=False) is UPDATE


def test_unknown_operation_names_the_allowed_values():
    with pytest.raises(RecordRejected, match="'merge' names no operation: use one of upsert, "):
        record_operation({"op": "merge"}, settings(operation_field="op"), UPSERT, keyless=False)


def row(index: int, email: str | None) -> Row:
    return Row(index, {}, {"emailaddress1": email} if email else None, DEFAULT)


def test_phases_keep_each_rows_changes_in_order():
    rows = [
        (UPSERT, row(0, "a@x")),
        (DELETE, row(1, "b@x")),
        (UPSERT, row(2, "c@x")),
        (DELETE, row(3, "A@X")),  # the same row as 0 (keys compare case-insensitively)
        (UPSERT, row(4, "d@x")),
        (CREATE, row(5, None)),
    ]
    phases = [{op: [r.index for r in group] for op, group in p.items()} for p in write_phases(rows)]
    assert phases == [{UPSERT: [0, 2], DELETE: [1]}, {DELETE: [3], UPSERT: [4], CREATE: [5]}]
