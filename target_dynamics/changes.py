"""Which operation each record asks for, and the order mixed operations are written in (pure).

A record's operation is, first match wins:

1. ``_sdc_deleted_at`` set (the Singer mark of a row deleted at the source): ``delete`` with
   ``hard_delete``, else ``deactivate`` (the table's inactive state; the row stays).
2. ``streams.<stream>.operation_field``, when configured and the record's value is not null or
   empty: ``upsert``, ``create``, ``update``, ``delete`` or ``deactivate`` in any case, and
   ``insert`` (a change-data-capture op) as ``upsert``, so a replayed insert never fails; any
   other value rejects the record, naming the allowed ones.
3. The stream's operation.

An upsert of a stream without ID field creates, as the stream's own upsert does.
"""

from __future__ import annotations

import typing as t

from target_dynamics.mapping import RecordRejected
from target_dynamics.planning import DELETED_AT
from target_dynamics.plans import Operation

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from target_dynamics.collation import KeyId
    from target_dynamics.plans import Row
    from target_dynamics.settings import StreamSettings

ALIASES: Mapping[str, Operation] = {
    **{operation.value: operation for operation in Operation},
    "insert": Operation.UPSERT,
}
"""Values of an ``operation_field`` (case-folded) and the operation each names."""


def record_operation(
    record: Mapping[str, t.Any], settings: StreamSettings, default: Operation, *, keyless: bool
) -> Operation:
    """The operation for ``record`` (see the module docstring).

    Args:
        record: The record, with its ``_sdc_*`` fields.
        settings: The stream's settings (``operation_field``, ``hard_delete``).
        default: The stream's operation.
        keyless: Whether the stream has no ID field (an upsert creates).

    Raises:
        RecordRejected: The operation field holds a value that names no operation.
    """
    if record.get(DELETED_AT) not in (None, ""):
        return Operation.DELETE if settings.hard_delete else Operation.DEACTIVATE
    name = settings.operation_field
    value = record.get(name) if name else None
    if value is None or not str(value).strip():
        return default
    found = ALIASES.get(str(value).strip().casefold())
    if found is None:
        allowed = ", ".join(ALIASES)
        msg = f"field '{name}' value {value!r} names no operation: use one of {allowed} (any case)"
        raise RecordRejected(msg)
    return Operation.CREATE if found is Operation.UPSERT and keyless else found


def write_phases(rows: Sequence[tuple[Operation, Row]]) -> list[dict[Operation, list[Row]]]:
    """Group rows by operation into phases that are written one after another.

    Within a phase no row is named by two operations, so its groups may be written in any
    order; a row named again by another operation starts the next phase, so the changes to
    one row land in input order (an insert, then its delete).
    """
    phases: list[dict[Operation, list[Row]]] = []
    current: dict[Operation, list[Row]] = {}
    owner: dict[KeyId, Operation] = {}
    for operation, row in rows:
        ident = row.ident
        if ident is not None and owner.get(ident, operation) is not operation:
            phases.append(current)
            current, owner = {}, {}
        current.setdefault(operation, []).append(row)
        if ident is not None:
            owner[ident] = operation
    if current:
        phases.append(current)
    return phases
