"""Rejected records as replayable Singer messages (JSONL).

For each stream the file gets its SCHEMA message as it arrived, with a ``_dead_letter`` property
added, then one RECORD per rejected record, as it arrived (before stream maps), with
``_dead_letter`` holding the error and where the record came from: ``{"error", "code",
"status", "operation", "table", "source", "at"}`` (``source``: ``input line 12``, or a BATCH
message's file and line, ``file:///tmp/b-1.json.gz line 3``).
``target-dynamics --config c.json < dead-letter.jsonl`` re-sends them: the target ignores
``_dead_letter``. Records carry only source data and Dataverse's messages, never settings.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import typing as t
from dataclasses import dataclass
from pathlib import Path

from singer_sdk.singerlib.json import serialize_json

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

FIELD = "_dead_letter"


@dataclass(frozen=True)
class DeadLetter:
    """Why one record was rejected."""

    error: str
    code: str | None
    status: int | None
    operation: str
    table: str
    source: str | None = None

    def as_dict(self) -> dict[str, t.Any]:
        """The ``_dead_letter`` value."""
        return {
            "error": self.error,
            "code": self.code,
            "status": self.status,
            "operation": self.operation,
            "table": self.table,
            "source": self.source,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }


def schema_message(message: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A SCHEMA message that also declares ``_dead_letter``."""
    out = copy.deepcopy(dict(message))
    properties = out.setdefault("schema", {}).setdefault("properties", {})
    properties[FIELD] = {"type": ["object", "null"]}
    return out


class DeadLetterFile:
    """Appends rejected records to ``path`` (nothing when ``path`` is None); thread-safe."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: t.TextIO | None = None
        self._schemas: dict[str, str] = {}

    def write(
        self,
        stream: str,
        schema: Mapping[str, t.Any],
        rejected: Sequence[tuple[Mapping[str, t.Any], DeadLetter]],
    ) -> None:
        """Append ``rejected`` (record as received, reason) of ``stream`` (SCHEMA ``schema``)."""
        if not self.path or not rejected:
            return
        lines = []
        schema_line = serialize_json(schema_message({**schema, "stream": stream}))
        with self._lock:
            if self._schemas.get(stream) != schema_line:
                self._schemas[stream] = schema_line
                lines.append(schema_line)
            for record, reason in rejected:
                body = {**record, FIELD: reason.as_dict()}
                lines.append(serialize_json({"type": "RECORD", "stream": stream, "record": body}))
            if self._file is None:
                self._file = Path(self.path).expanduser().open("a", encoding="utf-8")
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file, if it was opened."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
