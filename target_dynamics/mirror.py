"""Full-table mirrors: remove the rows in a stream's scope that a complete version did not send.

A full-table tap stamps each RECORD with the ``version`` of its sync and sends
``ACTIVATE_VERSION`` with that version after the last of them; a first sync also sends one
before its records (Singer spec, "ACTIVATE_VERSION"). Here only an ``ACTIVATE_VERSION`` that
follows records of its version ends the version; one that comes first starts it and removes
nothing. (Taps built on the Meltano SDK 0.54 send it only at the start of a sync, so with them
nothing is ever removed: the end of the input does not prove the tap read its whole table.)

At the end of a version of a stream with ``streams.<stream>.mirror_scope`` (an OData ``$filter``
naming the rows the stream owns), the rows in scope that the version did not address are
deactivated (still active ones only), or deleted with ``hard_delete``, by primary id, through
the writer (bulk, retries, "already gone" is done; §4.11). Rows are read with paging
(``Prefer: odata.maxpagesize``, §2.2), selecting the primary id and the ID field's columns.

Kept in memory: the primary ids the version's records addressed (one set of GUIDs), and the
ID field values of its rejected records (their rows are kept: the source still has them).
"""

from __future__ import annotations

import dataclasses
import typing as t
from dataclasses import dataclass, field

from target_dynamics import webapi
from target_dynamics.errors import MetadataError, WebApiError
from target_dynamics.identity import IdMode
from target_dynamics.plans import Operation, Row, WritePlan, WriteResult

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from target_dynamics.collation import Collation
    from target_dynamics.writer import Transport, Writer

PAGE_SIZE = 5000
"""Rows per page when reading the scope (Dataverse's default and maximum, §2.2)."""


@dataclass
class _Version:
    """What the records of one version addressed."""

    number: int | None = None
    received: int = 0
    sent: set[str] = field(default_factory=set)
    held: set[tuple[tuple[str, t.Any], ...]] = field(default_factory=set)


class Mirror:
    """One stream's mirror scope and the version being received."""

    def __init__(  # noqa: PLR0913 - keyword-only knobs, each documented
        self,
        client: Transport,
        plan: WritePlan,
        scope: str,
        id_columns: Sequence[str],
        *,
        hard_delete: bool,
        collation: Collation,
    ) -> None:
        """Prepare the mirror of one stream.

        Args:
            client: Reads the rows in scope.
            plan: The stream's write plan (table, primary id, deactivation body).
            scope: The OData ``$filter`` naming the stream's rows.
            id_columns: The ID field's columns (to keep the rows of rejected records).
            hard_delete: Delete the rows instead of deactivating them.
            collation: How the environment compares key values (rows of rejected records).
        """
        self._client = client
        self.scope = scope
        self.operation = Operation.DELETE if hard_delete else Operation.DEACTIVATE
        self._plan = dataclasses.replace(plan, operation=self.operation, id_mode=IdMode.PRIMARY)
        self._id_columns = [c for c in id_columns if c != plan.primary_id]
        self._version = _Version()
        self._collation = collation

    def check(self, where: str) -> None:
        """Ask the service for one row in scope: a filter it refuses fails before any write.

        Raises:
            MetadataError: the table cannot be deactivated, or the service refused the filter.
        """
        plan = self._plan
        if self.operation is Operation.DEACTIVATE and plan.deactivation is None:
            msg = (
                f"{where}: {plan.logical_name} has no inactive state to deactivate rows with "
                "(§4.10); set hard_delete: true to delete the rows a version did not send"
            )
            raise MetadataError(msg)
        request = webapi.query(plan.entity_set, [plan.primary_id], self._filter())
        try:
            self._client.get_json(f"{request.path}&$top=1")
        except WebApiError as error:
            if error.is_transient:
                raise
            msg = (
                f"{where}: mirror_scope {self.scope!r} is not a filter {plan.entity_set} "
                f"accepts: {error.message} (write an OData $filter over column logical names, "
                "e.g. \"new_source eq 'newsletter'\")"
            )
            raise MetadataError(msg) from None

    def receive(self, version: int | None) -> None:
        """Count a record of ``version``; a new version starts afresh."""
        if version != self._version.number:
            self._version = _Version(version)
        self._version.received += 1

    def sent(self, version: int | None, guids: Iterable[str]) -> None:
        """Note the primary ids a landed record of ``version`` addressed."""
        if version is not None and version == self._version.number:
            self._version.sent.update(str(guid).lower() for guid in guids)

    def held(self, version: int | None, key: Mapping[str, t.Any] | None) -> None:
        """Keep the row of a rejected record of ``version`` (named by ``key``)."""
        if key is None or version is None or version != self._version.number:
            return
        if key.keys() == {self._plan.primary_id}:
            self._version.sent.add(str(key[self._plan.primary_id]).lower())
        else:
            self._version.held.add(self._collation.key_id(key))

    def ends(self, version: int) -> bool:
        """Whether records of ``version`` came before its ``ACTIVATE_VERSION`` (its end)."""
        return self._version.number == version and self._version.received > 0

    def close(self) -> None:
        """Forget the version (its ``ACTIVATE_VERSION`` was handled)."""
        self._version = _Version()

    def absent(self) -> list[str]:
        """The primary ids of the rows in scope (still active, unless deleting) not sent."""
        plan, version = self._plan, self._version
        request = webapi.query(
            plan.entity_set, [plan.primary_id, *self._id_columns], self._filter()
        )
        headers = webapi.prefer(f"odata.maxpagesize={PAGE_SIZE}")
        absent: list[str] = []
        key_id = self._collation.key_id
        for row in self._client.get_all(request.path, headers):
            guid = str(row[plan.primary_id]).lower()
            if guid in version.sent:
                continue
            if version.held and key_id({c: row.get(c) for c in self._id_columns}) in version.held:
                continue
            absent.append(guid)
        return absent

    def remove(self, writer: Writer, guids: Sequence[str]) -> WriteResult:
        """Deactivate or delete the rows ``guids`` by primary id."""
        rows = [
            Row(i, {}, {self._plan.primary_id: guid}, writer.collation)
            for i, guid in enumerate(guids)
        ]
        return writer.write(self._plan, rows)

    def _filter(self) -> str:
        """The scope, narrowed to rows not yet inactive when deactivating (§4.10)."""
        deactivation = self._plan.deactivation
        if self.operation is Operation.DELETE or deactivation is None:
            return self.scope
        return f"({self.scope}) and statecode ne {int(deactivation['statecode'])}"
