"""Row identity: how records name their rows, and the GUIDs the target chooses (pure).

Every write is addressed one of four ways (:class:`IdMode`). Creates always carry a primary id,
so a create whose answer was lost and that is sent again answers "already exists", which means
it landed (§10.2). The ids the target chooses are deterministic, so a rerun of the same input
after a crash, or a replay of a dead-letter file, chooses them again:

- :func:`key_guid`: a create by alternate key or matched column, and an upsert by matched column
  or unaddressable key that finds no row, get the UUIDv5 of the table and the key values
  (strings folded as the environment's collation compares them, :mod:`collation`: "José" and
  "jose" get one id under ``_CI_AI``, two under ``_CI_AS``; ASCII keys get the same id under
  both).
- :func:`content_guid`: a create without ID field gets the UUIDv5 of the stream, the table and
  the record's content (every field but the ``_sdc_*`` metadata and ``_dead_letter``), so
  identical records of a stream are one row. ``keyless_create_ids: random`` gives each record a
  random id instead (truly append-only data, where identical records are distinct rows; a rerun
  after a crash may then create a row twice).
"""

from __future__ import annotations

import json
import typing as t
import uuid
from enum import StrEnum

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from target_dynamics.collation import Collation

KEY_NAMESPACE = uuid.UUID("5b0c1f8e-7f0c-4c7e-9a57-3d1c2b6f0d11")
"""Namespace of :func:`key_guid`."""
CONTENT_NAMESPACE = uuid.UUID("9d3e0a4c-2f61-4b8a-8e15-7c0b6a2d4f93")
"""Namespace of :func:`content_guid`."""
_NOT_CONTENT = "_dead_letter"


class IdMode(StrEnum):
    """How records name the row they write."""

    NONE = "none"  # no ID field: every record creates a row
    PRIMARY = "primary"  # the table's primary id column (a GUID)
    ALTERNATE = "alternate"  # the columns of an active alternate key
    MATCH = "match"  # any other column: matched to GUIDs by a lookup query


def _text(value: t.Any) -> str:
    return json.dumps(value, default=str, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_guid(table: str, key: Mapping[str, t.Any], collation: Collation) -> str:
    """The primary id the target gives the row of ``table`` with these key values."""
    parts = [[column, collation.norm(key[column])] for column in sorted(key)]
    return str(uuid.uuid5(KEY_NAMESPACE, _text([table, parts])))


def content_guid(stream: str, table: str, record: Mapping[str, t.Any]) -> str:
    """The primary id of a keyless create: the same record of the same stream, the same id."""
    content = {
        name: value
        for name, value in record.items()
        if not name.startswith("_sdc_") and name != _NOT_CONTENT
    }
    return str(uuid.uuid5(CONTENT_NAMESPACE, _text([stream, table, content])))
