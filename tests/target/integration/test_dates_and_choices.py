"""Date behaviours and digit-labelled choices, from the CLI to the emulator (§4.6).

The custom table (``data/test_dates_and_choices.json``) has a UserLocal and a
TimeZoneIndependent column with DateOnly *format* (display only: both are
``Edm.DateTimeOffset``), a DateOnly-behaviour column (``Edm.Date``), and a choice whose labels
are digits (value 2 labelled "1", value 1 labelled "2").
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest

from dataverse_emulator.testing import running_emulator

if t.TYPE_CHECKING:
    import subprocess

ENTITIES = Path(__file__).with_name("data") / "test_dates_and_choices.json"
PROPERTIES = ("new_code", "new_grade", "new_shownasdate", "new_localdate", "new_day")


@pytest.fixture(scope="module")
def readings_emulator():
    with running_emulator(latency="zero", entities_file=ENTITIES) as server:
        yield server


def load(server, singer, tmp_path: Path, records: list[dict]) -> subprocess.CompletedProcess[str]:
    """Run the console script on a CSV-like stream (every property a string)."""
    schema = {"properties": {p: {"type": ["string", "null"]} for p in PROPERTIES}}
    messages = [
        {"type": "SCHEMA", "stream": "readings", "schema": schema, "key_properties": []},
        *({"type": "RECORD", "stream": "readings", "record": r} for r in records),
    ]
    config = {
        **server.target_config,
        "dead_letter_path": str(tmp_path / "dead.jsonl"),
        "streams": {"readings": {"entity": "new_reading", "id_field": "new_code"}},
    }
    return singer.cli(config, messages, tmp_path)


def readings(server) -> dict[str, dict]:
    return {r["new_code"]: r for r in server.admin.snapshot().get("new_reading", [])}


def test_date_columns_follow_their_behaviour(readings_emulator, tmp_path, singer):
    """§4.6: DateOnly format is display only: a UserLocal or TimeZoneIndependent column keeps the
    time it is given and takes a date as midnight UTC; only DateOnly behaviour stores a date."""
    readings_emulator.admin.reset()
    records = [
        {
            "new_code": "T",
            "new_shownasdate": "2026-01-31T10:15:00+01:00",
            "new_localdate": "2026-01-31T10:15:00",
            "new_day": "2026-01-31T23:30:00Z",
        },
        {"new_code": "D", "new_shownasdate": "2026-01-31", "new_localdate": "2026-01-31"},
    ]
    done = load(readings_emulator, singer, tmp_path, records)
    assert done.returncode == 0, done.stderr
    rows = readings(readings_emulator)
    assert rows["T"]["new_shownasdate"] == "2026-01-31T09:15:00Z"
    assert rows["T"]["new_localdate"] == "2026-01-31T10:15:00Z"
    assert rows["T"]["new_day"] == "2026-01-31"
    assert rows["D"]["new_shownasdate"] == "2026-01-31T00:00:00Z"
    assert rows["D"]["new_localdate"] == "2026-01-31T00:00:00Z"


def test_ambiguous_digit_label_is_rejected_never_guessed(readings_emulator, tmp_path, singer):
    """A string that is one option's value and another's label is dead-lettered naming both
    readings; a string with one reading lands."""
    readings_emulator.admin.reset()
    records = [{"new_code": "A", "new_grade": "1"}, {"new_code": "B", "new_grade": "3"}]
    done = load(readings_emulator, singer, tmp_path, records)
    rows = readings(readings_emulator)
    assert "A" not in rows
    assert rows["B"]["new_grade"] == 3
    lines = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    dead = [m["record"] for m in lines if m["type"] == "RECORD"]
    assert [d["new_code"] for d in dead] == ["A"]
    reason = dead[0]["_dead_letter"]["error"]
    assert "'new_grade' value '1' is ambiguous: it is option 1 ('2') and the label of option 2" in (
        reason
    )
    assert done.returncode == 1  # beyond max_errors=0: the run fails, once, without traceback
    assert done.stderr.count("is ambiguous") == 2  # the stream warning and the run's error
    assert "Traceback" not in done.stderr
