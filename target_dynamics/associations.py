"""Many-to-many associations: relate each landed row to the rows a record field names.

Per stream, ``associations`` maps a record field to an N:N relationship of the stream's table;
the field holds one value or a list: GUIDs of the related table, or values of its ``key`` column.
Associations are written as ``$ref`` requests in ``$batch`` (Microsoft Learn, "Associate and
disassociate table rows using the Web API"); associating a pair that exists already is done, not
an error. With ``mode: sync`` each row's associations through the relationship are read first,
and those the record does not name are removed.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

import msgspec

from target_dynamics import webapi
from target_dynamics.errors import WebApiError

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from target_dynamics.collation import KeyId
    from target_dynamics.writer import Transport, Writer


@dataclass(frozen=True)
class TableRef:
    """What a ``$ref`` needs of a table."""

    logical_name: str
    entity_set: str
    primary_id: str


@dataclass(frozen=True)
class AssociationRule:
    """How one record field relates a row through one N:N relationship."""

    field: str
    relationship: str
    navigation: str
    """The stream's table's collection-valued navigation property for the relationship."""
    related: TableRef
    key: str | None = None
    """Column of the related table the values name; None: they are GUIDs."""
    sync: bool = False


@dataclass
class AssociationOutcome:
    """Pairs associated and removed for one relationship, and the records that failed."""

    added: int = 0
    removed: int = 0
    failed: dict[int, WebApiError] = field(default_factory=dict)


def _values(value: t.Any) -> list[t.Any]:
    values = value if isinstance(value, list) else [value]
    return [v for v in values if v not in (None, "")]


class StreamAssociations:
    """The N:N associations one stream writes."""

    def __init__(
        self,
        client: Transport,
        writer: Writer,
        table: TableRef,
        rules: Sequence[AssociationRule],
    ) -> None:
        self._client = client
        self._writer = writer
        self._table = table
        self.rules = tuple(rules)

    def join(
        self,
        ids: Mapping[int, Sequence[str]],
        records: Mapping[int, Mapping[str, t.Any]],
    ) -> dict[str, AssociationOutcome]:
        """Associate the rows of landed records (``ids``) with what their fields name.

        Args:
            ids: Landed record -> the primary ids of the rows it wrote.
            records: Record -> its fields.

        Returns:
            Relationship schema name -> what was done and which records failed.
        """
        return {rule.relationship: self._join(rule, ids, records) for rule in self.rules}

    def _join(
        self,
        rule: AssociationRule,
        ids: Mapping[int, Sequence[str]],
        records: Mapping[int, Mapping[str, t.Any]],
    ) -> AssociationOutcome:
        outcome = AssociationOutcome()
        named = {i: _values(records[i].get(rule.field)) for i in ids}
        related = self._related_ids(rule, named, outcome)
        wanted: dict[tuple[str, str], list[int]] = {}
        rows: dict[str, list[int]] = {}
        for index, guids in ids.items():
            if index in outcome.failed:
                continue
            for row in guids:
                rows.setdefault(row.lower(), []).append(index)
                for other in related.get(index, []):
                    wanted.setdefault((row.lower(), other), []).append(index)
        current = self._current(rule, list(rows), outcome, rows) if rule.sync else set()
        adds = [pair for pair in wanted if pair not in current]
        removes = [pair for pair in current if pair not in wanted]
        table, root = self._table.entity_set, self._client.service_root

        def add(pair: tuple[str, str]) -> webapi.WebRequest:
            return webapi.associate(
                table, pair[0], rule.navigation, rule.related.entity_set, pair[1], service_root=root
            )

        def remove(pair: tuple[str, str]) -> webapi.WebRequest:
            return webapi.disassociate(table, pair[0], rule.navigation, pair[1])

        outcome.added = self._send(adds, add, wanted, outcome, adding=True)
        outcome.removed = self._send(removes, remove, rows, outcome, adding=False)
        return outcome

    def _related_ids(
        self,
        rule: AssociationRule,
        named: Mapping[int, list[t.Any]],
        outcome: AssociationOutcome,
    ) -> dict[int, list[str]]:
        """Each record's related rows as GUIDs; a value naming no row rejects the record."""
        found: dict[KeyId, list[str]] = {}
        key_id = self._writer.collation.key_id
        if rule.key:
            keys = {key_id({rule.key: v}): {rule.key: v} for vs in named.values() for v in vs}
            if keys:
                table = rule.related
                found = self._writer.find_rows(
                    table.entity_set, table.primary_id, list(keys.values())
                )
        related: dict[int, list[str]] = {}
        for index, values in named.items():
            guids: list[str] = []
            for value in values:
                if rule.key is None and webapi.is_guid(str(value)):
                    guids.append(str(value).lower())
                    continue
                matches = found.get(key_id({rule.key: value})) if rule.key else None
                if not matches:
                    what = f"{rule.key} = {value!r}" if rule.key else f"id {value!r}"
                    outcome.failed[index] = WebApiError(
                        404,
                        None,
                        f"field '{rule.field}': no {rule.related.logical_name} row has {what} "
                        f"(association {rule.relationship})",
                    )
                    break
                guids.extend(g.lower() for g in matches)
            related[index] = guids
        return related

    def _current(
        self,
        rule: AssociationRule,
        rows: list[str],
        outcome: AssociationOutcome,
        indexes: Mapping[str, list[int]],
    ) -> set[tuple[str, str]]:
        """The pairs that exist now for ``rows`` (read in ``$batch``)."""
        column = rule.related.primary_id
        current: set[tuple[str, str]] = set()
        size = webapi.MAX_BATCH_OPERATIONS
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            requests = [
                webapi.related(self._table.entity_set, row, rule.navigation, column)
                for row in chunk
            ]
            try:
                answers = self._client.send_batch(requests)
            except WebApiError as error:
                for row in chunk:
                    outcome.failed.update(dict.fromkeys(indexes[row], error))
                continue
            for row, answer in zip(chunk, answers, strict=False):
                if not answer.ok:
                    outcome.failed.update(dict.fromkeys(indexes[row], webapi.parse_error(answer)))
                    continue
                for item in msgspec.json.decode(answer.body or b"{}").get("value", []):
                    current.add((row, str(item[column]).lower()))
        return current

    def _send(
        self,
        pairs: list[tuple[str, str]],
        build: t.Callable[[tuple[str, str]], webapi.WebRequest],
        indexes: Mapping[t.Any, list[int]],
        outcome: AssociationOutcome,
        *,
        adding: bool,
    ) -> int:
        """Send one ``$ref`` per pair in ``$batch``; count those done, note failed records."""
        done = 0
        size = webapi.MAX_BATCH_OPERATIONS
        for start in range(0, len(pairs), size):
            chunk = pairs[start : start + size]
            try:
                answers = self._client.send_batch([build(pair) for pair in chunk])
            except WebApiError as exc:
                for pair in chunk:
                    outcome.failed.update(dict.fromkeys(self._records(indexes, pair), exc))
                continue
            missing = WebApiError(0, None, "The $batch answer had no part for this association.")
            for position, pair in enumerate(chunk):
                answer = answers[position] if position < len(answers) else None
                error = missing if answer is None else None
                if answer is not None and not answer.ok:
                    error = webapi.parse_error(answer)
                    if (adding and error.already_exists) or (not adding and error.not_found):
                        error = None
                if error is None:
                    done += 1
                else:
                    outcome.failed.update(dict.fromkeys(self._records(indexes, pair), error))
        return done

    @staticmethod
    def _records(indexes: Mapping[t.Any, list[int]], pair: tuple[str, str]) -> list[int]:
        """The records a pair stands for (by pair when adding, by row when removing)."""
        return indexes.get(pair) or indexes.get(pair[0]) or []
