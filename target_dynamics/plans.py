"""The plan types: what a stream asks of a table, and what writing it gave.

Built by planning and the sinks, carried through the pipeline, consumed by the writer
(:mod:`~target_dynamics.writer`); settings name operations with :class:`Operation`.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from enum import StrEnum

from target_dynamics.identity import IdMode

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from target_dynamics.collation import Collation, KeyId
    from target_dynamics.errors import WebApiError


class Operation(StrEnum):
    """What to do with each row."""

    UPSERT = "upsert"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    DEACTIVATE = "deactivate"
    """Set the table's inactive state and its default status (:attr:`WritePlan.deactivation`)."""

    @property
    def removes(self) -> bool:
        """Whether the operation takes a row out of use (delete or deactivate): key only."""
        return self in {Operation.DELETE, Operation.DEACTIVATE}


@dataclass(frozen=True)
class WritePlan:
    """How rows of one stream map onto one table."""

    entity_set: str
    logical_name: str
    primary_id: str
    operation: Operation
    id_mode: IdMode = IdMode.NONE
    """How rows name their row (the keys of :attr:`Row.key`)."""
    supports_bulk: bool = True
    all_matches: bool = False
    """``IdMode.MATCH``: apply the operation to every row that matches (else reject the record)."""
    deactivation: Mapping[str, int] | None = None
    """The body a deactivation sends (``TableInfo.deactivation``); None: the table has no state."""


@dataclass(slots=True, init=False, eq=False)
class Row:
    """One record ready to send; never changed once made.

    Not frozen: a row is made for every record, and a frozen dataclass costs twice as much.
    """

    index: int
    """The caller's position, echoed in results."""
    payload: Mapping[str, t.Any]
    """JSON-ready body: logical names, ``nav@odata.bind`` values; may include key columns."""
    key: Mapping[str, t.Any] | None
    """The ID field's values by column: ``{primary_id: guid}``, alternate key or matched column
    values; None for a create whose primary id the writer chooses at random."""
    ident: KeyId | None
    """:meth:`Collation.key_id` of ``key``, computed once."""

    def __init__(
        self,
        index: int,
        payload: Mapping[str, t.Any],
        key: Mapping[str, t.Any] | None,
        collation: Collation,
    ) -> None:
        """Make the row; ``collation`` (:attr:`Writer.collation`) compares its key values."""
        self.index = index
        self.payload = payload
        self.key = key
        self.ident = collation.key_id(key) if key else None


@dataclass
class WriteResult:
    """Every row index lands or is rejected; counts where the service tells."""

    landed: list[int]
    rejected: list[tuple[int, WebApiError]]
    created: int = 0
    updated: int = 0
    deleted: int = 0
    deactivated: int = 0
    """Rows set inactive (a row already inactive is set again: the service does not tell)."""
    gone: int = 0
    """Rows a delete or deactivation found already gone: done, not rejected."""
    upserted: int = 0
    """Upserts: created or updated, the service does not say which."""
    ids: dict[int, list[str]] = field(default_factory=dict)
    """With ``write(..., ids=True)``: the primary ids of the rows each landed record wrote."""

    def count(self, operation: Operation, rows: int) -> None:
        """Count ``rows`` as done by ``operation`` (what a dry run would do)."""
        if operation is Operation.CREATE:
            self.created += rows
        elif operation is Operation.UPDATE:
            self.updated += rows
        elif operation is Operation.UPSERT:
            self.upserted += rows
        elif operation is Operation.DELETE:
            self.deleted += rows
        else:
            self.deactivated += rows

    def merge(self, other: WriteResult) -> None:
        """Add ``other``'s outcomes to this result."""
        self.landed.extend(other.landed)
        self.rejected.extend(other.rejected)
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.deactivated += other.deactivated
        self.gone += other.gone
        self.upserted += other.upserted
