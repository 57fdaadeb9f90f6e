"""Reading the input's JSON through the console script: exact numbers, what only the SDK's
reading takes (a byte-order mark, ``NaN``), and text that is not Unicode."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("reset_emulator")

SCHEMA = {
    "type": "SCHEMA",
    "stream": "contact",
    "key_properties": ["emailaddress1"],
    "schema": {
        "properties": {
            "emailaddress1": {"type": "string"},
            "lastname": {"type": ["string", "null"]},
            "annualincome": {"type": ["number", "null"]},
            "numberofchildren": {"type": ["integer", "null"]},
        }
    },
}


def record(text: str) -> str:
    """A RECORD line of the contact stream whose record is the JSON ``text`` as written."""
    return f'{{"type": "RECORD", "stream": "contact", "record": {text}}}\n'


def test_numbers_are_exact_and_what_only_the_sdk_reads_is_read(
    reset_emulator, api, singer, tmp_path
):
    """After a byte-order mark, an integer past 64 bits and a ``NaN`` are dead-lettered with
    the column's range, a surrogate pair is one character, and the others land: the money value
    with every digit the input holds, as the service keeps an Edm.Decimal (§4.6)."""
    dead = tmp_path / "dead.jsonl"
    text = (
        "\ufeff"
        + json.dumps(SCHEMA)
        + "\n"
        + record('{"emailaddress1": "a@x.org", "annualincome": 99999999999999.99}')
        + record('{"emailaddress1": "b@x.org", "numberofchildren": 1180591620717411303424}')
        + record('{"emailaddress1": "c@x.org", "annualincome": NaN}')
        + record('{"emailaddress1": "d@x.org", "lastname": "\\ud83d\\ude00"}')
        + '{"type": "STATE", "value": {"n": 4}}\n'
    )
    config = {**reset_emulator.target_config, "dead_letter_path": str(dead), "max_errors": 2}
    done = singer.cli(config, text, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"n": 4}
    answer = api.get(
        f"{reset_emulator.api_url}/contacts?$select=emailaddress1,lastname,annualincome"
        "&$orderby=emailaddress1"
    )
    assert '"annualincome":99999999999999.9900' in answer.text, answer.text
    rows = {row["emailaddress1"]: row["lastname"] for row in answer.json()["value"]}
    assert rows == {"a@x.org": None, "d@x.org": "\N{GRINNING FACE}"}
    letters = [json.loads(line) for line in dead.open()]
    errors = [m["record"]["_dead_letter"]["error"] for m in letters if m["type"] == "RECORD"]
    assert len(errors) == 2
    assert "1180591620717411303424 is outside 0..1000000000" in errors[0]
    assert "cannot hold nan" in errors[1]


def test_an_unpaired_surrogate_ends_the_run_naming_its_line(reset_emulator, singer, tmp_path):
    """Valid JSON, not Unicode: the run ends at that line with what to fix, no traceback, and
    the record before it lands."""
    text = (
        json.dumps(SCHEMA)
        + "\n"
        + record('{"emailaddress1": "a@x.org", "lastname": "A"}')
        + '{"type": "STATE", "value": {"n": 1}}\n'
        + record('{"emailaddress1": "b@x.org", "lastname": "B\\ud800"}')
    )
    done = singer.cli(reset_emulator.target_config, text, tmp_path)
    assert done.returncode == 1
    assert "input line 4: a string holds the unpaired surrogate escape \\ud800" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("unpaired surrogate") == 1
    assert json.loads(done.stdout) == {"n": 1}
    assert [r["emailaddress1"] for r in reset_emulator.admin.snapshot()["contact"]] == ["a@x.org"]
