"""BATCH messages: a tap's batch files load like RECORD messages, through the real CLI.

The real ``tap-spreadsheets`` (a Singer SDK tap, installed by tasks.py) writes JSONL batch
files when given ``batch_config``; hand-written files cover what a tap cannot be made to write.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

from dataverse_emulator.state.store import Kind, RecordRule
from target_dynamics.errors import SQL_TIMEOUT_CODE as SQL_TIMEOUT
from target_dynamics.reporting import LoadFailed
from target_dynamics.target import TargetDynamics

ROOT = Path(__file__).resolve().parents[3]
TAP = Path(
    os.environ.get(
        "TAP_SPREADSHEETS_BIN", ROOT / ".tools" / "tap-spreadsheets" / "bin" / "tap-spreadsheets"
    )
)
TOO_LONG = "L" * 51  # contact.lastname takes 50 characters


def contacts(emulator) -> dict[str, str | None]:
    rows = emulator.admin.snapshot().get("contact", [])
    return {r["emailaddress1"]: r.get("lastname") for r in rows}


def dead_letters(path: Path) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [m["record"] for m in lines if m["type"] == "RECORD"]


def batch_file(path: Path, records: list[dict | str], *, gzipped: bool = True) -> str:
    """Write ``records`` (a str is written as the line itself) as a batch file; its URL."""
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    data = gzip.compress(text.encode()) if gzipped else text.encode()
    path.write_bytes(data)
    return path.as_uri()


def batch_message(*urls: str, compression: str = "gzip") -> dict:
    encoding = {"format": "jsonl", "compression": compression}
    return {"type": "BATCH", "stream": "people", "encoding": encoding, "manifest": list(urls)}


def people(start: int, stop: int) -> list[dict]:
    return [{"emailaddress1": f"p{i}@x.org", "lastname": f"L{i}"} for i in range(start, stop)]


@pytest.mark.skipif(not TAP.exists(), reason="tap-spreadsheets missing; tasks.py installs it")
@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_a_tap_writing_batch_files_loads_into_contacts(
    singer, reset_emulator, tmp_path, compression
):
    """tap-spreadsheets with batch_config piped into the CLI: the rows land, the one Dataverse
    would refuse is a dead letter naming its batch file and line, and the tap's STATE after
    the BATCH is emitted."""
    rows = [(f"c{i}@batch.test", f"Name{i}") for i in range(7)]
    rows[4] = ("long@batch.test", TOO_LONG)
    csv_path = tmp_path / "people.csv"
    with csv_path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("email", "last_name"), *rows])
    storage = tmp_path / "batches"
    tap_config = tmp_path / "tap.json"
    tap_config.write_text(
        json.dumps(
            {
                "files": [{"path": str(csv_path), "format": "csv", "table_name": "people"}],
                "batch_config": {
                    "encoding": {"format": "jsonl", "compression": compression},
                    "storage": {"root": storage.as_uri(), "prefix": "b-"},
                },
            }
        )
    )
    dead = tmp_path / "dead.jsonl"
    target_config = {
        **reset_emulator.target_config,
        "streams": {
            "people": {
                "entity": "contact",
                "id_field": "emailaddress1",
                "columns": {"email": "emailaddress1", "last_name": "lastname"},
            }
        },
        "batch_size_rows": 2,
        "dead_letter_path": str(dead),
        "max_errors": 1,
    }
    tap = subprocess.Popen(
        [str(TAP), "--config", str(tap_config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=singer.QUIET,
    )
    assert tap.stdout is not None
    target = singer.cli(target_config, tap.stdout, tmp_path, env=singer.QUIET)
    tap.stdout.close()
    assert tap.wait(timeout=60) == 0
    assert target.returncode == 0, target.stderr
    assert "Traceback" not in target.stderr
    assert reset_emulator.target_config["client_secret"] not in target.stdout + target.stderr

    (batch,) = list(storage.iterdir())  # the tap did write a batch file
    assert batch.name.startswith("b-")
    assert contacts(reset_emulator) == {email: name for email, name in rows if name != TOO_LONG}
    (letter,) = dead_letters(dead)
    assert letter["email"] == "long@batch.test"
    assert "0x80044331" in letter["_dead_letter"]["code"]
    assert letter["_dead_letter"]["source"] == f"{batch.as_uri()} line 5"
    states = [json.loads(line) for line in target.stdout.splitlines()]
    assert states
    assert "bookmarks" in states[-1]


def test_a_bad_record_in_a_batch_file_is_a_dead_letter_naming_file_and_line(
    reset_emulator, tmp_path, singer
):
    """Records of a batch file get the checks RECORD messages get; the others land."""
    url = batch_file(
        tmp_path / "b-1.json.gz",
        [*people(0, 2), {"emailaddress1": "bad@x.org", "lastname": 5}, *people(2, 4)],
    )
    dead = tmp_path / "dead.jsonl"
    config = {
        **reset_emulator.target_config,
        "entity": "contact",
        "dead_letter_path": str(dead),
        "max_errors": 1,
    }
    record = {"type": "RECORD", "stream": "people", "record": {"emailaddress1": "r@x.org"}}
    messages = [singer.PEOPLE_SCHEMA, record, {**record, "record": {}}, batch_message(url)]
    done = singer.cli(config, messages, tmp_path, env=singer.QUIET)
    assert done.returncode == 1, done.stderr  # two rejected, one allowed
    assert "2 records were rejected" in done.stderr
    assert set(contacts(reset_emulator)) == {"r@x.org", *(p["emailaddress1"] for p in people(0, 4))}
    missing_key, wrong_type = dead_letters(dead)
    assert missing_key["_dead_letter"]["source"] == "input line 3"
    assert (wrong_type["emailaddress1"], wrong_type["lastname"]) == ("bad@x.org", 5)
    assert wrong_type["_dead_letter"]["source"] == f"{url} line 3"
    assert "field 'lastname'" in wrong_type["_dead_letter"]["error"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"emailaddress1": "cut', "not JSON"),
        (
            '{"emailaddress1": "s@x.org", "lastname": "B\\ud800"}',
            "a string holds the unpaired surrogate escape \\ud800",
        ),
    ],
)
def test_a_corrupt_line_stops_the_run_and_what_came_before_it_lands(
    reset_emulator, tmp_path, singer, line, problem
):
    """The files are streamed: the records before a bad line were accepted and are written."""
    first = batch_file(tmp_path / "b-1.json", people(0, 3), gzipped=False)
    second = batch_file(tmp_path / "b-2.json", [*people(3, 5), line], gzipped=False)
    later = {"type": "RECORD", "stream": "people", "record": people(9, 10)[0]}
    config = {**reset_emulator.target_config, "entity": "contact", "batch_size_rows": 2}
    messages = [singer.PEOPLE_SCHEMA, batch_message(first, second, compression="none"), later]
    done = singer.cli(config, messages, tmp_path, env=singer.QUIET)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, done.stderr
    assert (
        f"input line 2 (BATCH of stream 'people'): batch file {second} line 3: {problem}"
        in (errors[0])
    )
    assert "Traceback" not in done.stderr
    assert set(contacts(reset_emulator)) == {p["emailaddress1"] for p in people(0, 5)}


def run_in_process(emulator, singer, messages: list[dict]) -> tuple[list[dict], LoadFailed | None]:
    target = TargetDynamics(
        config={
            **emulator.target_config,
            "entity": "contact",
            "progress_interval_seconds": 0,
            "batch_size_rows": 2,
            "state_interval_records": 1,
        }
    )
    target.client._max_retries = 1
    target.client._backoff_base = 0.01
    target.writer._sleep = lambda _seconds: None
    return singer.run(target, messages)


def test_state_after_a_batch_waits_for_every_record_of_its_files(
    emulator_factory, tmp_path, singer
):
    """A row of the second BATCH keeps failing (SQL timeout, transient): the STATE after the
    first is emitted, the one after the second (whose records did not all land) never is."""
    server = emulator_factory(latency="zero")
    first = batch_file(tmp_path / "b-1.json.gz", people(0, 10))
    second = batch_file(tmp_path / "b-2.json.gz", people(10, 20))
    messages = [
        singer.PEOPLE_SCHEMA,
        batch_message(first),
        {"type": "STATE", "value": {"pos": 10}},
        batch_message(second),
        {"type": "STATE", "value": {"pos": 20}},
    ]
    server.env.store.record_rules.append(
        RecordRule("contact", {"lastname": "L15"}, Kind.SERVER_ERROR, SQL_TIMEOUT, "SQL timeout")
    )
    states, error = run_in_process(server, singer, messages)
    assert isinstance(error, LoadFailed)
    assert states == [{"pos": 10}]
    assert {p["emailaddress1"] for p in people(0, 10)} <= set(contacts(server))
    assert "p15@x.org" not in contacts(server)

    server.env.store.record_rules.clear()
    states, error = run_in_process(server, singer, [singer.PEOPLE_SCHEMA, *messages[3:]])
    assert error is None
    assert states
    assert all(state == {"pos": 20} for state in states)  # the end of input repeats it
    assert contacts(server) == {p["emailaddress1"]: p["lastname"] for p in people(0, 20)}


def test_about_declares_the_batch_capability(singer, tmp_path):
    done = singer.cli(None, "", tmp_path, args=["--about", "--format=json"])
    assert done.returncode == 0, done.stderr
    about = json.loads(done.stdout)
    assert "batch" in about["capabilities"]
    assert "batch_config" not in about["settings"]["properties"]  # it would do nothing here
