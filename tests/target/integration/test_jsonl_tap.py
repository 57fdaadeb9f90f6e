"""A real JSONL tap with nested objects, as RECORD and as BATCH messages, through the real CLI.

``tap-jsonl`` (a Singer SDK tap from the package index, installed by tasks.py) infers its schema
from the file: ``name`` arrives as an object without declared properties. Dotted paths in
``columns`` reach into it; no stream maps.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TAP = Path(os.environ.get("TAP_JSONL_BIN", ROOT / ".tools" / "tap-jsonl" / "bin" / "tap-jsonl"))
pytestmark = pytest.mark.skipif(not TAP.exists(), reason="tap-jsonl missing; tasks.py installs it")

PEOPLE = [
    {
        "id": 17,
        "email": "ada@contoso.com",
        "name": {"first": "Ada", "last": "Lovelace"},
        "income": "55000",
        "signup": "2026-01-31",
        "called": "2026-02-01T10:30:00+01:00",
        "newsletter": True,
    },
    {
        "id": 18,
        "email": "alan@contoso.com",
        "name": {"first": "Alan"},
        "income": "",
        "signup": "2025-12-24",
        "called": "2026-02-02T08:00:00Z",
        "newsletter": False,
    },
    {
        "id": 19,
        "email": "grace@contoso.com",
        "name": {"first": "Grace", "last": "Hopper"},
        "income": "1234.5",
        "signup": "2024-06-01",
        "called": "2026-02-03T23:59:59Z",
        "newsletter": True,
    },
]
COLUMNS = {
    "email": "emailaddress1",
    "name.first": "firstname",
    "name.last": "lastname",
    "income": "annualincome",
    "signup": "birthdate",
    "called": "lastonholdtime",
    "newsletter": "donotbulkemail",
}
SELECT = ",".join(c for c in COLUMNS.values() if c != "emailaddress1")
LANDED = {
    "ada@contoso.com": ("Ada", "Lovelace", 55000, "2026-01-31", "2026-02-01T09:30:00Z", True),
    "alan@contoso.com": ("Alan", None, None, "2025-12-24", "2026-02-02T08:00:00Z", False),
    "grace@contoso.com": ("Grace", "Hopper", 1234.5, "2024-06-01", "2026-02-03T23:59:59Z", True),
}


def run_tap(singer, tmp_path: Path, *, batch: bool) -> list[dict]:
    """Run tap-jsonl over ``PEOPLE`` (stream ``people``); its messages, also in ``tap.out``."""
    source = tmp_path / "people.jsonl"
    source.write_text("".join(json.dumps(p) + "\n" for p in PEOPLE), encoding="utf-8")
    config = {"path": str(source), "stream_name": "people", "primary_keys": ["id"]}
    if batch:
        config["batch_config"] = {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": (tmp_path / "batches").as_uri(), "prefix": "people-"},
        }
    (tmp_path / "tap.json").write_text(json.dumps(config), encoding="utf-8")
    with (tmp_path / "tap.out").open("w", encoding="utf-8") as out:
        subprocess.run(
            [str(TAP), "--config", str(tmp_path / "tap.json")],
            stdout=out,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=True,
            env=singer.QUIET,
        )
    return [json.loads(line) for line in (tmp_path / "tap.out").read_text().splitlines()]


def run_target(
    singer, emulator, tmp_path: Path, columns: dict[str, str]
) -> subprocess.CompletedProcess:
    """Pipe ``tap.out`` into the CLI, stream ``people`` upserted into contacts by e-mail."""
    config = {
        **emulator.target_config,
        "streams": {
            "people": {"entity": "contact", "id_field": "emailaddress1", "columns": columns}
        },
    }
    done = singer.cli(config, tmp_path / "tap.out", tmp_path, env=singer.QUIET)
    assert "Traceback" not in done.stderr
    assert emulator.target_config["client_secret"] not in done.stdout + done.stderr
    return done


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "record"])
def test_nested_fields_land_by_dotted_path(singer, reset_emulator, api, tmp_path, batch):
    """The tap's rows land in contacts with converted values; a missing ``name.last`` and an
    empty income are null; the tap's last STATE is emitted after them."""
    messages = run_tap(singer, tmp_path, batch=batch)
    kinds = {m["type"] for m in messages if m.get("stream") == "people"}
    assert kinds == ({"SCHEMA", "BATCH"} if batch else {"SCHEMA", "RECORD"})
    assert messages[0]["schema"]["properties"]["name"].get("properties") is None  # schemaless

    done = run_target(singer, reset_emulator, tmp_path, COLUMNS)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = api.get(f"{reset_emulator.api_url}/contacts?$select=emailaddress1,{SELECT}")
    answer.raise_for_status()
    landed = {
        row["emailaddress1"]: tuple(row[c] for c in SELECT.split(","))
        for row in answer.json()["value"]
    }
    assert landed == LANDED
    tap_states = [m["value"] for m in messages if m["type"] == "STATE"]
    emitted = [json.loads(line) for line in done.stdout.splitlines()]
    assert emitted
    assert emitted[-1] == tap_states[-1]


def typo_run(singer, emulator, tmp_path: Path, right: str, wrong: str) -> str:
    """Run with ``columns`` naming ``wrong`` instead of ``right``; the target's one error."""
    run_tap(singer, tmp_path, batch=True)
    columns = {wrong if key == right else key: column for key, column in COLUMNS.items()}
    done = run_target(singer, emulator, tmp_path, columns)
    assert emulator.admin.snapshot().get("contact", []) == []
    assert done.returncode != 0
    assert done.stderr.count("| ERROR") == 1, done.stderr[-3000:]
    return done.stderr[done.stderr.index("| ERROR") :]


def test_a_typo_in_columns_fails_at_schema_naming_the_close_field(singer, reset_emulator, tmp_path):
    """``incme`` names no field of the stream: one ERROR naming ``income``, nothing written."""
    error = typo_run(singer, reset_emulator, tmp_path, "income", "incme")
    assert "SCHEMA of stream 'people'" in error
    assert "columns key 'incme' names no field of the stream (did you mean: income" in error


def test_a_typo_below_an_object_without_properties_warns_and_clears_nothing(
    singer, reset_emulator, api, tmp_path
):
    """``name.frist``: the keys of ``name`` are only known from the records, so SCHEMA cannot
    refuse it; the first batch shows no record holds it: one warning names the keys ``name``
    held and the close one, and the column is left as it is (never cleared)."""
    contacts = f"{reset_emulator.api_url}/contacts"
    api.post(contacts, json={"emailaddress1": "ada@contoso.com", "firstname": "Augusta"})
    run_tap(singer, tmp_path, batch=True)
    columns = {"name.frist" if key == "name.first" else key: c for key, c in COLUMNS.items()}
    done = run_target(singer, reset_emulator, tmp_path, columns)
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines() if "columns key" in line]
    assert len(warnings) == 1, done.stderr[-3000:]
    assert "columns key 'name.frist' matched no value in the first 3 records" in warnings[0]
    assert "'name' held: first, last; did you mean name.first?" in warnings[0]
    rows = api.get(f"{contacts}?$select=emailaddress1,firstname,lastname").json()["value"]
    assert {r["emailaddress1"]: (r["firstname"], r["lastname"]) for r in rows} == {
        "ada@contoso.com": ("Augusta", "Lovelace"),
        "alan@contoso.com": (None, None),
        "grace@contoso.com": (None, "Hopper"),
    }
